/**
 * The MCP HTTP proxy against a hand-driven server: an event stream reaches the agent event by
 * event while the server is still working (nothing waits for the end of the response), and a
 * server that echoes its injected credential never shows it to the agent or the store.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestGateway, type TestGateway } from '../helpers/gateway';

const SERVER_KEY = `srvkey-${randomBytes(12).toString('hex')}`;
let gw: TestGateway;
let server: http.Server;
let token: string;
/** resolves the held second half of the stream */
let release: () => void = () => undefined;
/** the legacy SSE stream of the hand server's one legacy session */
let legacyStream: http.ServerResponse | null = null;
/** every path the hand server was asked for */
const seenPaths: string[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    seenPaths.push(req.url ?? '');
    const port = (server.address() as AddressInfo).port;
    if (req.method === 'GET' && req.url === '/sse') {
      // a legacy server naming its POST endpoint by absolute URL
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: endpoint\ndata: http://127.0.0.1:${port}/messages?sessionId=L1\n\n`);
      legacyStream = res;
      return;
    }
    if (req.method === 'POST' && req.url === '/messages?sessionId=L1') {
      let b = '';
      req.on('data', (c: Buffer) => (b += c.toString()));
      req.on('end', () => {
        const m = JSON.parse(b) as { id: number; method: string };
        res.writeHead(202).end('Accepted');
        legacyStream?.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { echoed: m.method } })}\n\n`);
      });
      return;
    }
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const msg = JSON.parse(body || '{}') as { id?: number; method?: string };
      if (msg.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'sess-1' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'hand', version: '1' } } }));
        return;
      }
      if (msg.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      // a tools/call answered as a stream: progress now, the result only once the test says so
      res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 'sess-1' });
      res.write(`id: e1\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 't', progress: 1 } })}\n\n`);
      release = () => {
        const echoed = String(req.headers.authorization ?? '');
        res.end(`id: e2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: `you sent ${echoed}` }] } })}\n\n`);
      };
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  gw = await startTestGateway({
    env: { HAND_KEY: SERVER_KEY },
    connections: [
      { name: 'hand', protocol: 'mcp', upstream: { url: `http://127.0.0.1:${port}/mcp`, bearer: { env: 'HAND_KEY' } }, identities: ['claude'] },
      { name: 'hand-legacy', protocol: 'mcp', upstream: { url: `http://127.0.0.1:${port}/sse` }, identities: ['claude'] },
      { name: 'hand-idle', protocol: 'mcp', upstream: { url: `http://127.0.0.1:${port}/mcp` }, identities: ['claude'], options: { idleTimeoutMs: 200 } },
    ],
  });
  token = gw.addIdentity('claude');
});

after(async () => {
  await gw?.close();
  server?.closeAllConnections();
  await new Promise<void>((r) => server?.close(() => r()));
});

test('an event reaches the agent while the server is still working; an echoed server credential is scrubbed', { timeout: 30_000 }, async () => {
  const a = gw.address('hand');
  const url = `http://${a.host}:${a.port}/mcp`;
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` };
  const init = await fetch(url, { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) });
  assert.equal(init.headers.get('mcp-session-id'), 'sess-1');
  await init.text();
  const call = await fetch(url, { method: 'POST', headers: { ...h, 'mcp-session-id': 'sess-1' }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'work', arguments: {} } }) });
  const reader = call.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  // the server holds its result until we have seen the first event: a buffering proxy hangs here
  while (!text.includes('\n\n')) text += dec.decode((await reader.read()).value);
  assert.match(text, /notifications\/progress/);
  assert.doesNotMatch(text, /you sent/);
  release();
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    text += dec.decode(r.value);
  }
  assert.match(text, /you sent Bearer \*+/);
  assert.ok(!text.includes(SERVER_KEY), 'the agent never sees the server credential');
  await gw.flush();
  assert.deepEqual(gw.grepDataDir(SERVER_KEY), []);
});

test('a session its client abandons (no DELETE, no request, no stream) ends after the idle timeout, sealed', { timeout: 30_000 }, async () => {
  const a = gw.address('hand-idle');
  const res = await fetch(`http://${a.host}:${a.port}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
  });
  await res.text();
  for (let i = 0; ; i++) {
    await gw.flush();
    const s = gw.sessions().find((x) => x.connection === 'hand-idle');
    if (s && s.status !== 'live') break;
    assert.ok(i < 200, 'the idle session never ended');
    await new Promise((r) => setTimeout(r, 50));
  }
  const id = gw.sessions().find((x) => x.connection === 'hand-idle')!.id;
  assert.ok(gw.show(id).seal, 'the session is sealed');
});

test('legacy HTTP+SSE: an endpoint the server names by absolute URL is rewritten so the agent posts to the gateway', { timeout: 30_000 }, async () => {
  const a = gw.address('hand-legacy');
  const base = `http://${a.host}:${a.port}`;
  const stream = await fetch(`${base}/sse`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` } });
  const reader = stream.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  while (!text.includes('\n\n')) text += dec.decode((await reader.read()).value);
  assert.match(text, /^event: endpoint\ndata: \/messages\?sessionId=L1\n\n$/);
  const post = await fetch(`${base}/messages?sessionId=L1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }),
  });
  assert.equal(post.status, 202);
  await post.text();
  while (!text.includes('"echoed"')) text += dec.decode((await reader.read()).value);
  assert.match(text, /"id":5,"result":\{"echoed":"tools\/list"\}/);
  await reader.cancel();
  // the stream was the session: it ends with it
  for (let i = 0; ; i++) {
    await gw.flush();
    const s = gw.sessions().find((x) => x.connection === 'hand-legacy');
    if (s && s.status !== 'live') {
      assert.equal((gw.show(s.id).meta as { transport?: string }).transport, 'sse');
      break;
    }
    assert.ok(i < 200, 'the legacy session never ended');
    await new Promise((r) => setTimeout(r, 50));
  }
});

test('the agent reaches the MCP endpoint only, not the rest of the server with the injected credential', async () => {
  const a = gw.address('hand');
  const base = `http://${a.host}:${a.port}`;
  for (const [method, path] of [['GET', '/admin'], ['POST', '/admin/delete'], ['DELETE', '/mcp-other'], ['POST', '/messages?sessionId=L1']]) {
    const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: method === 'POST' ? '{"jsonrpc":"2.0","id":1,"method":"ping"}' : undefined });
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /MCP endpoint/);
  }
  assert.ok(!seenPaths.some((p) => p.startsWith('/admin') || p === '/mcp-other'));
});
