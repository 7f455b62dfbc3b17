/** Validation of the `guardrails:` list and a connection's `guardrails: { default: … }`. */
import type { CommandKind, Protocol } from '../common/types';
import type { GuardrailAction, GuardrailMatch, GuardrailRule } from '../policy/rules';
import { STATEMENT_KINDS } from '../policy/sql-facts';
import type { SftpOp } from '../common/policy-types';
import type { Checker, ConfigPath } from './load';

const PROTOCOLS: Protocol[] = ['postgres', 'ssh', 'http', 'kubernetes', 'mcp'];
const KINDS: CommandKind[] = ['sql', 'shell', 'exec', 'http', 'llm', 'kubectl', 'sftp', 'forward', 'mcp'];
const CLASSIFICATIONS = ['read', 'write', 'ddl', 'transaction', 'other'];
const SFTP_OPS: SftpOp[] = ['write', 'remove', 'rename', 'mkdir', 'rmdir', 'setstat', 'read'];
const ACTIONS: GuardrailAction[] = ['allow', 'deny', 'hold'];
const MATCH_KEYS = ['connection', 'identity', 'protocol', 'kind', 'classification', 'text', 'sql', 'shell', 'http', 'llm', 'sftp', 'kubernetes', 'mcp'];

/** A value or a list of values, each one of `options` when given. */
function list(c: Checker, v: unknown, p: ConfigPath, what: string, options?: readonly string[]): string[] {
  const items = Array.isArray(v) ? (v as unknown[]) : [v];
  if (items.length === 0) c.fail(p, `expected ${what} or a list of them, got an empty list`);
  return items.map((x, i) => {
    const at = Array.isArray(v) ? [...p, i] : p;
    const s = c.string(typeof x === 'number' ? String(x) : x, at, what);
    if (options && !options.includes(s)) c.fail(at, `expected one of ${options.join(', ')}, got "${s}"`);
    return s;
  });
}

function checkMatch(c: Checker, v: unknown, p: ConfigPath): GuardrailMatch {
  const o = c.object(v, p, 'a mapping of conditions (connection, identity, protocol, kind, classification, text, sql, shell, http, llm, sftp)');
  c.keys(o, p, MATCH_KEYS);
  const m: GuardrailMatch = {};
  if (o.connection !== undefined) m.connection = c.string(o.connection, [...p, 'connection'], 'a connection name or glob');
  if (o.identity !== undefined) m.identity = c.string(o.identity, [...p, 'identity'], 'an identity name or glob');
  if (o.protocol !== undefined) m.protocol = list(c, o.protocol, [...p, 'protocol'], 'a protocol', PROTOCOLS) as Protocol[];
  if (o.kind !== undefined) m.kind = list(c, o.kind, [...p, 'kind'], 'a command kind', KINDS) as CommandKind[];
  if (o.classification !== undefined) m.classification = list(c, o.classification, [...p, 'classification'], 'a classification', CLASSIFICATIONS);
  if (o.text !== undefined) {
    const text = c.string(o.text, [...p, 'text'], 'a regular expression');
    try {
      new RegExp(text, 'i');
    } catch (err) {
      c.fail([...p, 'text'], `expected a regular expression (${(err as Error).message})`);
    }
    m.text = text;
  }
  if (o.sql !== undefined) {
    const s = c.object(o.sql, [...p, 'sql']);
    c.keys(s, [...p, 'sql'], ['statement', 'where', 'tables']);
    m.sql = {};
    if (s.statement !== undefined) m.sql.statement = list(c, s.statement, [...p, 'sql', 'statement'], 'a statement kind', STATEMENT_KINDS).map((x) => x.toLowerCase());
    if (s.where !== undefined) m.sql.where = c.oneOf(s.where, [...p, 'sql', 'where'], ['absent', 'present'] as const);
    if (s.tables !== undefined) m.sql.tables = list(c, s.tables, [...p, 'sql', 'tables'], 'a table name or glob');
  }
  if (o.shell !== undefined) {
    const s = c.object(o.shell, [...p, 'shell']);
    c.keys(s, [...p, 'shell'], ['program', 'flags', 'args']);
    m.shell = {};
    if (s.program !== undefined) m.shell.program = list(c, s.program, [...p, 'shell', 'program'], 'a program name or glob');
    if (s.flags !== undefined) m.shell.flags = list(c, s.flags, [...p, 'shell', 'flags'], 'a flag (r, f, force…)').map((f) => f.replace(/^-+/, ''));
    if (s.args !== undefined) m.shell.args = list(c, s.args, [...p, 'shell', 'args'], 'an argument glob');
  }
  if (o.http !== undefined) {
    const h = c.object(o.http, [...p, 'http']);
    c.keys(h, [...p, 'http'], ['method', 'path']);
    m.http = {};
    if (h.method !== undefined) m.http.method = list(c, h.method, [...p, 'http', 'method'], 'an HTTP method').map((x) => x.toUpperCase());
    if (h.path !== undefined) m.http.path = c.string(h.path, [...p, 'http', 'path'], 'a path glob');
  }
  if (o.llm !== undefined) {
    const l = c.object(o.llm, [...p, 'llm']);
    c.keys(l, [...p, 'llm'], ['tool']);
    m.llm = { tool: list(c, l.tool, [...p, 'llm', 'tool'], 'a tool name or glob') };
  }
  if (o.sftp !== undefined) {
    const x = c.object(o.sftp, [...p, 'sftp']);
    c.keys(x, [...p, 'sftp'], ['op', 'path']);
    m.sftp = {};
    if (x.op !== undefined) m.sftp.op = list(c, x.op, [...p, 'sftp', 'op'], 'an SFTP operation', SFTP_OPS) as SftpOp[];
    if (x.path !== undefined) m.sftp.path = list(c, x.path, [...p, 'sftp', 'path'], 'an absolute path glob');
  }
  if (o.kubernetes !== undefined) {
    const k = c.object(o.kubernetes, [...p, 'kubernetes']);
    c.keys(k, [...p, 'kubernetes'], ['verb', 'resource', 'namespace', 'name']);
    m.kubernetes = {};
    for (const key of ['verb', 'resource', 'namespace', 'name'] as const) if (k[key] !== undefined) m.kubernetes[key] = list(c, k[key], [...p, 'kubernetes', key], `a ${key}`);
  }
  if (o.mcp !== undefined) {
    const x = c.object(o.mcp, [...p, 'mcp']);
    c.keys(x, [...p, 'mcp'], ['server', 'tool', 'arguments', 'changed']);
    m.mcp = {};
    if (x.server !== undefined) m.mcp.server = list(c, x.server, [...p, 'mcp', 'server'], 'a server name or glob');
    if (x.tool !== undefined) m.mcp.tool = list(c, x.tool, [...p, 'mcp', 'tool'], 'a tool name or glob');
    if (x.arguments !== undefined) {
      const a = c.object(x.arguments, [...p, 'mcp', 'arguments'], 'a mapping of argument paths to globs');
      m.mcp.arguments = {};
      for (const [k, v] of Object.entries(a)) m.mcp.arguments[k] = list(c, v, [...p, 'mcp', 'arguments', k], 'a glob over the argument');
    }
    if (x.changed !== undefined) m.mcp.changed = c.bool(x.changed, [...p, 'mcp', 'changed']);
    if (Object.keys(m.mcp).length === 0) c.fail([...p, 'mcp'], 'expected server, tool, arguments or changed');
  }
  if (Object.keys(m).length === 0) c.fail(p, 'expected at least one condition');
  return m;
}

