/**
 * Guardrails in the data path, through the real gateway with rules from config: real psql and
 * pgbench (extended protocol) against a real PostgreSQL, real ssh against a real sshd, real curl
 * against a node HTTP upstream. A denied command never reaches the upstream, the client gets its
 * protocol's own error naming the rule, and the decision is recorded bound to the command text.
 */
import { captureCli, execClient, type Ran } from '../helpers/cli';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { askpassEnv, clientOptions, run, startSshd, type Sshd } from '../helpers/sshd';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http-upstreams';
import { exportBundle } from '../../gateway/bundle/export';
import { verifyBundle } from '../../gateway/bundle/verify';
import { validateConfig } from '../../gateway/config/load';
import { guardrailsOf } from '../../gateway/policy';
import type { FindingView } from '../../gateway/common/api-types';
import type { PolicyTestReport } from '../../gateway/cli/policy-command';
import { startLlmFixture, type LlmFixture } from '../helpers/llm-fixture';

const RULES = [
  { name: 'no-drop', match: { protocol: 'postgres', sql: { statement: ['drop', 'truncate'] } }, action: 'deny', reason: 'dropping data needs a human' },
  { name: 'no-rm-rf', match: { shell: { program: 'rm', flags: ['r', 'f'] } }, action: 'deny' },
  { name: 'no-delete-api', match: { http: { method: 'DELETE', path: '/api/*' } }, action: 'deny', reason: 'deletes go through the admin console' },
  { name: 'sql-tools', match: { llm: { tool: ['run_*'] } }, action: 'hold', reason: 'the model asked for raw SQL' },
];

const exec = execClient;

