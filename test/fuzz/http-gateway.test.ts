/**
 * Fuzzes the HTTP listener as an agent reaches it: a real gateway in front of a real upstream,
 * raw sockets sending random and half-valid requests (methods, targets, headers, framing,
 * bodies, model-API JSON). Every connection ends with an HTTP answer or a close, in time; the
 * gateway never falls into its catch-all, and it still serves a good request afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import fc from 'fast-check';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http-upstreams';
import { budget, within } from './budget';

let gw: TestGateway;
let upstream: HttpUpstream;
let token = '';

before(async () => {
  upstream = await startHttpUpstream();
  gw = await startTestGateway({
    connections: [
      { name: 'api', protocol: 'http', upstream: { url: upstream.url }, identities: ['claude'] },
      { name: 'model', protocol: 'http', llm: 'anthropic', upstream: { url: upstream.url }, identities: ['claude'] },
    ],
  });
  token = gw.addIdentity('claude');
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

/** Sends bytes on a fresh connection, half-closes, and returns what came back before the close. */
function exchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    // A reset is a fine answer to garbage; only a connection left hanging is a finding.
    s.on('error', () => undefined);
    s.on('close', () => resolve(Buffer.concat(got)));
    s.on('connect', () => {
      s.write(bytes);
      s.end();
    });
    s.once('timeout', () => reject(new Error('socket timeout')));
  });
}

const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&\'*+.^`|~'.split(''));
const token68 = fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 });
const anyText = fc.string({ maxLength: 40, unit: 'binary' });

const method = fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE', 'PRI'), token68, anyText);
const target = fc.oneof(
  fc.constantFrom('/', '/small', '/v1/messages', '/v1/chat/completions', '*', 'http://127.0.0.1/x', '/%', '/%zz', '/../../etc/passwd', '//x', '/?a=1&a=2', '/ws'),
  fc.webPath(),
  anyText,
);
const headerValue = fc.oneof(anyText, fc.nat().map(String), fc.constantFrom('-1', '0x10', '1e3', '18446744073709551616', 'chunked', 'gzip, chunked', 'close', 'upgrade', 'websocket', '100-continue'));
const header = fc.oneof(
  fc.tuple(fc.constantFrom('Content-Length', 'Transfer-Encoding', 'Connection', 'Upgrade', 'Expect', 'Content-Encoding', 'Content-Type', 'Host', 'x-flightlog-run', 'Authorization', 'x-api-key', 'Cookie'), headerValue),
  fc.tuple(token68, headerValue),
  fc.tuple(anyText, anyText),
);
const chunked = fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 4 }).map((chunks) =>
  Buffer.concat([...chunks.map((c) => Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), Buffer.from(c), Buffer.from('\r\n')])), Buffer.from('0\r\n\r\n')]),
);
const modelJson = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.record({ model: fc.oneof(fc.string(), fc.jsonValue()), max_tokens: fc.jsonValue(), stream: fc.jsonValue(), messages: fc.jsonValue({ maxDepth: 3 }) }).map((v) => JSON.stringify(v)),
  fc.constantFrom('{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":1,"content":{}}]}]}', '{"messages":null}', '{', '[]'),
);
const body = fc.oneof(fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)), chunked, modelJson.map((s) => Buffer.from(s)));

const request = fc
  .record({
    method,
    target,
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1', 'HTTP/9', ''),
    auth: fc.constantFrom('bearer', 'x-api-key', 'none', 'wrong'),
    headers: fc.array(header, { maxLength: 6 }),
    body,
    lengthHeader: fc.constantFrom('exact', 'none', 'chunked', 'short', 'long'),
    eol: fc.constantFrom('\r\n', '\n', '\r\n', '\r'),
    flips: fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 3 }),
    cut: fc.option(fc.nat()),
  })
  .map((r) => {
    const lines = [`${r.method} ${r.target} ${r.version}`.trimEnd(), 'Host: 127.0.0.1'];
    if (r.auth === 'bearer') lines.push(`Authorization: Bearer ${token}`);
    if (r.auth === 'x-api-key') lines.push(`x-api-key: ${token}`);
    if (r.auth === 'wrong') lines.push('Authorization: Bearer flt_nope');
    for (const [k, v] of r.headers) lines.push(`${k}: ${v}`);
    if (r.lengthHeader === 'exact') lines.push(`Content-Length: ${r.body.length}`);
    if (r.lengthHeader === 'chunked') lines.push('Transfer-Encoding: chunked');
    if (r.lengthHeader === 'short') lines.push(`Content-Length: ${Math.max(0, r.body.length - 3)}`);
    if (r.lengthHeader === 'long') lines.push(`Content-Length: ${r.body.length + 50}`);
    const bytes = Buffer.concat([Buffer.from(lines.join(r.eol) + r.eol + r.eol, 'latin1'), r.body]);
    for (const [pos, v] of r.flips) bytes[pos % bytes.length] = v;
    return r.cut === null ? bytes : bytes.subarray(0, r.cut % (bytes.length + 1));
  });

function assertAnswered(reply: Buffer): void {
  if (reply.length === 0) return;
  const head = reply.toString('latin1', 0, Math.min(reply.length, 4096));
  assert.match(head, /^HTTP\/1\.[01] \d{3} /, `an HTTP answer: ${JSON.stringify(head.slice(0, 80))}`);
  assert.doesNotMatch(head, /x-flightlog-error: upstream_error[\s\S]*could not handle/i, 'the listener fell into its catch-all');
}

async function stillServes(): Promise<void> {
  const a = gw.address('api');
  const res = await fetch(`http://${a.host}:${a.port}/small`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
}

test('random and half-valid requests on raw sockets: an HTTP answer or a close, never a hang or an internal error', async () => {
  const ports = ['api', 'model'].map((c) => gw.address(c).port);
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ports), request, async (port, bytes) => {
      const reply = await within(10_000, `the gateway's answer to ${JSON.stringify(bytes.toString('latin1').slice(0, 120))}`, exchange(port, bytes));
      assertAnswered(reply);
    }),
    budget(150),
  );
  await stillServes();
  assert.deepEqual(gw.logs.filter((l) => /request handling failed|internal error|uncaught/i.test(l)), []);
});

test('pure random bytes on raw sockets: the gateway answers 400 or closes, and keeps serving', async () => {
  const ports = ['api', 'model'].map((c) => gw.address(c).port);
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ports), fc.uint8Array({ minLength: 1, maxLength: 600 }), async (port, raw) => {
      assertAnswered(await within(10_000, 'the answer to random bytes', exchange(port, Buffer.from(raw))));
    }),
    budget(60),
  );
  await stillServes();
});