/** Parses `5m`, `300s`, `1h` or a number of seconds. */
function duration(c: Checker, v: unknown, p: ConfigPath): number {
  if (typeof v === 'number' && v > 0) return v;
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/.exec(v.trim()) : null;
  if (!m || Number(m[1]) <= 0) c.fail(p, `expected a duration such as 30s, 5m or 1h${typeof v === 'string' ? `, got "${v}"` : ''}`);
  return Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
}

export function checkGuardrails(c: Checker, v: unknown): GuardrailRule[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) c.fail(['guardrails'], 'expected a list of rules (name, match, action)');
  const seen = new Set<string>();
  return (v as unknown[]).map((r, i) => {
    const p: ConfigPath = ['guardrails', i];
    const o = c.object(r, p, 'a rule (name, match, action)');
    c.keys(o, p, ['name', 'match', 'action', 'reason', 'timeout']);
    const name = c.string(o.name, [...p, 'name'], 'a rule name');
    if (seen.has(name)) c.fail([...p, 'name'], `duplicate rule name "${name}"`);
    seen.add(name);
    const rule: GuardrailRule = { name, match: checkMatch(c, o.match, [...p, 'match']), action: c.oneOf(o.action, [...p, 'action'], ACTIONS) };
    if (o.reason !== undefined) rule.reason = c.string(o.reason, [...p, 'reason'], 'a reason shown to the agent');
    if (o.timeout !== undefined) {
      if (rule.action !== 'hold') c.fail([...p, 'timeout'], 'timeout applies to action: hold only');
      rule.timeoutSeconds = duration(c, o.timeout, [...p, 'timeout']);
    }
    return rule;
  });
}

export function checkConnectionGuardrails(c: Checker, v: unknown, p: ConfigPath): { default: GuardrailAction } {
  const o = c.object(v, p, '{ default: allow | deny | hold }');
  c.keys(o, p, ['default']);
  return { default: c.oneOf(o.default, [...p, 'default'], ACTIONS) };
}
