/**
 * The Postgres listener end to end: a real PostgreSQL 15, the real gateway in-process, and real
 * clients (psql, pgbench, node-postgres) plus a raw frontend for exact bytes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { errorFields, RawPgClient, startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { listEvents } from '../../gateway/store/queries';
import type { SessionDetail } from '../../gateway/common/api-types';
import * as wire from '../../gateway/postgres/wire';
import { tempDir } from '../helpers/tmp';

const run = promisify(execFile);

let pg: PostgresServer;
let gw: TestGateway;
let token = '';

before(async () => {
  pg = await startPostgres({ ssl: true });
  const up = { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } };
  gw = await startTestGateway({
    env: { APP_PW: pg.app.password, MD5_PW: pg.md5User.password, PW_PW: pg.passwordUser.password },
    connections: [
      { name: 'db', protocol: 'postgres', upstream: up, identities: ['claude', 'revoked-agent'] },
      { name: 'db-tls', protocol: 'postgres', upstream: { ...up, tls: 'verify-full', ca: pg.caFile, host: '127.0.0.1' }, identities: ['claude'] },
      { name: 'db-md5', protocol: 'postgres', upstream: { ...up, user: 'app_md5', password: { env: 'MD5_PW' } }, identities: ['claude'] },
      { name: 'db-pw', protocol: 'postgres', upstream: { ...up, user: 'app_pw', password: { env: 'PW_PW' } }, identities: ['claude'] },
      { name: 'db-trust', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app_trust', database: 'app' }, identities: ['claude'] },
      { name: 'db-live', protocol: 'postgres', upstream: up, identities: ['claude'], mask: 'live' },
      { name: 'db-other', protocol: 'postgres', upstream: up, identities: ['someone-else'] },
    ],
  });
  token = gw.addIdentity('claude');
  pg.psql('CREATE TABLE users (id int primary key, name text, api_key text); ALTER TABLE users OWNER TO app;', 'app');
});

after(async () => {
  await gw?.close();
  await pg?.stop();
});

function addr(name = 'db'): { host: string; port: number } {
  return gw.address(name);
}

async function psql(sql: string, opts: { conn?: string; token?: string; sslmode?: string; input?: string; user?: string } = {}): Promise<string> {
  const a = addr(opts.conn);
  const child = execFile('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', a.host, '-p', String(a.port), '-U', opts.user ?? 'claude', '-d', 'app', '-c', sql], {
    env: { ...process.env, PGPASSWORD: opts.token ?? token, PGSSLMODE: opts.sslmode ?? 'prefer', PGCONNECT_TIMEOUT: '10' },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  else child.stdin?.end();
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => { out += d; });
  child.stderr?.on('data', (d) => { err += d; });
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  if (code !== 0) throw Object.assign(new Error(`psql failed: ${err.trim()}`), { stderr: err });
  return out;
}

function pgClient(conn = 'db', password = token): Client {
  const a = addr(conn);
  return new Client({ host: a.host, port: a.port, user: 'claude', password, database: 'app' });
}

/** The newest session on a connection, once its recording is committed. */
async function lastSession(conn = 'db'): Promise<SessionDetail> {
  await gw.flush();
  const s = gw.sessions().filter((x) => x.connection === conn);
  assert.ok(s.length > 0, `no session on ${conn}`);
  const newest = s.sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1))[0];
  return gw.show(newest.id);
}

async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail('condition not met in time');
}

test('psql over TLS: statements are recorded one command each, classified, with tables', async () => {
  const out = await psql("select 1 as one; insert into users values (1, 'ada', 'k1'); update users set name = 'Ada' where id = 1; select * from users", { sslmode: 'require' });
  assert.match(out, /1\|Ada\|k1/);
  const s = await lastSession();
  assert.equal(s.identity, 'claude');
  assert.equal((s.meta as Record<string, unknown>).clientTls, true);
  const cmds = s.commands.map((c) => [c.text, c.classification, c.targets, c.status]);
  assert.deepEqual(cmds, [
    ['select 1 as one', 'read', [], 'ok'],
    ["insert into users values (1, 'ada', 'k1')", 'write', ['users'], 'ok'],
    ["update users set name = 'Ada' where id = 1", 'write', ['users'], 'ok'],
    ['select * from users', 'read', ['users'], 'ok'],
  ]);
  const r = s.commands[3].result as Record<string, unknown>;
  assert.equal(r.rowCount, 1);
  assert.equal(r.tag, 'SELECT 1');
  // api_key names a secret: its values are recorded masked whole (the agent still saw k1)
  assert.deepEqual((r.rows as string[][]).map((row) => row.slice(0, 2)), [['1', 'Ada']]);
  assert.match(String((r.rows as string[][])[0][2]), /^\[MASKED:secret-field:[0-9a-f]+\]$/);
  assert.match(String(r.sha256), /^[0-9a-f]{64}$/);
  assert.equal(r.txStatus, 'I');
});

