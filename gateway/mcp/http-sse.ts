/**
 * Frames a Server-Sent Events stream into whole events, keeping each event's raw text, so the
 * MCP HTTP proxy can hand every JSON-RPC message to the session and still pass the stream on
 * event by event: nothing waits for more than the event it belongs to. Pure: no Node imports.
 */
import { SseParser, type SseEvent } from '../http/sse';

export interface SseBlock {
  /** the event's lines exactly as received, its terminating blank line included */
  raw: string;
  /** the parsed event; null for a block of comments or `retry:` alone */
  event: SseEvent | null;
}

/** Longest event the framer holds while waiting for its blank line. */
export const MAX_SSE_EVENT_CHARS = 64 * 1024 * 1024;

export class SseFramer {
  private readonly decoder = new TextDecoder('utf-8');
  private buffer = '';
  /** where to resume looking for an event boundary in `buffer` */
  private scan = 0;
  /** the stream ended: a CR at the very end is a line end, not half a CRLF */
  private ending = false;

  constructor(private readonly onBlock: (b: SseBlock) => void) {}

  /** Feeds bytes; throws a RangeError when one event outgrows MAX_SSE_EVENT_CHARS. */
  push(chunk: Uint8Array): void {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    this.drain();
    if (this.buffer.length > MAX_SSE_EVENT_CHARS) throw new RangeError('server-sent event too large');
  }

  /** What is left when the stream ends: an unterminated event, passed on as it is (never dispatched). */
  end(): string {
    this.buffer += this.decoder.decode();
    this.ending = true;
    this.drain();
    const rest = this.buffer;
    this.buffer = '';
    return rest;
  }

  private drain(): void {
    for (;;) {
      const end = this.boundary();
      if (end < 0) break;
      const raw = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end);
      this.scan = 0;
      this.onBlock({ raw, event: parseBlock(raw) });
    }
  }

  /**
   * Index just past the blank line that ends the first event, or -1. Lines end in CRLF, LF or CR;
   * a CR at the very end of the buffer may be the first half of a CRLF, so it waits for more.
   */
  private boundary(): number {
    const b = this.buffer;
    let lineStart = this.scan;
    for (let i = this.scan; i < b.length; i++) {
      const c = b.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      let next = i + 1;
      if (c === 13) {
        if (next >= b.length && !this.ending) {
          this.scan = lineStart;
          return -1;
        }
        if (next < b.length && b.charCodeAt(next) === 10) next++;
      }
      if (i === lineStart) return next;
      lineStart = next;
      i = next - 1;
    }
    this.scan = lineStart;
    return -1;
  }
}

function parseBlock(raw: string): SseEvent | null {
  let out: SseEvent | null = null;
  const p = new SseParser((e) => {
    out = e;
  });
  p.push(raw);
  return out;
}

/** An event with its `data:` replaced (the session rewrote the message, e.g. live masking); other fields kept. */
export function replaceData(raw: string, data: string): string {
  const lines = raw.split(/\r\n|\r|\n/);
  const kept = lines.filter((l) => l !== '' && !/^data(:|$)/.test(l));
  const dataLines = data.split(/\r\n|\r|\n/).map((l) => `data: ${l}`);
  return [...kept, ...dataLines, '', ''].join('\n');
}
