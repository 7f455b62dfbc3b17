/**
 * The recorder's writer: runs batches of already-masked, already-hashed rows in one transaction.
 * Loaded two ways: as a module (the statement list and `runBatch`, used by the in-thread writer
 * and by journal replay), and as a worker_threads entry point that owns its own SQLite
 * connection and loads the record journal's batches (see journal.ts) into the store: several
 * batches to a transaction, so a busy gateway pays a commit per few milliseconds, not per
 * command, and the event loop that relays traffic never waits on SQLite.
 */
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { decodeOps, parseRecords, type JournalRecord } from './journal-file';

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

/** the transaction's own statements and the journal's seq, prepared after SQL's */
const BEGIN = SQL.length;
const COMMIT = BEGIN + 1;
const ROLLBACK = BEGIN + 2;
const GET_SEQ = BEGIN + 3;
const SET_SEQ = BEGIN + 4;
export const JOURNAL_SEQ_SQL = 'SELECT seq FROM journal_state';

export function prepareAll(db: Database.Database): Stmt[] {
  return [...SQL, 'BEGIN IMMEDIATE', 'COMMIT', 'ROLLBACK', JOURNAL_SEQ_SQL, 'UPDATE journal_state SET seq = ?'].map((sql) => db.prepare(sql) as Stmt);
}

/**
 * Runs `fn` in one IMMEDIATE transaction (takes the write lock up front: no upgrade deadlock).
 * Its BEGIN and COMMIT are prepared once: db.transaction() builds a wrapper per call, ~5 µs a commit.
 */
function inTransaction<T>(db: Database.Database, stmts: Stmt[], fn: () => T): T {
  stmts[BEGIN].run();
  try {
    const out = fn();
    stmts[COMMIT].run();
    return out;
  } catch (err) {
    // a failed statement leaves the transaction open; a failed COMMIT may have ended it already
    if (db.inTransaction) stmts[ROLLBACK].run();
    throw err;
  }
}

function runOps(stmts: Stmt[], ops: BatchOps): void {
  for (let i = 0; i < ops.length; i += 2) stmts[ops[i] as number].run(ops[i + 1] as unknown[]);
}

/** Runs one batch in one transaction (an in-memory store's commit). */
export function runBatch(db: Database.Database, stmts: Stmt[], ops: BatchOps): void {
  inTransaction(db, stmts, () => runOps(stmts, ops));
}

/**
 * Loads journal records into the store in one transaction: those right after the store's seq, in
 * order, up to the first gap. The seq is read and moved inside the transaction, so a batch is
 * loaded once even when another process (a store opened after a crash) loads the same journal.
 * Returns the store's seq after, and where the last record it used or skipped ends.
 */
export function loadRecords(db: Database.Database, stmts: Stmt[], records: JournalRecord[]): { seq: number; end: number } {
  return inTransaction(db, stmts, () => {
    const start = (stmts[GET_SEQ].get() as { seq: number }).seq;
    let seq = start;
    let end = 0;
    const batches: BatchOps[] = [];
    for (const r of records) {
      // only the batch right after the store's can come next: one past a gap was not written after it
      if (r.seq > seq + 1) break;
      if (r.seq === seq + 1) {
        batches.push(decodeOps(r.payload));
        seq = r.seq;
      }
      end = r.end;
    }
    runOps(stmts, compactOps(batches));
    if (seq !== start) stmts[SET_SEQ].run(seq);
    return { seq, end };
  });
}

/**
 * The main thread wrote journal batches: load them (`load`: now, somebody waits to read them).
 * `reset`: the journal was emptied since the last message, so it is read again from its start.
 */
export interface WorkerWake {
  type: 'wake' | 'load';
  reset: boolean;
}

/** The writer loaded every batch up to `seq` (or failed to, with `error`). */
export type WorkerReply = { type: 'applied'; seq: number; error?: string };

