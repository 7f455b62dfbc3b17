/**
 * `flightlog mcp config NAME` for an MCP connection over HTTP prints the gateway's URL and a bearer
 * header reading the agent's token (no token printed); an SDK client using exactly that URL and
 * header, with a real token, lists the tools of server-everything through the gateway. And
 * `flightlog mcp --connection NAME` on an HTTP connection says in one line that it is not a pipe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTestGateway } from '../helpers/gateway';
import { captureCli } from '../helpers/cli';
import { startEverything } from '../helpers/mcp-http-servers';

test('mcp config on an HTTP connection prints a working http snippet; the pipe refuses it in one line', async () => {
  const everything = await startEverything('streamableHttp');
  const gw = await startTestGateway({
    connections: [{ name: 'remote', protocol: 'mcp', upstream: { url: everything.url }, identities: ['claude'] }],
  });
  try {
    const token = gw.addIdentity('claude');
    const { port } = gw.address('remote');
    const claude = await captureCli(['mcp', 'config', 'remote', '--agent', 'claude', '--data-dir', gw.dataDir]);
    assert.equal(claude.code, 0, claude.stderr);
    const entry = (JSON.parse(claude.stdout) as { mcpServers: Record<string, { type: string; url: string; headers: Record<string, string> }> }).mcpServers.remote;
    assert.deepEqual(entry, { type: 'http', url: `http://127.0.0.1:${port}/mcp`, headers: { Authorization: 'Bearer ${FLIGHTLOG_TOKEN}' } });

    const vscode = JSON.parse((await captureCli(['mcp', 'config', 'remote', '--agent', 'vscode', '--data-dir', gw.dataDir])).stdout) as { servers: Record<string, { type: string; headers: Record<string, string> }>; inputs: Array<{ id: string; password: boolean }> };
    assert.equal(vscode.servers.remote.type, 'http');
    assert.equal(vscode.servers.remote.headers.Authorization, 'Bearer ${input:flightlog-token}');
    assert.deepEqual(vscode.inputs.map((i) => [i.id, i.password]), [['flightlog-token', true]]);
    const all = await captureCli(['mcp', 'config', 'remote', '--data-dir', gw.dataDir]);
    assert.match(all.stdout, /Cursor/);
    assert.match(all.stdout, /"Authorization": "Bearer \$\{env:FLIGHTLOG_TOKEN\}"/);
    assert.ok(!all.stdout.includes(token), 'no token is printed');

    // the agent's side: the snippet's URL and header, its variable filled in, reach the server
    const client = new Client({ name: 'snippet-user', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(entry.url), { requestInit: { headers: { Authorization: entry.headers.Authorization.replace('${FLIGHTLOG_TOKEN}', token) } } }));
    const tools = await client.listTools();
    assert.ok(tools.tools.some((t) => t.name === 'echo'));
    await client.close();

    const pipe = await captureCli(['mcp', '--connection', 'remote', '--data-dir', gw.dataDir], { env: { FLIGHTLOG_TOKEN: token, FLIGHTLOG_IDENTITY: 'claude' } });
    assert.equal(pipe.code, 1);
    assert.equal(pipe.stderr.trim().split('\n').length, 1, pipe.stderr);
    assert.match(pipe.stderr, new RegExp(`connection "remote" is an MCP server over HTTP, not a pipe: point the agent at http://127\\.0\\.0\\.1:${port}/mcp`));
    assert.ok(!pipe.stderr.includes(token));
  } finally {
    await gw.close();
    await everything.stop();
  }
});
