/**
 * What guardrails see of a shell line: every simple command it would run, from a real shell
 * parser (mvdan/sh). Pipelines, `;`/`&&`/`||` chains, subshells, `$(…)`/backticks, function
 * bodies and here-documents fed to a shell are all walked; wrappers (`sudo`, `env`, `nice`,
 * `xargs`, `find -exec`, `bash -c '…'`, `eval`, …) are unwrapped to the program they run, and a
 * program given by path is known by its base name. Quoting and backslashes are resolved as the
 * shell would, so `'r'm`, `r\m` and `"rm"` are all `rm`.
 */
import { syntax, type ShNode } from 'mvdan-sh';

export interface ShellCommandFacts {
  /** base name of the program; null when the shell computes it at run time ($VAR, $(…)) */
  program: string | null;
  /** single-letter flags as letters, long flags without dashes (`-rf` → r, f; `--force=x` → force) */
  flags: string[];
  /** the other arguments, literal where the shell's quoting allows (dynamic parts kept as written) */
  args: string[];
}

export interface ShellFacts {
  commands: ShellCommandFacts[];
  /** the parser rejected the text; the commands come from a plain tokenizer */
  unparsed: boolean;
  /** files the line's redirections write (`>`, `>>`, `&>`, `>|`, `<>`), literal paths only */
  redirectWrites: string[];
}

const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'ash', 'busybox']);

/**
 * Wrappers that run their operand as a command, with the options that take a value (so the
 * value is not mistaken for the program). An option not listed takes no value.
 */
const WRAPPERS: Record<string, Set<string>> = {
  sudo: new Set(['-u', '-g', '-C', '-h', '-p', '-r', '-t', '-U', '-D', '-R', '-T', '--user', '--group', '--host', '--prompt', '--role', '--type', '--other-user', '--chdir', '--chroot', '--command-timeout', '--close-from']),
  doas: new Set(['-u', '-C']),
  env: new Set(['-u', '-C', '-S', '--unset', '--chdir', '--split-string']),
  nice: new Set(['-n', '--adjustment']),
  ionice: new Set(['-c', '-n', '-p', '-P', '-u', '--class', '--classdata']),
  nohup: new Set(),
  time: new Set(['-f', '-o', '--format', '--output']),
  timeout: new Set(['-k', '-s', '--kill-after', '--signal']),
  stdbuf: new Set(['-i', '-o', '-e', '--input', '--output', '--error']),
  command: new Set(),
  builtin: new Set(),
  exec: new Set(['-a']),
  xargs: new Set(['-a', '-d', '-E', '-e', '-I', '-i', '-L', '-l', '-n', '-P', '-s', '--arg-file', '--delimiter', '--eof', '--replace', '--max-lines', '--max-args', '--max-procs', '--max-chars', '--process-slot-var']),
  setsid: new Set(),
  chrt: new Set(),
  taskset: new Set(),
  unbuffer: new Set(),
  strace: new Set(['-e', '-o', '-p', '-s', '-u']),
  watch: new Set(['-n', '-d', '--interval']),
  flock: new Set(['-w', '-E', '--timeout', '--conflict-exit-code']),
  su: new Set(['-s', '-g', '-G', '--shell', '--group']),
  runuser: new Set(['-u', '-g', '-G', '--user', '--group']),
};

/** Wrappers whose first operand is not the command (a duration, a lock file, a priority). */
const LEADING_OPERAND = new Set(['timeout', 'flock', 'chrt', 'taskset']);

interface Word {
  /** the value the shell would pass; null when it depends on run time */
  value: string | null;
  /** the value with dynamic parts kept as written, for globs over args */
  text: string;
}

function unescapeBare(s: string): string {
  return s.replace(/\\\n/g, '').replace(/\\(.)/g, '$1');
}

