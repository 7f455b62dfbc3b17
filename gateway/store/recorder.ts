import type { KeyObject } from 'node:crypto';
import type { Db } from './db';
import { chainHash, genesisHash, sealMessage, signSeal } from './chain';
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
} from '../core/types';

/** What the recorder tells the live feed (control API WebSocket) after each commit. */
export type RecorderNotice =
  | { type: 'session'; sessionId: string; status: SessionStatus }
  | { type: 'events'; sessionId: string; fromSeq: number; toSeq: number }
  | { type: 'command'; sessionId: string; commandId: number }
  | { type: 'finding'; sessionId: string | null; kind: string };

type Op = () => void;

const DEFAULT_COMMIT_INTERVAL_MS = 4;
const MAX_BATCH_OPS = 4000;

export interface RecorderOptions {
  masker: Masker;
  signingKey: KeyObject;
  /** public key fingerprint stored beside each seal */
  keyFingerprint: string;
  /** hook to see commands as they start (lineage); must not throw */
  onCommandStart?: (session: SessionInfo, commandId: number, start: CommandStart) => number | null | void;
  onCommandFinish?: (session: SessionInfo, commandId: number, start: CommandStart, finish: CommandFinish) => void;
  /** how long appends wait to be grouped into one commit (default 4 ms) */
  commitIntervalMs?: number;
}

export interface SessionInfo {
  id: string;
  connection: string;
  protocol: string;
  identity: string | null;
  runId: string | null;
}

/**
 * The only writer of sessions, events, commands and findings. Listeners append synchronously;
 * appends are committed in batched transactions on the next turn of the event loop, and
 * `flushed()` resolves once they are on disk (WAL: they survive a crash of this process).
 * Every payload is masked here, so nothing unmasked can reach the store by any path.
 */
export class Recorder {
  private queue: Op[] = [];
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private scheduled = false;
  private nextCommandId: number;
  private readonly open = new Map<string, LiveSession>();
  private listeners: Array<(n: RecorderNotice) => void> = [];
  private notices: RecorderNotice[] = [];
  /** set once a commit failed: every session is failed from then on (fail-closed) */
  storeError: Error | null = null;
  readonly stmts;

