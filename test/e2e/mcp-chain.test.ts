/**
 * The whole chain in the app: a scripted agent under `flightlog run` asks the model (the Anthropic
 * fixture) a question, gets a tool_use for an MCP `query` tool, calls it through `flightlog mcp`;
 * the MCP server (upstream.via: [app-db]) runs the SQL through the gateway on a real PostgreSQL.
 * In Chromium: the model call links to the MCP call; the MCP call shows its tool, arguments and
 * result, links back to the model call and on to the SQL; the SQL shows its rows and links back to
 * the MCP call. A tool whose description changes shows its before/after as a diff in Findings.
 * Screenshots: test-artifacts/mcp-chain.png, mcp-chain-sql.png, mcp-tool-changed.png.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { artifactsDir, launchChromium, startUiGateway, type UiGateway } from '../helpers/browser';
import { startLlmFixture, type LlmFixture } from '../helpers/llm-fixture';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { tempDir } from '../helpers/tmp';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { getSession, listFindings, listRuns } from '../../gateway/store/queries';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'flightlog.js');
const SQL_SERVER = path.join(PACKAGE_ROOT, 'dist/test/helpers/mcp-sql-server.js');
const TEST_SERVER = path.join(PACKAGE_ROOT, 'dist/test/helpers/mcp-test-server.js');
const REAL_KEY = 'sk-ant-api03-REALKEY' + 'x7Qm2Lp9Vt4Rz8Kw1Yb6Nc3Hd5Fg0Js'.repeat(2);
const SQL = 'SELECT customer, amount FROM chain_orders WHERE open ORDER BY id';

const AGENT = (m: { client: string; stdio: string }) => `
const { Client } = require(${JSON.stringify(m.client)});
const { StdioClientTransport, getDefaultEnvironment } = require(${JSON.stringify(m.stdio)});
(async () => {
  const res = await fetch(process.env.ANTHROPIC_BASE_URL + '/v1/messages', {
    method: 'POST',
    headers: { 'x-api-key': process.env.ANTHROPIC_API_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 512, messages: [{ role: 'user', content: 'Which orders are still open?' }] }),
  });
  const use = (await res.json()).content.find((b) => b.type === 'tool_use');
  const transport = new StdioClientTransport({ command: process.execPath, args: [${JSON.stringify(BIN)}, 'mcp', '--connection', 'db'], env: { ...getDefaultEnvironment(), ...process.env } });
  const client = new Client({ name: 'scripted-agent', version: '1' });
  await client.connect(transport);
  const out = await client.callTool({ name: use.name.split('__').pop(), arguments: use.input });
  console.log('mcp:' + JSON.stringify(out.content));
  await client.close();
})().catch((e) => { console.error(e); process.exit(1); });
`;

let pg: PostgresServer;
let fx: LlmFixture;
let gw: UiGateway;
let browser: Browser;
let page: Page;
let work: string;
const pageErrors: string[] = [];
const ids = { llmSession: '', llm: 0, mcp: 0, sql: 0, sqlSession: '' };

describe('MCP chain in the app (Chromium)', { timeout: 240_000 }, () => {
  before(async () => {
    work = tempDir('flightlog-mcp-chain-');
    const descFile = path.join(work, 'description.txt');
    fs.writeFileSync(descFile, 'Reads a file');
    pg = await startPostgres();
    fx = await startLlmFixture({ apiKey: REAL_KEY, script: { text: 'Let me look that up.', tool: { name: 'mcp__db__query', input: { sql: SQL } } } });
    gw = await startUiGateway({
      env: { MODEL_KEY: REAL_KEY, APP_DB_PASSWORD: pg.app.password, MCP_DESC: descFile },
      connections: [
        { name: 'model', protocol: 'http', llm: 'anthropic', upstream: { url: fx.url, headers: { 'x-api-key': { env: 'MODEL_KEY' } } }, identities: ['claude'] },
        { name: 'db', protocol: 'mcp', upstream: { command: [process.execPath, SQL_SERVER], via: ['app-db'] }, identities: ['claude'] },
        { name: 'app-db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_DB_PASSWORD' } }, identities: ['claude'] },
        { name: 'tools', protocol: 'mcp', upstream: { command: [process.execPath, TEST_SERVER], env: { MCP_TEST_DESCRIPTION_FILE: { env: 'MCP_DESC' } } }, identities: ['claude'] },
      ],
    });
    pg.psql("CREATE TABLE chain_orders (id int, customer text, amount numeric, open boolean); INSERT INTO chain_orders VALUES (1, 'acme', 120, true), (2, 'globex', 80, false), (3, 'initech', 45.5, true); ALTER TABLE chain_orders OWNER TO app", 'app');
    const token = gw.addIdentity('claude');

    // the agent run: prompt → tool call → MCP call → SQL
    const agentFile = path.join(work, 'agent.js');
    fs.writeFileSync(agentFile, AGENT({ client: require.resolve('@modelcontextprotocol/sdk/client/index.js'), stdio: require.resolve('@modelcontextprotocol/sdk/client/stdio.js') }));
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['FLIGHTLOG_TOKEN', 'FLIGHTLOG_HOME', 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE']) delete env[k];
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn(process.execPath, [BIN, 'run', '--identity', 'claude', '--data-dir', gw.dataDir, '--', process.execPath, agentFile], { env });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr.on('data', (d: Buffer) => (out += d.toString()));
      c.on('exit', (code) => resolve({ code, out }));
    });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /initech/);

    // tool drift on another connection: read_file's description changes mid-session
    const drift = new Client({ name: 'drift-client', version: '1' });
    await drift.connect(new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp', '--connection', 'tools', '--data-dir', gw.dataDir], env: { ...getDefaultEnvironment(), FLIGHTLOG_TOKEN: token, FLIGHTLOG_IDENTITY: 'claude' } }));
    await drift.listTools();
    await drift.callTool({ name: 'touch_description', arguments: {} });
    await drift.listTools();
    await drift.close();
    await gw.gateway.recorder.flush();

    const [run] = listRuns(gw.gateway.db);
    const commands = run.sessions.flatMap((s) => getSession(gw.gateway.db, s.id).commands);
    const llm = commands.find((c) => c.kind === 'llm')!;
    const mcp = commands.find((c) => c.kind === 'mcp')!;
    const sql = commands.find((c) => c.kind === 'sql' && c.text.includes('chain_orders'))!;
    assert.ok(llm && mcp && sql, JSON.stringify(commands.map((c) => [c.kind, c.text])));
    assert.equal(mcp.causedBy, llm.id);
    assert.equal(sql.causedBy, mcp.id);
    Object.assign(ids, { llmSession: llm.sessionId, llm: llm.id, mcp: mcp.id, sql: sql.id, sqlSession: sql.sessionId });
    assert.ok(listFindings(gw.gateway.db).some((f) => f.kind === 'tool-changed'));

    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(gw.url);
    await page.waitForSelector('[data-testid=session-row]');
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    await fx?.close();
    await pg?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('prompt → tool call → MCP call → SQL → rows, linked both ways', async () => {
    const base = gw.gateway.control.url;
    await page.goto(`${base}/#/session/${ids.llmSession}?cmd=${ids.llm}`);
    await page.waitForSelector('[data-testid=conversation] [data-testid=tool-call] [data-testid=caused-link]');
    assert.match((await page.textContent('[data-testid=conversation]')) ?? '', /Which orders are still open\?/, 'the prompt');
    assert.match((await page.textContent('[data-testid=tool-call]')) ?? '', /mcp__db__query/, 'the tool call');
    await page.click('[data-testid=tool-call] [data-testid=caused-link]');

    await page.waitForSelector(`[data-testid=command-detail][data-command="${ids.mcp}"] [data-testid=mcp-call]`);
    assert.match((await page.textContent('[data-testid=mcp-tool]')) ?? '', /tools\/call db\.query/);
    assert.match((await page.textContent('[data-testid=mcp-arguments]')) ?? '', /chain_orders WHERE open/);
    await page.waitForSelector('[data-testid=mcp-result]:has-text("initech")');
    assert.doesNotMatch((await page.textContent('[data-testid=mcp-result]')) ?? '', /globex/, 'only the open orders came back');
    assert.match((await page.textContent('.caused-by')) ?? '', /caused by model call/);
    await page.waitForSelector('[data-testid=mcp-call] [data-testid=caused-link]:has-text("chain_orders")');
    await page.screenshot({ path: path.join(artifactsDir(), 'mcp-chain.png') });

    await page.click('[data-testid=mcp-call] [data-testid=caused-link]');
    await page.waitForSelector(`[data-testid=command-detail][data-command="${ids.sql}"] [data-testid=result-table] .rt-row`);
    const table = (await page.textContent('[data-testid=result-table]')) ?? '';
    assert.ok(table.includes('acme') && table.includes('initech'), table);
    assert.match((await page.textContent('.caused-by')) ?? '', /caused by MCP call\s+db\.query/);
    await page.screenshot({ path: path.join(artifactsDir(), 'mcp-chain-sql.png') });
    await page.click('[data-testid=caused-by-link]');
    await page.waitForSelector(`[data-testid=command-detail][data-command="${ids.mcp}"]`);
    assert.deepEqual(pageErrors, []);
  });

  it('a changed tool shows its accepted and new definition as a diff', async () => {
    await page.goto(`${gw.gateway.control.url}/#/findings`);
    await page.waitForSelector('[data-testid=finding-group][data-kind=tool-changed] [data-testid=tool-changed-diff] [data-testid=diff-view] .view-lines');
    const diff = page.locator('[data-testid=tool-changed-diff]').first();
    assert.match((await diff.textContent()) ?? '', /tools\.read_file.*changed: description/s);
    await page.waitForFunction(() => document.querySelector('[data-testid=tool-changed-diff] [data-testid=diff-view]')?.textContent?.includes('id_rsa'));
    await diff.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(artifactsDir(), 'mcp-tool-changed.png') });
    assert.deepEqual(pageErrors, []);
  });
});
