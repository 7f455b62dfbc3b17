/**
 * The batching writer under the recorder: row writes are queued on the caller's turn and cut
 * into a batch shortly after. When the store is a file, a batch is appended to the record
 * journal (one write) and that is its acknowledgement; a writer thread with its own connection
 * then loads journal batches into SQLite, several to a transaction (see journal.ts). An
 * in-memory store commits each batch here. A failed write or load fails the store for good
 * (fail-closed). What the rows mean is the recorder's business, not this file's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Db } from './db';
import { prepareAll, runBatch, type BatchOps, type WorkerWake, type WorkerReply } from './recorder-worker';
import { encodeOps, journalPath, JournalWriter, replayJournal } from './journal';
import type { SessionStatus } from '../common/types';
import { FlightlogError } from '../core/errors';

/** What the recorder tells the live feed (control API WebSocket) after each commit. */
export type RecorderNotice =
  | { type: 'session'; sessionId: string; status: SessionStatus }
  | { type: 'events'; sessionId: string; fromSeq: number; toSeq: number }
  | { type: 'command'; sessionId: string; commandId: number }
  | { type: 'finding'; sessionId: string | null; kind: string };

const DEFAULT_COMMIT_INTERVAL_MS = 4;
/** flat ops array length (2 entries per row) at which a batch is cut at once */
const MAX_BATCH_OPS = 8000;
/** an idle writer thread is stopped after this long (restarted on the next batch) */
const WRITER_IDLE_MS = 2000;
const WORKER_FILE = path.join(__dirname, 'recorder-worker.js');
/** the least time between two of the writer thread's transactions (default) */
const DEFAULT_LOAD_INTERVAL_MS = 5;
/** a journal whose batches are all in the store is emptied once it is this large */
const JOURNAL_TRUNCATE_BYTES = 1024 * 1024;

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

interface Batch {
  ops: BatchOps;
  waiters: Waiter[];
  notices: RecorderNotice[];
}

/** a journal batch not yet in the store: its notices go out once it is */
interface Unloaded {
  seq: number;
  notices: RecorderNotice[];
}

export interface BatchWriterOptions {
  /** how long appends wait to be grouped into one commit (default 4 ms) */
  commitIntervalMs?: number;
  /** called once, when the first commit fails: from then on the store is failed (fail-closed) */
  onStoreFailure?: (err: Error) => void;
  /**
   * Journal batches and load them on a writer thread with its own connection (default true for
   * a store file): the event loop that relays traffic then never waits on SQLite.
   */
  writerThread?: boolean;
  /** the least time between two of the writer thread's transactions (default 5 ms) */
  loadIntervalMs?: number;
}

export abstract class BatchWriter {
  protected queue: BatchOps = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private listeners: Array<(n: RecorderNotice) => void> = [];
  private notices: RecorderNotice[] = [];
  private journal: JournalWriter | null = null;
  /** the seq of the last batch written to the journal, and of the last the store holds */
  private journalSeq = 0;
  private loadedSeq = 0;
  private unloaded: Unloaded[] = [];
  private loadWaiters: Array<Waiter & { seq: number }> = [];
  /** the writer thread was told of batches it has not answered for yet (one message per load, not per batch) */
  private woken = false;
  /** the journal was emptied since the writer thread last read it */
  private journalReset = false;
  private worker: Worker | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly useWorker: boolean;
  private stmtsCache: ReturnType<typeof prepareAll> | null = null;
  /** set once a commit failed: every session is failed from then on (fail-closed) */
  storeError: Error | null = null;
  private failedAt: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;

  constructor(
    readonly db: Db,
    private readonly writerOpts: BatchWriterOptions,
  ) {
    this.useWorker = writerOpts.writerThread !== false && !db.memory && db.name !== '' && fs.existsSync(WORKER_FILE);
    // prepared up front on the main connection too: a schema that cannot take the rows fails here
    this.stmtsCache = prepareAll(db);
    if (this.useWorker) this.openJournal();
  }

  /**
   * Loads what a crashed process left in the journal (openDb does too; this is for a store
   * opened otherwise), then starts the journal empty, numbering on from the store's seq.
   */
  private openJournal(): void {
    const file = journalPath(this.db);
    let r: { seq: number; last: number };
    try {
      r = replayJournal(this.db, file, this.stmtsCache ?? undefined);
    } catch (err) {
      throw new FlightlogError('E_STORE_JOURNAL', `cannot load the record journal ${file} into the store (${(err as Error).message}); free space, or move the file aside to start without its records`);
    }
    if (r.last > r.seq) {
      // records past a gap: never acknowledged after the ones the store has; kept, not loaded
      fs.renameSync(file, `${file}.unloaded-${Date.now()}`);
    }
    this.journal = new JournalWriter(file);
    this.journal.truncate();
    this.journalSeq = this.loadedSeq = r.seq;
  }

