/**
 * A guardrail `hold` waits for a human, through the real gateway: real psql and node-postgres
 * against a real PostgreSQL, real ssh against a real sshd, fetch against a node HTTP upstream.
 * The held command is listed (masked) by the control API and `flightlog pending`; approving it
 * (CLI or API) lets exactly that command run, denying or the rule's timeout refuses it in the
 * protocol's own way, and every decision is a finding and an event in the session's hash chain.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import WebSocket from 'ws';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { askpassEnv, clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http-upstreams';
import { startLlmFixture, type LlmFixture } from '../helpers/llm-fixture';
import { tempDir } from '../helpers/tmp';
import { captureCli, execClient, type Ran } from '../helpers/cli';
import { listEvents } from '../../gateway/store/queries';
import type { FindingView, LiveMessage, PendingApproval } from '../../gateway/common/api-types';

const MODEL_KEY = 'sk-ant-api03-MODELKEY' + 'q8Wm3Lp9Vt4Rz8Kw1Yb6Nc3Hd5Fg0Js'.repeat(2);

const RULES = [
  { name: 'hold-delete', match: { protocol: ['postgres'], sql: { statement: ['delete'] } }, action: 'hold', reason: 'deleting rows needs a human' },
  { name: 'hold-update', match: { protocol: ['postgres'], sql: { statement: ['update'] } }, action: 'hold', timeout: '2s' },
  { name: 'hold-touch', match: { shell: { program: 'touch' } }, action: 'hold' },
  { name: 'hold-api-delete', match: { http: { method: 'DELETE', path: '/api/*' } }, action: 'hold' },
];

const exec = execClient;

async function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; out: string; err: string }> {
  const r = await captureCli(args, { env: { ...env } });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** Polls until check() returns a value; fails with `what` after the deadline. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('guardrail holds wait for a human', { timeout: 180_000 }, () => {
  let pg: PostgresServer;
  let sshd: Sshd;
  let http: HttpUpstream;
  let fx: LlmFixture;
  let gw: TestGateway;
  let token: string;
  let work: string;
  let api: { url: string; token: string };

  before(async () => {
    work = tempDir('flightlog-approvals-');
    [pg, sshd, http, fx] = await Promise.all([
      startPostgres(),
      startSshd(),
      startHttpUpstream(),
      startLlmFixture({ apiKey: MODEL_KEY, script: { text: 'Removing row 10.', tool: { name: 'run_sql', input: { sql: 'DELETE FROM keep_me WHERE id = 10' } } } }),
    ]);
    gw = await startTestGateway({
      env: { APP_PW: pg.app.password, MODEL_KEY },
      connections: [
        { name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['claude'] },
        { name: 'web', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ['claude'] },
        { name: 'api', protocol: 'http', upstream: { url: http.url }, identities: ['claude'] },
        { name: 'model', protocol: 'http', llm: 'anthropic', upstream: { url: fx.url, headers: { 'x-api-key': { env: 'MODEL_KEY' } } }, identities: ['claude'] },
      ],
      guardrails: RULES,
    });
    token = gw.addIdentity('claude');
    const control = JSON.parse(fs.readFileSync(path.join(gw.dataDir, 'control.json'), 'utf8')) as { url: string };
    api = { url: control.url, token: fs.readFileSync(path.join(gw.dataDir, 'control-token'), 'utf8').trim() };
    pg.psql('CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1), (2), (3), (4); ALTER TABLE keep_me OWNER TO app; ANALYZE keep_me;', 'app');
  });

  after(async () => {
    await gw?.close();
    if (gw) fs.rmSync(gw.dataDir, { recursive: true, force: true });
    await Promise.all([pg?.stop(), sshd?.stop(), http?.close(), fx?.close()]);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const psql = (sql: string): Promise<Ran> => {
    const a = gw.address('db');
    return exec('psql', ['-X', '-A', '-t', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', sql], { PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' });
  };
  const pgClient = async (): Promise<Client> => {
    const a = gw.address('db');
    const c = new Client({ host: a.host, port: a.port, user: 'claude', password: token, database: 'app' });
    await c.connect();
    return c;
  };
  const ids = (): string => pg.psql('SELECT string_agg(id::text, \',\' ORDER BY id) FROM keep_me', 'app').trim();
  const control = async (method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(api.url + route, {
      method,
      headers: { authorization: `Bearer ${api.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  };
  const pendingFor = (rule: string): Promise<PendingApproval> =>
    waitFor(`a pending ${rule} approval`, async () => ((await control('GET', '/api/approvals')).json as PendingApproval[]).find((a) => a.rule === rule));
  const findingsOf = async (rule: string): Promise<FindingView[]> => {
    await gw.flush();
    return gw.findings().filter((f) => f.category === 'guardrail' && f.kind === rule);
  };
  const approvalEvents = async (sessionId: string): Promise<Array<Record<string, unknown>>> => {
    await gw.flush();
    return listEvents(gw.gateway.db, sessionId).events.filter((e) => e.kind === 'approval').map((e) => e.data as Record<string, unknown>);
  };

  it('psql: a held DELETE waits (row still there, other sessions go on), is approved with `flightlog approve`, then lands', async () => {
    const held = psql('DELETE FROM keep_me WHERE id = 1');
    const a = await pendingFor('hold-delete');
    assert.match(a.id, /^apr_[a-z2-7]{10}$/);
    assert.equal(a.commandText, 'DELETE FROM keep_me WHERE id = 1');
    assert.equal(a.identity, 'claude');
    assert.equal(a.connection, 'db');
    assert.equal(a.protocol, 'postgres');
    assert.equal(a.reason, 'deleting rows needs a human');
    assert.deepEqual(a.tables, ['keep_me']);
    // the gateway's own EXPLAIN (read-only, rolled back): the planner expects the one row with id = 1
    assert.deepEqual(a.estimate, { rows: 1, node: 'Delete (Seq Scan)' });
    assert.equal(ids(), '1,2,3,4', 'nothing reached the server while pending (EXPLAIN did not run the DELETE)');
    const other = await psql('SELECT count(*) FROM keep_me');
    assert.equal(other.code, 0, other.stderr);
    assert.equal(other.stdout.trim(), '4', 'another session is not held up');

    const listed = await cli(['pending', '--data-dir', gw.dataDir]);
    assert.equal(listed.code, 0, listed.err);
    assert.match(listed.out, new RegExp(`${a.id}\\s+hold-delete\\s+claude@db`));
    assert.match(listed.out, /tables: keep_me {2}estimate: ~1 row \(Delete \(Seq Scan\)\)/);
    const asJson = JSON.parse((await cli(['pending', '--json', '--data-dir', gw.dataDir])).out) as PendingApproval[];
    assert.ok(asJson.some((x) => x.id === a.id));

    const ok = await cli(['approve', a.id, '--reason', 'checked with the team', '--data-dir', gw.dataDir], { ...process.env, USER: 'alice' });
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.err, new RegExp(`approved ${a.id} as alice`));
    const r = await held;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ids(), '2,3,4', 'the approved DELETE ran');

    const again = await cli(['deny', a.id, '--data-dir', gw.dataDir]);
    assert.equal(again.code, 1);
    assert.match(again.err, /already decided/);

    const [f] = await findingsOf('hold-delete');
    const d = f.detail as Record<string, unknown>;
    assert.equal(d.outcome, 'approved');
    assert.equal(d.decidedBy, 'alice');
    assert.equal(d.action, 'hold');
    assert.equal(d.commandSha256, a.commandSha256);
    const cmd = gw.show(a.sessionId).commands.find((c) => c.id === f.commandId)!;
    assert.equal(cmd.text, 'DELETE FROM keep_me WHERE id = 1');
    assert.equal(cmd.status, 'ok');
    const [ev] = await approvalEvents(a.sessionId);
    assert.deepEqual(ev, { id: a.id, rule: 'hold-delete', decision: 'approve', by: 'alice', commandSha256: a.commandSha256, rulesVersion: a.rulesVersion });
  });

  it('node-postgres (extended protocol): a denied DELETE gets 42501 naming the approver, the row stays and the connection goes on', async () => {
    const c = await pgClient();
    try {
      const held = c.query('DELETE FROM keep_me WHERE id = $1', [2]).then(
        () => null,
        (e: Error & { code?: string }) => e,
      );
      const a = await pendingFor('hold-delete');
      assert.equal((await control('POST', `/api/approvals/${a.id}`, { decision: 'maybe' })).status, 400);
      assert.equal((await control('POST', `/api/approvals/${a.id}`, '{not json')).status, 400);
      assert.equal((await control('POST', '/api/approvals/apr_aaaaaaaaaa', { decision: 'deny' })).status, 404);
      const denied = await control('POST', `/api/approvals/${a.id}`, { decision: 'deny', reason: 'not on a Friday' });
      assert.equal(denied.status, 200);
      assert.deepEqual(denied.json, { id: a.id, decision: 'deny', by: 'control-api' });
      assert.equal((await control('POST', `/api/approvals/${a.id}`, { decision: 'approve' })).status, 409);
      const err = await held;
      assert.ok(err, 'the DELETE failed');
      assert.equal(err.code, '42501');
      assert.equal(err.message, 'flightlog: blocked by guardrail "hold-delete": denied by control-api (not on a Friday)');
      assert.equal(ids(), '2,3,4', 'the row is still there');
      const after = await c.query('SELECT count(*)::int AS n FROM keep_me WHERE id = $1', [2]);
      assert.equal(after.rows[0].n, 1, 'the same connection still works');
      const f = (await findingsOf('hold-delete')).find((x) => (x.detail as Record<string, unknown>).outcome === 'denied')!;
      assert.equal((f.detail as Record<string, unknown>).decidedBy, 'control-api');
      assert.deepEqual((await approvalEvents(a.sessionId)).map((e) => [e.decision, e.by]), [['deny', 'control-api']]);
    } finally {
      await c.end();
    }
  });

  it('psql: with no answer within the rule\'s timeout (2s) the UPDATE is refused by itself', async () => {
    const r = await psql('UPDATE keep_me SET id = 30 WHERE id = 3');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERROR: {2}flightlog: blocked by guardrail "hold-update": timed out waiting for approval/);
    assert.equal(ids(), '2,3,4');
    assert.deepEqual((await control('GET', '/api/approvals')).json, []);
    const [f] = await findingsOf('hold-update');
    assert.equal((f.detail as Record<string, unknown>).decidedBy, 'timeout');
    assert.equal((f.detail as Record<string, unknown>).outcome, 'denied');
  });

  it('pgbench pipeline (extended protocol): statements before the held one run, the rest wait; the pending text is masked', async () => {
    const script = path.join(work, 'pipeline.sql');
    fs.writeFileSync(script, `\\startpipeline\nINSERT INTO keep_me VALUES (50);\nDELETE FROM keep_me WHERE id = 50 AND '${token}' <> '';\nINSERT INTO keep_me VALUES (51);\n\\endpipeline\n`);
    const a = gw.address('db');
    const bench = exec('pgbench', ['-n', '-M', 'extended', '-t', '1', '-f', script, '-h', a.host, '-p', String(a.port), '-U', 'claude', 'app'], { PGPASSWORD: token });
    const p = await pendingFor('hold-delete');
    assert.ok(!p.commandText.includes(token), `the token is masked: ${p.commandText}`);
    // one implicit transaction until the pipeline's Sync: the gateway's record shows what went upstream
    const texts = async () => {
      await gw.flush();
      return gw.show(p.sessionId).commands.map((c) => c.text);
    };
    await waitFor('the INSERT before the held DELETE to go upstream', async () => ((await texts()).some((t) => t.startsWith('INSERT INTO keep_me VALUES (50)')) ? true : undefined));
    assert.ok(!(await texts()).some((t) => t.includes('(51)')), 'the INSERT after it waits');
    assert.equal((await control('POST', `/api/approvals/${p.id}`, { decision: 'approve' })).status, 200);
    const r = await bench;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ids(), '2,3,4,51');
    pg.psql('DELETE FROM keep_me WHERE id = 51', 'app');
  });

  it('ssh exec: a held command runs once approved, exits 126 once denied; the listed text is masked', async () => {
    const a = gw.address('web');
    const approvedFile = path.join(work, 'approved');
    const deniedFile = path.join(work, 'denied');
    const ssh = (line: string) => run('ssh', [...clientOptions(a.port), '-p', String(a.port), `claude@${a.host}`, line], { env: askpassEnv(work, token), timeoutMs: 60_000 });

    const first = ssh(`touch ${approvedFile} # ${token}`);
    const p1 = await pendingFor('hold-touch');
    assert.equal(p1.protocol, 'ssh');
    assert.ok(!p1.commandText.includes(token), 'the gateway token is masked in the pending list');
    assert.ok(p1.commandText.startsWith(`touch ${approvedFile}`));
    assert.ok(!fs.existsSync(approvedFile), 'not run while pending');
    assert.equal((await cli(['approve', p1.id, '--data-dir', gw.dataDir])).code, 0);
    const r1 = await first;
    assert.equal(r1.code, 0, r1.stderr);
    assert.ok(fs.existsSync(approvedFile), 'the approved exec ran');

    const second = ssh(`touch ${deniedFile}`);
    const p2 = await pendingFor('hold-touch');
    const no = await cli(['deny', p2.id, '--reason', 'no', '--data-dir', gw.dataDir], { ...process.env, USER: 'bob' });
    assert.equal(no.code, 0, no.err);
    const r2 = await second;
    assert.equal(r2.code, 126);
    assert.match(r2.stderr, /flightlog: blocked by guardrail "hold-touch": denied by bob \(no\)/);
    assert.ok(!fs.existsSync(deniedFile));
    const outcomes = (await findingsOf('hold-touch')).map((f) => (f.detail as Record<string, unknown>).outcome);
    assert.deepEqual(outcomes.sort(), ['approved', 'denied']);
    assert.deepEqual(gw.grepDataDir(token), [], 'the token is nowhere in the data dir or logs');
  });

  it('HTTP: a held DELETE is forwarded once approved, answered 403 JSON once denied; the live feed tells both', async () => {
    const a = gw.address('api');
    const feed = new WebSocket(`${api.url.replace('http', 'ws')}/api/live`, ['flightlog.v1', `bearer.${api.token}`], { origin: api.url });
    const live: LiveMessage[] = [];
    feed.on('message', (m: Buffer) => live.push(JSON.parse(m.toString('utf8')) as LiveMessage));
    await new Promise((r, j) => feed.once('open', r).once('error', j));
    const before = http.seen.length;
    const send = () => fetch(`http://${a.host}:${a.port}/api/users/7`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    const first = send();
    const p1 = await pendingFor('hold-api-delete');
    assert.equal(p1.commandText, 'DELETE /api/users/7');
    assert.equal(http.seen.length, before, 'not forwarded while pending');
    assert.equal((await control('POST', `/api/approvals/${p1.id}`, { decision: 'approve' })).status, 200);
    const r1 = await first;
    assert.notEqual(r1.status, 403);
    await r1.arrayBuffer();
    assert.equal(http.seen.at(-1)?.method, 'DELETE', 'the approved request reached the upstream');

    const second = send();
    const p2 = await pendingFor('hold-api-delete');
    await control('POST', `/api/approvals/${p2.id}`, { decision: 'deny' });
    const r2 = await second;
    assert.equal(r2.status, 403);
    const body = (await r2.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'blocked_by_policy');
    assert.equal(body.error.message, 'flightlog: blocked by guardrail "hold-api-delete": denied by control-api');
    assert.equal(http.seen.filter((s) => s.method === 'DELETE').length, 1);
    const about = (id: string) => waitFor(`live messages about ${id}`, () => {
      const m = live.filter((x) => x.type === 'approval' && x.id === id).map((x) => (x.type === 'approval' ? `${x.state}:${x.by ?? ''}` : ''));
      return m.length === 2 ? m : undefined;
    });
    assert.deepEqual(await about(p1.id), ['pending:', 'approved:control-api']);
    assert.deepEqual(await about(p2.id), ['pending:', 'denied:control-api']);
    feed.close();
  });

  it('a client that hangs up cancels its pending approval', async () => {
    const a = gw.address('db');
    const child = spawn('psql', ['-X', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', 'DELETE FROM keep_me WHERE id = 4'], {
      env: { ...process.env, PGPASSWORD: token },
      stdio: 'ignore',
    });
    const exited = new Promise((r) => child.once('exit', r));
    await pendingFor('hold-delete');
    // killed, as an agent interrupted mid-command: the socket closes without a Terminate
    child.kill('SIGKILL');
    await exited;
    await waitFor('the pending list to empty', async () => (((await control('GET', '/api/approvals')).json as PendingApproval[]).length === 0 ? true : undefined));
    assert.equal(ids(), '2,3,4');
  });

  it('SQL holds without an estimate say why: bind parameters, a missing table', async () => {
    const c = await pgClient();
    try {
      const held = c.query('DELETE FROM keep_me WHERE id = $1', [3]).catch((err: Error) => err);
      const a = await pendingFor('hold-delete');
      assert.deepEqual(a.tables, ['keep_me']);
      assert.equal(a.estimate, null);
      assert.match(a.estimateError ?? '', /bind parameters/);
      assert.equal((await control('POST', `/api/approvals/${a.id}`, { decision: 'deny' })).status, 200);
      assert.ok((await held) instanceof Error);
    } finally {
      await c.end();
    }
    const missing = psql('DELETE FROM no_such_table');
    const b = await pendingFor('hold-delete');
    assert.deepEqual(b.tables, ['no_such_table']);
    assert.equal(b.estimate, null);
    assert.match(b.estimateError ?? '', /relation "no_such_table" does not exist/);
    assert.equal((await control('POST', `/api/approvals/${b.id}`, { decision: 'deny' })).status, 200);
    assert.notEqual((await missing).code, 0);
    // a statement with a secret literal: the server's error text could quote it, so only its code is shown
    const planted = 'pl4nted-Secret-' + 'Zq81xWv';
    const withSecret = psql(`DELETE FROM missing_users WHERE password = '${planted}'`);
    const c2 = await pendingFor('hold-delete');
    assert.equal(c2.estimate, null);
    assert.equal(c2.estimateError, 'EXPLAIN failed (SQLSTATE 42P01)');
    const listedJson = JSON.stringify((await control('GET', '/api/approvals')).json);
    assert.ok(!listedJson.includes(planted), 'no raw secret in the pending list');
    assert.equal((await control('POST', `/api/approvals/${c2.id}`, { decision: 'deny' })).status, 200);
    assert.notEqual((await withSecret).code, 0);
    assert.equal(ids(), '2,3,4');
  });

  it('approve for the run: later holds by the same rule in that run pass on their own, recorded as approved for the run; other sessions still ask', async () => {
    pg.psql('INSERT INTO keep_me VALUES (10), (11), (12), (13)', 'app');
    const started = await control('POST', '/api/runs', { identity: 'claude', argv: ['agent'] });
    assert.equal(started.status, 201);
    const run = started.json as { runId: string; token: string };
    const a = gw.address('db');
    const inRun = (sql: string): Promise<Ran> =>
      exec('psql', ['-X', '-A', '-t', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', sql], { PGPASSWORD: run.token, PGCONNECT_TIMEOUT: '10' });
    try {
      // the agent asks the model first (a secret planted in the prompt); its tool call is the DELETE
      const m = gw.address('model');
      const asked = await fetch(`http://${m.host}:${m.port}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': run.token, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: `remove row 10, password ${pg.app.password}` }] }),
      });
      assert.equal(asked.status, 200);
      await asked.text();
      await gw.flush();
      const first = inRun('DELETE FROM keep_me WHERE id = 10');
      const p = await pendingFor('hold-delete');
      assert.equal(p.runId, run.runId);
      assert.ok(p.causedBy, 'the hold names the model reply that asked for it');
      assert.match(p.causedBy.text, /^claude-sonnet-4-5: .*remove row 10/);
      assert.ok(!p.causedBy.text.includes(pg.app.password), 'the prompt is shown masked');
      const llm = gw.show(p.causedBy.sessionId).commands.find((c) => c.id === p.causedBy!.commandId);
      assert.equal(llm?.kind, 'llm', 'causedBy points at the recorded model call');
      const listed = await cli(['pending', '--data-dir', gw.dataDir]);
      assert.match(listed.out, /asked by the model reply to: "claude-sonnet-4-5: .*remove row 10/);
      assert.ok(!listed.out.includes(pg.app.password));
      const noRun = await control('POST', `/api/approvals/${p.id}`, { decision: 'deny', scope: 'run' });
      assert.equal(noRun.status, 400, 'scope run is for approvals only');
      const ok = await cli(['approve', p.id, '--for-run', '--data-dir', gw.dataDir], { ...process.env, USER: 'alice' });
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.err, /for the rest of the run/);
      assert.equal((await first).code, 0);

      const second = await inRun('DELETE FROM keep_me WHERE id = 11');
      assert.equal(second.code, 0, second.stderr);
      assert.equal(ids(), '2,3,4,12,13', 'the second DELETE of the run ran without asking');
      const decided = (await findingsOf('hold-delete')).map((f) => (f.detail as Record<string, unknown>).decidedBy);
      assert.ok(decided.includes('alice (for the run)'), `recorded as approved for the run: ${JSON.stringify(decided)}`);

      // outside the run the rule still asks
      const outside = psql('DELETE FROM keep_me WHERE id = 12');
      const q = await pendingFor('hold-delete');
      assert.equal(q.runId, null);
      assert.equal(q.causedBy, null, 'no model call of this identity asked for it');
      assert.equal((await control('POST', `/api/approvals/${q.id}`, { decision: 'deny' })).status, 200);
      assert.notEqual((await outside).code, 0);

      assert.equal(ids(), '2,3,4,12,13');
    } finally {
      await control('POST', `/api/runs/${run.runId}/end`, { exitCode: 0 });
    }
  });

  it('flightlog pending/approve with no gateway running: exit 1 with one clear line', async () => {
    const empty = tempDir('flightlog-approvals-nogw-');
    try {
      for (const args of [['pending'], ['approve', 'apr_aaaaaaaaaa']]) {
        const r = await cli([...args, '--data-dir', empty]);
        assert.equal(r.code, 1, args.join(' '));
        assert.equal(r.err.trim().split('\n').length, 1);
        assert.match(r.err, /no gateway is running/);
      }
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
