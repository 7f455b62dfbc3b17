/**
 * Client compatibility: each real client runs against PostgreSQL directly and through the
 * gateway in the same test, and what the client saw (output, exit code, errors) must match.
 * Clients: psql, pgbench, pg_dump/pg_restore, psycopg2, psycopg 3, node-postgres, openssl, and a
 * raw frontend for the bytes no client library exposes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { errorFields, RawPgClient, startPostgres, type PostgresServer } from '../helpers/postgres-server';
import type { SessionDetail } from '../../gateway/common/api-types';
import * as wire from '../../gateway/postgres/wire';

const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const PG_MODULE = path.dirname(require.resolve('pg/package.json'));

let pg: PostgresServer;
let gw: TestGateway;
let token = '';
let tmp = '';
let plainProxy: net.Server | null = null;
/** the gateway's connections into the proxy, to play a server that vanishes without a word */
const proxied = new Set<net.Socket>();

interface Target {
  name: 'direct' | 'gateway';
  host: string;
  port: number;
  user: string;
  password: string;
}

function targets(): [Target, Target] {
  const a = gw.address('db');
  return [
    { name: 'direct', host: pg.host, port: pg.port, user: pg.app.user, password: pg.app.password },
    { name: 'gateway', host: a.host, port: a.port, user: 'claude', password: token },
  ];
}

function pgEnv(t: Target, database = 'app', extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PGHOST: t.host, PGPORT: String(t.port), PGUSER: t.user, PGPASSWORD: t.password, PGDATABASE: database,
    PGSSLMODE: 'prefer', PGCONNECT_TIMEOUT: '10', PGAPPNAME: 'compat', ...extra,
  };
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a client to completion (killed after timeoutMs); never rejects. */
function runClient(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer; cwd?: string; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd ?? tmp, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => { stderr += `\n[killed after ${opts.timeoutMs ?? 30000} ms]`; child.kill('SIGKILL'); }, opts.timeoutMs ?? 30000);
    child.on('error', (err) => { stderr += String(err); });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What differs between targets and is not the client's business: ports. */
function normalize(s: string): string {
  return s.replace(/port \d+/g, 'port N').replace(/:\d{4,5}\b/g, ':N');
}

async function sessionsSince(before: Set<string>): Promise<SessionDetail[]> {
  await gw.flush();
  return gw.sessions().filter((s) => s.connection === 'db' && !before.has(s.id)).map((s) => gw.show(s.id));
}

function sessionIds(): Set<string> {
  return new Set(gw.sessions().map((s) => s.id));
}

async function waitFor(check: () => boolean | Promise<boolean>, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail('condition not met in time');
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-compat-'));
  pg = await startPostgres({ ssl: true });
  pg.psql(['app_test', 't_direct', 't_gw'].map((d) => `CREATE DATABASE ${d} OWNER app;`).join('\n'));
  // a server that answers SSLRequest with 'N' (ssl off), in front of the same PostgreSQL
  plainProxy = net.createServer((c) => {
    c.once('data', (first) => {
      const isSsl = first.length >= 8 && first.readInt32BE(4) === 80877103;
      const u = net.connect(pg.port, pg.host);
      proxied.add(c);
      c.on('close', () => { proxied.delete(c); u.destroy(); });
      c.pipe(u).pipe(c);
      c.on('error', () => u.destroy());
      u.on('error', () => c.destroy());
      if (isSsl) {
        c.write('N');
        if (first.length > 8) u.write(first.subarray(8));
      } else u.write(first);
    });
  });
  await new Promise<void>((r) => plainProxy?.listen(0, '127.0.0.1', r));
  const proxyPort = (plainProxy.address() as net.AddressInfo).port;
  const up = { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } };
  gw = await startTestGateway({
    env: { APP_PW: pg.app.password },
    connections: [
      { name: 'db', protocol: 'postgres', upstream: { ...up, databases: ['app', 'app_test', 't_gw', 'gone'] }, identities: ['claude'] },
      { name: 'db-default', protocol: 'postgres', upstream: up, identities: ['claude'] },
      { name: 'db-plain', protocol: 'postgres', upstream: { ...up, port: proxyPort }, identities: ['claude'] },
      { name: 'db-notls', protocol: 'postgres', upstream: { ...up, tls: 'disable' }, identities: ['claude'] },
    ],
  });
  token = gw.addIdentity('claude');
});

