/**
 * MCP over stdio through the gateway, with the official SDK client and the reference servers from
 * npm: every interaction behaves as it does direct, each tool call is recorded as an `mcp` command,
 * secrets in results are masked in the store and the bundle, and the pipe fails closed.
 */
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { listEvents } from '../../gateway/store/queries';
import { startTestGateway, recordedCommand, type TestGateway } from '../helpers/gateway';
import { captureCli, execClient, waitForPending } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';
import { startHttpUpstream } from '../helpers/http-upstreams';
import { openDb } from '../../gateway/store/db';
import { addIdentity } from '../../gateway/store/identities';
import * as net from 'node:net';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const ROOT = path.resolve(__dirname, '../../..');
const CLI = path.join(ROOT, 'bin/flightlog.js');
const EVERYTHING = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
const FILESYSTEM = require.resolve('@modelcontextprotocol/server-filesystem/dist/index.js');
const TEST_SERVER = path.join(ROOT, 'dist/test/helpers/mcp-test-server.js');
const GHP = 'ghp_' + 'Zk3x9QeR7mT2vB8nL4cW1yH6pJ0sD5fA9uXo';
const SERVER_SECRET = 'srv-' + 'Q8fK2mX9vL4pR7tZ1wY6nB3c';

function pipeArgs(gw: TestGateway, connection: string): string[] {
  return [CLI, 'mcp', '--connection', connection, '--data-dir', gw.dataDir];
}

async function connect(command: string, args: string[], env: Record<string, string> = {}, features = false): Promise<{ client: Client; stderr: () => string }> {
  const transport = new StdioClientTransport({ command, args, env: { ...getDefaultEnvironment(), ...env }, stderr: 'pipe' });
  let err = '';
  transport.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const client = new Client({ name: 'flightlog-test', version: '1.0.0' }, features ? { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } } : undefined);
  if (features) {
    // the server asks the client: sampling, elicitation, roots
    client.setRequestHandler(CreateMessageRequestSchema, async (r) => ({ model: 'test-model', role: 'assistant', content: { type: 'text', text: `sampled: ${JSON.stringify(r.params.messages[0]?.content)}` } }));
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'decline' }));
    client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: 'file:///srv/app', name: 'app' }] }));
  }
  await client.connect(transport);
  return { client, stderr: () => err };
}

function viaGateway(gw: TestGateway, connection: string, token: string, identity = 'claude'): Promise<{ client: Client; stderr: () => string }> {
  return connect(process.execPath, pipeArgs(gw, connection), { FLIGHTLOG_TOKEN: token, FLIGHTLOG_IDENTITY: identity });
}

