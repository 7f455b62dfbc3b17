/**
 * Streaming scrubber for the upstream credentials the gateway injected: the agent never holds
 * them, even when an upstream echoes them back. Replaces each occurrence with a same-length run
 * of '*', so Content-Length stays right and nothing has to be buffered; only a chunk tail that
 * could be the start of a credential is held back until the next chunk.
 */

export class SecretScrubber {
  private readonly secrets: Buffer[];
  private held: Buffer = Buffer.alloc(0);
  /** occurrences replaced so far */
  hits = 0;

  constructor(values: string[]) {
    this.secrets = [...new Set(values.filter((v) => v.length >= 4))].map((v) => Buffer.from(v, 'utf8'));
  }

  get active(): boolean {
    return this.secrets.length > 0;
  }

  /** Returns the bytes that may be sent now. */
  push(chunk: Buffer): Buffer {
    if (this.secrets.length === 0) return chunk;
    let buf = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = Buffer.alloc(0);
    let copied = buf !== chunk;
    for (const s of this.secrets) {
      let at = buf.indexOf(s);
      while (at >= 0) {
        if (!copied) {
          buf = Buffer.from(buf);
          copied = true;
        }
        buf.fill(0x2a, at, at + s.length);
        this.hits++;
        at = buf.indexOf(s, at + s.length);
      }
    }
    const hold = this.partialTail(buf);
    if (hold === 0) return buf;
    this.held = Buffer.from(buf.subarray(buf.length - hold));
    return buf.subarray(0, buf.length - hold);
  }

  /** The bytes still held back; call once at the end of the stream. */
  flush(): Buffer {
    const out = this.held;
    this.held = Buffer.alloc(0);
    return out;
  }

  /** Scrubs a complete string (a header value). */
  scrubText(text: string): string {
    let out = text;
    for (const s of this.secrets) {
      const v = s.toString('utf8');
      if (out.includes(v)) {
        this.hits++;
        out = out.split(v).join('*'.repeat(v.length));
      }
    }
    return out;
  }

  /** Length of the longest tail of `buf` that is a proper prefix of some secret. */
  private partialTail(buf: Buffer): number {
    let best = 0;
    for (const s of this.secrets) {
      const max = Math.min(s.length - 1, buf.length);
      for (let k = max; k > best; k--) {
        const start = buf.length - k;
        if (buf[start] !== s[0]) continue;
        if (buf.compare(s, 0, k, start, buf.length) === 0) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}
