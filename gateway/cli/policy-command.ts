/**
 * `flightlog policy test`: runs the guardrails of a config over recorded history and prints what
 * each rule would have denied or held, so a lead can try a rule on last week before turning it on.
 */
import * as fs from 'node:fs';
import { posix } from 'node:path';
import { UsageError } from '../core/errors';
import type { Protocol } from '../common/types';
import { guardrailsOf } from '../policy';
import { actionWord } from '../policy/decision';
import { loadSqlParser } from '../postgres/sql-info';
import { resolveDataDir } from '../core/paths';
import { openDb } from '../store/db';
import { iterateCommandsSince, type RecordedCommand } from '../store/queries';
import { findConfig, parse, type Io } from './main';
import { toolCallOfText } from '../mcp/session';

const USAGE = 'flightlog policy test [--config FILE] [--since 7d] [--json]';
const EXAMPLES = 5;

export interface PolicyTestRule {
  name: string;
  action: 'allow' | 'deny' | 'hold';
  /** recorded commands this rule decides (the first matching rule wins, as in the gateway) */
  matched: number;
  /** of those, commands that actually ran (recorded as ok or error): what the rule would have stopped */
  wouldStop: number;
  examples: Array<{ commandId: number; sessionId: string; startedAt: string; connection: string; identity: string | null; text: string; status: string }>;
}

export interface PolicyTestReport {
  config: string | null;
  rulesVersion: string;
  since: string;
  commands: number;
  rules: PolicyTestRule[];
}

/** `7d`, `12h`, `30m`, `2w` or an ISO date, as an ISO timestamp. */
export function sinceToIso(v: string, now = Date.now()): string {
  const m = /^(\d+)\s*([mhdw])$/.exec(v.trim());
  if (m) {
    const unit = { m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[m[2] as 'm' | 'h' | 'd' | 'w'];
    return new Date(now - Number(m[1]) * unit).toISOString();
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--since expects a duration such as 7d, 12h, 30m or a date, got "${v}" (usage: ${USAGE})`);
  return new Date(t).toISOString();
}

function httpParts(c: RecordedCommand): { method: string; path: string } | undefined {
  if (c.kind !== 'http') return undefined;
  const m = /^([A-Z]+) (\S*)/.exec(c.text);
  return m ? { method: m[1], path: m[2].split('?')[0] } : undefined;
}

/** Recorded operation names (the SFTP packet or extension) as the operations a rule names. */
const SFTP_OPS: Record<string, string> = {
  write: 'write', read: 'read', remove: 'remove', mkdir: 'mkdir', rmdir: 'rmdir', setstat: 'setstat', fsetstat: 'setstat',
  'lsetstat@openssh.com': 'setstat', rename: 'rename', 'posix-rename@openssh.com': 'rename', symlink: 'write', 'hardlink@openssh.com': 'write',
};

/** An SFTP command's operation and paths, from its recorded text (`write /p`, `rename /a → /b`). */
export function sftpParts(c: Pick<RecordedCommand, 'kind' | 'text'>): { op: string; path: string; target?: string } | undefined {
  if (c.kind !== 'sftp') return undefined;
  const space = c.text.indexOf(' ');
  const op = space > 0 ? SFTP_OPS[c.text.slice(0, space)] : undefined;
  if (!op) return undefined;
  const norm = (p: string): string => (p.startsWith('/') ? posix.normalize(p) : p);
  const [path, target] = c.text.slice(space + 1).split(' → ');
  return target === undefined ? { op, path: norm(path) } : { op, path: norm(path), target: norm(target) };
}

export async function runPolicyCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'test') throw new UsageError(`unknown policy command "${sub ?? ''}" (usage: ${USAGE})`);
  const { flags } = parse(rest, { config: { type: 'string', short: 'c' }, since: { type: 'string' }, json: { type: 'boolean' } }, 0, USAGE);
  const dataDir = resolveDataDir(flags['data-dir'] as string | undefined, io.env);
  const config = findConfig(flags.config as string | undefined, dataDir);
  const since = sinceToIso((flags.since as string | undefined) ?? '7d');
  await loadSqlParser();
  const set = guardrailsOf(config);
  const rules = new Map<string, PolicyTestRule>();
  for (const r of set.rules) rules.set(r.name, { name: r.name, action: r.action, matched: 0, wouldStop: 0, examples: [] });
  let commands = 0;
  const db = openDb(dataDir);
  try {
    for (const c of iterateCommandsSince(db, since)) {
      commands++;
      const d = set.decide({
        connection: c.connection,
        protocol: c.protocol as Protocol,
        identity: c.identity ?? '',
        kind: c.kind,
        text: c.text,
        classification: c.classification ?? undefined,
        http: httpParts(c),
        sftp: sftpParts(c),
        mcp: c.kind === 'mcp' ? toolCallOfText(c.connection, c.text) : undefined,
      });
      if (!d.rule) continue;
      let entry = rules.get(d.rule);
      if (!entry) rules.set(d.rule, (entry = { name: d.rule, action: actionWord(d), matched: 0, wouldStop: 0, examples: [] }));
      entry.matched++;
      if (d.action !== 'allow' && (c.status === 'ok' || c.status === 'error')) entry.wouldStop++;
      if (entry.examples.length < EXAMPLES) {
        entry.examples.push({ commandId: c.id, sessionId: c.sessionId, startedAt: c.startedAt, connection: c.connection, identity: c.identity, text: c.text, status: c.status });
      }
    }
  } finally {
    db.close();
  }
  const report: PolicyTestReport = { config: config.file, rulesVersion: set.version, since, commands, rules: [...rules.values()] };
  if (flags.json) {
    io.stdout.write(JSON.stringify(report, null, 2) + '\n');
    return 0;
  }
  const source = config.file && fs.existsSync(config.file) ? ` (${config.file})` : ' (no config file)';
  const out: string[] = [`${commands} commands since ${since}; rule set ${set.version.slice(0, 12)}${source}`];
  if (report.rules.length === 0) out.push('no guardrails in this config');
  for (const r of report.rules) {
    const verb = r.action === 'deny' ? 'would deny' : r.action === 'hold' ? 'would hold' : 'would allow';
    out.push('', `${r.name} (${r.action}): ${verb} ${r.matched} command${r.matched === 1 ? '' : 's'}${r.action !== 'allow' ? `, ${r.wouldStop} of which ran` : ''}`);
    for (const e of r.examples) out.push(`  ${e.startedAt}  ${e.sessionId.slice(0, 12)}  ${e.connection}  ${e.identity ?? '-'}  ${e.text.replace(/\s+/g, ' ').slice(0, 100)}`);
    if (r.matched > r.examples.length) out.push(`  … and ${r.matched - r.examples.length} more`);
  }
  io.stdout.write(out.join('\n') + '\n');
  return 0;
}
