import type { Db } from './db';
import { FlightlogError } from '../core/errors';
import type { CommandView, EventView, FindingView, RunView, SearchHit, SessionDetail, SessionListQuery, SessionSortKey, SessionSummary } from '../common/api-types';
import type { CommandKind, Direction } from '../common/types';
import { commandView, findingView, parseJsonText, sessionRecord, sessionSummary, type CommandRow, type EventRow, type FindingRow, type SessionRow } from './rows';

/** The read side of the store, shared by the control API and the CLI. */

/** Sort keys to SQL (a fixed map: nothing a request sends is put into SQL). A live session's duration runs to now. */
const SORT_COLUMNS: Record<SessionSortKey, string> = {
  started: 'started_us',
  status: 'status',
  identity: 'identity',
  connection: 'connection',
  protocol: 'protocol',
  run: 'run_id',
  duration: "julianday(COALESCE(ended_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))) - julianday(started_at)",
  commands: 'command_count',
  findings: 'finding_count',
  session: 'id',
};

export function listSessions(db: Db, q: SessionListQuery = {}): { sessions: SessionSummary[]; total: number } {
  const where: string[] = [];
  const args: unknown[] = [];
  const filters: Array<[string, string | undefined]> = [
    ['identity', q.identity],
    ['connection', q.connection],
    ['protocol', q.protocol],
    ['status', q.status],
    ['run_id', q.run],
  ];
  for (const [column, value] of filters) {
    if (!value) continue;
    where.push(`${column} = ?`);
    args.push(value);
  }
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const limit = Math.min(Math.max(q.limit ?? 1000, 1), 10000);
  const offset = Math.max(q.offset ?? 0, 0);
  const sort = q.sort ?? 'started';
  const column = Object.hasOwn(SORT_COLUMNS, sort) ? SORT_COLUMNS[sort] : null;
  if (!column) throw new FlightlogError('E_PARAM', `sort must be one of ${Object.keys(SORT_COLUMNS).join(', ')}`);
  const order = q.order ?? (q.sort ? 'asc' : 'desc');
  if (order !== 'asc' && order !== 'desc') throw new FlightlogError('E_PARAM', 'order must be asc or desc');
  // ties keep the newest first, so paging through equal keys stays stable
  const rows = db.prepare(`SELECT * FROM sessions ${w} ORDER BY ${column} ${order.toUpperCase()}, started_us DESC, id DESC LIMIT ? OFFSET ?`).all(...args, limit, offset) as SessionRow[];
  const total = (db.prepare(`SELECT COUNT(*) AS n FROM sessions ${w}`).get(...args) as { n: number }).n;
  return { sessions: rows.map(sessionSummary), total };
}

/** Finds a session by id or a unique prefix of it, as users type ids. */
export function resolveSessionId(db: Db, idOrPrefix: string): string {
  const exact = db.prepare('SELECT id FROM sessions WHERE id = ?').get(idOrPrefix) as { id: string } | undefined;
  if (exact) return exact.id;
  const escaped = idOrPrefix.replace(/[\\%_]/g, (c) => '\\' + c);
  const rows = db.prepare("SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\' LIMIT 2").all(escaped + '%') as { id: string }[];
  if (rows.length === 1) return rows[0].id;
  if (rows.length > 1) throw new FlightlogError('E_AMBIGUOUS', `session id prefix "${idOrPrefix}" matches more than one session`);
  throw new FlightlogError('E_NOT_FOUND', `no session "${idOrPrefix}"`);
}

export function getSession(db: Db, idOrPrefix: string): SessionDetail {
  const id = resolveSessionId(db, idOrPrefix);
  const row = db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow;
  const commandRows = db.prepare('SELECT * FROM commands WHERE session_id = ? ORDER BY idx').all(id) as CommandRow[];
  const causedRows = db
    .prepare('SELECT c.caused_by AS parent, c.id AS child FROM commands c WHERE c.caused_by IN (SELECT id FROM commands WHERE session_id = ?) ORDER BY c.id')
    .all(id) as { parent: number; child: number }[];
  const caused = new Map<number, number[]>();
  for (const r of causedRows) {
    const list = caused.get(r.parent) ?? [];
    list.push(r.child);
    caused.set(r.parent, list);
  }
  const findings = db.prepare('SELECT * FROM findings WHERE session_id = ? ORDER BY id').all(id) as FindingRow[];
  return {
    ...sessionRecord(row),
    commands: commandRows.map((r) => commandView(r, caused.get(r.id) ?? [])),
    findings: findings.map(findingView),
  };
}

export function getCommand(db: Db, id: number): CommandView | null {
  const r = db.prepare('SELECT * FROM commands WHERE id = ?').get(id) as CommandRow | undefined;
  if (!r) return null;
  const caused = (db.prepare('SELECT id FROM commands WHERE caused_by = ? ORDER BY id').all(id) as { id: number }[]).map((x) => x.id);
  return commandView(r, caused);
}

