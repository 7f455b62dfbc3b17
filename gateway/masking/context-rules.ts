/**
 * Rules that need context rather than a fixed prefix: `key = value` assignments in env dumps,
 * dotenv, YAML, JSON, INI, shell and SQL; HTTP credential headers; passwords in URIs; PEM
 * private keys; psql/mysql tables with secret columns; Kubernetes Secret manifests.
 *
 * Each handler is called at a prefilter hit and walks a bounded window around it with plain
 * loops, so its cost is proportional to the hit, never to the text.
 */
import { acceptSecretValue, classifySecretKey, isReference, KeyClass, mayBeArriving } from './keys';

export interface RawSpan {
  start: number;
  end: number;
  kind: string;
  /** higher wins when spans overlap: known secrets > PEM > prefixed tokens > context rules */
  priority: number;
  /** the secret the fingerprint is taken of, when it is not the masked text itself */
  value?: string;
  fp?: string;
}

/** A word of a shell command: its bounds, quotes included. */
export interface CommandWord {
  s: number;
  e: number;
}

export interface ScanState {
  /** key starts already handled, so `x-auth-token` is parsed once though it holds two anchors */
  seenKeys: Set<number>;
  seenLines: Set<number>;
  k8sDone: boolean;
  /** end of the last accepted assignment value and PEM block: hits inside them are already covered */
  valueEnd: number;
  pemEnd: number;
  /** end of the line the table rule last looked at: one look per line */
  tableLineEnd: number;
  /** end of the `.pgpass` entries already read after a mention of the file, and of the last line checked for one */
  pgpassEnd: number;
  pgpassLineEnd: number;
  /** the words of the command a client name was last read from, where reading stopped, and whether the command ended there */
  command: { args: CommandWord[]; stop: number; ended: boolean } | null;
  /**
   * The text may go on past its end (a stream's tail): a password value reaching the end is masked
   * as it stands, though it may look like a placeholder yet (`No` of `Nop4ss`), so no char of it leaks.
   */
  open: boolean;
  /** the kind and secret of a value when one rule covers all of it, for whole-value masking */
  classifyWhole(value: string): { kind: string; value: string } | null;
}

export type Handler = (text: string, pos: number, state: ScanState, out: RawSpan[]) => void;

export const PRIORITY = { known: 100, pem: 90, token: 50, k8s: 40, context: 30, assignment: 20 } as const;

const MAX_VALUE = 8192;
const MAX_KEY = 96;

function isKeyChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 46 || c === 45;
}
function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}
function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;
}
export function lineStartOf(text: string, pos: number): number {
  return text.lastIndexOf('\n', pos - 1) + 1;
}
/** Start of the line holding `pos`, or -1 if it is further back than `max` chars (handlers stay linear). */
function nearLineStart(text: string, pos: number, max: number): number {
  const limit = Math.max(0, pos - max);
  for (let i = pos; i > limit; i--) if (text.charCodeAt(i - 1) === 10) return i;
  return limit === 0 ? 0 : -1;
}
/** End of the line holding `pos`, or -1 if it is further on than `max` chars. */
function nearLineEnd(text: string, pos: number, max: number): number {
  const limit = Math.min(text.length, pos + max);
  for (let i = pos; i < limit; i++) if (text.charCodeAt(i) === 10) return i;
  return limit === text.length ? text.length : -1;
}
export function lineEndOf(text: string, pos: number): number {
  const e = text.indexOf('\n', pos);
  return e < 0 ? text.length : e;
}
function skipSpaces(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}
/** End of the line, bounded, without a trailing CR. */
function boundedLineEnd(text: string, from: number): number {
  let e = nearLineEnd(text, from, MAX_VALUE);
  if (e < 0) e = from + MAX_VALUE;
  if (e > from && text.charCodeAt(e - 1) === 13) e--;
  return e;
}
/** Index of the closing quote, honouring backslash escapes; -1 if none on this line. */
function closingQuote(text: string, from: number, q: string): number {
  const limit = Math.min(text.length, from + MAX_VALUE);
  for (let i = from; i < limit; i++) {
    const c = text[i];
    if (c === '\n') return -1;
    if (q === '\\"') {
      if (c === '\\' && text[i + 1] === '"') return i;
      continue;
    }
    if (c === '\\' && q !== "'") {
      i++;
      continue;
    }
    if (c === q) {
      // SQL doubles a quote inside a literal
      if (q === "'" && text[i + 1] === "'") {
        i++;
        continue;
      }
      return i;
    }
  }
  return -1;
}
function quoteAt(text: string, i: number): string {
  const c = text[i];
  if (c === '"' || c === "'" || c === '`') return c;
  if (c === '\\' && text[i + 1] === '"') return '\\"';
  return '';
}
/** Index of the bracket closing the one at `open` (`(` or `{`), nesting counted, on this line; -1 if none. */
function closingBracket(text: string, open: number): number {
  const o = text[open];
  const c = o === '(' ? ')' : '}';
  const limit = Math.min(text.length, open + 1024);
  let depth = 0;
  for (let i = open; i < limit; i++) {
    const ch = text[i];
    if (ch === '\n') return -1;
    if (ch === o) depth++;
    else if (ch === c && --depth === 0) return i;
  }
  return -1;
}
function trimSpan(text: string, s: number, e: number): [number, number] {
  while (s < e && isWs(text.charCodeAt(s))) s++;
  while (e > s && isWs(text.charCodeAt(e - 1))) e--;
  return [s, e];
}
/** Scans forward until a char in `stop` (or whitespace), bounded. */
function scanUntil(text: string, from: number, stop: string, stopAtWs = true): number {
  const limit = Math.min(text.length, from + MAX_VALUE);
  let i = from;
  while (i < limit) {
    const c = text.charCodeAt(i);
    if (stopAtWs && isWs(c)) break;
    if (stop.includes(text[i])) break;
    i++;
  }
  return i;
}

