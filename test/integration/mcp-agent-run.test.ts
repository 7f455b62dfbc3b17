/**
 * The chain prompt → model tool call → MCP call under `flightlog run`: a scripted agent asks a
 * model (the Anthropic fixture, non-streamed), gets a tool_use for an MCP tool namespaced the way
 * Claude Code names them (`mcp__tools__echo`), and calls it through `flightlog mcp`, which finds
 * the run's token in its environment. The MCP command links back to the model call.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway } from '../helpers/gateway';
import { startLlmFixture } from '../helpers/llm-fixture';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { listRuns } from '../../gateway/store/queries';
import { FLIGHTLOG_BIN, spawnFlightlog } from '../helpers/cli';

const TEST_SERVER = path.join(PACKAGE_ROOT, 'dist/test/helpers/mcp-test-server.js');
const REAL_KEY = 'sk-ant-api03-REALKEY' + 'x7Qm2Lp9Vt4Rz8Kw1Yb6Nc3Hd5Fg0Js'.repeat(2);

const AGENT = (sdk: { client: string; stdio: string }) => `
const { Client } = require(${JSON.stringify(sdk.client)});
const { StdioClientTransport, getDefaultEnvironment } = require(${JSON.stringify(sdk.stdio)});
(async () => {
  const res = await fetch(process.env.ANTHROPIC_BASE_URL + '/v1/messages', {
    method: 'POST',
    headers: { 'x-api-key': process.env.ANTHROPIC_API_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 512, messages: [{ role: 'user', content: 'Say hi through the tools server' }] }),
  });
  const msg = await res.json();
  const use = msg.content.find((b) => b.type === 'tool_use');
  const tool = use.name.split('__').pop();
  // as Claude Code does: the MCP server's command from its config, the agent's environment passed on
  const transport = new StdioClientTransport({ command: process.execPath, args: [${JSON.stringify(FLIGHTLOG_BIN)}, 'mcp', '--connection', 'tools'], env: { ...getDefaultEnvironment(), ...process.env } });
  const client = new Client({ name: 'scripted-agent', version: '1' });
  await client.connect(transport);
  const out = await client.callTool({ name: tool, arguments: use.input });
  console.log('mcp:' + JSON.stringify(out.content));
  await client.close();
})().catch((e) => { console.error(e); process.exit(1); });
`;

test('a model tool_use under flightlog run links to the MCP tools/call it became', async () => {
  const fx = await startLlmFixture({ apiKey: REAL_KEY, script: { text: 'Calling the tool.', tool: { name: 'mcp__tools__echo', input: { text: 'hello from the model' } } } });
  const gw = await startTestGateway({
    env: { MODEL_KEY: REAL_KEY },
    connections: [
      { name: 'model', protocol: 'http', llm: 'anthropic', upstream: { url: fx.url, headers: { 'x-api-key': { env: 'MODEL_KEY' } } }, identities: ['claude'] },
      { name: 'tools', protocol: 'mcp', upstream: { command: [process.execPath, TEST_SERVER] }, identities: ['claude'] },
    ],
  });
  const agentFile = path.join(gw.dataDir, '..', `mcp-agent-${process.pid}.js`);
  try {
    gw.addIdentity('claude');
    fs.writeFileSync(agentFile, AGENT({ client: require.resolve('@modelcontextprotocol/sdk/client/index.js'), stdio: require.resolve('@modelcontextprotocol/sdk/client/stdio.js') }));
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.FLIGHTLOG_TOKEN;
    delete env.FLIGHTLOG_HOME;
    const r = await spawnFlightlog(['run', '--identity', 'claude', '--data-dir', gw.dataDir, '--', process.execPath, agentFile], env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /mcp:\[\{"type":"text","text":"hello from the model"\}\]/);
    await gw.flush();
    const runs = listRuns(gw.gateway.db);
    assert.equal(runs.length, 1);
    assert.deepEqual(runs[0].sessions.map((s) => s.protocol).sort(), ['http', 'mcp'], 'the MCP session is part of the run');
    const commands = runs[0].sessions.flatMap((s) => gw.show(s.id).commands);
    const llm = commands.find((c) => c.kind === 'llm');
    const call = commands.find((c) => c.kind === 'mcp');
    assert.ok(llm && call);
    assert.equal(call.text, 'tools.echo {"text":"hello from the model"}');
    assert.equal(call.causedBy, llm.id, 'from the MCP call back to the model call');
    assert.ok(llm.caused.includes(call.id), 'from the model call forward to the MCP call');
  } finally {
    fs.rmSync(agentFile, { force: true });
    await gw.close();
    await fx.close();
  }
});