export function listEvents(db: Db, sessionId: string, opts: { afterSeq?: number; limit?: number } = {}): { events: EventView[]; more: boolean } {
  const limit = Math.min(Math.max(opts.limit ?? 1000, 1), 10000);
  const rows = db
    .prepare('SELECT seq, t_us, wall, kind, direction, command_id, data, hash FROM events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?')
    .all(sessionId, opts.afterSeq ?? 0, limit + 1) as EventRow[];
  const more = rows.length > limit;
  return {
    events: rows.slice(0, limit).map((r) => ({
      seq: r.seq,
      tUs: r.t_us,
      wall: r.wall,
      kind: r.kind,
      direction: r.direction as Direction,
      commandId: r.command_id,
      data: parseJsonText(r.data) ?? null,
      hash: r.hash,
    })),
    more,
  };
}

/** Raw event rows in chain order, for verification and export. */
export function iterateRawEvents(db: Db, sessionId: string): IterableIterator<EventRow> {
  return db.prepare('SELECT seq, t_us, wall, kind, direction, command_id, data, hash FROM events WHERE session_id = ? ORDER BY seq').iterate(sessionId) as IterableIterator<EventRow>;
}

/** Turns user text into an FTS5 query: each word a quoted prefix term, so punctuation never breaks the syntax. */
export function ftsQuery(text: string): string {
  const words = text.match(/[\p{L}\p{N}_]+/gu) ?? [];
  return words.map((w) => `"${w}"*`).join(' ');
}

export function search(db: Db, text: string, opts: { limit?: number } = {}): SearchHit[] {
  const q = ftsQuery(text);
  if (!q) return [];
  const limit = Math.min(Math.max(opts.limit ?? 200, 1), 5000);
  const rows = db
    .prepare(
      `SELECT c.id, c.session_id, c.kind, c.text, c.started_at, s.connection, s.identity,
              snippet(commands_fts, 0, '[', ']', '…', 16) AS snippet
         FROM commands_fts JOIN commands c ON c.id = commands_fts.rowid JOIN sessions s ON s.id = c.session_id
        WHERE commands_fts MATCH ? ORDER BY c.started_at DESC, c.id DESC LIMIT ?`,
    )
    .all(q, limit) as Array<{ id: number; session_id: string; kind: string; text: string; started_at: string; connection: string; identity: string | null; snippet: string }>;
  return rows.map((r) => ({
    sessionId: r.session_id,
    commandId: r.id,
    kind: r.kind as CommandKind,
    text: r.text,
    snippet: r.snippet,
    startedAt: r.started_at,
    connection: r.connection,
    identity: r.identity,
  }));
}

/** Commands that touched a table (or path, or resource). */
export function commandsTouching(db: Db, target: string): CommandView[] {
  const rows = db
    .prepare('SELECT c.* FROM command_targets t JOIN commands c ON c.id = t.command_id WHERE t.target = ? ORDER BY c.id')
    .all(target.toLowerCase()) as CommandRow[];
  return rows.map((r) => commandView(r, []));
}

export function listFindings(db: Db, opts: { sessionId?: string; limit?: number } = {}): FindingView[] {
  const limit = Math.min(Math.max(opts.limit ?? 1000, 1), 100000);
  const rows = (
    opts.sessionId
      ? db.prepare('SELECT f.*, c.idx AS command_index FROM findings f LEFT JOIN commands c ON c.id = f.command_id WHERE f.session_id = ? ORDER BY f.id DESC LIMIT ?').all(opts.sessionId, limit)
      : db.prepare('SELECT f.*, c.idx AS command_index FROM findings f LEFT JOIN commands c ON c.id = f.command_id ORDER BY f.id DESC LIMIT ?').all(limit)
  ) as FindingRow[];
  return rows.map(findingView);
}

export function listRuns(db: Db, opts: { limit?: number } = {}): RunView[] {
  const limit = Math.min(Math.max(opts.limit ?? 200, 1), 10000);
  const runs = db.prepare('SELECT * FROM runs ORDER BY started_at DESC LIMIT ?').all(limit) as Array<{
    id: string;
    identity: string | null;
    argv: string;
    started_at: string;
    ended_at: string | null;
    exit_code: number | null;
  }>;
  return runs.map((r) => ({
    id: r.id,
    identity: r.identity,
    argv: JSON.parse(r.argv) as string[],
    startedAt: r.started_at,
    endedAt: r.ended_at,
    exitCode: r.exit_code,
    sessions: listSessions(db, { run: r.id, limit: 10000 }).sessions,
  }));
}

/** A recorded command as guardrails see it: what `flightlog policy test` replays rules over. */
export interface RecordedCommand {
  id: number;
  sessionId: string;
  connection: string;
  protocol: string;
  identity: string | null;
  kind: CommandKind;
  text: string;
  classification: string | null;
  status: string;
  startedAt: string;
}

/** Every command started at or after `sinceIso`, oldest first, streamed. */
export function iterateCommandsSince(db: Db, sinceIso: string): IterableIterator<RecordedCommand> {
  return db
    .prepare(
      `SELECT c.id, c.session_id AS sessionId, s.connection, s.protocol, s.identity, c.kind, c.text, c.classification, c.status, c.started_at AS startedAt
       FROM commands c JOIN sessions s ON s.id = c.session_id WHERE c.started_at >= ? ORDER BY c.id`,
    )
    .iterate(sinceIso) as IterableIterator<RecordedCommand>;
}