const LINE_PREFIX = /^(?:\s*(?:export|set|setenv|declare(?:\s+-\w+)?|local|readonly|ENV|-)\s+|\s*\$env:|\s*)$/;

const SEPARATORS = ['===', '=>', ':=', '==', '!=', '?=', '+=', '=', ':'];
const classCache = new Map<string, KeyClass | null>();
/** Key classification is pure and keys repeat (every line of an env dump): cache it. */
function classifyCached(key: string): KeyClass | null {
  let c = classCache.get(key);
  if (c === undefined) {
    c = classifySecretKey(key);
    if (classCache.size >= 4096) classCache.clear();
    classCache.set(key, c);
  }
  return c;
}

const SINGLE_TOKEN_SCHEMES = new Set(['bearer', 'basic', 'token', 'bot', 'negotiate', 'ntlm', 'apikey', 'key', 'sso-key', 'dpop', 'pat', 'oauth', 'splunk', 'sharedaccesssignature', 'ssws', 'klaviyo-api-key']);

/** `key = value`, `"key": "value"`, `export KEY=value`, `--password value`, `PASSWORD 'x'`, credential headers. */
export const assignmentHandler: Handler = (text, pos, state, out) => {
  if (pos < state.valueEnd) return;
  let ks = pos;
  let n = 0;
  while (ks > 0 && n < MAX_KEY && isKeyChar(text.charCodeAt(ks - 1))) {
    ks--;
    n++;
  }
  if (n >= MAX_KEY) return;
  let ke = pos;
  n = 0;
  while (ke < text.length && n < MAX_KEY && isKeyChar(text.charCodeAt(ke))) {
    ke++;
    n++;
  }
  if (n >= MAX_KEY) return;
  if (state.seenKeys.has(ks)) return;
  state.seenKeys.add(ks);
  while (ke > ks && (text[ke - 1] === '.' || text[ke - 1] === '-')) ke--;
  const key = text.slice(ks, ke);
  const lowerKey = key.toLowerCase();
  // ADO.NET / ODBC `…;Pwd=x;`: PWD alone is the shell's working directory, after a `;` it is a password
  const cls = classifyCached(key) ?? (lowerKey === 'pwd' && connStringKey(text, ks) ? PWD : null);
  if (!cls) return;

  let j = ke;
  let keyQuote = '';
  if (ks > 0) {
    const q = text[ks - 1];
    if (q === '"' || q === "'" || q === '`') keyQuote = q === '"' && text[ks - 2] === '\\' ? '\\"' : q;
  }
  if (keyQuote !== '' && text.startsWith(keyQuote, j)) j += keyQuote.length;
  else keyQuote = '';
  const afterKey = j;
  j = skipSpaces(text, j);
  const lineStart = nearLineStart(text, ks, 64);
  const prefix = lineStart < 0 ? '' : text.slice(lineStart, keyQuote ? ks - keyQuote.length : ks);
  const atLineStart = lineStart >= 0 && LINE_PREFIX.test(prefix);

  if (keyQuote === '' && ks > 0 && text[ks - 1] === '<' && text[ke] === '>') {
    xmlElementValue(text, ke + 1, key, cls, state, out);
    return;
  }
  if (keyQuote === '"' && /^\s*value\s*=\s*"/.test(text.slice(j, j + 16)) && /\bkey\s*=\s*$/.test(text.slice(Math.max(0, ks - 8), ks - 1))) {
    // `<add key="DbPassword" value="x" />` (appSettings, NuGet.config)
    const vs = text.indexOf('"', j) + 1;
    const ve = closingQuote(text, vs, '"');
    if (ve > vs && acceptSecretValue(text.slice(vs, ve), cls)) {
      state.valueEnd = ve;
      out.push({ start: vs, end: ve, kind: cls.kind, priority: PRIORITY.assignment });
    }
    return;
  }
  let sep = '';
  // PHP's `define('DB_PASSWORD', 'x')`
  if (keyQuote !== '' && text[j] === ',' && /\bdefine\s*\(\s*$/i.test(prefix)) sep = ',';
  for (const s of SEPARATORS) {
    if (sep !== '') break;
    if (text.startsWith(s, j)) {
      sep = s;
      break;
    }
  }
  if (sep === '' && atLineStart && text[j] === '|' && text.lastIndexOf('-[ RECORD', ks) >= Math.max(0, ks - 65536)) sep = '|';
  // shell `PGPASSWORD==x`: the value is `=x`
  if ((sep === '==' || sep === '===') && atLineStart && j === afterKey && /^[A-Z_][A-Z0-9_]*$/.test(key)) sep = '=';
  if (sep === '') {
    // whitespace-separated forms: `--password value`, SQL `PASSWORD 'x'`, .netrc `password x`
    if (j === afterKey || j >= text.length) return;
    const c = text[j];
    if (key.startsWith('-') && c !== '-' && !isWs(text.charCodeAt(j))) sep = ' ';
    else if (cls.password && (c === "'" || c === '"')) sep = ' ';
    else if (lowerKey === 'password' && (/\b(?:machine|login|default)\s/.test(prefix) || (atLineStart && netrcAbove(text, ks)))) sep = ' ';
    else return;
  } else {
    if (sep === ':' && text.startsWith('//', j + 1)) return;
    j += sep.length;
  }
  const spacedSep = sep !== ' ' && j > afterKey + sep.length;
  j = skipSpaces(text, j);
  if (j >= text.length) return;
  const c0 = text.charCodeAt(j);
  if (c0 === 10 || c0 === 13) return;

  if (cls.header !== undefined) {
    headerValue(text, j, cls, state.open, out);
    return;
  }

  let vs: number;
  let ve: number;
  const q = quoteAt(text, j);
  // `define('X', getenv('X'))`: only a literal is a value
  if (sep === ',' && q === '') return;
  const keyCtx = ks - keyQuote.length > 0 ? text[ks - keyQuote.length - 1] : '\n';
  if (q !== '') {
    vs = j + q.length;
    const close = closingQuote(text, vs, q);
    ve = close >= 0 ? close : boundedLineEnd(text, vs);
  } else {
    const c = text[j];
    if (c === '{' && keyCtx === ';' && cls.password) {
      // ODBC braces a value that holds `;`: `PWD={a;b}`
      const close = text.indexOf('}', j + 1);
      if (close < 0 || close - j > MAX_VALUE || text.slice(j + 1, close).includes('\n')) return;
      const value = text.slice(j + 1, close);
      if (acceptSecretValue(value, cls)) {
        state.valueEnd = close;
        out.push({ start: j + 1, end: close, kind: cls.kind, priority: PRIORITY.assignment });
      }
      return;
    }
    if (c === '{' || c === '[' || c === '|' || c === '>' || c === '&' || c === '*' || c === '!') {
      // structure, YAML block scalars, anchors and tags: the inner values get their own hits;
      // after `=` (shell, dotenv, INI) there are no YAML tags, and `!0Ab` is a password
      if (!(c === '*' && cls.password) && !(c === '!' && cls.password && sep !== ':')) return;
    }
    vs = j;
    const ref = c === '$' && (text[j + 1] === '(' || text[j + 1] === '{') ? closingBracket(text, j + 1) : -1;
    if (ref > 0) {
      // `$(cat /run/secrets/x)`, `${VAR}`: the whole reference, however it is spaced
      ve = ref + 1;
    } else if (atLineStart && (sep === ':' || sep === '|' || (sep === '=' && spacedSep))) {
      ve = boundedLineEnd(text, vs);
      const comment = text.slice(vs, ve).search(/\s#/);
      if (comment >= 0) ve = vs + comment;
      while (ve > vs && (isWs(text.charCodeAt(ve - 1)) || text[ve - 1] === ',' || text[ve - 1] === ';')) ve--;
    } else if (atLineStart && sep === '=') {
      ve = scanUntil(text, vs, '');
    } else if (keyCtx === '?' || keyCtx === '&') {
      ve = scanUntil(text, vs, '&#"\'<>');
    } else if (keyCtx === ';') {
      ve = scanUntil(text, vs, ';"\'');
    } else {
      ve = scanUntil(text, vs, '"\'`,;)}]<>');
    }
  }
  [vs, ve] = trimSpan(text, vs, ve);
  if (ve <= vs) return;
  const value = text.slice(vs, ve);
  // docker's config.json: `"auth": "<base64 of user:password>"`, short as it may be
  if (lowerKey === 'auth' && isBasicAuthBase64(value)) {
    state.valueEnd = ve;
    out.push({ start: vs, end: ve, kind: 'basic-auth', priority: PRIORITY.assignment });
    return;
  }
  const arriving = state.open && ve === text.length && mayBeArriving(value);
  // `config.db.password` is code reading a secret; in a query string, a `;`-separated connection
  // string, a `password x` line (.netrc, a flag) or a shell/dotenv `KEY=value` there is no code,
  // and `aZnq.zGkO` is a password
  const shellAssignment = atLineStart && sep === '=' && !spacedSep;
  const code = q === '' && !shellAssignment && sep !== ' ' && keyCtx !== '?' && keyCtx !== '&' && keyCtx !== ';';
  if (!arriving && !acceptSecretValue(value, cls, { unquoted: code })) {
    // a reference names a secret kept elsewhere: the words inside it (`…:secret:prod/db`) are not keys
    if (isReference(value)) state.valueEnd = ve;
    return;
  }
  state.valueEnd = ve;
  out.push({ start: vs, end: ve, kind: cls.kind, priority: PRIORITY.assignment });
};

/** `<password>x</password>` (Maven's settings.xml, NuGet.config, app configs): the element's text. */
function xmlElementValue(text: string, vs: number, key: string, cls: KeyClass, state: ScanState, out: RawSpan[]): void {
  const close = `</${key}>`;
  const limit = Math.min(text.length, vs + MAX_VALUE);
  let ve = vs;
  while (ve < limit && text[ve] !== '<' && text[ve] !== '\n') ve++;
  const complete = text.startsWith(close, ve);
  // still arriving at the end of the text, or closed by its own tag; anything else is markup, not a value
  if (!complete && !(state.open && ve === text.length && cls.password)) return;
  const [s, e] = trimSpan(text, vs, ve);
  if (e <= s) return;
  const value = text.slice(s, e);
  if (!(state.open && e === text.length && mayBeArriving(value)) && !acceptSecretValue(value, cls)) return;
  state.valueEnd = e;
  out.push({ start: s, end: e, kind: cls.kind, priority: PRIORITY.assignment });
}

const PWD: KeyClass = { kind: 'password', password: true, weak: false };

const CONN_STRING_KEYS = /(?:^|;)\s*(?:uid|user id|user|username|server|data source|host|driver|dsn|database|initial catalog|provider)\s*=/i;

/** `Pwd` after the `;` of a connection string that names a server, user or driver; not a shell's `cd x; PWD=…`. */
function connStringKey(text: string, ks: number): boolean {
  let i = ks;
  while (i > 0 && isSpace(text.charCodeAt(i - 1))) i--;
  if (i === 0 || text[i - 1] !== ';') return false;
  // the key naming the server or user sits a few pairs before the password
  let from = i;
  while (from > 0 && i - from < 96 && text.charCodeAt(from - 1) !== 10) from--;
  return CONN_STRING_KEYS.test(text.slice(from, i));
}

/** `.netrc` over several lines: a `password` line under `machine …`/`default` and `login …`. */
function netrcAbove(text: string, ks: number): boolean {
  const above = text.slice(Math.max(0, ks - 512), ks);
  return /(?:^|\s)(?:machine[ \t]+\S+|default)\s/.test(above) && /(?:^|\s)login[ \t]+\S+\s/.test(above);
}

function isBasicAuthBase64(v: string): boolean {
  if (v.length < 8 || v.length > 1024 || v.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(v)) return false;
  const decoded = Buffer.from(v, 'base64').toString('latin1');
  return /^[\x21-\x7e]+:[\x20-\x7e]+$/.test(decoded);
}

/** The value of an Authorization / Cookie / X-Api-Key header: keep the scheme and cookie names readable. */
function headerValue(text: string, j: number, cls: KeyClass, open: boolean, out: RawSpan[]): void {
  let rs = j;
  let re: number;
  const q = quoteAt(text, j);
  if (q !== '') {
    rs = j + q.length;
    const close = closingQuote(text, rs, q);
    re = close >= 0 ? close : boundedLineEnd(text, rs);
  } else {
    re = boundedLineEnd(text, rs);
  }
  const region = text.slice(rs, re);
  const push = (s: number, e: number, kind: string): void => {
    const atEnd = open && e === text.length;
    [s, e] = trimSpan(text, s, e);
    if (e <= s) return;
    // still arriving at the end of a stream's text (a space may be inside it): too short to judge
    // yet, but not to let out
    if (atEnd) e = text.length;
    const v = text.slice(s, e);
    const arriving = atEnd && mayBeArriving(v);
    if (!arriving && !acceptSecretValue(v, { kind, password: true, weak: false })) return;
    out.push({ start: s, end: e, kind, priority: PRIORITY.context });
  };
  if (cls.header === 'authorization') {
    const m = /^([A-Za-z][A-Za-z0-9._-]*)[ \t]+(?=\S)/.exec(region);
    if (m) {
      const scheme = m[1].toLowerCase();
      const ts = rs + m[0].length;
      if (SINGLE_TOKEN_SCHEMES.has(scheme)) {
        const kind = scheme === 'bearer' ? 'bearer-token' : scheme === 'basic' ? 'basic-auth' : 'authorization-header';
        push(ts, Math.min(re, scanUntil(text, ts, '"\'`,')), kind);
      } else {
        push(ts, re, 'authorization-header');
      }
    } else {
      const te = Math.min(re, scanUntil(text, rs, '"\'`,'));
      // a scheme alone (`Bearer ` with the token still to come) is not a secret
      if (!SINGLE_TOKEN_SCHEMES.has(text.slice(rs, te).toLowerCase()) && !/^(?:digest|aws4-hmac-sha256|hmac)$/i.test(text.slice(rs, te))) {
        push(rs, te, 'authorization-header');
      }
    }
    return;
  }
  if (cls.header === 'cookie' || cls.header === 'set-cookie') {
    let i = rs;
    while (i < re) {
      let end = text.indexOf(';', i);
      if (end < 0 || end > re) end = re;
      const eq = text.indexOf('=', i);
      if (eq >= 0 && eq < end) push(eq + 1, end, 'cookie');
      if (cls.header === 'set-cookie') break;
      i = end + 1;
    }
    return;
  }
  push(rs, Math.min(re, scanUntil(text, rs, '"\'`,;')), cls.kind);
}

function isSchemeChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 46 || c === 45;
}

/** `scheme://user:password@host` — the password only; the last `@` wins so an unescaped `@` in it is covered. */
export const uriHandler: Handler = (text, pos, _state, out) => {
  let s = pos;
  let n = 0;
  while (s > 0 && n < 32 && isSchemeChar(text.charCodeAt(s - 1))) {
    s--;
    n++;
  }
  if (s === pos) return;
  const us = pos + 3;
  let at = -1;
  let colon = -1;
  const limit = Math.min(text.length, us + 1024);
  for (let i = us; i < limit; i++) {
    const c = text[i];
    if (isWs(text.charCodeAt(i)) || c === '/' || c === '?' || c === '#' || c === '"' || c === "'" || c === '<' || c === '>' || c === '`' || c === '\\') break;
    if (c === '@') at = i;
    else if (c === ':' && colon < 0 && at < 0) colon = i;
  }
  if (at < 0 || colon < 0 || colon > at) return;
  const value = text.slice(colon + 1, at);
  if (!acceptSecretValue(value, { kind: 'password', password: true, weak: false })) return;
  out.push({ start: colon + 1, end: at, kind: 'password', priority: PRIORITY.context });
};

const MAX_PEM = 65536;
function isPemBody(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47 || c === 61 ||
    isWs(c) || c === 92 || c === 58 || c === 44 || c === 45 || c === 46;
}

/** A PEM private key of any label, the whole block; a block cut short is masked to the end of its body. */
export const pemHandler: Handler = (text, pos, state, out) => {
  if (pos < state.pemEnd || !text.startsWith('-----BEGIN ', pos)) return;
  const labelStart = pos + 11;
  const labelEnd = text.indexOf('-----', labelStart);
  if (labelEnd < 0 && state.open && text.length - labelStart <= 64 && /^[A-Z0-9 ]*-{0,4}$/.test(text.slice(labelStart))) {
    // a stream's header still arriving: it may name a private key, so none of it goes out yet
    state.pemEnd = text.length;
    out.push({ start: pos, end: text.length, kind: 'private-key', priority: PRIORITY.pem });
    return;
  }
  if (labelEnd < 0 || labelEnd - labelStart > 64) return;
  const label = text.slice(labelStart, labelEnd);
  if (!/^[A-Z0-9 ]+$/.test(label) || !label.includes('PRIVATE')) return;
  const bodyStart = labelEnd + 5;
  const endMarker = `-----END ${label}-----`;
  const window = text.length - bodyStart > MAX_PEM + 64 ? text.slice(bodyStart, bodyStart + MAX_PEM + 64) : text;
  const found = window.indexOf(endMarker, window === text ? bodyStart : 0);
  const endIdx = found < 0 ? -1 : window === text ? found : bodyStart + found;
  if (endIdx >= 0) {
    state.pemEnd = endIdx + endMarker.length;
    out.push({ start: pos, end: state.pemEnd, kind: 'private-key', priority: PRIORITY.pem });
    return;
  }
  let e = bodyStart;
  const limit = Math.min(text.length, bodyStart + MAX_PEM);
  if (state.open && limit === text.length) {
    // the END line may still arrive in a stream: the key runs to the end of the text until it does
    state.pemEnd = text.length;
    out.push({ start: pos, end: text.length, kind: 'private-key', priority: PRIORITY.pem });
    return;
  }
  while (e < limit && isPemBody(text.charCodeAt(e))) e++;
  while (e > bodyStart && isWs(text.charCodeAt(e - 1))) e--;
  state.pemEnd = e;
  out.push({ start: pos, end: e, kind: 'private-key', priority: PRIORITY.pem });
};

/** SQL `IDENTIFIED BY 'x'` (MySQL, Oracle). */
const IDENTIFIED = /identified[ \t]+(?:with[ \t]+\S+[ \t]+)?by[ \t]+(?:password[ \t]+)?(?:'((?:[^'\\\n]|\\.|''){1,4096})'|"((?:[^"\\\n]|\\.){1,4096})")/iy;
export const identifiedHandler: Handler = (text, pos, _state, out) => {
  IDENTIFIED.lastIndex = pos;
  const m = IDENTIFIED.exec(text);
  if (!m) return;
  const v = m[1] ?? m[2] ?? '';
  const end = pos + m[0].length - 1;
  if (!acceptSecretValue(v, { kind: 'password', password: true, weak: false })) return;
  out.push({ start: end - v.length, end, kind: 'password', priority: PRIORITY.context });
};