after(async () => {
  await gw?.close();
  await new Promise<void>((r) => (plainProxy ? plainProxy.close(() => r()) : r()));
  await pg?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------ psql

const PSQL_SCRIPT = `\\set n 3
SELECT :n * 2 AS doubled;
CREATE TABLE compat_psql (id int PRIMARY KEY, note text);
INSERT INTO compat_psql SELECT g, 'row ' || g FROM generate_series(1, :n) g;
SELECT * FROM compat_no_such_table;
INSERT INTO compat_psql VALUES (1, 'dup');
\\copy compat_psql TO 'out.csv' WITH (FORMAT csv)
\\copy compat_psql FROM 'in.csv' WITH (FORMAT csv)
SELECT count(*), sum(id) FROM compat_psql;
BEGIN;
SELECT 1/0;
SELECT 1;
ROLLBACK;
\\echo :ROW_COUNT :SQLSTATE
\\set ON_ERROR_STOP 1
DROP TABLE compat_psql;
SELECT 'after drop';
SELECT * FROM compat_psql;
SELECT 'not reached';
`;

test('psql: a script with \\set, errors and \\copy prints the same and exits the same', async () => {
  const seen: Array<Ran & { out: string }> = [];
  for (const t of targets()) {
    const dir = fs.mkdtempSync(path.join(tmp, `psql-${t.name}-`));
    fs.writeFileSync(path.join(dir, 'script.sql'), PSQL_SCRIPT);
    fs.writeFileSync(path.join(dir, 'in.csv'), '10,ten\n11,"eleven, with comma"\n');
    const r = await runClient('psql', ['-X', '-f', 'script.sql'], { env: pgEnv(t), cwd: dir });
    seen.push({ ...r, out: fs.readFileSync(path.join(dir, 'out.csv'), 'utf8') });
  }
  const [direct, gateway] = seen;
  assert.equal(direct.code, 3, `direct psql: ${direct.stderr}`);
  assert.match(direct.stdout, /\b5 \|\s+27\b/);
  assert.equal(gateway.code, direct.code, gateway.stderr);
  assert.equal(gateway.stdout, direct.stdout);
  assert.equal(normalize(gateway.stderr), normalize(direct.stderr));
  assert.equal(gateway.out, direct.out);
});

test('psql: a refused connection and a failing -c give the same message and exit code', async () => {
  const results: Ran[] = [];
  for (const t of targets()) {
    results.push(await runClient('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', 'select 1 as one', '-c', 'select nope'], { env: pgEnv(t) }));
  }
  assert.equal(results[0].code, 1);
  assert.deepEqual([results[1].code, results[1].stdout, results[1].stderr], [results[0].code, results[0].stdout, results[0].stderr]);
});

// ------------------------------------------------------------------------------ databases

test('a database outside the connection\'s list is refused as PostgreSQL refuses one that does not exist; listed ones are honoured', async () => {
  const [direct, gateway] = targets();
  const q = ['-X', '-A', '-t', '-c', 'select current_database()'];
  const missing = await runClient('psql', q, { env: pgEnv(direct, 'no_such_db') });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /FATAL: {2}database "no_such_db" does not exist/);
  const refused = await runClient('psql', q, { env: pgEnv(gateway, 'postgres') });
  assert.equal(refused.code, missing.code);
  assert.match(refused.stderr, /FATAL: {2}database "postgres" does not exist/);
  assert.match(refused.stderr, /allows only: app, app_test, t_gw, gone/);
  // one attempt, as direct: libpq (sslmode prefer) retries without TLS only on errors before AuthenticationOk
  const withoutDetail = (text: string): string => normalize(text).split('\n').filter((l) => !l.startsWith('DETAIL:')).join('\n');
  assert.equal(withoutDetail(refused.stderr).replace('"postgres"', '"no_such_db"'), withoutDetail(missing.stderr));
  const listed = await runClient('psql', q, { env: pgEnv(gateway, 'app_test') });
  assert.equal(listed.stdout.trim(), 'app_test', listed.stderr);
  // listed but missing upstream: the server's own refusal, exactly as a direct client gets it
  const gone = await Promise.all([direct, gateway].map((t) => runClient('psql', q, { env: pgEnv(t, 'gone') })));
  assert.equal(gone[0].code, 2);
  assert.match(gone[0].stderr, /FATAL: {2}database "gone" does not exist/);
  assert.deepEqual([gone[1].code, normalize(gone[1].stderr)], [gone[0].code, normalize(gone[0].stderr)]);
  // no dbname: libpq sends the user name, and the connection's default applies
  const env = pgEnv(gateway);
  delete env.PGDATABASE;
  const dflt = await runClient('psql', q, { env });
  assert.equal(dflt.stdout.trim(), 'app', dflt.stderr);
  // with only `database:` configured, that one database is the list
  const a = gw.address('db-default');
  const single = await runClient('psql', q, { env: pgEnv({ ...gateway, port: a.port }, 'app_test') });
  assert.equal(single.code, 2);
  assert.match(single.stderr, /database "app_test" does not exist[\s\S]*allows only: app\b/);
});

