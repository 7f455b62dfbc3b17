/**
 * **Test connection**: the gateway logs in upstream with the connection's own credentials, once,
 * the way its listener would, and says what it found (Postgres: the server version; SSH: the
 * server's software and host key fingerprint; HTTP: the status of the base URL) or the upstream's
 * exact error. Nothing is recorded and no host key is pinned by a test.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { Client, type ConnectConfig } from 'ssh2';
import type { ConnectionConfig, HttpUpstream, KubernetesUpstream, PostgresUpstream, SshUpstream } from '../common/config-schema';
import type { Masker } from '../common/types';
import type { ConnectionTestResult } from '../common/api-types';
import { loginUpstream, type UpstreamLogin } from '../postgres/upstream';
import { decodeFields } from '../postgres/server-messages';
import { blobKeyType, fingerprint, KnownHosts, parsePinnedKey } from '../ssh/host-keys';
import { resolveUpstream } from '../http/upstream';
import { resolveKubeTarget } from '../kubernetes/upstream';

const TIMEOUT_MS = 10_000;

interface Outcome {
  ok: boolean;
  message: string;
  serverVersion?: string;
  hostKey?: ConnectionTestResult['hostKey'];
}

/** Logs in to the connection's upstream once; never throws (a failure is the result). */
export async function testConnection(opts: {
  connection: ConnectionConfig;
  secrets: Record<string, string>;
  dataDir: string;
  masker: Masker;
  timeoutMs?: number;
}): Promise<ConnectionTestResult> {
  const { connection } = opts;
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
  let outcome: Outcome;
  try {
    switch (connection.protocol) {
      case 'postgres':
        outcome = await testPostgres(connection.upstream as PostgresUpstream, opts.secrets.password, timeoutMs);
        break;
      case 'ssh':
        outcome = await testSsh(connection.name, connection.upstream as SshUpstream, opts.secrets, opts.dataDir, timeoutMs);
        break;
      case 'kubernetes':
        outcome = await testKubernetes(connection.upstream as KubernetesUpstream, opts.secrets, timeoutMs);
        break;
      case 'mcp':
        outcome = 'command' in connection.upstream ? testMcpCommand(connection.upstream.command) : await testHttp(connection.upstream as HttpUpstream, opts.secrets, opts.masker, timeoutMs);
        break;
      default:
        outcome = await testHttp(connection.upstream as HttpUpstream, opts.secrets, opts.masker, timeoutMs);
    }
  } catch (err) {
    outcome = { ok: false, message: err instanceof Error ? err.message : String(err) };
  }
  // what an upstream says goes to a page: masked, one line, bounded
  const message = opts.masker.maskText(outcome.message.replace(/\s+/g, ' ').trim().slice(0, 500)).text;
  const result: ConnectionTestResult = { connection: connection.name, protocol: connection.protocol, ok: outcome.ok, message, testedAt: new Date(started).toISOString(), ms: Date.now() - started };
  if (outcome.serverVersion) result.serverVersion = opts.masker.maskText(outcome.serverVersion).text;
  if (outcome.hostKey) result.hostKey = outcome.hostKey;
  return result;
}