  /** Rows the owner adds to a batch as it is cut (counters, search passes). */
  protected abstract beforeCut(): void;
  /** The store just failed: the owner's sessions are failed too. */
  protected abstract storeFailed(): void;
  /** Queued rows were dropped (failed store): the owner forgets what it kept of them. */
  protected abstract dropped(): void;

  /** Subscribes to commit notices (live feed); returns an unsubscribe function. */
  subscribe(fn: (n: RecorderNotice) => void): () => void {
    this.listeners.push(fn);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== fn);
    };
  }

  /**
   * Writes everything queued now; resolves when it is durable (a command's acknowledgement):
   * in the journal, or committed when the store is in memory.
   */
  ack(): Promise<void> {
    if (this.storeError) return Promise.reject(this.storeError);
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.scheduleNow();
    });
  }

  /** Resolves once everything queued now is in the store itself, where readers see it. */
  async settle(): Promise<void> {
    await this.ack();
    if (this.loadedSeq >= this.journalSeq) return;
    const seq = this.journalSeq;
    this.wake('load');
    return new Promise((resolve, reject) => this.loadWaiters.push({ seq, resolve, reject }));
  }

  /**
   * A listener waits on this before it forwards a command: the commit is cut on the next turn
   * instead of after the grouping interval, and everything appended in this turn (a pipelined
   * batch of messages) rides in the same commit.
   */
  private scheduleNow(): void {
    if (this.immediate) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.scheduled = true;
    this.immediate = setImmediate(() => this.commit());
  }

  /** What the store's writer is doing: ok, or failed since when and why (control API status). */
  storeStatus(): { ok: boolean; error: string | null; since: string | null } {
    return this.storeError ? { ok: false, error: this.storeError.message, since: this.failedAt } : { ok: true, error: null, since: null };
  }

  /** @internal queues one row write: a statement (S.*) and its parameters */
  push(stmt: number, params: unknown[]): void {
    if (this.storeError) return;
    this.queue.push(stmt, params);
    this.schedule();
  }

  /** @internal a row added while a batch is being cut (no new commit is armed for it) */
  pushUnscheduled(stmt: number, params: unknown[]): void {
    this.queue.push(stmt, params);
  }

  /** @internal */
  notify(n: RecorderNotice): void {
    // notices only feed live subscribers: with none, keeping them is wasted work
    if (this.listeners.length) this.notices.push(n);
  }

  /**
   * Commits are grouped: the first append arms a short timer, and a large backlog commits at
   * once. A commit costs far more than a row, so one per event-loop turn would bound a busy
   * proxy at a few thousand commands a second. While the writer thread commits one batch,
   * new rows group into the next.
   */
  protected schedule(): void {
    if (this.queue.length >= MAX_BATCH_OPS) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      if (!this.immediate) this.immediate = setImmediate(() => this.commit());
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    this.timer = setTimeout(() => this.commit(), this.writerOpts.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS);
  }

  /** Cuts the queued rows into a batch (with the owner's rows due at the cut) and commits it. */
  private commit(): void {
    this.scheduled = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    if (this.storeError) {
      this.failPending();
      return;
    }
    if (this.queue.length === 0 && this.waiters.length === 0) return;
    this.beforeCut();
    const batch: Batch = { ops: this.queue, waiters: this.waiters, notices: this.notices };
    this.queue = [];
    this.waiters = [];
    this.notices = [];
    if (this.journal) this.journalBatch(batch, this.journal);
    else this.commitHere(batch);
  }

  /** One write to the journal acknowledges the batch; the writer thread loads it into the store. */
  private journalBatch(batch: Batch, journal: JournalWriter): void {
    if (batch.ops.length === 0) {
      for (const w of batch.waiters) w.resolve();
      return;
    }
    const seq = this.journalSeq + 1;
    try {
      journal.append(seq, encodeOps(batch.ops));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.fail(new Error(e.code === 'ENOSPC' ? 'the record journal could not be written: the disk is full' : `the record journal could not be written: ${e.message}`), batch);
      return;
    }
    this.journalSeq = seq;
    for (const w of batch.waiters) w.resolve();
    this.unloaded.push({ seq, notices: batch.notices });
    if (!this.woken) this.wake('wake');
  }

  /** Tells the writer thread there are journal batches to load (it reads them from the file). */
  private wake(type: WorkerWake['type']): void {
    const w = this.writer();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    // batches not yet loaded keep the process alive, as the commit timer did
    w.ref();
    w.postMessage({ type, reset: this.journalReset } satisfies WorkerWake);
    this.journalReset = false;
    this.woken = true;
  }

  private commitHere(batch: Batch): void {
    try {
      runBatch(this.db, this.stmtsCache ?? (this.stmtsCache = prepareAll(this.db)), batch.ops);
    } catch (err) {
      this.fail(err as Error, batch);
      return;
    }
    this.committed(batch);
  }

  private writer(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER_FILE, {
      workerData: { flightlogRecorder: true, file: this.db.name, journal: journalPath(this.db), minIntervalMs: this.writerOpts.loadIntervalMs ?? DEFAULT_LOAD_INTERVAL_MS },
    });
    // a new thread reads the journal from its start
    this.journalReset = false;
    w.on('message', (m: WorkerReply) => this.onReply(w, m));
    w.on('error', (err: Error) => this.writerLost(w, `the store writer failed: ${err.message}`));
    w.on('exit', () => this.writerLost(w, 'the store writer stopped'));
    this.worker = w;
    return w;
  }

  private onReply(w: Worker, m: WorkerReply): void {
    if (w !== this.worker) return;
    this.woken = false;
    if (m.error !== undefined) {
      w.unref();
      this.fail(new Error(m.error), null);
      return;
    }
    this.loadedSeq = Math.max(this.loadedSeq, m.seq);
    let n = 0;
    while (n < this.unloaded.length && this.unloaded[n].seq <= this.loadedSeq) n++;
    const done = this.unloaded.splice(0, n);
    if (this.listeners.length) for (const u of done) this.announce(u.notices);
    if (this.loadWaiters.length) {
      const still: typeof this.loadWaiters = [];
      for (const x of this.loadWaiters) {
        if (x.seq <= this.loadedSeq) x.resolve();
        else still.push(x);
      }
      this.loadWaiters = still;
    }
    if (this.loadedSeq < this.journalSeq) {
      // batches written since the thread read the journal
      this.wake('wake');
      return;
    }
    // everything written is in the store
    if (this.journal && this.journal.bytes >= JOURNAL_TRUNCATE_BYTES) this.truncateJournal();
    w.unref();
    this.idleTimer = setTimeout(() => this.stopWriter(), WRITER_IDLE_MS);
    this.idleTimer.unref();
  }

  private truncateJournal(): void {
    try {
      if (this.journal && this.journal.bytes > 0) {
        this.journal.truncate();
        this.journalReset = true;
      }
    } catch {
      // a journal left long is only replayed (and skipped) at the next open
    }
  }

  /** Stops an idle writer thread (it closes its connection); the next batch starts a new one. */
  private stopWriter(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const w = this.worker;
    if (!w || this.loadedSeq < this.journalSeq) return;
    this.worker = null;
    this.truncateJournal();
    w.postMessage({ type: 'close' });
  }

  /**
   * At shutdown, after the last settle: stops the writer thread and closes the journal. A store
   * that failed gets one more try at loading the journal (space may be back); what does not
   * load stays in the journal for the next open.
   */
  async close(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const w = this.worker;
    this.worker = null;
    if (w) {
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      w.ref();
      w.postMessage({ type: 'close' });
      await exited;
    }
    const journal = this.journal;
    this.journal = null;
    if (!journal) return;
    try {
      const r = replayJournal(this.db, journal.file, this.stmtsCache ?? undefined);
      if (r.seq >= r.last) journal.truncate();
    } catch {
      // kept in the journal: the next open loads it
    }
    journal.close();
  }

  private writerLost(w: Worker, reason: string): void {
    if (w !== this.worker) return;
    this.worker = null;
    // nothing unloaded: a later batch starts a new writer
    if (this.loadedSeq < this.journalSeq) this.fail(new Error(reason), null);
  }

  private committed(batch: Batch): void {
    for (const w of batch.waiters) w.resolve();
    this.announce(batch.notices);
  }

  private announce(notices: RecorderNotice[]): void {
    if (this.listeners.length && notices.length) {
      for (const n of coalesce(notices)) for (const l of this.listeners) l(n);
    }
  }

  /** Fail-closed: a batch that did not commit (or load) fails every session, now and later. */
  private fail(err: Error, batch: Batch | null): void {
    const first = this.storeError === null;
    this.storeError = err;
    if (first) {
      this.failedAt = new Date().toISOString();
      try {
        this.writerOpts.onStoreFailure?.(err);
      } catch {
        // reporting must not stop fail-closed from taking effect
      }
    }
    this.storeFailed();
    if (batch) for (const w of batch.waiters) w.reject(err);
    const loads = this.loadWaiters;
    this.loadWaiters = [];
    for (const w of loads) w.reject(err);
    this.failPending();
  }

  private failPending(): void {
    const err = this.storeError as Error;
    const waiters = this.waiters;
    this.waiters = [];
    this.queue = [];
    this.notices = [];
    this.dropped();
    for (const w of waiters) w.reject(err);
  }
}

/** Merges consecutive event notices of one session so the live feed is not one message per event. */
function coalesce(notices: RecorderNotice[]): RecorderNotice[] {
  const out: RecorderNotice[] = [];
  for (const n of notices) {
    const last = out[out.length - 1];
    if (n.type === 'events' && last && last.type === 'events' && last.sessionId === n.sessionId) {
      last.toSeq = n.toSeq;
    } else {
      out.push({ ...n });
    }
  }
  return out;
}
