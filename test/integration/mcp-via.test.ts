/**
 * MCP call → the SQL it caused. An MCP server that runs SQL (test/helpers/mcp-sql-server.ts, `pg`)
 * is configured with `upstream.via: [app-db]`: the gateway starts it with PG* variables pointing at
 * its own Postgres listener and a token minted for that MCP session. Under `flightlog run`, a
 * scripted agent gets a tool_use from the model fixture, calls the tool through `flightlog mcp`,
 * and the server's SELECT reaches the real PostgreSQL through the gateway: the SQL command belongs
 * to the run and links to the MCP call, which links to the model call. The agent's own query in
 * the same run, outside any MCP call, links to nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway } from '../helpers/gateway';
import { startLlmFixture } from '../helpers/llm-fixture';
import { startPostgres } from '../helpers/postgres-server';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { listRuns } from '../../gateway/store/queries';
import { validateConfig } from '../../gateway/config/load';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Client as PgClient } from 'pg';
import { FLIGHTLOG_BIN, spawnFlightlog } from '../helpers/cli';

const SQL_SERVER = path.join(PACKAGE_ROOT, 'dist/test/helpers/mcp-sql-server.js');
const REAL_KEY = 'sk-ant-api03-REALKEY' + 'x7Qm2Lp9Vt4Rz8Kw1Yb6Nc3Hd5Fg0Js'.repeat(2);

const AGENT = (m: { client: string; stdio: string; pg: string }) => `
const { Client } = require(${JSON.stringify(m.client)});
const { StdioClientTransport, getDefaultEnvironment } = require(${JSON.stringify(m.stdio)});
const pg = require(${JSON.stringify(m.pg)});
(async () => {
  const res = await fetch(process.env.ANTHROPIC_BASE_URL + '/v1/messages', {
    method: 'POST',
    headers: { 'x-api-key': process.env.ANTHROPIC_API_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 512, messages: [{ role: 'user', content: 'How many orders are open?' }] }),
  });
  const msg = await res.json();
  const use = msg.content.find((b) => b.type === 'tool_use');
  const transport = new StdioClientTransport({ command: process.execPath, args: [${JSON.stringify(FLIGHTLOG_BIN)}, 'mcp', '--connection', 'db'], env: { ...getDefaultEnvironment(), ...process.env } });
  const client = new Client({ name: 'scripted-agent', version: '1' });
  await client.connect(transport);
  const out = await client.callTool({ name: use.name.split('__').pop(), arguments: use.input });
  console.log('mcp:' + JSON.stringify(out.content));
  await client.close();
  // the agent's own query, in the same run, outside any MCP call
  const own = new pg.Client();
  await own.connect();
  await own.query('SELECT 2 AS agent_own');
  await own.end();
})().catch((e) => { console.error(e); process.exit(1); });
`;

test('an MCP server whose database is a Flightlog connection: its SQL links to the MCP call, in the run', async () => {
  const pgServer = await startPostgres();
  const fx = await startLlmFixture({ apiKey: REAL_KEY, script: { text: 'Let me count them.', tool: { name: 'mcp__db__query', input: { sql: 'SELECT count(*) AS open_orders FROM via_orders' } } } });
  const gw = await startTestGateway({
    env: { MODEL_KEY: REAL_KEY, APP_DB_PASSWORD: pgServer.app.password },
    connections: [
      { name: 'model', protocol: 'http', llm: 'anthropic', upstream: { url: fx.url, headers: { 'x-api-key': { env: 'MODEL_KEY' } } }, identities: ['claude'] },
      { name: 'db', protocol: 'mcp', upstream: { command: [process.execPath, SQL_SERVER], via: ['app-db'] }, identities: ['claude'] },
      { name: 'app-db', protocol: 'postgres', upstream: { host: pgServer.host, port: pgServer.port, user: 'app', database: 'app', password: { env: 'APP_DB_PASSWORD' } }, identities: ['claude'] },
    ],
  });
  const agentFile = path.join(gw.dataDir, '..', `mcp-via-agent-${process.pid}.js`);
  try {
    pgServer.psql('CREATE TABLE via_orders (id int); INSERT INTO via_orders VALUES (1), (2), (3); ALTER TABLE via_orders OWNER TO app', 'app');
    gw.addIdentity('claude');
    fs.writeFileSync(agentFile, AGENT({ client: require.resolve('@modelcontextprotocol/sdk/client/index.js'), stdio: require.resolve('@modelcontextprotocol/sdk/client/stdio.js'), pg: require.resolve('pg') }));
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['FLIGHTLOG_TOKEN', 'FLIGHTLOG_HOME', 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE']) delete env[k];
    const r = await spawnFlightlog(['run', '--identity', 'claude', '--data-dir', gw.dataDir, '--', process.execPath, agentFile], env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /mcp:\[\{"type":"text","text":"\[\{\\"open_orders\\":\\"3\\"\}\]"\}\]/, 'the rows came back from the real database');
    await gw.flush();
    const runs = listRuns(gw.gateway.db);
    assert.equal(runs.length, 1);
    const sessions = runs[0].sessions;
    assert.deepEqual(sessions.map((s) => s.protocol).sort(), ['http', 'mcp', 'postgres', 'postgres'], "the MCP server's database session is part of the agent's run");
    const details = sessions.map((s) => gw.show(s.id));
    const commands = details.flatMap((d) => d.commands);
    const llm = commands.find((c) => c.kind === 'llm');
    const call = commands.find((c) => c.kind === 'mcp');
    const sql = commands.find((c) => c.kind === 'sql' && c.text.includes('via_orders'));
    const own = commands.find((c) => c.kind === 'sql' && c.text.includes('agent_own'));
    assert.ok(llm && call && sql && own, JSON.stringify(commands.map((c) => [c.kind, c.text])));
    assert.equal(call.causedBy, llm.id, 'model call → MCP call');
    assert.equal(sql.causedBy, call.id, 'MCP call → the SQL its server ran');
    assert.ok(call.caused.includes(sql.id), 'and forward from the MCP call to the SQL');
    assert.equal(own.causedBy, null, "the agent's own query is not the MCP server's");
    const mcpSession = sessions.find((s) => s.protocol === 'mcp')!;
    const viaSession = details.find((d) => d.commands.some((c) => c.id === sql.id))!;
    assert.equal((viaSession.meta as Record<string, unknown>).viaMcpSession, mcpSession.id, 'the database session names the MCP session it served');
    assert.equal(sql.status, 'ok');
  } finally {
    fs.rmSync(agentFile, { force: true });
    await gw.close();
    await fx.close();
    await pgServer.stop();
  }
});

test('upstream.via must name a postgres connection of the same file', () => {
  const conn = (via: unknown) => ({
    connections: [
      { name: 'db', protocol: 'mcp', upstream: { command: ['x'], via }, identities: ['a'] },
      { name: 'api', protocol: 'http', upstream: { url: 'http://127.0.0.1:1' }, listen: '127.0.0.1:0', identities: ['a'] },
    ],
  });
  assert.throws(() => validateConfig(conn(['nope']), 'flightlog.yaml'), /"nope" is not a postgres connection of this file/);
  assert.throws(() => validateConfig(conn(['api']), 'flightlog.yaml'), /"api" is not a postgres connection/);
  assert.throws(() => validateConfig(conn('app-db'), 'flightlog.yaml'), /via.*expected a list of postgres connection names/s);
});

/** Whether the gateway's Postgres listener lets this identity in with this token (a real pg client). */
async function pgLogin(address: { host: string; port: number }, user: string, password: string): Promise<string> {
  const c = new PgClient({ host: address.host, port: address.port, user, password, database: 'app', connectionTimeoutMillis: 10_000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return 'ok';
  } catch (err) {
    return (err as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

test("a via token works only while its MCP server runs, is masked in the store, and links without a run too", async () => {
  const pgServer = await startPostgres();
  const gw = await startTestGateway({
    env: { APP_DB_PASSWORD: pgServer.app.password },
    connections: [
      { name: 'db', protocol: 'mcp', upstream: { command: [process.execPath, SQL_SERVER], via: ['app-db'] }, identities: ['claude'] },
      { name: 'app-db', protocol: 'postgres', upstream: { host: pgServer.host, port: pgServer.port, user: 'app', database: 'app', password: { env: 'APP_DB_PASSWORD' } }, identities: ['claude'] },
    ],
  });
  const client = new McpClient({ name: 'no-run-agent', version: '1' });
  try {
    const token = gw.addIdentity('claude');
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [FLIGHTLOG_BIN, 'mcp', '--connection', 'db', '--data-dir', gw.dataDir], env: { ...getDefaultEnvironment(), FLIGHTLOG_TOKEN: token, FLIGHTLOG_IDENTITY: 'claude' } }));
    const rows = await client.callTool({ name: 'query', arguments: { sql: 'SELECT 41 + 1 AS answer' } });
    assert.deepEqual(rows.content, [{ type: 'text', text: '[{"answer":42}]' }]);
    const leakedText = ((await client.callTool({ name: 'leak_password', arguments: {} })).content as Array<{ text: string }>)[0].text;
    const leaked = /^password=(\S+)$/.exec(leakedText)![1];
    assert.notEqual(leaked, token, 'the server gets a token of its own, not the agent\'s');
    assert.equal(await pgLogin(gw.address('app-db'), 'claude', leaked), 'ok', 'valid while the server runs');
    await client.close();
    // the pipe closing ends the session; the token is gone once the server has exited
    const deadline = Date.now() + 20_000;
    let outcome = 'ok';
    while (outcome === 'ok' && Date.now() < deadline) {
      outcome = await pgLogin(gw.address('app-db'), 'claude', leaked);
      if (outcome === 'ok') await new Promise((r) => setImmediate(r));
    }
    assert.match(outcome, /password authentication failed/, 'refused after the MCP session ended');
    await gw.flush();
    assert.deepEqual(gw.grepDataDir(leaked), [], 'the via token is masked everywhere it was recorded');
    const sessions = gw.sessions();
    const mcp = sessions.find((s) => s.protocol === 'mcp')!;
    const answer = sessions.flatMap((s) => gw.show(s.id).commands).find((c) => c.kind === 'sql' && c.text.includes('41 + 1'))!;
    const call = gw.show(mcp.id).commands.find((c) => c.text.startsWith('db.query'))!;
    assert.equal(answer.causedBy, call.id, 'linked without a run: the token names the MCP session');
  } finally {
    await client.close().catch(() => undefined);
    await gw.close();
    await pgServer.stop();
  }
});
