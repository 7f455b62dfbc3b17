/**
 * Secrets in Postgres columns: values in result columns named like a secret (password, api_key),
 * bind parameters and literals that land in such columns (INSERT, UPDATE, WHERE), role passwords
 * (CREATE/ALTER ROLE … PASSWORD) and COPY data with a password column are masked whole before
 * anything is written, and each sighting is a finding. The values planted here match no text
 * rule: only the column they belong to says they are secret. Real PostgreSQL, psql, node-postgres.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { grepDir, startTestGateway, type TestGateway } from '../helpers/gateway';
import { RawPgClient, startPostgres, type PostgresServer } from '../helpers/postgres-server';
import * as wire from '../../gateway/postgres/wire';
import { ensureGatewayKey } from '../../gateway/store/chain';
import { openDb } from '../../gateway/store/db';
import { exportBundle, exportJsonl } from '../../gateway/bundle';

const S = {
  paramPw: 'Xq7-plain-pw-91',
  paramKey: 'Lm4-plain-key-27',
  litPw: 'hunter2-not-a-pattern',
  litKey: 'Rt9-literal-key-33',
  updPw: 'Wv3-update-pw-64',
  updLit: 'Pz8-update-lit-12',
  rolePw: 'Cj5-role-pw-77',
  alterPw: 'Gd6-alter-pw-40',
  copyPw: 'Bs1-copy-pw-86',
  execPw: 'Ky2-exec-pw-19',
};

let pg: PostgresServer;
let gw: TestGateway;
let token = '';
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-pgmask-'));

before(async () => {
  pg = await startPostgres();
  pg.psql('ALTER ROLE app CREATEROLE;');
  const up = { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } };
  gw = await startTestGateway({
    env: { APP_PW: pg.app.password },
    connections: [
      { name: 'db', protocol: 'postgres', upstream: up, identities: ['claude'] },
      { name: 'db-live', protocol: 'postgres', upstream: up, identities: ['claude'], mask: 'live' },
    ],
  });
  token = gw.addIdentity('claude');
});

after(async () => {
  await gw?.close();
  await pg?.stop();
  fs.rmSync(outDir, { recursive: true, force: true });
});

function client(conn: string): Client {
  const a = gw.address(conn);
  return new Client({ host: a.host, port: a.port, user: 'claude', password: token, database: 'app' });
}

function psql(conn: string, script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const a = gw.address(conn);
  return new Promise((resolve) => {
    const child = execFile(
      'psql',
      ['-X', '-A', '-v', 'ON_ERROR_STOP=1', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-f', '-'],
      { env: { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' }, timeout: 30000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(script);
  });
}

/** The fingerprint the gateway gives a value (`[MASKED:kind:fp]`). */
function fpOf(value: string): string {
  return /:([0-9a-f]+)\]$/.exec(gw.gateway.masker.placeholder('x', value))?.[1] ?? '';
}

test('an Execute without Describe (no RowDescription) still has its secret columns masked by the select list', async () => {
  const secret = 'Jn8-no-describe-31';
  pg.psql(`CREATE TABLE creds (login text, secret text); ALTER TABLE creds OWNER TO app; INSERT INTO creds VALUES ('ops', '${secret}');`, 'app');
  const a = gw.address('db');
  const raw = await RawPgClient.login(a.host, a.port, 'claude', token);
  try {
    const parse = Buffer.concat([wire.cstr(''), wire.cstr('SELECT login, secret AS s FROM creds'), Buffer.from([0, 0])]);
    const bind = Buffer.concat([wire.cstr(''), wire.cstr(''), Buffer.from([0, 0, 0, 0, 0, 0])]);
    const exec = Buffer.concat([wire.cstr(''), Buffer.from([0, 0, 0, 0])]);
    raw.send(Buffer.concat([wire.message('P', parse), wire.message('B', bind), wire.message('E', exec), wire.message('S', Buffer.alloc(0))]));
    const frames = await raw.until('Z');
    assert.deepEqual(frames.map((f) => f.type).join(''), '12DCZ');
    assert.ok(frames[2].body.includes(Buffer.from(secret)), 'mask: record leaves the traffic untouched');
  } finally {
    raw.close();
  }
  await gw.flush();
  assert.deepEqual(gw.grepDataDir(secret), []);
  assert.ok(gw.findings().some((f) => f.fp === fpOf(secret) && f.direction === 'upstream→client'));
});

