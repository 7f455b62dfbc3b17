/**
 * Guardrail rules: the `guardrails:` list of flightlog.yaml, compiled once, matched against
 * parsed commands. First matching rule wins; a connection's `guardrails: { default: … }` applies
 * when none matches. Pure: no I/O, so `flightlog policy test` runs the same code over history.
 */
import { createHash } from 'node:crypto';
import type { PolicyDecision, PolicyInput } from '../common/types';
import type { GuardrailAction, GuardrailRule, GuardrailMatch, SftpOp } from '../common/policy-types';

export type { GuardrailAction, GuardrailRule, GuardrailMatch } from '../common/policy-types';
import { shellFacts, type ShellCommandFacts, type ShellFacts } from './shell-facts';
import { sqlFacts, type SqlFacts } from './sql-facts';

/** Long and short spellings of the same flag, per program, so `flags: [r, f]` also catches `--recursive --force`. */
const FLAG_ALIASES: Record<string, string[][]> = {
  '*': [['f', 'force'], ['r', 'R', 'recursive'], ['v', 'verbose'], ['i', 'interactive'], ['n', 'dry-run']],
  rm: [['r', 'R', 'recursive'], ['f', 'force'], ['d', 'dir']],
  cp: [['r', 'R', 'recursive'], ['f', 'force'], ['a', 'archive']],
  chmod: [['R', 'recursive']],
  chown: [['R', 'recursive']],
  chgrp: [['R', 'recursive']],
  git: [['f', 'force'], ['d', 'delete'], ['D']],
  kill: [['9', 'KILL', 's']],
  rsync: [['r', 'recursive'], ['a', 'archive']],
  shred: [['u', 'remove'], ['z', 'zero']],
};

function aliasesOf(program: string | null, flag: string): string[] {
  const table = FLAG_ALIASES[program ?? ''] ?? FLAG_ALIASES['*'];
  for (const group of table) if (group.includes(flag)) return group;
  return [flag];
}

/** A glob (`*`, `?`) as an anchored regular expression; case-sensitive unless told. */
export function globToRegExp(glob: string, ignoreCase = false): RegExp {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[.+^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, ignoreCase ? 'i' : '');
}

/** Parsed forms of one command, computed at most once per decision whatever the number of rules. */
class Facts {
  private sql: SqlFacts | null = null;
  private shell: ShellFacts | null = null;
  constructor(readonly input: PolicyInput) {}
  sqlFacts(): SqlFacts {
    return (this.sql ??= sqlFacts(this.input.text));
  }
  shellFacts(): ShellFacts {
    return (this.shell ??= shellFacts(this.input.text));
  }
}

type Check = (i: PolicyInput, f: Facts) => boolean;

interface Compiled {
  rule: GuardrailRule;
  checks: Check[];
}

function anyGlob(globs: string[] | undefined, ignoreCase = false): ((s: string) => boolean) | null {
  if (!globs || globs.length === 0) return null;
  const res = globs.map((g) => globToRegExp(g, ignoreCase));
  return (s) => res.some((r) => r.test(s));
}

function compileShell(m: NonNullable<GuardrailMatch['shell']>): (cmd: ShellCommandFacts) => boolean {
  const programs = anyGlob(m.program);
  const args = anyGlob(m.args);
  const flags = m.flags ?? [];
  return (cmd) => {
    // a program computed at run time ($VAR, $(…), a shell reading stdin) could be any program
    if (programs && cmd.program !== null && !programs(cmd.program)) return false;
    if (programs === null && cmd.program === null && flags.length === 0 && !args) return true;
    for (const f of flags) {
      const names = aliasesOf(cmd.program, f);
      if (!cmd.flags.some((x) => names.includes(x))) return false;
    }
    if (args && !cmd.args.some((a) => args(a))) return false;
    return true;
  };
}

/** `deployment`, `deployments`, `deploy*` and `deployments.apps` all name the same resource. */
function compileKubernetes(k: NonNullable<GuardrailMatch['kubernetes']>): Check {
  const verbs = k.verb?.map((v) => v.toLowerCase());
  const resources = k.resource?.map((r) => globToRegExp(r.toLowerCase()));
  const namespaces = anyGlob(k.namespace);
  const names = anyGlob(k.name);
  const singular = (r: string): string => (r.endsWith('ies') ? r.slice(0, -3) + 'y' : /(ss|x|ch|sh)es$/.test(r) ? r.slice(0, -2) : r.endsWith('s') ? r.slice(0, -1) : r);
  return (i) => {
    const kube = i.kubernetes;
    if (!kube) return false;
    // a rule on `delete` covers deleting a whole collection too
    if (verbs && !verbs.includes(kube.verb) && !(kube.verb === 'deletecollection' && verbs.includes('delete'))) return false;
    if (resources) {
      const r = kube.resource.toLowerCase();
      const spellings = [r, singular(r)];
      if (kube.group) spellings.push(`${r}.${kube.group}`, `${singular(r)}.${kube.group}`);
      if (!resources.some((re) => spellings.some((s) => re.test(s)))) return false;
    }
    if (namespaces && !namespaces(kube.namespace)) return false;
    if (names && !names(kube.name)) return false;
    return true;
  };
}

