/**
 * The fixture's own CA, a server certificate for 127.0.0.1 / localhost signed by it, and a client
 * certificate for `clientCert` logins. Node cannot mint X.509 certificates, so the system's
 * openssl makes them (EC P-256: fast to generate, and Go's TLS stack in kubectl accepts it).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FixtureCerts {
  caFile: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  clientCertFile: string;
  clientKeyFile: string;
}

export function makeFixtureCerts(dir: string): FixtureCerts {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 20_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=kube-fixture-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const sign = (name: string, subj: string, ext: string) => {
    run('req', '-new', ...ec, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', subj);
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  };
  sign('server', '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  // Kubernetes reads the user from CN and groups from O of a client certificate.
  sign('client', '/O=system:masters/CN=fixture-admin', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  return {
    caFile: path.join(dir, 'ca.pem'),
    caPem: read('ca.pem'),
    certPem: read('server.pem'),
    keyPem: read('server-key.pem'),
    clientCertFile: path.join(dir, 'client.pem'),
    clientKeyFile: path.join(dir, 'client-key.pem'),
  };
}
