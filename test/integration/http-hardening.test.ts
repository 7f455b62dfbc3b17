/**
 * Hardening of the HTTP listener (issue 11): a client aborting a chunked upload mid-body, and
 * secrets split across streamed deltas (model APIs and plain SSE) that must not be rebuildable
 * from anything stored or exported.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { grepDir, recordedCommand, startTestGateway, type TestGateway } from '../helpers/gateway';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http-upstreams';
import { startLlmFixture, type LlmFixture } from '../helpers/llm-fixture';
import { exportBundle, exportHar, exportJsonl } from '../../gateway/bundle';
import { ensureGatewayKey } from '../../gateway/store/chain';
import { listEvents } from '../../gateway/store/queries';
import type { CommandView, EventView, SessionDetail } from '../../gateway/common/api-types';

const MODEL_KEY = 'sk-ant-REAL-api03-hardening-5d1c';
const GHP = 'ghp_' + 'Zk3x9QeR7mT2vB8nL4cW1yH6pJ0sD5fA9uXo';
const AWS_ID = 'AKIA' + 'Q3EXAMPLEZ7K2M4P';
const STRIPE = 'sk_live_' + '51Hq8Zt2eXaMpLeKeY9vB3nM7cQ1wR5t';
/** each secret as the upstream cuts it across deltas */
const GHP_PARTS = [GHP.slice(0, 8), GHP.slice(8, 22), GHP.slice(22)];
const AWS_PARTS = [AWS_ID.slice(0, 9), AWS_ID.slice(9)];
const STRIPE_PARTS = [STRIPE.slice(0, 12), STRIPE.slice(12, 30), STRIPE.slice(30)];
const TEXT_DELTAS = ['Your token is ', GHP_PARTS[0], GHP_PARTS[1], `${GHP_PARTS[2]} and the key `, AWS_PARTS[0], `${AWS_PARTS[1]} as asked.`];
const TOOL_INPUT = { sql: `UPDATE vendors SET api_key = '${STRIPE}' WHERE id = 7` };

/** Every join of two or more neighbouring pieces (the whole secret among them). */
function joins(parts: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) for (let j = i + 2; j <= parts.length; j++) out.push(parts.slice(i, j).join(''));
  return out;
}
const NEEDLES = [...joins(GHP_PARTS), ...joins(AWS_PARTS), ...joins(STRIPE_PARTS), GHP_PARTS[1], STRIPE_PARTS[1]];

let fx: LlmFixture;

let gw: TestGateway;
let plain: HttpUpstream;
let token: string;
const uncaught: Error[] = [];
const onUncaught = (err: Error) => uncaught.push(err);

function address(name: string): { host: string; port: number } {
  return gw.address(name);
}

const commandWith = (predicate: (c: CommandView) => boolean): Promise<{ s: SessionDetail; c: CommandView }> => recordedCommand(gw, predicate);

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

before(async () => {
  process.on('uncaughtException', onUncaught);
  plain = await startHttpUpstream();
  const args = JSON.stringify(TOOL_INPUT);
  const at = args.indexOf(STRIPE);
  fx = await startLlmFixture({
    apiKey: MODEL_KEY,
    script: {
      text: TEXT_DELTAS.join(''),
      textDeltas: TEXT_DELTAS,
      tool: { name: 'run_sql', input: TOOL_INPUT },
      argDeltas: [args.slice(0, at + 12), args.slice(at + 12, at + 30), args.slice(at + 30)],
    },
  });
  gw = await startTestGateway({
    env: { MODEL_KEY },
    connections: [
      { name: 'api', protocol: 'http', upstream: { url: plain.url }, identities: ['claude'] },
      { name: 'api-live', protocol: 'http', mask: 'live', upstream: { url: plain.url }, identities: ['claude'] },
      { name: 'model', protocol: 'http', llm: 'anthropic', upstream: { url: fx.url, headers: { 'x-api-key': { env: 'MODEL_KEY' } } }, identities: ['claude'] },
      { name: 'openai', protocol: 'http', llm: 'openai', upstream: { url: `${fx.url}/v1`, bearer: { env: 'MODEL_KEY' } }, identities: ['claude'] },
    ],
  });
  token = gw.addIdentity('claude');
});

