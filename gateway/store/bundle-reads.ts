/**
 * The reads behind `flightlog export` (bundle, HAR, JSON Lines): paged, so an export of a huge
 * session keeps memory flat and never holds an open iterator on a connection the recorder shares.
 */
import type { Db } from './db';
import type { CommandRow, EventRow, FindingRow, SessionRow } from './rows';

/** A run by its exact id, or null. */
export function runIdExact(db: Db, id: string): string | null {
  const row = db.prepare('SELECT id FROM runs WHERE id = ?').get(id) as { id: string } | undefined;
  return row?.id ?? null;
}

/** Up to two run ids starting with `prefix` (already LIKE-escaped with `\`), from runs and from sessions. */
export function runIdsByPrefix(db: Db, escapedPrefix: string): { viaRuns: string[]; viaSessions: string[] } {
  const viaRuns = db.prepare("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2").all(escapedPrefix + '%') as { id: string }[];
  const viaSessions = db.prepare("SELECT DISTINCT run_id AS id FROM sessions WHERE run_id LIKE ? ESCAPE '\\' LIMIT 2").all(escapedPrefix + '%') as { id: string }[];
  return { viaRuns: viaRuns.map((r) => r.id), viaSessions: viaSessions.map((r) => r.id) };
}

/** Session ids of a run, oldest first. */
export function sessionIdsOfRun(db: Db, runId: string): string[] {
  return (db.prepare('SELECT id FROM sessions WHERE run_id = ? ORDER BY started_us, id').all(runId) as { id: string }[]).map((r) => r.id);
}

/**
 * Runs `work` inside one read transaction unless one is already open, so a live session's
 * commands and the events that cover them are read as of one moment.
 */
export async function inReadSnapshot<T>(db: Db, work: () => Promise<T>): Promise<T> {
  const snapshot = !db.inTransaction;
  if (snapshot) db.exec('BEGIN');
  try {
    return await work();
  } finally {
    if (snapshot && db.inTransaction) db.exec('COMMIT');
  }
}

export function sessionRow(db: Db, id: string): SessionRow | undefined {
  return db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
}

/** Events with `from < seq <= to`, in seq order. */
export function eventRowsBetween(db: Db, sessionId: string, from: number, to: number): EventRow[] {
  return db
    .prepare('SELECT seq, t_us, wall, kind, direction, command_id, data, hash FROM events WHERE session_id = ? AND seq > ? AND seq <= ? ORDER BY seq')
    .all(sessionId, from, to) as EventRow[];
}

/** A page of events after `afterSeq`, in seq order. */
export function eventRowsAfter(db: Db, sessionId: string, afterSeq: number, limit: number): EventRow[] {
  return db.prepare('SELECT seq, t_us, wall, kind, direction, command_id, data, hash FROM events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(sessionId, afterSeq, limit) as EventRow[];
}

/** Ids of the commands another command caused, reusing one prepared statement. */
export function causedCommandIds(db: Db): (commandId: number) => number[] {
  const stmt = db.prepare('SELECT id FROM commands WHERE caused_by = ? ORDER BY id');
  return (commandId) => (stmt.all(commandId) as { id: number }[]).map((x) => x.id);
}

/** A page of a session's commands after index `afterIdx`. */
export function commandRowsAfter(db: Db, sessionId: string, afterIdx: number, limit: number): CommandRow[] {
  return db.prepare('SELECT * FROM commands WHERE session_id = ? AND idx > ? ORDER BY idx LIMIT ?').all(sessionId, afterIdx, limit) as CommandRow[];
}

/** A page of a session's findings after id `afterId`. */
export function findingRowsAfter(db: Db, sessionId: string, afterId: number, limit: number): FindingRow[] {
  return db.prepare('SELECT * FROM findings WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?').all(sessionId, afterId, limit) as FindingRow[];
}

export interface IdentityRow {
  name: string;
  kind: 'agent' | 'human';
  created_at: string;
  revoked_at: string | null;
}

export interface ConnectionRow {
  name: string;
  protocol: string;
  config: string;
  first_seen: string;
  updated_at: string;
}

export interface RunRow {
  id: string;
  identity: string | null;
  argv: string;
  started_at: string;
  ended_at: string | null;
  exit_code: number | null;
}

/** A lookup of identities by name, reusing one prepared statement. */
export function identityByName(db: Db): (name: string) => IdentityRow | undefined {
  const stmt = db.prepare('SELECT name, kind, created_at, revoked_at FROM identities WHERE name = ?');
  return (name) => stmt.get(name) as IdentityRow | undefined;
}

/** A lookup of connections by name, reusing one prepared statement. */
export function connectionByName(db: Db): (name: string) => ConnectionRow | undefined {
  const stmt = db.prepare('SELECT name, protocol, config, first_seen, updated_at FROM connections WHERE name = ?');
  return (name) => stmt.get(name) as ConnectionRow | undefined;
}

/** A lookup of runs by id, reusing one prepared statement. */
export function runById(db: Db): (id: string) => RunRow | undefined {
  const stmt = db.prepare('SELECT id, identity, argv, started_at, ended_at, exit_code FROM runs WHERE id = ?');
  return (id) => stmt.get(id) as RunRow | undefined;
}

export interface HarSessionRow {
  id: string;
  connection: string;
  identity: string | null;
  protocol: string;
}

export function harSessionRow(db: Db, id: string): HarSessionRow {
  return db.prepare('SELECT id, connection, identity, protocol FROM sessions WHERE id = ?').get(id) as HarSessionRow;
}

/** A pager over a session's HTTP and model-API commands, 256 at a time. */
export function httpCommandPages(db: Db): (sessionId: string, afterIdx: number) => CommandRow[] {
  const stmt = db.prepare("SELECT * FROM commands WHERE session_id = ? AND kind IN ('http', 'llm') AND idx > ? ORDER BY idx LIMIT 256");
  return (sessionId, afterIdx) => stmt.all(sessionId, afterIdx) as CommandRow[];
}

export function countHttpCommands(db: Db, sessionIds: string[]): number {
  return (db.prepare(`SELECT COUNT(*) AS n FROM commands WHERE kind IN ('http', 'llm') AND session_id IN (${sessionIds.map(() => '?').join(',')})`).get(...sessionIds) as { n: number }).n;
}

export interface JsonlSessionRow {
  id: string;
  connection: string;
  protocol: string;
  identity: string | null;
  run_id: string | null;
  client_addr: string | null;
}

export function jsonlSessionRow(db: Db, id: string): JsonlSessionRow {
  return db.prepare('SELECT id, connection, protocol, identity, run_id, client_addr FROM sessions WHERE id = ?').get(id) as JsonlSessionRow;
}

/** A lookup of a command's id, kind and text, reusing one prepared statement. */
export function commandHeadById(db: Db): (id: number) => { id: number; kind: string; text: string } | undefined {
  const stmt = db.prepare('SELECT id, kind, text FROM commands WHERE id = ?');
  return (id) => stmt.get(id) as { id: number; kind: string; text: string } | undefined;
}
