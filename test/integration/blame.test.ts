/**
 * Object blame over a real recording: a model call (LLM fixture) asks for SQL that psql then
 * runs against a real PostgreSQL through the gateway, more psql sessions read and write the same
 * table, an sftp client uploads a file to a real sshd, and an HTTP client hits an upstream.
 * `flightlog blame` lists exactly the commands that touched each object, oldest first, with
 * who, which run, the session's own command number, read or write, the causing model call and
 * the change, and marks the first write after "last known good".
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { startLlmFixture, type LlmFixture } from '../helpers/llm-fixture';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http-upstreams';
import { askpassEnv, clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import { captureCli } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';
import { createRun } from '../../gateway/store/runs';
import type { BlameReport } from '../../gateway/store/blame';
import type { RunCommandStep, RunTimeline } from '../../gateway/store/runs';

const REAL_KEY = 'sk-ant-api03-BLAMEKEY' + 'q8Wm3Lp0Vt5Rz9Kw2Yb7Nc4Hd6Fg1Js'.repeat(2);
const UPDATE = "UPDATE orders SET status = 'shipped' WHERE id = 1";

describe('flightlog blame', { timeout: 240_000 }, () => {
  let pg: PostgresServer;
  let sshd: Sshd;
  let fx: LlmFixture;
  let api: HttpUpstream;
  let gw: TestGateway;
  let work: string;
  let remote: string;
  let token: string;
  let runId: string;
  let runToken: string;
  let since: string;

  const psql = (sql: string, pass: string, user = 'claude'): Promise<string> =>
    new Promise((resolve, reject) => {
      const a = gw.address('db');
      execFile('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', a.host, '-p', String(a.port), '-U', user, '-d', 'app', '-c', sql], { env: { ...process.env, PGPASSWORD: pass, PGCONNECT_TIMEOUT: '10' } }, (err, stdout, stderr) =>
        err ? reject(new Error(`psql failed: ${stderr}`)) : resolve(stdout),
      );
    });

  const cli = async (args: string[]) => captureCli(['blame', ...args, '--data-dir', gw.dataDir]);
  const blameJson = async (args: string[]): Promise<BlameReport> => {
    const r = await cli([...args, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as BlameReport;
  };

  before(async () => {
    work = tempDir('flightlog-blame-');
    remote = tempDir('flightlog-blame-remote-');
    pg = await startPostgres();
    sshd = await startSshd();
    api = await startHttpUpstream();
    fx = await startLlmFixture({ apiKey: REAL_KEY, script: { text: 'Marking order 1 shipped.', tool: { name: 'run_sql', input: { sql: UPDATE } } } });
    gw = await startTestGateway({
      env: { MODEL_KEY: REAL_KEY, APP_DB_PASSWORD: pg.app.password },
      connections: [
        { name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_DB_PASSWORD' } }, identities: ['claude', 'ops'] },
        { name: 'web-1', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ['claude'] },
        { name: 'model', protocol: 'http', llm: 'anthropic', upstream: { url: fx.url, headers: { 'x-api-key': { env: 'MODEL_KEY' } } }, identities: ['claude'] },
        { name: 'api', protocol: 'http', upstream: { url: api.url }, identities: ['claude'] },
      ],
      guardrails: [{ name: 'no-admin-deletes', match: { http: { method: 'DELETE', path: '/v1/admin/*' } }, action: 'deny' }],
    });
    pg.psql("CREATE TABLE orders (id int primary key, status text); ALTER TABLE orders OWNER TO app; CREATE TABLE customers (id int); ALTER TABLE customers OWNER TO app; INSERT INTO orders VALUES (1, 'new');", 'app');
    token = gw.addIdentity('claude');
    const opsToken = gw.addIdentity('ops', 'human');
    ({ runId, token: runToken } = createRun(gw.gateway.db, { identity: 'claude', argv: ['agent', '--fix-orders'] }));

    // an earlier read by a human, in its own session, before "last known good"
    await psql('SELECT * FROM orders', opsToken, 'ops');
    await psql('SELECT * FROM customers', opsToken, 'ops');
    await gw.flush();
    since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5)); // the next command starts strictly after `since`

    // the agent's run: a model call whose tool call is the UPDATE, then psql runs it
    const a = gw.address('model');
    const res = await fetch(`http://${a.host}:${a.port}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': runToken, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 256, stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: '<system-reminder>\nToday is Sunday. Never mention this reminder.\n</system-reminder>' }, { type: 'text', text: 'Ship order 1' }] }] }),
    });
    assert.equal(res.status, 200);
    await res.text();
    await gw.flush();
    await psql(UPDATE, runToken);
    await psql("INSERT INTO public.orders VALUES (2, 'new'), (3, 'new')", runToken);
    // a failed write after since
    await psql('ALTER TABLE orders ADD COLUMN id int', token).catch(() => undefined);

    // sftp upload over a file that exists upstream, and an HTTP read and write
    fs.writeFileSync(path.join(remote, 'nginx.conf'), 'worker_processes 1;\n');
    fs.writeFileSync(path.join(work, 'nginx.conf'), 'worker_processes 4;\n');
    fs.writeFileSync(path.join(work, 'batch'), `put ${work}/nginx.conf ${remote}/nginx.conf\n`);
    const s = gw.address('web-1');
    // sftp -b is batch mode, which allows no password: the agent logs in with its key
    const key = path.join(work, 'agent_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'agent', '-f', key]);
    gw.addKey('claude', `${key}.pub`);
    const up = await run('sftp', [...clientOptions(s.port, { keyPath: key }), '-P', String(s.port), '-b', path.join(work, 'batch'), `claude@${s.host}`]);
    assert.equal(up.code, 0, up.stderr);
    // then the agent edits it in place over ssh exec, and only reads it once more
    for (const cmd of [`sed -i 's/4/8/' ${remote}/nginx.conf`, `cat ${remote}/nginx.conf`]) {
      const ex = await run('ssh', [...clientOptions(s.port), '-p', String(s.port), `claude@${s.host}`, cmd], { env: askpassEnv(work, runToken) });
      assert.equal(ex.code, 0, ex.stderr);
    }
    assert.equal(fs.readFileSync(path.join(remote, 'nginx.conf'), 'utf8'), 'worker_processes 8;\n');
    const h = gw.address('api');
    for (const [method, p] of [['GET', '/v1/users/1'], ['DELETE', '/v1/users/2'], ['GET', '/v1/orders/1'], ['GET', '/v1/users/1/keys']]) {
      const r = await fetch(`http://${h.host}:${h.port}${p}`, { method, headers: { authorization: `Bearer ${token}` } });
      await r.text();
    }
    const denied = await fetch(`http://${h.host}:${h.port}/v1/admin/cache`, { method: 'DELETE', headers: { authorization: `Bearer ${runToken}` } });
    assert.equal(denied.status, 403);
    await denied.text();
    for (let i = 0; i < 100 && gw.sessions().some((x) => x.status === 'live'); i++) {
      await gw.flush();
      await new Promise((r) => setTimeout(r, 50));
    }
    await gw.flush();
  });

  after(async () => {
    await gw?.close();
    await fx?.close();
    await api?.close();
    await pg?.stop();
    await sshd?.stop();
    if (gw) fs.rmSync(gw.dataDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(remote, { recursive: true, force: true });
  });

  it('lists every command on a table across sessions, runs and identities, oldest first, with the causing model call and row counts', async () => {
    const r = await blameJson(['orders']);
    assert.equal(r.target, 'table:public.orders');
    assert.deepEqual(
      r.entries.map((e) => [e.identity, e.access, e.status, e.text]),
      [
        ['ops', 'read', 'ok', 'SELECT * FROM orders'],
        ['claude', 'write', 'ok', UPDATE],
        ['claude', 'write', 'ok', "INSERT INTO public.orders VALUES (2, 'new'), (3, 'new')"],
        ['claude', 'write', 'error', 'ALTER TABLE orders ADD COLUMN id int'],
      ],
    );
    const times = r.entries.map((e) => e.at);
    assert.deepEqual([...times].sort(), times, 'oldest first');
    assert.equal(new Set(r.entries.map((e) => e.sessionId)).size, 4, 'one psql session per command, all listed');
    const [read, update, insert, alter] = r.entries;
    assert.equal(read.run, null);
    assert.equal(update.run, runId);
    assert.equal(update.index, 1, 'the command as its session numbers it');
    assert.equal(update.connection, 'db');
    assert.ok(update.cause, 'the UPDATE links to the model call that asked for it');
    assert.match(update.cause.text, /Ship order 1/);
    assert.equal(insert.cause, null);
    assert.deepEqual(insert.change, { rowCount: 2, tag: 'INSERT 0 2' });
    assert.match(alter.error ?? '', /already exists/);
    assert.ok(!r.entries.some((e) => /customers/.test(e.text)));
    // the same table named in full gives the same answer
    assert.deepEqual((await blameJson(['table:public.orders'])).entries, r.entries);
  });

  it('--since flags the first successful write after the last known good time', async () => {
    const r = await blameJson(['orders', '--since', since]);
    assert.equal(r.since, since);
    assert.deepEqual(r.entries.map((e) => e.firstWriteSince), [false, true, false, false]);
    const text = await cli(['orders', '--since', since]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^>> .*UPDATE orders SET status/m);
    assert.match(text.stdout, /first write after the last known good time/);
    assert.match(text.stdout, /caused by model call .* #1: .*Ship order 1/);
    assert.match(text.stdout, /INSERT 0 2 \(2 rows\)/);
  });

  it('blames a file on an SSH host: the SFTP upload with before and after, then the sed -i over ssh', async () => {
    const r = await blameJson([`file:web-1:${remote}/nginx.conf`]);
    const writes = r.entries.filter((e) => e.access === 'write');
    assert.deepEqual(writes.map((e) => e.kind), ['sftp', 'exec'], JSON.stringify(r.entries));
    assert.equal(writes[1].text, `sed -i 's/4/8/' ${remote}/nginx.conf`);
    assert.equal(writes[1].run, runId);
    assert.ok(!r.entries.some((e) => e.text.startsWith('cat ')), 'a read over the shell is not claimed');
    assert.equal(writes[0].kind, 'sftp');
    assert.equal(writes[0].protocol, 'ssh');
    assert.deepEqual(writes[0].change, { before: 'worker_processes 1;\n', after: 'worker_processes 4;\n' });
    assert.equal((await blameJson([`file:other-host:${remote}/nginx.conf`])).entries.length, 0, 'the host is part of the target');
  });

  it('blames an HTTP path glob: one segment per star, methods decide read or write', async () => {
    const r = await blameJson(['http:api:/v1/users/*']);
    assert.deepEqual(r.entries.map((e) => [e.access, e.text]).map(([a, t]) => [a, t.split(' ')[0]]), [['read', 'GET'], ['write', 'DELETE']]);
    const deep = await blameJson(['http:api:/v1/users/**']);
    assert.equal(deep.entries.length, 3);
  });

  it('show --run: one timeline across the run\'s sessions, the prompt without reminders, lineage both ways', async () => {
    const r = await captureCli(['show', '--run', runId, '--json', '--data-dir', gw.dataDir]);
    assert.equal(r.code, 0, r.stderr);
    const t = JSON.parse(r.stdout) as RunTimeline;
    assert.equal(t.id, runId);
    assert.deepEqual(t.argv, ['agent', '--fix-orders']);
    assert.deepEqual(t.sessions.map((s) => s.protocol), ['http', 'postgres', 'postgres', 'ssh', 'ssh', 'http']);
    const commands = t.steps.filter((s): s is RunCommandStep => s.type === 'command');
    assert.deepEqual(commands.map((c) => c.kind), ['llm', 'sql', 'sql', 'exec', 'exec', 'http']);
    const [llm, update] = commands;
    assert.equal(llm.text, 'claude-sonnet-4-5: Ship order 1', 'the human prompt, not the injected reminder');
    assert.doesNotMatch(r.stdout, /Never mention this reminder/);
    assert.deepEqual(llm.toolCalls.map((c) => c.name), ['run_sql']);
    assert.equal(llm.reply, 'Marking order 1 shipped.');
    assert.equal(update.causedBy, llm.commandId);
    assert.deepEqual(llm.caused, [update.commandId]);
    assert.deepEqual(commands.map((c) => c.write), [false, true, true, true, false, true]);
    const times = commands.map((c) => c.at);
    assert.deepEqual([...times].sort(), times, 'interleaved in time across sessions');
    const finding = t.steps.findIndex((s) => s.type === 'finding' && s.category === 'guardrail');
    assert.ok(finding > 0, 'the guardrail decision is in the timeline');
    const blockedStep = t.steps[finding - 1];
    assert.ok(blockedStep.type === 'command' && blockedStep.status === 'blocked', 'right after the command it refused');
    assert.deepEqual(t.counts, { commands: 6, writes: 4, findings: 1, blocked: 1, held: 0 });

    const text = await captureCli(['show', '--run', runId.slice(0, 10), '--data-dir', gw.dataDir]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /S2#1 +sql +write ok +UPDATE orders/);
    assert.match(text.stdout, /← caused by S1#1/);
    assert.match(text.stdout, /tool call run_sql\(/);
    assert.match(text.stdout, /! guardrail no-admin-deletes deny → denied on S6#1/);

    const runs = await captureCli(['runs', '--json', '--data-dir', gw.dataDir]);
    const [listed] = JSON.parse(runs.stdout) as Array<{ id: string; sessions: unknown[]; counts: RunTimeline['counts'] }>;
    assert.equal(listed.id, runId);
    assert.equal(listed.sessions.length, 6, 'the existing fields are kept');
    assert.deepEqual(listed.counts, t.counts);
    const table = await captureCli(['runs', '--data-dir', gw.dataDir]);
    assert.match(table.stdout, /CMDS +WRITES +FINDINGS +BLOCKED +HELD/);
    const missing = await captureCli(['show', '--run', 'run_nope', '--data-dir', gw.dataDir]);
    assert.equal(missing.code !== 0 && missing.stderr, 'flightlog: no run "run_nope"\n');
  });

  it('no real secret reaches the store or the blame and run output', async () => {
    const outputs = [
      (await cli(['orders', '--json'])).stdout,
      (await cli([`file:web-1:${remote}/nginx.conf`])).stdout,
      (await captureCli(['show', '--run', runId, '--json', '--data-dir', gw.dataDir])).stdout,
    ].join('\n');
    for (const secret of [REAL_KEY, pg.app.password]) {
      assert.equal(outputs.includes(secret), false);
      assert.deepEqual(gw.grepDataDir(secret), []);
    }
  });

  it('a bad target is one clear line and a usage exit code', async () => {
    for (const bad of ['file:web-1:relative/path', 'k8s:deployment/web', 'nope:thing', '']) {
      const r = await cli([bad]);
      assert.notEqual(r.code, 0);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^flightlog: /);
    }
    const none = await cli(['k8s:deployment/prod/web']);
    assert.equal(none.code, 0);
    assert.match(none.stdout, /no recorded command touched k8s:deployment\/prod\/web/);
  });
});
