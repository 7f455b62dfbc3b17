/**
 * Guardrails edited through Settings (`GET/PUT /api/settings/guardrails`) against the real
 * gateway, a real PostgreSQL and real psql: a saved rule decides the very next command, a bad
 * edit is refused with the line and path in the submitted text and leaves the file byte for
 * byte, and the rest of flightlog.yaml (comments included) survives every save.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { tempDir } from '../helpers/tmp';
import { loadConfig } from '../../gateway/config/load';
import { guardrailsOf } from '../../gateway/policy';
import type { GuardrailsSettings, SettingsApiError } from '../../gateway/common/api-types';

interface Ran {
  code: number;
  stderr: string;
  stdout: string;
}

function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end();
  });
}

describe('Settings: guardrails editor routes', { timeout: 120_000 }, () => {
  let pg: PostgresServer;
  let gw: TestGateway;
  let token: string;
  let file: string;
  let base: string;
  let auth: Record<string, string>;

  before(async () => {
    pg = await startPostgres();
    const dataDir = tempDir('flightlog-settings-rules-');
    file = path.join(dataDir, 'flightlog.yaml');
    const connection = { name: 'db', protocol: 'postgres', listen: '127.0.0.1:0', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['claude'] };
    fs.writeFileSync(
      file,
      [
        '# my gateway, hand-written',
        'connections:',
        '  # the app database',
        `  - ${JSON.stringify(connection)}`,
        '# rules: ask before anything big',
        'guardrails:',
        '  # reads are fine',
        '  - name: no-truncate',
        '    match: { sql: { statement: truncate } }',
        '    action: deny # keep the data',
        '# recording stays as is',
        'recording: { headRows: 50 }',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const cfg = loadConfig(file);
    gw = await startTestGateway({ dataDir, env: { APP_PW: pg.app.password }, connections: [connection], guardrails: cfg.guardrails, recording: { headRows: 50 } });
    token = gw.addIdentity('claude');
    base = gw.gateway.control.url;
    auth = { authorization: `Bearer ${gw.gateway.control.token}` };
    pg.psql('CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1), (2); ALTER TABLE keep_me OWNER TO app;', 'app');
  });

  after(async () => {
    await gw?.close();
    await pg?.stop();
  });

  const psql = (sql: string): Promise<Ran> => {
    const a = gw.address('db');
    return exec('psql', ['-X', '-A', '-t', '-h', a.host, '-p', String(a.port), '-U', 'claude', '-d', 'app', '-c', sql], { PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' });
  };
  const put = (yaml: unknown) => fetch(`${base}/api/settings/guardrails`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ yaml }) });
  const current = async (): Promise<GuardrailsSettings> => (await (await fetch(`${base}/api/settings/guardrails`, { headers: auth })).json()) as GuardrailsSettings;

  it('GET shows the guardrails: key as written, comments kept, and the running version', async () => {
    const g = await current();
    assert.equal(g.yaml, "guardrails:\n  # reads are fine\n  - name: no-truncate\n    match: { sql: { statement: truncate } }\n    action: deny # keep the data\n");
    assert.equal(g.version, guardrailsOf(gw.gateway.config).version, 'the version decisions are recorded with');
    assert.match(g.version, /^[0-9a-f]{64}$/);
    assert.equal(g.rules, 1);
  });

  it('a saved rule denies the next psql DROP; the rest of the file and its comments survive', async () => {
    const before = await current();
    const ok = await psql('CREATE TABLE scratch (id int); DROP TABLE scratch');
    assert.equal(ok.code, 0, ok.stderr);

    const yaml = [
      'guardrails:',
      '  # no dropping, ever',
      '  - name: no-drop',
      '    match: { protocol: postgres, sql: { statement: [drop, truncate] } }',
      '    action: deny',
      '    reason: dropping data needs a human',
      '',
    ].join('\n');
    const res = await put(yaml);
    assert.equal(res.status, 200, await res.clone().text());
    const saved = (await res.json()) as GuardrailsSettings;
    assert.notEqual(saved.version, before.version, 'a new rule set version');
    assert.equal(saved.yaml, yaml);

    const denied = await psql('DROP TABLE keep_me');
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /blocked by guardrail "no-drop": dropping data needs a human/);
    assert.equal(pg.psql('SELECT count(*) FROM keep_me', 'app').trim(), '2', 'the table is untouched upstream');

    const text = fs.readFileSync(file, 'utf8');
    for (const kept of ['# my gateway, hand-written', '  # the app database', '# rules: ask before anything big', '# recording stays as is', 'recording: { headRows: 50 }', '  # no dropping, ever']) {
      assert.ok(text.includes(kept), `kept: ${kept}`);
    }
    assert.ok(!text.includes('no-truncate'), 'the old rules are replaced');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  it('refuses an unknown statement kind with its line and path in the submitted text; the file is unchanged', async () => {
    const was = fs.readFileSync(file, 'utf8');
    const version = (await current()).version;
    const res = await put('guardrails:\n  - name: x\n    match:\n      sql: { statement: [drop, obliterate] }\n    action: deny\n');
    assert.equal(res.status, 400);
    const body = (await res.json()) as SettingsApiError;
    assert.equal(body.error.line, 4);
    assert.equal(body.error.path, 'guardrails[0].match.sql.statement[1]');
    assert.match(body.error.message, /^line 4: guardrails\[0\]\.match\.sql\.statement\[1\]: expected one of .*got "obliterate"$/);
    assert.equal(fs.readFileSync(file, 'utf8'), was);
    assert.equal((await current()).version, version);
  });

  it('refuses broken YAML and keys other than guardrails: with a located one-line error, the file unchanged', async () => {
    const was = fs.readFileSync(file, 'utf8');
    const broken = await put('guardrails:\n  - name: x\n    match: { sql: { statement: drop }\n    action: deny\n');
    assert.equal(broken.status, 400);
    const b = (await broken.json()) as SettingsApiError;
    assert.match(b.error.message, /^line \d+: not valid YAML: /);
    assert.ok(b.error.line && b.error.line >= 3);
    const other = await put('connections: []\nguardrails: []\n');
    assert.equal(other.status, 400);
    assert.match(((await other.json()) as SettingsApiError).error.message, /line 1: connections: /);
    const notText = await put(42);
    assert.equal(notText.status, 400);
    assert.equal(fs.readFileSync(file, 'utf8'), was);
    const still = await psql('DROP TABLE keep_me');
    assert.match(still.stderr, /no-drop/, 'the saved rules still run');
  });

  it('an empty editor removes the rules: the DROP goes through again', async () => {
    const res = await put('');
    assert.equal(res.status, 200);
    const g = (await res.json()) as GuardrailsSettings;
    assert.equal(g.rules, 0);
    assert.equal(g.yaml, '');
    const text = fs.readFileSync(file, 'utf8');
    assert.ok(text.includes('# recording stays as is') && text.includes('  # the app database'));
    const ok = await psql('CREATE TABLE gone (id int); DROP TABLE gone');
    assert.equal(ok.code, 0, ok.stderr);
  });
});
