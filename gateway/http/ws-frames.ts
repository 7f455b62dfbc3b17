/**
 * Incremental WebSocket (RFC 6455) frame reader, for recording only: the relay forwards raw
 * bytes and feeds a copy here. Reassembles fragmented messages, unmasks client frames, keeps
 * at most `cap` bytes of each message (with its full size). Pure: no Node imports.
 */

export type WsMessageType = 'text' | 'binary' | 'close' | 'ping' | 'pong';

export interface WsMessage {
  type: WsMessageType;
  /** the first `cap` bytes of the payload */
  head: Uint8Array;
  /** full payload size in bytes */
  size: number;
  /** for close frames */
  code?: number;
  /** RSV1 was set: the payload is compressed (permessage-deflate) and recorded as received */
  compressed?: boolean;
}

export class WsFrameError extends Error {
  readonly code = 'WS_FRAME';
}

const enum State {
  Header,
  Payload,
}

export class WsFrameReader {
  private pending: Uint8Array = new Uint8Array(0);
  private state = State.Header;
  private opcode = 0;
  private fin = false;
  private mask: Uint8Array | null = null;
  private remaining = 0;
  private maskOffset = 0;
  /** current data message being reassembled across continuation frames */
  private msgType: 'text' | 'binary' | null = null;
  private msgCompressed = false;
  private msgChunks: Uint8Array[] = [];
  private msgKept = 0;
  private msgSize = 0;
  /** current control frame (never fragmented, ≤125 bytes) */
  private ctrl: number[] = [];
  private broken = false;

  constructor(
    private readonly cap: number,
    private readonly onMessage: (m: WsMessage) => void,
  ) {}

  push(chunk: Uint8Array): void {
    if (this.broken) return;
    let buf = chunk;
    if (this.pending.length > 0) {
      const joined = new Uint8Array(this.pending.length + chunk.length);
      joined.set(this.pending, 0);
      joined.set(chunk, this.pending.length);
      buf = joined;
      this.pending = new Uint8Array(0);
    }
    let off = 0;
    try {
      while (off < buf.length) {
        if (this.state === State.Header) {
          const used = this.header(buf, off);
          if (used === 0) {
            this.pending = buf.slice(off);
            return;
          }
          off += used;
          if (this.remaining === 0) this.endFrame();
        } else {
          const n = Math.min(this.remaining, buf.length - off);
          this.payload(buf.subarray(off, off + n));
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) this.endFrame();
        }
      }
    } catch (err) {
      // A stream we cannot parse is still relayed; we just stop recording its messages.
      this.broken = true;
      throw err;
    }
  }

  /** Parses a frame header at `off`; returns bytes used, 0 when incomplete. */
  private header(buf: Uint8Array, off: number): number {
    const avail = buf.length - off;
    if (avail < 2) return 0;
    const b0 = buf[off];
    const b1 = buf[off + 1];
    let len = b1 & 0x7f;
    const masked = (b1 & 0x80) !== 0;
    let pos = off + 2;
    if (len === 126) {
      if (avail < 4) return 0;
      len = (buf[pos] << 8) | buf[pos + 1];
      pos += 2;
    } else if (len === 127) {
      if (avail < 10) return 0;
      const hi = ((buf[pos] << 24) >>> 0) + (buf[pos + 1] << 16) + (buf[pos + 2] << 8) + buf[pos + 3];
      const lo = ((buf[pos + 4] << 24) >>> 0) + (buf[pos + 5] << 16) + (buf[pos + 6] << 8) + buf[pos + 7];
      if (hi > 0x1fffff) throw new WsFrameError('frame length out of range');
      len = hi * 0x100000000 + lo;
      pos += 8;
    }
    if (masked) {
      if (buf.length - pos < 4) return 0;
      this.mask = buf.slice(pos, pos + 4);
      pos += 4;
    } else {
      this.mask = null;
    }
    this.fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const rsv1 = (b0 & 0x40) !== 0;
    this.opcode = opcode;
    this.remaining = len;
    this.maskOffset = 0;
    if (opcode >= 0x8) {
      if (len > 125) throw new WsFrameError('control frame too long');
      this.ctrl = [];
    } else if (opcode === 0x1 || opcode === 0x2) {
      this.msgType = opcode === 0x1 ? 'text' : 'binary';
      this.msgCompressed = rsv1;
      this.msgChunks = [];
      this.msgKept = 0;
      this.msgSize = 0;
    } else if (opcode === 0x0) {
      if (this.msgType === null) throw new WsFrameError('continuation without a message');
    } else {
      throw new WsFrameError(`unknown opcode ${opcode}`);
    }
    this.state = State.Payload;
    return pos - off;
  }

  private payload(part: Uint8Array): void {
    let data = part;
    if (this.opcode >= 0x8) {
      data = this.unmask(part);
      for (const b of data) this.ctrl.push(b);
      return;
    }
    this.msgSize += part.length;
    const room = this.cap - this.msgKept;
    if (room <= 0) {
      this.maskOffset += part.length;
      return;
    }
    const take = part.length > room ? part.subarray(0, room) : part;
    const plain = this.unmask(take);
    this.maskOffset += part.length - take.length;
    this.msgChunks.push(plain);
    this.msgKept += plain.length;
  }

  private unmask(part: Uint8Array): Uint8Array {
    if (!this.mask) return part.slice();
    const out = new Uint8Array(part.length);
    for (let i = 0; i < part.length; i++) out[i] = part[i] ^ this.mask[(this.maskOffset + i) & 3];
    this.maskOffset += part.length;
    return out;
  }

  private endFrame(): void {
    this.state = State.Header;
    if (this.opcode >= 0x8) {
      const bytes = Uint8Array.from(this.ctrl);
      const type: WsMessageType = this.opcode === 0x8 ? 'close' : this.opcode === 0x9 ? 'ping' : 'pong';
      const m: WsMessage = { type, head: type === 'close' ? bytes.subarray(2) : bytes, size: bytes.length };
      if (type === 'close' && bytes.length >= 2) m.code = (bytes[0] << 8) | bytes[1];
      this.onMessage(m);
      return;
    }
    if (!this.fin || this.msgType === null) return;
    const head = new Uint8Array(this.msgKept);
    let o = 0;
    for (const c of this.msgChunks) {
      head.set(c, o);
      o += c.length;
    }
    const m: WsMessage = { type: this.msgType, head, size: this.msgSize };
    if (this.msgCompressed) m.compressed = true;
    this.msgType = null;
    this.msgChunks = [];
    this.onMessage(m);
  }
}
