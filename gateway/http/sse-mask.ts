/**
 * Masks a Server-Sent Events stream over the text it reassembles into, not event by event.
 *
 * A model API streams its reply as small deltas (Anthropic `content_block_delta` text and
 * `input_json_delta`, OpenAI `chat.completion.chunk` deltas, Responses `*.delta` events); a plain
 * event stream streams `data:` pieces. A secret split over three deltas is in no single event, so
 * masking each event keeps every piece, and the pieces joined give the secret back. Here each
 * channel (one content block, one choice's content, one tool call's arguments, the data of a plain
 * stream) runs through a stream masker, and each event is passed on with its delta replaced by
 * its slice of the masked channel text: joined, the slices are the masked reassembled text.
 * An event whose slice may still hold the start of a secret is held back (in order, bounded)
 * until the masker has decided. Pure: no Node imports.
 */
import type { Masker, SecretHit } from '../common/types';
import { createStreamMasker, type StreamMasker } from '../masking/stream';
import type { SseEvent } from './sse';

type JsonObject = Record<string, unknown>;
type Path = Array<string | number>;

interface Slot {
  path: Path | null;
  out: string;
}

interface Pending {
  e: SseEvent;
  json: JsonObject | null;
  slots: Slot[];
  /** slots whose text is not all emitted yet */
  open: number;
}

interface Channel {
  masker: StreamMasker;
  open: Array<{ slot: Slot; pending: Pending; left: number }>;
  /** a short trailing word, not yet given to the masker */
  word: string;
  written: number;
  emitted: number;
  out: string;
}

interface Piece {
  channel: string;
  path: Path | null;
  text: string;
}

interface Parsed {
  json: JsonObject | null;
  pieces: Piece[];
  /** channel-key prefixes whose text is complete after this event ('' = every channel) */
  ends: string[];
}

/** Most events held back waiting for a masker's decision; past it the oldest is settled. */
const MAX_QUEUE = 256;
/** Trailing words shorter than this wait for the next delta (longest secret prefix + 1). */
const HOLD_WORD = 16;

function isWordChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45;
}

/** Length of the run of [A-Za-z0-9_-] ending the text, counted up to HOLD_WORD. */
function trailingWord(text: string): number {
  let n = 0;
  while (n < HOLD_WORD && n < text.length && isWordChar(text.charCodeAt(text.length - 1 - n))) n++;
  return n;
}
const PLACEHOLDER = /\[MASKED:[^\]\s]*\]/g;
const ANTHROPIC_EVENTS = new Set(['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop', 'ping', 'error']);
const ANTHROPIC_DELTA_FIELDS = ['text', 'partial_json', 'thinking'];

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseObject(data: string): JsonObject | null {
  const t = data.trimStart();
  if (!t.startsWith('{')) return null;
  try {
    const v: unknown = JSON.parse(data);
    return isObject(v) ? v : null;
  } catch {
    return null;
  }
}

