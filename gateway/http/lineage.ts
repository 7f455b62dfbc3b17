/**
 * Lineage helpers: which downstream commands a model's tool call may cause. The recorder
 * calls `extractCommandCandidates` when an llm command finishes and `matchesCommand` when a
 * downstream command starts in the same run. Pure: no Node imports.
 */
import type { Json } from '../common/types';
import type { LlmToolCall } from './llm-types';
import { canonicalJson } from '../mcp/canonical';

export type CandidateKind = 'shell' | 'sql' | 'kubectl' | 'http' | 'mcp';

export interface CommandCandidate {
  kind: CandidateKind;
  text: string;
}

/** Keys whose string value is a command line or statement, most specific first. */
const COMMAND_KEYS = new Set(['command', 'cmd', 'commands', 'sql', 'query', 'statement', 'statements', 'script', 'input', 'code', 'shell', 'bash']);
const SQL_KEYS = new Set(['sql', 'query', 'statement', 'statements']);
const SQL_START = /^\s*(select|insert|update|delete|create|drop|alter|truncate|with|grant|revoke|begin|commit|rollback|explain|copy|vacuum|analyze|merge|set|show|values|table|do|call|comment|reindex|cluster|lock|refresh|start\s+transaction)\b/i;
const MAX_DEPTH = 6;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The tool calls recorded in an llm command's result (`result.toolCalls`). */
export function toolCallsOf(result: Json | undefined): LlmToolCall[] {
  if (!isRecord(result) || !Array.isArray(result.toolCalls)) return [];
  const out: LlmToolCall[] = [];
  for (const c of result.toolCalls) {
    if (!isRecord(c) || typeof c.name !== 'string') continue;
    const args = typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments ?? {});
    out.push({ id: typeof c.id === 'string' ? c.id : '', name: c.name, arguments: args });
  }
  return out;
}

/** Pulls shell lines, SQL statements, kubectl lines and HTTP requests out of a tool call's arguments. */
export function extractCommandCandidates(toolCall: { name: string; arguments: string }): CommandCandidate[] {
  const out: CommandCandidate[] = [];
  const seen = new Set<string>();
  const add = (kind: CandidateKind, text: string): void => {
    const t = text.trim();
    if (t === '' || seen.has(`${kind}\0${t}`)) return;
    seen.add(`${kind}\0${t}`);
    out.push({ kind, text: t });
  };
  const toolIsSql = /sql|postgres|psql|query|database|\bdb\b/i.test(toolCall.name);

  const fromString = (text: string, key: string | null): void => {
    if (text.trim() === '') return;
    if ((key !== null && SQL_KEYS.has(key) && !/^\s*(psql|kubectl|curl)\b/.test(text)) || (toolIsSql && SQL_START.test(text)) || SQL_START.test(text) && !looksLikeShell(text)) {
      add('sql', text);
      return;
    }
    fromShellLine(text, add);
  };

  const walk = (v: unknown, key: string | null, depth: number): void => {
    if (depth > MAX_DEPTH) return;
    if (typeof v === 'string') {
      if (key !== null && COMMAND_KEYS.has(key)) fromString(v, key);
      return;
    }
    if (Array.isArray(v)) {
      // ["bash", "-lc", "…"] or ["kubectl", "get", "pods"]: an argv
      if (key !== null && COMMAND_KEYS.has(key) && v.length > 0 && v.every((x) => typeof x === 'string')) {
        const argv = v as string[];
        const dashC = argv.findIndex((a) => /^-\w*c$/.test(a));
        if (/(^|\/)(ba|z|da)?sh$/.test(argv[0]) && dashC > 0 && dashC + 1 < argv.length) fromString(argv[dashC + 1], key);
        else if (argv.length > 1 && argv.every((a) => !a.includes('\n'))) fromString(argv.map(shellQuote).join(' '), key);
        else for (const a of argv) fromString(a, key);
        return;
      }
      for (const x of v) walk(x, key, depth + 1);
      return;
    }
    if (isRecord(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, k.toLowerCase(), depth + 1);
    }
  };

  let parsed: unknown;
  try {
    parsed = JSON.parse(toolCall.arguments);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined) {
    // some tools take a bare string; treat it as the command itself
    fromString(toolCall.arguments, toolIsSql ? 'sql' : 'command');
  } else if (typeof parsed === 'string') {
    fromString(parsed, toolIsSql ? 'sql' : 'command');
  } else {
    walk(parsed, null, 0);
  }
  return out;
}

function looksLikeShell(text: string): boolean {
  return /^\s*(set\s+-\w|show\s+-)/i.test(text) || /\s(&&|\|\|)\s/.test(text);
}