test('an INSERT without a column list is masked once the table was seen: created through the gateway, or read with SELECT *', async () => {
  const v = { bound: 'Qe2-positional-pw-71', literal: 'Tf5-positional-lit-08', later: 'Ua6-after-select-44', copied: 'Vb7-copy-nolist-62' };
  pg.psql('CREATE TABLE legacy (id int, token text); ALTER TABLE legacy OWNER TO app;', 'app');
  const c = client('db');
  await c.connect();
  try {
    await c.query('CREATE TABLE vault (id int, owner text, secret text)');
    await c.query('INSERT INTO vault VALUES ($1, $2, $3)', [1, 'a', v.bound]);
    await c.query(`INSERT INTO vault VALUES (2, 'b', '${v.literal}'), (3, 'c', NULL)`);
    await c.query('SELECT * FROM legacy');
    await c.query(`INSERT INTO legacy VALUES (1, '${v.later}')`);
  } finally {
    await c.end();
  }
  const out = await psql('db', `COPY vault FROM STDIN;\n4\td\t${v.copied}\n\\.\nCOPY vault TO STDOUT;\n`);
  assert.equal(out.code, 0, out.stderr);
  assert.ok(out.stdout.includes(v.copied));
  await gw.flush();
  for (const x of Object.values(v)) {
    assert.deepEqual(gw.grepDataDir(x), [], `${x} is in no file of the data dir`);
    assert.ok(gw.findings().some((f) => f.fp === fpOf(x) && f.direction === 'client→upstream'), `a finding for ${x}`);
  }
});

test('a server error quoting a secret value is recorded with the value masked', async () => {
  const lit = 'Zk1-not-an-int-55';
  const bound = 'Yh4-not-an-int-23';
  const c = client('db');
  await c.connect();
  try {
    await c.query('CREATE TABLE pins (owner text, password int)');
    await assert.rejects(c.query(`INSERT INTO pins(owner, password) VALUES ('x', '${lit}')`), /invalid input syntax for type integer/);
    await assert.rejects(c.query('INSERT INTO pins(owner, password) VALUES ($1, $2)', ['x', bound]), /invalid input syntax for type integer/);
  } finally {
    await c.end();
  }
  await gw.flush();
  const errors = gw.sessions().flatMap((s) => gw.show(s.id).commands).filter((cmd) => cmd.status === 'error').map((cmd) => cmd.error ?? '');
  assert.ok(errors.some((e) => /invalid input syntax for type integer: "\[MASKED:password:[0-9a-f]+\]"/.test(e)), errors.join('\n'));
  for (const v of [lit, bound]) assert.deepEqual(gw.grepDataDir(v), [], `${v} is in no file of the data dir`);
});

