import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import { presentedCredentials } from '../../gateway/http/auth';
import { PayloadTap, bodyRecord } from '../../gateway/http/payload';
import { SecretScrubber } from '../../gateway/http/scrub';
import { SseParser, type SseEvent } from '../../gateway/http/sse';
import { WsFrameReader, type WsMessage } from '../../gateway/http/ws-frames';
import { extractCommandCandidates, matchesCommand, toolCallsOf } from '../../gateway/http/lineage';

test('sse: fields, multi-line data, comments, CRLF split across chunks, no trailing blank line', () => {
  const got: SseEvent[] = [];
  const p = new SseParser((e) => got.push(e));
  const text = ': hi\r\nevent: a\r\ndata: 1\r\ndata:2\r\n\r\nid: 7\ndata: x\n\nretry: 5\n\ndata: cut';
  for (const ch of text) p.push(Buffer.from(ch));
  p.end();
  assert.deepEqual(got, [
    { event: 'a', data: '1\n2' },
    { event: 'message', data: 'x', id: '7' },
  ]);
});

function frame(opcode: number, payload: Buffer, opts: { fin?: boolean; mask?: boolean } = {}): Buffer {
  const fin = opts.fin ?? true;
  const len = payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | opcode];
  const maskBit = opts.mask ? 0x80 : 0;
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) head.push(maskBit | 126, len >> 8, len & 255);
  else head.push(maskBit | 127, 0, 0, 0, 0, (len >>> 24) & 255, (len >> 16) & 255, (len >> 8) & 255, len & 255);
  if (!opts.mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i & 3]));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

test('ws frames: masked and unmasked, fragmented, 16/64-bit lengths, control frames, byte-by-byte', () => {
  const got: WsMessage[] = [];
  const r = new WsFrameReader(1000, (m) => got.push(m));
  const big = Buffer.alloc(70_000, 0x62);
  const stream = Buffer.concat([
    frame(1, Buffer.from('hello'), { mask: true }),
    frame(1, Buffer.from('frag-'), { fin: false }),
    frame(9, Buffer.from('p')),
    frame(0, Buffer.from('ment')),
    frame(2, Buffer.alloc(300, 7), { mask: true }),
    frame(2, big),
    frame(8, Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65]), { mask: true }),
  ]);
  for (let i = 0; i < stream.length; i += 997) r.push(stream.subarray(i, i + 997));
  assert.deepEqual(got.map((m) => m.type), ['text', 'ping', 'text', 'binary', 'binary', 'close']);
  assert.equal(Buffer.from(got[0].head).toString(), 'hello');
  assert.equal(Buffer.from(got[2].head).toString(), 'frag-ment');
  assert.equal(got[3].size, 300);
  assert.equal(got[4].size, 70_000);
  assert.equal(got[4].head.length, 1000);
  assert.equal(got[5].code, 1000);
  assert.equal(Buffer.from(got[5].head).toString(), 'bye');
});

test('scrubber: replaces injected credentials with same-length stars, also across chunk edges', () => {
  const s = new SecretScrubber(['sk-live-SECRET-123']);
  const out = Buffer.concat([s.push(Buffer.from('{"key":"sk-live-SE')), s.push(Buffer.from('CRET-123","x":"sk-live-SECRET-123"}\n\n')), s.flush()]).toString();
  assert.equal(out, `{"key":"${'*'.repeat(18)}","x":"${'*'.repeat(18)}"}\n\n`);
  assert.equal(s.hits, 2);
  // a tail that only looks like the start of a secret is released at the end
  const t = new SecretScrubber(['sk-live-SECRET-123']);
  const a = t.push(Buffer.from('data: sk-li'));
  assert.equal(a.toString(), 'data: ');
  assert.equal(Buffer.concat([t.push(Buffer.from('ne\n')), t.flush()]).toString(), 'sk-line\n');
});

test('payload: head, size, sha256; gzip decoded and JSON pretty-printed; binary as base64', () => {
  const json = JSON.stringify({ a: 1, b: [1, 2] });
  const gz = zlib.gzipSync(json);
  const tap = new PayloadTap(1024);
  tap.push(gz);
  const rec = bodyRecord(tap, tap.digest(), { 'content-type': 'application/json', 'content-encoding': 'gzip' }, 1024);
  assert.equal(rec.size, gz.length);
  assert.equal(rec.sha256, createHash('sha256').update(gz).digest('hex'));
  assert.equal(rec.decoded, 'gzip');
  assert.equal(rec.body, JSON.stringify({ a: 1, b: [1, 2] }, null, 2));
  const br = zlib.brotliCompressSync(Buffer.from('plain text '.repeat(1000)));
  const t2 = new PayloadTap(100);
  t2.push(br);
  const r2 = bodyRecord(t2, t2.digest(), { 'content-type': 'text/plain', 'content-encoding': 'br' }, 100);
  assert.equal(r2.encoding, 'utf8');
  assert.ok(r2.truncated);
  const t3 = new PayloadTap(8);
  t3.push(Buffer.from([0, 1, 2, 3, 255, 254, 0, 9, 9, 9]));
  const r3 = bodyRecord(t3, t3.digest(), { 'content-type': 'application/octet-stream' }, 8);
  assert.equal(r3.encoding, 'base64');
  assert.equal(r3.size, 10);
  assert.equal(Buffer.from(r3.body, 'base64').length, 8);
});

