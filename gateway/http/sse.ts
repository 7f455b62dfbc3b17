/**
 * Incremental Server-Sent Events parser (WHATWG HTML §9.2 event-stream), for recording only:
 * bytes are passed to the client untouched; this turns the copy we see into events.
 * Pure: no Node imports.
 */

export interface SseEvent {
  /** the `event:` field, 'message' when absent */
  event: string;
  data: string;
  id?: string;
}

export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private buffer = '';
  private eventName = '';
  private data: string[] = [];
  private id: string | undefined;
  private sawField = false;
  /** a '\r' ended the last chunk: a following '\n' belongs to it */
  private pendingCr = false;

  constructor(private readonly onEvent: (e: SseEvent) => void) {}

  push(chunk: Uint8Array | string): void {
    let text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.buffer.slice(start, i));
      if (c === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCr = true;
        }
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  /** End of stream: a trailing event without its blank line is discarded, as the spec says. */
  end(): void {
    this.buffer = '';
    this.reset();
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventName = value;
        this.sawField = true;
        break;
      case 'data':
        this.data.push(value);
        this.sawField = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        this.sawField = true;
        break;
      default:
        break;
    }
  }

  private dispatch(): void {
    if (this.sawField && (this.data.length > 0 || this.eventName !== '')) {
      const e: SseEvent = { event: this.eventName || 'message', data: this.data.join('\n') };
      if (this.id !== undefined) e.id = this.id;
      this.onEvent(e);
    }
    this.reset();
  }

  private reset(): void {
    this.eventName = '';
    this.data = [];
    this.sawField = false;
  }
}