function compile(rule: GuardrailRule): Compiled {
  const m = rule.match;
  const checks: Check[] = [];
  const conn = anyGlob(m.connection ? [m.connection] : undefined);
  if (conn) checks.push((i) => conn(i.connection));
  const ident = anyGlob(m.identity ? [m.identity] : undefined);
  if (ident) checks.push((i) => ident(i.identity));
  if (m.protocol) checks.push((i) => m.protocol!.includes(i.protocol));
  if (m.kind) checks.push((i) => m.kind!.includes(i.kind));
  if (m.classification) checks.push((i) => i.classification !== undefined && m.classification!.includes(i.classification));
  if (m.text) {
    const re = new RegExp(m.text, 'i');
    checks.push((i) => re.test(i.text));
  }
  if (m.sql) {
    const { statement, where, tables } = m.sql;
    const tableGlob = anyGlob(tables, true);
    checks.push((i, f) => {
      if (i.kind !== 'sql') return false;
      const facts = f.sqlFacts();
      // text the parser rejects never reaches a server as a statement: nothing to match
      return facts.statements.some((s) => {
        if (statement && !statement.includes(s.statement)) return false;
        if (where === 'absent' && s.hasWhere !== false) return false;
        if (where === 'present' && s.hasWhere !== true) return false;
        if (tableGlob && !s.tables.some((t) => tableGlob(t))) return false;
        return true;
      });
    });
  }
  if (m.shell) {
    const one = compileShell(m.shell);
    checks.push((i, f) => (i.kind === 'exec' || i.kind === 'shell') && f.shellFacts().commands.some(one));
  }
  if (m.http) {
    const methods = m.http.method?.map((x) => x.toUpperCase());
    const pathGlob = anyGlob(m.http.path ? [m.http.path] : undefined);
    checks.push((i) => {
      if (i.protocol !== 'http' || !i.http) return false;
      if (methods && !methods.includes(i.http.method.toUpperCase())) return false;
      if (pathGlob && !pathGlob(i.http.path)) return false;
      return true;
    });
  }
  if (m.llm?.tool) {
    const tools = anyGlob(m.llm.tool);
    checks.push((i) => (i.tools ?? []).some((t) => tools!(t)));
  }
  if (m.sftp) {
    const ops = m.sftp.op;
    const pathGlob = anyGlob(m.sftp.path);
    checks.push((i) => {
      if (i.kind !== 'sftp' || !i.sftp) return false;
      if (ops && !ops.includes(i.sftp.op as SftpOp)) return false;
      if (pathGlob && !pathGlob(i.sftp.path) && !(i.sftp.target !== undefined && pathGlob(i.sftp.target))) return false;
      return true;
    });
  }
  if (m.kubernetes) checks.push(compileKubernetes(m.kubernetes));
  if (m.mcp) checks.push(compileMcp(m.mcp));
  return { rule, checks };
}

/** The value at a dotted path in a tool call's arguments (`a.b.0`), as text; undefined when absent. */
function argumentAt(args: unknown, dotted: string): string | undefined {
  let v: unknown = args;
  for (const part of dotted.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function compileMcp(m: NonNullable<GuardrailMatch['mcp']>): Check {
  const servers = anyGlob(m.server);
  const tools = anyGlob(m.tool);
  const args = Object.entries(m.arguments ?? {}).map(([p, globs]) => [p, anyGlob(globs, true)!] as const);
  return (i) => {
    if (!i.mcp) return false;
    if (servers && !i.mcp.server.some((s) => servers(s))) return false;
    if (tools && !tools(i.mcp.tool)) return false;
    if (m.changed !== undefined && i.mcp.changed !== m.changed) return false;
    for (const [p, glob] of args) {
      const v = argumentAt(i.mcp.arguments, p);
      if (v === undefined || !glob(v)) return false;
    }
    return true;
  };
}

/** The rule set's version: SHA-256 of its canonical JSON, recorded with every decision. */
export function rulesVersion(rules: GuardrailRule[]): string {
  return createHash('sha256').update(JSON.stringify(rules)).digest('hex');
}

export interface GuardrailSet {
  version: string;
  rules: GuardrailRule[];
  /** the first rule that matches, with its decision; `defaults` maps connection name to the connection's default action */
  decide(input: PolicyInput): PolicyDecision;
}

const ALLOW: PolicyDecision = Object.freeze({ action: 'allow' }) as PolicyDecision;

/** Compiles rules once; `defaults` maps a connection name to its `guardrails.default`. */
export function compileGuardrails(rules: GuardrailRule[], defaults: Record<string, GuardrailAction> = {}): GuardrailSet {
  const compiled = rules.map(compile);
  const version = rulesVersion(rules);
  return {
    version,
    rules,
    decide(input) {
      // a gateway with no rules pays nothing per command
      if (compiled.length === 0 && defaults[input.connection] === undefined) return ALLOW;
      const facts = new Facts(input);
      next: for (const c of compiled) {
        for (const check of c.checks) if (!check(input, facts)) continue next;
        const r = c.rule;
        return { action: r.action === 'deny' ? 'block' : r.action, rule: r.name, reason: r.reason, rulesVersion: version, timeoutSeconds: r.timeoutSeconds };
      }
      const d = defaults[input.connection];
      if (d && d !== 'allow') return { action: d === 'deny' ? 'block' : d, rule: 'default', reason: `connection ${input.connection} defaults to ${d}`, rulesVersion: version };
      return ALLOW;
    },
  };
}