// ------------------------------------------------------------------------------ pgbench

test('pgbench: init, then simple, extended and prepared runs succeed with the same transaction counts', async () => {
  const [direct, gateway] = targets();
  const initD = await runClient('pgbench', ['-i', '-s', '1', '-q'], { env: pgEnv(direct, 'app'), timeoutMs: 60000 });
  const initG = await runClient('pgbench', ['-i', '-s', '1', '-q'], { env: pgEnv(gateway, 'app_test'), timeoutMs: 60000 });
  assert.equal(initD.code, 0, initD.stderr);
  assert.equal(initG.code, initD.code, initG.stderr);
  assert.match(initG.stderr, /done in/);
  assert.equal(pg.psql('select count(*) from pgbench_accounts', 'app_test').trim(), '100000');
  const before = sessionIds();
  const processed = (out: string): string => /number of transactions actually processed: (\d+\/\d+)/.exec(out)?.[1] ?? `none in: ${out}`;
  for (const mode of ['simple', 'extended', 'prepared']) {
    const args = ['-n', '-M', mode, '-c', '2', '-t', '15'];
    const d = await runClient('pgbench', args, { env: pgEnv(direct, 'app'), timeoutMs: 60000 });
    const g = await runClient('pgbench', args, { env: pgEnv(gateway, 'app'), timeoutMs: 60000 });
    assert.equal(d.code, 0, `${mode} direct: ${d.stderr}`);
    assert.equal(g.code, d.code, `${mode} gateway: ${g.stderr}`);
    assert.equal(processed(g.stdout), processed(d.stdout), mode);
    assert.equal(processed(g.stdout), '30/30');
  }
  // the recording counts what an UPDATE touched (from its tag: no rows come back)
  const updates = (await sessionsSince(before)).flatMap((x) => x.commands).filter((c) => /^UPDATE pgbench_accounts/i.test(c.text));
  assert.equal(updates.length, 90);
  for (const u of updates) assert.deepEqual([(u.result as Record<string, unknown>).tag, (u.result as Record<string, unknown>).rowCount], ['UPDATE 1', 1]);
});

// ------------------------------------------------------------------------------ pg_dump / pg_restore

