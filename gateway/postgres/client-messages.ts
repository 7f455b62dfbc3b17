/**
 * The frontend (client → server) half of the PostgreSQL wire protocol, parsed by hand because
 * the wire format is the product here: every byte an agent sends is decoded and checked before
 * it is forwarded, and anything malformed is a ProtocolError that ends only that session.
 */

export class ProtocolError extends Error {
  readonly code = 'PG_PROTOCOL';
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** A bound parameter as received: null, or raw bytes with its format code (0 text, 1 binary). */
export interface RawParam {
  format: number;
  value: Buffer | null;
}

export type ClientMessage =
  | { type: 'Query'; sql: string }
  | { type: 'Parse'; name: string; sql: string; paramTypes: number[] }
  | { type: 'Bind'; portal: string; statement: string; params: RawParam[]; resultFormats: number[] }
  | { type: 'Describe'; target: 'S' | 'P'; name: string }
  | { type: 'Execute'; portal: string; maxRows: number }
  | { type: 'Close'; target: 'S' | 'P'; name: string }
  | { type: 'Sync' }
  | { type: 'Flush' }
  | { type: 'Terminate' }
  | { type: 'CopyData'; length: number }
  | { type: 'CopyDone' }
  | { type: 'CopyFail'; message: string }
  | { type: 'FunctionCall'; oid: number; args: RawParam[] }
  | { type: 'Password'; body: Buffer };

/** Largest body accepted per message type; PostgreSQL itself allows 1 GB for the "large" kinds. */
const LARGE_LIMIT = 1 << 30;
const SMALL_LIMIT = 10000;
const LARGE_TYPES = new Set(['Q', 'P', 'B', 'd', 'F', 'p']);
const KNOWN_TYPES = new Set(['Q', 'P', 'B', 'D', 'E', 'C', 'S', 'H', 'X', 'd', 'c', 'f', 'F', 'p']);

/** Validates a frame header; returns the total frame length (1 + length field). */
export function checkFrameHeader(type: number, length: number): number {
  const t = String.fromCharCode(type);
  if (!KNOWN_TYPES.has(t)) throw new ProtocolError(`invalid frontend message type ${type}`);
  if (length < 4) throw new ProtocolError(`invalid message length ${length}`);
  const limit = LARGE_TYPES.has(t) ? LARGE_LIMIT : SMALL_LIMIT;
  if (length - 4 > limit) throw new ProtocolError(`message of type '${t}' too long (${length} bytes)`);
  return length + 1;
}

/** Sequential reader over one message body; every read is bounds-checked. */
class BodyReader {
  private pos = 0;
  constructor(private readonly buf: Buffer, private readonly start: number, private readonly end: number) {
    this.pos = start;
  }
  int16(): number {
    if (this.pos + 2 > this.end) throw new ProtocolError('truncated message');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    if (this.pos + 4 > this.end) throw new ProtocolError('truncated message');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  byte(): number {
    if (this.pos + 1 > this.end) throw new ProtocolError('truncated message');
    return this.buf[this.pos++];
  }
  cstring(): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) throw new ProtocolError('unterminated string in message');
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }
  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.end) throw new ProtocolError('truncated message');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  count(): number {
    const n = this.int16();
    if (n < 0) throw new ProtocolError('negative count in message');
    return n;
  }
  done(): void {
    if (this.pos !== this.end) throw new ProtocolError('trailing bytes in message');
  }
}

function readParams(r: BodyReader, formats: number[]): RawParam[] {
  const n = r.count();
  if (formats.length > 1 && formats.length !== n) throw new ProtocolError('parameter format count mismatch');
  const params: RawParam[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
    if (len === -1) params[i] = { format, value: null };
    else if (len < -1) throw new ProtocolError('invalid parameter length');
    else params[i] = { format, value: r.bytes(len) };
  }
  return params;
}

