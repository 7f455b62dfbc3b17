/**
 * Reads a copy of a SPDY/3.1 exec/attach connection for the recording (the bytes themselves are
 * relayed untouched): SYN_STREAM frames name each stream's `streamtype` (stdin, stdout, stderr,
 * error, resize) in a zlib-compressed header block, DATA frames carry the bytes. The header
 * dictionary is spdy-transport's; the compression context runs over a whole direction, so each
 * header block is inflated with everything before it (header blocks are few and small).
 */
import * as zlib from 'node:zlib';
import type { TerminalRecording } from './streams';

// spdy-transport ships no types; the dictionary is a table of Buffers by SPDY version
const DICTIONARY = (require('spdy-transport/lib/spdy-transport/protocol/spdy/dictionary') as Record<string, Buffer>)['3.1'];

const SYN_STREAM = 1;
/** the header block beyond which a direction stops being read (a broken or hostile stream) */
const MAX_HEADER_BYTES = 256 * 1024;

class Direction {
  private pending: Buffer = Buffer.alloc(0);
  private compressed: Buffer[] = [];
  private compressedSize = 0;
  private inflatedSize = 0;
  private broken = false;

  constructor(private readonly onFrame: (f: { syn?: { id: number; headers: Map<string, string> }; data?: { id: number; bytes: Buffer } }) => void) {}

  push(chunk: Buffer): void {
    if (this.broken) return;
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (buf.length >= 8) {
      const len = buf.readUIntBE(5, 3);
      if (buf.length < 8 + len) break;
      const frame = buf.subarray(0, 8 + len);
      buf = buf.subarray(8 + len);
      try {
        this.frame(frame);
      } catch {
        this.broken = true;
        return;
      }
    }
    this.pending = Buffer.from(buf);
  }

  private frame(f: Buffer): void {
    const control = (f[0] & 0x80) !== 0;
    const body = f.subarray(8);
    if (!control) {
      this.onFrame({ data: { id: f.readUInt32BE(0) & 0x7fffffff, bytes: body } });
      return;
    }
    const type = f.readUInt16BE(2);
    if (type !== SYN_STREAM || body.length < 10) return;
    const id = body.readUInt32BE(0) & 0x7fffffff;
    this.compressed.push(body.subarray(10));
    this.compressedSize += body.length - 10;
    if (this.compressedSize > MAX_HEADER_BYTES) throw new Error('header blocks too large');
    const all = zlib.inflateSync(Buffer.concat(this.compressed), { dictionary: DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const block = all.subarray(this.inflatedSize);
    this.inflatedSize = all.length;
    this.onFrame({ syn: { id, headers: headerBlock(block) } });
  }
}

function headerBlock(b: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 4;
  const n = b.readUInt32BE(0);
  for (let i = 0; i < n && off + 4 <= b.length; i++) {
    const kl = b.readUInt32BE(off);
    const k = b.subarray(off + 4, off + 4 + kl).toString('latin1');
    off += 4 + kl;
    const vl = b.readUInt32BE(off);
    const v = b.subarray(off + 4, off + 4 + vl).toString('utf8');
    off += 4 + vl;
    out.set(k.toLowerCase(), v);
  }
  return out;
}

export class SpdyTap {
  /** stream id → its streamtype, from either side's SYN_STREAM */
  private readonly types = new Map<number, string>();
  private readonly resizeText = new Map<number, string>();
  private readonly up: Direction;
  private readonly down: Direction;

  constructor(private readonly rec: TerminalRecording) {
    const onFrame = (f: { syn?: { id: number; headers: Map<string, string> }; data?: { id: number; bytes: Buffer } }): void => {
      if (f.syn) {
        const t = f.syn.headers.get('streamtype');
        if (t) this.types.set(f.syn.id, t);
      } else if (f.data) this.data(f.data.id, f.data.bytes);
    };
    this.up = new Direction(onFrame);
    this.down = new Direction(onFrame);
  }

  client(chunk: Buffer): void {
    this.up.push(chunk);
  }

  server(chunk: Buffer): void {
    this.down.push(chunk);
  }

  private data(id: number, bytes: Buffer): void {
    if (bytes.length === 0) return;
    switch (this.types.get(id)) {
      case 'stdin':
        return this.rec.stdin.push(bytes);
      case 'stdout':
        return this.rec.stdout.push(bytes);
      case 'stderr':
        return this.rec.stderr.push(bytes);
      case 'error':
        return this.rec.status(bytes.toString('utf8'));
      case 'resize': {
        // one JSON object per resize, possibly split across frames
        let text = (this.resizeText.get(id) ?? '') + bytes.toString('utf8');
        let nl: number;
        while ((nl = text.indexOf('}')) >= 0) {
          const one = text.slice(0, nl + 1);
          text = text.slice(nl + 1);
          try {
            const s = JSON.parse(one) as { Width?: number; Height?: number };
            if (typeof s.Width === 'number' && typeof s.Height === 'number') this.rec.resize(s.Width, s.Height);
          } catch {
            // not a resize after all
          }
        }
        this.resizeText.set(id, text.slice(-1024));
        return;
      }
    }
  }
}
