/**
 * Postgres gateway hardening: names that are not identities get a SCRAM exchange of the same
 * shape as real ones (no enumeration by auth method), and an oversized statement message is
 * refused from its header with 54000 while large COPY streams still pass. Real PostgreSQL 15,
 * the gateway in-process, psql, node-postgres and a raw frontend.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Client } from 'pg';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { errorFields, RawPgClient, startPostgres, type Frame, type PostgresServer } from '../helpers/postgres-server';
import { ScramClient } from '../../gateway/core/scram';
import * as wire from '../../gateway/postgres/wire';

let pg: PostgresServer;
let gw: TestGateway;
let token = '';
const LIMIT = 1024 * 1024;

function connections(up: object): unknown[] {
  return [
    { name: 'db', protocol: 'postgres', upstream: up, identities: ['claude'] },
    { name: 'db-small', protocol: 'postgres', upstream: up, identities: ['claude'], options: { maxMessageBytes: LIMIT } },
  ];
}

let upstream: object;
before(async () => {
  pg = await startPostgres();
  upstream = { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } };
  gw = await startTestGateway({ env: { APP_PW: pg.app.password }, connections: connections(upstream) });
  token = gw.addIdentity('claude');
});

after(async () => {
  await gw?.close();
  await pg?.stop();
});

/** What a stranger sees of a login attempt with a wrong password, up to the server's verdict. */
interface Exchange {
  types: string[];
  authCodes: number[];
  mechanisms: string[];
  serverFirstKeys: string[];
  nonceExtra: number;
  salt: string;
  iterations: string;
  error: Record<string, string>;
  closed: boolean;
}

async function attempt(conn: string, user: string, password: string): Promise<Exchange> {
  const a = gw.address(conn);
  const raw = await RawPgClient.connect(a.host, a.port);
  const frames: Frame[] = [];
  try {
    raw.send(wire.startupMessage({ user, database: 'app' }));
    const sasl = await raw.next();
    frames.push(sasl);
    assert.equal(sasl.type, 'R', `${user}: ${sasl.type}`);
    const scram = new ScramClient(password, 'fixedClientNonce0123456789');
    raw.send(wire.saslInitialResponse('SCRAM-SHA-256', scram.first()));
    const cont = await raw.next();
    frames.push(cont);
    const serverFirst = cont.body.toString('utf8', 4);
    raw.send(wire.saslResponse(scram.final(serverFirst)));
    const err = await raw.next();
    frames.push(err);
    const attrs = new Map(serverFirst.split(',').map((p) => [p[0], p.slice(2)] as [string, string]));
    return {
      types: frames.map((f) => f.type),
      authCodes: frames.filter((f) => f.type === 'R').map((f) => f.body.readInt32BE(0)),
      mechanisms: sasl.body.toString('utf8', 4).split('\0').filter(Boolean),
      serverFirstKeys: [...attrs.keys()],
      nonceExtra: (attrs.get('r') ?? '').length - 'fixedClientNonce0123456789'.length,
      salt: attrs.get('s') ?? '',
      iterations: attrs.get('i') ?? '',
      error: err.type === 'E' ? errorFields(err) : {},
      closed: await raw.waitClosed(),
    };
  } finally {
    raw.close();
  }
}

/** The exchange with the parts that legitimately differ per name (the salt value, the name in the message) taken out. */
function shape(e: Exchange, user: string): unknown {
  return {
    ...e,
    salt: Buffer.from(e.salt, 'base64').length,
    error: { ...e.error, M: e.error.M?.replace(`"${user}"`, '"<user>"') },
  };
}

