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

/** True when buf holds one whole HTTP response (head plus a body framed by length or chunks). */
function wholeResponse(buf: Buffer): boolean {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return false;
  const head = buf.toString('latin1', 0, headEnd);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
  const len = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (len) return buf.length >= headEnd + 4 + Number(len[1]);
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) return buf.includes('\r\n0\r\n\r\n', headEnd);
  return status === 204 || status === 304 || (status >= 100 && status < 200);
}

/**
 * Sends bytes on a fresh connection and returns the answer. A request the server is still
 * waiting on (a body shorter than its length, say) is legitimate; so after a short silence the
 * client half-closes, and from then on the server must close the connection: only a connection
 * it leaves open after that is a hang.
 */
function exchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    let silence: NodeJS.Timeout | undefined;
    let hang: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(silence);
      clearTimeout(hang);
      s.destroy();
      resolve(Buffer.concat(got));
    };
    const quiet = () => {
      clearTimeout(silence);
      silence = setTimeout(() => {
        s.end();
        hang = setTimeout(() => {
          s.destroy();
          reject(new Error(`hang: the connection stayed open 5 s after the client's EOF; got ${JSON.stringify(Buffer.concat(got).toString('latin1').slice(0, 80))}`));
        }, 5000);
      }, 150);
    };
    s.on('data', (d: Buffer) => {
      got.push(d);
      if (wholeResponse(Buffer.concat(got))) done();
      else quiet();
    });
    // A reset is a fine answer to garbage.
    s.on('error', () => undefined);
    s.on('close', done);
    s.on('connect', () => {
      s.write(bytes);
      quiet();
    });
  });
}

const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&\'*+.^`|~'.split(''));
const token68 = fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 });
const anyText = fc.string({ maxLength: 40, unit: 'binary' });

const goodMethod = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS');
const badMethod = fc.oneof(fc.constantFrom('CONNECT', 'TRACE', 'PRI', 'get', ''), token68, anyText);
const goodTarget = fc.oneof(
  fc.constantFrom('/', '/small', '/echo', '/v1/messages', '/v1/chat/completions', '/%', '/%zz', '/../../etc/passwd', '//x', '/?a=1&a=2', '/ws', '/status/500', '/bytes?n=70000'),
  fc.webPath().map((p) => `/${p.replace(/^\/+/, '')}`),
);
const badTarget = fc.oneof(fc.constantFrom('*', 'http://127.0.0.1/x', '', 'a b', '/\u0000'), anyText);
const headerName = fc.constantFrom('Content-Length', 'Transfer-Encoding', 'Connection', 'Upgrade', 'Expect', 'Content-Encoding', 'Content-Type', 'Accept-Encoding', 'x-flightlog-run', 'Authorization', 'x-api-key', 'Cookie', 'anthropic-version');
const goodValue = fc.oneof(
  fc.string({ unit: tokenChar, maxLength: 20 }),
  fc.nat().map(String),
  fc.constantFrom('-1', '0x10', '1e3', '18446744073709551616', 'chunked', 'gzip, chunked', 'gzip', 'br', 'close', 'upgrade', 'websocket', '100-continue', 'application/json', 'text/event-stream'),
);
const goodHeader = fc.oneof(fc.tuple(headerName, goodValue), fc.tuple(token68, goodValue));
const badHeader = fc.oneof(fc.tuple(anyText, anyText), fc.tuple(headerName, anyText), fc.constant(['Content-Length', '5, 6'] as [string, string]), fc.constant([' Host', 'x'] as [string, string]));
const chunked = fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 4 }).map((chunks) =>
  Buffer.concat([...chunks.map((c) => Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), Buffer.from(c), Buffer.from('\r\n')])), Buffer.from('0\r\n\r\n')]),
);
const modelJson = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.record({ model: fc.oneof(fc.string(), fc.jsonValue()), max_tokens: fc.jsonValue(), stream: fc.jsonValue(), messages: fc.jsonValue({ maxDepth: 3 }) }).map((v) => JSON.stringify(v)),
  fc.constantFrom('{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":1,"content":{}}]}]}', '{"messages":null}', '{', '[]'),
);
const body = fc.oneof(fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)), modelJson.map((s) => Buffer.from(s)));

/**
 * A well-formed request (auth, headers, a body framed by length or chunks) with at most one
 * defect, so runs reach every layer: the HTTP parser, authentication, the exchange and its
 * model-API reader, the upstream and back.
 */