test('a failing statement is recorded with its error and the session goes on', async () => {
  const c = pgClient();
  await c.connect();
  await assert.rejects(c.query('select * from no_such_table'), /does not exist/);
  const ok = await c.query('select 2 as two');
  assert.equal(ok.rows[0].two, 2);
  await c.end();
  const s = await lastSession();
  const failed = s.commands.find((x) => x.text.includes('no_such_table'));
  assert.equal(failed?.status, 'error');
  assert.match(String(failed?.error), /42P01/);
  assert.equal(s.commands.at(-1)?.status, 'ok');
});

test('node-postgres extended protocol: prepared statements with text and binary parameters', async () => {
  const c = pgClient();
  await c.connect();
  for (let i = 10; i < 13; i++) {
    await c.query({ name: 'ins', text: 'insert into users (id, name, api_key) values ($1, $2, $3)', values: [i, `user${i}`, Buffer.from(`k${i}`)] });
  }
  const r = await c.query({ text: 'select id, name from users where id >= $1 order by id', values: [10] });
  assert.deepEqual(r.rows.map((x) => x.name), ['user10', 'user11', 'user12']);
  await c.end();
  const s = await lastSession();
  const ins = s.commands.filter((x) => x.text.startsWith('insert'));
  assert.equal(ins.length, 3);
  assert.equal(ins[0].classification, 'write');
  const res = ins[2].result as Record<string, unknown>;
  // the third parameter goes to api_key, a secret column: recorded masked
  assert.deepEqual((res.params as string[]).slice(0, 2), ['12', 'user12']);
  assert.match(String((res.params as string[])[2]), /^\[MASKED:secret-field:[0-9a-f]+\]$/);
  assert.equal(res.tag, 'INSERT 0 1');
  const sel = s.commands.at(-1)!;
  assert.deepEqual((sel.result as Record<string, unknown>).rows, [['10', 'user10'], ['11', 'user11'], ['12', 'user12']]);
  assert.deepEqual((sel.detail as Record<string, unknown>).params, ['10']);
});

test('COPY in and out pass through and are recorded', async () => {
  await psql('create table copied (a int, b text)');
  const rows = Array.from({ length: 500 }, (_, i) => `${i}\trow ${i}`).join('\n') + '\n';
  await psql('copy copied from stdin', { input: rows });
  const out = await psql('copy copied to stdout');
  assert.equal(out, rows);
  const s = await lastSession();
  const cmd = s.commands[0];
  const r = cmd.result as Record<string, unknown>;
  assert.equal(cmd.classification, 'read');
  assert.equal(r.copy, 'out');
  assert.equal(r.rowCount, 500);
  assert.equal(r.tag, 'COPY 500');
  assert.equal((r.rows as unknown[]).length, 100);
  const sessions = gw.sessions().filter((x) => x.connection === 'db').sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1));
  const copyIn = gw.show(sessions[1].id).commands[0];
  assert.equal(copyIn.classification, 'write');
  assert.equal((copyIn.result as Record<string, unknown>).tag, 'COPY 500');
  assert.equal((copyIn.result as Record<string, unknown>).copy, 'in');
});

test('a large result streams through; the recording keeps the head, the count and a hash', async () => {
  const c = pgClient();
  await c.connect();
  const r = await c.query('select g, md5(g::text) from generate_series(1, 200000) g');
  assert.equal(r.rowCount, 200000);
  const again = await c.query('select g, md5(g::text) from generate_series(1, 200000) g');
  assert.equal(again.rowCount, 200000);
  await c.end();
  const s = await lastSession();
  const [a, b] = s.commands.map((x) => x.result as Record<string, unknown>);
  assert.equal(a.rowCount, 200000);
  assert.equal((a.rows as unknown[]).length, 100);
  assert.equal(a.tag, 'SELECT 200000');
  assert.equal(a.sha256, b.sha256);
  const events = listEvents(gw.gateway.db, s.id, { limit: 1000 }).events;
  assert.ok(events.length < 20, `expected a few events, got ${events.length}`);
});

test('a CancelRequest reaches the right upstream backend', async () => {
  const c = pgClient();
  await c.connect();
  const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
  const slow = c.query('select pg_sleep(20)');
  await new Promise((r) => setTimeout(r, 300));
  const raw = await RawPgClient.connect(addr().host, addr().port);
  raw.send(wire.cancelRequest(processID, secretKey));
  const started = Date.now();
  await assert.rejects(slow, /canceling statement due to user request/);
  assert.ok(Date.now() - started < 5000);
  raw.close();
  await c.end();
});