function readFormats(r: BodyReader): number[] {
  const n = r.count();
  const out: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const f = r.int16();
    if (f !== 0 && f !== 1) throw new ProtocolError(`invalid format code ${f}`);
    out[i] = f;
  }
  return out;
}

function target(b: number): 'S' | 'P' {
  if (b === 0x53) return 'S';
  if (b === 0x50) return 'P';
  throw new ProtocolError(`invalid Describe/Close target ${b}`);
}

/**
 * Parses one complete frame at buf[start] (type byte included). Subarrays point into buf,
 * so callers must not keep them beyond the buffer's life.
 */
export function parseClientMessage(buf: Buffer, start: number, frameLength: number): ClientMessage {
  const type = String.fromCharCode(buf[start]);
  const r = new BodyReader(buf, start + 5, start + frameLength);
  let msg: ClientMessage;
  switch (type) {
    case 'Q':
      msg = { type: 'Query', sql: r.cstring() };
      break;
    case 'P': {
      const name = r.cstring();
      const sql = r.cstring();
      const n = r.count();
      const paramTypes: number[] = new Array(n);
      for (let i = 0; i < n; i++) paramTypes[i] = r.int32() >>> 0;
      msg = { type: 'Parse', name, sql, paramTypes };
      break;
    }
    case 'B': {
      const portal = r.cstring();
      const statement = r.cstring();
      const formats = readFormats(r);
      const params = readParams(r, formats);
      const resultFormats = readFormats(r);
      msg = { type: 'Bind', portal, statement, params, resultFormats };
      break;
    }
    case 'D':
      msg = { type: 'Describe', target: target(r.byte()), name: r.cstring() };
      break;
    case 'E':
      msg = { type: 'Execute', portal: r.cstring(), maxRows: r.int32() };
      break;
    case 'C':
      msg = { type: 'Close', target: target(r.byte()), name: r.cstring() };
      break;
    case 'S':
      msg = { type: 'Sync' };
      break;
    case 'H':
      msg = { type: 'Flush' };
      break;
    case 'X':
      msg = { type: 'Terminate' };
      break;
    case 'd':
      return { type: 'CopyData', length: frameLength - 5 };
    case 'c':
      msg = { type: 'CopyDone' };
      break;
    case 'f':
      msg = { type: 'CopyFail', message: r.cstring() };
      break;
    case 'F': {
      const oid = r.int32() >>> 0;
      const formats = readFormats(r);
      const args = readParams(r, formats);
      r.int16();
      msg = { type: 'FunctionCall', oid, args };
      break;
    }
    case 'p':
      return { type: 'Password', body: buf.subarray(start + 5, start + frameLength) };
    default:
      throw new ProtocolError(`invalid frontend message type ${buf[start]}`);
  }
  r.done();
  return msg;
}

/** The untyped first packet of a connection. */
export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number }
  | { kind: 'startup'; params: Record<string, string> };

/** Parses a complete startup packet (length word included). */
export function parseStartupPacket(buf: Buffer): StartupPacket {
  if (buf.length < 8) throw new ProtocolError('invalid length of startup packet');
  const code = buf.readInt32BE(4);
  if (code === 80877103 && buf.length === 8) return { kind: 'ssl' };
  if (code === 80877104 && buf.length === 8) return { kind: 'gssenc' };
  if (code === 80877102 && buf.length === 16) return { kind: 'cancel', pid: buf.readInt32BE(8), secret: buf.readInt32BE(12) };
  if (code >>> 16 !== 3) throw new ProtocolError(`unsupported frontend protocol ${code >>> 16}.${code & 0xffff}`);
  const r = new BodyReader(buf, 8, buf.length);
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (;;) {
    if (buf[buf.length - 1] !== 0) throw new ProtocolError('invalid startup packet layout');
    const key = r.cstring();
    if (key === '') break;
    params[key] = r.cstring();
  }
  r.done();
  return { kind: 'startup', params };
}