test('pg_dump -Fc and pg_dump/pg_restore -j 2 with a directory archive: same dump, same restored data', async () => {
  const [direct, gateway] = targets();
  const tables = ['-t', 'pgbench_*'];
  const sqlOf: string[] = [];
  for (const t of [direct, gateway]) {
    const file = path.join(tmp, `dump-${t.name}.fc`);
    const d = await runClient('pg_dump', ['-Fc', ...tables, '-f', file], { env: pgEnv(t, 'app'), timeoutMs: 60000 });
    assert.equal(d.code, 0, `pg_dump ${t.name}: ${d.stderr}`);
    const r = await runClient('pg_restore', ['-f', '-', file], { timeoutMs: 60000 });
    assert.equal(r.code, 0, r.stderr);
    // pg_dump 15.14+ guards the script with a random \restrict key per run
    sqlOf.push(r.stdout.replace(/^\\(un)?restrict \S+$/gm, '\\$1restrict KEY'));
  }
  assert.ok(sqlOf[0].includes('CREATE TABLE public.pgbench_accounts'));
  assert.equal(sqlOf[1], sqlOf[0]);

  const checksum = "select string_agg(md5(x::text), '' order by 1) from (select md5(string_agg(a::text, ',' order by aid)) x from pgbench_accounts a union all select md5(string_agg(b::text, ',' order by bid)) from pgbench_branches b) s";
  const source = pg.psql(checksum, 'app');
  const outcome: Array<[number | null, number | null, string]> = [];
  for (const [t, db] of [[direct, 't_direct'], [gateway, 't_gw']] as const) {
    const dir = path.join(tmp, `dump-${t.name}.dir`);
    const d = await runClient('pg_dump', ['-Fd', '-j', '2', ...tables, '-f', dir], { env: pgEnv(t, 'app'), timeoutMs: 60000 });
    const r = await runClient('pg_restore', ['-j', '2', '--no-owner', '-d', db, dir], { env: pgEnv(t, db), timeoutMs: 60000 });
    outcome.push([d.code, r.code, pg.psql(checksum, db)]);
    assert.equal(d.code, 0, `pg_dump -j ${t.name}: ${d.stderr}`);
    assert.equal(r.code, 0, `pg_restore -j ${t.name}: ${r.stderr}`);
  }
  assert.deepEqual(outcome[1], outcome[0]);
  assert.equal(outcome[0][2], source);
});

// ------------------------------------------------------------------------------ psycopg2 / psycopg 3

const PSYCOPG2 = `
import io, json, select, psycopg2
out = {}
conn = psycopg2.connect('')
cur = conn.cursor()
cur.execute("create temp table t (id int, v text)")
cur.execute("insert into t select g, 'v' || g from generate_series(1, 5) g")
out['rowcount'] = cur.rowcount
cur.execute("select %s::int + 1, %s::text", (41, "x'y"))
out['select'] = cur.fetchall()
named = conn.cursor('srv')
named.itersize = 2
named.execute('select g from generate_series(1, 7) g')
out['named'] = [r[0] for r in named]
named.close()
cur.copy_expert('copy t from stdin', io.StringIO('10\\tten\\n11\\televen\\n'))
o = io.StringIO()
cur.copy_expert('copy (select * from t order by id) to stdout', o)
out['copy'] = o.getvalue()
try:
    cur.execute('select * from compat_nope')
except psycopg2.Error as e:
    out['error'] = [e.pgcode, e.pgerror.splitlines()[0]]
conn.rollback()
lo = conn.lobject(0, 'wb')
lo.write(b'hello large object')
oid = lo.oid
lo.close()
lo = conn.lobject(oid, 'rb')
out['lo'] = lo.read().decode()
lo.seek(6)
out['lo_tail'] = lo.read().decode()
lo.close()
conn.lobject(oid).unlink()
conn.commit()
listener = psycopg2.connect('')
listener.autocommit = True
listener.cursor().execute('listen compat_chan')
sender = psycopg2.connect('')
sender.autocommit = True
sender.cursor().execute("notify compat_chan, 'hi there'")
while not listener.notifies:
    if select.select([listener], [], [], 10) == ([], [], []):
        break
    listener.poll()
out['notify'] = [[n.channel, n.payload] for n in listener.notifies]
for c in (conn, listener, sender):
    c.close()
print(json.dumps(out, sort_keys=True))
`;