test('bad, revoked and not-allowed tokens are refused with the right SQLSTATE', async () => {
  const bad = pgClient('db', 'flt_not-a-token');
  await assert.rejects(bad.connect(), (e: { code?: string }) => e.code === '28P01');
  const revokedToken = gw.addIdentity('revoked-agent');
  gw.revokeIdentity('revoked-agent');
  const a = addr();
  const rev = new Client({ host: a.host, port: a.port, user: 'revoked-agent', password: revokedToken, database: 'app' });
  await assert.rejects(rev.connect(), (e: { code?: string }) => e.code === '28P01');
  const other = pgClient('db-other');
  await assert.rejects(other.connect(), (e: { code?: string }) => e.code === '28000');
  await gw.flush();
  const failed = gw.findings().filter((f) => f.kind === 'failed-login');
  assert.ok(failed.length >= 3);
  assert.deepEqual(gw.grepDataDir('flt_not-a-token'), []);
});

test('malformed client bytes end that session with 08P01 and nothing else', async () => {
  const other = pgClient();
  await other.connect();
  const raw = await RawPgClient.login(addr().host, addr().port, 'claude', token);
  raw.send(Buffer.from([0x51, 0x00, 0x00, 0x00, 0x02, 0x41, 0x41]));
  const err = await raw.next();
  assert.equal(err.type, 'E');
  assert.equal(errorFields(err).C, '08P01');
  assert.ok(await raw.waitClosed());
  const s = await lastSession();
  assert.equal(s.status, 'error');
  assert.match(String(s.endReason), /protocol violation/);
  // garbage before login, too
  const raw2 = await RawPgClient.connect(addr().host, addr().port);
  raw2.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  assert.ok(await raw2.waitClosed());
  const r = await other.query('select 3 as three');
  assert.equal(r.rows[0].three, 3);
  await other.end();
});

test('portal suspension and pipelined extended messages are matched in order', async () => {
  const raw = await RawPgClient.login(addr().host, addr().port, 'claude', token);
  const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
  const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
  raw.send(Buffer.concat([
    wire.message('P', Buffer.concat([wire.cstr(''), wire.cstr('select g from generate_series(1, 5) g'), i16(0)])),
    wire.message('B', Buffer.concat([wire.cstr('p1'), wire.cstr(''), i16(0), i16(0), i16(0)])),
    wire.message('E', Buffer.concat([wire.cstr('p1'), i32(2)])),
    wire.message('E', Buffer.concat([wire.cstr('p1'), i32(0)])),
    wire.message('S', Buffer.alloc(0)),
    wire.message('P', Buffer.concat([wire.cstr(''), wire.cstr('select 1/0'), i16(0)])),
    wire.message('B', Buffer.concat([wire.cstr(''), wire.cstr(''), i16(0), i16(0), i16(0)])),
    wire.message('E', Buffer.concat([wire.cstr(''), i32(0)])),
    wire.message('S', Buffer.alloc(0)),
  ]));
  const first = await raw.until('Z');
  assert.deepEqual(first.map((f) => f.type).join(''), '12DDsDDDCZ');
  const second = await raw.until('Z');
  // 1/0 is folded when the unnamed statement is planned, at Bind
  assert.equal(second.map((f) => f.type).join(''), '1EZ');
  raw.send(wire.terminate());
  await raw.waitClosed();
  const s = await lastSession();
  const [a, b, c] = s.commands;
  assert.equal((a.result as Record<string, unknown>).suspended, true);
  assert.equal((a.result as Record<string, unknown>).rowCount, 2);
  assert.equal((b.result as Record<string, unknown>).rowCount, 3);
  assert.equal(c.status, 'error');
  assert.match(String(c.error), /division by zero/);
});

test('LISTEN/NOTIFY: notifications are recorded as events', async () => {
  const listener = pgClient();
  await listener.connect();
  await listener.query('listen jobs');
  const got = new Promise<string>((resolve) => listener.on('notification', (n) => resolve(n.payload ?? '')));
  await psql("notify jobs, 'build 42'");
  assert.equal(await got, 'build 42');
  await listener.end();
  await gw.flush();
  const s = gw.sessions().filter((x) => x.connection === 'db').sort((a, b) => (a.startedAt < b.startedAt ? -1 : 1));
  const listenSession = [...s].reverse().find((x) => gw.show(x.id).commands.some((c) => c.text === 'listen jobs'));
  assert.ok(listenSession);
  const events = listEvents(gw.gateway.db, listenSession.id).events.filter((e) => e.kind === 'notification');
  assert.equal(events.length, 1);
  assert.equal((events[0].data as Record<string, unknown>).payload, 'build 42');
});

