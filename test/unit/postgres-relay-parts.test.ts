// The relay's three parts on their own: framing over any chunking, the response queue under
// pipelining, and result capture of a multi-row answer (masked by column name, live or not).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createMasker } from '../../gateway/masking';
import { ProtocolError } from '../../gateway/postgres/client-messages';
import { encodeDataRow } from '../../gateway/postgres/server-messages';
import * as wire from '../../gateway/postgres/wire';
import { checkServerHeader, clientHeaderCheck, frames, MessageTooLarge } from '../../gateway/postgres/relay-framing';
import { ResponseQueue, runsOf } from '../../gateway/postgres/relay-queue';
import { captureCopyData, captureRow, resultOf, Running, settleResult, tagRowCount, type Portal } from '../../gateway/postgres/relay-capture';

const masker = createMasker({ fingerprintKey: new Uint8Array(32).fill(7) });

/** Feeds chunks through frames() as the relay does, collecting whole frames (copied). */
function reframe(chunks: Buffer[], check: (t: number, l: number) => number): { got: Buffer[]; leftover: number } {
  let carry: Buffer[] = [];
  let carryLen = 0;
  const got: Buffer[] = [];
  for (const c of chunks) {
    const r = frames(c, carry, carryLen, check, (buf, start, len) => got.push(Buffer.from(buf.subarray(start, start + len))));
    carry = r.carry;
    carryLen = r.carryLen;
  }
  return { got, leftover: carryLen };
}

function cutAt(all: Buffer, points: number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (all.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of cuts) {
    out.push(all.subarray(from, c));
    from = c;
  }
  out.push(all.subarray(from));
  return out;
}

test('framing: any chunking of a message stream yields the same whole frames, in order, nothing left over', () => {
  const msg = fc.tuple(fc.constantFrom('D', 'C', 'T', 'Z', 'E', 'N', 'd'), fc.uint8Array({ maxLength: 300 }))
    .map(([t, body]) => wire.message(t, Buffer.from(body)));
  fc.assert(
    fc.property(fc.array(msg, { minLength: 1, maxLength: 20 }), fc.array(fc.nat(), { maxLength: 40 }), (msgs, points) => {
      const all = Buffer.concat(msgs);
      const { got, leftover } = reframe(cutAt(all, points), checkServerHeader);
      assert.equal(leftover, 0);
      assert.deepEqual(got.map((b) => b.toString('hex')), msgs.map((b) => b.toString('hex')));
    }),
    { numRuns: 300 },
  );
});

test('framing: a byte-at-a-time stream keeps its incomplete tail until the frame completes', () => {
  const m = wire.message('C', Buffer.from('SELECT 1\0'));
  const { got, leftover } = reframe([...m.subarray(0, m.length - 1)].map((b) => Buffer.from([b])), checkServerHeader);
  assert.equal(got.length, 0);
  assert.equal(leftover, m.length - 1);
  assert.deepEqual(reframe([...m].map((b) => Buffer.from([b])), checkServerHeader).got, [m]);
});

test('framing: stopping after a frame hands back the unread bytes from that frame on', () => {
  const a = wire.message('Q', Buffer.from('select 1\0'));
  const b = wire.message('Q', Buffer.from('select 2\0'));
  let seen = 0;
  const r = frames(Buffer.concat([a, b]), [], 0, clientHeaderCheck(1 << 20), () => seen++, () => seen === 1);
  assert.equal(seen, 1);
  assert.deepEqual(r.rest, Buffer.concat([a, b]));
});

test('framing: a lying length is refused from the header, before its bytes are buffered', () => {
  const huge = Buffer.from([0x51, 0, 0x10, 0, 0]); // Query claiming 1 MiB
  assert.throws(() => frames(huge, [], 0, clientHeaderCheck(4096), () => undefined), MessageTooLarge);
  assert.throws(() => frames(Buffer.from([0x44, 0, 0, 0, 2]), [], 0, checkServerHeader, () => undefined), ProtocolError);
});

test('queue: pipelined Parse/Bind/Execute/Sync and a simple query are answered in the order sent', () => {
  const q = new ResponseQueue();
  const r1 = new Running(null, null);
  const r2 = new Running(null, null);
  const s1 = new Running(null, null);
  const s2 = new Running(null, null);
  q.items.push({ kind: 'bind' }, { kind: 'execute', run: r1 }, { kind: 'bind' }, { kind: 'execute', run: r2 }, { kind: 'sync' }, { kind: 'query', runs: [s1, s2], idx: 0 });
  assert.equal(q.currentRun(), null); // BindComplete comes first
  q.items.shift();
  assert.equal(q.currentRun(), r1);
  q.advance(); // CommandComplete of r1
  q.items.shift(); // BindComplete
  assert.equal(q.currentRun(), r2);
  q.advance();
  const unanswered: string[] = [];
  q.ready((p) => unanswered.push(p.kind)); // ReadyForQuery of the Sync
  assert.equal(unanswered.length, 0);
  assert.equal(q.currentRun(), s1);
  q.advance();
  assert.equal(q.currentRun(), s2);
  q.advance();
  assert.equal(q.currentRun(), null);
  q.ready((p) => unanswered.push(p.kind));
  assert.deepEqual(unanswered, ['query']);
  assert.equal(q.items.length, 0);
});