function parameter(frames: Buffer[], name: string): string | undefined {
  for (const raw of frames) {
    if (raw[0] !== 0x53) continue; // 'S' ParameterStatus: name\0value\0
    const body = raw.subarray(5);
    const i = body.indexOf(0);
    if (i < 0 || body.toString('utf8', 0, i) !== name) continue;
    const j = body.indexOf(0, i + 1);
    return body.toString('utf8', i + 1, j < 0 ? body.length : j);
  }
  return undefined;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string, onLate: (v: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const t = setTimeout(() => {
      done = true;
      reject(new Error(`${what} did not answer within ${Math.round(ms / 1000)} s`));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(t);
        if (done) onLate(v);
        else resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        if (!done) reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

async function testPostgres(up: PostgresUpstream, password: string | undefined, timeoutMs: number): Promise<Outcome> {
  const database = up.database ?? up.user;
  const where = `${up.host}:${up.port}`;
  let login: UpstreamLogin;
  try {
    login = await withTimeout(loginUpstream(up, password, { user: up.user, database, application_name: 'flightlog connection test' }), timeoutMs, `PostgreSQL at ${where}`, (l) => l.socket.destroy());
  } catch (err) {
    const e = err as Error & { serverError?: Buffer | null };
    // the server's own words (SQLSTATE and message) when it sent an ErrorResponse
    if (e.serverError && e.serverError.length > 5) {
      const f = decodeFields(e.serverError.subarray(5), 0, e.serverError.length - 5);
      return { ok: false, message: `${where}: ${f.S ?? 'ERROR'} ${f.C ?? ''} ${f.M ?? e.message}`.replace(/\s+/g, ' ') };
    }
    return { ok: false, message: `${where}: ${e.message}` };
  }
  const version = parameter(login.startupFrames, 'server_version');
  // Terminate, then close: a polite logout the server logs as a normal disconnection
  login.socket.end(Buffer.from([0x58, 0, 0, 0, 4]));
  setTimeout(() => login.socket.destroy(), 1000).unref();
  return {
    ok: true,
    serverVersion: version ? `PostgreSQL ${version}` : undefined,
    message: `logged in to PostgreSQL ${version ?? '(version not reported)'} at ${where} as ${up.user}, database ${database}${login.tls ? ', over TLS' : ', without TLS'}`,
  };
}

async function testSsh(name: string, up: SshUpstream, secrets: Record<string, string>, dataDir: string, timeoutMs: number): Promise<Outcome> {
  const configured = up.hostKey ? parsePinnedKey(up.hostKey) : null;
  const pinned = configured ?? new KnownHosts(dataDir).get(name);
  const where = `${up.user}@${up.host}:${up.port}`;
  let seen: Buffer | null = null;
  let banner = '';
  const client = new Client();
  // the text a server shows before login (sshd's Banner): first line, as OpenSSH would print it
  client.on('banner', (text: string) => (banner = text.split(/\r?\n/).find((l) => l.trim())?.trim().slice(0, 120) ?? ''));
  const software = (): string | undefined => {
    const v = (client as unknown as { _remoteVer?: unknown })._remoteVer;
    return typeof v === 'string' && v ? v : undefined;
  };
  const keyInfo = (): ConnectionTestResult['hostKey'] | undefined =>
    seen ? { fingerprint: fingerprint(seen), type: blobKeyType(seen), state: pinned ? (pinned.equals(seen) ? 'pinned' : 'changed') : 'new' } : undefined;
  const said = (): string => {
    const k = keyInfo();
    const parts = [software() ? `server ${software()}` : null, banner ? `banner "${banner}"` : null, k ? `host key ${k.fingerprint}${k.state === 'pinned' ? ' (the pinned one)' : k.state === 'new' ? ' (not pinned yet)' : ''}` : null];
    return parts.filter(Boolean).join(', ');
  };
  return new Promise<Outcome>((resolve) => {
    let settled = false;
    const finish = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end();
      resolve({ ...o, serverVersion: software(), hostKey: keyInfo() });
    };
    const timer = setTimeout(() => finish({ ok: false, message: `${where}: no answer within ${Math.round(timeoutMs / 1000)} s${said() ? ` (${said()})` : ''}` }), timeoutMs);
    const config: ConnectConfig = {
      host: up.host,
      port: up.port,
      username: up.user,
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer): boolean => {
        seen = Buffer.from(key);
        return !pinned || pinned.equals(seen);
      },
    };
    if (secrets.privateKey) config.privateKey = secrets.privateKey;
    if (secrets.password) config.password = secrets.password;
    client.once('ready', () => finish({ ok: true, message: `logged in to ${where}: ${said()}` }));
    client.on('error', (err: Error & { level?: string }) => {
      const k = keyInfo();
      if (k?.state === 'changed') {
        return finish({ ok: false, message: `${where}: the host key changed: pinned ${fingerprint(pinned!)}, the server presented ${k.fingerprint}; the gateway refuses to log in (update hostKey, or remove the entry from ssh/known_hosts.json in the data dir, if the change is expected)` });
      }
      const reason = err.level === 'client-authentication' ? `login refused for user '${up.user}' (${err.message})` : err.message;
      finish({ ok: false, message: `${where}: ${reason}${said() ? `; ${said()}` : ''}` });
    });
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 refuses a malformed private key before connecting
      finish({ ok: false, message: `${where}: ${(err as Error).message}` });
    }
  });
}

/** An MCP stdio server is started per agent session: what can be checked now is that its program exists. */
function testMcpCommand(command: string[]): Outcome {
  const program = command[0] ?? '';
  const dirs = program.includes('/') ? [''] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const d of dirs) {
    const file = d ? path.join(d, program) : program;
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return { ok: true, message: `the server program ${file} is there; the gateway starts it for each agent session` };
    } catch {
      // not in this directory
    }
  }
  return { ok: false, message: `the server program "${program}" is not found${program.includes('/') ? '' : ' on PATH'}` };
}

/** Kubernetes: GET /version with the connection's own login (token, client certificate or kubeconfig). */
async function testKubernetes(up: KubernetesUpstream, secrets: Record<string, string>, timeoutMs: number): Promise<Outcome> {
  const target = resolveKubeTarget(up, secrets, null);
  const url = new URL('/version', target.url);
  try {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const headers: Record<string, string> = target.authorization ? { authorization: target.authorization } : {};
      const req = (target.isHttps ? https : http).request(url, { method: 'GET', headers, agent: target.agent, timeout: timeoutMs }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text.length < 4096) text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)));
      req.on('error', reject);
      req.end();
    });
    let version: string | undefined;
    try {
      version = (JSON.parse(body) as { gitVersion?: string }).gitVersion;
    } catch {
      version = undefined;
    }
    const ok = status === 200;
    return { ok, message: `GET ${target.url.origin}/version answered HTTP ${status}${status === 401 || status === 403 ? ': the API server refused the credentials' : ''}`, ...(ok && version ? { serverVersion: `Kubernetes ${version}` } : {}) };
  } finally {
    target.agent.destroy();
  }
}

async function testHttp(up: HttpUpstream, secrets: Record<string, string>, masker: Masker, timeoutMs: number): Promise<Outcome> {
  const target = resolveUpstream(up, secrets, masker, 1);
  const url = new URL(target.url.toString());
  for (const [k, v] of target.injectQuery) url.searchParams.set(k, v);
  const headers: Record<string, string> = Object.fromEntries(target.injectHeaders);
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = (target.isHttps ? https : http).request(url, { method: 'GET', headers, agent: target.agent, timeout: timeoutMs }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)));
      req.on('error', reject);
      req.end();
    });
    const refused = status === 401 || status === 403 || status >= 500;
    return { ok: !refused, message: `GET ${target.url.origin}${url.pathname} answered HTTP ${status}${status === 401 || status === 403 ? ': the upstream refused the credentials' : ''}` };
  } finally {
    target.agent.destroy();
  }
}
