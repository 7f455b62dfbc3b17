/**
 * Batches a terminal byte stream into recorded text events. Secrets are masked per event, so a
 * token must never be cut in two: partial lines are only cut at whitespace (tokens have none),
 * and a trailing word waits for the next whitespace, a size limit or the end of the stream.
 * Batching also keeps the event count sane when a shell echoes one character at a time.
 */
import { StringDecoder } from 'node:string_decoder';

export interface CoalescerOptions {
  /** flush what is safe to flush after this much quiet (ms) */
  idleMs?: number;
  /** flush up to the last newline once this much text is buffered */
  maxBuffer?: number;
  /** how long a trailing word may wait for its end before it is flushed (ms) */
  holdMs?: number;
  /** a word longer than this is flushed anyway (binary noise, not a secret we could mask) */
  maxWord?: number;
}

export class TextCoalescer {
  private decoder = new StringDecoder('utf8');
  private buf = '';
  private timer: NodeJS.Timeout | null = null;
  private readonly idleMs: number;
  private readonly maxBuffer: number;
  private readonly maxWord: number;
  private readonly holdMs: number;

  constructor(private readonly emit: (text: string) => void, opts: CoalescerOptions = {}) {
    this.idleMs = opts.idleMs ?? 50;
    this.maxBuffer = opts.maxBuffer ?? 16 * 1024;
    this.maxWord = opts.maxWord ?? 8 * 1024;
    this.holdMs = opts.holdMs ?? 1000;
  }

  push(chunk: Buffer): void {
    this.pushText(this.decoder.write(chunk));
  }

  /** Already-decoded text (the caller splits a chunk at a command boundary). */
  pushText(text: string): void {
    this.buf += text;
    if (this.buf.length >= this.maxBuffer) this.flushSafe(true);
    this.arm();
  }

  /** Emits everything buffered (end of stream, or before an event that must come after it). */
  flush(): void {
    this.buf += this.decoder.end();
    this.decoder = new StringDecoder('utf8');
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.buf) {
      const text = this.buf;
      this.buf = '';
      this.emit(text);
    }
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = this.buf ? setTimeout(() => this.flushSafe(false), this.idleMs) : null;
    this.timer?.unref();
  }

  private flushSafe(big: boolean): void {
    this.timer = null;
    let cut = -1;
    for (let i = this.buf.length - 1; i >= 0; i--) {
      const c = this.buf.charCodeAt(i);
      // newline, space, tab, CR, and escape/control bytes end a token
      if (c <= 0x20 || c === 0x7f) {
        cut = i + 1;
        break;
      }
    }
    if (cut < 0 && (this.buf.length > this.maxWord || big)) cut = this.buf.length;
    if (cut <= 0) {
      // A lone word with no whitespace yet (a prompt, a progress counter): give it a while longer,
      // then let it go so the replay does not lag behind the terminal.
      this.timer = setTimeout(() => this.flush(), this.holdMs);
      this.timer.unref();
      return;
    }
    const text = this.buf.slice(0, cut);
    this.buf = this.buf.slice(cut);
    this.emit(text);
    if (this.buf && !big) this.arm();
  }
}
