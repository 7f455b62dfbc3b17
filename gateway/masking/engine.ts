/**
 * The masking engine: one prefilter scan for cheap anchors, then only the rules whose anchor
 * was seen, tried at that position. Text without a candidate costs one table-driven scan.
 */
import type { Json, Masker, MaskResult, SecretHit } from '../common/types';
import { CONTEXT_ANCHORS, Handler, PRIORITY, RawSpan, ScanState } from './context-rules';
import { CREDENTIAL_ANCHORS, pairPartial, pairTail } from './credential-rules';
import { fingerprintOf, hmacHex, KnownEntry, KnownSecretDigest, MIN_KNOWN_LENGTH, PREFIX_LENGTH, secretForms } from './known-secrets';
import { maskStructured } from './structural';
import { TOKEN_RULES, TokenRule, tokenRuleKinds } from './token-rules';

/** One masked region of a text, merged from every rule that matched inside it. */
export interface MaskSpan {
  start: number;
  end: number;
  kind: string;
  fp: string;
}

export interface MaskerOptions {
  /** key of the keyed fingerprint (kept in the data dir) */
  fingerprintKey: Uint8Array;
  /** registered secrets, as stored */
  known?: KnownSecretDigest[];
}

/** The engine as gateway/masking exposes it: the `Masker` contract plus what streaming and the store need. */
export interface MaskingEngine extends Masker {
  /**
   * Merged masked regions of `text`, in order. `open`: the text may go on past its end (a stream's
   * tail), so a password value that reaches the end is masked even if it reads like a placeholder yet.
   */
  findSpans(text: string, open?: boolean): MaskSpan[];
  /** `fp` of a value: first 10 hex chars of HMAC-SHA256(fingerprintKey, value). */
  fingerprint(value: string): string;
  /** Adds registered-secret digests (e.g. after `flightlog secret add` while running). */
  addDigests(digests: KnownSecretDigest[]): void;
  /** Streaming: start of a tail of `text` (at or after `from`) that may be the start of a secret still arriving, or -1. */
  candidateTail(text: string, from: number): number;
  /** Streaming, on idle flush: a token cut short at the end of `text` that began like a secret, masked rather than leaked. */
  partialTail(text: string, from: number): MaskSpan | null;
  /** Every kind the rules can report (registered secrets report `registered:<name>`). */
  readonly kinds: readonly string[];
}

interface AnchorInfo {
  rules: TokenRule[];
  handlers: Handler[];
  known: KnownEntry[];
}

const CONTEXT_KINDS = [
  'password', 'basic-auth', 'bearer-token', 'authorization-header', 'cookie', 'api-key-header', 'generic-api-key',
  'generic-secret', 'aws-secret-access-key', 'aws-session-token', 'azure-storage-key', 'azure-shared-access-key',
  'private-key', 'client-secret', 'k8s-secret', 'secret-field',
];

const TAIL_WINDOW = 1024;
const CLEAN_MAX_LENGTH = 64;
const CLEAN_CACHE_MAX = 4096;
const PARTIAL_MIN = 8;

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** A regex trie of literal anchors: shared prefixes are tested once per position. */
function trieSource(words: string[]): string {
  const hasEmpty = words.includes('');
  const rest = words.filter((w) => w !== '');
  if (rest.length === 0) return '';
  const groups = new Map<string, string[]>();
  for (const w of rest) {
    const c = w[0];
    const g = groups.get(c);
    if (g) g.push(w.slice(1));
    else groups.set(c, [w.slice(1)]);
  }
  const alts = [...groups.entries()].map(([c, tails]) => escapeRegex(c) + trieSource(tails));
  const body = alts.length === 1 ? alts[0] : `(?:${alts.join('|')})`;
  if (!hasEmpty) return body;
  return alts.length === 1 && body.length <= 1 ? `${body}?` : `(?:${body})?`;
}

