/**
 * MCP over HTTP through the gateway: the official SDK client against the reference "everything"
 * server, direct and through the gateway, over Streamable HTTP and the legacy HTTP+SSE transport.
 * Every interaction must come out the same both ways; the gateway records it, masks a secret the
 * server returns, injects the server's credential and refuses a bad gateway token.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { recordedCommand, startTestGateway, type TestGateway } from '../helpers/gateway';
import { captureCli, waitForPending } from '../helpers/cli';
import { startEverything, startHeaderPipe, type HeaderPipe, type McpServerProcess } from '../helpers/mcp-http-servers';
import { listEvents } from '../../gateway/store/queries';
import { tempDir } from '../helpers/tmp';

const UPSTREAM_BEARER = `up-${randomBytes(12).toString('hex')}`;
// a GitHub token shape the masking engine knows, only ever in the server's environment
const PLANTED = `ghp_${randomBytes(27).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 36)}`;

let gw: TestGateway;
let streamable: McpServerProcess;
let legacy: McpServerProcess;
let pipe: HeaderPipe;
let legacyPipe: HeaderPipe;
let token: string;

function gatewayUrl(name: string, path: string): URL {
  const a = gw.address(name);
  return new URL(`http://${a.host}:${a.port}${path}`);
}

const auth = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

before(async () => {
  streamable = await startEverything('streamableHttp', { PLANTED_TOKEN: PLANTED });
  legacy = await startEverything('sse', { PLANTED_TOKEN: PLANTED });
  // the server side only answers requests carrying the real upstream credential
  pipe = await startHeaderPipe(`http://127.0.0.1:${streamable.port}`, { require: { authorization: `Bearer ${UPSTREAM_BEARER}` } });
  legacyPipe = await startHeaderPipe(`http://127.0.0.1:${legacy.port}`, { require: { 'x-server-key': UPSTREAM_BEARER } });
  gw = await startTestGateway({
    env: { MCP_UP_BEARER: UPSTREAM_BEARER },
    connections: [
      { name: 'everything', protocol: 'mcp', upstream: { url: `${pipe.url}/mcp`, bearer: { env: 'MCP_UP_BEARER' } }, identities: ['claude'] },
      { name: 'everything-live', protocol: 'mcp', mask: 'live', upstream: { url: streamable.url }, identities: ['claude'] },
      { name: 'everything-revocable', protocol: 'mcp', upstream: { url: streamable.url }, identities: ['short-lived'] },
      { name: 'everything-sse', protocol: 'mcp', upstream: { url: `${legacyPipe.url}/sse`, headers: { 'x-server-key': { env: 'MCP_UP_BEARER' } } }, identities: ['claude'] },
    ],
    guardrails: [
      { name: 'no-env-dump', match: { mcp: { tool: 'get-env', arguments: { verbose: 'yes' } } }, action: 'deny', reason: 'the environment stays private' },
      { name: 'ask-deploy', match: { mcp: { server: 'everything', tool: 'echo', arguments: { message: 'deploy*' } } }, action: 'hold' },
    ],
  });
  token = gw.addIdentity('claude');
});

after(async () => {
  await gw?.close();
  await pipe?.close();
  await legacyPipe?.close();
  await streamable?.stop();
  await legacy?.stop();
});

function newClient(): Client {
  const c = new Client({ name: 'flightlog-test', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {} } });
  c.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: 'assistant', content: { type: 'text', text: 'a canned reply' }, model: 'test-model', stopReason: 'endTurn' }));
  c.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Ada', check: true } }));
  return c;
}

/** One agent's worth of MCP traffic, reduced to what a user sees. */
async function exercise(client: Client): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  out.server = client.getServerVersion();
  out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  out.echo = await client.callTool({ name: 'echo', arguments: { message: 'hello through the gateway' } });
  out.sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } });
  const progress: number[] = [];
  out.longRunning = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, {
    onprogress: (p) => progress.push(p.progress),
  });
  out.progress = progress;
  out.error = await client.callTool({ name: 'get-sum', arguments: { a: 'not a number' } }).catch((e: Error) => ({ thrown: e.message }));
  const resources = await client.listResources();
  out.resources = resources.resources.map((r) => r.uri);
  out.read = await client.readResource({ uri: resources.resources[0].uri });
  out.templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
  out.prompts = (await client.listPrompts()).prompts.map((p) => p.name);
  out.prompt = await client.getPrompt({ name: 'args-prompt', arguments: { city: 'Oslo' } });
  out.sampling = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'say hi' } });
  out.elicitation = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
  out.ping = await client.ping();
  return out;
}

