/**
 * Credentials without a recognisable prefix, found by the context that names them: password
 * flags of common command-line clients (`mysql -p…`, `redis-cli -a …`, `sshpass -p …`),
 * Oracle `user/password@db` logins, Go MySQL DSNs, a password echoed into `--password-stdin`,
 * `.pgpass` lines, and the AWS secret access key written next to its key id. Only the secret
 * part is masked, so a reviewer still reads the command.
 *
 * Like the other context rules, each handler runs at a prefilter hit and looks at a bounded
 * window around it.
 */
import { CommandWord, Handler, PRIORITY, RawSpan, ScanState } from './context-rules';
import { acceptSecretValue, entropy, KeyClass, mayBeArriving } from './keys';

const PASSWORD: KeyClass = { kind: 'password', password: true, weak: false };
const MAX_COMMAND = 1024;
/** words read after a client name: its password flag comes early, and a bound keeps repeated names linear */
const MAX_ARGS = 24;

/** How a flag takes its value: `-pSECRET` (attached), `-p SECRET` (separate), or both. */
type ValueForm = 'attached' | 'separate' | 'either';

interface FlagSpec {
  flag: string;
  form: ValueForm;
  /** the value is `user<split>password`: only the part after the first split char is the secret */
  split?: string;
}

interface ClientSpec {
  flags: FlagSpec[];
  /** the flags mean a password only after this subcommand (`docker login -p`, not `docker run -p`) */
  after?: string;
  /** positional passwords (`htpasswd -b file user pw`, `sqlplus user/pw@db`) */
  positional?: (text: string, args: Arg[], out: RawSpan[], open: boolean) => void;
}

type Arg = CommandWord;

const REGISTRY_LOGIN: ClientSpec = { flags: [{ flag: '-p', form: 'either' }], after: 'login' };

const specCache = new Map<string, ClientSpec | null>();

/** Client by command name (cached: the same few names come back on every line of a log); null for any other word. */
function clientSpec(name: string): ClientSpec | null {
  let spec = specCache.get(name);
  if (spec === undefined) {
    spec = clientSpecOf(name);
    if (specCache.size >= 1024) specCache.clear();
    specCache.set(name, spec);
  }
  return spec;
}

/** Flags are case-sensitive, as the clients read them. */
function clientSpecOf(name: string): ClientSpec | null {
  if (/^(?:mysql|mariadb)[a-z-]*$/.test(name)) return { flags: [{ flag: '-p', form: 'attached' }] };
  if (/^mongo(?:sh|dump|restore|export|import|stat|top|files)?$/.test(name)) return { flags: [{ flag: '-p', form: 'separate' }] };
  if (/^ldap[a-z]+$/.test(name)) return { flags: [{ flag: '-w', form: 'separate' }] };
  switch (name) {
    case 'redis-cli':
    case 'keydb-cli':
      return { flags: [{ flag: '-a', form: 'either' }] };
    case 'sshpass':
      return { flags: [{ flag: '-p', form: 'either' }] };
    case 'docker':
    case 'podman':
    case 'nerdctl':
    case 'skopeo':
    case 'az':
    case 'cf':
      return REGISTRY_LOGIN;
    case 'sqlcmd':
    case 'bcp':
      return { flags: [{ flag: '-P', form: 'either' }] };
    case 'cqlsh':
      return { flags: [{ flag: '-p', form: 'separate' }] };
    case 'smbclient':
      return { flags: [{ flag: '-U', form: 'either', split: '%' }] };
    case 'lftp':
      return { flags: [{ flag: '-u', form: 'separate', split: ',' }] };
    case 'htpasswd':
      return { flags: [], positional: htpasswdPassword };
    case 'rabbitmqctl':
      return { flags: [], positional: rabbitmqPassword };
    case 'sqlplus':
      return { flags: [], positional: oraclePassword };
    default:
      return null;
  }
}

function isWordChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45 || c === 46;
}

