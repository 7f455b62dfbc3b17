/**
 * The writes behind `flightlog open`: bundles are imported into a fresh in-memory store with the
 * store's own schema, so the same read queries serve imported sessions.
 */
import Database from 'better-sqlite3';
import { migrate, type Db } from './db';

/** A value SQLite binds as-is. */
export type BindValue = string | number | null;

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

/**
 * Inserts an imported session row; values in column order: id, identity, connection, protocol,
 * run_id, client_addr, meta, started_at, started_us, ended_at, status, end_reason, event_count,
 * command_count, finding_count, last_hash, seal, seal_key.
 */
export function insertImportedSession(db: Db, ...values: BindValue[]): void {
  db.prepare(
    `INSERT INTO sessions (id, identity, connection, protocol, run_id, client_addr, meta, started_at, started_us, ended_at, status, end_reason,
                           event_count, command_count, finding_count, last_hash, seal, seal_key)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(...values);
}

/**
 * Inserters for a session's commands (values in column order: id, session_id, idx, kind, text,
 * classification, targets, status, started_at, started_us, ended_us, start_seq, end_seq, detail,
 * result, error, caused_by) and their targets.
 */
export function importedCommandWriter(db: Db): { command: (...values: BindValue[]) => void; target: (commandId: number | null, target: string) => void } {
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

/**
 * An inserter for a session's findings; values in column order: id, session_id, command_id,
 * event_seq, category, kind, fp, direction, masked_live, detail, created_at.
 */
export function importedFindingWriter(db: Db): (...values: BindValue[]) => void {
  const insertFinding = db.prepare(
    `INSERT INTO findings (id, session_id, command_id, event_seq, category, kind, fp, direction, masked_live, detail, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  return (...values) => void insertFinding.run(...values);
}

/**
 * An inserter for a session's events; values in column order: session_id, seq, t_us, wall, kind,
 * direction, command_id, data, hash.
 */
export function importedEventWriter(db: Db): (...values: BindValue[]) => void {
  const insertEvent = db.prepare('INSERT INTO events (session_id, seq, t_us, wall, kind, direction, command_id, data, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  return (...values) => void insertEvent.run(...values);
}
