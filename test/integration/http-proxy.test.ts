import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import WebSocket from 'ws';
import { recordedCommand, startTestGateway, type TestGateway } from '../helpers/gateway';
import { makeTestCa, refusedPort, startHttpUpstream, type HttpUpstream, type TestCa } from '../helpers/http-upstreams';
import { listEvents } from '../../gateway/store/queries';
import type { CommandView, SessionDetail } from '../../gateway/common/api-types';

const REAL_KEY = 'sk-upstream-REAL-7f3a9c1e5b2d8f40';
let gw: TestGateway;
let plain: HttpUpstream;
let tls: HttpUpstream;
let ca: TestCa;
let token: string;
let otherToken: string;

function base(name: string): string {
  const a = gw.address(name);
  return `http://${a.host}:${a.port}`;
}

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const sessionWith = (predicate: (c: CommandView) => boolean): Promise<{ s: SessionDetail; c: CommandView }> => recordedCommand(gw, predicate);

before(async () => {
  ca = makeTestCa();
  plain = await startHttpUpstream();
  tls = await startHttpUpstream({ tls: ca });
  const refused = await refusedPort();
  const common = { identities: ['claude'] };
  gw = await startTestGateway({
    env: { UP_KEY: REAL_KEY },
    connections: [
      { name: 'api', protocol: 'http', upstream: { url: plain.url, headers: { 'x-api-key': { env: 'UP_KEY' }, 'x-static': 'plain-value' } }, ...common },
      { name: 'api-tls', protocol: 'http', upstream: { url: tls.url, bearer: { env: 'UP_KEY' }, ca: ca.caFile }, ...common },
      { name: 'api-tls-untrusted', protocol: 'http', upstream: { url: tls.url, bearer: { env: 'UP_KEY' } }, ...common },
      { name: 'api-refused', protocol: 'http', upstream: { url: `http://127.0.0.1:${refused}` }, ...common },
      { name: 'api-slow', protocol: 'http', upstream: { url: plain.url }, options: { timeoutMs: 300 }, ...common },
      { name: 'api-live', protocol: 'http', mask: 'live', upstream: { url: plain.url, query: { key: { env: 'UP_KEY' } } }, ...common },
      { name: 'api-other', protocol: 'http', upstream: { url: plain.url }, identities: ['someone-else'] },
    ],
  });
  token = gw.addIdentity('claude');
  otherToken = gw.addIdentity('intruder');
});

after(async () => {
  await gw?.close();
  await plain?.close();
  await tls?.close();
  if (ca) fs.rmSync(ca.dir, { recursive: true, force: true });
});