function isBlank(c: string): boolean {
  return c === ' ' || c === '\t';
}

/** Ends a shell word outside quotes, and with it the command when it starts one. */
function isCommandEnd(c: string): boolean {
  return c === '\n' || c === '\r' || c === ';' || c === '|' || c === '&' || c === ')' || c === '<' || c === '>' || c === '`';
}

/**
 * Appends the words of one shell command from `from` to `args`; stops at the end of the line (a
 * trailing backslash continues it), `;`, `|`, `&&`, a redirection, a quote left open (the command
 * was itself inside quotes: `GIT_SSH_COMMAND="sshpass -p x ssh"`), `end`, or after `maxArgs`
 * words. A word cut by `limit` is left out, to be read again from `stop`.
 */
function readArgs(text: string, from: number, limit: number, end: number, maxArgs: number, args: Arg[]): { stop: number; ended: boolean } {
  const lim = Math.min(limit, end);
  let i = from;
  for (let n = 0; n < maxArgs; n++) {
    for (;;) {
      if (i < lim && isBlank(text[i])) i++;
      else if (i + 1 < lim && text[i] === '\\' && text[i + 1] === '\n') i += 2;
      else if (i + 2 < lim && text[i] === '\\' && text[i + 1] === '\r' && text[i + 2] === '\n') i += 3;
      else break;
    }
    if (i >= lim) return { stop: i, ended: lim >= end };
    if (isCommandEnd(text[i]) || text[i] === '#') return { stop: i, ended: true };
    const s = i;
    let quote = '';
    let openedAt = -1;
    while (i < lim) {
      const c = text[i];
      if (quote !== '') {
        if (c === quote) quote = '';
        else if (c === '\\' && quote === '"') i++;
        else if (c === '\n') break;
        i++;
        continue;
      }
      if (c === "'" || c === '"') {
        quote = c;
        openedAt = i;
        i++;
        continue;
      }
      if (c === '\\' && text[i + 1] !== '\n') {
        i += 2;
        continue;
      }
      if (isBlank(c) || isCommandEnd(c) || c === '\\') break;
      i++;
    }
    if (i >= lim && lim < end) return { stop: s, ended: false };
    if (quote !== '') {
      // at the end of the text a quote still open is a value still arriving (`-p'sec`), not the command's own quotes
      if (i >= text.length && (openedAt === s || text[s] === '-')) args.push({ s, e: i });
      else if (openedAt > s) args.push({ s, e: openedAt });
      return { stop: i, ended: true };
    }
    args.push({ s, e: Math.min(i, lim) });
  }
  return { stop: i, ended: false };
}

