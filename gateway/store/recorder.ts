import type { KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Db } from './db';
import { prepareAll, runBatch, S, type BatchOps, type WorkerBatch, type WorkerReply } from './recorder-worker';
import { ROW_CHAIN_VERSION, chainHash, commandDigest, findingDigest, genesisHash, sealMessage, signSeal, type CommandFacts } from './chain';
import { COMMAND_EVENT, LINEAGE_EVENT } from './coverage';
import { newId } from '../core/ids';
import type {
  CommandFinish,
  CommandHandle,
  CommandStart,
  Direction,
  Json,
  Masker,
  SecretHit,
  SessionOpen,
  SessionRecorder,
  SessionStatus,
} from '../common/types';

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
/** how long a live command may wait for its search and blame rows: written once per pass, not per commit */
const SEARCH_INDEX_MS = 250;

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

export interface RecorderOptions {
  masker: Masker;
  signingKey: KeyObject;
  /** public key fingerprint stored beside each seal */
  keyFingerprint: string;
  /** hook to see commands as they start (lineage); must not throw */
  onCommandStart?: (session: SessionInfo, commandId: number, start: CommandStart) => number | null | void;
  onCommandFinish?: (session: SessionInfo, commandId: number, start: CommandStart, finish: CommandFinish) => void;
  /** hook for what a command touches when its listener did not say (files a shell line writes), from its masked text; must not throw */
  touchesOf?: (session: SessionInfo, start: CommandStart) => { targets: string[]; detail: Record<string, Json> } | null;
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

export interface SessionInfo {
  id: string;
  connection: string;
  protocol: string;
  identity: string | null;
  runId: string | null;
}

/**
 * The only writer of sessions, events, commands and findings. Listeners append synchronously
 * (masking and the hash chain are computed here, on the caller's turn); rows are committed in
 * batched transactions shortly after, on a writer thread when the store is a file, and
 * `flushed()` resolves once they are on disk (WAL: they survive a crash of this process).
 * Every payload is masked here, so nothing unmasked can reach the store by any path.
 */
export class Recorder {
  private queue: BatchOps = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private nextCommandId: number;
  /** finding ids are chosen here, like command ids, so the chain can name a finding before it is committed */
  private nextFindingId: number;
  private readonly open = new Map<string, LiveSession>();
  private listeners: Array<(n: RecorderNotice) => void> = [];
  private notices: RecorderNotice[] = [];
  /** insertCommand params of the batch being built, by command id: a finish before the cut patches them */
  private readonly unsentCommands = new Map<number, unknown[]>();
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
  /** commands from this id on are not in the search index yet */
  private searchFrom: number;
  private searchTimer: NodeJS.Timeout | null = null;
  /** blame rows (command id, target) of commands not yet indexed: written with the next search pass */
  private pendingTargets: Array<number | string> = [];

  constructor(
    readonly db: Db,
    readonly opts: RecorderOptions,
  ) {
    const max = db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM commands').get() as { m: number };
    this.nextCommandId = max.m + 1;
    this.searchFrom = this.nextCommandId;
    this.nextFindingId = (db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM findings').get() as { m: number }).m + 1;
    this.useWorker = opts.writerThread !== false && !db.memory && db.name !== '' && fs.existsSync(WORKER_FILE);
    // prepared up front on the main connection too: a schema that cannot take the rows fails here
    if (!this.useWorker) this.stmtsCache = prepareAll(db);
  }

  /** Subscribes to commit notices (live feed); returns an unsubscribe function. */
  subscribe(fn: (n: RecorderNotice) => void): () => void {
    this.listeners.push(fn);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== fn);
    };
  }

  openSession(open: SessionOpen): SessionRecorder {
    const s = new LiveSession(this, open);
    this.open.set(s.id, s);
    return s;
  }

  /** Who the live sessions belong to (revocation checks). */
  liveSessionInfo(): Array<SessionInfo & { rawIdentity: string | null }> {
    return [...this.open.values()].map((s) => ({ ...s.info, rawIdentity: s.rawIdentity }));
  }

  /** Sessions not yet closed, e.g. to close them all at shutdown. */
  openSessions(): SessionRecorder[] {
    return [...this.open.values()];
  }