test('fetch with a bearer token: upstream gets the real key, never the token; the client never sees the key', async () => {
  const res = await fetch(`${base('api')}/echo?x=1`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-flightlog-run': 'run-http-1' }, body: JSON.stringify({ hello: 'world' }) });
  const text = await res.text();
  assert.equal(res.status, 200);
  const seen = plain.seen.at(-1)!;
  assert.equal(seen.headers['x-api-key'], REAL_KEY);
  assert.equal(seen.headers['x-static'], 'plain-value');
  assert.equal(seen.headers.authorization, undefined);
  assert.equal(seen.headers['x-flightlog-run'], undefined);
  assert.ok(!JSON.stringify(seen.headers).includes(token));
  // the echo upstream returns the key in its body and a header: the gateway scrubs both
  assert.ok(!text.includes(REAL_KEY), 'key leaked in body');
  assert.ok(!String(res.headers.get('x-upstream-secret-echo')).includes(REAL_KEY), 'key leaked in header');
  assert.equal(JSON.parse(text).body, '{"hello":"world"}');
  const { s, c } = await sessionWith((c) => c.text === 'POST /echo?x=1');
  assert.equal(s.run, 'run-http-1');
  assert.equal(s.identity, 'claude');
  assert.equal(c.kind, 'http');
  const r = c.result as Record<string, any>;
  assert.equal(r.status, 200);
  assert.match(String(r.requestHeaders['x-api-key']), /^\[MASKED:/);
  assert.equal(r.requestBody.body, JSON.stringify({ hello: 'world' }, null, 2));
  assert.equal(r.requestBody.sha256, createHash('sha256').update('{"hello":"world"}').digest('hex'));
  assert.ok(typeof r.timings.ttfbMs === 'number' && typeof r.timings.totalMs === 'number');
  assert.ok(gw.findings().some((f) => f.kind === 'upstream-credential' || String(f.kind).startsWith('upstream')));
});

test('curl: keep-alive requests share one session; basic auth and x-api-key work; a 5 MB upload streams', async () => {
  const file = path.join(os.tmpdir(), `flightlog-upload-${process.pid}.bin`);
  const data = Buffer.alloc(5 * 1024 * 1024, 0x5a);
  fs.writeFileSync(file, data);
  try {
    const u = base('api');
    const r = await curl(['-u', `claude:${token}`, '-H', 'x-flightlog-run: run-curl', `${u}/small`, '--next', '-u', `claude:${token}`, '-H', 'x-flightlog-run: run-curl', '--data-binary', `@${file}`, `${u}/upload`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /"size":5242880/);
    assert.ok(r.stdout.includes(createHash('sha256').update(data).digest('hex')));
    const k = await curl(['-H', `x-api-key: ${token}`, `${u}/small`]);
    assert.equal(k.stdout, '{"ok":true,"n":1}');
    const { s, c } = await sessionWith((c) => c.text === 'POST /upload');
    assert.ok(s.commands.some((x) => x.text === 'GET /small'), 'both requests in one session');
    const rb = (c.result as Record<string, any>).requestBody;
    assert.equal(rb.size, 5 * 1024 * 1024);
    assert.equal(rb.truncated, true);
  } finally {
    fs.rmSync(file, { force: true });
  }
});

test('a bad, missing or not-allowed token gets a clear JSON 401/403 and is never forwarded', async () => {
  const before = plain.seen.length;
  const bad = await fetch(`${base('api')}/small`, { headers: { authorization: 'Bearer flt_not_a_real_token_000000000000000000' } });
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).error.code, 'unauthorized');
  const none = await fetch(`${base('api')}/small`);
  assert.equal(none.status, 401);
  await none.text();
  const other = await fetch(`${base('api')}/small`, { headers: { authorization: `Bearer ${otherToken}` } });
  assert.equal(other.status, 403);
  await other.text();
  const notAllowed = await fetch(`${base('api-other')}/small`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(notAllowed.status, 403);
  assert.equal((await notAllowed.json()).error.code, 'forbidden');
  assert.equal(plain.seen.length, before);
});

test('gzip JSON is recorded decoded and pretty-printed; the client gets the bytes as sent', async () => {
  const r = await curl(['-H', `authorization: Bearer ${token}`, '-H', 'accept-encoding: gzip', '-o', '/dev/null', '-w', '%{size_download}', `${base('api')}/json-gzip`]);
  assert.equal(r.code, 0);
  const { c } = await sessionWith((c) => c.text === 'GET /json-gzip');
  const body = (c.result as Record<string, any>).responseBody;
  assert.equal(body.decoded, 'gzip');
  assert.equal(Number(r.stdout), body.size);
  assert.deepEqual(JSON.parse(body.body), { compressed: true, items: [1, 2, 3], note: 'hello gzip' });
  assert.ok(body.body.includes('\n  "compressed": true'));
});

test('SSE streams through unbuffered and each event is recorded as it arrives', async () => {
  const res = await fetch(`${base('api')}/sse?n=4`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const text = await res.text();
  assert.equal((text.match(/event: tick/g) ?? []).length, 4);
  const { s, c } = await sessionWith((c) => c.text === 'GET /sse?n=4');
  const events = listEvents(gw.gateway.db, s.id, { limit: 1000 }).events.filter((e) => e.kind === 'sse' && e.commandId === c.id);
  assert.deepEqual(events.map((e) => (e.data as { event: string }).event), ['tick', 'tick', 'tick', 'tick', 'done']);
  assert.equal((events[0].data as { data: string }).data, '{"i":1}');
});

test('WebSocket upgrade is proxied and its messages recorded both ways', async () => {
  const a = gw.address('api');
  const ws = new WebSocket(`ws://${a.host}:${a.port}/ws`, { headers: { authorization: `Bearer ${token}` } });
  const got: string[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (d) => {
      got.push(d.toString());
      if (got.length === 1) ws.send('ping from agent');
      if (got.length === 2) ws.close(1000, 'done');
    });
    ws.on('close', () => resolve());
    ws.on('error', reject);
  });
  assert.ok(!got[0].includes(REAL_KEY));
  assert.match(got[0], /"sawKey":"\*+"/);
  assert.equal(got[1], 'ping from agent');
  const { s, c } = await sessionWith((c) => c.text === 'GET /ws' && (c.result as any)?.messages !== undefined);
  const msgs = listEvents(gw.gateway.db, s.id, { limit: 1000 }).events.filter((e) => e.kind === 'ws.message' && e.commandId === c.id);
  assert.ok(msgs.some((e) => e.direction === 'client→upstream' && (e.data as { text?: string }).text === 'ping from agent'));
  assert.ok(msgs.some((e) => e.direction === 'upstream→client' && (e.data as { text?: string }).text === 'ping from agent'));
  assert.deepEqual((c.result as any).messages, { sent: 1, received: 2 });
});

test('an upstream reset mid-body reaches the client as a broken body and is recorded as an error', async () => {
  const r = await curl(['-H', `authorization: Bearer ${token}`, '-o', '/dev/null', `${base('api')}/reset`]);
  assert.notEqual(r.code, 0, 'curl must see a truncated transfer');
  const { c } = await sessionWith((c) => c.text === 'GET /reset');
  assert.equal(c.status, 'error');
  assert.match(String(c.error), /mid-body after 10000 bytes/);
});

test('refused → 502, slow → 504, TLS with the test CA works, untrusted TLS → 502', async () => {
  const refused = await fetch(`${base('api-refused')}/x`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(refused.status, 502);
  assert.equal((await refused.json()).error.code, 'upstream_refused');
  const slow = await fetch(`${base('api-slow')}/slow?ms=3000`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(slow.status, 504);
  assert.equal((await slow.json()).error.code, 'upstream_timeout');
  const ok = await fetch(`${base('api-tls')}/echo`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(ok.status, 200);
  const echoed = await ok.json();
  assert.equal(echoed.headers.authorization, `Bearer ${'*'.repeat(REAL_KEY.length)}`);
  assert.equal(tls.seen.at(-1)!.headers.authorization, `Bearer ${REAL_KEY}`);
  const bad = await fetch(`${base('api-tls-untrusted')}/echo`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(bad.status, 502);
  assert.equal((await bad.json()).error.code, 'upstream_tls_error');
  const { c } = await sessionWith((c) => c.text === 'GET /slow?ms=3000');
  assert.equal(c.status, 'error');
  assert.equal((c.result as any).status, 504);
});

test('live masking: a non-streamed body is masked with a correct Content-Length; query key injected', async () => {
  const res = await fetch(`${base('api-live')}/echo`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  assert.equal(Number(res.headers.get('content-length')), Buffer.byteLength(text));
  assert.ok(!text.includes(REAL_KEY));
  assert.match(JSON.parse(text).url, /key=\[MASKED:/);
  assert.ok(plain.seen.at(-1)!.url.includes(`key=${REAL_KEY}`));
});

test('neither the real upstream key nor a gateway token is anywhere in the data dir or logs', async () => {
  await gw.flush();
  assert.deepEqual(gw.grepDataDir(REAL_KEY), []);
  assert.deepEqual(gw.grepDataDir(token), []);
});
