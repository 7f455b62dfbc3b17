/**
 * Loading the record journal (journal-file.ts) into the store: at open, after a crash, and at
 * shutdown. The writer thread loads it while the gateway runs (recorder-worker.ts).
 */
import type { Db } from './db';
import { readJournal } from './journal-file';
import { JOURNAL_SEQ_SQL, loadRecords, prepareAll } from './recorder-worker';

export { decodeOps, encodeOps, JournalWriter, readJournal } from './journal-file';

/** The journal of a store file: beside it. */
export function journalPath(db: Db): string {
  return `${db.name}-pending`;
}

/**
 * Loads the journal's batches past the store's seq into the store, in one transaction. Returns
 * the seq the store is at afterwards and the last seq the journal holds. Safe beside a live
 * writer thread (see loadRecords).
 */
export function replayJournal(db: Db, file = journalPath(db), stmts?: ReturnType<typeof prepareAll>): { seq: number; last: number } {
  const records = readJournal(file);
  // the common case, an empty journal, prepares one statement, not the recorder's all
  if (records.length === 0) return { seq: (db.prepare(JOURNAL_SEQ_SQL).get() as { seq: number }).seq, last: 0 };
  return { seq: loadRecords(db, stmts ?? prepareAll(db), records).seq, last: records[records.length - 1].seq };
}