/** Index of the last word starting at or before `pos`. */
function argAt(args: Arg[], pos: number): number {
  let lo = 0;
  let hi = args.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (args[mid].s <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The words after a client name ending at `e`. The command read last is kept in the scan state: a
 * client named again as one of its words (`docker exec db mysql -p…`, or the same name repeated)
 * reads on from those words instead of reading them again, so repeated names stay linear.
 */
function wordsAfter(text: string, pos: number, e: number, state: ScanState): Arg[] {
  const c = state.command;
  if (c !== null && c.args.length > 0 && pos >= c.args[0].s && pos < c.stop) {
    const k = argAt(c.args, pos);
    const a = c.args[k];
    if (a.s === pos && a.e === e) {
      const have = c.args.length - k - 1;
      if (!c.ended && have < MAX_ARGS) {
        const r = readArgs(text, c.stop, e + MAX_COMMAND, text.length, MAX_ARGS - have, c.args);
        c.stop = r.stop;
        c.ended = r.ended;
      }
      return c.args.slice(k + 1, k + 1 + MAX_ARGS);
    }
    if (pos < a.e) {
      // inside one quoted word (`bash -c "mysql -p…"`): a command of its own that ends with the word
      const q = text[a.e - 1];
      const inner: Arg[] = [];
      readArgs(text, e, e + MAX_COMMAND, q === '"' || q === "'" ? a.e - 1 : a.e, MAX_ARGS, inner);
      return inner;
    }
  }
  const args: Arg[] = [];
  const r = readArgs(text, e, e + MAX_COMMAND, text.length, MAX_ARGS, args);
  state.command = { args, stop: r.stop, ended: r.ended };
  return args;
}

/** Bounds of a value without the quotes around all of it. */
function unquoted(text: string, s: number, e: number): [number, number] {
  if (e - s >= 2) {
    const q = text[s];
    if ((q === "'" || q === '"') && text[e - 1] === q) return [s + 1, e - 1];
  }
  return [s, e];
}

function pushPassword(text: string, s: number, e: number, out: RawSpan[], open: boolean, split?: string): void {
  const [qs, ve] = unquoted(text, s, e);
  let vs = qs;
  if (split !== undefined) {
    const at = text.slice(vs, ve).indexOf(split);
    // `-u user` alone: the client asks for the password
    if (at < 0 || vs + at >= ve - 1) return;
    vs += at + 1;
  }
  if (ve <= vs) return;
  const value = text.slice(vs, ve);
  if (value.startsWith('-')) return;
  const arriving = open && ve === text.length && mayBeArriving(value);
  // a command line holds no code: `aZnq.zGkO` after `-p` is a password, not a member expression
  if (!arriving && !acceptSecretValue(value, PASSWORD)) return;
  out.push({ start: vs, end: ve, kind: 'password', priority: PRIORITY.context });
}

function isWord(text: string, a: Arg, word: string): boolean {
  return a.e - a.s === word.length && text.startsWith(word, a.s);
}

function positionalArgs(text: string, args: Arg[]): Arg[] {
  return args.filter((a) => text[a.s] !== '-');
}

/** `htpasswd -b[c] FILE USER PASSWORD`, `htpasswd -nb USER PASSWORD`. */
function htpasswdPassword(text: string, args: Arg[], out: RawSpan[], open: boolean): void {
  const flags = args.filter((a) => text[a.s] === '-' && text[a.s + 1] !== '-' && a.e - a.s <= 8).map((a) => text.slice(a.s + 1, a.e)).join('');
  if (!flags.includes('b')) return;
  const pos = positionalArgs(text, args);
  const pw = pos[flags.includes('n') ? 1 : 2];
  if (pw) pushPassword(text, pw.s, pw.e, out, open);
}

/** `rabbitmqctl add_user USER PASSWORD`, `rabbitmqctl change_password USER PASSWORD`. */
function rabbitmqPassword(text: string, args: Arg[], out: RawSpan[], open: boolean): void {
  const pos = positionalArgs(text, args);
  const k = pos.findIndex((a) => isWord(text, a, 'add_user') || isWord(text, a, 'change_password'));
  const pw = k >= 0 ? pos[k + 2] : undefined;
  if (pw) pushPassword(text, pw.s, pw.e, out, open);
}

/** The password of an Oracle `user/password@connect` login, or null. */
function oracleLogin(text: string, s: number, e: number): [number, number] | null {
  const [vs, ve] = unquoted(text, s, e);
  const login = text.slice(vs, ve);
  const slash = vs + login.indexOf('/');
  if (slash <= vs || slash >= ve - 1) return null;
  if (!/^[A-Za-z][\w$#]*$/.test(text.slice(vs, slash))) return null;
  let at = vs + login.indexOf('@', slash - vs);
  if (at < slash) at = ve;
  return at > slash + 1 ? [slash + 1, at] : null;
}

/** `sqlplus user/password@db`, `sqlplus userid=user/password@db`. */
function oraclePassword(text: string, args: Arg[], out: RawSpan[], open: boolean): void {
  for (const a of args) {
    let s = a.s;
    if (text.startsWith('userid=', s) || text.startsWith('USERID=', s)) s += 7;
    else if (text[s] === '-' || text[s] === '@') continue;
    const pw = oracleLogin(text, s, a.e);
    if (pw) pushPassword(text, pw[0], pw[1], out, open);
    if (s === a.s) return;
  }
}

function flagValues(text: string, args: Arg[], spec: ClientSpec, out: RawSpan[], open: boolean): void {
  let start = 0;
  if (spec.after !== undefined) {
    const after = spec.after;
    start = args.findIndex((a) => isWord(text, a, after)) + 1;
    if (start === 0) return;
  }
  for (let k = start; k < args.length; k++) {
    const a = args[k];
    if (text[a.s] !== '-') continue;
    for (const f of spec.flags) {
      if (!text.startsWith(f.flag, a.s)) continue;
      const rest = a.e - a.s - f.flag.length;
      if (rest === 0 && f.form !== 'attached' && k + 1 < args.length) {
        pushPassword(text, args[k + 1].s, args[k + 1].e, out, open, f.split);
        k++;
        break;
      }
      if (rest > 0 && f.form !== 'separate' && text[a.s + f.flag.length] !== '-') {
        pushPassword(text, a.s + f.flag.length, a.e, out, open, f.split);
        break;
      }
    }
  }
}

/** A client's password on its command line: `mysql -pSECRET`, `redis-cli -a SECRET`, `docker login -p SECRET`. */
export const clientFlagHandler: Handler = (text, pos, state, out) => {
  // the anchor may be the end of the name (`-cli` of `redis-cli`): read the word back to its start
  const at = pos;
  while (pos > 0 && at - pos < 16 && isWordChar(text.charCodeAt(pos - 1))) pos--;
  if (pos > 0 && isWordChar(text.charCodeAt(pos - 1))) return;
  let e = pos;
  while (e < text.length && e - pos < 32 && isWordChar(text.charCodeAt(e))) e++;
  let name = text.slice(pos, e).toLowerCase();
  if (name.endsWith('.exe')) name = name.slice(0, -4);
  const spec = clientSpec(name);
  if (!spec || e >= text.length || !isBlank(text[e])) return;
  const args = wordsAfter(text, pos, e, state);
  if (args.length === 0) return;
  if (spec.positional) spec.positional(text, args, out, state.open);
  else flagValues(text, args, spec, out, state.open);
};

const ORACLE_JDBC = /jdbc:oracle:(?:thin|oci8?|kprb):([A-Za-z][\w$#]{0,127})\/([^\s@'"/]{1,1024})@/iy;

/** `jdbc:oracle:thin:user/password@host:1521:SID`. */
export const oracleJdbcHandler: Handler = (text, pos, _state, out) => {
  ORACLE_JDBC.lastIndex = pos;
  const m = ORACLE_JDBC.exec(text);
  if (!m) return;
  const end = pos + m[0].length - 1;
  if (acceptSecretValue(m[2], PASSWORD)) out.push({ start: end - m[2].length, end, kind: 'password', priority: PRIORITY.context });
};

/** One `.pgpass` entry: `host:port:database:user:password`, `\:` and `\\` escaped. */
const PGPASS_FIELD = '(?:[^:\\s\'"\\\\]|\\\\.)+';
const PGPASS_ENTRY = new RegExp(`(?<![^\\s'"=])(${PGPASS_FIELD}):(?:\\d{1,5}|\\*):${PGPASS_FIELD}:${PGPASS_FIELD}:(${PGPASS_FIELD})(?![^\\s'"])`, 'dg');
const PGPASS_LINE = new RegExp(`^[ \\t]*(${PGPASS_FIELD}):(?:\\d{1,5}|\\*):${PGPASS_FIELD}:${PGPASS_FIELD}:(${PGPASS_FIELD})[ \\t]*\\r?$`, 'd');

/** A host is `*`, a name or an address: never only digits, as the hours of a time are. */
function pgpassHost(h: string): boolean {
  return h === '*' || /[A-Za-z.[]/.test(h);
}

function pgpassPassword(text: string, end: number, pw: string, open: boolean): boolean {
  return (open && end === text.length && mayBeArriving(pw)) || acceptSecretValue(pw, PASSWORD);
}

function pgpassEntries(text: string, s: number, e: number, out: RawSpan[], open: boolean): number {
  const line = text.slice(s, e);
  let n = 0;
  PGPASS_ENTRY.lastIndex = 0;
  for (let m = PGPASS_ENTRY.exec(line); m !== null; m = PGPASS_ENTRY.exec(line)) {
    n++;
    const [gs, ge] = (m.indices as RegExpIndicesArray)[2];
    const pw = m[2];
    if (pgpassHost(m[1]) && pw !== '*' && pgpassPassword(text, s + ge, pw, open)) out.push({ start: s + gs, end: s + ge, kind: 'password', priority: PRIORITY.context });
  }
  return n;
}

/** Bounds of the line holding `pos`, or null past `max` chars either way (no `.pgpass` line is that long). */
function lineBounds(text: string, pos: number, max: number): [number, number] | null {
  const limit = Math.max(0, pos - max);
  let s = pos;
  while (s > limit && text.charCodeAt(s - 1) !== 10) s--;
  if (s === limit && limit > 0) return null;
  const end = Math.min(text.length, pos + max);
  let e = pos;
  while (e < end && text.charCodeAt(e) !== 10) e++;
  if (e === end && end < text.length) return null;
  return [s, e];
}

const PGPASS_MAX_LINE = 512;

/** A line that is a whole `.pgpass` entry with the default port or a wildcard (`db:5432:app:app:pw`). */
export const pgpassLineHandler: Handler = (text, pos, state, out) => {
  // one look per line, however many `:*:` it holds
  if (pos < state.pgpassLineEnd) return;
  const b = lineBounds(text, pos, PGPASS_MAX_LINE);
  state.pgpassLineEnd = b ? b[1] : pos + PGPASS_MAX_LINE;
  if (!b) return;
  const line = text.slice(b[0], b[1]);
  const m = PGPASS_LINE.exec(line);
  if (!m) return;
  const [gs, ge] = (m.indices as RegExpIndicesArray)[2];
  if (pgpassHost(m[1]) && m[2] !== '*' && pgpassPassword(text, b[0] + ge, m[2], state.open)) out.push({ start: b[0] + gs, end: b[0] + ge, kind: 'password', priority: PRIORITY.context });
};

const PGPASS_FOLLOWING_LINES = 64;

/** Where a `.pgpass` file is named (`cat ~/.pgpass`, `echo '…' >> ~/.pgpass`): entries on that line and the lines below, any port. */
export const pgpassFileHandler: Handler = (text, pos, state, out) => {
  // the file, not `PGPASSWORD` or `PGPASSFILE`
  if (pos < state.pgpassEnd || isWordChar(text.charCodeAt(pos + 6)) || text.charCodeAt(pos + 6) === 61) return;
  const b = lineBounds(text, pos, 1024);
  if (!b) {
    state.pgpassEnd = pos + 1024;
    return;
  }
  pgpassEntries(text, b[0], b[1], out, state.open);
  let s = b[1] + 1;
  for (let n = 0; n < PGPASS_FOLLOWING_LINES && s < text.length; n++) {
    let e = text.indexOf('\n', s);
    if (e < 0) e = text.length;
    if (e - s > 4096) break;
    const trimmed = text.slice(s, e).trim();
    if (!trimmed.startsWith('#') && pgpassEntries(text, s, e, out, state.open) === 0) break;
    s = e + 1;
  }
  state.pgpassEnd = s;
};

function isDsnChar(c: number): boolean {
  return c > 32 && c !== 34 && c !== 39 && c !== 96 && c !== 61 && c !== 44 && c < 127;
}

/** Go's MySQL driver DSN: `user:password@tcp(host:3306)/db`, `user:password@unix(/path)/db`. */
export const goDsnHandler: Handler = (text, pos, _state, out) => {
  let s = pos;
  while (s > 0 && pos - s < 160 && isDsnChar(text.charCodeAt(s - 1))) s--;
  const colon = text.indexOf(':', s);
  if (colon < 0 || colon >= pos - 1 || text.startsWith('//', colon + 1)) return;
  const value = text.slice(colon + 1, pos);
  if (acceptSecretValue(value, PASSWORD)) out.push({ start: colon + 1, end: pos, kind: 'password', priority: PRIORITY.context });
};

/** The value echoed into a command that reads a password on stdin: `echo pw | docker login --password-stdin`. */
const PIPED_SECRET = /(?:^|[\s;&(])(?:echo|printf)(?:[ \t]+-[neE]+)*[ \t]+(?:'([^'\n]{1,1024})'|"([^"\n]{1,1024})"|([^\s'"|;&]{1,1024}))[ \t]*\|[^|\n]{0,512}$/d;

export const stdinPasswordHandler: Handler = (text, pos, _state, out) => {
  // `passwd` is a password reader only as `passwd --stdin` or `chpasswd`, right after the pipe
  const passwd = text.startsWith('passwd', pos);
  const chpasswd = passwd && text.startsWith('chpasswd', pos - 2);
  if (passwd && !chpasswd && !text.startsWith('passwd --stdin', pos)) return;
  const command = chpasswd ? pos - 2 : pos;
  // the pipe first: most mentions of these commands have none before them on their line
  let bar = command;
  while (bar > 0 && command - bar < 512 && text.charCodeAt(bar - 1) !== 124 && text.charCodeAt(bar - 1) !== 10) bar--;
  if (bar === 0 || text.charCodeAt(bar - 1) !== 124) return;
  if (passwd && !/^[ \t]*(?:sudo[ \t]+)?$/.test(text.slice(bar, command))) return;
  // the command before that pipe: back to the previous pipe, `;`, `&` or line start
  let ls = bar - 1;
  for (; ls > 0 && bar - ls < 1100; ls--) {
    const c = text.charCodeAt(ls - 1);
    if (c === 10 || c === 124 || c === 59 || c === 38) break;
  }
  const m = PIPED_SECRET.exec(text.slice(ls, command));
  if (!m) return;
  const g = m[1] !== undefined ? 1 : m[2] !== undefined ? 2 : 3;
  const value = m[g];
  const [gs] = (m.indices as RegExpIndicesArray)[g];
  // `echo 'user:pw' | chpasswd`: the part after the colon
  const skip = chpasswd ? value.indexOf(':') + 1 : 0;
  const pw = value.slice(skip);
  if (!acceptSecretValue(pw, PASSWORD)) return;
  const vs = ls + gs + skip;
  out.push({ start: vs, end: vs + pw.length, kind: 'password', priority: PRIORITY.context });
};

const AWS_KEY_ID = /(?<![A-Za-z0-9_])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/y;
const AWS_SECRET = /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])/g;
/** how far from its key id an unlabelled secret access key is still taken as its partner */
const PAIR_WINDOW = 96;

/** A random 40-char base64 string: both letter cases and a digit, not a hex digest or a word run. */
function looksLikeAwsSecret(v: string): boolean {
  return /[a-z]/.test(v) && /[A-Z]/.test(v) && /[0-9]/.test(v) && entropy(v) >= 4;
}

/** The 40-char secret in `[from, to)` nearest to `nearEnd` (the end of the window when the id follows it). */
function pairIn(text: string, from: number, to: number, nearEnd: boolean): [number, number] | null {
  const s = Math.max(0, from);
  const e = Math.min(text.length, to);
  // one char of margin either side so the boundary lookarounds see the real neighbours
  const ws = Math.max(0, s - 1);
  const window = text.slice(ws, Math.min(text.length, e + 1));
  AWS_SECRET.lastIndex = s - ws;
  let found: [number, number] | null = null;
  for (let m = AWS_SECRET.exec(window); m !== null; m = AWS_SECRET.exec(window)) {
    const a = ws + m.index;
    if (a + 40 > e) break;
    if (looksLikeAwsSecret(m[0])) {
      found = [a, a + 40];
      if (!nearEnd) break;
    }
  }
  return found;
}

/** The partner of an AWS access key id: a secret access key written within a short window of it, with no keyword. */
export const awsPairHandler: Handler = (text, pos, _state, out) => {
  AWS_KEY_ID.lastIndex = pos;
  if (!AWS_KEY_ID.test(text)) return;
  const idEnd = pos + 20;
  const pair = pairIn(text, idEnd, idEnd + PAIR_WINDOW, false) ?? pairIn(text, pos - PAIR_WINDOW, pos, true);
  if (pair) out.push({ start: pair[0], end: pair[1], kind: 'aws-secret-access-key', priority: PRIORITY.token });
};

const AWS_KEY_ID_BEFORE = /(?<![A-Za-z0-9_])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/;

function isB64(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47;
}

/** Streaming: start of a run at the end of `text` (at or after `from`) that may be the first part of an AWS key id's partner, or -1. */
export function pairTail(text: string, from: number): number {
  let s = text.length;
  while (s > from && text.length - s < 40 && isB64(text.charCodeAt(s - 1))) s--;
  if (s === text.length || text.length - s >= 40 || (s > 0 && isB64(text.charCodeAt(s - 1)))) return -1;
  return AWS_KEY_ID_BEFORE.test(text.slice(Math.max(0, s - PAIR_WINDOW - 20), s)) ? s : -1;
}

/** Streaming, on idle flush: a partner cut short, random enough to be one, masked rather than leaked. */
export function pairPartial(text: string, from: number): RawSpan | null {
  const s = pairTail(text, from);
  if (s < 0 || text.length - s < 16) return null;
  const v = text.slice(s);
  if (!(/[a-z]/.test(v) && /[A-Z]/.test(v) && /[0-9]/.test(v))) return null;
  return { start: s, end: text.length, kind: 'aws-secret-access-key', priority: PRIORITY.token };
}

/**
 * Every anchor costs the scan of all clean text a little: one whose first letters begin common
 * words (`podman`: `pod`, `curl`: `current`, `redis`: `re…`) would slow it, so a client is found
 * by a rarer part of its name (`-cli`, `mqctl`, `dman`; the handler reads the whole word back) or, if
 * rarely used, not at all. `curl -u` is the `-u` rule's.
 */
const CLIENT_ANCHORS = [
  'mysql', 'mariadb', 'mongo', 'ldap', '-cli', 'sshpass', 'docker', 'dman', 'rdctl', 'skopeo', 'az login', 'cf login',
  'sqlcmd', 'bcp', 'cqlsh', 'smbclient', 'lftp', 'htpasswd', 'mqctl', 'sqlplus',
];

/** Anchors of the credential rules. */
export const CREDENTIAL_ANCHORS: Array<{ anchors: string[]; handlers: Handler[] }> = [
  { anchors: CLIENT_ANCHORS, handlers: [clientFlagHandler] },
  { anchors: ['jdbc:oracle:'], handlers: [oracleJdbcHandler] },
  { anchors: [':5432:', ':*:'], handlers: [pgpassLineHandler] },
  { anchors: ['pgpass'], handlers: [pgpassFileHandler] },
  { anchors: ['akia', 'asia'], handlers: [awsPairHandler] },
  { anchors: ['@tcp(', '@unix('], handlers: [goDsnHandler] },
  // `passwd`, not `chpasswd`: `ch` begins too many words
  { anchors: ['--password-stdin', 'passwd'], handlers: [stdinPasswordHandler] },
];