/** `curl -u user:password`, `curl -uuser:password`, `--user user:password`. */
const CURL_USER = /(?<![\w-])(?:-u[ \t]*|--user[= \t]+)['"]?([^\s'":]{0,256}):([^\s'"]{1,1024})/y;
export const curlUserHandler: Handler = (text, pos, _state, out) => {
  CURL_USER.lastIndex = pos;
  const m = CURL_USER.exec(text);
  if (!m) return;
  // `docker run -u 1000:1000`, `-u www-data:www-data`: a user and group, not a password
  if (m[2] === m[1] || /^\d+$/.test(m[2])) return;
  const end = pos + m[0].length;
  if (!acceptSecretValue(m[2], { kind: 'password', password: true, weak: false })) return;
  out.push({ start: end - m[2].length, end, kind: 'password', priority: PRIORITY.context });
};

function splitCells(text: string, s: number, e: number): Array<[number, number]> {
  const cells: Array<[number, number]> = [];
  let i = s;
  for (;;) {
    const p = text.indexOf('|', i);
    if (p < 0 || p >= e) {
      cells.push([i, e]);
      return cells;
    }
    cells.push([i, p]);
    i = p + 1;
  }
}

const MAX_TABLE_ROWS = 200000;

/** Whether the line at `ns` may match `^[\s+|-]*$` with a `---` in it: its first non-`\s` char is one of `-+|`. */
function mayStartTableRule(text: string, ns: number): boolean {
  const limit = Math.min(text.length, ns + 4096);
  for (let i = ns; i < limit; i++) {
    const c = text.charCodeAt(i);
    if (c === 45 || c === 43 || c === 124) return true;
    if (c === 9 || c === 11 || c === 12 || c === 13 || c === 32) continue;
    if (c >= 128 && /\s/.test(text[i])) continue;
    return false;
  }
  return false;
}