  recordFailedAttempt(a: { connection: string; protocol: string; identity: string | null; clientAddr?: string; reason: string }): void {
    const at = new Date().toISOString();
    const identity = a.identity === null ? null : this.opts.masker.maskText(a.identity).text;
    const reason = this.opts.masker.maskText(a.reason).text;
    this.push(S.insertFailed, [a.connection, a.protocol, identity, a.clientAddr ?? null, reason, at]);
    this.push(S.insertFinding, [this.allocFindingId(), null, null, null, 'auth', 'failed-login', null, 'client→upstream', 0, JSON.stringify({ connection: a.connection, identity, reason, clientAddr: a.clientAddr ?? null }), at]);
    this.notify({ type: 'finding', sessionId: null, kind: 'failed-login' });
  }

  /** Closes every open session (shutdown), then commits. */
  async closeAll(reason: string): Promise<void> {
    for (const s of [...this.open.values()]) s.close('closed', reason);
    await this.flush();
  }

  /** Commits everything queued now, search rows included; resolves when it is on disk. */
  flush(): Promise<void> {
    this.indexSearch();
    return this.ack();
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

  /**
   * Ends the live sessions `match` selects (a revoked identity, an ended run): each one's listener
   * cuts its connection and the session is closed with the reason. Returns how many were ended.
   */
  terminate(match: (s: SessionInfo & { rawIdentity: string | null }) => boolean, reason: string, message: string): number {
    let n = 0;
    for (const s of [...this.open.values()]) {
      if (!match({ ...s.info, rawIdentity: s.rawIdentity })) continue;
      s.terminate(reason, message);
      n++;
    }
    return n;
  }

  /** @internal */
  allocCommandId(): number {
    return this.nextCommandId++;
  }

  /** @internal */
  allocFindingId(): number {
    return this.nextFindingId++;
  }

  /** @internal */
  forget(id: string): void {
    this.open.delete(id);
  }

  /**
   * @internal Queues the search and blame rows of the commands started since the last pass: their
   * pages are then written once a pass instead of in every per-command commit.
   */
  indexSearch(): void {
    if (this.searchTimer) clearTimeout(this.searchTimer);
    this.searchTimer = null;
    if (this.nextCommandId <= this.searchFrom || this.storeError) return;
    this.queue.push(S.indexSearch, [this.searchFrom, this.nextCommandId]);
    this.searchFrom = this.nextCommandId;
    const t = this.pendingTargets;
    for (let i = 0; i < t.length; i += 2) this.queue.push(S.insertTarget, [t[i], t[i + 1]]);
    this.pendingTargets = [];
  }

  /** @internal a blame row, written with the next search pass */
  addTarget(commandId: number, target: string): void {
    if (!this.storeError) this.pendingTargets.push(commandId, target);
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

  /** @internal queues a command row; it stays patchable by finishCommand until the batch is cut */
  pushCommand(id: number, params: unknown[]): void {
    if (this.storeError) return;
    this.unsentCommands.set(id, params);
    this.push(S.insertCommand, params);
  }

  /** @internal the unsent insert of a command, if its batch is not cut yet */
  unsentCommand(id: number): unknown[] | undefined {
    return this.unsentCommands.get(id);
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
  private schedule(): void {
    if (this.queue.length >= MAX_BATCH_OPS) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      if (!this.immediate) this.immediate = setImmediate(() => this.commit());
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    this.timer = setTimeout(() => this.commit(), this.opts.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS);
  }

  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;

  /** Cuts the queued rows into a batch (with the dirty sessions' counters) and commits it. */
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
    for (const s of this.dirty) s.writeCounts();
    this.dirty.clear();
    if (this.nextCommandId > this.searchFrom && !this.searchTimer) {
      this.searchTimer = setTimeout(() => {
        this.searchTimer = null;
        this.indexSearch();
        if (this.queue.length) this.schedule();
      }, SEARCH_INDEX_MS);
      this.searchTimer.unref();
    }
    this.unsentCommands.clear();
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
        this.opts.onStoreFailure?.(err);
      } catch {
        // reporting must not stop fail-closed from taking effect
      }
    }
    for (const s of this.open.values()) s.markFailed();
    for (const w of batch.waiters) w.reject(err);
    this.failPending();
  }

  private failPending(): void {
    const err = this.storeError as Error;
    const waiters = this.waiters;
    this.waiters = [];
    this.queue = [];
    this.notices = [];
    this.pendingTargets = [];
    this.unsentCommands.clear();
    for (const w of waiters) w.reject(err);
  }

