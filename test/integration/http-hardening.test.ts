/**
 * Hardening of the HTTP listener (issue 11): a client aborting a chunked upload mid-body, and
 * secrets split across streamed deltas (model APIs and plain SSE) that must not be rebuildable
 * from anything stored or exported.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http-upstreams';
import type { CommandView, SessionDetail } from '../../gateway/control-api/types';

let gw: TestGateway;
let plain: HttpUpstream;
let token: string;
const uncaught: Error[] = [];
const onUncaught = (err: Error) => uncaught.push(err);

function address(name: string): { host: string; port: number } {
  return gw.address(name);
}

async function commandWith(predicate: (c: CommandView) => boolean): Promise<{ s: SessionDetail; c: CommandView }> {
  for (let i = 0; i < 100; i++) {
    await gw.flush();
    for (const sum of gw.sessions()) {
      const s = gw.show(sum.id);
      const c = s.commands.find(predicate);
      if (c && c.status !== 'running') return { s, c };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no such command recorded');
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

before(async () => {
  process.on('uncaughtException', onUncaught);
  plain = await startHttpUpstream();
  gw = await startTestGateway({
    connections: [{ name: 'api', protocol: 'http', upstream: { url: plain.url }, identities: ['claude'] }],
  });
  token = gw.addIdentity('claude');
});

after(async () => {
  await gw?.close();
  await plain?.close();
  process.off('uncaughtException', onUncaught);
});

test('a client aborting a chunked upload mid-body: recorded as cancelled, no crash, no internal error', async () => {
  // /upload reads the whole body; /status/413 answers at once, before the body is done (as a
  // server refusing an upload does), so the exchange finishes while body chunks still arrive
  for (const route of ['/upload', '/status/413']) {
    const a = address('api');
    const sock = net.connect(a.port, a.host);
    await new Promise<void>((r, j) => (sock.once('connect', r), sock.once('error', j)));
    let reply = '';
    sock.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    sock.on('error', () => undefined);
    const before = plain.seen.length;
    sock.write(
      `POST ${route}?abort=1 HTTP/1.1\r\nHost: ${a.host}:${a.port}\r\nAuthorization: Bearer ${token}\r\n` +
        'Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const sendChunk = () => sock.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
    sendChunk();
    await until(() => plain.seen.length > before, 'the upstream to see the upload');
    if (route === '/status/413') await until(() => reply.includes('\r\n\r\n'), 'the early answer');
    sendChunk();
    sendChunk();
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.destroy();
    await closed;
    const { c } = await commandWith((c) => c.text === `POST ${route}?abort=1`);
    if (route === '/upload') assert.equal(c.status, 'cancelled', `status ${c.status}`);
    else assert.ok(c.status === 'error' || c.status === 'cancelled', `status ${c.status}`);
  }
  // the gateway still serves the same client afterwards
  const ok = await fetch(`http://${address('api').host}:${address('api').port}/small`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(ok.status, 200);
  await ok.text();
  assert.deepEqual(uncaught.map((e) => String((e as NodeJS.ErrnoException).code ?? e.message)), []);
  assert.ok(!gw.logs.some((l) => /ERR_CRYPTO|internal error/i.test(l)), gw.logs.join('\n'));
});
