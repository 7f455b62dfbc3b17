import type { Db } from './db';
import { FlightlogError } from '../core/errors';
import { newId } from '../core/ids';
import { addRunToken, revokeRunTokens } from './identities';
import { agentEdits } from './agent-edits';
import { stripSystemReminders } from '../common/reminders';
import type { RunCommandStep, RunCounts, RunStep, RunTimeline } from '../common/api-types';

export type { RunCommandStep, RunCounts, RunFindingStep, RunStep, RunTimeline, RunToolCall } from '../common/api-types';

/** Starts a run: a row for the agent process and a token of its own that tags its sessions. */
export function createRun(db: Db, opts: { identity: string; argv: string[]; pid?: number }): { runId: string; token: string } {
  if (!Array.isArray(opts.argv) || opts.argv.length === 0 || !opts.argv.every((a) => typeof a === 'string')) {
    throw new FlightlogError('E_PARAM', 'argv must be a non-empty list of strings');
  }
  const runId = newId('run');
  let token = '';
  db.transaction(() => {
    token = addRunToken(db, opts.identity, runId);
    db.prepare('INSERT INTO runs (id, identity, argv, started_at, pid) VALUES (?, ?, ?, ?, ?)').run(runId, opts.identity, JSON.stringify(opts.argv), new Date().toISOString(), opts.pid ?? null);
  }).immediate();
  return { runId, token };
}

/** Ends a run with the agent's exit code and revokes its token. */
export function endRun(db: Db, runId: string, exitCode: number | null): void {
  const r = db.prepare('UPDATE runs SET ended_at = ?, exit_code = ? WHERE id = ? AND ended_at IS NULL').run(new Date().toISOString(), exitCode, runId);
  if (r.changes === 0) throw new FlightlogError('E_NOT_FOUND', `no running run "${runId}"`);
  revokeRunTokens(db, runId);
}

/* ---- reading runs: counts for the runs list, and one run's timeline across its sessions ---- */


// a model call is an HTTP POST, not a change to anything
const WRITE_SQL = `(c.kind != 'llm' AND (c.classification IN ('write', 'ddl') OR json_extract(c.detail, '$.files') IS NOT NULL))`;

export function runCounts(db: Db, runId: string): RunCounts {
  const c = db
    .prepare(
      `SELECT COUNT(*) AS commands, COALESCE(SUM(${WRITE_SQL}), 0) AS writes, COALESCE(SUM(c.status = 'blocked'), 0) AS blocked
         FROM commands c JOIN sessions s ON s.id = c.session_id WHERE s.run_id = ?`,
    )
    .get(runId) as { commands: number; writes: number; blocked: number };
  const f = db
    .prepare(
      `SELECT COUNT(*) AS findings, COALESCE(SUM(f.category = 'guardrail' AND json_extract(f.detail, '$.action') = 'hold'), 0) AS held
         FROM findings f JOIN sessions s ON s.id = f.session_id WHERE s.run_id = ?`,
    )
    .get(runId) as { findings: number; held: number };
  return { commands: c.commands, writes: c.writes, findings: f.findings, blocked: c.blocked, held: f.held };
}

export { stripSystemReminders } from '../common/reminders';

function obj(v: unknown): Record<string, unknown> | null {
  if (typeof v !== 'string') return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  try {
    return obj(JSON.parse(v) as unknown);
  } catch {
    return null;
  }
}

function summaryOf(kind: string, result: Record<string, unknown> | null): string | null {
  if (!result) return null;
  if (typeof result.tag === 'string') return typeof result.rowCount === 'number' ? `${result.tag} (${result.rowCount} rows)` : result.tag;
  if (typeof result.exitCode === 'number') return `exit ${result.exitCode}`;
  if (typeof result.status === 'number') return `HTTP ${result.status}`;
  if (kind === 'sftp' && typeof result.bytesWritten === 'number') return `${result.bytesWritten} bytes written`;
  return null;
}

