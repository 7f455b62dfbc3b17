/**
 * The streamed answers of the Kubernetes API as the recording keeps them while they pass: a
 * watch event by event (its object masked, noise dropped), a `logs` stream as output events (a
 * head cut only where no secret can be), and a live watch re-sent masked line by line.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Json, Masker } from '../common/types';
import { TextCoalescer } from '../ssh/text-coalescer';
import { isObject, maskSecrets } from './objects';

/** Splits a watch stream into events and records each one. */
export class WatchRecording {
  events = 0;
  private rest = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly maxLine: number,
    /** an event's object as recorded (Secrets masked, noise dropped) */
    private readonly recordable: (v: Json) => Json,
    private readonly emit: (data: Json) => void,
  ) {}

  push(chunk: Buffer): void {
    this.rest += this.decoder.write(chunk);
    let nl: number;
    while ((nl = this.rest.indexOf('\n')) >= 0) {
      const line = this.rest.slice(0, nl);
      this.rest = this.rest.slice(nl + 1);
      this.line(line);
    }
    // a line longer than the cap is recorded as a size only
    if (this.rest.length > this.maxLine) {
      this.line(null, this.rest.length);
      this.rest = '';
    }
  }

  end(): void {
    if (this.rest.trim()) this.line(this.rest);
    this.rest = '';
  }

  private line(line: string | null, size = 0): void {
    if (line !== null && line.trim() === '') return;
    this.events++;
    if (line === null) return this.emit({ size, omitted: 'event over the parse limit' });
    let v: Json = null;
    try {
      v = JSON.parse(line) as Json;
    } catch {
      v = null;
    }
    if (!isObject(v)) return this.emit({ size: line.length, omitted: 'not a JSON event' });
    const o = this.recordable(v);
    this.emit(isObject(o) ? { type: o.type ?? null, object: o.object ?? null } : o);
  }
}

/** Live masking of a watch: whole lines, each masked; a partial line waits for its end. */
export class LiveWatchMasker {
  private pending = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly masker: Masker,
    private readonly secretResource: boolean,
  ) {}

  push(chunk: Buffer): Buffer {
    this.pending += this.decoder.write(chunk);
    const nl = this.pending.lastIndexOf('\n');
    if (nl < 0) return Buffer.alloc(0);
    const whole = this.pending.slice(0, nl + 1);
    this.pending = this.pending.slice(nl + 1);
    let out = '';
    for (const line of whole.split('\n')) {
      if (line === '') continue;
      try {
        const m = maskSecrets(this.masker, JSON.parse(line) as Json, this.secretResource);
        out += JSON.stringify(this.masker.maskValue(m.value).value) + '\n';
      } catch {
        out += this.masker.maskText(line).text + '\n';
      }
    }
    return Buffer.from(out, 'utf8');
  }

  /** The last line without its newline, masked. */
  end(): string {
    const rest = this.pending + this.decoder.end();
    this.pending = '';
    return rest ? this.masker.maskText(rest).text : '';
  }
}

/** `logs` output: a head as output events, counted by the caller's tap beyond it. */
export class LogRecording {
  kept = 0;
  over = false;
  private readonly text: TextCoalescer;

  constructor(
    private readonly cap: number,
    emit: (kind: string, data: Json) => void,
  ) {
    this.text = new TextCoalescer((t) => emit('o', t));
    this.emitTruncated = () => emit('truncated', { stream: 'o', recordedBytes: this.kept });
  }

  private readonly emitTruncated: () => void;

  push(chunk: Buffer): void {
    if (this.over) return;
    const take = Math.min(chunk.length, this.cap - this.kept);
    if (take > 0) {
      this.kept += take;
      this.text.push(take === chunk.length ? chunk : chunk.subarray(0, take));
    }
    if (this.kept >= this.cap) {
      this.over = true;
      this.text.flush();
      this.emitTruncated();
    }
  }

  flush(): void {
    this.text.flush();
  }
}