  /** @internal sessions whose counters changed in the current batch */
  readonly dirty = new Set<LiveSession>();
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

/** monotonic microseconds (a double: cheaper than hrtime.bigint on the per-event path) */
const nowUs = (): number => Math.round(performance.now() * 1000);

class LiveSession implements SessionRecorder {
  readonly id: string;
  readonly info: SessionInfo;
  private seq = 0;
  private prevHash: string;
  private readonly startUs: number;
  private commandIdx = 0;
  private findingCount = 0;
  private closed = false;
  private _failed = false;
  private currentCommand: number | null = null;
  /** running commands: the masked start and the insert params their digest is computed from at finish */
  private readonly commands = new Map<number, { start: CommandStart; row: unknown[] }>();
  /** findings recorded but not yet covered by the chain: the next command.done or close event carries their digests */
  private pendingFindings: Array<[number, string]> = [];
  private terminator: ((reason: string, message: string) => void) | null = null;
  /** set by terminate(): the listener's own close while cutting the connection keeps this reason */
  private endReason: string | null = null;
  /** the identity as presented (not masked): what revocation matches on */
  readonly rawIdentity: string | null;

  constructor(
    private readonly rec: Recorder,
    open: SessionOpen,
  ) {
    this.id = newId('ses');
    this.rawIdentity = open.identity;
    this.prevHash = genesisHash(this.id);
    this.startUs = nowUs();
    const wall = new Date();
    const masker = rec.opts.masker;
    const identity = open.identity === null ? null : masker.maskText(open.identity).text;
    this.info = { id: this.id, connection: open.connection, protocol: open.protocol, identity, runId: open.runId ?? null };
    const meta = masker.maskValue((open.meta ?? {}) as Json).value;
    rec.push(S.insertSession, [
      this.id,
      identity,
      open.connection,
      open.protocol,
      open.runId ?? null,
      open.clientAddr ?? null,
      JSON.stringify(meta),
      wall.toISOString(),
      wall.getTime() * 1000,
    ]);
    rec.notify({ type: 'session', sessionId: this.id, status: 'live' });
    this.event('open', 'gateway', { connection: open.connection, protocol: open.protocol, identity, runId: open.runId ?? null, clientAddr: open.clientAddr ?? null, meta, chain: ROW_CHAIN_VERSION });
  }

  get failed(): boolean {
    return this._failed || this.rec.storeError !== null;
  }

  markFailed(): void {
    this._failed = true;
  }

  event(kind: string, direction: Direction, data: Json, opts: { commandId?: number; maskedLive?: boolean } = {}): number {
    if (this.closed) return this.seq;
    const { value, hits } = this.rec.opts.masker.maskValue(data);
    const seq = ++this.seq;
    const commandId = opts.commandId ?? this.currentCommand;
    const e = {
      seq,
      t_us: nowUs() - this.startUs,
      wall: new Date().toISOString(),
      kind,
      direction,
      command_id: commandId,
      data: JSON.stringify(value),
    };
    const hash = chainHash(this.prevHash, e);
    this.prevHash = hash;
    const id = this.id;
    this.rec.push(S.insertEvent, [id, e.seq, e.t_us, e.wall, e.kind, e.direction, e.command_id, e.data, hash]);
    this.rec.dirty.add(this);
    this.rec.notify({ type: 'events', sessionId: id, fromSeq: seq, toSeq: seq });
    if (hits.length) this.recordHits(hits, direction, commandId, seq, opts.maskedLive ?? false);
    return seq;
  }

  /** Appends a fact of the recorder's own (digests, ids): nothing in it to mask. */
  private appendFact(kind: string, commandId: number | null, data: string): void {
    if (this.closed) return;
    const e = { seq: ++this.seq, t_us: nowUs() - this.startUs, wall: new Date().toISOString(), kind, direction: 'gateway', command_id: commandId, data };
    const hash = chainHash(this.prevHash, e);
    this.prevHash = hash;
    this.rec.push(S.insertEvent, [this.id, e.seq, e.t_us, e.wall, e.kind, e.direction, e.command_id, e.data, hash]);
    this.rec.dirty.add(this);
    this.rec.notify({ type: 'events', sessionId: this.id, fromSeq: e.seq, toSeq: e.seq });
  }