function unescapeDouble(s: string): string {
  return s.replace(/\\\n/g, '').replace(/\\([$`"\\])/g, '$1');
}

function wordOf(w: ShNode): Word {
  let value: string | null = '';
  let text = '';
  const add = (part: ShNode, inDouble: boolean): void => {
    const t = syntax.NodeType(part);
    if (t === 'Lit') {
      const v = inDouble ? unescapeDouble(String(part.Value)) : unescapeBare(String(part.Value));
      if (value !== null) value += v;
      text += v;
    } else if (t === 'SglQuoted') {
      const v = String(part.Value);
      if (value !== null) value += v;
      text += v;
    } else if (t === 'DblQuoted') {
      for (const p of (part.Parts as ShNode[]) ?? []) add(p, true);
    } else {
      value = null;
      text += t === 'ParamExp' ? '$' + String(((part.Param as ShNode | null)?.Value as string | undefined) ?? '') : '$(…)';
    }
  };
  for (const p of (w.Parts as ShNode[]) ?? []) add(p, false);
  return { value, text };
}

function base(program: string): string {
  const i = program.lastIndexOf('/');
  return i >= 0 ? program.slice(i + 1) : program;
}

function splitFlags(words: Word[]): { flags: string[]; args: string[] } {
  const flags: string[] = [];
  const args: string[] = [];
  let ended = false;
  for (const w of words) {
    const v = w.value ?? w.text;
    if (!ended && v === '--') {
      ended = true;
      continue;
    }
    if (!ended && /^--[A-Za-z0-9]/.test(v)) flags.push(v.slice(2).split('=')[0]);
    else if (!ended && /^-[A-Za-z0-9]/.test(v)) for (const ch of v.slice(1)) flags.push(ch);
    else args.push(v);
  }
  return { flags, args };
}

interface Collector {
  out: ShellCommandFacts[];
  redirectWrites: string[];
  depth: number;
  unparsed: boolean;
}

/** Skips a wrapper's own options; returns the index of the command it runs. */
function skipWrapper(name: string, words: Word[], from: number): number {
  const withValue = WRAPPERS[name];
  let i = from;
  while (i < words.length) {
    const v = words[i].value ?? '';
    if (name === 'env' && /^[A-Za-z_][A-Za-z0-9_]*=/.test(v)) {
      i++;
      continue;
    }
    if (v === '--') return i + 1;
    if (!v.startsWith('-') || v === '-') break;
    const opt = v.includes('=') ? v.slice(0, v.indexOf('=')) : v;
    i += withValue.has(opt) && !v.includes('=') && !(opt.length > 2 && !opt.startsWith('--') && withValue.has(opt.slice(0, 2))) ? 2 : 1;
  }
  if (LEADING_OPERAND.has(name)) i++;
  return i;
}

function addWords(words: Word[], c: Collector, stdinScript: string | null): void {
  if (words.length === 0) return;
  const first = words[0];
  if (first.value === null) {
    c.out.push({ program: null, ...splitFlags(words.slice(1)) });
    return;
  }
  const program = base(first.value);
  c.out.push({ program, ...splitFlags(words.slice(1)) });
  if (c.depth > 8) return;
  if (program in WRAPPERS) {
    // `env -S 'rm -rf x'` and `su -c '…'` carry a command line as a string
    const rest = words.slice(1);
    for (let i = 0; i < rest.length - 1; i++) {
      const o = rest[i].value;
      if ((program === 'env' && (o === '-S' || o === '--split-string')) || ((program === 'su' || program === 'runuser') && (o === '-c' || o === '--command'))) {
        nested(rest[i + 1], c);
      }
    }
    const at = skipWrapper(program, words, 1);
    addWords(words.slice(at), c, stdinScript);
    return;
  }
  if (SHELLS.has(program)) {
    let script = false;
    for (let i = 1; i < words.length; i++) {
      const v = words[i].value;
      if (v === null) {
        script = true;
        break;
      }
      if (v === '-c' || (/^-[a-z]*c[a-z]*$/.test(v) && v !== '-c' && !v.startsWith('--'))) {
        if (i + 1 < words.length) nested(words[i + 1], c);
        script = true;
        break;
      }
      if (!v.startsWith('-') && !v.startsWith('+')) {
        script = true; // a script file: its content is not on this line
        break;
      }
    }
    if (!script) {
      if (stdinScript !== null) parseInto(stdinScript, c);
      else c.out.push({ program: null, flags: [], args: [] }); // reads commands from stdin: unknown
    }
    return;
  }
  if (program === 'eval') {
    const line = words.slice(1).map((w) => w.value ?? w.text).join(' ');
    parseInto(line, c);
    return;
  }
  if (program === 'find') {
    for (let i = 1; i < words.length; i++) {
      const v = words[i].value;
      if (v === '-exec' || v === '-execdir' || v === '-ok' || v === '-okdir') {
        let j = i + 1;
        while (j < words.length && words[j].value !== ';' && words[j].value !== '+') j++;
        addWords(words.slice(i + 1, j), c, null);
        i = j;
      }
    }
  }
}

function nested(w: Word, c: Collector): void {
  if (w.value === null) c.out.push({ program: null, flags: [], args: [] });
  else parseInto(w.value, c);
}

// mvdan/sh's operator numbers (syntax/tokens.go): `<<<` here-string, `<<`/`<<-` here-documents, `|`, `|&`
const OP_HERESTRING = 63;
const OP_PIPE = 12;
const OP_PIPE_ALL = 13;
// `>`, `>>`, `<>`, `>|`, `&>`, `&>>`: redirections that open their word for writing
const OP_WRITES = new Set([54, 55, 57, 60, 64, 65]);

/** The last simple command of a statement (`a | b` → b). */
function lastCall(stmt: ShNode): ShNode | null {
  let cmd = stmt.Cmd as ShNode | null;
  while (cmd && syntax.NodeType(cmd) === 'BinaryCmd') cmd = ((cmd.Y as ShNode).Cmd as ShNode | null) ?? null;
  return cmd && syntax.NodeType(cmd) === 'CallExpr' ? cmd : null;
}

/**
 * What a statement reads on stdin, when that is a script written on the same line: a here-doc,
 * a here-string, or `echo …`/`printf …` piped into it. Null when it cannot be known.
 */
/**
 * What a statement reads on stdin, when that is a script written on the same line: a here-doc,
 * a here-string, or `echo …`/`printf …` piped into it (`pipedFrom` is the statement before the
 * pipe). Null when it cannot be known.
 */
function stdinScriptOf(stmt: ShNode, pipedFrom: ShNode | null): string | null {
  for (const r of (stmt.Redirs as ShNode[] | undefined) ?? []) {
    const hdoc = r.Hdoc as ShNode | null;
    if (hdoc) return wordOf(hdoc).text;
    if (r.Op === OP_HERESTRING && r.Word) return wordOf(r.Word as ShNode).value;
  }
  const call = pipedFrom ? lastCall(pipedFrom) : null;
  if (!call) return null;
  const words = ((call.Args as ShNode[]) ?? []).map(wordOf);
  const program = words[0]?.value;
  if (program !== 'echo' && program !== 'printf') return null;
  const rest = words.slice(1).filter((w) => !(program === 'echo' && /^-[neE]+$/.test(w.value ?? '')));
  if (rest.some((w) => w.value === null)) return null;
  return rest.map((w) => w.value).join(' ').replace(/\\n/g, '\n');
}

/*
 * The tree is walked by hand over the node types a command line holds (mvdan/sh's own Walk is
 * five times slower through the JS transpilation); any other node type falls back to Walk.
 */
function walkStmts(stmts: unknown, c: Collector): void {
  for (const s of (stmts as ShNode[] | null) ?? []) walkStmt(s, c, null);
}

function walkWord(w: ShNode | null, c: Collector): void {
  if (!w) return;
  for (const part of (w.Parts as ShNode[]) ?? []) {
    const t = syntax.NodeType(part);
    if (t === 'Lit' || t === 'SglQuoted') continue;
    if (t === 'CmdSubst' || t === 'ProcSubst') walkStmts(part.Stmts, c);
    else if (t === 'DblQuoted') walkWord(part, c);
    else fallback(part, c);
  }
}

function walkStmt(stmt: ShNode, c: Collector, pipedFrom: ShNode | null): void {
  for (const r of (stmt.Redirs as ShNode[] | undefined) ?? []) {
    walkWord(r.Word as ShNode | null, c);
    walkWord(r.Hdoc as ShNode | null, c);
    if (OP_WRITES.has(r.Op as number) && r.Word) {
      const v = wordOf(r.Word as ShNode).value;
      if (v) c.redirectWrites.push(v);
    }
  }
  const cmd = stmt.Cmd as ShNode | null;
  if (!cmd) return;
  switch (syntax.NodeType(cmd)) {
    case 'CallExpr': {
      for (const a of (cmd.Assigns as ShNode[]) ?? []) {
        walkWord(a.Value as ShNode | null, c);
        if (a.Array) fallback(a.Array as ShNode, c);
      }
      const args = (cmd.Args as ShNode[]) ?? [];
      for (const w of args) walkWord(w, c);
      addWords(args.map(wordOf), c, stdinScriptOf(stmt, pipedFrom));
      return;
    }
    case 'BinaryCmd': {
      const piped = cmd.Op === OP_PIPE || cmd.Op === OP_PIPE_ALL;
      walkStmt(cmd.X as ShNode, c, pipedFrom);
      walkStmt(cmd.Y as ShNode, c, piped ? (cmd.X as ShNode) : null);
      return;
    }
    case 'Subshell':
    case 'Block':
      walkStmts(cmd.Stmts, c);
      return;
    case 'IfClause': {
      for (let clause: ShNode | null = cmd; clause; clause = clause.Else as ShNode | null) {
        walkStmts(clause.Cond, c);
        walkStmts(clause.Then, c);
      }
      return;
    }
    case 'WhileClause':
      walkStmts(cmd.Cond, c);
      walkStmts(cmd.Do, c);
      return;
    case 'ForClause': {
      const loop = cmd.Loop as ShNode | null;
      if (loop && syntax.NodeType(loop) === 'WordIter') for (const w of (loop.Items as ShNode[]) ?? []) walkWord(w, c);
      else if (loop) fallback(loop, c);
      walkStmts(cmd.Do, c);
      return;
    }
    case 'CaseClause':
      walkWord(cmd.Word as ShNode | null, c);
      for (const item of (cmd.Items as ShNode[]) ?? []) walkStmts(item.Stmts, c);
      return;
    case 'FuncDecl':
      walkStmt(cmd.Body as ShNode, c, null);
      return;
    case 'TimeClause':
    case 'CoprocClause':
      if (cmd.Stmt) walkStmt(cmd.Stmt as ShNode, c, pipedFrom);
      return;
    case 'DeclClause':
      for (const a of (cmd.Args as ShNode[]) ?? []) walkWord(a.Value as ShNode | null, c);
      return;
    default:
      fallback(cmd, c);
  }
}

/** Any other node: mvdan/sh's own Walk finds the commands inside it. */
function fallback(node: ShNode, c: Collector): void {
  syntax.Walk(node, (n) => {
    if (n && syntax.NodeType(n) === 'CallExpr') addWords(((n.Args as ShNode[]) ?? []).map(wordOf), c, null);
    return true;
  });
}

function parseInto(src: string, c: Collector): void {
  c.depth++;
  try {
    walkStmts(parser().Parse(src, 'line').Stmts, c);
  } catch {
    // a half-typed or odd line: fall back to plain words so `rm -rf x; for` is still seen
    c.unparsed = true;
    for (const segment of src.split(/[;&|()`\n]+|\$\(/)) {
      const words = segment.trim().split(/\s+/).filter((s) => s !== '').map((s) => ({ value: s.replace(/^['"]|['"]$/g, ''), text: s }));
      addWords(words, c, null);
    }
  } finally {
    c.depth--;
  }
}

let shared: ReturnType<typeof syntax.NewParser> | null = null;
function parser(): ReturnType<typeof syntax.NewParser> {
  if (!shared) shared = syntax.NewParser();
  return shared;
}

const MAX_CACHE = 2000;
const cache = new Map<string, ShellFacts>();

/** Every simple command a shell line runs, wrappers unwrapped. Cached per text. */
export function shellFacts(line: string): ShellFacts {
  const hit = cache.get(line);
  if (hit) return hit;
  const c: Collector = { out: [], redirectWrites: [], depth: 0, unparsed: false };
  parseInto(line, c);
  const facts = { commands: c.out, unparsed: c.unparsed, redirectWrites: c.redirectWrites };
  if (cache.size >= MAX_CACHE) cache.clear();
  cache.set(line, facts);
  return facts;
}