test('secrets under secret-named columns, in bind parameters, literals, role passwords and COPY data are masked and reported', async () => {
  const c = client('db');
  await c.connect();
  await c.query('CREATE TABLE users (id serial PRIMARY KEY, name text, password text, api_key text)');
  await c.query('INSERT INTO users(name, password, api_key) VALUES ($1, $2, $3)', ['alice', S.paramPw, S.paramKey]);
  const sel1 = await c.query('SELECT name, password, api_key FROM users ORDER BY id');
  assert.equal(sel1.rows[0].password, S.paramPw, 'mask: record leaves the traffic untouched');
  await c.query('UPDATE users SET password = $1 WHERE name = $2', [S.updPw, 'alice']);
  await c.end();

  const script = [
    `INSERT INTO users(name, password, api_key) VALUES ('bob', '${S.litPw}', '${S.litKey}');`,
    `UPDATE users SET api_key = '${S.updLit}' WHERE name = 'bob';`,
    `SELECT count(*) AS n FROM users WHERE password = '${S.litPw}';`,
    `CREATE ROLE flt_probe LOGIN PASSWORD '${S.rolePw}';`,
    `ALTER USER flt_probe WITH PASSWORD '${S.alterPw}';`,
    `COPY users (name, password) FROM STDIN;`,
    `carol\t${S.copyPw}`,
    `\\.`,
    `PREPARE ins(text, text) AS INSERT INTO users(name, password) VALUES ($1, $2);`,
    `EXECUTE ins('dave', '${S.execPw}');`,
    `SELECT name, password, api_key FROM users ORDER BY id;`,
    `COPY users (name, password) TO STDOUT WITH (FORMAT csv, HEADER);`,
  ].join('\n');
  const out = await psql('db', script + '\n');
  assert.equal(out.code, 0, out.stderr);
  for (const v of [S.updPw, S.litPw, S.updLit, S.copyPw, S.execPw]) assert.ok(out.stdout.includes(v), `psql printed ${v}`);

  // live masking: the agent itself gets the masked value of a secret column
  const live = client('db-live');
  await live.connect();
  const r = await live.query('SELECT name, password FROM users WHERE name = $1', ['bob']);
  assert.match(String(r.rows[0].password), /^\[MASKED:password:[0-9a-f]+\]$/);
  assert.equal(r.rows[0].name, 'bob');
  const aliased = await live.query('SELECT password AS x, length(name) AS n FROM users WHERE name = $1', ['alice']);
  assert.match(String(aliased.rows[0].x), /^\[MASKED:password:[0-9a-f]+\]$/, 'an alias does not hide the column it reads');
  assert.equal(aliased.rows[0].n, 5);
  await live.end();

  await gw.flush();
  const findings = gw.findings().filter((f) => f.category === 'secret');
  const seen = (v: string, dir: string): boolean => findings.some((f) => f.fp === fpOf(v) && f.direction === dir);
  for (const v of [S.paramPw, S.paramKey, S.updPw, S.litPw, S.litKey, S.updLit, S.rolePw, S.alterPw, S.copyPw, S.execPw]) {
    assert.ok(seen(v, 'client→upstream'), `a client→upstream finding for ${v}: ${JSON.stringify(findings.map((f) => [f.kind, f.fp, f.direction]))}`);
  }
  for (const v of [S.paramPw, S.paramKey, S.updPw, S.litPw, S.updLit, S.copyPw, S.execPw]) assert.ok(seen(v, 'upstream→client'), `an upstream→client finding for ${v}`);
  const kinds = new Set(findings.map((f) => f.kind));
  assert.ok(kinds.has('password') && kinds.has('secret-field'), [...kinds].join(','));
  assert.ok(findings.some((f) => f.maskedLive && f.direction === 'upstream→client'), 'the live session reports its masked result');

  // the reviewer still reads the statement, with the secret replaced in place
  const sessions = gw.sessions().map((s) => s.id);
  const texts = sessions.flatMap((id) => gw.show(id).commands.map((cmd) => cmd.text));
  const insert = texts.find((t) => t.startsWith(`INSERT INTO users(name, password, api_key) VALUES ('bob'`));
  assert.ok(insert, texts.join('\n'));
  assert.match(insert, /VALUES \('bob', '\[MASKED:password:[0-9a-f]+\]', '\[MASKED:secret-field:[0-9a-f]+\]'\)/);
  assert.ok(texts.some((t) => /^CREATE ROLE flt_probe LOGIN PASSWORD '\[MASKED:password:[0-9a-f]+\]';?$/.test(t)), texts.join('\n'));

  await gw.close();
  const db = openDb(gw.dataDir);
  const bundle = path.join(outDir, 'pg.flightlog');
  const jsonl = path.join(outDir, 'pg.jsonl');
  try {
    await exportBundle(db, { sessionIds: sessions, out: bundle, key: ensureGatewayKey(gw.dataDir) });
    await exportJsonl(db, sessions, jsonl);
  } finally {
    db.close();
  }
  for (const v of Object.values(S)) {
    assert.deepEqual(gw.grepDataDir(v), [], `${v} is in no file of the data dir (db, wal) and no log line`);
    assert.deepEqual(grepDir(outDir, v), [], `${v} is in neither the bundle nor the JSONL export`);
  }
});
