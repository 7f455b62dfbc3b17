/**
 * Starts a real, throwaway PostgreSQL 15 for tests: initdb into a temp dir, its own port on
 * 127.0.0.1, password (SCRAM) auth over TCP. Works as root (CI) by running the server binaries
 * as the `postgres` user, since postgres refuses to run as root.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as wire from '../../gateway/postgres/wire';
import { decodeFields } from '../../gateway/postgres/server-messages';
import { ScramClient } from '../../gateway/core/scram';
import { reapAtExit, tempDir } from './tmp';

const PG_BIN = process.env.FLIGHTLOG_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PgRole {
  user: string;
  password: string;
}

export interface PostgresServer {
  host: string;
  port: number;
  /** the bootstrap superuser (`postgres`), password auth over TCP */
  superuser: PgRole;
  /** role `app` (scram-sha-256) owning database `app` */
  app: PgRole & { database: string };
  /** roles whose pg_hba line forces one upstream auth method */
  md5User: PgRole;
  passwordUser: PgRole;
  trustUser: PgRole;
  /** the server certificate (self-signed, SAN 127.0.0.1 and localhost) when started with ssl */
  caFile: string | null;
  dir: string;
  /** Runs SQL as the superuser over the unix socket; returns psql's unaligned output. */
  psql(sql: string, database?: string): string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function asPostgres(): { prefix: string[]; uid: number | null; gid: number | null } {
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    return { prefix: ['runuser', '-u', 'postgres', '--'], uid, gid };
  }
  return { prefix: [], uid: null, gid: null };
}

function run(prefix: string[], bin: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const cmd = prefix.length ? prefix[0] : bin;
  const argv = prefix.length ? [...prefix.slice(1), bin, ...args] : args;
  const res = spawnSync(cmd, argv, { input: opts.input, env: opts.env ?? process.env, encoding: 'utf8', cwd: os.tmpdir() });
  if (res.status !== 0) {
    throw new Error(`${path.basename(bin)} failed (${res.status}): ${(res.stderr || res.stdout || '').trim()}`);
  }
  return res.stdout;
}