interface WorkerInit {
  flightlogRecorder: true;
  file: string;
  journal: string;
  /** the least time between two of the writer's transactions: batches arriving meanwhile share one */
  minIntervalMs: number;
}

/**
 * Folds a run of batches into one list of statements with the same end state and fewer rows
 * written: a command finished (or given its cause) in the same run is inserted finished, and a
 * session's counters are written once, with their last values.
 */
export function compactOps(batches: BatchOps[]): BatchOps {
  const out: BatchOps = [];
  const countsAt = new Map<unknown, number>();
  const inserted = new Map<unknown, unknown[]>();
  for (const ops of batches) {
    for (let i = 0; i < ops.length; i += 2) {
      const stmt = ops[i] as number;
      const p = ops[i + 1] as unknown[];
      if (stmt === S.updateCounts) {
        const at = countsAt.get(p[4]);
        if (at !== undefined) {
          out[at + 1] = p;
          continue;
        }
        countsAt.set(p[4], out.length);
      } else if (stmt === S.insertCommand) {
        inserted.set(p[0], p);
      } else if (stmt === S.finishCommand) {
        const ins = inserted.get(p[5]);
        if (ins) {
          // status, ended_us, end_seq, result, error: columns 7 and 13–16 of the insert
          ins[7] = p[0];
          ins[13] = p[1];
          ins[14] = p[2];
          ins[15] = p[3];
          ins[16] = p[4];
          continue;
        }
      } else if (stmt === S.setCausedBy) {
        const ins = inserted.get(p[1]);
        if (ins) {
          ins[12] = p[0];
          continue;
        }
      }
      out.push(stmt, p);
    }
  }
  return out;
}

function serve(init: WorkerInit): void {
  const port = parentPort;
  if (!port) return;
  let db: Database.Database | null = null;
  let stmts: Stmt[] | null = null;
  const fd = fs.openSync(init.journal, 'r');
  /** how far into the journal this thread has loaded */
  let offset = 0;
  let lastApply = -Infinity;
  let timer: NodeJS.Timeout | null = null;
  let failed = false;

  /** The whole records written since `offset`. */
  const readNew = (): JournalRecord[] => {
    const size = fs.fstatSync(fd).size;
    if (size < offset) offset = 0;
    if (size === offset) return [];
    const buf = Buffer.allocUnsafe(size - offset);
    const n = fs.readSync(fd, buf, 0, buf.length, offset);
    return parseRecords(buf.subarray(0, n));
  };

  const apply = (): void => {
    timer = null;
    if (failed) return;
    try {
      const records = readNew();
      if (!db) {
        db = new Database(init.file, { fileMustExist: true });
        db.pragma('busy_timeout = 5000');
        db.pragma('synchronous = NORMAL');
      }
      stmts ??= prepareAll(db);
      const { seq, end } = loadRecords(db, stmts, records);
      offset += end;
      lastApply = performance.now();
      port.postMessage({ type: 'applied', seq } satisfies WorkerReply);
    } catch (err) {
      failed = true;
      port.postMessage({ type: 'applied', seq: -1, error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply);
    }
  };

  port.on('message', (m: WorkerWake | { type: 'close' }) => {
    if (m.type === 'close') {
      if (timer) clearTimeout(timer);
      timer = null;
      try {
        db?.close();
      } catch {
        // closing is best effort: what was not loaded is still in the journal
      }
      fs.closeSync(fd);
      port.close();
      return;
    }
    if (m.reset) offset = 0;
    if (m.type === 'load') {
      if (timer) clearTimeout(timer);
      apply();
      return;
    }
    if (timer) return;
    const wait = init.minIntervalMs - (performance.now() - lastApply);
    timer = setTimeout(apply, Math.max(0, wait));
  });
}

if (!isMainThread && (workerData as Partial<WorkerInit> | null)?.flightlogRecorder === true) serve(workerData as WorkerInit);