/** Everything recorded for a connection (events, commands and their results), as text to grep. */
async function recordedText(connection: string): Promise<string> {
  await gw.flush();
  const parts: string[] = [];
  for (const sum of gw.sessions().filter((x) => x.connection === connection)) {
    parts.push(JSON.stringify(listEvents(gw.gateway.db, sum.id, { limit: 10000 }).events.map((e) => e.data)));
    parts.push(JSON.stringify(gw.show(sum.id).commands.map((c) => [c.text, c.detail, c.result, c.error])));
  }
  return parts.join('\n');
}

test('Streamable HTTP: every interaction through the gateway matches the server direct', { timeout: 60_000 }, async () => {
  const direct = newClient();
  await direct.connect(new StreamableHTTPClientTransport(new URL(streamable.url)));
  const viaGateway = newClient();
  const transport = new StreamableHTTPClientTransport(gatewayUrl('everything', '/mcp'), { requestInit: auth(token) });
  await viaGateway.connect(transport);
  try {
    const a = await exercise(direct);
    const b = await exercise(viaGateway);
    assert.deepEqual(b, a);
    assert.deepEqual(a.progress, [1, 2, 3]);
    assert.ok(transport.sessionId, 'the server session id reaches the client');
  } finally {
    await direct.close();
    await transport.terminateSession();
    await viaGateway.close();
  }
  // the server saw the injected credential on every request, never the gateway token
  assert.ok(pipe.seen.length > 5);
  for (const h of pipe.seen) {
    assert.equal(h.authorization, `Bearer ${UPSTREAM_BEARER}`);
    assert.ok(!JSON.stringify(h).includes(token));
  }
  // each tool call is a command a reviewer reads, with its result and duration
  const { s, c } = await recordedCommand(gw, (x) => x.kind === 'mcp' && x.text === 'everything.get-sum {"a":2,"b":40}');
  assert.equal(c.status, 'ok');
  assert.ok(JSON.stringify(c.result).includes('The sum of 2 and 40 is 42.'));
  assert.equal((s.meta as { transport?: string }).transport, 'streamable-http');
  const long = s.commands.find((x) => x.text.startsWith('everything.trigger-long-running-operation'));
  assert.ok(long && long.status === 'ok' && (long.durationMs ?? 0) >= 250, 'the long call lasts as long as it ran');
  assert.ok(s.commands.some((x) => x.text.startsWith('everything.trigger-sampling-request')));
  const text = await recordedText('everything');
  for (const needle of ['tools/call', 'hello through the gateway', 'The sum of 2 and 40 is 42.', 'notifications/progress', 'sampling/createMessage', 'a canned reply', 'elicitation/create', 'resources/read', 'args-prompt']) {
    assert.ok(text.includes(needle), `recorded: ${needle}`);
  }
  assert.ok(!text.includes(UPSTREAM_BEARER) && !text.includes(token));
});

test('a secret in a tool result is masked in the store; the agent still gets the result it asked for', async () => {
  const client = newClient();
  const transport = new StreamableHTTPClientTransport(gatewayUrl('everything', '/mcp'), { requestInit: auth(token) });
  await client.connect(transport);
  const result = await client.callTool({ name: 'get-env', arguments: {} });
  assert.ok(JSON.stringify(result).includes(PLANTED), 'mask: record passes the result through');
  await transport.terminateSession();
  await client.close();
  await gw.flush();
  assert.deepEqual(gw.grepDataDir(PLANTED), []);
  assert.deepEqual(gw.grepDataDir(UPSTREAM_BEARER), []);
  assert.ok((await recordedText('everything')).includes('[MASKED:'));
  // and in the session's exported bundle, which verifies
  const { s } = await recordedCommand(gw, (x) => x.kind === 'mcp' && x.text === 'everything.get-env {}');
  const bundle = path.join(tempDir('flightlog-mcp-http-bundle-'), 'session.flightlog');
  const ex = await captureCli(['export', s.id, '-o', bundle, '--data-dir', gw.dataDir], { env: { ...process.env } });
  assert.equal(ex.code, 0, ex.stderr);
  assert.ok(!fs.readFileSync(bundle).includes(PLANTED), 'the planted secret is not in the bundle');
  const verified = await captureCli(['verify', bundle], { env: { ...process.env } });
  assert.equal(verified.code, 0, verified.stderr + verified.stdout);
});

test('mask: live — the agent reads the tool result masked, as the recording keeps it', async () => {
  const client = newClient();
  const transport = new StreamableHTTPClientTransport(gatewayUrl('everything-live', '/mcp'), { requestInit: auth(token) });
  await client.connect(transport);
  const result = JSON.stringify(await client.callTool({ name: 'get-env', arguments: {} }));
  assert.ok(!result.includes(PLANTED), 'the agent never sees the secret');
  assert.match(result, /PLANTED_TOKEN[^,]*\[MASKED:/);
  assert.deepEqual((await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })).content, [{ type: 'text', text: 'The sum of 1 and 2 is 3.' }]);
  await transport.terminateSession();
  await client.close();
});