test('upstream logins: md5, password, trust and TLS verify-full', async () => {
  assert.equal((await psql('select current_user', { conn: 'db-md5' })).trim(), 'app_md5');
  assert.equal((await psql('select current_user', { conn: 'db-pw' })).trim(), 'app_pw');
  assert.equal((await psql('select current_user', { conn: 'db-trust' })).trim(), 'app_trust');
  assert.equal((await psql('select ssl from pg_stat_ssl where pid = pg_backend_pid()', { conn: 'db-tls' })).trim(), 't');
  const s = await lastSession('db-tls');
  assert.equal((s.meta as Record<string, unknown>).upstreamTls, true);
});

test('pgbench (simple, extended, pipelined) runs through the gateway', async () => {
  const a = addr();
  const env = { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable' };
  await run('pgbench', ['-i', '-q', '-s', '1', '-h', a.host, '-p', String(a.port), '-U', 'claude', 'app'], { env });
  for (const mode of ['simple', 'extended', 'prepared']) {
    const { stdout } = await run('pgbench', ['-S', '-M', mode, '-T', '1', '-c', '2', '-h', a.host, '-p', String(a.port), '-U', 'claude', 'app'], { env });
    assert.match(stdout, /number of failed transactions: 0/);
  }
  const script = path.join(tempDir('flightlog-pgb-'), 'pipe.sql');
  fs.writeFileSync(script, '\\set aid random(1, 100000)\n\\startpipeline\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\nSELECT 1;\nSELECT 2;\n\\endpipeline\n');
  const { stdout } = await run('pgbench', ['-f', script, '-M', 'extended', '-t', '20', '-h', a.host, '-p', String(a.port), '-U', 'claude', 'app'], { env });
  assert.match(stdout, /number of transactions actually processed: 20\/20/);
  fs.rmSync(path.dirname(script), { recursive: true, force: true });
  const s = await lastSession();
  assert.equal(s.commands.length, 60);
  assert.ok(s.commands.every((c) => c.status === 'ok'));
  assert.deepEqual(s.commands.slice(0, 3).map((c) => (c.result as Record<string, unknown>).tag), ['SELECT 1', 'SELECT 1', 'SELECT 1']);
});

test('planted secrets in rows and bound parameters never reach the data dir', async () => {
  const registered = 'planted-Secret-' + Math.random().toString(36).slice(2, 12);
  gw.gateway.masker.addKnownSecret('test-secret', registered);
  const ghToken = 'ghp_' + 'A1b2C3d4E5'.repeat(4).slice(0, 36);
  const c = pgClient();
  await c.connect();
  await c.query('insert into users values ($1, $2, $3)', [900, registered, ghToken]);
  const r = await c.query('select name, api_key, $1::text as echo from users where id = 900', [pg.app.password]);
  // mask: record — the agent sees the real values, the recording does not
  assert.equal(r.rows[0].name, registered);
  const viaPsql = await psql(`select name || ' ' || api_key from users where id = 900`);
  assert.match(viaPsql, new RegExp(registered));
  await c.end();
  await gw.flush();
  for (const [what, needle] of Object.entries({ registered, ghToken, upstreamPassword: pg.app.password, token })) {
    assert.deepEqual(gw.grepDataDir(needle), [], `found ${what} in the data dir`);
  }
  const s = await lastSession();
  assert.match(JSON.stringify(s.commands[0].result), /MASKED/);
});

test('mask: live hands the agent masked values too', async () => {
  const out = await psql('select $$' + pg.app.password + '$$ as leaked', { conn: 'db-live' });
  assert.doesNotMatch(out, new RegExp(pg.app.password));
  assert.match(out, /MASKED/);
});

test('a client that disconnects mid-result tears down its upstream backend', async () => {
  const raw = await RawPgClient.login(addr().host, addr().port, 'claude', token);
  raw.send(wire.message('Q', wire.cstr("select g, repeat('x', 500) from generate_series(1, 5000000) g /* teardown-probe */")));
  await raw.next();
  raw.close();
  await waitFor(() => !pg.psql("select count(*) from pg_stat_activity where query like '%teardown-probe%' and pid <> pg_backend_pid()").trim().startsWith('1'), 10000);
});

test('an upstream backend that dies ends the session with the reason', async () => {
  const c = pgClient();
  await c.connect();
  c.on('error', () => undefined);
  await c.query("set application_name = 'doomed'");
  pg.psql("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'doomed'");
  await assert.rejects(c.query('select 1'));
  await waitFor(async () => (await lastSession()).status !== 'live');
  const s = await lastSession();
  assert.equal(s.status, 'error');
  assert.ok(s.endReason && s.endReason.length > 0);
  await c.end().catch(() => undefined);
});
