import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import WebSocket from 'ws';
import { startTestGateway } from '../helpers/gateway';
import type { LiveMessage, SessionDetail, EventView } from '../../gateway/common/api-types';

/** The HTTP status a refused WebSocket handshake got (0 when it opened). */
function refusedUpgrade(url: string, protocols: string[] = [], opts: WebSocket.ClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, opts);
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? -1);
      ws.terminate();
    });
    ws.once('open', () => {
      ws.close();
      resolve(0);
    });
    ws.once('error', (err) => reject(err));
  });
}

test('control API: token required, sessions, events paged, search, and a live feed', async () => {
  const gw = await startTestGateway();
  try {
    const base = gw.gateway.control.url;
    const token = gw.gateway.control.token;
    const get = async (p: string) => {
      const r = await fetch(base + p, { headers: { authorization: `Bearer ${token}` } });
      return { status: r.status, body: (await r.json()) as unknown };
    };
    for (const p of ['/api/sessions', '/api/search?q=x', '/api/findings', '/api/runs', '/api/status']) {
      assert.equal((await fetch(base + p)).status, 401, p);
      assert.equal((await fetch(base + p, { headers: { authorization: 'Bearer wrong' } })).status, 401, p);
    }

    const messages: LiveMessage[] = [];
    // as the browser does it: the token as a second subprotocol, only the first one echoed
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/live`, ['flightlog.v1', `bearer.${token}`], { origin: base });
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    assert.equal(ws.protocol, 'flightlog.v1');
    ws.on('message', (d) => messages.push(JSON.parse(d.toString()) as LiveMessage));
    // as a script does it: the Authorization header
    const cli = new WebSocket(`${base.replace('http', 'ws')}/api/live`, { headers: { authorization: `Bearer ${token}` } });
    await new Promise((r, j) => (cli.once('open', r), cli.once('error', j)));
    cli.close();
    assert.equal(await refusedUpgrade(`${base.replace('http', 'ws')}/api/live`, ['flightlog.v1', 'bearer.nope']), 401);
    assert.equal(await refusedUpgrade(`${base.replace('http', 'ws')}/api/live?token=${token}`), 401, 'a token in the URL is not accepted');

    const s = gw.gateway.recorder.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
    for (let i = 0; i < 25; i++) s.event('bytes', 'client→upstream', { i });
    s.startCommand({ kind: 'sql', text: 'SELECT * FROM users' }).finish({ status: 'ok', result: { rowCount: 3, tag: 'SELECT 3' } });
    await gw.flush();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(messages.some((m) => m.type === 'session' && m.sessionId === s.id && m.status === 'live'));
    assert.ok(messages.some((m) => m.type === 'command' && m.sessionId === s.id));
    assert.ok(messages.filter((m) => m.type === 'events').length < 5, 'event notices are coalesced per commit');

    const list = (await get('/api/sessions')).body as { sessions: Array<{ id: string }>; total: number };
    assert.equal(list.total, 1);
    const detail = (await get(`/api/sessions/${s.id}`)).body as SessionDetail;
    assert.equal(detail.commands[0].text, 'SELECT * FROM users');
    const page1 = (await get(`/api/sessions/${s.id}/events?limit=10`)).body as { events: EventView[]; more: boolean };
    assert.deepEqual(page1.events.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(page1.more, true);
    const page2 = (await get(`/api/sessions/${s.id}/events?afterSeq=10&limit=100`)).body as { events: EventView[]; more: boolean };
    assert.equal(page2.events[0].seq, 11);
    assert.equal(page2.more, false);
    const hits = (await get('/api/search?q=users')).body as Array<{ sessionId: string }>;
    assert.equal(hits[0].sessionId, s.id);
    assert.equal((await get('/api/sessions/ses_missing')).status, 404);
    assert.equal((await get(`/api/sessions/${s.id}/events?limit=-1`)).status, 400);
    ws.close();
    s.close();
  } finally {
    await gw.close();
  }
});

test('control API: token only in a header, Host and Origin checked on every route (DNS rebinding, Origin: null)', async () => {
  const gw = await startTestGateway();
  try {
    const base = gw.gateway.control.url;
    const token = gw.gateway.control.token;
    const port = new URL(base).port;
    const auth = { authorization: `Bearer ${token}` };
    const status = (p: string, headers: Record<string, string> = {}) => rawGet(port, p, headers);
    assert.equal((await status('/api/status', auth)).status, 200);
    assert.equal((await status('/api/status', { ...auth, host: `localhost:${port}` })).status, 200);
    assert.equal((await status('/api/status', { ...auth, origin: base })).status, 200);
    // a token in the URL is refused: it would sit in logs, history and Referer headers
    assert.equal((await status(`/api/status?token=${token}`)).status, 401);
    for (const [what, headers] of [
      ['rebinding', { ...auth, host: `evil.example:${port}` }],
      ['other port', { ...auth, host: '127.0.0.1:1' }],
      ['origin null', { ...auth, origin: 'null' }],
      ['cross origin', { ...auth, origin: 'http://evil.example' }],
      ['cross site', { ...auth, 'sec-fetch-site': 'cross-site' }],
    ] as const) {
      for (const p of ['/api/status', '/api/sessions', '/api/findings', '/api/sessions/x/replay']) {
        const r = await status(p, headers);
        assert.equal(r.status, 403, `${what} ${p}`);
        assert.equal(JSON.parse(r.body).error.code, 'E_ORIGIN');
      }
    }
    const wsUrl = `${base.replace('http', 'ws')}/api/live`;
    const good = ['flightlog.v1', `bearer.${token}`];
    assert.equal(await refusedUpgrade(wsUrl, good, { origin: 'null' }), 403);
    assert.equal(await refusedUpgrade(wsUrl, good, { origin: 'http://evil.example' }), 403);
    assert.equal(await refusedUpgrade(wsUrl, good, { headers: { host: `evil.example:${port}` } }), 403);
    assert.equal(await refusedUpgrade(wsUrl, good, { origin: base }), 0);
    // a malformed absolute-form target: a clean 400 / refused upgrade, the gateway keeps serving
    const bad = await rawRequest(port, 'GET http://[ HTTP/1.1\r\nHost: 127.0.0.1:' + port + '\r\nAuthorization: Bearer ' + token + '\r\n\r\n');
    assert.match(bad, /^HTTP\/1\.1 400 /);
    const badWs = await rawRequest(
      port,
      `GET http://[ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
    assert.match(badWs, /^HTTP\/1\.1 (400|404) /);
    assert.equal((await status('/api/status', auth)).status, 200);
    assert.ok(!gw.logs.some((l) => /internal error|Invalid URL/i.test(l)), gw.logs.join('\n'));
  } finally {
    await gw.close();
  }
});

