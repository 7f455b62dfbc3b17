/**
 * The batching writer under the recorder: row writes are queued on the caller's turn and
 * committed in grouped transactions shortly after, on a writer thread with its own connection
 * when the store is a file (the event loop that relays traffic never waits on SQLite), or here
 * when a listener waits to forward a small batch. A failed commit fails the store for good
 * (fail-closed). What the rows mean is the recorder's business, not this file's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Db } from './db';
import { prepareAll, runBatch, type BatchOps, type WorkerBatch, type WorkerReply } from './recorder-worker';
import type { SessionStatus } from '../common/types';

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
/** the largest batch (flat ops length) an acknowledgement commits on the caller's thread */
const INLINE_ACK_MAX_OPS = 64;

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

interface Batch {
  id: number;
  ops: BatchOps;
  waiters: Waiter[];
  notices: RecorderNotice[];
}

export interface BatchWriterOptions {
  /** how long appends wait to be grouped into one commit (default 4 ms) */
  commitIntervalMs?: number;
  /** called once, when the first commit fails: from then on the store is failed (fail-closed) */
  onStoreFailure?: (err: Error) => void;
  /**
   * Commit on a writer thread with its own connection (default true for a store file): the
   * event loop that relays traffic then never waits on SQLite.
   */
  writerThread?: boolean;
}

export abstract class BatchWriter {
  protected queue: BatchOps = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private listeners: Array<(n: RecorderNotice) => void> = [];
  private notices: RecorderNotice[] = [];
  private batchSeq = 0;
  /** the batch the writer thread is committing (at most one: later rows group into the next) */
  private inFlight: Batch | null = null;
  /** the commit timer fired while a batch was in flight: cut the next one on its ack */
  private due = false;
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
    if (!this.useWorker) this.stmtsCache = prepareAll(db);
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

  /** Commits everything queued now; resolves when it is on disk (a command's acknowledgement). */
  ack(): Promise<void> {
    if (this.storeError) return Promise.reject(this.storeError);
    if (this.queue.length === 0) {
      if (!this.inFlight) return Promise.resolve();
      const batch = this.inFlight;
      return new Promise((resolve, reject) => batch.waiters.push({ resolve, reject }));
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.scheduleNow();
    });
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
    if (this.inFlight) {
      this.due = true;
      return;
    }
    if (this.queue.length === 0 && this.waiters.length === 0) return;
    this.beforeCut();
    const batch: Batch = { id: ++this.batchSeq, ops: this.queue, waiters: this.waiters, notices: this.notices };
    this.queue = [];
    this.waiters = [];
    this.notices = [];
    // A listener is waiting to forward a command and the writer thread is idle: a small batch
    // commits here, sparing the two thread hops that would stand between the client and its
    // upstream. Nothing else writes meanwhile (the writer only writes a batch it was sent).
    if (this.useWorker && (batch.waiters.length === 0 || batch.ops.length > INLINE_ACK_MAX_OPS)) this.send(batch);
    else this.commitHere(batch);
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

  private send(batch: Batch): void {
    const w = this.writer();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.inFlight = batch;
    // a batch in flight keeps the process alive, as the commit timer did
    w.ref();
    w.postMessage({ type: 'batch', id: batch.id, ops: batch.ops } satisfies WorkerBatch);
  }

  private writer(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER_FILE, { workerData: { flightlogRecorder: true, file: this.db.name } });
    w.on('message', (m: WorkerReply) => this.onReply(w, m));
    w.on('error', (err: Error) => this.writerLost(w, `the store writer failed: ${err.message}`));
    w.on('exit', () => this.writerLost(w, 'the store writer stopped'));
    this.worker = w;
    return w;
  }

  private onReply(w: Worker, m: WorkerReply): void {
    const batch = this.inFlight;
    if (w !== this.worker || !batch || batch.id !== m.id) return;
    this.inFlight = null;
    if (m.error !== undefined) {
      w.unref();
      this.fail(new Error(m.error), batch);
      return;
    }
    this.committed(batch);
    if (this.due || this.queue.length >= MAX_BATCH_OPS) {
      this.due = false;
      this.commit();
    }
    if (!this.inFlight) {
      w.unref();
      this.idleTimer = setTimeout(() => this.stopWriter(), WRITER_IDLE_MS);
      this.idleTimer.unref();
    }
  }

  /** Stops an idle writer thread (it closes its connection); the next batch starts a new one. */
  private stopWriter(): void {
    this.idleTimer = null;
    const w = this.worker;
    if (!w || this.inFlight) return;
    this.worker = null;
    w.postMessage({ type: 'close' });
  }

  private writerLost(w: Worker, reason: string): void {
    if (w !== this.worker) return;
    this.worker = null;
    const batch = this.inFlight;
    this.inFlight = null;
    // nothing in flight: a later batch starts a new writer
    if (batch) this.fail(new Error(reason), batch);
  }

  private committed(batch: Batch): void {
    for (const w of batch.waiters) w.resolve();
    if (this.listeners.length && batch.notices.length) {
      for (const n of coalesce(batch.notices)) for (const l of this.listeners) l(n);
    }
  }

  /** Fail-closed: a batch that did not commit fails every session, now and later. */
  private fail(err: Error, batch: Batch): void {
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
    for (const w of batch.waiters) w.reject(err);
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
