/**
 * Fixtures for bundle tests: a store with recorded sessions of each protocol (made through the
 * real Recorder, with the event shapes the listeners record), and tools to take a bundle apart,
 * alter it and put it back together the way an attacker would.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openDb, type Db } from '../../gateway/store/db';
import { Recorder } from '../../gateway/store/recorder';
import { chainHash, ensureFingerprintKey, ensureGatewayKey, genesisHash, keyFingerprint, sealMessage, signSeal, type GatewayKey } from '../../gateway/store/chain';
import { createMasker } from '../../gateway/masking';
import type { Masker } from '../../gateway/common/types';
import { TarReader, TarWriter } from '../../gateway/bundle/tar';
import { tempDir } from './tmp';

export const PLANTED_SECRET = 'pl4nted-S3CRET-value-9c1e5b2d';

export function tmpDir(prefix = 'flightlog-bundle-'): string {
  return tempDir(prefix);
}

export interface Store {
  dir: string;
  db: Db;
  key: GatewayKey;
  masker: Masker;
  rec: Recorder;
}

const created: Store[] = [];

/** Closes and removes every store newStore() made. */
export function cleanupStores(): void {
  for (const s of created.splice(0)) {
    if (s.db.open) s.db.close();
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
}

export function newStore(): Store {
  const dir = tmpDir('flightlog-bundle-store-');
  const db = openDb(dir);
  const key = ensureGatewayKey(dir);
  const masker = createMasker({ fingerprintKey: ensureFingerprintKey(dir) });
  masker.addKnownSecret('upstream-password', PLANTED_SECRET);
  const rec = new Recorder(db, { masker, signingKey: key.privateKey, keyFingerprint: key.fingerprint });
  const now = new Date().toISOString();
  const conn = db.prepare('INSERT INTO connections (name, protocol, config, first_seen, updated_at) VALUES (?, ?, ?, ?, ?)');
  conn.run('app-db', 'postgres', JSON.stringify({ name: 'app-db', protocol: 'postgres', upstream: { host: '127.0.0.1', port: 5432, user: 'app', password: { env: 'APP_DB_PASSWORD' } } }), now, now);
  conn.run('web-1', 'ssh', JSON.stringify({ name: 'web-1', protocol: 'ssh', upstream: { host: 'web-1.internal', port: 22, user: 'deploy', privateKey: { file: '~/.ssh/deploy' } } }), now, now);
  conn.run(
    'api',
    'http',
    JSON.stringify({ name: 'api', protocol: 'http', upstream: { url: 'https://api.example.com/v1/', headers: { 'x-api-key': { env: 'API_KEY' }, 'x-inline-token': 'inline-header-secret-1234', 'x-team': 'blue' } } }),
    now,
    now,
  );
  db.prepare("INSERT INTO identities (name, kind, created_at) VALUES ('claude', 'agent', ?)").run(now);
  db.prepare("INSERT INTO tokens (identity_id, token_hash, created_at) VALUES (1, 'deadbeef-token-hash', ?)").run(now);
  db.prepare("INSERT INTO runs (id, identity, argv, started_at) VALUES ('run_test1', 'claude', '[\"agent\",\"--go\"]', ?)").run(now);
  const store = { dir, db, key, masker, rec };
  created.push(store);
  return store;
}

export interface Samples {
  pg: string;
  ssh: string;
  http: string;
  /** left open: exported unsealed */
  live: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Records one session per protocol with the shapes the listeners record, plus one left live. */
export async function recordSamples(store: Store): Promise<Samples> {
  const { rec } = store;
  const pg = rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude', runId: 'run_test1', clientAddr: '127.0.0.1:50000', meta: { database: 'app', user: 'app' } });
  const c1 = pg.startCommand({ kind: 'sql', text: 'SELECT email FROM users WHERE id = 1', classification: 'read', targets: ['public.users'] });
  pg.event('query', 'client→upstream', { sql: 'SELECT email FROM users WHERE id = 1' });
  pg.event('rows', 'upstream→client', { rows: [['a@example.com']] });
  c1.finish({ status: 'ok', result: { columns: ['email'], rows: [['a@example.com']], rowCount: 1, tag: 'SELECT 1' } });
  const c2 = pg.startCommand({ kind: 'sql', text: `ALTER ROLE app PASSWORD '${PLANTED_SECRET}'`, classification: 'ddl', targets: ['app'] });
  pg.event('query', 'client→upstream', { sql: `ALTER ROLE app PASSWORD '${PLANTED_SECRET}'` });
  c2.finish({ status: 'error', error: `permission denied near ${PLANTED_SECRET}` });
  pg.finding({ category: 'guardrail', kind: 'blocked', direction: 'gateway', detail: { rule: 'no-ddl' } });
  await sleep(2);
  pg.close('closed', 'client quit');

  const ssh = rec.openSession({ connection: 'web-1', protocol: 'ssh', identity: 'claude', runId: 'run_test1', meta: { user: 'claude' } });
  ssh.event('pty', 'client→upstream', { term: 'xterm-256color', cols: 100, rows: 30 });
  ssh.event('shell', 'client→upstream', { pty: true });
  ssh.event('o', 'upstream→client', 'deploy@web-1:~$ ');
  const sh = ssh.startCommand({ kind: 'shell', text: 'ls -la', detail: { source: 'typed' } });
  ssh.event('i', 'client→upstream', 'ls -la\r');
  await sleep(3);
  ssh.event('o', 'upstream→client', 'ls -la\r\ntotal 0\r\ndrwxr-xr-x 2 deploy deploy 40 .\r\n');
  sh.finish({ status: 'ok', result: { exitCode: 0 } });
  ssh.event('r', 'client→upstream', '120x40');
  ssh.event('o', 'upstream→client', `echo ${PLANTED_SECRET}\r\n`);
  ssh.event('truncated', 'upstream→client', { bytes: 10, sha256: 'x' });
  ssh.event('o', 'upstream→client', 'deploy@web-1:~$ exit\r\n');
  ssh.close('closed', 'exit');

  const http = rec.openSession({ connection: 'api', protocol: 'http', identity: 'claude', runId: 'run_test1' });
  const h1 = http.startCommand({ kind: 'http', text: 'POST /echo?x=1', classification: 'write', detail: { method: 'POST', url: '/echo?x=1' } });
  h1.finish({
    status: 'ok',
    result: {
      method: 'POST',
      url: '/echo?x=1',
      upstream: 'api.example.com:443',
      status: 200,
      requestHeaders: { 'content-type': 'application/json', 'x-api-key': `[MASKED:upstream-credential:abcdef0123]`, accept: ['a/b', 'c/d'] },
      headers: { 'content-type': 'application/json; charset=utf-8', 'set-cookie': ['a=1', 'b=2'] },
      requestBody: { size: 17, sha256: 'aa', truncated: false, encoding: 'utf8', decoded: null, body: '{"hello":"world"}' },
      responseBody: { size: 40, sha256: 'bb', truncated: false, encoding: 'utf8', decoded: null, body: `{\n  "echo": "${PLANTED_SECRET}"\n}` },
      timings: { ttfbMs: 12.5, totalMs: 20.25 },
    },
  });
  const h2 = http.startCommand({ kind: 'http', text: 'GET /big.bin', classification: 'read', detail: { method: 'GET', url: '/big.bin' } });
  h2.finish({
    status: 'ok',
    result: {
      method: 'GET',
      url: '/big.bin',
      upstream: 'api.example.com:443',
      status: 302,
      requestHeaders: {},
      headers: { 'content-type': 'application/octet-stream', location: '/elsewhere', 'content-encoding': 'gzip' },
      requestBody: { size: 0, sha256: 'e3', truncated: false, encoding: 'utf8', decoded: null, body: '' },
      responseBody: { size: 100000, sha256: 'cc', truncated: true, encoding: 'base64', decoded: 'gzip', body: Buffer.from([0, 1, 2, 3]).toString('base64') },
      timings: { ttfbMs: null, totalMs: 5 },
    },
  });
  const h3 = http.startCommand({ kind: 'http', text: 'DELETE /users', classification: 'write', detail: { method: 'DELETE', url: '/users' } });
  h3.finish({ status: 'blocked', error: 'blocked by policy: no deletes' });
  const h4 = http.startCommand({ kind: 'llm', text: 'claude-x: hello', detail: { method: 'POST', url: '/v1/messages', endpoint: 'messages', model: 'claude-x', stream: false }, causedBy: null });
  h4.finish({ status: 'ok', result: { method: 'POST', url: '/v1/messages', upstream: 'api.example.com:443', status: 200, requestHeaders: {}, headers: {}, requestBody: null, responseBody: null, timings: { ttfbMs: 1, totalMs: 2 } } });
  http.close('closed', 'done');

  const live = rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
  // lineage inside the bundle: an sql command caused by the model call
  const lc = live.startCommand({ kind: 'sql', text: 'SELECT 42', causedBy: h4.id });
  live.event('query', 'client→upstream', { sql: 'SELECT 42' });
  lc.finish({ status: 'ok', result: { rows: [[42]] } });
  await rec.flush();
  return { pg: pg.id, ssh: ssh.id, http: http.id, live: live.id };
}

export interface Member {
  name: string;
  data: Buffer;
}

export async function readMembers(file: string): Promise<Member[]> {
  const r = await TarReader.open(file, { maxMembers: 100000, maxMemberBytes: 1024 ** 3 });
  const out: Member[] = [];
  try {
    for (let e = await r.next(); e; e = await r.next()) out.push({ name: e.name, data: await r.readAll(e) });
  } finally {
    await r.close();
  }
  return out;
}

export async function writeMembers(file: string, members: Member[]): Promise<void> {
  fs.rmSync(file, { force: true });
  const w = await TarWriter.create(file);
  for (const m of members) await w.addBuffer(m.name, m.data);
  await w.finish();
}

/** Where a member's content sits in the file. */
export async function memberRange(file: string, name: string): Promise<{ offset: number; size: number }> {
  const r = await TarReader.open(file, { maxMembers: 100000, maxMemberBytes: 1024 ** 3 });
  try {
    for (let e = await r.next(); e; e = await r.next()) if (e.name === name) return { offset: e.offset, size: e.size };
  } finally {
    await r.close();
  }
  throw new Error(`no member ${name}`);
}

export function flipByte(file: string, pos: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, pos);
  b[0] ^= 0x01;
  fs.writeSync(fd, b, 0, 1, pos);
  fs.closeSync(fd);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * What a forger does after altering members: recompute the manifest's member digests and
 * SHA256SUMS, and sign with `key` (a fresh key by default), replacing public-key.pem.
 */
export function resign(members: Member[], key?: { privateKey: import('node:crypto').KeyObject; publicKeyPem: string }, edit?: (manifest: Record<string, unknown>) => void): { members: Member[]; key: { privateKey: import('node:crypto').KeyObject; publicKeyPem: string } } {
  let k = key;
  if (!k) {
    const pair = generateKeyPairSync('ed25519');
    k = { privateKey: pair.privateKey, publicKeyPem: pair.publicKey.export({ format: 'pem', type: 'spki' }).toString() };
  }
  const out = members.map((m) => (m.name === 'public-key.pem' ? { name: m.name, data: Buffer.from(k!.publicKeyPem) } : m));
  const manifest = JSON.parse(out.find((m) => m.name === 'manifest.json')!.data.toString()) as Record<string, unknown> & { members: Array<{ name: string; size: number; sha256: string }>; key: { fingerprint: string } };
  manifest.key.fingerprint = keyFingerprint(k.publicKeyPem);
  manifest.members = out.filter((m) => !['manifest.json', 'manifest.sig', 'SHA256SUMS'].includes(m.name)).map((m) => ({ name: m.name, size: m.data.length, sha256: sha256(m.data) }));
  edit?.(manifest);
  const mBytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  const sig = Buffer.from(sign(null, mBytes, k.privateKey).toString('base64') + '\n');
  const set = (name: string, data: Buffer) => {
    const m = out.find((x) => x.name === name)!;
    m.data = data;
  };
  set('manifest.json', mBytes);
  set('manifest.sig', sig);
  set(
    'SHA256SUMS',
    Buffer.from(
      out
        .filter((m) => m.name !== 'SHA256SUMS')
        .map((m) => `${sha256(m.data)}  ${m.name}\n`)
        .join(''),
    ),
  );
  return { members: out, key: k };
}

/** Files under dir (recursively) whose bytes contain needle. */
export function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(Buffer.from(needle))) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}

