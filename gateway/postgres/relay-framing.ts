/**
 * Framing of the wire after login: whole protocol messages cut out of arbitrary TCP chunks, one
 * direction at a time, with the header checks that keep a length from being trusted blindly.
 * Nothing here knows what a message means; the relay decides that per frame.
 */
import { checkFrameHeader, ProtocolError } from './client-messages';

/**
 * Statement-carrying client messages (Query, Parse, Bind, FunctionCall) above this size are
 * refused from their header, before any of the declared bytes are buffered; PostgreSQL's own
 * limit (1 GiB) would let one message hold that much gateway memory. CopyData keeps the wide
 * limit: COPY streams many messages, and each is forwarded as it completes.
 * `options.maxMessageBytes` on the connection changes it.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const CAPPED_TYPES = new Set([0x51, 0x50, 0x42, 0x46]);
const TYPE_NAMES: Record<number, string> = { 0x51: 'Query', 0x50: 'Parse', 0x42: 'Bind', 0x46: 'FunctionCall' };

export class MessageTooLarge extends Error {
  constructor(readonly type: number, readonly size: number, readonly limit: number) {
    super(`${TYPE_NAMES[type] ?? 'message'} of ${size} bytes exceeds the gateway's limit of ${limit} bytes`);
  }
}

export function maxMessageBytes(options: Record<string, unknown> | undefined): number {
  const v = options?.maxMessageBytes;
  return typeof v === 'number' && Number.isInteger(v) && v >= 1024 && v <= 0x40000000 ? v : DEFAULT_MAX_MESSAGE_BYTES;
}

/** Frontend header check with the statement-size cap: returns the frame's total length (type byte included). */
export function clientHeaderCheck(limit: number): (type: number, length: number) => number {
  return (type, length) => {
    if (CAPPED_TYPES.has(type) && length - 4 > limit) throw new MessageTooLarge(type, length - 4, limit);
    return checkFrameHeader(type, length);
  };
}

/** Backend frames: any type byte, sane length (the relay never trusts a length blindly). */
export function checkServerHeader(_type: number, length: number): number {
  if (length < 4 || length > 0x40000000) throw new ProtocolError(`invalid message length ${length} from server`);
  return length + 1;
}

/** An incomplete frame kept between chunks of one direction. */
export interface Carry {
  carry: Buffer[];
  carryLen: number;
}

/**
 * Runs handle(buf, start, frameLen) for each whole frame in chunk, keeping an incomplete tail.
 * A frame split across chunks is reassembled into its own buffer (inChunk false); frames wholly
 * inside the chunk are handed as offsets into it (inChunk true), so the caller can forward
 * contiguous runs without copying. When stopped() turns true after a frame, the bytes after
 * that frame come back unread as `rest`.
 */
export function frames(
  chunk: Buffer,
  carry: Buffer[],
  carryLen: number,
  check: (type: number, len: number) => number,
  handle: (buf: Buffer, start: number, frameLen: number, inChunk: boolean) => void,
  stopped: () => boolean = () => false,
): Carry & { rest?: Buffer } {
  let pos = 0;
  if (carryLen > 0) {
    // complete the header first, then the frame
    if (carryLen < 5) {
      const want = Math.min(5 - carryLen, chunk.length);
      carry.push(chunk.subarray(0, want));
      carryLen += want;
      pos = want;
      if (carryLen < 5) return { carry, carryLen };
      const head = Buffer.concat(carry);
      carry = [head];
    }
    const head = carry[0].length >= 5 ? carry[0] : Buffer.concat(carry);
    const total = check(head[0], head.readInt32BE(1));
    const want = Math.min(total - carryLen, chunk.length - pos);
    if (want > 0) carry.push(chunk.subarray(pos, pos + want));
    carryLen += want;
    pos += want;
    if (carryLen < total) return { carry, carryLen };
    const frame = Buffer.concat(carry, total);
    handle(frame, 0, total, false);
    if (stopped()) return { carry: [], carryLen: 0, rest: Buffer.concat([frame, chunk.subarray(pos)]) };
    carry = [];
    carryLen = 0;
  }
  const len = chunk.length;
  while (pos + 5 <= len) {
    const total = check(chunk[pos], chunk.readInt32BE(pos + 1));
    if (pos + total > len) break;
    handle(chunk, pos, total, true);
    if (stopped()) return { carry: [], carryLen: 0, rest: Buffer.from(chunk.subarray(pos)) };
    pos += total;
  }
  if (pos < len) {
    // copy the tail: the chunk itself may be large and should not be retained
    const tail = Buffer.from(chunk.subarray(pos));
    return { carry: [tail], carryLen: tail.length };
  }
  return { carry: [], carryLen: 0 };
}