const PSYCOPG3 = `
import json, psycopg
out = {}
with psycopg.connect('') as conn:
    out['select'] = conn.execute('select %s::int + 1', (41,)).fetchone()[0]
    out['prepared'] = [conn.execute('select %s::text || %s', ('p', str(i)), prepare=True).fetchone()[0] for i in range(3)]
    with conn.cursor(name='srv') as c:
        c.itersize = 2
        c.execute('select g from generate_series(1, 5) g')
        out['named'] = [r[0] for r in c]
    conn.execute('create temp table t3 (id int, v text)')
    cur = conn.cursor()
    with cur.copy('copy t3 from stdin') as cp:
        cp.write_row((1, 'a'))
        cp.write_row((2, 'b\\tc'))
    with cur.copy('copy (select * from t3 order by id) to stdout') as cp:
        out['copy'] = [list(r) for r in cp.rows()]
    with conn.pipeline():
        c1 = conn.execute('select 1')
        c2 = conn.execute('insert into t3 values (3, %s)', ('c',))
        c3 = conn.execute('select count(*) from t3')
    out['pipeline'] = [c1.fetchone()[0], c2.rowcount, c3.fetchone()[0]]
    try:
        with conn.pipeline():
            conn.execute('select 1/0')
            conn.execute('select 2')
    except psycopg.Error as e:
        out['pipeline_error'] = [type(e).__name__, e.sqlstate]
    conn.rollback()
    try:
        conn.execute('select * from compat_nope')
    except psycopg.Error as e:
        out['error'] = [e.sqlstate, str(e).splitlines()[0]]
with psycopg.connect('', autocommit=True) as listener, psycopg.connect('', autocommit=True) as sender:
    listener.execute('listen compat_chan3')
    sender.execute("notify compat_chan3, 'p3'")
    gen = listener.notifies()
    for n in gen:
        out['notify'] = [n.channel, n.payload]
        gen.close()
print(json.dumps(out, sort_keys=True))
`;

for (const [label, script] of [['psycopg2', PSYCOPG2], ['psycopg 3', PSYCOPG3]] as const) {
  test(`${label}: cursors, COPY, errors, LISTEN/NOTIFY${label === 'psycopg2' ? ', large objects' : ', pipeline mode'} see the same results`, async () => {
    const file = path.join(tmp, `compat_${label.replace(/\W/g, '')}.py`);
    fs.writeFileSync(file, script);
    const before = sessionIds();
    const [d, g] = [await runClient(PYTHON, [file], { env: pgEnv(targets()[0]) }), await runClient(PYTHON, [file], { env: pgEnv(targets()[1]) })];
    assert.equal(d.code, 0, `direct: ${d.stderr}`);
    assert.equal(g.code, d.code, `gateway: ${g.stderr}`);
    assert.deepEqual(JSON.parse(g.stdout), JSON.parse(d.stdout));
    // psycopg 3 warns about an aborted pipeline only if it notices the abort while leaving the
    // block, which depends on when the server's answer arrived: timing, not behaviour
    const warnings = (r: Ran): string => r.stderr.replace(/^error ignored terminating <psycopg\.Pipeline .*: pipeline aborted\n/gm, '');
    assert.equal(warnings(g), warnings(d));
    if (label !== 'psycopg2') return;
    // what the recording says about the same run
    const cmds = (await sessionsSince(before)).flatMap((s) => s.commands);
    const insert = cmds.find((c) => c.text.startsWith('insert into t select'));
    assert.equal((insert?.result as Record<string, unknown> | null)?.rowCount, 5);
    assert.equal((insert?.result as Record<string, unknown> | null)?.tag, 'INSERT 0 5');
    const copyIn = cmds.find((c) => c.text === 'copy t from stdin');
    assert.equal((copyIn?.result as Record<string, unknown> | null)?.rowCount, 2);
    const fcalls = cmds.filter((c) => c.text.startsWith('-- function call')).map((c) => c.text);
    for (const name of ['lo_creat', 'lo_open', 'lowrite', 'loread', 'lo_close', 'lo_unlink']) {
      assert.ok(fcalls.some((t) => t.startsWith(`-- function call ${name} (oid `)), `${name} in ${fcalls.join(' | ')}`);
    }
  });
}

// ------------------------------------------------------------------------------ node-postgres

