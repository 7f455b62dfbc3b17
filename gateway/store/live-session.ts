/**
 * One live session as the recorder writes it: the SessionRecorder a listener holds. Events,
 * commands and findings are masked and hash-chained here, on the caller's turn; their rows go
 * to the recorder's batching writer, and the session is sealed when it closes.
 */
import { performance } from 'node:perf_hooks';
import { S } from './recorder-worker';
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
import type { Recorder, SessionInfo } from './recorder';

/** monotonic microseconds (a double: cheaper than hrtime.bigint on the per-event path) */
const nowUs = (): number => Math.round(performance.now() * 1000);

export class LiveSession implements SessionRecorder {
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