function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** Adds the shell line itself and what it embeds: psql -c SQL, heredoc SQL, kubectl segments, ssh remote commands, curl requests. */
function fromShellLine(line: string, add: (kind: CandidateKind, text: string) => void): void {
  add('shell', line);
  // heredoc bodies fed to psql: psql … <<'SQL' … SQL
  const heredoc = /\bpsql\b[^\n]*<<-?\s*(['"]?)(\w+)\1[^\n]*\n([\s\S]*?)\n\s*\2\s*(\n|$)/g;
  for (const m of line.matchAll(heredoc)) for (const s of splitSql(m[3])) add('sql', s);
  for (const segment of splitShell(line)) {
    const argv = shellWords(segment);
    if (argv.length === 0) continue;
    const prog = argv[0].replace(/^.*\//, '');
    if (prog === 'psql') {
      for (let i = 1; i < argv.length; i++) {
        const a = argv[i];
        if ((a === '-c' || a === '--command') && i + 1 < argv.length) for (const s of splitSql(argv[++i])) add('sql', s);
        else if (a.startsWith('--command=')) for (const s of splitSql(a.slice(10))) add('sql', s);
      }
    } else if (prog === 'kubectl') {
      add('kubectl', argv.join(' '));
    } else if (prog === 'ssh') {
      const remote = sshRemoteCommand(argv);
      if (remote) fromShellLine(remote, add);
    } else if (prog === 'curl') {
      const req = curlRequest(argv);
      if (req) add('http', req);
    } else if (segment !== line) {
      add('shell', segment);
    }
    // `echo "…" | psql`: the echoed text is SQL
    const pipe = /\becho\s+(['"])([\s\S]*?)\1\s*\|\s*psql\b/.exec(segment);
    if (pipe) for (const s of splitSql(pipe[2])) add('sql', s);
  }
}

/** Splits a shell line on ;, &&, || and | outside quotes. */
function splitShell(line: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      cur += c;
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      cur += c;
    } else if (c === ';' || c === '\n' || c === '|' || (c === '&' && line[i + 1] === '&')) {
      if (line[i + 1] === c) i++;
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/** Words of one simple command, quotes removed (no expansion). */
function shellWords(s: string): string[] {
  const words: string[] = [];
  let cur = '';
  let has = false;
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      has = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur !== '') words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
    }
  }
  if (has || cur !== '') words.push(cur);
  // leading VAR=value assignments are environment, not the program
  while (words.length > 1 && /^[A-Za-z_]\w*=/.test(words[0])) words.shift();
  return words;
}

const SSH_OPTS_WITH_ARG = new Set(['-b', '-c', '-D', '-E', '-e', '-F', '-I', '-i', '-J', '-L', '-l', '-m', '-O', '-o', '-p', '-Q', '-R', '-S', '-W', '-w']);

function sshRemoteCommand(argv: string[]): string | null {
  let i = 1;
  while (i < argv.length && argv[i].startsWith('-')) {
    i += SSH_OPTS_WITH_ARG.has(argv[i]) ? 2 : 1;
  }
  // argv[i] is the destination; the rest is the remote command
  const rest = argv.slice(i + 1);
  return rest.length > 0 ? rest.join(' ') : null;
}

function curlRequest(argv: string[]): string | null {
  let method: string | null = null;
  let url: string | null = null;
  let hasData = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-X' || a === '--request') method = argv[++i] ?? null;
    else if (/^-X\w+$/.test(a)) method = a.slice(2);
    else if (/^(-d|--data(-\w+)?|-F|--form|--json)$/.test(a)) {
      hasData = true;
      i++;
    } else if (/^-(H|u|o|A|e|b|c|m|w|x|T|K|-header|-user|-output|-max-time|-connect-timeout|-cacert|-cert|-key)$/.test(a)) i++;
    else if (!a.startsWith('-') && url === null) url = a;
  }
  if (!url) return null;
  let path: string;
  try {
    const u = new URL(/^\w+:\/\//.test(url) ? url : `http://${url}`);
    path = u.pathname + u.search;
  } catch {
    return null;
  }
  return `${(method ?? (hasData ? 'POST' : 'GET')).toUpperCase()} ${path}`;
}

/** Statements of an SQL text, split on semicolons outside quotes and comments. */
export function splitSql(sql: string): string[] {
  const out: string[] = [];
  let cur = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      const end = sql.indexOf(c, i + 1);
      const stop = end < 0 ? sql.length : end + 1;
      cur += sql.slice(i, stop);
      i = stop;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
      cur += ' ';
    } else if (c === '$') {
      const tag = /^\$\w*\$/.exec(sql.slice(i));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        const stop = end < 0 ? sql.length : end + tag[0].length;
        cur += sql.slice(i, stop);
        i = stop;
      } else {
        cur += c;
        i++;
      }
    } else if (c === ';') {
      out.push(cur);
      cur = '';
      i++;
    } else {
      cur += c;
      i++;
    }
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

/** SQL compared without case, comment, whitespace or trailing-semicolon differences (quoted text kept as is). */
function normalizeSql(sql: string): string {
  return splitSql(sql)
    .map((s) => s.replace(/('(?:[^']|'')*')|\s+|([^'\s]+)/g, (_m, q: string | undefined, w: string | undefined) => (q ?? (w ? w.toLowerCase() : ' '))))
    .map((s) => s.replace(/\s*([(),=<>])\s*/g, '$1').trim())
    .join('; ');
}