  constructor(
    readonly db: Db,
    readonly opts: RecorderOptions,
  ) {
    const max = db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM commands').get() as { m: number };
    this.nextCommandId = max.m + 1;
    this.stmts = {
      insertSession: db.prepare(
        `INSERT INTO sessions (id, identity, connection, protocol, run_id, client_addr, meta, started_at, started_us, status)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'live')`,
      ),
      insertEvent: db.prepare(
        'INSERT INTO events (session_id, seq, t_us, wall, kind, direction, command_id, data, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      insertCommand: db.prepare(
        `INSERT INTO commands (id, session_id, idx, kind, text, classification, targets, status, started_at, started_us, start_seq, detail, caused_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)`,
      ),
      insertTarget: db.prepare('INSERT INTO command_targets (command_id, target) VALUES (?, ?)'),
      finishCommand: db.prepare('UPDATE commands SET status = ?, ended_us = ?, end_seq = ?, result = ?, error = ? WHERE id = ?'),
      setCausedBy: db.prepare('UPDATE commands SET caused_by = ? WHERE id = ?'),
      insertFinding: db.prepare(
        `INSERT INTO findings (session_id, command_id, event_seq, category, kind, fp, direction, masked_live, detail, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateCounts: db.prepare('UPDATE sessions SET event_count = ?, command_count = ?, finding_count = ?, last_hash = ? WHERE id = ?'),
      closeSession: db.prepare('UPDATE sessions SET ended_at = ?, status = ?, end_reason = ?, seal = ?, seal_key = ? WHERE id = ?'),
      insertFailed: db.prepare('INSERT INTO failed_attempts (connection, protocol, identity, client_addr, reason, at) VALUES (?, ?, ?, ?, ?, ?)'),
    };
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

  /** Sessions not yet closed, e.g. to close them all at shutdown. */
  openSessions(): SessionRecorder[] {
    return [...this.open.values()];
  }

  recordFailedAttempt(a: { connection: string; protocol: string; identity: string | null; clientAddr?: string; reason: string }): void {
    const at = new Date().toISOString();
    const identity = a.identity === null ? null : this.opts.masker.maskText(a.identity).text;
    const reason = this.opts.masker.maskText(a.reason).text;
    this.enqueue(() => {
      this.stmts.insertFailed.run(a.connection, a.protocol, identity, a.clientAddr ?? null, reason, at);
      this.stmts.insertFinding.run(null, null, null, 'auth', 'failed-login', null, 'client→upstream', 0, JSON.stringify({ connection: a.connection, identity, reason, clientAddr: a.clientAddr ?? null }), at);
    });
    this.notify({ type: 'finding', sessionId: null, kind: 'failed-login' });
  }

  /** Closes every open session (shutdown), then commits. */
  async closeAll(reason: string): Promise<void> {
    for (const s of [...this.open.values()]) s.close('closed', reason);
    await this.flush();
  }

  /** Commits everything queued now; resolves when it is on disk. */
  flush(): Promise<void> {
    if (this.storeError) return Promise.reject(this.storeError);
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /** @internal */
  allocCommandId(): number {
    return this.nextCommandId++;
  }

  /** @internal */
  forget(id: string): void {
    this.open.delete(id);
  }

  /** @internal */
  enqueue(op: Op): void {
    this.queue.push(op);
    this.schedule();
  }

  /** @internal */
  notify(n: RecorderNotice): void {
    this.notices.push(n);
  }

  /**
   * Commits are grouped: the first append arms a short timer, and a large backlog commits at
   * once. A commit costs far more than a row, so one per event-loop turn would bound a busy
   * proxy at a few thousand commands a second.
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

  private commit(): void {
    this.scheduled = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.immediate = null;
    const ops = this.queue;
    const waiters = this.waiters;
    const notices = this.notices;
    this.queue = [];
    this.waiters = [];
    this.notices = [];
    if (this.storeError) {
      for (const w of waiters) w.reject(this.storeError);
      return;
    }
    try {
      this.db.transaction(() => {
        for (const op of ops) op();
        for (const s of this.dirty) s.writeCounts();
      })();
      this.dirty.clear();
    } catch (err) {
      this.storeError = err as Error;
      for (const s of this.open.values()) s.markFailed();
      for (const w of waiters) w.reject(this.storeError);
      return;
    }
    for (const w of waiters) w.resolve();
    if (this.listeners.length) {
      for (const n of coalesce(notices)) for (const l of this.listeners) l(n);
    }
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

const nowUs = (): bigint => process.hrtime.bigint() / 1000n;

class LiveSession implements SessionRecorder {
  readonly id: string;
  readonly info: SessionInfo;
  private seq = 0;
  private prevHash: string;
  private readonly startUs: bigint;
  private commandIdx = 0;
  private findingCount = 0;
  private closed = false;
  private _failed = false;
  private currentCommand: number | null = null;
  private readonly commands = new Map<number, CommandStart>();

  constructor(
    private readonly rec: Recorder,
    open: SessionOpen,
  ) {
    this.id = newId('ses');
    this.prevHash = genesisHash(this.id);
    this.startUs = nowUs();
    const wall = new Date();
    const masker = rec.opts.masker;
    const identity = open.identity === null ? null : masker.maskText(open.identity).text;
    this.info = { id: this.id, connection: open.connection, protocol: open.protocol, identity, runId: open.runId ?? null };
    const meta = masker.maskValue((open.meta ?? {}) as Json).value;
    rec.enqueue(() =>
      rec.stmts.insertSession.run(
        this.id,
        identity,
        open.connection,
        open.protocol,
        open.runId ?? null,
        open.clientAddr ?? null,
        JSON.stringify(meta),
        wall.toISOString(),
        wall.getTime() * 1000,
      ),
    );
    rec.notify({ type: 'session', sessionId: this.id, status: 'live' });
    this.event('open', 'gateway', { connection: open.connection, protocol: open.protocol, identity, runId: open.runId ?? null, clientAddr: open.clientAddr ?? null, meta });
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
      t_us: Number(nowUs() - this.startUs),
      wall: new Date().toISOString(),
      kind,
      direction,
      command_id: commandId,
      data: JSON.stringify(value),
    };
    const hash = chainHash(this.prevHash, e);
    this.prevHash = hash;
    const id = this.id;
    this.rec.enqueue(() => this.rec.stmts.insertEvent.run(id, e.seq, e.t_us, e.wall, e.kind, e.direction, e.command_id, e.data, hash));
    this.rec.dirty.add(this);
    this.rec.notify({ type: 'events', sessionId: id, fromSeq: seq, toSeq: seq });
    if (hits.length) this.recordHits(hits, direction, commandId, seq, opts.maskedLive ?? false);
    return seq;
  }

  startCommand(start: CommandStart): CommandHandle {
    const masker = this.rec.opts.masker;
    const id = this.rec.allocCommandId();
    const idx = ++this.commandIdx;
    const text = masker.maskText(start.text);
    const detail = start.detail === undefined ? null : masker.maskValue(start.detail);
    const targets = start.targets ?? [];
    const wall = new Date().toISOString();
    const startedUs = Number(nowUs() - this.startUs);
    const startSeq = this.seq + 1;
    const masked: CommandStart = { ...start, text: text.text };
    let causedBy = start.causedBy ?? null;
    if (causedBy === null && this.rec.opts.onCommandStart) {
      try {
        causedBy = this.rec.opts.onCommandStart(this.info, id, masked) ?? null;
      } catch {
        causedBy = null;
      }
    }
    this.rec.enqueue(() => {
      this.rec.stmts.insertCommand.run(
        id,
        this.id,
        idx,
        start.kind,
        text.text,
        start.classification ?? null,
        JSON.stringify(targets),
        wall,
        startedUs,
        startSeq,
        detail ? JSON.stringify(detail.value) : null,
        causedBy,
      );
      for (const t of new Set(targets)) this.rec.stmts.insertTarget.run(id, t.toLowerCase());
    });
    this.rec.dirty.add(this);
    this.rec.notify({ type: 'command', sessionId: this.id, commandId: id });
    this.commands.set(id, masked);
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
    const masker = this.rec.opts.masker;
    const result = f.result === undefined ? null : masker.maskValue(f.result);
    const error = f.error === undefined ? null : masker.maskText(f.error);
    const endedUs = Number(nowUs() - this.startUs);
    const endSeq = this.seq;
    this.rec.enqueue(() =>
      this.rec.stmts.finishCommand.run(f.status, endedUs, endSeq, result ? JSON.stringify(result.value) : null, error ? error.text : null, id),
    );
    this.rec.notify({ type: 'command', sessionId: this.id, commandId: id });
    if (result?.hits.length) this.recordHits(result.hits, 'upstream→client', id, null, false);
    if (error?.hits.length) this.recordHits(error.hits, 'upstream→client', id, null, false);
    if (this.currentCommand === id) this.currentCommand = null;
    const start = this.commands.get(id);
    this.commands.delete(id);
    if (start && this.rec.opts.onCommandFinish) {
      const maskedFinish: CommandFinish = { status: f.status, result: result?.value, error: error?.text };
      try {
        this.rec.opts.onCommandFinish(this.info, id, start, maskedFinish);
      } catch {
        // lineage is best effort; recording is not
      }
    }
  }

  /** @internal link a command to the command that caused it (lineage found after the fact) */
  setCausedBy(commandId: number, causedBy: number): void {
    this.rec.enqueue(() => this.rec.stmts.setCausedBy.run(causedBy, commandId));
  }

  finding(f: { category: 'secret' | 'guardrail' | 'auth'; kind: string; fp?: string; direction: Direction; commandId?: number; maskedLive?: boolean; detail?: Json }): void {
    const detail = f.detail === undefined ? null : JSON.stringify(this.rec.opts.masker.maskValue(f.detail).value);
    const at = new Date().toISOString();
    const commandId = f.commandId ?? this.currentCommand;
    const seq = this.seq || null;
    this.findingCount++;
    this.rec.enqueue(() =>
      this.rec.stmts.insertFinding.run(this.id, commandId, seq, f.category, f.kind, f.fp ?? null, f.direction, f.maskedLive ? 1 : 0, detail, at),
    );
    this.rec.dirty.add(this);
    this.rec.notify({ type: 'finding', sessionId: this.id, kind: f.kind });
  }

  private recordHits(hits: SecretHit[], direction: Direction, commandId: number | null, seq: number | null, maskedLive: boolean): void {
    const at = new Date().toISOString();
    for (const h of hits) {
      this.findingCount++;
      this.rec.enqueue(() =>
        this.rec.stmts.insertFinding.run(this.id, commandId, seq, 'secret', h.kind, h.fp, direction, maskedLive ? 1 : 0, null, at),
      );
      this.rec.notify({ type: 'finding', sessionId: this.id, kind: h.kind });
    }
    this.rec.dirty.add(this);
  }

  /** @internal runs inside the commit transaction */
  writeCounts(): void {
    this.rec.stmts.updateCounts.run(this.seq, this.commandIdx, this.findingCount, this.prevHash, this.id);
  }

  flushed(): Promise<void> {
    return this.rec.flush();
  }

  close(status: SessionStatus = 'closed', reason?: string): void {
    if (this.closed) return;
    for (const [id] of this.commands) this.finishCommand(id, { status: 'cancelled', error: 'session ended before the command finished' });
    this.event('close', 'gateway', { status, reason: reason ?? null });
    this.closed = true;
    const lastHash = this.prevHash;
    const seal = signSeal(this.rec.opts.signingKey, sealMessage(this.id, this.seq, lastHash));
    const endedAt = new Date().toISOString();
    const maskedReason = reason === undefined ? null : this.rec.opts.masker.maskText(reason).text;
    this.rec.enqueue(() => this.rec.stmts.closeSession.run(endedAt, status, maskedReason, seal, this.rec.opts.keyFingerprint, this.id));
    this.rec.notify({ type: 'session', sessionId: this.id, status });
    this.rec.forget(this.id);
  }
}