test('server-everything answers every interaction through the gateway exactly as direct, and each tool call is an mcp command', async () => {
  const gw = await startTestGateway({ connections: [{ name: 'everything', protocol: 'mcp', upstream: { command: [process.execPath, EVERYTHING, 'stdio'] }, identities: ['claude'] }] });
  const clients: Client[] = [];
  try {
    const token = gw.addIdentity('claude');
    const direct = (await connect(process.execPath, [EVERYTHING, 'stdio'])).client;
    const relayed = (await viaGateway(gw, 'everything', token)).client;
    clients.push(direct, relayed);
    const script = async (c: Client) => {
      const progress: number[] = [];
      return {
        server: c.getServerVersion(),
        capabilities: c.getServerCapabilities(),
        tools: await c.listTools(),
        echo: await c.callTool({ name: 'echo', arguments: { message: 'hello "world" ✓' } }),
        sum: await c.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }),
        image: await c.callTool({ name: 'get-tiny-image', arguments: {} }),
        structured: await c.callTool({ name: 'get-structured-content', arguments: { location: 'New York' } }),
        badArgs: await c.callTool({ name: 'get-sum', arguments: { a: 'x' } }).catch((e: Error) => e.message),
        unknownTool: await c.callTool({ name: 'no-such-tool', arguments: {} }).catch((e: Error) => e.message),
        resources: await c.listResources(),
        templates: await c.listResourceTemplates(),
        resource: await c.readResource({ uri: 'demo://resource/static/document/architecture.md' }),
        prompts: await c.listPrompts(),
        prompt: await c.getPrompt({ name: 'args-prompt', arguments: { city: 'Lisbon', state: 'PT' } }),
        ping: await c.ping(),
        longRunning: await c.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 3 } }, undefined, { onprogress: (p) => progress.push(p.progress) }),
        progress,
      };
    };
    const { progress: pa, ...a } = await script(direct);
    const { progress: pb, ...b } = await script(relayed);
    assert.deepEqual(b, a);
    // concurrent calls are paired with their own answers, through the gateway as direct
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => relayed.callTool({ name: 'get-sum', arguments: { a: i, b: 1000 } })));
    many.forEach((r, i) => assert.match(JSON.stringify(r.content), new RegExp(`\\b${i + 1000}\\b`)));
    // progress is timed by the server: compare that it arrives, not how often under load
    assert.ok(pa.length >= 1 && pb.length >= 1, `progress notifications arrived (${pa.length} direct, ${pb.length} through the gateway)`);
    const { s, c } = await recordedCommand(gw, (x) => x.text.startsWith('everything.get-sum'));
    assert.equal(c.kind, 'mcp');
    assert.equal(c.text, 'everything.get-sum {"a":2,"b":40}');
    assert.match(JSON.stringify(c.result), /42/);
    assert.equal((s.meta as { server?: { name?: string } }).server?.name, 'mcp-servers/everything');
    assert.equal((s.meta as { client?: { name?: string } }).client?.name, 'flightlog-test');
    const texts = s.commands.map((x) => x.text);
    assert.ok(texts.includes('everything resources/read demo://resource/static/document/architecture.md'));
    assert.ok(texts.some((t) => t.startsWith('everything prompts/get args-prompt')));
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await gw.close();
  }
});

test('server→client requests (sampling, elicitation, roots) pass through as direct and are recorded in the session', async () => {
  const gw = await startTestGateway({ connections: [{ name: 'everything', protocol: 'mcp', upstream: { command: [process.execPath, EVERYTHING, 'stdio'] }, identities: ['claude'] }] });
  const clients: Client[] = [];
  try {
    const token = gw.addIdentity('claude');
    const direct = (await connect(process.execPath, [EVERYTHING, 'stdio'], {}, true)).client;
    const relayed = (await connect(process.execPath, pipeArgs(gw, 'everything'), { FLIGHTLOG_TOKEN: token, FLIGHTLOG_IDENTITY: 'claude' }, true)).client;
    clients.push(direct, relayed);
    const script = async (c: Client) => ({
      sampling: await c.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'two words', maxTokens: 5 } }),
      elicitation: await c.callTool({ name: 'trigger-elicitation-request', arguments: {} }),
      roots: await c.callTool({ name: 'get-roots-list', arguments: {} }),
    });
    assert.deepEqual(await script(relayed), await script(direct));
    const { s } = await recordedCommand(gw, (x) => x.text.startsWith('everything.get-roots-list'));
    const events = listEvents(gw.gateway.db, s.id, { limit: 1000 }).events;
    const methods = (dir: string, kind: string) => events.filter((e) => e.direction === dir && e.kind === kind).map((e) => (e.data as { method?: string }).method);
    for (const m of ['sampling/createMessage', 'elicitation/create']) {
      assert.ok(methods('upstream→client', 'mcp.request').includes(m), `server request ${m}`);
      assert.ok(methods('client→upstream', 'mcp.response').includes(m), `client answer to ${m}`);
    }
    assert.ok(methods('upstream→client', 'mcp.request').includes('roots/list'));
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await gw.close();
  }
});