const NODE_PG = `
const { Client, Pool } = require(process.env.PG_MODULE);
const out = { uncaught: [] };
let onUncaught = () => undefined;
process.on('uncaughtException', (e) => { out.uncaught.push(e.code || e.message); onUncaught(); });
const cfg = {};
(async () => {
  const c = new Client(cfg);
  await c.connect();
  const a = await c.query({ name: 'add', text: 'select $1::int + $2::int as n', values: [40, 2] });
  const b = await c.query({ name: 'add', text: 'select $1::int + $2::int as n', values: [1, 2] });
  out.prepared = [a.rows[0].n, b.rows[0].n];
  out.prepError = await c.query({ name: 'bad', text: 'select compat_nope($1)', values: [1] }).then(() => null, (e) => [e.code, e.message]);
  out.afterError = (await c.query('select 7 as x')).rows[0].x;

  const pool = new Pool({ ...cfg, max: 1 });
  const poolErrors = [];
  pool.on('error', (e) => poolErrors.push([e.code, e.message]));
  const pc = await pool.connect();
  const pid = (await pc.query('select pg_backend_pid() as pid')).rows[0].pid;
  const ended = new Promise((resolve) => pc.once('end', resolve));
  pc.release();
  await c.query('select pg_terminate_backend($1)', [pid]);
  await ended;
  await new Promise((r) => setImmediate(r));
  out.poolErrors = poolErrors;
  out.poolAfter = (await pool.query('select 1 as one')).rows[0].one;
  await pool.end();

  // a client with no 'error' listener, as most scripts have, ended mid-query
  const victim = new Client(cfg);
  await victim.connect();
  const vpid = (await victim.query('select pg_backend_pid() as pid')).rows[0].pid;
  // node-postgres emits an unhandled 'error' for the lost connection (direct too), and that throw
  // also keeps its 'end' from coming: the first uncaught error is the one to wait for
  const vended = new Promise((resolve) => { onUncaught = resolve; });
  const sleeping = victim.query('select pg_sleep(30)').then(() => null, (e) => [e.code, e.message]);
  await c.query('select pg_terminate_backend($1)', [vpid]);
  out.inFlight = await sleeping;
  await vended;
  victim.connection.stream.destroy();

  const quick = new Client(cfg);
  // ended while still connecting: node-postgres settles end() and leaves connect() pending
  quick.connect().catch(() => undefined);
  out.quickEnd = await quick.end().then(() => 'ended', (e) => 'end: ' + e.message);
  const quick2 = new Client(cfg);
  await quick2.connect();
  await quick2.end();
  out.quick2 = 'ok';
  await c.end();
  await new Promise((r) => setTimeout(r, 0));
  console.log(JSON.stringify(out));
})().catch((e) => { console.log(JSON.stringify({ ...out, failed: e.message })); process.exit(1); });
`;

test('node-postgres: prepared statements, a pool after pg_terminate_backend, quick disconnects', async () => {
  const file = path.join(tmp, 'node-pg.js');
  fs.writeFileSync(file, NODE_PG);
  const results: Ran[] = [];
  // node-postgres reads PGSSLMODE=prefer as verify-full; no-verify is its spelling of prefer
  for (const t of targets()) results.push(await runClient(process.execPath, [file], { env: { ...pgEnv(t, 'app', { PGSSLMODE: 'no-verify' }), PG_MODULE } }));
  const [d, g] = results;
  assert.equal(d.code, 0, `direct: ${d.stdout} ${d.stderr}`);
  const dOut = JSON.parse(d.stdout) as Record<string, unknown>;
  assert.deepEqual(dOut.poolErrors, [['57P01', 'terminating connection due to administrator command']]);
  assert.deepEqual(dOut.inFlight, ['57P01', 'terminating connection due to administrator command']);
  assert.deepEqual(dOut.uncaught, ['Connection terminated unexpectedly']);
  assert.equal(g.code, d.code, `gateway: ${g.stdout} ${g.stderr}`);
  assert.deepEqual(JSON.parse(g.stdout), dOut);
  assert.equal(g.stderr, d.stderr);
});

// ------------------------------------------------------------------------------ raw protocol

/** Everything a server sends until it closes, after the given bytes. */
async function replyTo(host: string, port: number, bytes: Buffer): Promise<{ reply: Buffer; closed: boolean }> {
  const s = net.connect(port, host);
  const chunks: Buffer[] = [];
  s.on('data', (d) => chunks.push(d));
  s.on('error', () => undefined);
  await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  s.write(bytes);
  const closed = await new Promise<boolean>((resolve) => {
    s.once('close', () => resolve(true));
    setTimeout(() => resolve(false), 5000).unref();
  });
  s.destroy();
  return { reply: Buffer.concat(chunks), closed };
}