describe('guardrails through the gateway', { timeout: 180_000 }, () => {
  let pg: PostgresServer;
  let sshd: Sshd;
  let http: HttpUpstream;
  let model: LlmFixture;
  let gw: TestGateway;
  let token: string;
  let work: string;

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-guardrails-'));
    [pg, sshd, http, model] = await Promise.all([
      startPostgres(),
      startSshd(),
      startHttpUpstream(),
      startLlmFixture({ apiKey: 'sk-ant-fixture-real-key-0123456789', script: { text: 'Running it.', tool: { name: 'run_sql', input: { sql: 'DROP TABLE keep_me' } } } }),
    ]);
    gw = await startTestGateway({
      env: { APP_PW: pg.app.password, MODEL_KEY: 'sk-ant-fixture-real-key-0123456789' },
      connections: [
        { name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['claude'] },
        { name: 'web', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ['claude'] },
        { name: 'api', protocol: 'http', upstream: { url: http.url }, identities: ['claude'] },
        { name: 'model', protocol: 'http', llm: 'anthropic', upstream: { url: model.url, headers: { 'x-api-key': { env: 'MODEL_KEY' }, 'anthropic-version': '2023-06-01' } }, identities: ['claude'] },
      ],
      guardrails: RULES,
    });
    token = gw.addIdentity('claude');
    pg.psql('CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1), (2); ALTER TABLE keep_me OWNER TO app;', 'app');
  });

  after(async () => {
    await gw?.close();
    if (gw) fs.rmSync(gw.dataDir, { recursive: true, force: true });
    await Promise.all([pg?.stop(), sshd?.stop(), http?.close(), model?.close()]);
    fs.rmSync(work, { recursive: true, force: true });
  });

  const psql = (sql: string): Promise<Ran> => {
    const a = gw.address('db');
    return exec('psql', ['-X', '-A', '-t', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', sql], { PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' });
  };
  const rows = (): string => pg.psql('SELECT count(*) FROM keep_me', 'app').trim();
  const guardrailFindings = async (rule: string): Promise<FindingView[]> => {
    await gw.flush();
    return gw.findings().filter((f) => f.category === 'guardrail' && f.kind === rule);
  };

  it('psql: DROP and TRUNCATE are refused with 42501 naming the rule, in any spelling, and never reach the server', async () => {
    for (const sql of ['DROP TABLE keep_me', 'select 1; DrOp/* x */TABLE "keep_me"', 'TRUNCATE keep_me', 'WITH x AS (SELECT 1) SELECT 1; truncate table only keep_me']) {
      const r = await psql(sql);
      assert.equal(r.code, 1, sql);
      assert.match(r.stderr, /ERROR: {2}flightlog: blocked by guardrail "no-drop": dropping data needs a human/, sql);
      assert.equal(rows(), '2', `${sql}: the table is untouched upstream`);
    }
    const ok = await psql('SELECT count(*) FROM keep_me');
    assert.equal(ok.code, 0);
    assert.equal(ok.stdout.trim(), '2');
  });

  it('pgbench -M extended: a script that drops is refused at Parse, the session survives it', async () => {
    const script = path.join(work, 'drop.sql');
    fs.writeFileSync(script, 'SELECT 1;\nDROP TABLE keep_me;\n');
    const a = gw.address('db');
    const r = await exec('pgbench', ['-n', '-M', 'extended', '-t', '1', '-f', script, '-h', a.host, '-p', String(a.port), '-U', 'claude', 'app'], { PGPASSWORD: token });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /blocked by guardrail "no-drop"/);
    assert.equal(rows(), '2');
  });

  it('ssh exec: rm -rf in any wrapper exits 126 with the rule on stderr, and the files stay', async () => {
    const dir = path.join(os.tmpdir(), `flightlog-guardrails-victim-${process.pid}`);
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    try {
      const a = gw.address('web');
      for (const line of [`rm -rf ${dir}`, `sudo rm -fr ${dir}`, `bash -c 'cd / && rm -r -f ${dir}'`, `echo ${dir} | xargs rm --recursive --force`]) {
        const r = await run('ssh', [...clientOptions(a.port), '-p', String(a.port), `claude@${a.host}`, line], { env: askpassEnv(work, token) });
        assert.equal(r.code, 126, line);
        assert.match(r.stderr, /flightlog: blocked by guardrail "no-rm-rf"/, line);
        assert.ok(fs.existsSync(path.join(dir, 'sub')), `${line}: the directory is still there`);
      }
      const ok = await run('ssh', [...clientOptions(a.port), '-p', String(a.port), `claude@${a.host}`, `ls ${dir}`], { env: askpassEnv(work, token) });
      assert.equal(ok.code, 0);
      assert.match(ok.stdout, /sub/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('curl: DELETE on /api/* gets 403 JSON naming the rule and is not forwarded; GET passes', async () => {
    const a = gw.address('api');
    const before = http.seen.length;
    const del = await exec('curl', ['-s', '-w', '\n%{http_code}', '-X', 'DELETE', '-H', `Authorization: Bearer ${token}`, `http://${a.host}:${a.port}/api/users/7`]);
    const [body, status] = del.stdout.trim().split('\n');
    assert.equal(status, '403');
    const json = JSON.parse(body) as { error: { code: string; message: string } };
    assert.equal(json.error.code, 'blocked_by_policy');
    assert.equal(json.error.message, 'flightlog: blocked by guardrail "no-delete-api": deletes go through the admin console');
    assert.equal(http.seen.length, before, 'the upstream never saw the DELETE');
    const get = await exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${token}`, `http://${a.host}:${a.port}/api/users/7`]);
    assert.notEqual(get.stdout, '403');
    assert.equal(http.seen.at(-1)?.method, 'GET', 'the GET was forwarded');
    assert.equal(http.seen.at(-1)?.url, '/api/users/7');
  });

  it('model API: a tool call a rule names is left in place and recorded as a rule hit on the model call', async () => {
    const a = gw.address('model');
    const res = await fetch(`http://${a.host}:${a.port}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': token, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'tidy the db' }] }),
    });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /"name":"run_sql"/, 'the agent still receives the tool call');
    const [hit] = await guardrailFindings('sql-tools');
    assert.ok(hit, 'a sql-tools finding');
    const d = hit.detail as Record<string, unknown>;
    assert.equal(d.tool, 'run_sql');
    assert.equal(d.action, 'hold');
    assert.equal(d.outcome, 'recorded');
    const llm = gw.sessions().flatMap((s) => gw.show(s.id).commands).find((c) => c.id === hit.commandId)!;
    assert.equal(llm.kind, 'llm');
    // what the tool call causes is decided where it lands: the DROP it asks for is refused by psql
    const r = await psql('DROP TABLE keep_me');
    assert.match(r.stderr, /no-drop/);
  });

  it('every decision is a guardrail finding bound to the command text and the rule set, and exports as a verified bundle', async () => {
    const version = guardrailsOf(validateConfig({ guardrails: RULES }, 'x.yaml')).version;
    const drops = await guardrailFindings('no-drop');
    assert.ok(drops.length >= 5, `no-drop findings: ${drops.length}`);
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    for (const f of [...drops, ...(await guardrailFindings('no-rm-rf')), ...(await guardrailFindings('no-delete-api'))]) {
      const d = f.detail as Record<string, unknown>;
      assert.equal(d.action, 'deny');
      assert.equal(d.decidedBy, 'rule');
      assert.equal(d.rulesVersion, version);
      assert.match(String(d.commandSha256), /^[0-9a-f]{64}$/);
    }
    const sessions = gw.sessions();
    const blocked = sessions.flatMap((s) => gw.show(s.id).commands.filter((c) => c.status === 'blocked'));
    assert.ok(blocked.length >= 10, `blocked commands: ${blocked.length}`);
    const rm = blocked.find((c) => c.text.startsWith('sudo rm -fr'))!;
    const rmFinding = (await guardrailFindings('no-rm-rf')).find((f) => f.commandId === rm.id)!;
    assert.equal((rmFinding.detail as Record<string, unknown>).commandSha256, sha(rm.text));

    const file = path.join(work, 'decisions.flightlog');
    await exportBundle(gw.gateway.db, { sessionIds: sessions.map((s) => s.id), out: file, key: gw.gateway.key });
    const report = await verifyBundle(file, { trustedKeys: [] });
    assert.equal(report.ok, true, JSON.stringify(report).slice(0, 600));
  });

  it('policy test: a new rule tried over recorded history says what it would have held, without a gateway change', async () => {
    await gw.flush();
    const file = path.join(work, 'try.yaml');
    fs.writeFileSync(file, [
      'guardrails:',
      '  - name: keep-me-reads',
      '    match: { sql: { statement: select, tables: [keep_me] } }',
      '    action: hold',
      '  - name: no-ls',
      '    match: { shell: { program: ls } }',
      '    action: deny',
      '',
    ].join('\n'));
    const cli = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
      const r = await captureCli(args, { env: { ...process.env } });
      return { code: r.code, out: r.stdout, err: r.stderr };
    };
    const r = await cli(['policy', 'test', '--config', file, '--data-dir', gw.dataDir, '--since', '1h', '--json']);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out) as PolicyTestReport;
    const reads = report.rules.find((x) => x.name === 'keep-me-reads')!;
    assert.ok(reads.matched >= 1 && reads.wouldStop >= 1, JSON.stringify(reads));
    assert.ok(reads.examples.some((e) => /SELECT count\(\*\) FROM keep_me/.test(e.text)));
    const ls = report.rules.find((x) => x.name === 'no-ls')!;
    assert.equal(ls.matched, 1);
    assert.match(ls.examples[0].text, /^ls /);
    const text = await cli(['policy', 'test', '--config', file, '--data-dir', gw.dataDir]);
    assert.match(text.out, /keep-me-reads \(hold\): would hold \d+ commands?, \d+ of which ran/);
    const bad = await cli(['policy', 'test', '--config', file, '--data-dir', gw.dataDir, '--since', 'last tuesday-ish']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--since expects a duration/);
  });

  it('rules reload with the config: the next command is decided by the new rule set', async () => {
    const config = validateConfig({ connections: gw.gateway.config.connections.map((c) => ({ ...c, listen: `${c.listen.host}:${c.listen.port}` })), guardrails: [RULES[0]] }, 'x.yaml');
    await gw.gateway.reload(config);
    const a = gw.address('web');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-guardrails-reload-'));
    try {
      // no-rm-rf is gone: the same line now runs
      const r = await run('ssh', [...clientOptions(a.port), '-p', String(a.port), `claude@${a.host}`, `rm -rf ${dir}`], { env: askpassEnv(work, token) });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(fs.existsSync(dir), false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.equal((await psql('DROP TABLE keep_me')).code, 1, 'no-drop stays');
  });
});