/** psql / mysql aligned tables: the header names a secret column, a dashed rule follows, rows below. */
export const tableHandler: Handler = (text, pos, state, out) => {
  if (pos < state.tableLineEnd) return;
  let le = nearLineEnd(text, pos, 4096);
  state.tableLineEnd = le < 0 ? pos + 4096 : le;
  if (le < 0 || le >= text.length) return;
  const ns = le + 1;
  // cheap reject first: most lines with a secret-ish word are not the header of a table, and the
  // rule line below one starts (after whitespace) with `-`, `+` or `|`
  if (!mayStartTableRule(text, ns)) return;
  const ls = nearLineStart(text, pos, 4096);
  if (ls < 0 || state.seenLines.has(ls)) return;
  state.seenLines.add(ls);
  const ne = nearLineEnd(text, ns, 4096);
  if (ne < 0) return;
  const rule = text.slice(ns, ne).replace(/\r$/, '');
  if (rule.length < 3 || !/^[\s+|-]*$/.test(rule) || !rule.includes('---')) return;
  if (text.charCodeAt(le - 1) === 13) le--;
  const hasPipes = text.lastIndexOf('|', le - 1) >= ls;
  const cols = hasPipes ? splitCells(text, ls, le) : [[ls, le] as [number, number]];
  const secretCols: Array<{ index: number; cls: KeyClass }> = [];
  cols.forEach(([s, e], index) => {
    const name = text.slice(s, e).trim();
    const cls = name.length > 0 && /^[\w.-]+$/.test(name) ? classifySecretKey(name) : null;
    if (cls) secretCols.push({ index, cls });
  });
  if (secretCols.length === 0) return;
  let rs = ne + 1;
  for (let row = 0; row < MAX_TABLE_ROWS && rs < text.length; row++) {
    let re = lineEndOf(text, rs);
    if (text.charCodeAt(re - 1) === 13) re--;
    const line = text.slice(rs, re);
    const trimmed = line.trim();
    if (trimmed === '' || /^\(\d+ rows?\)$/.test(trimmed) || /^[+-][-+]*$/.test(trimmed)) break;
    if (hasPipes && !line.includes('|')) break;
    const cells = hasPipes ? splitCells(text, rs, re) : [[rs, re] as [number, number]];
    if (cells.length === cols.length) {
      for (const { index, cls } of secretCols) {
        const [s, e] = trimSpan(text, cells[index][0], cells[index][1]);
        if (e > s && acceptSecretValue(text.slice(s, e), cls, { structural: true })) {
          out.push({ start: s, end: e, kind: cls.kind, priority: PRIORITY.context });
        }
      }
    } else {
      // a value holds a `|` itself: mask from the first secret column to the end of the row
      const first = cells[Math.min(secretCols[0].index, cells.length - 1)];
      const [s, e] = trimSpan(text, first[0], re);
      if (e > s) out.push({ start: s, end: e, kind: secretCols[0].cls.kind, priority: PRIORITY.context });
    }
    rs = re + 1;
    if (text.charCodeAt(rs - 1) === 13) rs++;
  }
};