test('a bad or missing gateway token is refused with a JSON-RPC error, and nothing reaches the server', async () => {
  const before = pipe.seen.length;
  for (const headers of [{ authorization: 'Bearer not-a-token' }, {} as Record<string, string>]) {
    const res = await fetch(gatewayUrl('everything', '/mcp'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
    });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    const body = (await res.json()) as { jsonrpc: string; id: unknown; error: { code: number; message: string } };
    assert.equal(body.jsonrpc, '2.0');
    assert.equal(body.id, null);
    assert.equal(body.error.code, -32000);
    assert.match(body.error.message, /gateway token/);
  }
  const client = newClient();
  await assert.rejects(client.connect(new StreamableHTTPClientTransport(gatewayUrl('everything', '/mcp'), { requestInit: auth('bad') })));
  assert.equal(pipe.seen.length, before);
});

test('a guardrail denies a tool call with a JSON-RPC answer naming the rule; the server never sees it', async () => {
  const client = newClient();
  const transport = new StreamableHTTPClientTransport(gatewayUrl('everything', '/mcp'), { requestInit: auth(token) });
  await client.connect(transport);
  const seenBefore = pipe.seen.length;
  const denied = await client.callTool({ name: 'get-env', arguments: { verbose: 'yes' } }).then(
    (r) => JSON.stringify(r),
    (e: Error) => e.message,
  );
  assert.match(denied, /no-env-dump/);
  assert.ok(!pipe.bodies.slice(seenBefore).some((b) => b.includes('get-env')), 'the call never went upstream');
  await transport.terminateSession();
  await client.close();
  const { c } = await recordedCommand(gw, (x) => x.kind === 'mcp' && x.text.startsWith('everything.get-env {"verbose":"yes"}'));
  assert.equal(c.status, 'blocked');
});