/** The delta texts of one event, by dialect; anything unknown is a plain stream's data. */
function parseEvent(e: SseEvent): Parsed {
  if (e.data.trim() === '[DONE]') return { json: null, pieces: [], ends: [''] };
  const json = parseObject(e.data);
  const type = json && typeof json.type === 'string' ? json.type : null;
  if (json && type && ANTHROPIC_EVENTS.has(type)) {
    const pieces: Piece[] = [];
    const index = typeof json.index === 'number' ? json.index : 0;
    if (type === 'content_block_delta' && isObject(json.delta)) {
      for (const f of ANTHROPIC_DELTA_FIELDS) {
        const v = json.delta[f];
        if (typeof v === 'string') pieces.push({ channel: `a:${index}:${f}`, path: ['delta', f], text: v });
      }
    }
    const ends = type === 'content_block_stop' ? [`a:${index}:`] : type === 'message_stop' || type === 'error' ? [''] : [];
    return { json, pieces, ends };
  }
  if (json && json.object === 'chat.completion.chunk' && Array.isArray(json.choices)) {
    const pieces: Piece[] = [];
    const ends: string[] = [];
    json.choices.forEach((choice: unknown, ci: number) => {
      if (!isObject(choice)) return;
      const n = typeof choice.index === 'number' ? choice.index : ci;
      const delta = choice.delta;
      if (isObject(delta)) {
        for (const f of ['content', 'refusal', 'reasoning_content', 'reasoning']) {
          const v = delta[f];
          if (typeof v === 'string') pieces.push({ channel: `c:${n}:${f}`, path: ['choices', ci, 'delta', f], text: v });
        }
        if (Array.isArray(delta.tool_calls)) {
          delta.tool_calls.forEach((call: unknown, ti: number) => {
            if (!isObject(call) || !isObject(call.function) || typeof call.function.arguments !== 'string') return;
            const k = typeof call.index === 'number' ? call.index : ti;
            pieces.push({ channel: `c:${n}:tool:${k}`, path: ['choices', ci, 'delta', 'tool_calls', ti, 'function', 'arguments'], text: call.function.arguments });
          });
        }
      }
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) ends.push(`c:${n}:`);
    });
    return { json, pieces, ends };
  }
  if (json && type && type.startsWith('response.')) {
    const out = typeof json.output_index === 'number' ? json.output_index : 0;
    if (type.endsWith('.delta') && typeof json.delta === 'string') {
      const part = typeof json.content_index === 'number' ? json.content_index : typeof json.summary_index === 'number' ? json.summary_index : 0;
      return { json, pieces: [{ channel: `r:${out}:${part}:${type}`, path: ['delta'], text: json.delta }], ends: [] };
    }
    if (type.endsWith('.done')) return { json, pieces: [], ends: [`r:${out}:`] };
    if (type === 'response.completed' || type === 'response.failed' || type === 'response.incomplete' || type === 'error') return { json, pieces: [], ends: [''] };
    return { json, pieces: [], ends: [] };
  }
  return { json: null, pieces: [{ channel: 'data', path: null, text: e.data }], ends: [] };
}

function setPath(root: JsonObject, path: Path, value: string): void {
  let node: unknown = root;
  for (let i = 0; i < path.length - 1; i++) node = (node as Record<string | number, unknown>)[path[i]];
  (node as Record<string | number, unknown>)[path[path.length - 1]] = value;
}

export class SseStreamMasker {
  private readonly channels = new Map<string, Channel>();
  private readonly queue: Pending[] = [];

  /**
   * `batchChars`: gather this much of a channel's text before masking it (the masker rescans its
   * context on every write, so per-delta writes cost ~0.1 ms each); events wait meanwhile, so
   * use it where a little delay costs nothing (the record), not on a live client stream.
   */
  constructor(
    private readonly masker: Masker,
    private readonly onEvent: (e: SseEvent) => void,
    private readonly onHits: (hits: SecretHit[]) => void = () => undefined,
    private readonly batchChars = 0,
  ) {}

  push(e: SseEvent): void {
    const parsed = parseEvent(e);
    const pending: Pending = { e, json: parsed.json, slots: [], open: 0 };
    for (const p of parsed.pieces) {
      const slot: Slot = { path: p.path, out: '' };
      pending.slots.push(slot);
      if (p.text.length > 0) this.write(p.channel, slot, pending, p.text);
    }
    this.queue.push(pending);
    for (const prefix of parsed.ends) this.flushChannels(prefix);
    this.drain();
  }

  /** End of stream (or of the exchange): everything held is masked and passed on. */
  end(): void {
    this.flushChannels('');
    this.drain();
    this.channels.clear();
  }