test('auth: bearer, x-api-key, basic (user = identity), configured header', () => {
  assert.deepEqual(presentedCredentials({ authorization: 'Bearer flt_abc' }), [{ via: 'bearer', identity: '', token: 'flt_abc', header: 'authorization' }]);
  assert.deepEqual(presentedCredentials({ 'x-api-key': 'flt_k' }), [{ via: 'x-api-key', identity: '', token: 'flt_k', header: 'x-api-key' }]);
  const basic = `Basic ${Buffer.from('claude:flt_p').toString('base64')}`;
  assert.deepEqual(presentedCredentials({ authorization: basic }), [{ via: 'basic', identity: 'claude', token: 'flt_p', header: 'authorization' }]);
  assert.equal(presentedCredentials({ 'x-gw': 'flt_h' }, 'X-GW')[0].token, 'flt_h');
  assert.deepEqual(presentedCredentials({}), []);
});

test('lineage: SQL, shell, kubectl and HTTP candidates out of tool arguments', () => {
  assert.deepEqual(extractCommandCandidates({ name: 'run_sql', arguments: '{"sql":"DROP TABLE users;"}' }), [{ kind: 'sql', text: 'DROP TABLE users;' }]);
  const bash = extractCommandCandidates({ name: 'Bash', arguments: JSON.stringify({ command: 'psql -h 127.0.0.1 -c "DELETE FROM orders WHERE id = 3" && kubectl -n prod get pods' }) });
  assert.ok(bash.some((c) => c.kind === 'sql' && c.text === 'DELETE FROM orders WHERE id = 3'));
  assert.ok(bash.some((c) => c.kind === 'kubectl' && c.text === 'kubectl -n prod get pods'));
  assert.ok(bash.some((c) => c.kind === 'shell'));
  const nested = extractCommandCandidates({ name: 'exec', arguments: JSON.stringify({ params: { cmd: ['bash', '-lc', 'ssh web-1 uptime'] } }) });
  assert.ok(nested.some((c) => c.kind === 'shell' && c.text === 'uptime'));
  const heredoc = extractCommandCandidates({ name: 'shell', arguments: JSON.stringify({ command: "psql app <<'SQL'\nUPDATE t SET x = 1;\nSELECT 2;\nSQL\n" }) });
  assert.deepEqual(heredoc.filter((c) => c.kind === 'sql').map((c) => c.text), ['UPDATE t SET x = 1', 'SELECT 2']);
  const curl = extractCommandCandidates({ name: 'Bash', arguments: JSON.stringify({ command: 'curl -s -X POST http://127.0.0.1:8788/v1/items?x=1 -d @f' }) });
  assert.ok(curl.some((c) => c.kind === 'http' && c.text === 'POST /v1/items?x=1'));
  assert.deepEqual(extractCommandCandidates({ name: 'x', arguments: 'not json' }), [{ kind: 'shell', text: 'not json' }]);
});

test('lineage: matching is tolerant of case, whitespace, semicolons, trailing newline', () => {
  const sql = { kind: 'sql' as const, text: 'DROP   TABLE users;' };
  assert.ok(matchesCommand(sql, 'drop table users'));
  assert.ok(matchesCommand(sql, 'DROP TABLE users;\n'));
  assert.ok(!matchesCommand(sql, 'DROP TABLE users2'));
  assert.ok(!matchesCommand({ kind: 'sql', text: "SELECT 'A'" }, "select 'a'"));
  assert.ok(matchesCommand({ kind: 'sql', text: 'BEGIN; DELETE FROM t WHERE id=1; COMMIT;' }, 'DELETE FROM t WHERE id = 1'));
  assert.ok(matchesCommand({ kind: 'shell', text: 'ls -la /tmp\n' }, 'ls  -la /tmp'));
  assert.ok(matchesCommand({ kind: 'shell', text: "ssh web-1 'systemctl restart app'" }, 'systemctl restart app'));
  assert.ok(!matchesCommand({ kind: 'shell', text: 'rm -rf /srv/app' }, 'ls'));
  assert.ok(matchesCommand({ kind: 'kubectl', text: 'kubectl -n prod delete pod web-1' }, 'delete pod web-1 -n prod'));
  assert.ok(!matchesCommand({ kind: 'kubectl', text: 'kubectl delete pod web-1' }, 'kubectl delete pod web-2'));
  assert.ok(matchesCommand({ kind: 'http', text: 'GET /v1/items' }, 'GET /v1/items?page=2'));
  assert.deepEqual(toolCallsOf({ toolCalls: [{ id: 'a', name: 'run_sql', arguments: '{}' }] }), [{ id: 'a', name: 'run_sql', arguments: '{}' }]);
});
