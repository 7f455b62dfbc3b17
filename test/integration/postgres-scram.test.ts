/**
 * Agent login to the Postgres gateway with SCRAM-SHA-256 against the per-token verifiers: a real
 * PostgreSQL 15, the real gateway in-process, psql, node-postgres and a raw frontend.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Client } from 'pg';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { errorFields, RawPgClient, startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { addRunToken, revokeRunTokens } from '../../gateway/store/identities';
import { ScramClient } from '../../gateway/core/scram';
import * as wire from '../../gateway/postgres/wire';
import type { SessionDetail } from '../../gateway/common/api-types';

let pg: PostgresServer;
let gw: TestGateway;
let token = '';

before(async () => {
  pg = await startPostgres();
  const up = { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } };
  gw = await startTestGateway({
    env: { APP_PW: pg.app.password },
    connections: [
      { name: 'db', protocol: 'postgres', upstream: up, identities: ['claude', 'gone'] },
      { name: 'db-pw', protocol: 'postgres', upstream: up, identities: ['claude'], options: { clientAuth: 'password' } },
      { name: 'db-md5', protocol: 'postgres', upstream: up, identities: ['claude'], options: { clientAuth: 'md5' } },
      { name: 'db-other', protocol: 'postgres', upstream: up, identities: ['someone-else'] },
    ],
  });
  token = gw.addIdentity('claude');
});

after(async () => {
  await gw?.close();
  await pg?.stop();
});

function client(conn: string, password: string, user = 'claude'): Client {
  const a = gw.address(conn);
  return new Client({ host: a.host, port: a.port, user, password, database: 'app' });
}

async function newestSession(conn: string): Promise<SessionDetail> {
  await gw.flush();
  const s = gw.sessions().filter((x) => x.connection === conn).sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1));
  assert.ok(s.length > 0, `no session on ${conn}`);
  return gw.show(s[0].id);
}

function authOf(s: SessionDetail): unknown {
  return (s.meta as Record<string, unknown>).clientAuth;
}

function failedReasons(): string[] {
  return gw
    .findings()
    .filter((f) => f.kind === 'failed-login')
    .map((f) => String((f.detail as { reason?: string } | null)?.reason));
}

test('the gateway offers SCRAM-SHA-256 only (never -PLUS), and a raw client logs in with it and checks the server signature', async () => {
  const a = gw.address('db');
  const raw = await RawPgClient.connect(a.host, a.port);
  raw.send(wire.startupMessage({ user: 'claude', database: 'app' }));
  const req = await raw.next();
  assert.equal(req.type, 'R');
  assert.equal(req.body.readInt32BE(0), 10, 'AuthenticationSASL');
  assert.deepEqual(req.body.toString('utf8', 4).split('\0').filter(Boolean), ['SCRAM-SHA-256']);
  raw.close();

  const c = await RawPgClient.login(a.host, a.port, 'claude', token);
  assert.equal(c.authMethod, 'scram-sha-256');
  c.close();
  assert.equal(authOf(await newestSession('db')), 'scram-sha-256');
});

test('psql and node-postgres log in with SCRAM and run queries', async () => {
  const a = gw.address('db');
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      'psql',
      ['-X', '-A', '-t', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', 'select 40 + 2'],
      { env: { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' } },
      (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)),
    );
  });
  assert.equal(out.trim(), '42');
  assert.equal(authOf(await newestSession('db')), 'scram-sha-256');
  const c = client('db', token);
  await c.connect();
  assert.equal((await c.query('select 7 as n')).rows[0].n, 7);
  await c.end();
  const s = await newestSession('db');
  assert.equal(authOf(s), 'scram-sha-256');
  assert.equal(s.run, null);
  assert.deepEqual(gw.grepDataDir(token), [], 'the token never reaches the gateway with SCRAM');
});

test('a wrong token fails with 28P01 and a recorded failed attempt; a not-allowed identity gets 28000', async () => {
  await assert.rejects(client('db', 'flt_wrong-token').connect(), (e: { code?: string }) => e.code === '28P01');
  await assert.rejects(client('db-other', token).connect(), (e: { code?: string }) => e.code === '28000');
  // a raw client sees FATAL right after its proof
  const a = gw.address('db');
  const raw = await RawPgClient.connect(a.host, a.port);
  raw.send(wire.startupMessage({ user: 'claude', database: 'app' }));
  await raw.next();
  const scram = new ScramClient('flt_wrong');
  raw.send(wire.saslInitialResponse('SCRAM-SHA-256', scram.first()));
  const cont = await raw.next();
  assert.equal(cont.body.readInt32BE(0), 11);
  raw.send(wire.saslResponse(scram.final(cont.body.toString('utf8', 4))));
  const err = await raw.next();
  assert.equal(err.type, 'E');
  assert.equal(errorFields(err).S, 'FATAL');
  assert.equal(errorFields(err).C, '28P01');
  assert.ok(await raw.waitClosed());
  await gw.flush();
  const reasons = failedReasons();
  assert.ok(reasons.filter((r) => r === 'bad-credential').length >= 2, reasons.join(','));
  assert.ok(reasons.includes('not-allowed'));
});

test('a run token authenticates with SCRAM and its session carries the run; once revoked it fails with 28P01', async () => {
  const runToken = addRunToken(gw.gateway.db, 'claude', 'run-scram-1');
  const c = client('db', runToken);
  await c.connect();
  await c.query('select 1');
  await c.end();
  const s = await newestSession('db');
  assert.equal(s.run, 'run-scram-1');
  assert.equal(authOf(s), 'scram-sha-256');
  // the identity's own token still works alongside, without a run
  const own = client('db', token);
  await own.connect();
  await own.end();
  assert.equal((await newestSession('db')).run, null);

  revokeRunTokens(gw.gateway.db, 'run-scram-1');
  await assert.rejects(client('db', runToken).connect(), (e: { code?: string }) => e.code === '28P01');
  await gw.flush();
  assert.ok(failedReasons().includes('revoked'));
});

test('a revoked identity fails with 28P01', async () => {
  const t = gw.addIdentity('gone');
  const c = client('db', t, 'gone');
  await c.connect();
  await c.end();
  gw.revokeIdentity('gone');
  await assert.rejects(client('db', t, 'gone').connect(), (e: { code?: string }) => e.code === '28P01');
});

test('clientAuth password keeps cleartext; clientAuth md5 is refused with a log line and SCRAM is used', async () => {
  const a = gw.address('db-pw');
  const raw = await RawPgClient.login(a.host, a.port, 'claude', token);
  assert.equal(raw.authMethod, 'password');
  raw.close();
  const c = client('db-pw', token);
  await c.connect();
  await c.end();
  assert.equal(authOf(await newestSession('db-pw')), 'password');
  await assert.rejects(client('db-pw', 'flt_wrong').connect(), (e: { code?: string }) => e.code === '28P01');

  assert.ok(gw.logs.some((l) => /db-md5: clientAuth md5 needs a password-equivalent/.test(l)), gw.logs.join('\n'));
  const m = gw.address('db-md5');
  const raw2 = await RawPgClient.login(m.host, m.port, 'claude', token);
  assert.equal(raw2.authMethod, 'scram-sha-256');
  raw2.close();
});