test('a held tool call waits in its HTTP request for a human; other calls of the session go on meanwhile', { timeout: 60_000 }, async () => {
  const client = newClient();
  const transport = new StreamableHTTPClientTransport(gatewayUrl('everything', '/mcp'), { requestInit: auth(token) });
  await client.connect(transport);
  try {
    const held = client.callTool({ name: 'echo', arguments: { message: 'deploy now' } });
    const pending = await waitForPending(gw.dataDir, /^everything\.echo \{"message":"deploy now"\}/);
    assert.deepEqual(await client.callTool({ name: 'echo', arguments: { message: 'meanwhile' } }), { content: [{ type: 'text', text: 'Echo: meanwhile' }] });
    const ok = await captureCli(['approve', pending.id, '--data-dir', gw.dataDir], { env: { ...process.env } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await held, { content: [{ type: 'text', text: 'Echo: deploy now' }] });
  } finally {
    await transport.terminateSession();
    await client.close();
  }
  await gw.flush();
  assert.ok(gw.findings().some((f) => f.kind === 'ask-deploy' && (f.detail as { outcome?: string }).outcome === 'approved'));
});

test('revoking the token ends the MCP session: its event stream is cut, and the next request is refused', { timeout: 60_000 }, async () => {
  const tok = gw.addIdentity('short-lived');
  const url = gatewayUrl('everything-revocable', '/mcp');
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${tok}` };
  const init = await fetch(url, {
    method: 'POST',
    headers: h,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'revoked', version: '1' } } }),
  });
  const proto = { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-06-18' };
  await init.text();
  await (await fetch(url, { method: 'POST', headers: { ...h, ...proto }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
  const stream = await fetch(url, { headers: { accept: 'text/event-stream', authorization: `Bearer ${tok}`, ...proto } });
  assert.equal(stream.status, 200);
  gw.revokeIdentity('short-lived');
  // the open stream ends
  const reader = stream.body!.getReader();
  for (;;) {
    const r = await reader.read().catch(() => ({ done: true }));
    if (r.done) break;
  }
  const after = await fetch(url, { method: 'POST', headers: { ...h, ...proto }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) });
  assert.equal(after.status, 401);
  assert.match(((await after.json()) as { error: { message: string } }).error.message, /revoked/);
  await gw.flush();
  const sessions = gw.sessions().filter((x) => x.connection === 'everything-revocable');
  assert.equal(sessions.length, 1);
  assert.notEqual(sessions[0].status, 'live');
});

test('a session id belongs to the identity that opened it', async () => {
  const client = newClient();
  const transport = new StreamableHTTPClientTransport(gatewayUrl('everything', '/mcp'), { requestInit: auth(token) });
  await client.connect(transport);
  gw.addIdentity('other');
  const otherToken = gw.addIdentity('claude-2');
  void otherToken;
  const res = await fetch(gatewayUrl('everything', '/mcp'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, 'mcp-session-id': 'no-such-session' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
  });
  assert.equal(res.status, 404);
  await transport.terminateSession();
  await client.close();
});

/** Reads one SSE response until `stop` says so; returns the JSON-RPC messages with their event ids. */
async function readEvents(res: Response, stop: (msgs: Array<{ id?: string; msg: any }>) => boolean): Promise<Array<{ id?: string; msg: any }>> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const out: Array<{ id?: string; msg: any }> = [];
  for (;;) {
    const r = await reader.read().catch(() => ({ value: undefined, done: true as const }));
    const { value, done } = r;
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const id = /^id: ?(.*)$/m.exec(block)?.[1];
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.replace(/^data: ?/, ''))
        .join('\n');
      if (data.trim() !== '') out.push({ id, msg: JSON.parse(data) });
      if (stop(out)) {
        await reader.cancel();
        return out;
      }
    }
  }
  return out;
}

/** A long-running call whose stream is cut after the first progress event, then resumed with Last-Event-ID. */
async function resumeScenario(url: URL, headers: Record<string, string>): Promise<{ before: unknown[]; after: unknown[] }> {
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers };
  const init = await fetch(url, {
    method: 'POST',
    headers: h,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'resume', version: '1' } } }),
  });
  const sid = init.headers.get('mcp-session-id')!;
  const proto = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
  await init.text();
  await (await fetch(url, { method: 'POST', headers: { ...h, ...proto }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
  const call = await fetch(url, {
    method: 'POST',
    headers: { ...h, ...proto },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 }, _meta: { progressToken: 'p1' } } }),
  });
  const first = await readEvents(call, (m) => m.length >= 1);
  const last = first.at(-1)!.id!;
  // the server keeps what it sent while the client was away; a resume replays what is there so
  // far, so resume until the call's result is among it (each replay repeats the earlier ones)
  let rest: Array<{ id?: string; msg: any }> = [];
  for (let attempt = 0; attempt < 100 && !rest.some((x) => x.msg.id === 2); attempt++) {
    const ac = new AbortController();
    const resumed = await fetch(url, { method: 'GET', headers: { accept: 'text/event-stream', ...headers, ...proto, 'last-event-id': last }, signal: ac.signal });
    const timer = setTimeout(() => ac.abort(), 200);
    rest = await readEvents(resumed, (m) => m.some((x) => x.msg.id === 2)).catch(() => rest);
    clearTimeout(timer);
    ac.abort();
  }
  await fetch(url, { method: 'DELETE', headers: { ...headers, ...proto } });
  return { before: first.map((x) => x.msg), after: rest.map((x) => x.msg) };
}

test('a cut event stream resumes with Last-Event-ID the same through the gateway, each message recorded once', { timeout: 60_000 }, async () => {
  const direct = await resumeScenario(new URL(streamable.url), {});
  const via = await resumeScenario(gatewayUrl('everything', '/mcp'), { authorization: `Bearer ${token}` });
  assert.deepEqual(via, direct);
  assert.equal((direct.before[0] as { method: string }).method, 'notifications/progress');
  assert.ok(direct.after.length >= 2, 'the rest of the progress and the result came after the resume');
  const text = await recordedText('everything');
  assert.equal(text.split('Long running operation completed. Duration: 0.6 seconds').length - 1, 1);
});

test('legacy HTTP+SSE: the same interactions through the gateway as direct, with the server credential injected', { timeout: 60_000 }, async () => {
  const direct = newClient();
  await direct.connect(new SSEClientTransport(new URL(legacy.url)));
  const viaGateway = newClient();
  // the SDK's SSE client sends requestInit headers on POSTs and eventSourceInit's fetch on the stream
  const headers = { authorization: `Bearer ${token}` };
  await viaGateway.connect(
    new SSEClientTransport(gatewayUrl('everything-sse', '/sse'), {
      requestInit: { headers },
      eventSourceInit: { fetch: (u, init) => fetch(u, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }) },
    }),
  );
  try {
    const a = await exercise(direct);
    const b = await exercise(viaGateway);
    assert.deepEqual(b, a);
  } finally {
    await direct.close();
    await viaGateway.close();
  }
  for (const h of legacyPipe.seen) assert.equal(h['x-server-key'], UPSTREAM_BEARER);
  const text = await recordedText('everything-sse');
  for (const needle of ['tools/call', 'The sum of 2 and 40 is 42.', 'notifications/progress', 'a canned reply']) assert.ok(text.includes(needle), `recorded: ${needle}`);
});