/** A GET with exactly these headers (fetch would not let a test set Host or Origin). */
function rawGet(port: string, p: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: Number(port), path: p, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/** Writes raw bytes, returns everything the server answered until it closed (or 2 s of silence). */
function rawRequest(port: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), '127.0.0.1', () => sock.end(text));
    let out = '';
    sock.setTimeout(2000, () => sock.destroy());
    sock.on('data', (d: Buffer) => (out += d.toString('latin1')));
    sock.on('close', () => resolve(out));
    sock.on('error', reject);
  });
}

test('control API: a client that half-closes after its request still gets the answer', async () => {
  const gw = await startTestGateway();
  try {
    const url = new URL(gw.gateway.control.url);
    const sock = net.connect(Number(url.port), url.hostname);
    await new Promise<void>((r, j) => (sock.once('connect', r), sock.once('error', j)));
    let reply = '';
    sock.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    sock.on('error', () => undefined);
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    // shutdown(SHUT_WR) right after the request, as `nc -N` or a one-shot script does
    sock.end(`GET /api/status HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${gw.gateway.control.token}\r\nConnection: close\r\n\r\n`);
    await closed;
    assert.match(reply, /^HTTP\/1\.1 200 /, JSON.stringify(reply));
    const body = reply.slice(reply.indexOf('\r\n\r\n') + 4);
    assert.equal(typeof (JSON.parse(body) as Record<string, unknown>), 'object', body);
  } finally {
    await gw.close();
  }
});