  /** The pending findings as a JSON member (`,"findings":[…]`), emptying the list; '' when none. */
  private takeFindings(): string {
    if (this.pendingFindings.length === 0) return '';
    const out = `,"findings":${JSON.stringify(this.pendingFindings)}`;
    this.pendingFindings = [];
    return out;
  }

  startCommand(start: CommandStart): CommandHandle {
    const masker = this.rec.opts.masker;
    const id = this.rec.allocCommandId();
    const idx = ++this.commandIdx;
    const text = masker.maskText(start.text);
    let detail = start.detail === undefined ? null : masker.maskValue(start.detail);
    let targets = start.targets ?? [];
    const wall = new Date().toISOString();
    const startedUs = nowUs() - this.startUs;
    const startSeq = this.seq + 1;
    const masked: CommandStart = { ...start, text: text.text };
    if (targets.length === 0 && this.rec.opts.touchesOf) {
      try {
        const touched = this.rec.opts.touchesOf(this.info, masked);
        if (touched && touched.targets.length) {
          targets = touched.targets;
          const base = detail && detail.value && typeof detail.value === 'object' && !Array.isArray(detail.value) ? detail.value : {};
          detail = { hits: detail?.hits ?? [], value: { ...base, ...touched.detail } };
        }
      } catch {
        // what a command touched is an index for blame; recording the command matters more
      }
    }
    let causedBy = start.causedBy ?? null;
    if (causedBy === null && this.rec.opts.onCommandStart) {
      try {
        causedBy = this.rec.opts.onCommandStart(this.info, id, masked) ?? null;
      } catch {
        causedBy = null;
      }
    }
    const row = [
      id,
      this.id,
      idx,
      start.kind,
      text.text,
      start.classification ?? null,
      JSON.stringify(targets),
      'running',
      wall,
      startedUs,
      startSeq,
      detail ? JSON.stringify(detail.value) : null,
      causedBy,
      null,
      null,
      null,
      null,
    ];
    this.rec.pushCommand(id, row);
    if (targets.length === 1) this.rec.addTarget(id, targets[0].toLowerCase());
    else if (targets.length > 1) for (const t of new Set(targets)) this.rec.addTarget(id, t.toLowerCase());
    this.rec.dirty.add(this);
    this.rec.notify({ type: 'command', sessionId: this.id, commandId: id });
    this.commands.set(id, { start: masked, row });
    this.currentCommand = id;
    if (text.hits.length) this.recordHits(text.hits, 'client→upstream', id, null, false);
    if (detail?.hits.length) this.recordHits(detail.hits, 'client→upstream', id, null, false);
    let done = false;
    return {
      id,
      finish: (f: CommandFinish) => {
        if (done) return;
        done = true;
        this.finishCommand(id, f);
      },
    };
  }

  private finishCommand(id: number, f: CommandFinish): void {
    // finished already (a handle finishing after close() cancelled it): the sealed row stays as chained
    if (!this.commands.has(id)) return;
    const masker = this.rec.opts.masker;
    const result = f.result === undefined ? null : masker.maskValue(f.result);
    const error = f.error === undefined ? null : masker.maskText(f.error);
    const endedUs = nowUs() - this.startUs;
    const endSeq = this.seq;
    const resultJson = result ? JSON.stringify(result.value) : null;
    const errorText = error ? error.text : null;
    const unsent = this.rec.unsentCommand(id);
    if (unsent) {
      // started and finished within one batch: one finished row instead of an insert and an update
      unsent[7] = f.status;
      unsent[13] = endedUs;
      unsent[14] = endSeq;
      unsent[15] = resultJson;
      unsent[16] = errorText;
    } else {
      this.rec.push(S.finishCommand, [f.status, endedUs, endSeq, resultJson, errorText, id]);
    }
    this.rec.notify({ type: 'command', sessionId: this.id, commandId: id });
    // the result's findings first, so the command's chain event covers them
    if (result?.hits.length) {
      for (const [direction, hits] of hitsByOrigin(masker, f.result as Json, result.hits, f.resultFrom)) this.recordHits(hits, direction, id, null, false);
    }
    if (error?.hits.length) this.recordHits(error.hits, 'upstream→client', id, null, false);
    if (this.currentCommand === id) this.currentCommand = null;
    const open = this.commands.get(id);
    this.commands.delete(id);
    if (open) {
      const r = open.row;
      const digest = commandDigest(commandFacts(r, f.status, endedUs, endSeq, resultJson, errorText));
      this.appendFact(COMMAND_EVENT, id, `{"digest":"${digest}","causedBy":${r[12] === null ? 'null' : String(r[12])}${this.takeFindings()}}`);
    }
    if (open && this.rec.opts.onCommandFinish) {
      const maskedFinish: CommandFinish = { status: f.status, result: result?.value, error: error?.text };
      try {
        this.rec.opts.onCommandFinish(this.info, id, open.start, maskedFinish);
      } catch {
        // lineage is best effort; recording is not
      }
    }
  }