/**
 * A command's shape for retry pairs: its kind and the leading words of its text with literals
 * and spacing normalised, so `ALTER TABLE orders ADD …` failing and `ALTER TABLE orders ADD … DEFAULT now()`
 * succeeding match, and an UPDATE of the same table does not.
 */
export function commandShape(kind: string, text: string): string {
  const words = text
    .replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, ' ')
    .replace(/'(?:[^']|'')*'|"(?:[^"\\]|\\.)*"/g, '?')
    .replace(/\b\d+(?:\.\d+)?\b/g, '?')
    .toLowerCase()
    .split(/[\s(),;]+/)
    .filter(Boolean);
  return `${kind} ${words.slice(0, 4).join(' ')}`;
}

/** Pairs each failed command with the next success of its shape later in the run, across sessions. */
function markRetries(steps: RunCommandStep[]): void {
  const pending = new Map<string, RunCommandStep[]>();
  for (const s of steps) {
    const shape = commandShape(s.kind, s.text);
    if (s.status === 'error') {
      pending.set(shape, [...(pending.get(shape) ?? []), s]);
    } else if (s.status === 'ok') {
      const failed = pending.get(shape);
      if (!failed?.length) continue;
      s.retryOf = failed[failed.length - 1].commandId;
      for (const f of failed) f.retriedBy = s.commandId;
      pending.delete(shape);
    }
  }
}

/** Finds a run by id or a unique prefix of it. */
export function resolveRunId(db: Db, idOrPrefix: string): string {
  const exact = db.prepare('SELECT id FROM runs WHERE id = ?').get(idOrPrefix) as { id: string } | undefined;
  if (exact) return exact.id;
  const escaped = idOrPrefix.replace(/[\\%_]/g, (ch) => '\\' + ch);
  const rows = db.prepare("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2").all(escaped + '%') as { id: string }[];
  if (rows.length === 1) return rows[0].id;
  if (rows.length > 1) throw new FlightlogError('E_AMBIGUOUS', `run id prefix "${idOrPrefix}" matches more than one run`);
  // sessions may carry a run id (x-flightlog-run) that `flightlog run` did not start
  const tagged = db.prepare('SELECT run_id FROM sessions WHERE run_id = ? LIMIT 1').get(idOrPrefix) as { run_id: string } | undefined;
  if (tagged) return tagged.run_id;
  throw new FlightlogError('E_NOT_FOUND', `no run "${idOrPrefix}"`);
}

