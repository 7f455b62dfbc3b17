/**
 * Loading the record journal (journal-file.ts) into the store: at open, after a crash, and at
 * shutdown. The writer thread loads it while the gateway runs (recorder-worker.ts).
 */
import type { Db } from './db';
import { decodeOps, readJournal } from './journal-file';
import { prepareAll } from './recorder-worker';

export { decodeOps, encodeOps, JournalWriter, readJournal } from './journal-file';

/** The journal of a store file: beside it. */
export function journalPath(db: Db): string {
  return `${db.name}-pending`;
}

export function appliedSeq(db: Db): number {
  const row = db.prepare('SELECT seq FROM journal_state').get() as { seq: number } | undefined;
  return row?.seq ?? 0;
}

/**
 * Loads the journal's batches past the store's seq into the store, in one transaction. Returns
 * how many batches it loaded and the seq the store is at afterwards. Safe beside a live writer
 * thread: the seq is read and moved inside the transaction, so no batch is loaded twice.
 */
export function replayJournal(db: Db, file = journalPath(db)): { loaded: number; seq: number; last: number } {
  const records = readJournal(file);
  if (records.length === 0) return { loaded: 0, seq: appliedSeq(db), last: 0 };
  const stmts = prepareAll(db);
  let loaded = 0;
  let seq = 0;
  db.transaction(() => {
    seq = appliedSeq(db);
    for (const r of records) {
      // batches are consecutive: one past a gap was not written after the ones before it
      if (r.seq <= seq) continue;
      if (r.seq !== seq + 1) break;
      runOps(stmts, decodeOps(r.payload));
      seq = r.seq;
      loaded++;
    }
    db.prepare('UPDATE journal_state SET seq = ?').run(seq);
  }).immediate();
  return { loaded, seq, last: records[records.length - 1].seq };
}

/** Runs a batch's statements inside the caller's transaction. */
function runOps(stmts: ReturnType<typeof prepareAll>, ops: unknown[]): void {
  for (let i = 0; i < ops.length; i += 2) stmts[ops[i] as number].run(ops[i + 1] as unknown[]);
}