after(async () => {
  await gw?.close();
  await plain?.close();
  await fx?.close();
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

/** Sends `request` on a raw socket, half-closes it (shutdown(SHUT_WR)) and reads until the gateway closes. */
async function halfClosedExchange(host: string, port: number, request: string): Promise<string> {
  const sock = net.connect(port, host);
  await new Promise<void>((r, j) => (sock.once('connect', r), sock.once('error', j)));
  let reply = '';
  sock.on('data', (d: Buffer) => (reply += d.toString('latin1')));
  sock.on('error', () => undefined);
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  sock.end(request);
  await closed;
  return reply;
}

test('a client that sends a whole request and then half-closes its side still gets the answer', async () => {
  const a = address('api');
  const reply = await halfClosedExchange(
    a.host,
    a.port,
    `GET /small?half=1 HTTP/1.1\r\nHost: ${a.host}:${a.port}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
  );
  assert.match(reply, /^HTTP\/1\.1 200 /, JSON.stringify(reply));
  assert.ok(reply.endsWith('\r\n\r\n{"ok":true,"n":1}'), JSON.stringify(reply));
  const { c } = await commandWith((c) => c.text === 'GET /small?half=1');
  assert.equal(c.status, 'ok', `status ${c.status}`);
  // without `Connection: close` too: the answer, then the gateway closes (the read above ends at close)
  const kept = await halfClosedExchange(a.host, a.port, `GET /small?half=2 HTTP/1.1\r\nHost: ${a.host}:${a.port}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  assert.match(kept, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\n\{"ok":true,"n":1\}$/, JSON.stringify(kept));
});

function base(name: string): string {
  const a = address(name);
  return `http://${a.host}:${a.port}`;
}

function deltaTexts(events: EventView[], pick: (json: Record<string, any>, event: string) => string | undefined): string {
  let out = '';
  for (const e of events) {
    const d = e.data as { event: string; data: string };
    let json: Record<string, any>;
    try {
      json = JSON.parse(d.data) as Record<string, any>;
    } catch {
      continue;
    }
    out += pick(json, d.event) ?? '';
  }
  return out;
}

function assertNoPieces(where: string, text: string): void {
  for (const n of NEEDLES) assert.ok(!text.includes(n), `${where} holds ${n.slice(0, 6)}… (a join of the split secret)`);
}

test('secrets split across streamed deltas are masked over the reassembled reply, in every stored event and body', async () => {
  const calls: Array<{ conn: string; path: string; body: Record<string, unknown>; headers?: Record<string, string> }> = [
    { conn: 'model', path: '/v1/messages', body: { model: 'claude-sonnet-4-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'rotate the vendor key' }] } },
    { conn: 'openai', path: '/chat/completions', body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'rotate the vendor key' }] } },
    { conn: 'openai', path: '/responses', body: { model: 'gpt-4.1', stream: true, input: 'rotate the vendor key' } },
  ];
  for (const c of calls) {
    const res = await fetch(base(c.conn) + c.path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(c.body) });
    assert.equal(res.status, 200);
    await res.text();
  }
  await gw.flush();
  const llm = gw
    .sessions()
    .flatMap((s) => gw.show(s.id).commands.map((c) => ({ s: s.id, c })))
    .filter((x) => x.c.kind === 'llm');
  assert.equal(llm.length, 3);
  for (const { s, c } of llm) {
    const r = c.result as Record<string, any>;
    const sse = listEvents(gw.gateway.db, s, { limit: 1000 }).events.filter((e) => e.kind === 'sse' && e.commandId === c.id);
    assert.ok(sse.length > 8, `${r.endpoint}: events recorded`);
    let text: string;
    let args: string;
    if (r.endpoint === 'anthropic-messages') {
      text = deltaTexts(sse, (j) => (j.type === 'content_block_delta' ? j.delta.text : undefined));
      args = deltaTexts(sse, (j) => (j.type === 'content_block_delta' ? j.delta.partial_json : undefined));
    } else if (r.endpoint === 'openai-chat') {
      text = deltaTexts(sse, (j) => j.choices?.[0]?.delta?.content);
      args = deltaTexts(sse, (j) => j.choices?.[0]?.delta?.tool_calls?.[0]?.function?.arguments);
    } else {
      text = deltaTexts(sse, (j) => (j.type === 'response.output_text.delta' ? j.delta : undefined));
      args = deltaTexts(sse, (j) => (j.type === 'response.function_call_arguments.delta' ? j.delta : undefined));
    }
    // joined, the stored deltas read as the masked reply: the secret is gone, the rest intact
    assert.match(text, /^Your token is \[MASKED:github-pat:[0-9a-f]+\] and the key \[MASKED:aws-access-key-id:[0-9a-f]+\] as asked\.$/, `${r.endpoint}: ${text}`);
    assert.match(args, /^\{"sql":"UPDATE vendors SET api_key = '\[MASKED:[\w-]+:[0-9a-f]+\]' WHERE id = 7"\}$/, `${r.endpoint}: ${args}`);
    assert.equal(r.assistantText, text, `${r.endpoint}: the reply and its stored deltas agree`);
    assertNoPieces(`${r.endpoint} sse events`, JSON.stringify(sse));
    assertNoPieces(`${r.endpoint} command result`, JSON.stringify(r));
    assert.equal(r.responseBody.maskedStream, true);
    assert.ok(r.responseBody.body.includes('[MASKED:github-pat:'), `${r.endpoint}: the stored body is the masked stream`);
  }
  const kinds = new Set(gw.findings().filter((f) => f.category === 'secret').map((f) => f.kind));
  for (const k of ['github-pat', 'aws-access-key-id']) assert.ok(kinds.has(k), `a finding of kind ${k}`);
});

test('a plain event stream: data split across events is masked over the joined data, recorded and (live masking) sent', async () => {
  plain.ssePieces = ['deploy token ', GHP_PARTS[0], GHP_PARTS[1], GHP_PARTS[2], ' key ', AWS_PARTS[0], AWS_PARTS[1], ' ok'];
  const recorded = await fetch(`${base('api')}/sse-pieces`, { headers: { authorization: `Bearer ${token}` } });
  const raw = await recorded.text();
  assert.ok(raw.includes(`data: ${GHP_PARTS[1]}`), 'recording only: the client gets the bytes as sent');
  const live = await fetch(`${base('api-live')}/sse-pieces`, { headers: { authorization: `Bearer ${token}` } });
  const liveText = await live.text();
  const liveData = [...liveText.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join('');
  assert.match(liveData, /^deploy token \[MASKED:github-pat:[0-9a-f]+\] key \[MASKED:aws-access-key-id:[0-9a-f]+\] ok\[end\]$/, liveData);
  assertNoPieces('the live-masked stream', liveText);
  await commandWith((c) => c.text === 'GET /sse-pieces');
  for (const conn of ['api', 'api-live']) {
    const s = gw.sessions().find((x) => x.connection === conn && gw.show(x.id).commands.some((c) => c.text === 'GET /sse-pieces'));
    assert.ok(s, `a session on ${conn}`);
    const c = gw.show(s.id).commands.find((c) => c.text === 'GET /sse-pieces')!;
    assert.equal(c.status, 'ok');
    const sse = listEvents(gw.gateway.db, s.id, { limit: 1000 }).events.filter((e) => e.kind === 'sse' && e.commandId === c.id);
    const data = sse.map((e) => (e.data as { data: string }).data).join('');
    assert.match(data, /^deploy token \[MASKED:github-pat:[0-9a-f]+\] key \[MASKED:aws-access-key-id:[0-9a-f]+\] ok\[end\]$/, `${conn}: ${data}`);
    assert.equal(sse.length, plain.ssePieces.length + 1, 'one recorded event per event sent');
    assertNoPieces(`${conn} events`, JSON.stringify(sse));
    assertNoPieces(`${conn} result`, JSON.stringify(c.result));
  }
});

test('a compressed event stream: not stored raw; live masking sends it decoded and masked over the joined data', async () => {
  const recorded = await fetch(`${base('api')}/sse-pieces-gzip`, { headers: { authorization: `Bearer ${token}` } });
  assert.ok((await recorded.text()).includes(GHP_PARTS[1]), 'recording only: the client gets the stream as sent');
  const live = await fetch(`${base('api-live')}/sse-pieces-gzip`, { headers: { authorization: `Bearer ${token}` } });
  const liveText = await live.text();
  const liveData = [...liveText.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join('');
  assert.match(liveData, /^deploy token \[MASKED:github-pat:[0-9a-f]+\] key \[MASKED:aws-access-key-id:[0-9a-f]+\] ok\[end\]$/, liveData);
  assertNoPieces('the live-masked compressed stream', liveText);
  await commandWith((c) => c.text === 'GET /sse-pieces-gzip');
  for (const conn of ['api', 'api-live']) {
    const s = gw.sessions().find((x) => x.connection === conn && gw.show(x.id).commands.some((c) => c.text === 'GET /sse-pieces-gzip'));
    assert.ok(s, `a session on ${conn}`);
    const c = gw.show(s.id).commands.find((c) => c.text === 'GET /sse-pieces-gzip')!;
    const body = (c.result as Record<string, any>).responseBody;
    if (conn === 'api') assert.match(body.omitted, /compressed event stream \(gzip\)/);
    else assert.match(body.body, /MASKED:github-pat/);
    assertNoPieces(`${conn} compressed result`, JSON.stringify(c.result));
    assertNoPieces(`${conn} compressed events`, JSON.stringify(listEvents(gw.gateway.db, s.id, { limit: 1000 }).events));
  }
});

test('nothing rebuilds a split secret: data dir, logs, HAR, JSONL and the signed bundle', async () => {
  const sessions = gw.sessions().map((s) => s.id);
  await gw.close();
  const { openDb } = await import('../../gateway/store/db');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-hardening-'));
  const db = openDb(gw.dataDir);
  try {
    await exportHar(db, sessions, path.join(out, 'all.har'));
    await exportJsonl(db, sessions, path.join(out, 'all.jsonl'));
    await exportBundle(db, { sessionIds: sessions, out: path.join(out, 'all.flightlog'), key: ensureGatewayKey(gw.dataDir) });
    for (const f of ['all.har', 'all.jsonl', 'all.flightlog']) assert.ok(fs.statSync(path.join(out, f)).size > 0, f);
    assert.match(fs.readFileSync(path.join(out, 'all.har'), 'utf8'), /MASKED:github-pat/);
    for (const n of [...NEEDLES, MODEL_KEY, token]) {
      assert.deepEqual(gw.grepDataDir(n), [], `${n.slice(0, 6)}… in the data dir or logs`);
      assert.deepEqual(grepDir(out, n), [], `${n.slice(0, 6)}… in an export`);
    }
  } finally {
    db.close();
    fs.rmSync(out, { recursive: true, force: true });
  }
});
