/**
 * The writes behind `flightlog open`: bundles are imported into a fresh in-memory store with the
 * store's own schema, so the same read queries serve imported sessions.
 */
import Database from 'better-sqlite3';
import { migrate, type Db } from './db';

/** An imported session row, in column order. */
export type ImportedSessionValues = [
  id: string,
  identity: string | null,
  connection: string,
  protocol: string,
  runId: string | null,
  clientAddr: string | null,
  meta: string,
  startedAt: string,
  startedUs: number,
  endedAt: string | null,
  status: string,
  endReason: string | null,
  eventCount: number,
  commandCount: number,
  findingCount: number,
  lastHash: string | null,
  seal: string | null,
  sealKey: string | null,
];

/** An imported command row, in column order (JSON columns as text). */
export type ImportedCommandValues = [
  id: number | null,
  sessionId: string,
  idx: number,
  kind: string,
  text: string,
  classification: string | null,
  targets: string,
  status: string,
  startedAt: string,
  startedUs: number,
  endedUs: number | null,
  startSeq: number | null,
  endSeq: number | null,
  detail: string | null,
  result: string | null,
  error: string | null,
  causedBy: number | null,
];

/** An imported finding row, in column order. */
export type ImportedFindingValues = [
  id: number | null,
  sessionId: string,
  commandId: number | null,
  eventSeq: number | null,
  category: string,
  kind: string,
  fp: string | null,
  direction: string,
  maskedLive: number,
  detail: string | null,
  createdAt: string,
];

/** An imported event row, in column order. */
export type ImportedEventValues = [
  sessionId: string,
  seq: number,
  tUs: number,
  wall: string,
  kind: string,
  direction: string,
  commandId: number | null,
  data: string,
  hash: string,
];

/** A fresh, empty store in memory with the current schema. */
export function openMemoryDb(): Db {
  const db = new Database(':memory:');
  migrate(db);
  return db;
}

/** After import the store only answers reads. */
export function makeQueryOnly(db: Db): void {
  db.pragma('query_only = ON');
}

/**
 * The import's transaction: one per bundle, with a savepoint per session so a broken session is
 * skipped without losing the others. Explicit statements because the import awaits between rows.
 */
export const importTx = {
  begin: (db: Db): void => void db.exec('BEGIN'),
  commit: (db: Db): void => void db.exec('COMMIT'),
  rollback: (db: Db): void => void db.exec('ROLLBACK'),
  savepoint: (db: Db): void => void db.exec('SAVEPOINT session'),
  release: (db: Db): void => void db.exec('RELEASE session'),
  rollbackToSavepoint: (db: Db): void => {
    db.exec('ROLLBACK TO session');
    db.exec('RELEASE session');
  },
};

export function insertIdentityIfAbsent(db: Db, name: string, kind: 'agent' | 'human', createdAt: string, revokedAt: string | null): void {
  db.prepare('INSERT OR IGNORE INTO identities (name, kind, created_at, revoked_at) VALUES (?, ?, ?, ?)').run(name, kind, createdAt, revokedAt);
}

export function insertConnectionIfAbsent(db: Db, name: string, protocol: string, config: string, firstSeen: string, updatedAt: string): void {
  db.prepare('INSERT OR IGNORE INTO connections (name, protocol, config, first_seen, updated_at) VALUES (?, ?, ?, ?, ?)').run(name, protocol, config, firstSeen, updatedAt);
}

export function insertRunIfAbsent(db: Db, id: string, identity: string | null, argv: string, startedAt: string, endedAt: string | null, exitCode: number | null): void {
  db.prepare('INSERT OR IGNORE INTO runs (id, identity, argv, started_at, ended_at, exit_code) VALUES (?, ?, ?, ?, ?, ?)').run(id, identity, argv, startedAt, endedAt, exitCode);
}

export function sessionExists(db: Db, id: string): boolean {
  return !!db.prepare('SELECT 1 FROM sessions WHERE id = ?').get(id);
}

/** How far ids `lo..hi` of `table` must move up to clear the ids already stored (0 when they are free). */
export function idClashOffset(db: Db, table: 'commands' | 'findings', lo: number, hi: number): number {
  if (lo > hi) return 0;
  const any = db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE id BETWEEN ? AND ?`).get(lo, hi) as { n: number };
  if (any.n === 0) return 0;
  return (db.prepare(`SELECT COALESCE(MAX(id), 0) AS m FROM ${table}`).get() as { m: number }).m - lo + 1;
}

export function insertImportedSession(db: Db, ...values: ImportedSessionValues): void {
  db.prepare(
    `INSERT INTO sessions (id, identity, connection, protocol, run_id, client_addr, meta, started_at, started_us, ended_at, status, end_reason,
                           event_count, command_count, finding_count, last_hash, seal, seal_key)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(...values);
}

/** Inserters for a session's commands and their targets, reusing prepared statements. */
export function importedCommandWriter(db: Db): { command: (...values: ImportedCommandValues) => void; target: (commandId: number | null, target: string) => void } {
  const insertCommand = db.prepare(
    `INSERT INTO commands (id, session_id, idx, kind, text, classification, targets, status, started_at, started_us, ended_us, start_seq, end_seq, detail, result, error, caused_by)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertTarget = db.prepare('INSERT INTO command_targets (command_id, target) VALUES (?, ?)');
  return {
    command: (...values) => void insertCommand.run(...values),
    target: (commandId, target) => void insertTarget.run(commandId, target),
  };
}

/** An inserter for a session's findings, reusing one prepared statement. */
export function importedFindingWriter(db: Db): (...values: ImportedFindingValues) => void {
  const insertFinding = db.prepare(
    `INSERT INTO findings (id, session_id, command_id, event_seq, category, kind, fp, direction, masked_live, detail, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  return (...values) => void insertFinding.run(...values);
}

/** An inserter for a session's events, reusing one prepared statement. */
export function importedEventWriter(db: Db): (...values: ImportedEventValues) => void {
  const insertEvent = db.prepare('INSERT INTO events (session_id, seq, t_us, wall, kind, direction, command_id, data, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  return (...values) => void insertEvent.run(...values);
}