test('a secret in a tool result (and the server credential) is masked in the store and the bundle; the server gets its credential from the gateway', async () => {
  const root = tempDir('flightlog-mcp-fs-');
  fs.writeFileSync(path.join(root, '.env'), `GITHUB_TOKEN=${GHP}\nDEBUG=1\n`);
  const gw = await startTestGateway({
    env: { MCP_SERVER_TOKEN: SERVER_SECRET },
    connections: [
      { name: 'files', protocol: 'mcp', upstream: { command: [process.execPath, FILESYSTEM, root] }, identities: ['claude'] },
      { name: 'tools', protocol: 'mcp', upstream: { command: [process.execPath, TEST_SERVER], env: { MCP_TEST_SECRET: { env: 'MCP_SERVER_TOKEN' } } }, identities: ['claude'] },
      { name: 'files-live', protocol: 'mcp', mask: 'live', upstream: { command: [process.execPath, FILESYSTEM, root] }, identities: ['claude'] },
    ],
  });
  const clients: Client[] = [];
  const bundle = path.join(tempDir('flightlog-mcp-bundle-'), 'out.flightlog');
  try {
    const token = gw.addIdentity('claude');
    const direct = (await connect(process.execPath, [FILESYSTEM, root])).client;
    const files = (await viaGateway(gw, 'files', token)).client;
    const toolsPipe = await viaGateway(gw, 'tools', token);
    const tools = toolsPipe.client;
    clients.push(direct, files, tools);
    const list = await files.listTools();
    const read = list.tools.some((t) => t.name === 'read_text_file') ? 'read_text_file' : 'read_file';
    const args = { path: path.join(root, '.env') };
    const got = await files.callTool({ name: read, arguments: args });
    assert.deepEqual(got, await direct.callTool({ name: read, arguments: args }), 'the agent reads the file as direct (mask: record)');
    assert.match(JSON.stringify(got), new RegExp(GHP));
    assert.deepEqual(await tools.callTool({ name: 'whoami', arguments: {} }), { content: [{ type: 'text', text: `token=${SERVER_SECRET}` }] }, 'the server holds its credential');
    // a large result streams through whole; the recording keeps a head, the size and a digest
    fs.writeFileSync(path.join(root, 'big.txt'), 'abcdefghij\n'.repeat(300_000));
    const bigArgs = { path: path.join(root, 'big.txt') };
    assert.deepEqual(await files.callTool({ name: read, arguments: bigArgs }), await direct.callTool({ name: read, arguments: bigArgs }));
    const big = await recordedCommand(gw, (x) => x.text.startsWith(`files.${read}`) && x.text.includes('big.txt'));
    const bigResult = big.c.result as { truncated?: boolean; bytes?: number; sha256?: string; head?: string };
    assert.equal(bigResult.truncated, true);
    assert.ok((bigResult.bytes ?? 0) > 3_000_000 && /^[0-9a-f]{64}$/.test(bigResult.sha256 ?? ''));
    assert.ok((bigResult.head ?? '').length <= 64 * 1024);
    const live = (await viaGateway(gw, 'files-live', token)).client;
    clients.push(live);
    const masked = JSON.stringify(await live.callTool({ name: read, arguments: args }));
    assert.ok(!masked.includes(GHP) && /GITHUB_TOKEN=\[MASKED:/.test(masked), 'mask: live: the agent reads the masked value');
    const { s } = await recordedCommand(gw, (x) => x.text.startsWith(`files.${read}`));
    await recordedCommand(gw, (x) => x.text.startsWith('tools.whoami'));
    await tools.callTool({ name: 'leak_stderr', arguments: {} });
    const deadline = Date.now() + 10_000;
    while (!/for the request/.test(toolsPipe.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.match(toolsPipe.stderr(), /debug: using token \[MASKED:[^\]]+\] for the request/, "the server's stderr reaches the agent masked, even split across writes");
    assert.ok(!toolsPipe.stderr().includes(SERVER_SECRET.slice(0, 8)));
    await Promise.all([files.close(), tools.close()]);
    await gw.flush();
    const ex = await captureCli(['export', s.id, '-o', bundle, '--data-dir', gw.dataDir], { env: { ...process.env } });
    assert.equal(ex.code, 0, ex.stderr);
    assert.deepEqual(gw.grepDataDir(GHP), [], 'no raw secret in the store or the logs');
    assert.deepEqual(gw.grepDataDir(SERVER_SECRET), [], 'no raw server credential in the store or the logs');
    assert.ok(!fs.readFileSync(bundle).includes(Buffer.from(GHP)), 'no raw secret in the bundle');
    const verified = await captureCli(['verify', bundle], { env: { ...process.env } });
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const cmd = gw.show(s.id).commands.find((x) => x.text.startsWith(`files.${read}`))!;
    assert.match(JSON.stringify(cmd.result), /GITHUB_TOKEN=\[MASKED:/);
    assert.ok(gw.findings().some((f) => f.sessionId === s.id && f.category === 'secret'), 'the sighting is a finding');
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await gw.close();
    fs.rmSync(path.dirname(bundle), { recursive: true, force: true });
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('the pipe fails closed with one line: no gateway, unknown connection, bad token, identity not allowed, revoked token', async () => {
  const gw = await startTestGateway({
    connections: [{ name: 'tools', protocol: 'mcp', upstream: { command: [process.execPath, TEST_SERVER] }, identities: ['claude', 'claude2'] }],
  });
  const empty = tempDir('flightlog-mcp-none-');
  try {
    const token = gw.addIdentity('claude');
    const other = gw.addIdentity('intruder');
    const run = (args: string[], env: Record<string, string>) => execClient(process.execPath, args, { FLIGHTLOG_HOME: '', ...env });
    const oneLine = (r: { code: number; stderr: string; stdout: string }, re: RegExp) => {
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, re);
    };
    oneLine(await run([CLI, 'mcp', '--connection', 'tools', '--data-dir', empty], { FLIGHTLOG_TOKEN: token, FLIGHTLOG_IDENTITY: 'claude' }), /^flightlog: no gateway is running on /);
    oneLine(await run([...pipeArgs(gw, 'nope')], { FLIGHTLOG_TOKEN: token, FLIGHTLOG_IDENTITY: 'claude' }), /no MCP stdio connection "nope"/);
    oneLine(await run(pipeArgs(gw, 'tools'), { FLIGHTLOG_TOKEN: 'flt_wrong', FLIGHTLOG_IDENTITY: 'claude' }), /identity "claude" and its token do not match/);
    oneLine(await run(pipeArgs(gw, 'tools'), { FLIGHTLOG_TOKEN: other, FLIGHTLOG_IDENTITY: 'intruder' }), /identity "intruder" may not use connection "tools"/);
    oneLine(await run(pipeArgs(gw, 'tools'), { FLIGHTLOG_IDENTITY: 'claude' }), /no Flightlog token/);
    // the server dies mid-session: the pipe says so and exits non-zero
    const crashing = await viaGateway(gw, 'tools', token);
    const gone = new Promise<void>((resolve) => (crashing.client.onclose = () => resolve()));
    await assert.rejects(crashing.client.callTool({ name: 'crash', arguments: {} }));
    await gone;
    assert.match(crashing.stderr(), /crashing on purpose\n/, "the server's stderr reaches the agent");
    assert.match(crashing.stderr(), /flightlog: the MCP server of connection "tools" exited \(code 3\)/);
    // a live session ends when its identity is revoked: the pipe exits non-zero and says why
    const { client, stderr } = await viaGateway(gw, 'tools', token);
    const closed = new Promise<void>((resolve) => (client.onclose = () => resolve()));
    await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
    gw.revokeIdentity('claude');
    await closed;
    assert.match(stderr(), /flightlog: Flightlog token revoked/);
    oneLine(await run(pipeArgs(gw, 'tools'), { FLIGHTLOG_TOKEN: token, FLIGHTLOG_IDENTITY: 'claude' }), /token of identity "claude" was revoked/);
    await gw.flush();
    assert.ok(gw.findings().filter((f) => f.kind === 'failed-login').length >= 3);
    // the gateway stops under a live session: the pipe says so
    const last = await viaGateway(gw, 'tools', gw.addIdentity('claude2'), 'claude2');
    const ended = new Promise<void>((resolve) => (last.client.onclose = () => resolve()));
    await gw.close();
    await ended;
    assert.match(last.stderr(), /flightlog: the gateway is shutting down/);
  } finally {
    await gw.close();
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('guardrails: a denied tool is an isError result naming the rule; a held one runs once a human approves it', async () => {
  const gw = await startTestGateway({
    connections: [{ name: 'tools', protocol: 'mcp', upstream: { command: [process.execPath, TEST_SERVER] }, identities: ['claude'] }],
    guardrails: [
      { name: 'no-env-files', match: { mcp: { tool: 'read_*', arguments: { path: '*.env' } } }, action: 'deny', reason: 'env files hold secrets' },
      { name: 'ask-echo', match: { mcp: { server: 'tools', tool: 'echo', arguments: { text: 'deploy*' } } }, action: 'hold' },
    ],
  });
  let client: Client | null = null;
  try {
    const token = gw.addIdentity('claude');
    client = (await viaGateway(gw, 'tools', token)).client;
    const denied = await client.callTool({ name: 'read_file', arguments: { path: '/srv/app/.env' } });
    assert.equal(denied.isError, true);
    assert.match(JSON.stringify(denied.content), /blocked by guardrail \\"no-env-files\\": env files hold secrets/);
    assert.deepEqual(await client.callTool({ name: 'read_file', arguments: { path: '/srv/app/README' } }), { content: [{ type: 'text', text: 'contents of /srv/app/README' }] });
    const held = client.callTool({ name: 'echo', arguments: { text: 'deploy now' } });
    const pending = await waitForPending(gw.dataDir, /^tools\.echo /);
    // the session is not blocked while the call waits
    assert.deepEqual(await client.callTool({ name: 'echo', arguments: { text: 'meanwhile' } }), { content: [{ type: 'text', text: 'meanwhile' }] });
    const ok = await captureCli(['approve', pending.id, '--data-dir', gw.dataDir], { env: { ...process.env } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await held, { content: [{ type: 'text', text: 'deploy now' }] });
    const { c } = await recordedCommand(gw, (x) => x.status === 'blocked');
    assert.equal(c.text, 'tools.read_file {"path":"/srv/app/.env"}');
    await gw.flush();
    assert.ok(gw.findings().some((f) => f.kind === 'no-env-files'));
    assert.ok(gw.findings().some((f) => f.kind === 'ask-echo' && (f.detail as { outcome?: string }).outcome === 'approved'));
  } finally {
    await client?.close();
    await gw.close();
  }
});

test('tool drift: a description changed mid-session and in a later session raises tool-changed; a rule holds calls to the changed tool', async () => {
  const work = tempDir('flightlog-mcp-drift-');
  const descFile = path.join(work, 'description.txt');
  fs.writeFileSync(descFile, 'Reads a file');
  const gw = await startTestGateway({
    env: { MCP_DESC: descFile },
    connections: [{ name: 'tools', protocol: 'mcp', upstream: { command: [process.execPath, TEST_SERVER], env: { MCP_TEST_DESCRIPTION_FILE: { env: 'MCP_DESC' } } }, identities: ['claude'] }],
    guardrails: [{ name: 'changed-tools', match: { mcp: { changed: true } }, action: 'hold', reason: 'a tool changed its definition' }],
  });
  const clients: Client[] = [];
  try {
    const token = gw.addIdentity('claude');
    const first = (await viaGateway(gw, 'tools', token)).client;
    clients.push(first);
    await first.listTools();
    assert.deepEqual(await first.callTool({ name: 'read_file', arguments: { path: '/a' } }), { content: [{ type: 'text', text: 'contents of /a' }] });
    await first.callTool({ name: 'touch_description', arguments: {} });
    const relisted = await first.listTools();
    assert.match(relisted.tools.find((t) => t.name === 'read_file')!.description!, /id_rsa/, 'the agent sees the server as it is');
    const held = first.callTool({ name: 'read_file', arguments: { path: '/b' } });
    const pending = await waitForPending(gw.dataDir, /^tools\.read_file \{"path":"\/b"\}/);
    assert.equal(pending.rule, 'changed-tools');
    const deny = await captureCli(['deny', pending.id, '--reason', 'rug pull', '--data-dir', gw.dataDir], { env: { ...process.env } });
    assert.equal(deny.code, 0, deny.stderr);
    const refused = await held;
    assert.equal(refused.isError, true);
    assert.match(JSON.stringify(refused.content), /changed-tools/);
    await first.close();
    // a later session sees the changed definition from its first list
    const second = (await viaGateway(gw, 'tools', token)).client;
    clients.push(second);
    await second.listTools();
    await gw.flush();
    const changed = gw.findings().filter((f) => f.kind === 'tool-changed');
    assert.equal(new Set(changed.map((f) => f.sessionId)).size, 2, 'one finding in each session');
    const d = changed[0].detail as { tool: string; changes: Array<{ field: string; before: string; after: string }> };
    assert.equal(d.tool, 'read_file');
    assert.equal(d.changes[0].field, 'description');
    assert.equal(d.changes[0].before, 'Reads a file');
    assert.match(d.changes[0].after, /id_rsa/);
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await gw.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
});

// Answers each request with the exact line it received (as a string), in a line of its own making.
const RAW_ECHO_SERVER = `
let buf = '';
process.stdin.on('data', (c) => {
  buf += c;
  let i;
  while ((i = buf.indexOf('\\n')) !== -1) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    const m = JSON.parse(line);
    if (m.id !== undefined) process.stdout.write('{ "jsonrpc" : "2.0", "id" : ' + JSON.stringify(m.id) + ', "result" : {"raw": ' + JSON.stringify(line) + ', "note": "\\\\u00e9t\\\\u00e9"} }\\n');
  }
});
`;

test('JSON-RPC is relayed byte for byte both ways: spacing, key order, escapes and unicode untouched', async () => {
  const gw = await startTestGateway({ connections: [{ name: 'raw', protocol: 'mcp', upstream: { command: [process.execPath, '-e', RAW_ECHO_SERVER] }, identities: ['claude'] }] });
  try {
    const token = gw.addIdentity('claude');
    const pipe = spawn(process.execPath, pipeArgs(gw, 'raw'), { env: { ...process.env, FLIGHTLOG_TOKEN: token, FLIGHTLOG_IDENTITY: 'claude' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const sent = [
      '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}',
      '{ "method" : "tools/list",   "id" : "a\\u0062c", "jsonrpc":"2.0" }',
      '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{"s":"\\ud83d\\ude00 ü \\" \\\\ \\/","n":1.50,"e":1e3}}}\r',
    ];
    let out = '';
    pipe.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => pipe.once('exit', resolve));
    pipe.stdin.write(sent.map((l) => l + '\n').join(''));
    const deadline = Date.now() + 20_000;
    while (out.split('\n').length <= sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    pipe.stdin.end();
    assert.equal(await exited, 0);
    const lines = out.split('\n').slice(0, sent.length);
    lines.forEach((line, i) => {
      assert.match(line, /^\{ "jsonrpc" : "2\.0", "id" : /, 'the server\'s own bytes reach the client');
      assert.equal((JSON.parse(line) as { result: { raw: string } }).result.raw, sent[i], 'the client\'s own bytes reach the server');
      assert.ok(line.includes('"note": "\\u00e9t\\u00e9"'), 'escapes are not re-encoded');
    });
  } finally {
    await gw.close();
  }
});

test('W3C trace context: the HTTP request an MCP tool call causes (same trace, through the gateway) links to that call', async () => {
  const upstream = await startHttpUpstream();
  // the server's own credential for the HTTP connection (another identity, another session),
  // minted before the gateway starts so its config can reference it
  const dataDir = tempDir('flightlog-mcp-trace-');
  const db = openDb(dataDir);
  const bot = addIdentity(db, 'tools-bot', 'agent');
  db.close();
  const port = await freePort();
  const gw = await startTestGateway({
    dataDir,
    connections: [
      { name: 'api', protocol: 'http', listen: `127.0.0.1:${port}`, upstream: { url: upstream.url }, identities: ['tools-bot'] },
      { name: 'tools', protocol: 'mcp', upstream: { command: [process.execPath, TEST_SERVER], env: { MCP_TEST_HTTP_URL: { env: 'API_URL' }, MCP_TEST_HTTP_TOKEN: { env: 'BOT_TOKEN' } } }, identities: ['claude'] },
    ],
    env: { API_URL: `http://127.0.0.1:${port}`, BOT_TOKEN: bot },
  });
  let client: Client | null = null;
  try {
    const token = gw.addIdentity('claude');
    client = (await viaGateway(gw, 'tools', token)).client;
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const r = await client.callTool({ name: 'fetch_small', arguments: {}, _meta: { traceparent } });
    assert.match(JSON.stringify(r.content), /status 200/);
    const { c: call } = await recordedCommand(gw, (x) => x.text.startsWith('tools.fetch_small'));
    const { c: get } = await recordedCommand(gw, (x) => x.kind === 'http' && x.text.includes('/small'));
    assert.equal(get.causedBy, call.id, 'from the HTTP request back to the MCP call');
    assert.equal((call.detail as { traceparent?: string }).traceparent, traceparent);
  } finally {
    await client?.close();
    await gw.close();
    await upstream.close();
  }
});