test('an unknown user name gets the same SCRAM exchange as a known one, failing at the proof with 28P01', async () => {
  const known = await attempt('db', 'claude', 'flt_wrong-token');
  const unknown = await attempt('db', 'nobody-here', 'flt_wrong-token');
  assert.deepEqual(known.mechanisms, ['SCRAM-SHA-256']);
  assert.deepEqual(known.authCodes, [10, 11]);
  assert.equal(known.error.C, '28P01');
  assert.deepEqual(shape(unknown, 'nobody-here'), shape(known, 'claude'));
  assert.equal(unknown.error.M, 'password authentication failed for user "nobody-here"');

  // the mock salt is stable per name, like a real identity's, and differs between names
  const again = await attempt('db', 'nobody-here', 'other');
  const other = await attempt('db', 'someone-else', 'other');
  assert.equal(again.salt, unknown.salt);
  assert.notEqual(other.salt, unknown.salt);
  assert.notEqual(unknown.salt, known.salt);

  // psql and node-postgres read the same error for either
  const a = gw.address('db');
  const psqlErr = (user: string) =>
    new Promise<string>((resolve) => {
      execFile('psql', ['-X', '-h', a.host, '-p', String(a.port), '-U', user, '-d', 'app', '-c', 'select 1'], {
        env: { ...process.env, PGPASSWORD: 'flt_nope', PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' },
      }, (_err, _out, stderr) => resolve(stderr.replace(user, '<user>')));
    });
  assert.equal(await psqlErr('ghost'), await psqlErr('claude'));
  for (const user of ['ghost', 'claude']) {
    const c = new Client({ host: a.host, port: a.port, user, password: 'flt_nope', database: 'app' });
    await assert.rejects(c.connect(), (e: { code?: string }) => e.code === '28P01');
  }
  // a real token still logs in, and failures are recorded with the true reason for the operator
  const ok = new Client({ host: a.host, port: a.port, user: 'claude', password: token, database: 'app' });
  await ok.connect();
  await ok.end();
  await gw.flush();
  const reasons = gw.findings().filter((f) => f.kind === 'failed-login').map((f) => (f.detail as { reason?: string } | null)?.reason);
  assert.ok(reasons.includes('unknown-identity') && reasons.includes('bad-credential'), reasons.join(','));
});

test('the mock salt of a name survives a gateway restart, as a real salt does', async () => {
  const before = await attempt('db', 'nobody-here', 'x');
  const knownBefore = await attempt('db', 'claude', 'x');
  await gw.close();
  gw = await startTestGateway({ dataDir: gw.dataDir, env: { APP_PW: pg.app.password }, connections: connections(upstream) });
  const afterRestart = await attempt('db', 'nobody-here', 'x');
  const knownAfter = await attempt('db', 'claude', 'x');
  assert.equal(afterRestart.salt, before.salt);
  assert.equal(knownAfter.salt, knownBefore.salt);
});

test('a simple Query declaring 300 MB is refused from its header with 54000 and the session ends cleanly', async () => {
  const a = gw.address('db');
  const raw = await RawPgClient.login(a.host, a.port, 'claude', token);
  try {
    const header = Buffer.alloc(5);
    header[0] = 0x51;
    header.writeInt32BE(300 * 1024 * 1024 + 4, 1);
    // only the header and a few bytes: an answer now proves nothing of the declared size was awaited
    raw.send(Buffer.concat([header, Buffer.from('SELECT ')]));
    const err = await raw.next();
    assert.equal(err.type, 'E');
    const f = errorFields(err);
    assert.equal(f.S, 'FATAL');
    assert.equal(f.C, '54000');
    assert.match(f.M, /Query of 314572800 bytes exceeds the gateway's limit of 67108864 bytes/);
    assert.ok(await raw.waitClosed(), 'the gateway closes the connection');
  } finally {
    raw.close();
  }
  await gw.flush();
  const s = gw.sessions().filter((x) => x.connection === 'db').sort((x, y) => (x.startedAt < y.startedAt ? 1 : -1))[0];
  assert.equal(s.status, 'error');
  assert.match(String(gw.show(s.id).endReason), /exceeds the gateway's limit/);
});

test('maxMessageBytes lowers the cap: node-postgres gets 54000 for a larger Parse; COPY streams far larger still pass', async () => {
  const a = gw.address('db-small');
  const c = new Client({ host: a.host, port: a.port, user: 'claude', password: token, database: 'app' });
  await c.connect();
  c.on('error', () => undefined);
  await assert.rejects(c.query(`SELECT $1::text AS v, '${'x'.repeat(LIMIT + 10)}' AS big`, ['a']), (e: { code?: string }) => e.code === '54000');
  await c.end().catch(() => undefined);

  // psql's COPY of 8 MB, and one CopyData message twice the cap from a raw client
  pg.psql('CREATE TABLE big (line text); GRANT ALL ON big TO app;', 'app');
  const rows = Array.from({ length: 8192 }, (_, i) => `${i}-${'y'.repeat(1000)}`).join('\n') + '\n';
  const out = await new Promise<{ code: number; stderr: string; stdout: string }>((resolve) => {
    const child = execFile('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', 'COPY big FROM STDIN'], {
      env: { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable' }, maxBuffer: 1 << 20,
    }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }));
    child.stdin?.end(rows);
  });
  assert.equal(out.code, 0, out.stderr);
  const raw = await RawPgClient.login(a.host, a.port, 'claude', token);
  try {
    raw.send(wire.message('Q', wire.cstr('COPY big FROM STDIN')));
    assert.equal((await raw.next()).type, 'G');
    raw.send(wire.message('d', Buffer.from(`${'z'.repeat(2 * LIMIT)}\n`)));
    raw.send(wire.message('c', Buffer.alloc(0)));
    const done = await raw.until('Z');
    assert.ok(done.some((f) => f.type === 'C' && f.body.toString().startsWith('COPY 1')), done.map((f) => f.type).join(''));
  } finally {
    raw.close();
  }
  assert.equal(pg.psql('SELECT count(*) FROM big;', 'app').trim(), '8193');
});
