/**
 * The whole story of issue 6: a scripted agent under `flightlog run` asks a model (a fixture
 * speaking the Anthropic streaming format) what to do, receives a tool call with SQL, and runs
 * that SQL with psql through the postgres connection. The reviewer can go from the DROP TABLE
 * back to the model call, and forward again; the real API key and database password never
 * reach the agent or the store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway } from '../helpers/gateway';
import { startPostgres } from '../helpers/postgres-server';
import { startLlmFixture } from '../helpers/llm-fixture';
import { listRuns } from '../../gateway/store/queries';
import { spawnFlightlog } from '../helpers/cli';

const REAL_KEY = 'sk-ant-api03-REALKEY' + 'x7Qm2Lp9Vt4Rz8Kw1Yb6Nc3Hd5Fg0Js'.repeat(2);
const SQL = 'DROP TABLE stale_orders';

// The agent: one model call, then the tool call's SQL through psql; prints what it saw.
const AGENT = `
const { execFileSync } = require('node:child_process');
(async () => {
  const res = await fetch(process.env.ANTHROPIC_BASE_URL + '/v1/messages', {
    method: 'POST',
    headers: { 'x-api-key': process.env.ANTHROPIC_API_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 512, stream: true, messages: [{ role: 'user', content: 'Drop the stale orders table' }] }),
  });
  const text = await res.text();
  let json = '';
  for (const line of text.split('\\n')) {
    if (!line.startsWith('data: ')) continue;
    const ev = JSON.parse(line.slice(6));
    if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') json += ev.delta.partial_json;
  }
  const sql = JSON.parse(json).sql;
  const out = execFileSync('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-d', 'app', '-c', sql], { encoding: 'utf8' });
  console.log('psql:' + out.trim());
  const needle = Buffer.from(process.env.CHECK_KEY_B64, 'base64').toString();
  console.log('env-has-real-key:' + JSON.stringify(process.env).includes(needle));
})().catch((e) => { console.error(e); process.exit(1); });
`;

test('a model tool call under flightlog run is linked to the SQL it caused, and no real secret reaches the agent or the store', async () => {
  const pg = await startPostgres();
  const fx = await startLlmFixture({ apiKey: REAL_KEY, script: { text: 'Dropping the stale table.', tool: { name: 'run_sql', input: { sql: SQL } } } });
  const gw = await startTestGateway({
    env: { MODEL_KEY: REAL_KEY, APP_DB_PASSWORD: pg.app.password },
    connections: [
      { name: 'app-db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_DB_PASSWORD' } }, identities: ['claude'] },
      { name: 'model', protocol: 'http', llm: 'anthropic', upstream: { url: fx.url, headers: { 'x-api-key': { env: 'MODEL_KEY' } } }, identities: ['claude'] },
    ],
  });
  try {
    pg.psql('CREATE TABLE stale_orders (id int)', 'app');
    pg.psql('ALTER TABLE stale_orders OWNER TO app', 'app');
    gw.addIdentity('claude');
    const agentFile = path.join(gw.dataDir, '..', `agent-${process.pid}.js`);
    fs.writeFileSync(agentFile, AGENT);
    // The agent's environment is built by `flightlog run`; the test's own env holds no secrets.
    const env: NodeJS.ProcessEnv = { ...process.env, CHECK_KEY_B64: Buffer.from(REAL_KEY.slice(0, 24)).toString('base64') };
    delete env.PGPASSWORD;
    const r = await spawnFlightlog(['run', '--identity', 'claude', '--data-dir', gw.dataDir, '--', process.execPath, agentFile], env);
    fs.unlinkSync(agentFile);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /psql:DROP TABLE/);
    assert.match(r.stdout, /env-has-real-key:false/);
    assert.equal(fx.calls.at(-1)?.apiKeyOk, true, 'the model API received the real key from the gateway');
    await gw.flush();

    const runs = listRuns(gw.gateway.db);
    assert.equal(runs.length, 1);
    assert.equal(runs[0].exitCode, 0);
    assert.deepEqual(runs[0].sessions.map((s) => s.protocol).sort(), ['http', 'postgres'], 'both sessions are grouped under the run');
    const sessions = runs[0].sessions.map((s) => gw.show(s.id));
    const llm = sessions.flatMap((s) => s.commands).find((c) => c.kind === 'llm');
    const drop = sessions.flatMap((s) => s.commands).find((c) => c.kind === 'sql' && /DROP TABLE stale_orders/i.test(c.text));
    assert.ok(llm && drop, 'both commands were recorded');
    assert.equal(drop.causedBy, llm.id, 'from DROP TABLE back to the model call');
    assert.ok(llm.caused.includes(drop.id), 'from the model call forward to the DROP TABLE');

    await gw.close();
    for (const secret of [REAL_KEY, pg.app.password]) assert.deepEqual(gw.grepDataDir(secret), [], 'no real secret in the data dir or the logs');
  } finally {
    await gw.close();
    await fx.close();
    await pg.stop();
  }
});