  /** @internal link a command to the command that caused it (lineage found after the fact) */
  setCausedBy(commandId: number, causedBy: number): void {
    if (this.closed) return;
    this.rec.push(S.setCausedBy, [causedBy, commandId]);
    const open = this.commands.get(commandId);
    // a running command's digest event carries the link; a finished one needs an event of its own
    if (open) open.row[12] = causedBy;
    else this.appendFact(LINEAGE_EVENT, commandId, JSON.stringify({ command: commandId, causedBy }));
  }

  finding(f: { category: 'secret' | 'guardrail' | 'auth'; kind: string; fp?: string; direction: Direction; commandId?: number; maskedLive?: boolean; detail?: Json }): void {
    // like events, findings after the seal would sit outside the sealed chain
    if (this.closed) return;
    const detail = f.detail === undefined ? null : JSON.stringify(this.rec.opts.masker.maskValue(f.detail).value);
    const at = new Date().toISOString();
    const commandId = f.commandId ?? this.currentCommand;
    const seq = this.seq || null;
    this.findingCount++;
    this.pushFinding([this.rec.allocFindingId(), this.id, commandId, seq, f.category, f.kind, f.fp ?? null, f.direction, f.maskedLive ? 1 : 0, detail, at]);
    this.rec.dirty.add(this);
    this.rec.notify({ type: 'finding', sessionId: this.id, kind: f.kind });
  }

  /**
   * One finding per sighting: a secret a command carries appears in its text and in the events
   * that record it (the query event, the command row), and is reported once per command and direction.
   */
  private readonly reported = new Set<string>();

  private recordHits(hits: SecretHit[], direction: Direction, commandId: number | null, seq: number | null, maskedLive: boolean): void {
    const at = new Date().toISOString();
    for (const h of hits) {
      if (commandId !== null) {
        const key = `${commandId}|${direction}|${h.kind}|${h.fp}`;
        if (this.reported.has(key)) continue;
        if (this.reported.size >= 10_000) this.reported.clear();
        this.reported.add(key);
      }
      this.findingCount++;
      this.pushFinding([this.rec.allocFindingId(), this.id, commandId, seq, 'secret', h.kind, h.fp, direction, maskedLive ? 1 : 0, null, at]);
      this.rec.notify({ type: 'finding', sessionId: this.id, kind: h.kind });
    }
    this.rec.dirty.add(this);
  }

  private pushFinding(row: [number, string, number | null, number | null, string, string, string | null, string, number, string | null, string]): void {
    this.rec.push(S.insertFinding, row);
    if (this.closed) return;
    const [id, session_id, command_id, event_seq, category, kind, fp, direction, masked_live, detail, created_at] = row;
    this.pendingFindings.push([id, findingDigest({ id, session_id, command_id, event_seq, category, kind, fp, direction, masked_live, detail, created_at })]);
  }

  /** @internal queues the counters as they stand when a batch is cut (last row of the batch) */
  writeCounts(): void {
    this.rec.pushUnscheduled(S.updateCounts, [this.seq, this.commandIdx, this.findingCount, this.prevHash, this.id]);
  }

  flushed(): Promise<void> {
    return this.rec.ack();
  }

  onTerminate(handler: (reason: string, message: string) => void): void {
    this.terminator = handler;
  }

  /** Ends the session from the gateway's side: a `terminated` event, the listener cuts the connection, then close. */
  terminate(reason: string, message: string): void {
    if (this.closed) return;
    this.event('terminated', 'gateway', { reason, message });
    this.endReason = reason;
    const cut = this.terminator;
    this.terminator = null;
    try {
      cut?.(reason, message);
    } finally {
      this.close('closed', reason);
    }
  }