/** One run as a single timeline: every session's commands and findings, interleaved in time, with lineage. */
export function runTimeline(db: Db, idOrPrefix: string): RunTimeline {
  const id = resolveRunId(db, idOrPrefix);
  const run = db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as { identity: string | null; argv: string; started_at: string; ended_at: string | null; exit_code: number | null } | undefined;
  const sessions = db
    .prepare('SELECT id, connection, protocol, identity, started_at, ended_at, status, command_count FROM sessions WHERE run_id = ? ORDER BY started_us, id')
    .all(id) as Array<{ id: string; connection: string; protocol: string; identity: string | null; started_at: string; ended_at: string | null; status: string; command_count: number }>;
  const byId = new Map(sessions.map((s) => [s.id, s]));
  const commands = db
    .prepare(`SELECT c.*, ${WRITE_SQL} AS is_write FROM commands c JOIN sessions s ON s.id = c.session_id WHERE s.run_id = ? ORDER BY c.started_at, c.id`)
    .all(id) as Array<{ id: number; session_id: string; idx: number; kind: string; text: string; classification: string | null; targets: string; status: string; started_at: string; started_us: number; ended_us: number | null; result: string | null; error: string | null; caused_by: number | null; is_write: number }>;
  const caused = new Map<number, number[]>();
  for (const r of db.prepare('SELECT c.caused_by AS parent, c.id AS child FROM commands c WHERE c.caused_by IN (SELECT c2.id FROM commands c2 JOIN sessions s ON s.id = c2.session_id WHERE s.run_id = ?) ORDER BY c.id').all(id) as Array<{ parent: number; child: number }>) {
    caused.set(r.parent, [...(caused.get(r.parent) ?? []), r.child]);
  }
  const indexOf = new Map(commands.map((c) => [c.id, c.idx]));
  const steps: RunStep[] = commands.map((c): RunCommandStep => {
    const s = byId.get(c.session_id);
    const result = obj(c.result);
    const llm = c.kind === 'llm';
    const calls = llm && Array.isArray(result?.toolCalls) ? (result.toolCalls as unknown[]) : [];
    return {
      type: 'command',
      at: c.started_at,
      commandId: c.id,
      sessionId: c.session_id,
      index: c.idx,
      connection: s?.connection ?? '',
      protocol: s?.protocol ?? '',
      kind: c.kind,
      text: llm ? stripSystemReminders(c.text) : c.text,
      classification: c.classification,
      write: c.is_write === 1,
      status: c.status,
      error: c.error,
      durationMs: c.ended_us === null ? null : (c.ended_us - c.started_us) / 1000,
      targets: JSON.parse(c.targets) as string[],
      summary: summaryOf(c.kind, result),
      reply: llm && typeof result?.assistantText === 'string' ? stripSystemReminders(result.assistantText) : null,
      toolCalls: calls.map((t) => obj(t)).filter((t): t is Record<string, unknown> => t !== null).map((t) => ({ name: String(t.name ?? ''), arguments: typeof t.arguments === 'string' ? t.arguments : JSON.stringify(t.arguments ?? null) })),
      causedBy: c.caused_by,
      caused: caused.get(c.id) ?? [],
      startUs: c.started_us,
      ...(llm ? { edits: agentEdits(calls) } : {}),
    };
  });
  markRetries(steps as RunCommandStep[]);
  const findings = db
    .prepare('SELECT f.* FROM findings f JOIN sessions s ON s.id = f.session_id WHERE s.run_id = ? ORDER BY f.id')
    .all(id) as Array<{ id: number; session_id: string | null; command_id: number | null; category: string; kind: string; direction: string; detail: string | null; created_at: string }>;
  for (const f of findings) {
    const d = obj(f.detail);
    steps.push({
      type: 'finding',
      at: f.created_at,
      findingId: f.id,
      sessionId: f.session_id,
      commandId: f.command_id,
      commandIndex: f.command_id === null ? null : (indexOf.get(f.command_id) ?? null),
      category: f.category,
      kind: f.kind,
      direction: f.direction,
      action: typeof d?.action === 'string' ? d.action : null,
      outcome: typeof d?.outcome === 'string' ? d.outcome : null,
    });
  }
  // a finding sits right after its command; the rest by time
  const order = new Map<RunStep, number>();
  const commandAt = new Map(commands.map((c) => [c.id, c.started_at]));
  steps.forEach((s, i) => order.set(s, i));
  const key = (s: RunStep): [string, number, number] =>
    s.type === 'command' ? [s.at, s.commandId, 0] : s.commandId !== null && commandAt.has(s.commandId) ? [commandAt.get(s.commandId) as string, s.commandId, 1] : [s.at, Number.MAX_SAFE_INTEGER, 1];
  steps.sort((a, b) => {
    const [ta, ia, ka] = key(a);
    const [tb, ib, kb] = key(b);
    return ta.localeCompare(tb) || ia - ib || ka - kb || (order.get(a) ?? 0) - (order.get(b) ?? 0);
  });
  return {
    id,
    identity: run?.identity ?? sessions[0]?.identity ?? null,
    argv: run ? (JSON.parse(run.argv) as string[]) : [],
    startedAt: run?.started_at ?? sessions[0]?.started_at ?? '',
    endedAt: run?.ended_at ?? null,
    exitCode: run?.exit_code ?? null,
    counts: runCounts(db, id),
    sessions: sessions.map((s) => ({ id: s.id, connection: s.connection, protocol: s.protocol, startedAt: s.started_at, endedAt: s.ended_at, status: s.status, commandCount: s.command_count })),
    steps,
  };
}
