/**
 * Fuzzes the PostgreSQL frontend-message parser: whatever bytes an agent sends, the parser
 * returns a message or throws its own ProtocolError (which ends only that session), never reads
 * past the frame, and gives back exactly what a well-formed message carried.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkFrameHeader, parseClientMessage, parseStartupPacket, ProtocolError, type ClientMessage } from '../../gateway/postgres/client-messages';
import * as wire from '../../gateway/postgres/wire';
import { budget } from './budget';

const TYPES = 'QPBDECSHXdcfFp'.split('');

function frame(type: string | number, body: Buffer): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out[0] = typeof type === 'number' ? type : type.charCodeAt(0);
  out.writeInt32BE(body.length + 4, 1);
  body.copy(out, 5);
  return out;
}

/** Parses a frame the way the relay does: header check first, then the body. */
function parseFrame(buf: Buffer, start: number): ClientMessage {
  const total = checkFrameHeader(buf[start], buf.readInt32BE(start + 1));
  if (start + total > buf.length) throw new ProtocolError('incomplete frame');
  return parseClientMessage(buf, start, total);
}

function outcome(f: () => unknown): { ok: unknown } | { error: string } {
  try {
    return { ok: f() };
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw new Error(`threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    assert.doesNotMatch(err.message, /\n/);
    return { error: err.message };
  }
}

const int16 = fc.integer({ min: -32768, max: 32767 });
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const be16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const be32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

/** Bodies that look like messages (counts, lengths, strings) but with hostile values. */
const bodyPiece = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  int16.map(be16),
  int32.map(be32),
  fc.constantFrom(be16(0), be16(1), be16(-1), be16(32767), be32(-1), be32(-2), be32(0), be32(2 ** 31 - 1), Buffer.from([0])),
  fc.string({ maxLength: 20 }).map((s) => Buffer.from(s + '\0')),
);
const hostileBody = fc.array(bodyPiece, { maxLength: 8 }).map((parts) => Buffer.concat(parts));

test('any frame of a known type parses or fails with a ProtocolError, and never reads past its end', () => {
  fc.assert(
    fc.property(fc.constantFrom(...TYPES), hostileBody, fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.nat(7), (type, body, trailing, lead) => {
      const f = frame(type, body);
      const alone = outcome(() => parseFrame(f, 0));
      // The same frame inside a bigger buffer, with other bytes before and after it.
      const padded = Buffer.concat([Buffer.alloc(lead, 0x41), f, Buffer.from(trailing)]);
      const inside = outcome(() => parseFrame(padded, lead));
      assert.deepStrictEqual(inside, alone);
    }),
    budget(2000),
  );
});

test('random bytes as a frame header and body: a message or a ProtocolError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 5, maxLength: 200 }), (bytes) => {
      const buf = Buffer.from(bytes);
      outcome(() => parseFrame(buf, 0));
    }),
    budget(2000),
  );
});

test('random startup packets: ssl, gssenc, cancel, startup or a ProtocolError', () => {
  const packet = fc.oneof(
    fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a)),
    fc.tuple(fc.constantFrom(wire.PROTOCOL_3, wire.SSL_REQUEST, wire.CANCEL_REQUEST, wire.GSSENC_REQUEST, 0x00020000, 0x00030001), hostileBody).map(([code, body]) =>
      Buffer.concat([be32(8 + body.length), be32(code), body]),
    ),
  );
  fc.assert(fc.property(packet, (p) => void outcome(() => parseStartupPacket(p))), budget(2000));
});

const cstr = fc.string({ maxLength: 30, unit: 'grapheme' }).filter((s) => !s.includes('\0'));
const key = cstr.filter((s) => s !== '');

test('round trip: a startup message built by wire.ts parses back to its parameters', () => {
  fc.assert(
    fc.property(fc.dictionary(key, cstr, { maxKeys: 8 }), (params) => {
      const parsed = parseStartupPacket(wire.startupMessage(params));
      assert.equal(parsed.kind, 'startup');
      assert.deepEqual({ ...(parsed as { params: Record<string, string> }).params }, { ...params });
    }),
    budget(500),
  );
});

/** A test-side encoder for the frontend messages the gateway reads (it never writes them itself). */
function encode(m: ClientMessage): Buffer {
  const s = (x: string) => Buffer.from(x + '\0');
  const params = (ps: Array<{ format: number; value: Buffer | null }>) =>
    Buffer.concat([be16(ps.length), ...ps.map((p) => (p.value === null ? be32(-1) : Buffer.concat([be32(p.value.length), p.value])))]);
  const formats = (fs: number[]) => Buffer.concat([be16(fs.length), ...fs.map(be16)]);
  switch (m.type) {
    case 'Query':
      return frame('Q', s(m.sql));
    case 'Parse':
      return frame('P', Buffer.concat([s(m.name), s(m.sql), be16(m.paramTypes.length), ...m.paramTypes.map((t) => be32(t | 0))]));
    case 'Bind':
      return frame('B', Buffer.concat([s(m.portal), s(m.statement), formats(m.params.map((p) => p.format)), params(m.params), formats(m.resultFormats)]));
    case 'Describe':
      return frame('D', Buffer.concat([Buffer.from(m.target), s(m.name)]));
    case 'Execute':
      return frame('E', Buffer.concat([s(m.portal), be32(m.maxRows)]));
    case 'Close':
      return frame('C', Buffer.concat([Buffer.from(m.target), s(m.name)]));
    case 'CopyFail':
      return frame('f', s(m.message));
    case 'FunctionCall':
      return frame('F', Buffer.concat([be32(m.oid | 0), formats(m.args.map((p) => p.format)), params(m.args), be16(0)]));
    case 'Password':
      return wire.passwordMessage(m.body.toString('utf8', 0, m.body.length - 1));
    default:
      return frame({ Sync: 'S', Flush: 'H', Terminate: 'X', CopyDone: 'c' }[m.type as 'Sync'], Buffer.alloc(0));
  }
}

const rawParam = fc.record({ format: fc.constantFrom(0, 1), value: fc.option(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)), { nil: null }) });
const message: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.record({ type: fc.constant('Query' as const), sql: cstr }),
  fc.record({ type: fc.constant('Parse' as const), name: cstr, sql: cstr, paramTypes: fc.array(fc.nat({ max: 2 ** 32 - 1 }), { maxLength: 6 }) }),
  fc.record({ type: fc.constant('Bind' as const), portal: cstr, statement: cstr, params: fc.array(rawParam, { maxLength: 6 }), resultFormats: fc.array(fc.constantFrom(0, 1), { maxLength: 4 }) }),
  fc.record({ type: fc.constant('Describe' as const), target: fc.constantFrom('S' as const, 'P' as const), name: cstr }),
  fc.record({ type: fc.constant('Execute' as const), portal: cstr, maxRows: int32 }),
  fc.record({ type: fc.constant('Close' as const), target: fc.constantFrom('S' as const, 'P' as const), name: cstr }),
  fc.record({ type: fc.constant('CopyFail' as const), message: cstr }),
  fc.record({ type: fc.constant('FunctionCall' as const), oid: fc.nat({ max: 2 ** 32 - 1 }), args: fc.array(rawParam, { maxLength: 4 }) }),
  fc.constantFrom<ClientMessage>({ type: 'Sync' }, { type: 'Flush' }, { type: 'Terminate' }, { type: 'CopyDone' }),
);

test('round trip: every well-formed frontend message parses back to what was sent', () => {
  fc.assert(
    fc.property(message, (m) => {
      const buf = encode(m);
      const parsed = parseFrame(buf, 0);
      // A format list of one applies to every parameter: compare what the parser reports.
      if (m.type === 'Bind' || m.type === 'FunctionCall') {
        const list = m.type === 'Bind' ? m.params : m.args;
        const got = parsed as typeof m;
        const gotList = got.type === 'Bind' ? got.params : (got as { args: typeof list }).args;
        assert.deepStrictEqual(gotList.map((p) => p.value && Buffer.from(p.value)), list.map((p) => p.value));
        assert.deepStrictEqual(gotList.map((p) => p.format), list.length === 1 ? gotList.map(() => list[0].format) : list.map((p) => p.format));
        if (m.type === 'Bind') assert.deepStrictEqual([got.type, (got as typeof m).portal, (got as typeof m).statement, (got as typeof m).resultFormats], [m.type, m.portal, m.statement, m.resultFormats]);
        else assert.equal((got as typeof m).oid, m.oid);
        return;
      }
      // fast-check's records have no prototype; the parser's are plain objects.
      assert.deepStrictEqual(parsed, { ...m });
    }),
    budget(1000),
  );
});