const request = fc
  .record({
    method: goodMethod,
    target: goodTarget,
    auth: fc.constantFrom('bearer', 'bearer', 'x-api-key', 'none', 'wrong'),
    headers: fc.array(goodHeader, { maxLength: 3 }),
    body,
    framing: fc.constantFrom('length', 'length', 'chunked', 'none'),
    defect: fc.oneof(
      fc.constant({ kind: 'none' as const }),
      fc.constant({ kind: 'none' as const }),
      fc.constant({ kind: 'none' as const }),
      badMethod.map((v) => ({ kind: 'method' as const, v })),
      badTarget.map((v) => ({ kind: 'target' as const, v })),
      fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/9', 'HTTP/1.1 x', '').map((v) => ({ kind: 'version' as const, v })),
      badHeader.map((v) => ({ kind: 'header' as const, v })),
      fc.constantFrom('\n', '\r').map((v) => ({ kind: 'eol' as const, v })),
      fc.constantFrom(-3, 50).map((v) => ({ kind: 'length' as const, v })),
      fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 }).map((v) => ({ kind: 'flip' as const, v })),
      fc.nat().map((v) => ({ kind: 'cut' as const, v })),
    ),
  })
  .chain((r) => (r.framing === 'chunked' ? chunked.map((b) => ({ ...r, body: b })) : fc.constant(r)))
  .map((r) => {
    const d = r.defect;
    const version = d.kind === 'version' ? d.v : 'HTTP/1.1';
    const lines = [`${d.kind === 'method' ? d.v : r.method} ${d.kind === 'target' ? d.v : r.target} ${version}`.trimEnd(), 'Host: 127.0.0.1'];
    if (r.auth === 'bearer') lines.push(`Authorization: Bearer ${token}`);
    if (r.auth === 'x-api-key') lines.push(`x-api-key: ${token}`);
    if (r.auth === 'wrong') lines.push('Authorization: Bearer flt_nope');
    // Framing headers the generator chose freely would mostly just be 400s: they come from `framing`.
    for (const [k, v] of r.headers) if (!/^(content-length|transfer-encoding|expect|upgrade|connection)$/i.test(k)) lines.push(`${k}: ${v}`);
    if (d.kind === 'header') lines.push(`${d.v[0]}: ${d.v[1]}`);
    if (r.framing === 'length') lines.push(`Content-Length: ${Math.max(0, r.body.length + (d.kind === 'length' ? d.v : 0))}`);
    if (r.framing === 'chunked') lines.push('Transfer-Encoding: chunked');
    const eol = d.kind === 'eol' ? d.v : '\r\n';
    const bytes = Buffer.concat([Buffer.from(lines.join(eol) + eol + eol, 'latin1'), r.framing === 'none' ? Buffer.alloc(0) : r.body]);
    if (d.kind === 'flip') for (const [pos, v] of d.v) bytes[pos % bytes.length] = v;
    return d.kind === 'cut' ? bytes.subarray(0, d.v % (bytes.length + 1)) : bytes;
  });

/** Status codes seen, to check the generator reaches the exchange and the upstream, not just the parser. */
const statuses = new Map<string, number>();

function assertAnswered(reply: Buffer): void {
  if (reply.length === 0) return;
  const head = reply.toString('latin1', 0, Math.min(reply.length, 4096));
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? '?';
  statuses.set(status, (statuses.get(status) ?? 0) + 1);
  assert.match(head, /^HTTP\/1\.[01] \d{3} /, `an HTTP answer: ${JSON.stringify(head.slice(0, 80))}`);
  assert.doesNotMatch(head, /x-flightlog-error: upstream_error[\s\S]*could not handle/i, 'the listener fell into its catch-all');
}

async function stillServes(): Promise<void> {
  const a = gw.address('api');
  const res = await fetch(`http://${a.host}:${a.port}/small`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
}

test('random and half-valid requests on raw sockets: an HTTP answer or a close, never a hang or an internal error', async (t) => {
  const ports = ['api', 'model'].map((c) => gw.address(c).port);
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ports), request, async (port, bytes) => {
      const reply = await within(10_000, `the gateway's answer to ${JSON.stringify(bytes.toString('latin1').slice(0, 120))}`, exchange(port, bytes));
      assertAnswered(reply);
    }),
    budget(100),
  );
  t.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
  // The property is only worth something if requests reach the upstream and the gateway's own checks.
  assert.ok((statuses.get('200') ?? 0) > 0 && (statuses.get('401') ?? 0) > 0 && (statuses.get('400') ?? 0) > 0, `statuses seen: ${JSON.stringify([...statuses])}`);
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