/** Mask one Secret value: `data` is base64, scanned decoded, and masked whole with the decoded fingerprint. */
function k8sValue(text: string, s: number, e: number, isData: boolean, state: ScanState, out: RawSpan[]): void {
  [s, e] = trimSpan(text, s, e);
  if (e <= s) return;
  const raw = text.slice(s, e);
  if (raw.startsWith('[MASKED:')) return;
  let secret = raw;
  if (isData && /^[A-Za-z0-9+/]+={0,2}$/.test(raw)) secret = Buffer.from(raw, 'base64').toString('utf8');
  const whole = state.classifyWhole(secret);
  out.push({ start: s, end: e, kind: whole ? whole.kind : 'k8s-secret', priority: PRIORITY.k8s, value: whole ? whole.value : secret });
}

const KIND_SECRET_BEFORE = /kind\\?["']?\s*:\s*\\?["']?$/;

/** A Kubernetes Secret manifest in YAML or JSON text (kubectl output, last-applied annotations). */
export const k8sHandler: Handler = (text, pos, state, out) => {
  if (state.k8sDone || !text.startsWith('Secret', pos)) return;
  const next = text.charCodeAt(pos + 6);
  if ((next >= 48 && next <= 57) || (next >= 65 && next <= 90) || (next >= 97 && next <= 122)) return;
  if (!KIND_SECRET_BEFORE.test(text.slice(Math.max(0, pos - 24), pos))) return;
  state.k8sDone = true;
  jsonSecretData(text, state, out);
  yamlSecretData(text, state, out);
};

function jsonSecretData(text: string, state: ScanState, out: RawSpan[]): void {
  const re = /\\?"(data|stringData)\\?"\s*:\s*\{/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const isData = m[1] === 'data';
    let i = m.index + m[0].length;
    for (let pairs = 0; pairs < 10000; pairs++) {
      while (i < text.length && (isWs(text.charCodeAt(i)) || text[i] === ',')) i++;
      const kq = quoteAt(text, i);
      if (kq === '' || kq === "'" || kq === '`') break;
      const kEnd = closingQuote(text, i + kq.length, kq);
      if (kEnd < 0) break;
      i = skipWsAll(text, kEnd + kq.length);
      if (text[i] !== ':') break;
      i = skipWsAll(text, i + 1);
      const vq = quoteAt(text, i);
      if (vq === '' || vq === "'" || vq === '`') break;
      const vEnd = closingQuote(text, i + vq.length, vq);
      if (vEnd < 0) break;
      k8sValue(text, i + vq.length, vEnd, isData, state, out);
      i = vEnd + vq.length;
    }
    re.lastIndex = Math.max(re.lastIndex, i);
  }
}
function skipWsAll(text: string, i: number): number {
  while (i < text.length && isWs(text.charCodeAt(i))) i++;
  return i;
}

function yamlSecretData(text: string, state: ScanState, out: RawSpan[]): void {
  if (text.length > 4 * 1024 * 1024) return;
  const lines: Array<[number, number]> = [];
  for (let s = 0; s <= text.length; ) {
    const e = lineEndOf(text, s);
    lines.push([s, e]);
    s = e + 1;
  }
  let docStart = 0;
  for (let li = 0; li <= lines.length; li++) {
    const atEnd = li === lines.length;
    if (!atEnd && !text.startsWith('---', lines[li][0])) continue;
    const doc = lines.slice(docStart, li);
    docStart = li + 1;
    if (!doc.some(([s, e]) => /^\s*(?:-\s+)?kind:\s*["']?Secret["']?\s*$/.test(text.slice(s, e)))) continue;
    for (let d = 0; d < doc.length; d++) {
      const head = /^(\s*)(?:-\s+)?(data|stringData):\s*$/.exec(text.slice(doc[d][0], doc[d][1]));
      if (!head) continue;
      const indent = head[0].indexOf(head[2]);
      const isData = head[2] === 'data';
      for (d = d + 1; d < doc.length; d++) {
        const [s, e] = doc[d];
        const line = text.slice(s, e);
        if (line.trim() === '') continue;
        const ind = line.length - line.trimStart().length;
        if (ind <= indent) {
          d--;
          break;
        }
        const kv = /^\s*["']?[^:#'"]+["']?:[ \t]*/.exec(line);
        if (!kv) continue;
        let vs = s + kv[0].length;
        let ve = e;
        if (text.charCodeAt(ve - 1) === 13) ve--;
        const q = text[vs];
        if ((q === '"' || q === "'") && ve - 1 > vs && text[ve - 1] === q) {
          vs++;
          ve--;
        }
        k8sValue(text, vs, ve, isData, state, out);
      }
    }
  }
}

/** Anchors of the context rules: each keyword calls these handlers. */
export const CONTEXT_ANCHORS: Array<{ anchors: string[]; handlers: Handler[] }> = [
  { anchors: ['pass', 'pwd', 'token', 'key', 'credential', 'creds', 'auth', 'cookie', 'sessionid'], handlers: [assignmentHandler, tableHandler] },
  { anchors: ['secret'], handlers: [assignmentHandler, tableHandler, k8sHandler] },
  { anchors: ['://'], handlers: [uriHandler] },
  { anchors: ['-----begin '], handlers: [pemHandler] },
  { anchors: ['identified'], handlers: [identifiedHandler] },
  { anchors: ['-u', '--user'], handlers: [curlUserHandler] },
];
