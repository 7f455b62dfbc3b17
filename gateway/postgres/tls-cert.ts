/**
 * The certificate the gateway offers Postgres clients that send SSLRequest. Node cannot mint
 * X.509 certificates, so a self-signed one is made once with the system's openssl and kept in
 * the data dir; without openssl the listener answers SSLRequest with 'N' (plain only).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface GatewayCert {
  cert: Buffer;
  key: Buffer;
  certFile: string;
}

export function ensureGatewayCert(dataDir: string): GatewayCert | null {
  const dir = path.join(dataDir, 'postgres-tls');
  const certFile = path.join(dir, 'gateway-cert.pem');
  const keyFile = path.join(dir, 'gateway-key.pem');
  if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmpKey = keyFile + '.tmp';
    const tmpCert = certFile + '.tmp';
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', tmpKey, '-out', tmpCert, '-days', '3650', '-subj', '/CN=flightlog-gateway',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ], { stdio: 'ignore', timeout: 20000 });
    } catch {
      fs.rmSync(tmpKey, { force: true });
      fs.rmSync(tmpCert, { force: true });
      return null;
    }
    fs.chmodSync(tmpKey, 0o600);
    fs.renameSync(tmpKey, keyFile);
    fs.renameSync(tmpCert, certFile);
  }
  return { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), certFile };
}