function normalizeShell(s: string): string {
  return s.replace(/\s+/g, ' ').replace(/[\s;]+$/, '').trim();
}

const KUBECTL_VALUE_FLAGS = new Set(['-n', '--namespace', '-o', '--output', '-l', '--selector', '--context', '-c', '--container', '--kubeconfig']);

function kubectlWords(s: string): string[] {
  const words = shellWords(s.trim());
  if (words[0] !== undefined && /(^|\/)kubectl$/.test(words[0])) words.shift();
  return words;
}

/**
 * Whether a downstream command's text is the one a candidate asked for. Compare only like with
 * like: an sql candidate with sql commands, shell with shell/exec, kubectl with kubectl, http with http.
 */
export function matchesCommand(candidate: CommandCandidate, downstreamText: string): boolean {
  switch (candidate.kind) {
    case 'sql': {
      const down = normalizeSql(downstreamText);
      if (down === '') return false;
      if (normalizeSql(candidate.text) === down) return true;
      // a multi-statement script runs as several commands downstream, or the reverse
      const cand = splitSql(candidate.text).map(normalizeSql);
      const downParts = splitSql(downstreamText).map(normalizeSql);
      return cand.includes(down) || (downParts.length > 1 && downParts.every((d) => cand.includes(d)));
    }
    case 'shell': {
      const cand = normalizeShell(candidate.text);
      const down = normalizeShell(downstreamText);
      if (down === '') return false;
      if (cand === down) return true;
      // `bash -lc '<cmd>'` downstream, or the candidate wraps the downstream line
      const unq = (x: string): string => normalizeShell(shellWords(x).join(' '));
      if (unq(cand) === unq(down)) return true;
      return down.length >= 8 && (cand.includes(down) || down.includes(cand) && cand.length >= 8);
    }
    case 'kubectl': {
      const c = kubectlWords(candidate.text);
      const d = kubectlWords(downstreamText);
      if (c.length === 0 || d.length === 0) return false;
      if (c.join(' ') === d.join(' ')) return true;
      // compare verb, resource and name; flags are spelled in many equivalent ways
      const bare = (w: string[]): string[] => {
        const out: string[] = [];
        for (let i = 0; i < w.length; i++) {
          if (KUBECTL_VALUE_FLAGS.has(w[i])) i++;
          else if (!w[i].startsWith('-')) out.push(w[i]);
        }
        return out.slice(0, 3);
      };
      const cb = bare(c);
      const db = bare(d);
      return cb.length >= 2 && cb.every((x, i) => db[i] === x);
    }
    case 'mcp':
      return matchesMcpCall(candidate.text, downstreamText);
    case 'http': {
      const [cm, cp = ''] = candidate.text.trim().split(/\s+/, 2);
      const [dm, dp = ''] = downstreamText.trim().split(/\s+/, 2);
      if (cm.toUpperCase() !== dm.toUpperCase()) return false;
      if (cp === dp) return true;
      return !cp.includes('?') && dp.split('?')[0] === cp;
    }
  }
}

/** The tool call itself, as the MCP tools/call it may become: `name {canonical arguments}`. */
export function mcpCandidate(toolCall: { name: string; arguments: string }): CommandCandidate | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(toolCall.arguments);
  } catch {
    return null;
  }
  return isRecord(parsed) ? { kind: 'mcp', text: `${toolCall.name} ${canonicalJson(parsed)}` } : null;
}

/**
 * A model's tool call (`name {args}`, canonical) against an MCP command (`conn.tool {args}`):
 * equal arguments, and the model's name is the tool's, bare or prefixed the way agents namespace
 * MCP tools (`mcp__conn__tool`, `conn_tool`, `conn.tool`, `conn-tool`).
 */
function matchesMcpCall(candidate: string, downstream: string): boolean {
  const cs = candidate.indexOf(' ');
  const ds = downstream.indexOf(' ');
  if (cs <= 0 || ds <= 0) return false;
  let args: unknown;
  try {
    args = JSON.parse(downstream.slice(ds + 1));
  } catch {
    return false;
  }
  if (canonicalJson(args) !== candidate.slice(cs + 1)) return false;
  const name = candidate.slice(0, cs);
  const head = downstream.slice(0, ds);
  // the connection name may hold dots: try every split of `conn.tool`
  for (let i = head.indexOf('.'); i !== -1; i = head.indexOf('.', i + 1)) {
    const tool = head.slice(i + 1);
    if (tool && (name === tool || (name.length > tool.length + 1 && name.endsWith(tool) && /[_.\-]$/.test(name.slice(0, name.length - tool.length))))) return true;
  }
  return false;
}