test('queue: an error drops the pipeline up to Sync; gateway-made answers wait their turn at the head', () => {
  const q = new ResponseQueue();
  const r1 = new Running(null, null);
  const r2 = new Running(null, null);
  const err = Buffer.from('E');
  q.items.push({ kind: 'execute', run: r1 }, { kind: 'execute', run: r2 }, { kind: 'sync' }, { kind: 'synthetic', error: err, ready: true }, { kind: 'sync' });
  const dropped = q.dropUntilSync();
  assert.deepEqual(dropped.flatMap(runsOf), [r1, r2]);
  assert.deepEqual([...q.dueSynthetics()], []); // the Sync is still ahead of it
  q.ready(() => assert.fail('a Sync abandons nothing'));
  assert.deepEqual([...q.dueSynthetics()].map((s) => s.error), [err]);
  assert.equal(q.head?.kind, 'sync');
});

test('capture: a multi-row result keeps its head rows, masks a secret column by name, and counts from the tag', () => {
  const portal: Portal = { stmt: null, params: [], sightings: [], resultFormats: [], columns: [{ name: 'id', typeOid: 23, format: 0 }, { name: 'api_key', typeOid: 25, format: 0 }] };
  const secret = 'sk_live_51HqZtK2eZvKYlo2C8Q9xW3mN7pR4tY6u';
  const rows = [1, 2, 3, 4, 5].map((i) => wire.message('D', encodeDataRow([Buffer.from(String(i)), Buffer.from(`${secret}${i}`)]).subarray(5)));
  for (const live of [false, true]) {
    const run = new Running(null, portal);
    const replaced: (Buffer | null)[] = [];
    for (const r of rows) replaced.push(captureRow({ masker, live, headRows: 3, maxValue: 8192 }, run, r, 0, r.length));
    run.tag = 'SELECT 5';
    run.rowCount = tagRowCount(run.tag) ?? -1;
    run.status = 'ok';
    const result = resultOf(run, { txStatus: 'I', sha256: null, error: null, notices: null, copyHead: '' });
    assert.equal(result.rowCount, 5);
    assert.equal(result.tag, 'SELECT 5');
    assert.deepEqual(result.columns, [{ name: 'id', type: 23 }, { name: 'api_key', type: 25 }]);
    const kept = result.rows as unknown[][];
    assert.equal(kept.length, 3, 'only the head rows are kept');
    assert.deepEqual(kept.map((r) => r[0]), ['1', '2', '3']);
    assert.ok(!JSON.stringify(result).includes(secret), 'no raw secret in the record');
    assert.ok(run.sightingsOut.length >= 1);
    // live masking rewrites the bytes the client gets; recording-only masking forwards them as they were
    if (live) assert.ok(replaced.every((b) => b !== null && !b.toString('utf8').includes(secret)));
    else assert.deepEqual(replaced, [null, null, null, null, null]);
  }
  assert.equal(tagRowCount('INSERT 0 7'), 7);
  assert.equal(tagRowCount('CREATE TABLE'), null);
});

test('capture: COPY OUT data is counted, hashed and its head kept; the settled result scrubs what the command sent', () => {
  const run = new Running(null, null);
  run.copy = 'out';
  const lines = ['1\talice\n', '2\tbob\n', '3\tcarol\n'].map((t) => wire.message('d', Buffer.from(t)));
  for (const m of lines) assert.equal(captureCopyData({ masker, live: false, headRows: 2, maxValue: 8192 }, run, m, 5, m.length), null);
  run.sightingsIn.push({ kind: 'password', fp: 'x', raw: 'hunter2-Very-Secret-9', column: 'password' });
  run.error = 'ERROR 22P02: invalid input syntax: "hunter2-Very-Secret-9"';
  run.status = 'error';
  const { result, sha256, error } = settleResult({ masker, live: false, headRows: 2, maxValue: 8192 }, run, 'E');
  assert.equal(result.rowCount, 3);
  assert.equal(result.copy, 'out');
  assert.equal(result.copyBytes, lines.reduce((n, m) => n + m.length - 5, 0));
  assert.deepEqual(result.rows, ['1\talice\n', '2\tbob\n']);
  assert.match(sha256 ?? '', /^[0-9a-f]{64}$/);
  assert.ok(error && !error.includes('hunter2-Very-Secret-9'), 'the sent secret is scrubbed from the server error');
  assert.equal(result.txStatus, 'E');
});