test('Terminate before any startup packet: the connection closes with no reply, as PostgreSQL does', async () => {
  const seen = [];
  for (const t of targets()) seen.push(await replyTo(t.host, t.port, wire.terminate()));
  assert.deepEqual(seen[0], { reply: Buffer.alloc(0), closed: true });
  assert.deepEqual(seen[1], seen[0]);
});

test('a backend the server ends: the client gets the server\'s FATAL and nothing after it', async () => {
  const frames: string[][] = [];
  for (const t of targets()) {
    const c = await RawPgClient.login(t.host, t.port, t.user, t.password);
    c.send(wire.message('Q', wire.cstr('select pg_backend_pid()')));
    const row = (await c.until('Z')).find((f) => f.type === 'D');
    const pid = row ? Number(row.body.toString('utf8', 6)) : 0;
    assert.ok(pid > 0);
    pg.psql(`select pg_terminate_backend(${pid})`);
    const got: string[] = [];
    await c.waitClosed(10000);
    for (;;) {
      const f = await c.next(100).catch(() => null);
      if (!f) break;
      got.push(`${f.type}${f.type === 'E' ? ` ${f.body.toString('latin1').replace(/\0/g, '|')}` : ''}`);
    }
    frames.push(got);
    c.close();
  }
  assert.equal(frames[0].length, 1);
  assert.match(frames[0][0], /57P01/);
  assert.deepEqual(frames[1], frames[0]);
});

test('a cancel request over TLS is answered with a clean TLS close (close_notify), as PostgreSQL does', async () => {
  const seen: Ran[] = [];
  for (const t of targets()) {
    // s_client -starttls postgres sends SSLRequest; stdin then carries the CancelRequest, and
    // OpenSSL 3 reports a close without close_notify as "unexpected eof while reading"
    const args = ['s_client', '-starttls', 'postgres', '-connect', `${t.host}:${t.port}`, '-quiet', '-ign_eof'];
    seen.push(await runClient('openssl', args, { input: wire.cancelRequest(12345, 67890), timeoutMs: 15000 }));
  }
  assert.equal(seen[0].code, 0, seen[0].stderr);
  assert.doesNotMatch(seen[0].stderr, /unexpected eof|killed after/);
  assert.equal(seen[1].code, seen[0].code, seen[1].stderr);
  assert.doesNotMatch(seen[1].stderr, /unexpected eof|killed after/);
});

test('the upstream leg uses TLS when the server offers it (prefer), falls back to plain on N, and tls: disable stays plain', async () => {
  const before = sessionIds();
  const tlsOf: Record<string, unknown> = {};
  for (const conn of ['db', 'db-plain', 'db-notls']) {
    const a = gw.address(conn);
    const c = await RawPgClient.login(a.host, a.port, 'claude', token);
    c.send(wire.message('Q', wire.cstr(`select '${conn}'`)));
    await c.until('Z');
    c.send(wire.terminate());
    await c.waitClosed();
  }
  await waitFor(async () => (await gw.flush(), gw.sessions().filter((s) => !before.has(s.id) && s.status !== 'live').length === 3));
  for (const s of gw.sessions().filter((x) => !before.has(x.id))) tlsOf[s.connection] = (gw.show(s.id).meta as Record<string, unknown>).upstreamTls;
  assert.deepEqual(tlsOf, { 'db': true, 'db-plain': false, 'db-notls': false });
});

test('a server that closes without a word: the client gets the gateway\'s one FATAL 08006', async () => {
  const a = gw.address('db-plain');
  const c = await RawPgClient.login(a.host, a.port, 'claude', token);
  assert.equal(proxied.size, 1);
  for (const u of proxied) u.destroy();
  const f = await c.next();
  assert.equal(f.type, 'E');
  const fields = errorFields(f);
  assert.deepEqual([fields.S, fields.C, fields.M], ['FATAL', '08006', 'Flightlog: upstream closed the connection']);
  assert.ok(await c.waitClosed());
  await assert.rejects(c.next(500), /connection closed/);
});

test('after every client above: the upstream password is nowhere in the store, its files or the gateway log', async () => {
  await gw.flush();
  assert.deepEqual(gw.grepDataDir(pg.app.password), []);
});