export async function startPostgres(opts: { ssl?: boolean } = {}): Promise<PostgresServer> {
  const as = asPostgres();
  const dir = tempDir('flightlog-pg-');
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'sock');
  fs.mkdirSync(sock);
  const pwfile = path.join(dir, 'pw');
  const superPassword = 'super-' + Math.random().toString(36).slice(2);
  fs.writeFileSync(pwfile, superPassword + '\n', { mode: 0o600 });
  if (as.uid !== null && as.gid !== null) {
    fs.chmodSync(dir, 0o700);
    for (const p of [dir, sock, pwfile]) fs.chownSync(p, as.uid, as.gid);
  }
  const port = await freePort();
  const roles = {
    app: { user: 'app', password: 'app-pw-' + Math.random().toString(36).slice(2), database: 'app' },
    md5User: { user: 'app_md5', password: 'md5-pw-' + Math.random().toString(36).slice(2) },
    passwordUser: { user: 'app_pw', password: 'pw-pw-' + Math.random().toString(36).slice(2) },
    trustUser: { user: 'app_trust', password: 'unused' },
  };
  try {
    run(as.prefix, path.join(PG_BIN, 'initdb'), [
      '-D', data, '-U', 'postgres', '--pwfile', pwfile, '-E', 'UTF8', '--locale=C',
      '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync', '--no-instructions',
    ]);
    const conf = [
      `listen_addresses = '127.0.0.1'`,
      `port = ${port}`,
      `unix_socket_directories = '${sock}'`,
      `fsync = off`,
      `synchronous_commit = off`,
      `full_page_writes = off`,
      `max_connections = 60`,
      `shared_buffers = 64MB`,
    ];
    let caFile: string | null = null;
    if (opts.ssl) {
      const crt = path.join(data, 'server.crt');
      const key = path.join(data, 'server.key');
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ], { stdio: 'ignore' });
      fs.chmodSync(key, 0o600);
      if (as.uid !== null && as.gid !== null) { fs.chownSync(key, as.uid, as.gid); fs.chownSync(crt, as.uid, as.gid); }
      caFile = path.join(dir, 'ca.crt');
      fs.copyFileSync(crt, caFile);
      fs.chmodSync(caFile, 0o644);
      conf.push(`ssl = on`);
    }
    fs.appendFileSync(path.join(data, 'postgresql.conf'), '\n' + conf.join('\n') + '\n');
    // Specific lines first: pg_hba is first-match.
    const hba = [
      'local all all trust',
      'host all app_md5 127.0.0.1/32 md5',
      'host all app_pw 127.0.0.1/32 password',
      'host all app_trust 127.0.0.1/32 trust',
      'host all all 127.0.0.1/32 scram-sha-256',
    ];
    fs.writeFileSync(path.join(data, 'pg_hba.conf'), hba.join('\n') + '\n');
    // pg_ctl starts a daemon that outlives this process unless stopped: a failed test must not leave it.
    const forget = reapAtExit(() => {
      spawnSync(as.prefix[0] ?? path.join(PG_BIN, 'pg_ctl'), [...as.prefix.slice(1), ...(as.prefix.length ? [path.join(PG_BIN, 'pg_ctl')] : []), '-D', data, '-m', 'immediate', '-w', 'stop'], { stdio: 'ignore' });
    });
    run(as.prefix, path.join(PG_BIN, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '30', 'start']);
    const psql = (sql: string, database = 'postgres'): string =>
      run(as.prefix, path.join(PG_BIN, 'psql'), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', sock, '-p', String(port), '-U', 'postgres', '-d', database], { input: sql });
    const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
    psql([
      `CREATE ROLE app LOGIN PASSWORD ${lit(roles.app.password)};`,
      `CREATE DATABASE app OWNER app;`,
      `SET password_encryption = 'md5';`,
      `CREATE ROLE app_md5 LOGIN PASSWORD ${lit(roles.md5User.password)};`,
      `RESET password_encryption;`,
      `CREATE ROLE app_pw LOGIN PASSWORD ${lit(roles.passwordUser.password)};`,
      `CREATE ROLE app_trust LOGIN;`,
      `GRANT ALL ON DATABASE app TO app_md5, app_pw, app_trust;`,
    ].join('\n'));
    psql(`GRANT ALL ON SCHEMA public TO app_md5, app_pw, app_trust;`, 'app');
    let stopped = false;
    return {
      host: '127.0.0.1',
      port,
      superuser: { user: 'postgres', password: superPassword },
      ...roles,
      caFile,
      dir,
      psql,
      async stop() {
        if (stopped) return;
        stopped = true;
        try {
          run(as.prefix, path.join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
          forget();
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    spawnSync(as.prefix[0] ?? path.join(PG_BIN, 'pg_ctl'), [...as.prefix.slice(1), ...(as.prefix.length ? [path.join(PG_BIN, 'pg_ctl')] : []), '-D', data, '-m', 'immediate', 'stop'], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

// ------------------------------------------------------------------------------------------
/** A bare-bones frontend for tests that need exact control of the bytes (malformed input, portals, cancels). */
export interface Frame {
  type: string;
  body: Buffer;
}

export class RawPgClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  pid = 0;
  secret = 0;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(host: string, port: number): Promise<RawPgClient> {
    const s = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return new RawPgClient(s);
  }

  /** Connects and logs in; resolves after the first ReadyForQuery. */
  static async login(host: string, port: number, user: string, password: string, database = 'app'): Promise<RawPgClient> {
    const c = await RawPgClient.connect(host, port);
    c.send(wire.startupMessage({ user, database }));
    c.authMethod = await c.authenticate(password);
    for (;;) {
      const f = await c.next();
      if (f.type === 'E') throw new Error(decodeFields(f.body, 0, f.body.length).M);
      if (f.type === 'K') {
        c.pid = f.body.readInt32BE(0);
        c.secret = f.body.readInt32BE(4);
      }
      if (f.type === 'Z') return c;
    }
  }

  /** the method the server asked for at the last login: 'password' (cleartext) or 'scram-sha-256' */
  authMethod: 'password' | 'scram-sha-256' | null = null;

  /** Answers the server's authentication request (cleartext or SCRAM-SHA-256); errors come back as frames. */
  async authenticate(password: string): Promise<'password' | 'scram-sha-256'> {
    const auth = await this.next();
    if (auth.type === 'E') throw new Error(decodeFields(auth.body, 0, auth.body.length).M);
    const code = auth.type === 'R' ? auth.body.readInt32BE(0) : -1;
    if (code === 3) {
      this.send(wire.passwordMessage(password));
      return 'password';
    }
    if (code !== 10) throw new Error(`expected a cleartext or SASL request, got ${auth.type} ${code}`);
    const mechanisms = auth.body.toString('utf8', 4).split('\0').filter(Boolean);
    if (!mechanisms.includes('SCRAM-SHA-256')) throw new Error(`no SCRAM-SHA-256 among ${mechanisms.join(', ')}`);
    const scram = new ScramClient(password);
    this.send(wire.saslInitialResponse('SCRAM-SHA-256', scram.first()));
    const cont = await this.next();
    if (cont.type === 'E') throw new Error(decodeFields(cont.body, 0, cont.body.length).M);
    if (cont.type !== 'R' || cont.body.readInt32BE(0) !== 11) throw new Error('expected AuthenticationSASLContinue');
    this.send(wire.saslResponse(scram.final(cont.body.toString('utf8', 4))));
    const fin = await this.next();
    if (fin.type === 'E') throw new Error(decodeFields(fin.body, 0, fin.body.length).M);
    if (fin.type !== 'R' || fin.body.readInt32BE(0) !== 12) throw new Error('expected AuthenticationSASLFinal');
    scram.verify(fin.body.toString('utf8', 4));
    return 'scram-sha-256';
  }

  send(b: Buffer): void {
    this.socket.write(b);
  }

  /** The next backend frame; rejects if the connection closes first. */
  async next(timeoutMs = 10000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length >= len + 1) {
          const f = { type: String.fromCharCode(this.buf[0]), body: this.buf.subarray(5, len + 1) };
          this.buf = this.buf.subarray(len + 1);
          return f;
        }
      }
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > deadline) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Frames up to and including the first of the given type. */
  async until(type: string, timeoutMs = 10000): Promise<Frame[]> {
    const out: Frame[] = [];
    for (;;) {
      const f = await this.next(timeoutMs);
      out.push(f);
      if (f.type === type) return out;
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

export function errorFields(f: Frame): Record<string, string> {
  return decodeFields(f.body, 0, f.body.length);
}