  private write(key: string, slot: Slot, pending: Pending, text: string): void {
    let ch = this.channels.get(key);
    if (!ch) {
      const c: Channel = {
        masker: createStreamMasker(this.masker, { onText: (t) => (c.out += t), onHits: (h) => this.onHits(h), idleMs: 0 }),
        open: [],
        word: '',
        written: 0,
        emitted: 0,
        out: '',
      };
      ch = c;
      this.channels.set(key, c);
    }
    ch.open.push({ slot, pending, left: text.length });
    pending.open++;
    ch.written += text.length;
    // The stream masker holds a tail that starts like a secret, judged on the text it is given:
    // a delta cut a few characters into a prefix ('A' | 'KIAQ…') lets the start out before the
    // prefix is whole, and then the rest too. So a short trailing word waits here for the next
    // delta; one that reaches HOLD_WORD characters goes to the masker whole, prefix included.
    const buf = ch.word + text;
    if (buf.length < this.batchChars && ch.open.length < MAX_QUEUE / 2) {
      ch.word = buf;
      return;
    }
    const run = trailingWord(buf);
    const ready = run < HOLD_WORD ? buf.length - run : buf.length;
    ch.word = buf.slice(ready);
    if (ready > 0) ch.masker.write(buf.slice(0, ready));
    this.settle(ch);
  }

  private flushChannel(ch: Channel): void {
    if (ch.word) ch.masker.write(ch.word);
    ch.word = '';
    ch.masker.flush();
    this.settle(ch);
  }

  private flushChannels(prefix: string): void {
    for (const [key, ch] of this.channels) {
      if (!key.startsWith(prefix) || ch.open.length === 0) continue;
      this.flushChannel(ch);
    }
  }

  /**
   * Hands what the channel's masker emitted to the slots whose text it covers. Text after the
   * last placeholder is the input's own tail, one for one, so it goes back to the slots it came
   * from; the rest (a placeholder spanning slots, and what precedes it) goes to the first slot.
   */
  private settle(ch: Channel): void {
    const consumed = ch.written - ch.word.length - ch.masker.held() - ch.emitted;
    const out = ch.out;
    ch.out = '';
    if (consumed <= 0 && out === '') return;
    ch.emitted += consumed;
    let lastEnd = 0;
    for (const m of out.matchAll(PLACEHOLDER)) lastEnd = (m.index ?? 0) + m[0].length;
    const tailLen = Math.min(out.length - lastEnd, consumed);
    const tail = out.slice(out.length - tailLen);
    const tailFrom = consumed - tailLen;
    let pos = 0;
    let first = true;
    while (ch.open.length > 0 && (pos < consumed || first)) {
      const entry = ch.open[0];
      if (first) entry.slot.out += out.slice(0, out.length - tailLen);
      first = false;
      const n = Math.min(entry.left, consumed - pos);
      const a = Math.max(pos, tailFrom);
      if (pos + n > a) entry.slot.out += tail.slice(a - tailFrom, pos + n - tailFrom);
      pos += n;
      entry.left -= n;
      if (entry.left > 0) break;
      ch.open.shift();
      entry.pending.open--;
    }
  }

  private drain(): void {
    while (this.queue.length > MAX_QUEUE && this.queue[0].open > 0) {
      // the oldest event waits on a masker too long: settle its channels as they stand
      const head = this.queue[0];
      let settled = false;
      for (const ch of this.channels.values()) {
        if (!ch.open.some((o) => o.pending === head)) continue;
        this.flushChannel(ch);
        settled = true;
      }
      if (!settled) break;
    }
    while (this.queue.length > 0 && this.queue[0].open === 0) this.emit(this.queue.shift() as Pending);
  }

  private emit(p: Pending): void {
    if (p.slots.length === 0) {
      this.onEvent(p.e);
      return;
    }
    let data: string;
    if (p.json) {
      for (const s of p.slots) if (s.path) setPath(p.json, s.path, s.out);
      data = JSON.stringify(p.json);
    } else {
      data = p.slots[0].out;
    }
    const e: SseEvent = { event: p.e.event, data };
    if (p.e.id !== undefined) e.id = p.e.id;
    this.onEvent(e);
  }
}
