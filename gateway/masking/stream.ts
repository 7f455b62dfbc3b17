/**
 * Masking of a stream of text chunks (TCP chunks, terminal writes, CopyData messages).
 *
 * A secret split across chunks is still masked: the rules run over a window of already-emitted
 * text (`context`) plus the new text, and only a tail that could be the start of a secret is
 * held back: a match that reaches the end of the buffer, a trailing token that began like a
 * prefixed or known secret, a tail that is the start of a prefix (`A` of `AKIA`), a short
 * trailing word (what some rules read before their prefix). So whatever the cuts, the output
 * is that of `maskText` over the whole text; typing is held at most to the end of a word. A held
 * tail is flushed after `idleMs` without input; a token cut short that began like a secret is
 * masked, not leaked.
 */
import type { Masker, SecretHit } from '../common/types';
import type { MaskingEngine, MaskSpan } from './engine';

export interface StreamMaskerOptions {
  onText(masked: string): void;
  onHits(hits: SecretHit[]): void;
  /** flush a held tail after this long without input; 0 or Infinity: only on flush()/end() (default 30) */
  idleMs?: number;
  /** most text held back at once (default 64 KiB); past it the tail is emitted masked as it stands */
  maxHold?: number;
}

export interface StreamMasker {
  write(chunk: string): void;
  /** Emits everything held, masked. */
  flush(): void;
  /** Flushes and forgets the context; the masker may be reused for a new stream. */
  end(): void;
  /** Characters written but not yet emitted (a tail that may start a secret). */
  held(): number;
}

const CONTEXT_CHARS = 4096;

function isEngine(m: Masker): m is MaskingEngine {
  const e = m as Partial<MaskingEngine>;
  return typeof e.findSpans === 'function' && typeof e.candidateTail === 'function' && typeof e.partialTail === 'function';
}

export function createStreamMasker(masker: Masker, opts: StreamMaskerOptions): StreamMasker {
  const idleMs = opts.idleMs ?? 30;
  const maxHold = opts.maxHold ?? 64 * 1024;
  if (!isEngine(masker)) return lineStreamMasker(masker, opts, idleMs);
  const engine = masker;

  let context = '';
  let held = '';
  /** stream offset of the end of emitted text */
  let emitted = 0;
  /** stream offsets of spans already reported, so a span emitted in two parts is one finding */
  const reported = new Map<number, string>();
  let timer: ReturnType<typeof setTimeout> | null = null;

  const clearTimer = (): void => {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
  };

  function emit(whole: string, base: number, cut: number, spans: MaskSpan[]): void {
    const origin = emitted - base;
    let out = '';
    let last = base;
    const hits: SecretHit[] = [];
    for (const s of spans) {
      if (s.end <= base || s.start >= cut || s.end <= last) continue;
      const a = Math.max(s.start, last);
      const b = Math.min(s.end, cut);
      out += whole.slice(last, a) + `[MASKED:${s.kind}:${s.fp}]`;
      last = b;
      const abs = origin + s.start;
      if (reported.get(abs) !== s.kind) {
        reported.set(abs, s.kind);
        hits.push({ kind: s.kind, fp: s.fp });
      }
    }
    out += whole.slice(last, cut);
    emitted += cut - base;
    if (reported.size > 256) {
      const horizon = emitted - CONTEXT_CHARS - maxHold;
      for (const k of reported.keys()) if (k < horizon) reported.delete(k);
    }
    if (out.length > 0) opts.onText(out);
    if (hits.length > 0) opts.onHits(hits);
  }

  /** `final`: emit all that is held; `ending`: and nothing follows it (the stream ends) */
  function run(final: boolean, ending = false): void {
    if (held.length === 0) return;
    const whole = context + held;
    const base = context.length;
    let spans = engine.findSpans(whole, !ending);
    let cut = whole.length;
    if (!final) {
      for (const s of spans) if (s.end === whole.length) cut = Math.min(cut, Math.max(s.start, base));
      const tail = engine.candidateTail(whole, base);
      if (tail >= 0) cut = Math.min(cut, Math.max(tail, base));
      // a cut inside a span would emit its placeholder twice (`[MASKED…][MASKED…]`): hold it whole
      for (const s of spans) if (s.start >= base && s.start < cut && s.end > cut) cut = s.start;
      if (whole.length - cut > maxHold) cut = whole.length;
    } else {
      const p = engine.partialTail(whole, base);
      if (p && !spans.some((s) => s.end > p.start)) spans = [...spans, p];
    }
    if (cut > base) emit(whole, base, cut, spans);
    context = whole.slice(Math.max(0, cut - CONTEXT_CHARS), cut);
    held = whole.slice(cut);
  }

  return {
    write(chunk: string): void {
      if (chunk.length === 0) return;
      held += chunk;
      run(false);
      clearTimer();
      if (held.length > 0 && idleMs > 0 && Number.isFinite(idleMs)) {
        timer = setTimeout(() => {
          timer = null;
          run(true);
        }, idleMs);
        timer.unref?.();
      }
    },
    flush(): void {
      clearTimer();
      run(true);
    },
    end(): void {
      clearTimer();
      run(true, true);
      context = '';
      reported.clear();
    },
    held: () => held.length,
  };
}

/** For a Masker that is not this engine: hold back to the last newline. */
function lineStreamMasker(masker: Masker, opts: StreamMaskerOptions, idleMs: number): StreamMasker {
  let held = '';
  let timer: ReturnType<typeof setTimeout> | null = null;
  const out = (text: string): void => {
    if (text.length === 0) return;
    const r = masker.maskText(text);
    opts.onText(r.text);
    if (r.hits.length > 0) opts.onHits(r.hits);
  };
  const flush = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const t = held;
    held = '';
    out(t);
  };
  return {
    write(chunk: string): void {
      held += chunk;
      const nl = held.lastIndexOf('\n');
      if (nl >= 0) {
        const ready = held.slice(0, nl + 1);
        held = held.slice(nl + 1);
        out(ready);
      }
      if (timer !== null) clearTimeout(timer);
      timer = null;
      if (held.length > 0 && idleMs > 0 && Number.isFinite(idleMs)) {
        timer = setTimeout(flush, idleMs);
        timer.unref?.();
      }
    },
    flush,
    end: flush,
    held: () => held.length,
  };
}