/**
 * Finds the next anchor at or after a position. The prefilter regex alone (a case-insensitive
 * trie) is tried at every position of the text, which made it the whole cost of text without
 * secrets; here a plain loop rejects most positions on a table of anchor first chars, then on
 * the first two (and three) chars, and the sticky trie regex runs only where those fit. The
 * regex still decides every hit, so hits and matched anchors are exactly those of the scan.
 */
export interface AnchorScanner {
  /** The next anchor starting at or after `from` (`m.index`, `m[0]`), or null. */
  next(text: string, from: number): RegExpExecArray | null;
}

/** Non-unicode `/i` matches an ASCII char only with an ASCII char of the same letter case-folded. */
function caseVariants(c: number): number[] {
  if (c >= 97 && c <= 122) return [c, c - 32];
  if (c >= 65 && c <= 90) return [c, c + 32];
  return [c];
}

const TRIGRAM_BITS = 128 * 128 * 128;

export function anchorScanner(words: string[]): AnchorScanner {
  const source = trieSource(words);
  if (source === '') return { next: () => null };
  const sticky = new RegExp(source, 'iy');
  const tableable = words.every((w) => w.length >= 2 && w.charCodeAt(0) < 128 && w.charCodeAt(1) < 128 && (w.length === 2 || w.charCodeAt(2) < 128));
  if (!tableable) {
    // a short or non-ASCII anchor (a registered secret's prefix): the plain regex scan
    const global = new RegExp(source, 'gi');
    return {
      next(text: string, from: number): RegExpExecArray | null {
        global.lastIndex = from;
        return global.exec(text);
      },
    };
  }
  const first = new Uint8Array(128);
  /** 1: the first two chars of an anchor of 3+ chars; 2: a whole 2-char anchor */
  const pair = new Uint8Array(128 * 128);
  const triple = new Uint8Array(TRIGRAM_BITS >> 3);
  for (const w of words) {
    for (const a of caseVariants(w.charCodeAt(0))) {
      first[a] = 1;
      for (const b of caseVariants(w.charCodeAt(1))) {
        const ab = (a << 7) | b;
        if (w.length === 2) {
          pair[ab] = 2;
          continue;
        }
        if (pair[ab] === 0) pair[ab] = 1;
        for (const c of caseVariants(w.charCodeAt(2))) {
          const abc = (ab << 7) | c;
          triple[abc >> 3] |= 1 << (abc & 7);
        }
      }
    }
  }
  return {
    next(text: string, from: number): RegExpExecArray | null {
      const last = text.length - 1;
      for (let i = from < 0 ? 0 : from; i < last; i++) {
        const c0 = text.charCodeAt(i);
        if (c0 >= 128 || first[c0] === 0) continue;
        const c1 = text.charCodeAt(i + 1);
        if (c1 >= 128) continue;
        const ab = (c0 << 7) | c1;
        const p = pair[ab];
        if (p === 0) continue;
        if (p === 1) {
          const c2 = text.charCodeAt(i + 2);
          // NaN past the end: no anchor of 3+ chars fits
          if (!(c2 < 128)) continue;
          const abc = (ab << 7) | c2;
          if ((triple[abc >> 3] & (1 << (abc & 7))) === 0) continue;
        }
        sticky.lastIndex = i;
        const m = sticky.exec(text);
        if (m !== null) return m;
      }
      return null;
    },
  };
}

/** Longest runs before an anchor that a rule with `back`/`leftRun` reads (terraform, azure-client-secret, telegram). */
const LEAD_ALNUM = 14;
const LEAD_CLASS = 4;
const LEAD_DIGITS = 10;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isAlnum(c: number): boolean {
  return isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;
}