/**
 * A closed, sealed session as a Flightlog before row coverage recorded it: no `chain` in its open
 * event and no command.done events, so its command rows are in no digest.
 */
export function recordLegacySession(store: Store, id = 'ses_legacy' + Date.now().toString(36)): string {
  const started = Date.now() * 1000;
  store.db.prepare("INSERT INTO sessions (id, identity, connection, protocol, started_at, started_us, ended_at, status) VALUES (?, 'claude', 'app-db', 'postgres', ?, ?, ?, 'closed')").run(id, new Date().toISOString(), started, new Date().toISOString());
  let prev = genesisHash(id);
  const events: Array<[string, string, string]> = [
    ['open', 'gateway', JSON.stringify({ connection: 'app-db', protocol: 'postgres', identity: 'claude', runId: null, clientAddr: null, meta: {} })],
    ['query', 'client→upstream', JSON.stringify({ sql: 'SELECT 1' })],
    ['close', 'gateway', JSON.stringify({ status: 'closed', reason: null })],
  ];
  events.forEach(([kind, direction, data], i) => {
    const e = { seq: i + 1, t_us: i, wall: new Date().toISOString(), kind, direction, command_id: null, data };
    prev = chainHash(prev, e);
    store.db.prepare('INSERT INTO events (session_id, seq, t_us, wall, kind, direction, command_id, data, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(id, e.seq, e.t_us, e.wall, kind, direction, null, data, prev);
  });
  store.db.prepare("INSERT INTO commands (session_id, idx, kind, text, status, started_at, started_us) VALUES (?, 1, 'sql', 'SELECT 1', 'ok', ?, 0)").run(id, new Date().toISOString());
  store.db.prepare('UPDATE sessions SET event_count = 3, command_count = 1, last_hash = ?, seal = ?, seal_key = ? WHERE id = ?').run(prev, signSeal(store.key.privateKey, sealMessage(id, 3, prev)), store.key.fingerprint, id);
  return id;
}
