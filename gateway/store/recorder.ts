import type { KeyObject } from 'node:crypto';
import type { Db } from './db';
import { S } from './recorder-worker';
import { BatchWriter } from './batch-writer';
import { LiveSession } from './live-session';
import type { CommandFinish, CommandStart, Json, Masker, SessionOpen, SessionRecorder } from '../common/types';

export type { RecorderNotice } from './batch-writer';

/** how long a live command may wait for its search and blame rows: written once per pass, not per commit */
const SEARCH_INDEX_MS = 250;

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
   * Journal batches and load them on a writer thread with its own connection (default true for
   * a store file): the event loop that relays traffic then never waits on SQLite.
   */
  writerThread?: boolean;
  /** the least time between two of the writer thread's transactions (default 5 ms) */
  loadIntervalMs?: number;
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
 * (masking and the hash chain are computed here, on the caller's turn); rows are cut into a
 * batch shortly after and, when the store is a file, written to the record journal, which a
 * writer thread loads into the store in large transactions. `flushed()` resolves once they are
 * durable (journal or WAL: they survive a crash of this process); `flush()` once readers see them.
 * Every payload is masked here, so nothing unmasked can reach the store by any path.
 */
export class Recorder extends BatchWriter {
  private nextCommandId: number;
  /** finding ids are chosen here, like command ids, so the chain can name a finding before it is committed */
  private nextFindingId: number;
  private readonly open = new Map<string, LiveSession>();
  /** insertCommand params of the batch being built, by command id: a finish before the cut patches them */
  private readonly unsentCommands = new Map<number, unknown[]>();
  /** commands from this id on are not in the search index yet */
  private searchFrom: number;
  private searchTimer: NodeJS.Timeout | null = null;
  /** blame rows (command id, target) of commands not yet indexed: written with the next search pass */
  private pendingTargets: Array<number | string> = [];

  constructor(
    db: Db,
    readonly opts: RecorderOptions,
  ) {
    super(db, opts);
    const max = db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM commands').get() as { m: number };
    this.nextCommandId = max.m + 1;
    this.searchFrom = this.nextCommandId;
    this.nextFindingId = (db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM findings').get() as { m: number }).m + 1;
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

  /** Writes everything queued now, search rows included; resolves when it is in the store, where readers see it. */
  flush(): Promise<void> {
    this.indexSearch();
    return this.settle();
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

  protected beforeCut(): void {
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
  }

  protected storeFailed(): void {
    for (const s of this.open.values()) s.markFailed();
  }

  protected dropped(): void {
    this.pendingTargets = [];
    this.unsentCommands.clear();
  }

  /** @internal sessions whose counters changed in the current batch */
  readonly dirty = new Set<LiveSession>();
}