export function createMasker(opts: MaskerOptions): MaskingEngine {
  const key = Uint8Array.from(opts.fingerprintKey);
  const staticInfo = new Map<string, AnchorInfo>();
  const info = (a: string, into: Map<string, AnchorInfo>): AnchorInfo => {
    let i = into.get(a);
    if (!i) {
      i = { rules: [], handlers: [], known: [] };
      into.set(a, i);
    }
    return i;
  };
  for (const r of TOKEN_RULES) for (const a of r.anchors) info(a, staticInfo).rules.push(r);
  for (const c of [...CONTEXT_ANCHORS, ...CREDENTIAL_ANCHORS]) for (const a of c.anchors) info(a, staticInfo).handlers.push(...c.handlers);

  const knownEntries: KnownEntry[] = [];
  const knownIds = new Set<string>();
  const knownValues = new Set<string>();
  let maxKnownLength = 0;
  /** proper prefixes of every anchor, lowercase: a tail ending in one may still become a secret */
  let anchorParts = new Set<string>();
  let anchorPartMax = 0;
  const anchorPartFirst = new Uint8Array(128);
  let anchors = new Map<string, AnchorInfo>();
  let prefilter: AnchorScanner = anchorScanner([]);
  let dirty = true;
  /** short texts found clean since the last rebuild */
  const cleanShort = new Set<string>();

  const fpCache = new Map<string, string>();
  const fingerprint = (value: string): string => {
    let fp = fpCache.get(value);
    if (fp === undefined) {
      fp = fingerprintOf(key, value);
      if (fpCache.size >= 512) fpCache.clear();
      fpCache.set(value, fp);
    }
    return fp;
  };

  function rebuild(): void {
    const all = new Map<string, AnchorInfo>();
    for (const [a, i] of staticInfo) all.set(a, { rules: [...i.rules], handlers: [...i.handlers], known: [] });
    for (const k of knownEntries) info(k.prefix.toLowerCase(), all).known.push(k);
    // the prefilter reports the longest anchor at a position; give it the rules of every shorter anchor it starts with
    anchors = new Map();
    for (const [a, i] of all) {
      const merged: AnchorInfo = { rules: [], handlers: [], known: [] };
      for (let len = 1; len <= a.length; len++) {
        const p = all.get(a.slice(0, len));
        if (!p) continue;
        for (const r of p.rules) if (!merged.rules.includes(r)) merged.rules.push(r);
        for (const h of p.handlers) if (!merged.handlers.includes(h)) merged.handlers.push(h);
        for (const k of p.known) if (!merged.known.includes(k)) merged.known.push(k);
      }
      void i;
      anchors.set(a, merged);
    }
    prefilter = anchorScanner([...all.keys()]);
    anchorParts = new Set();
    anchorPartMax = 0;
    anchorPartFirst.fill(0);
    for (const a of all.keys()) {
      for (let n = 1; n < a.length; n++) anchorParts.add(a.slice(0, n));
      anchorPartMax = Math.max(anchorPartMax, a.length - 1);
      // a non-ASCII first char: 127 stands for all of them
      for (const c of caseVariants(a.charCodeAt(0))) anchorPartFirst[Math.min(c, 127)] = 1;
    }
    cleanShort.clear();
    maxKnownLength = 0;
    for (const k of knownEntries) maxKnownLength = Math.max(maxKnownLength, k.length);
    dirty = false;
  }

  function addEntry(e: KnownEntry, id: string): void {
    if (knownIds.has(id)) return;
    knownIds.add(id);
    knownEntries.push(e);
    dirty = true;
  }

  function tryRule(r: TokenRule, text: string, pos: number, out: RawSpan[], covered: Map<TokenRule, number>): void {
    // a hit inside this rule's previous match is part of it: trying again would make runs quadratic
    if (pos < (covered.get(r) ?? 0)) return;
    let start = pos;
    if (r.back !== undefined) {
      start = pos - r.back;
      if (start < 0) return;
    } else if (r.leftRun) {
      let n = 0;
      while (start > 0 && n < 16 && r.leftRun.test(text[start - 1])) {
        start--;
        n++;
      }
    }
    r.re.lastIndex = start;
    const m = r.re.exec(text);
    if (!m) return;
    const kind = typeof r.kind === 'string' ? r.kind : r.kind(m);
    const end = start + m[0].length;
    covered.set(r, end);
    if (r.group !== undefined) {
      const g = m[r.group];
      if (g === undefined || g.length === 0) return;
      out.push({ start: end - g.length, end, kind, priority: PRIORITY.token });
    } else {
      out.push({ start, end, kind, priority: PRIORITY.token });
    }
  }

  function tryKnown(k: KnownEntry, text: string, pos: number, out: RawSpan[]): void {
    if (k.text !== undefined) {
      if (text.startsWith(k.text, pos)) out.push({ start: pos, end: pos + k.length, kind: k.kind, fp: k.fp, priority: PRIORITY.known });
    } else if (k.hmac !== undefined && pos + k.length <= text.length) {
      if (hmacHex(key, text.slice(pos, pos + k.length)) === k.hmac) {
        out.push({ start: pos, end: pos + k.length, kind: k.kind, fp: k.fp, priority: PRIORITY.known });
      }
    }
  }

  function collect(text: string, open: boolean): RawSpan[] {
    if (dirty) rebuild();
    const out: RawSpan[] = [];
    // most texts (column values, headers, log lines) have no anchor: allocate the scan state at the first one
    let state: ScanState | null = null;
    let covered: Map<TokenRule, number> | null = null;
    for (let m = prefilter.next(text, 0); m !== null; m = prefilter.next(text, m.index + 1)) {
      const pos = m.index;
      const a = anchors.get(m[0].toLowerCase());
      if (a) {
        if (a.rules.length > 0) {
          covered ??= new Map();
          for (const r of a.rules) tryRule(r, text, pos, out, covered);
        }
        if (a.handlers.length > 0) {
          state ??= { seenKeys: new Set(), seenLines: new Set(), k8sDone: false, valueEnd: 0, pemEnd: 0, tableLineEnd: 0, pgpassEnd: 0, pgpassLineEnd: 0, command: null, open, classifyWhole };
          for (const h of a.handlers) h(text, pos, state, out);
        }
        for (const k of a.known) tryKnown(k, text, pos, out);
      }
    }
    return out;
  }

  function merge(text: string, raw: RawSpan[]): MaskSpan[] {
    if (raw.length === 0) return [];
    let spans = raw;
    // already-masked text stays as it is: masking is idempotent
    if (text.includes('[MASKED:')) {
      const ranges: Array<[number, number]> = [];
      for (let i = text.indexOf('[MASKED:'); i >= 0; i = text.indexOf('[MASKED:', i + 1)) {
        const e = text.indexOf(']', i);
        if (e > i && e - i < 200) ranges.push([i, e + 1]);
      }
      spans = raw.filter((s) => !ranges.some(([a, b]) => s.start >= a && s.end <= b));
    }
    spans.sort((x, y) => x.start - y.start || y.end - x.end);
    const regions: Array<{ start: number; end: number; best: RawSpan }> = [];
    for (const s of spans) {
      const cur = regions.length > 0 ? regions[regions.length - 1] : undefined;
      if (cur && s.start < cur.end) {
        if (s.end > cur.end) cur.end = s.end;
        const b = cur.best;
        if (s.priority > b.priority || (s.priority === b.priority && s.end - s.start > b.end - b.start)) cur.best = s;
      } else {
        regions.push({ start: s.start, end: s.end, best: s });
      }
    }
    return regions.map((r) => ({
      start: r.start,
      end: r.end,
      kind: r.best.kind,
      fp: r.best.fp ?? fingerprint(r.best.value ?? text.slice(r.best.start, r.best.end)),
    }));
  }

  function findSpans(text: string, open = false): MaskSpan[] {
    if (text.length === 0) return [];
    if (dirty) rebuild();
    // the recorder masks the same short keys and values (column and header names, statuses) over
    // and over: remember the ones without a secret until the rules or known secrets change
    const short = !open && text.length <= CLEAN_MAX_LENGTH;
    if (short && cleanShort.has(text)) return [];
    const spans = merge(text, collect(text, open));
    if (short && spans.length === 0) {
      if (cleanShort.size >= CLEAN_CACHE_MAX) cleanShort.clear();
      cleanShort.add(text);
    }
    return spans;
  }

  /** The kind and secret when one rule covers the whole (trimmed) value; used for whole-value masking. */
  function classifyWhole(value: string): { kind: string; value: string } | null {
    const t = value.trim();
    if (t.length === 0) return null;
    const spans = findSpans(t);
    if (spans.length !== 1 || spans[0].start !== 0 || spans[0].end !== t.length) return null;
    const s = spans[0];
    return { kind: s.kind, value: t };
  }

  const placeholder = (kind: string, value: string): string => `[MASKED:${kind}:${fingerprint(value)}]`;

  function maskText(text: string): MaskResult {
    const spans = findSpans(text);
    if (spans.length === 0) return { text, hits: [] };
    let out = '';
    let last = 0;
    const hits: SecretHit[] = [];
    for (const s of spans) {
      out += text.slice(last, s.start) + `[MASKED:${s.kind}:${s.fp}]`;
      last = s.end;
      hits.push({ kind: s.kind, fp: s.fp });
    }
    return { text: out + text.slice(last), hits };
  }

  function trailingTokenStart(text: string, from: number): number {
    let ts = text.length;
    const limit = Math.max(from, text.length - TAIL_WINDOW);
    while (ts > limit && !isWs(text.charCodeAt(ts - 1))) ts--;
    return ts;
  }

  /**
   * Start of a trailing word that may still become the part of a secret before its anchor (the
   * rules with `back` or `leftRun`): 14 letters and digits of `….atlasv1.…`, the four chars of an
   * Azure secret before `Q~`, the digits of a Telegram token before `:AA`; or -1.
   */
  function wordLead(text: string, from: number): number {
    // the runs nest (Azure's chars ⊇ letters and digits ⊇ digits): the widest that fits starts first
    const n = text.length;
    let j = n;
    while (j > 0 && n - j <= LEAD_CLASS && (isAlnum(text.charCodeAt(j - 1)) || '_~.-'.includes(text[j - 1]))) j--;
    if (j < n && n - j <= LEAD_CLASS) return Math.max(j, from);
    let i = n;
    while (i > 0 && n - i <= LEAD_ALNUM && isAlnum(text.charCodeAt(i - 1))) i--;
    if (i < n && n - i <= LEAD_ALNUM) return Math.max(i, from);
    let k = n;
    while (k > 0 && n - k <= LEAD_DIGITS && isDigit(text.charCodeAt(k - 1))) k--;
    if (k < n && n - k <= LEAD_DIGITS) return Math.max(k, from);
    return -1;
  }

  function candidateTail(text: string, from: number): number {
    if (dirty) rebuild();
    const ts = trailingTokenStart(text, from);
    let hold = wordLead(text, from);
    if (hold >= text.length) hold = -1;
    // a tail that is the start of an anchor not yet whole (`A` of `AKIA`, `-----BEG`): once emitted,
    // the rest of the secret would follow it raw, so it waits, from its token's start (some rules
    // begin before their anchor), until the next chars decide it
    for (let n = Math.min(anchorPartMax, text.length - from); n >= 1; n--) {
      const p = text.length - n;
      if (anchorPartFirst[Math.min(text.charCodeAt(p), 127)] === 0) continue;
      if (anchorParts.has(text.slice(p).toLowerCase())) {
        hold = hold < 0 ? Math.min(ts, p) : Math.min(hold, ts, p);
        break;
      }
    }
    // a token that begins like a prefixed secret but is not complete yet
    if (ts < text.length) {
      for (let m = prefilter.next(text, ts); m !== null; m = prefilter.next(text, m.index + 1)) {
        const a = anchors.get(m[0].toLowerCase());
        if (a && (a.rules.length > 0 || a.known.length > 0)) {
          hold = hold < 0 ? ts : Math.min(hold, ts);
          break;
        }
      }
    }
    // the unlabelled partner of an AWS key id, still arriving
    const pt = pairTail(text, from);
    if (pt >= 0) hold = hold < 0 ? pt : Math.min(hold, pt);
    // `scheme://user:pass` before its `@` arrives cannot be told from `host:port` yet
    if (ts < text.length) {
      const u = text.lastIndexOf('://', text.length - 1);
      if (u >= ts && !/[/?#@]/.test(text.slice(u + 3))) hold = hold < 0 ? ts : Math.min(hold, ts);
    }
    if (knownEntries.length > 0) {
      // a known secret may contain spaces, so look back as far as the longest one
      const ws = Math.max(from, text.length - maxKnownLength);
      for (let m = prefilter.next(text, ws); m !== null; m = prefilter.next(text, m.index + 1)) {
        const a = anchors.get(m[0].toLowerCase());
        const p = m.index;
        if (a && a.known.some((k) => p + k.length > text.length && (k.text === undefined || k.text.startsWith(text.slice(p))))) {
          hold = hold < 0 ? p : Math.min(hold, p);
          break;
        }
      }
    }
    return hold;
  }

  function partialTail(text: string, from: number): MaskSpan | null {
    if (dirty) rebuild();
    const ts = trailingTokenStart(text, from);
    const ws = knownEntries.length > 0 ? Math.max(from, Math.min(ts, text.length - maxKnownLength)) : ts;
    for (let m = prefilter.next(text, ws); m !== null; m = prefilter.next(text, m.index + 1)) {
      const p = m.index;
      const a = anchors.get(m[0].toLowerCase());
      if (a) {
        const k = a.known.find((e) => p + e.length > text.length && (e.text === undefined || e.text.startsWith(text.slice(p))));
        if (k) return { start: p, end: text.length, kind: k.kind, fp: k.fp };
        if (p >= ts && a.rules.length > 0 && text.length - p >= m[0].length + PARTIAL_MIN) {
          const r = a.rules[a.rules.length - 1];
          const kind = typeof r.kind === 'string' ? r.kind : 'secret-fragment';
          return { start: p, end: text.length, kind, fp: fingerprint(text.slice(p)) };
        }
      }
    }
    const pair = pairPartial(text, from);
    if (pair) return { start: pair.start, end: pair.end, kind: pair.kind, fp: fingerprint(text.slice(pair.start)) };
    return null;
  }

  const engine: MaskingEngine = {
    kinds: [...new Set([...tokenRuleKinds(), ...CONTEXT_KINDS, 'secret-fragment'])].sort(),
    maskText,
    maskValue(value: Json, keyHint?: string): { value: Json; hits: SecretHit[] } {
      return maskStructured(engine, value, keyHint);
    },
    addKnownSecret(kind: string, value: string): void {
      if (value.length < MIN_KNOWN_LENGTH) return;
      // Callers register on every login: a value already known costs one Set lookup, not its forms.
      const key = `${kind}\0${value}`;
      if (knownValues.has(key)) return;
      knownValues.add(key);
      const fp = fingerprint(value);
      for (const { text } of secretForms(value)) {
        addEntry({ prefix: text.slice(0, PREFIX_LENGTH), length: text.length, kind, fp, text }, `t:${kind}:${text}`);
      }
    },
    addDigests(digests: KnownSecretDigest[]): void {
      for (const d of digests) {
        if (d.prefix.length === 0 || d.length < d.prefix.length) continue;
        addEntry({ prefix: d.prefix, length: d.length, kind: `registered:${d.name}`, fp: d.fp, hmac: d.hmac }, `h:${d.name}:${d.hmac}`);
      }
    },
    placeholder,
    findSpans,
    fingerprint,
    candidateTail,
    partialTail,
  };
  if (opts.known) engine.addDigests(opts.known);
  return engine;
}