  updateMeta(patch: Record<string, Json>): void {
    if (this.closed) return;
    this.rec.push(S.patchSessionMeta, [JSON.stringify(this.rec.opts.masker.maskValue(patch as Json).value), this.id]);
  }

  close(status: SessionStatus = 'closed', reason?: string): void {
    if (this.closed) return;
    if (this.endReason !== null) {
      status = 'closed';
      reason = this.endReason;
    }
    for (const [id] of this.commands) this.finishCommand(id, { status: 'cancelled', error: 'session ended before the command finished' });
    const masked = reason === undefined ? null : this.rec.opts.masker.maskText(reason);
    if (masked?.hits.length) this.recordHits(masked.hits, 'gateway', null, null, false);
    const maskedReason = masked ? masked.text : null;
    this.appendFact('close', null, `{"status":${JSON.stringify(status)},"reason":${JSON.stringify(maskedReason)}${this.takeFindings()}}`);
    this.closed = true;
    // a closed session's rows are all indexed (verify holds it to that): in the closing commit
    this.rec.indexSearch();
    const lastHash = this.prevHash;
    const seal = signSeal(this.rec.opts.signingKey, sealMessage(this.id, this.seq, lastHash));
    const endedAt = new Date().toISOString();
    this.rec.push(S.closeSession, [endedAt, status, maskedReason, seal, this.rec.opts.keyFingerprint, this.id]);
    this.rec.notify({ type: 'session', sessionId: this.id, status });
    this.rec.forget(this.id);
  }
}

/** The digest fields of a command from its insert params (see SQL[S.insertCommand]) and its finish. */
function commandFacts(r: unknown[], status: string, endedUs: number, endSeq: number, result: string | null, error: string | null): CommandFacts {
  return {
    id: r[0] as number,
    session_id: r[1] as string,
    idx: r[2] as number,
    kind: r[3] as string,
    text: r[4] as string,
    classification: r[5] as string | null,
    targets: r[6] as string,
    status,
    started_at: r[8] as string,
    started_us: r[9] as number,
    ended_us: endedUs,
    start_seq: r[10] as number,
    end_seq: endSeq,
    detail: r[11] as string | null,
    result,
    error,
  };
}

/**
 * Splits a result's secret hits by who sent the part they were found in. Only called when the
 * result holds a secret: each part named in `resultFrom` is masked alone to learn its secrets and,
 * if one of them is among the hits, the rest of the result (named parts left out) is masked again,
 * so a secret the client sent and the upstream echoed back is a finding in both directions.
 */
function hitsByOrigin(masker: Masker, result: Json, hits: SecretHit[], resultFrom: Record<string, Direction> | undefined): Map<Direction, SecretHit[]> {
  const key = (h: SecretHit) => `${h.kind}|${h.fp}`;
  const parts = Object.entries(resultFrom ?? {}).map(([p, d]) => {
    const keys = p.split('.');
    let v: Json | undefined = result;
    for (const k of keys) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? v[k] : undefined;
    const found = v === undefined || v === null ? [] : masker.maskValue(v, keys[keys.length - 1]).hits;
    return { d, keys, found: new Set(found.map(key)) };
  });
  const out = new Map<Direction, SecretHit[]>();
  if (!hits.some((h) => parts.some((p) => p.found.has(key(h))))) {
    out.set('upstream→client', hits);
    return out;
  }
  const rest = structuredClone(result);
  for (const p of parts) {
    let o: Json | undefined = rest;
    for (const k of p.keys.slice(0, -1)) o = o !== null && typeof o === 'object' && !Array.isArray(o) ? o[k] : undefined;
    if (o !== null && typeof o === 'object' && !Array.isArray(o)) delete o[p.keys[p.keys.length - 1]];
  }
  const fromUpstream = new Set(masker.maskValue(rest).hits.map(key));
  const add = (d: Direction, h: SecretHit) => {
    const list = out.get(d) ?? [];
    list.push(h);
    out.set(d, list);
  };
  for (const h of hits) {
    const k = key(h);
    const from = new Set(parts.filter((p) => p.found.has(k)).map((p) => p.d));
    if (fromUpstream.has(k) || from.size === 0) from.add('upstream→client');
    for (const d of from) add(d, h);
  }
  return out;
}
