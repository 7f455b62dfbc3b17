/**
 * The recorder's writer: runs batches of already-masked, already-hashed rows in one transaction.
 * Loaded two ways: as a module (the statement list and `runBatch`, used by the in-thread
 * fallback), and as a worker_threads entry point that owns its own SQLite connection, so a
 * commit (B-tree and FTS work, WAL writes) never stalls the event loop that forwards traffic.
 * The worker only acknowledges a batch after its transaction committed: an acknowledged event
 * survives a crash of the process (WAL, synchronous=NORMAL), as with the in-thread writer.
 */
import Database from 'better-sqlite3';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

/** Statement indexes used in batch ops. */
export const S = {
  insertSession: 0,
  insertEvent: 1,
  insertCommand: 2,
  insertTarget: 3,
  finishCommand: 4,
  setCausedBy: 5,
  insertFinding: 6,
  updateCounts: 7,
  closeSession: 8,
  insertFailed: 9,
  patchSessionMeta: 10,
  indexSearch: 11,
} as const;

export const SQL: readonly string[] = [
  `INSERT INTO sessions (id, identity, connection, protocol, run_id, client_addr, meta, started_at, started_us, status)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'live')`,
  'INSERT INTO events (session_id, seq, t_us, wall, kind, direction, command_id, data, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  // a command that finished before its batch was committed is inserted once, finished
  `INSERT INTO commands (id, session_id, idx, kind, text, classification, targets, status, started_at, started_us, start_seq, detail, caused_by, ended_us, end_seq, result, error)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  'INSERT INTO command_targets (command_id, target) VALUES (?, ?)',
  'UPDATE commands SET status = ?, ended_us = ?, end_seq = ?, result = ?, error = ? WHERE id = ?',
  'UPDATE commands SET caused_by = ? WHERE id = ?',
  `INSERT INTO findings (id, session_id, command_id, event_seq, category, kind, fp, direction, masked_live, detail, created_at)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  'UPDATE sessions SET event_count = ?, command_count = ?, finding_count = ?, last_hash = ? WHERE id = ?',
  'UPDATE sessions SET ended_at = ?, status = ?, end_reason = ?, seal = ?, seal_key = ? WHERE id = ?',
  'INSERT INTO failed_attempts (connection, protocol, identity, client_addr, reason, at) VALUES (?, ?, ?, ?, ?, ?)',
  "UPDATE sessions SET meta = json_patch(coalesce(meta, '{}'), ?) WHERE id = ?",
  // the search index of commands [from, to) of live sessions, in one FTS5 segment (see migration 6)
  'INSERT INTO commands_fts(rowid, text) SELECT id, text FROM commands WHERE id >= ? AND id < ? AND NOT EXISTS (SELECT 1 FROM commands_fts_docsize d WHERE d.id = commands.id)',
];

/**
 * A batch is a flat list: statement index, then that statement's parameter array, repeated.
 * Flat and primitive-only, so posting it to the worker is one cheap structured clone.
 */
export type BatchOps = unknown[];

type Stmt = Database.Statement<unknown[]>;

/** the transaction's own statements, prepared after SQL's */
const BEGIN = SQL.length;
const COMMIT = BEGIN + 1;
const ROLLBACK = BEGIN + 2;

export function prepareAll(db: Database.Database): Stmt[] {
  return [...SQL, 'BEGIN IMMEDIATE', 'COMMIT', 'ROLLBACK'].map((sql) => db.prepare(sql) as Stmt);
}

/**
 * Runs one batch in one IMMEDIATE transaction (takes the write lock up front: no upgrade deadlock).
 * Its BEGIN and COMMIT are prepared once: db.transaction() builds a wrapper per call, ~5 µs a commit.
 */
export function runBatch(db: Database.Database, stmts: Stmt[], ops: BatchOps): void {
  stmts[BEGIN].run();
  try {
    for (let i = 0; i < ops.length; i += 2) stmts[ops[i] as number].run(ops[i + 1] as unknown[]);
    stmts[COMMIT].run();
  } catch (err) {
    // a failed statement leaves the transaction open; a failed COMMIT may have ended it already
    if (db.inTransaction) stmts[ROLLBACK].run();
    throw err;
  }
}

export interface WorkerBatch {
  type: 'batch';
  id: number;
  ops: BatchOps;
}

export type WorkerReply = { type: 'ack'; id: number; error?: string };

interface WorkerInit {
  flightlogRecorder: true;
  file: string;
}

function serve(init: WorkerInit): void {
  const port = parentPort;
  if (!port) return;
  let db: Database.Database | null = null;
  let stmts: Stmt[] | null = null;
  port.on('message', (m: WorkerBatch | { type: 'close' }) => {
    if (m.type === 'close') {
      try {
        db?.close();
      } catch {
        // closing is best effort: every acknowledged batch is already committed
      }
      port.close();
      return;
    }
    try {
      if (!db) {
        db = new Database(init.file, { fileMustExist: true });
        db.pragma('busy_timeout = 5000');
        db.pragma('synchronous = NORMAL');
      }
      stmts ??= prepareAll(db);
      runBatch(db, stmts, m.ops);
      port.postMessage({ type: 'ack', id: m.id } satisfies WorkerReply);
    } catch (err) {
      port.postMessage({ type: 'ack', id: m.id, error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply);
    }
  });
}

if (!isMainThread && (workerData as Partial<WorkerInit> | null)?.flightlogRecorder === true) serve(workerData as WorkerInit);
