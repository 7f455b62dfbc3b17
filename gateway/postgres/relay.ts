/**
 * The relay after login: whole protocol messages pass both ways, parsed on the way. Client
 * messages are checked (framing, policy, fail-closed) before they are forwarded; server bytes
 * are framed, recorded alongside (heads, counts, hashes — never one event per row) and
 * forwarded in the chunks they arrived in. Responses are matched to requests through a queue,
 * which is what makes pipelining and gateway-made errors come out in order.
 */
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { ListenerContext } from '../core/listener';
import type { CommandStatus, Json, SessionRecorder } from '../common/types';
import { parseClientMessage, ProtocolError, type RawParam } from './client-messages';
import {
  decodeCString, decodeFields, decodeNotification, decodeRowDescription, renderValue,
} from './server-messages';
import { functionCallText } from './function-oids';
import {
  copyColumns, forgetTable, learnTable, maskExecuteText, maskParams, maskStatementText, scrubMessage,
  withLearnedColumns, type Sighting,
} from './secret-columns';
import { analyzeSql, type StatementInfo } from './sql-info';
import * as wire from './wire';
import { blockedMessage, decisionDetail, holdTerms } from '../policy/decision';
import { deniedMessage, recordApprovalOutcome, sha256, type ApprovalDetails, type ApprovalOutcome, type HeldCommand, type PendingApproval } from '../approvals';
import type { PolicyDecision } from '../common/types';
import { checkServerHeader, clientHeaderCheck, frames, maxMessageBytes, MessageTooLarge } from './relay-framing';
import { ResponseQueue, runsOf, type Pending } from './relay-queue';
import { captureCopyData, captureRow, Running, settleResult, tagRowCount, type CaptureOptions, type Portal, type Prepared, type Recordable } from './relay-capture';

export { DEFAULT_MAX_MESSAGE_BYTES } from './relay-framing';

/** A command whose recording waits until the chunk that carried it has been forwarded. */
interface ToStart {
  run: Running;
  rec: Recordable;
  extra: { portal: string; maxRows: number } | null;
}

export interface RelayOptions {
  ctx: ListenerContext;
  session: SessionRecorder;
  identity: string;
  runId?: string | null;
  client: Duplex;
  upstream: Duplex;
  clientLeftover: Buffer;
  upstreamLeftover: Buffer;
  txStatus: string;
  onEnd(): void;
  /**
   * The planner's estimate for a held statement, from a connection of the gateway's own.
   * `safeMessages`: the server's error text may be shown (the statement held no masked literal).
   */
  explain?(sql: string, safeMessages: boolean): Promise<ApprovalDetails>;
}

const TYPE_D = 0x44;
const TYPE_COPYDATA = 0x64;

export class Relay {
  private readonly ctx: ListenerContext;
  private readonly session: SessionRecorder;
  private readonly client: Duplex;
  private readonly upstream: Duplex;
  private readonly headRows: number;
  private readonly maxValue: number;
  private readonly live: boolean;
  private readonly capture: CaptureOptions;
  private readonly checkClientHeader: (type: number, length: number) => number;
  private readonly statements = new Map<string, Prepared>();
  private readonly portals = new Map<string, Portal>();
  /** SQL-level PREPARE name → its parameters bound to secret columns (for EXECUTE name(…)) */
  private readonly sqlPrepared = new Map<string, Array<{ index: number; column: string }>>();
  private readonly queue = new ResponseQueue();
  private readonly pending: Pending[] = this.queue.items;
  private readonly done: Running[] = [];
  private txStatus: string;
  private skipUntilSync = false;
  private ended = false;
  private terminated = false;
  /** the server's own FATAL/PANIC, already relayed: the client has been told why it ends */
  private serverFatal: string | null = null;
  // framing state, per direction
  private clientCarry: Buffer[] = [];
  private clientCarryLen = 0;
  private serverCarry: Buffer[] = [];
  private serverCarryLen = 0;
  // contiguous DataRow bytes awaiting one hash update
  private hashRun: { run: Running; buf: Buffer; start: number; end: number } | null = null;
  private clientPaused = false;
  private upstreamPaused = false;
  // Recording is kept off the forwarding path: commands are recorded after their chunk went
  // upstream, results after the server chunk went to the client (same turn, same order).
  private toStart: ToStart[] = [];
  /** client bytes of the current chunk, held until its commands are recorded (fail-closed) */
  private collect: Buffer[] | null = null;
  private startedInChunk = false;
  private holding = false;
  private heldChunks: Buffer[] = [];
  /** a statement a guardrail held: the client's bytes from it on wait for a human's decision */
  private awaiting: HeldCommand | null = null;
  /** decisions on the held message being read again, by rule and the recorded text's SHA-256 */
  private readonly outcomes = new Map<string, { decision: PolicyDecision; held: PendingApproval; outcome: ApprovalOutcome }>();
  /** approved statements whose finding waits for the command it approved */
  private readonly approvedRecs = new WeakMap<Recordable, { decision: PolicyDecision; held: PendingApproval; outcome: ApprovalOutcome }>();

  constructor(private readonly opts: RelayOptions) {
    this.ctx = opts.ctx;
    this.session = opts.session;
    this.client = opts.client;
    this.upstream = opts.upstream;
    this.txStatus = opts.txStatus;
    this.headRows = opts.ctx.recording?.headRows ?? 100;
    this.maxValue = Math.min(opts.ctx.recording?.payloadHead ?? 65536, 8192);
    this.live = opts.ctx.connection.mask === 'live';
    this.capture = { masker: opts.ctx.masker, live: this.live, headRows: this.headRows, maxValue: this.maxValue };
    this.checkClientHeader = clientHeaderCheck(maxMessageBytes(opts.ctx.connection.options));
  }

  start(): void {
    this.session.onTerminate((_reason, message) => this.shutdown(message));
    this.client.on('data', (d: Buffer) => this.guard('client', () => this.onClientData(d)));
    this.upstream.on('data', (d: Buffer) => this.guard('server', () => this.onServerData(d)));
    this.client.on('drain', () => this.resumeUpstream());
    this.upstream.on('drain', () => this.resumeClient());
    this.client.on('error', () => this.end('closed', 'client connection error'));
    this.client.on('close', () => this.end('closed', this.terminated ? undefined : 'client disconnected'));
    this.upstream.on('error', (err: Error) => this.upstreamDied(`upstream connection error: ${err.message}`));
    this.upstream.on('close', () => this.upstreamDied('upstream closed the connection'));
    if (this.opts.upstreamLeftover.length) this.guard('server', () => this.onServerData(this.opts.upstreamLeftover));
    if (this.opts.clientLeftover.length) this.guard('client', () => this.onClientData(this.opts.clientLeftover));
  }

  /** Ends the session from outside (gateway shutdown). */
  shutdown(reason: string): void {
    this.writeClient(wire.errorResponse({ severity: 'FATAL', code: '57P01', message: `terminating connection: ${reason}` }));
    this.end('closed', reason);
  }

  private guard(side: 'client' | 'server', fn: () => void): void {
    if (this.ended) return;
    try {
      fn();
    } catch (err) {
      if (err instanceof MessageTooLarge) {
        this.writeClient(wire.errorResponse({ severity: 'FATAL', code: '54000', message: `Flightlog: ${err.message}` }));
        this.end('error', err.message);
      } else if (err instanceof ProtocolError && side === 'server') {
        this.upstreamDied(`upstream protocol error: ${err.message}`);
      } else if (err instanceof ProtocolError) {
        this.writeClient(wire.errorResponse({ severity: 'FATAL', code: '08P01', message: `invalid frontend message: ${err.message}` }));
        this.end('error', `protocol violation: ${err.message}`);
      } else {
        const msg = err instanceof Error ? err.message : String(err);
        this.ctx.log.error(`postgres session ${this.session.id}: ${this.ctx.masker.maskText(msg).text}`);
        this.writeClient(wire.errorResponse({ severity: 'FATAL', code: 'XX000', message: 'Flightlog gateway internal error; session ended' }));
        this.end('error', 'gateway internal error');
      }
    }
  }

  private upstreamDied(reason: string): void {
    if (this.ended) return;
    if (this.terminated) {
      this.end('closed');
      return;
    }
    // a second FATAL after the server's own would surface as a separate error in clients
    if (this.serverFatal !== null) {
      this.end('error', `upstream ended the session: ${this.serverFatal}`);
      return;
    }
    this.writeClient(wire.errorResponse({ severity: 'FATAL', code: '08006', message: `Flightlog: ${reason}` }));
    this.end('error', reason);
  }

  private end(status: 'closed' | 'error', reason?: string): void {
    if (this.ended) return;
    this.ended = true;
    this.awaiting?.cancel();
    this.flushStarts();
    this.flushHashRun();
    for (const p of this.pending) this.abandon(p, 'connection ended before the result');
    this.pending.length = 0;
    this.finishDone();
    try {
      this.session.close(status, reason);
    } catch {
      /* the recorder reports its own failures */
    }
    this.client.end();
    // a client that said Terminate gets a clean upstream goodbye; any other end tears it down now
    if (this.terminated) this.upstream.end();
    else this.upstream.destroy();
    setTimeout(() => this.upstream.destroy(), 1000).unref();
    setTimeout(() => this.client.destroy(), 1000).unref();
    this.opts.onEnd();
  }

  // ---------------------------------------------------------------- writing with backpressure

  private writeClient(buf: Buffer): void {
    if (this.client.destroyed || !this.client.writable) return;
    if (!this.client.write(buf) && !this.upstreamPaused) {
      this.upstreamPaused = true;
      this.upstream.pause();
    }
  }

  private writeUpstream(buf: Buffer): void {
    if (this.collect) {
      this.collect.push(buf);
      return;
    }
    if (this.upstream.destroyed || !this.upstream.writable) return;
    if (!this.upstream.write(buf) && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
    }
  }

  private resumeUpstream(): void {
    if (this.upstreamPaused) {
      this.upstreamPaused = false;
      this.upstream.resume();
    }
  }

  private resumeClient(): void {
    if (this.clientPaused) {
      this.clientPaused = false;
      // a held chunk keeps the client paused; release() resumes it
      if (!this.holding && !this.awaiting) this.client.resume();
    }
  }

  // ---------------------------------------------------------------- client → upstream

  private fwdStart = 0;
  private fwdEnd = 0;
  private fwdBuf: Buffer | null = null;

  private onClientData(chunk: Buffer): void {
    if (this.holding || this.awaiting) {
      this.heldChunks.push(chunk);
      return;
    }
    this.fwdBuf = null;
    this.collect = [];
    const lastBefore = this.pending.length ? this.pending[this.pending.length - 1] : null;
    const r = frames(chunk, this.clientCarry, this.clientCarryLen, this.checkClientHeader, (buf, start, len, inChunk) => {
      const forward = this.onClientMessage(buf, start, len);
      // the held message has been read again with its decisions: they cover nothing else
      if (!this.awaiting) this.outcomes.clear();
      if (!forward) return;
      if (inChunk && this.fwdBuf === buf && this.fwdEnd === start) {
        this.fwdEnd = start + len;
        return;
      }
      this.flushClientForward();
      if (inChunk) {
        this.fwdBuf = buf;
        this.fwdStart = start;
        this.fwdEnd = start + len;
      } else {
        this.writeUpstream(buf.subarray(start, start + len));
      }
    }, () => this.awaiting !== null);
    this.clientCarry = r.carry;
    this.clientCarryLen = r.carryLen;
    // read again from the held message once a human decided
    if (r.rest) this.heldChunks.unshift(r.rest);
    this.flushClientForward();
    const out = this.collect;
    this.collect = null;
    this.flushStarts();
    if (this.startedInChunk) {
      this.startedInChunk = false;
      const from = lastBefore === null ? 0 : this.pending.indexOf(lastBefore) + 1;
      this.holdUntilRecorded(out, this.pending.slice(from));
      return;
    }
    for (const b of out) this.writeUpstream(b);
    if (this.terminated) this.end('closed');
  }

  /**
   * Fail-closed: the bytes of a chunk that starts commands go upstream only once the store has
   * committed those commands. The client is paused meanwhile; one commit covers every command of
   * a pipelined chunk. If the store fails, none of it is sent: each held message is answered
   * with an ErrorResponse instead, in order.
   */
  private holdUntilRecorded(out: Buffer[], held: Pending[]): void {
    this.holding = true;
    this.client.pause();
    this.session.flushed().then(
      () => this.release(out),
      () => this.guard('client', () => this.refuseHeld(held)),
    );
  }

  private release(out: Buffer[] | null): void {
    this.holding = false;
    if (this.ended) return;
    if (out) for (const b of out) this.writeUpstream(b);
    if (this.terminated) {
      this.end('closed');
      return;
    }
    if (this.awaiting) return;
    if (!this.clientPaused) this.client.resume();
    const queued = this.heldChunks;
    this.heldChunks = [];
    for (let i = 0; i < queued.length; i++) {
      this.guard('client', () => this.onClientData(queued[i]));
      if (this.holding || this.awaiting) {
        this.heldChunks.push(...queued.slice(i + 1));
        return;
      }
    }
  }

  private refuseHeld(held: Pending[]): void {
    if (this.ended) return;
    this.ctx.log.error(`postgres session ${this.session.id}: recording failed; statement not forwarded`);
    const refusal = (): Extract<Pending, { kind: 'synthetic' }> => ({ kind: 'synthetic', error: refusedError(), ready: false });
    const replaced: Pending[] = [];
    let open: Extract<Pending, { kind: 'synthetic' }> | null = null;
    for (const p of held) {
      const runs = p.kind === 'query' ? p.runs : p.kind === 'execute' || p.kind === 'fcall' ? [p.run] : [];
      for (const r of runs) r.handle?.finish({ status: 'blocked', error: REFUSED });
      if (p.kind === 'synthetic') {
        replaced.push(p);
        open = p.ready ? null : p;
      } else if (p.kind === 'query' || p.kind === 'fcall') {
        replaced.push({ kind: 'synthetic', error: refusedError(), ready: true });
        open = null;
      } else if (p.kind === 'sync') {
        if (open) open.ready = true;
        else replaced.push({ kind: 'synthetic', error: Buffer.alloc(0), ready: true });
        open = null;
      } else if (!open) {
        open = refusal();
        replaced.push(open);
      }
    }
    const heldSet = new Set(held);
    const kept = this.pending.filter((p) => !heldSet.has(p));
    this.pending.length = 0;
    this.pending.push(...kept, ...replaced);
    // an extended-protocol batch refused before its Sync: skip to the Sync, as the server would
    if (open) this.skipUntilSync = true;
    this.emitSynthetics();
    this.release(null);
  }

  private flushClientForward(): void {
    if (this.fwdBuf && this.fwdEnd > this.fwdStart) this.writeUpstream(this.fwdBuf.subarray(this.fwdStart, this.fwdEnd));
    this.fwdBuf = null;
    this.fwdStart = this.fwdEnd = 0;
  }

  /** Returns whether the frame goes upstream. */
  private onClientMessage(buf: Buffer, start: number, len: number): boolean {
    if (this.terminated) return false;
    const msg = parseClientMessage(buf, start, len);
    if (this.skipUntilSync && msg.type !== 'Sync') return false;
    switch (msg.type) {
      case 'Query':
        return this.onQuery(msg.sql);
      case 'Parse': {
        if (this.refuseIfFailed(false)) return false;
        const rec = this.recordable(analyzeSql(msg.sql)[0]);
        if (!this.allowed(rec, false, !/\$\d/.test(msg.sql))) return false;
        this.statements.set(msg.name, { sql: msg.sql, rec, paramTypes: msg.paramTypes, columns: null });
        this.pending.push({ kind: 'parse', sql: msg.sql, rec });
        return true;
      }
      case 'Bind': {
        if (this.refuseIfFailed(false)) return false;
        const stmt = this.statements.get(msg.statement) ?? null;
        const sightings: Sighting[] = [];
        const rendered = msg.params.map((p, i) => this.renderParam(p, stmt?.paramTypes[i] ?? 0));
        const params = maskParams(this.ctx.masker, rendered, stmt?.rec.secretParams, sightings);
        this.portals.set(msg.portal, { stmt, params, sightings, resultFormats: msg.resultFormats, columns: null });
        this.pending.push({ kind: 'bind' });
        return true;
      }
      case 'Describe': {
        const target = msg.target === 'S' ? this.statements.get(msg.name) : this.portals.get(msg.name);
        this.pending.push({ kind: 'describe', target: target ?? null });
        return true;
      }
      case 'Execute': {
        if (this.refuseIfFailed(false)) return false;
        const portal = this.portals.get(msg.portal) ?? null;
        const rec = portal?.stmt?.rec ?? { info: { text: '', classification: 'other' as const, targets: [] }, text: '', sightings: [] };
        const run = this.startRun(rec, portal?.params ?? null, portal, { portal: msg.portal, maxRows: msg.maxRows });
        this.pending.push({ kind: 'execute', run });
        return true;
      }
      case 'Close':
        if (msg.target === 'S') this.statements.delete(msg.name);
        else this.portals.delete(msg.name);
        this.pending.push({ kind: 'close' });
        return true;
      case 'Sync':
        this.skipUntilSync = false;
        this.pending.push({ kind: 'sync' });
        return true;
      case 'Flush':
        return true;
      case 'Terminate':
        this.terminated = true;
        return true;
      case 'CopyData': {
        const run = this.queue.currentRun();
        if (run) {
          run.copyBytes += msg.length;
          if (!run.hash) run.hash = createHash('sha256');
          run.hash.update(buf.subarray(start + 5, start + len));
          if (run.copyHead.length < this.maxValue) run.copyHead += buf.toString('utf8', start + 5, Math.min(start + len, start + 5 + this.maxValue - run.copyHead.length));
        }
        return true;
      }
      case 'CopyDone':
      case 'CopyFail':
        return true;
      case 'FunctionCall': {
        if (this.refuseIfFailed(true)) return false;
        const info: StatementInfo = { text: functionCallText(msg.oid), classification: 'other', targets: [] };
        const rec: Recordable = { info, text: info.text, sightings: [] };
        if (!this.allowed(rec, true)) return false;
        const run = this.startRun(rec, msg.args.map((a) => this.renderParam(a, 0)), null, null);
        this.pending.push({ kind: 'fcall', run });
        return true;
      }
      case 'Password':
        throw new ProtocolError('unexpected password message after authentication');
    }
  }

  private onQuery(sql: string): boolean {
    if (this.refuseIfFailed(true)) return false;
    const recs = analyzeSql(sql).map((info) => this.recordable(info));
    for (const rec of recs) if (!this.allowed(rec, true, recs.length === 1)) return false;
    const runs = recs.map((rec) => this.startRun(rec, null, null, null));
    this.pending.push({ kind: 'query', runs, idx: 0 });
    return true;
  }

  /**
   * The text to record for a statement: literals bound for secret columns (and EXECUTE arguments
   * bound for secret parameters of a PREPARE seen earlier) masked in place, by position.
   */
  private recordable(info: StatementInfo): Recordable {
    const sightings: Sighting[] = [];
    const conn = this.ctx.connection.name;
    if (info.prepare) this.sqlPrepared.set(info.prepare.name, info.prepare.secretParams);
    // learned before the statement completes, so a CREATE TABLE and an INSERT in one query string connect
    if (info.tableColumns) learnTable(conn, info.tableColumns.table, info.tableColumns.columns);
    if (info.alteredTable) forgetTable(conn, info.alteredTable);
    let secretParams = info.secretParams;
    const positional = withLearnedColumns(conn, info);
    if (positional) {
      const lits = [...(info.secretLiterals ?? []), ...positional.literals].sort((a, b) => a.start - b.start);
      info = { ...info, secretLiterals: lits.filter((l, i) => i === 0 || l.start >= lits[i - 1].end) };
      secretParams = [...(secretParams ?? []), ...positional.params];
    }
    let text = maskStatementText(this.ctx.masker, info, sightings);
    const exec = info.execute;
    const prepared = exec ? this.sqlPrepared.get(exec.name) : undefined;
    if (exec && prepared?.length && text === info.text) text = maskExecuteText(this.ctx.masker, text, exec.args, prepared, sightings);
    return { info, text, sightings, secretParams };
  }

  private startRun(rec: Recordable, params: Json[] | null, portal: Portal | null, extra: { portal: string; maxRows: number } | null): Running {
    const run = new Running(params, portal, copyColumns(this.ctx.connection.name, rec.info.secretCopy), rec.info.secretResults);
    run.selectStarFrom = rec.info.selectStarFrom ?? null;
    run.sightingsIn.push(...rec.sightings, ...(portal?.sightings ?? []));
    this.toStart.push({ run, rec, extra });
    return run;
  }

  /** One finding per distinct secret a command carried by position (the recorder sees only placeholders). */
  private reportSightings(commandId: number, sightings: readonly Sighting[], direction: 'client→upstream' | 'upstream→client'): void {
    const seen = new Set<string>();
    for (const s of sightings) {
      const key = `${s.kind}|${s.fp}`;
      if (seen.has(key)) continue;
      seen.add(key);
      this.session.finding({
        category: 'secret', kind: s.kind, fp: s.fp, direction, commandId,
        maskedLive: direction === 'upstream→client' && this.live ? true : undefined,
        detail: { column: s.column },
      });
    }
  }

  /** Records the commands whose bytes were just forwarded, in the order they arrived. */
  private flushStarts(): void {
    if (this.toStart.length === 0) return;
    const list = this.toStart;
    this.toStart = [];
    this.startedInChunk = true;
    for (const { run, rec, extra } of list) {
      const info = rec.info;
      const params = run.params;
      const detail: { [k: string]: Json } = {};
      if (params) detail.params = params;
      if (extra) {
        detail.portal = extra.portal;
        detail.maxRows = extra.maxRows;
      }
      const handle = this.session.startCommand({
        kind: 'sql',
        text: rec.text,
        classification: info.classification,
        targets: info.targets,
        detail,
      });
      const data: { [k: string]: Json } = { sql: rec.text };
      if (params) data.params = params;
      this.session.event('query', 'client→upstream', data, { commandId: handle.id });
      if (run.sightingsIn.length) this.reportSightings(handle.id, run.sightingsIn, 'client→upstream');
      const approved = this.approvedRecs.get(rec);
      if (approved) {
        this.approvedRecs.delete(rec);
        recordApprovalOutcome(this.session, approved.decision, approved.held, approved.outcome, handle.id);
      }
      run.handle = handle;
    }
  }

  /** Policy check; on block, records it and queues the client's ErrorResponse in order. */
  private allowed(rec: Recordable, simple: boolean, explainable = false): boolean {
    const info = rec.info;
    // policy sees the recorded text: a held command's text reaches reviewers, so no raw secret may ride along
    const decision = this.ctx.policy({
      connection: this.ctx.connection.name,
      protocol: 'postgres',
      identity: this.opts.identity,
      kind: 'sql',
      // rules match the statement as the server will run it; the recorded text is the masked one
      text: info.text,
      classification: info.classification,
    });
    if (decision.action === 'allow') return true;
    let decided: { decision: PolicyDecision; held: PendingApproval; outcome: ApprovalOutcome } | undefined;
    if (decision.action === 'hold' && this.ctx.holdForApproval) {
      // what reviewers see and the approval binds: the text as the recorder will store it
      const shown = this.ctx.masker.maskText(rec.text).text;
      decided = this.outcomes.get(`${decision.rule ?? 'policy'}\0${sha256(shown)}`);
      if (!decided) {
        this.holdForApproval(decision, shown, rec, explainable);
        return false;
      }
      if (decided.outcome.decision === 'approve') {
        this.approvedRecs.set(rec, decided);
        return true;
      }
    }
    this.flushStarts();
    const handle = this.session.startCommand({ kind: 'sql', text: rec.text, classification: info.classification, targets: info.targets });
    if (rec.sightings.length) this.reportSightings(handle.id, rec.sightings, 'client→upstream');
    const message = decided ? deniedMessage(decision.rule, decided.outcome) : blockedMessage(decision);
    if (decided) recordApprovalOutcome(this.session, decided.decision, decided.held, decided.outcome, handle.id);
    else this.session.finding({ category: 'guardrail', kind: decision.rule ?? 'policy', direction: 'gateway', commandId: handle.id, detail: decisionDetail(decision, rec.text) });
    handle.finish({ status: 'blocked', error: message, result: { error: message } });
    this.queueSynthetic(wire.errorResponse({ severity: 'ERROR', code: '42501', message }), simple);
    return false;
  }

  /**
   * Stops reading the client at this statement until a human decides: its bytes and everything
   * after them are read again then, the statement allowed or refused by that decision. Statements
   * before it in the same chunk go on as usual; other sessions are not affected.
   */
  private holdForApproval(decision: PolicyDecision, commandText: string, rec: Recordable, explainable: boolean): void {
    const info = rec.info;
    const explain = this.opts.explain;
    let details: (() => Promise<ApprovalDetails>) | undefined;
    if (explain && info.targets.length) {
      // EXPLAIN plans only queries and DML, one statement, with every value in the text
      details =
        explainable && (info.classification === 'read' || info.classification === 'write')
          ? () => explain(info.text, commandText === info.text)
          : () => Promise.resolve({ estimate: null, estimateError: explainable ? 'EXPLAIN does not plan this kind of statement' : 'not estimated: bind parameters or several statements' });
    }
    const held = this.ctx.holdForApproval!({
      tables: info.targets.length ? info.targets : undefined,
      details,
      sessionId: this.session.id,
      identity: this.opts.identity,
      runId: this.opts.runId ?? null,
      commandText,
      ...holdTerms(decision),
    });
    this.awaiting = held;
    this.client.pause();
    void held.outcome.then((outcome) =>
      this.guard('client', () => {
        if (this.ended || this.awaiting !== held) return;
        // bound to the rule too: after a reload, another rule's hold asks again
        this.outcomes.set(`${held.approval.rule}\0${held.approval.commandSha256}`, { decision, held: held.approval, outcome });
        this.awaiting = null;
        if (!this.holding) this.release(null);
      }),
    );
  }

  private refuseIfFailed(simple: boolean): boolean {
    if (!this.session.failed) return false;
    this.flushStarts();
    this.queueSynthetic(refusedError(), simple);
    return true;
  }

  private queueSynthetic(error: Buffer, simple: boolean): void {
    if (!simple) this.skipUntilSync = true;
    this.pending.push({ kind: 'synthetic', error, ready: simple });
    this.emitSynthetics();
  }

  private emitSynthetics(): void {
    for (const s of this.queue.dueSynthetics()) {
      this.flushServerForward();
      this.writeClient(s.error);
      if (s.ready) this.writeClient(wire.readyForQuery(this.txStatus));
    }
  }

  private renderParam(p: RawParam, typeOid: number): Json {
    return renderValue(p.value, p.format, typeOid, this.maxValue);
  }

  // ---------------------------------------------------------------- upstream → client

  private sFwdBuf: Buffer | null = null;
  private sFwdStart = 0;
  private sFwdEnd = 0;

  private onServerData(chunk: Buffer): void {
    const r = frames(chunk, this.serverCarry, this.serverCarryLen, checkServerHeader, (buf, start, len, inChunk) => {
      const replacement = this.onServerMessage(buf, start, len);
      if (replacement === null && inChunk && this.sFwdBuf === buf && this.sFwdEnd === start) {
        this.sFwdEnd = start + len;
      } else {
        this.flushServerForward();
        if (replacement !== null) this.writeClient(replacement);
        else if (inChunk) {
          this.sFwdBuf = buf;
          this.sFwdStart = start;
          this.sFwdEnd = start + len;
        } else this.writeClient(buf.subarray(start, start + len));
      }
      // a gateway-made answer goes out right after the server message that made it due
      if (this.pending.length && this.pending[0].kind === 'synthetic') this.emitSynthetics();
    });
    this.serverCarry = r.carry;
    this.serverCarryLen = r.carryLen;
    this.flushHashRun();
    this.flushServerForward();
    if (this.done.length && this.done[0].txStatus !== null) this.finishDone(false);
  }

  private flushServerForward(): void {
    if (this.sFwdBuf && this.sFwdEnd > this.sFwdStart) this.writeClient(this.sFwdBuf.subarray(this.sFwdStart, this.sFwdEnd));
    this.sFwdBuf = null;
    this.sFwdStart = this.sFwdEnd = 0;
  }

  private flushHashRun(): void {
    const h = this.hashRun;
    if (!h) return;
    this.hashRun = null;
    if (!h.run.hash) h.run.hash = createHash('sha256');
    h.run.hash.update(h.buf.subarray(h.start, h.end));
  }

  /** Records one server frame; returns a replacement frame (live masking) or null to forward as is. */
  private onServerMessage(buf: Buffer, start: number, len: number): Buffer | null {
    const type = buf[start];
    const end = start + len;
    if (type === TYPE_D) {
      const run = this.queue.currentRun();
      if (!run) return null;
      run.rowCount++;
      const h = this.hashRun;
      if (h && h.run === run && h.buf === buf && h.end === start) h.end = end;
      else {
        this.flushHashRun();
        this.hashRun = { run, buf, start, end };
      }
      if (run.rows.length < this.headRows || this.live) return captureRow(this.capture, run, buf, start, end);
      return null;
    }
    this.flushHashRun();
    const b = start + 5;
    switch (type) {
      case 0x54: { // T RowDescription
        const cols = decodeRowDescription(buf, b, end);
        const head = this.pending[0];
        if (head && head.kind === 'describe') {
          if (head.target) head.target.columns = cols;
          this.pending.shift();
        } else {
          const run = this.queue.currentRun();
          if (run) run.columns = cols;
        }
        break;
      }
      case 0x6e: // n NoData
        if (this.pending[0]?.kind === 'describe') this.pending.shift();
        break;
      case 0x74: // t ParameterDescription: the Describe continues with T or n
        break;
      case 0x31: // 1 ParseComplete
      case 0x32: // 2 BindComplete
      case 0x33: // 3 CloseComplete
        this.pending.shift();
        break;
      case 0x43: // C CommandComplete
      case 0x49: // I EmptyQueryResponse
      case 0x73: { // s PortalSuspended
        const run = this.queue.currentRun();
        if (run) {
          if (type === 0x43) {
            run.tag = decodeCString(buf, b, end);
            // INSERT/UPDATE/DELETE send no rows: the tag alone holds the count
            run.rowCount = tagRowCount(run.tag) ?? run.rowCount;
          }
          if (type === 0x73) run.suspended = true;
          this.complete(run, 'ok');
        }
        this.queue.advance();
        break;
      }
      case 0x45: { // E ErrorResponse
        const f = decodeFields(buf, b, end);
        const severity = f.V ?? f.S;
        if (severity === 'FATAL' || severity === 'PANIC') this.serverFatal = `${severity} ${f.C ?? ''}: ${f.M ?? ''}`;
        this.onError(f);
        break;
      }
      case 0x4e: { // N NoticeResponse
        const f = decodeFields(buf, b, end);
        const text = `${f.S ?? 'NOTICE'}: ${f.M ?? ''}`;
        const run = this.queue.currentRun();
        if (run) (run.notices ??= []).push(text);
        else this.session.event('notice', 'upstream→client', { severity: f.S ?? null, code: f.C ?? null, message: f.M ?? '' });
        break;
      }
      case 0x41: { // A NotificationResponse
        const n = decodeNotification(buf, b, end);
        this.session.event('notification', 'upstream→client', { channel: n.channel, payload: n.payload, pid: n.pid });
        break;
      }
      case 0x53: { // S ParameterStatus
        const name = decodeCString(buf, b, end);
        const value = decodeCString(buf, b + Buffer.byteLength(name) + 1, end);
        this.session.event('parameter', 'upstream→client', { name, value });
        break;
      }
      case 0x5a: // Z ReadyForQuery
        this.txStatus = String.fromCharCode(buf[b]);
        this.onReady();
        break;
      case 0x47: // G CopyInResponse
      case 0x48: { // H CopyOutResponse
        const run = this.queue.currentRun();
        if (run) run.copy = type === 0x47 ? 'in' : 'out';
        break;
      }
      case TYPE_COPYDATA: {
        const run = this.queue.currentRun();
        if (!run) break;
        return captureCopyData(this.capture, run, buf, b, end);
      }
      case 0x56: { // V FunctionCallResponse
        const run = this.queue.currentRun();
        if (run) {
          const l = buf.readInt32BE(b);
          run.rows.push([l < 0 ? null : renderValue(buf.subarray(b + 4, b + 4 + l), 1, 0, this.maxValue)]);
          run.rowCount = 1;
          this.complete(run, 'ok');
        }
        break;
      }
      default:
        break;
    }
    return null;
  }

  private onError(f: Record<string, string>): void {
    const message = `${f.S ?? 'ERROR'} ${f.C ?? ''}: ${f.M ?? ''}`.trim();
    const head = this.pending[0];
    if (!head || head.kind === 'sync') {
      this.session.event('error', 'upstream→client', { severity: f.S ?? null, code: f.C ?? null, message: f.M ?? '' });
      return;
    }
    if (head.kind === 'query') {
      const run = head.runs[head.idx];
      if (run) {
        run.error = message;
        this.complete(run, 'error');
      }
      for (let i = head.idx + 1; i < head.runs.length; i++) {
        head.runs[i].error = 'not run: an earlier statement in the same query failed';
        this.complete(head.runs[i], 'cancelled');
      }
      head.idx = head.runs.length;
      return;
    }
    if (head.kind === 'fcall') {
      head.run.error = message;
      this.complete(head.run, 'error');
      return;
    }
    // extended protocol: the server now skips everything up to Sync. The error belongs to the
    // statement it stopped: the failing Execute, or the next Execute after a failed Bind/Describe.
    const dropped = this.queue.dropUntilSync();
    const victim = dropped.find((p): p is Extract<Pending, { kind: 'execute' }> => p.kind === 'execute');
    if (victim && (head.kind !== 'parse' || dropped.indexOf(victim) > 0)) {
      victim.run.error = message;
      this.complete(victim.run, 'error');
    } else if (head.kind === 'parse') {
      const { rec } = head;
      const h = this.session.startCommand({ kind: 'sql', text: rec.text, classification: rec.info.classification, targets: rec.info.targets });
      if (rec.sightings.length) this.reportSightings(h.id, rec.sightings, 'client→upstream');
      const safe = scrubMessage(message, rec.sightings);
      h.finish({ status: 'error', error: safe, result: { error: safe } });
    } else {
      this.session.event('error', 'upstream→client', { severity: f.S ?? null, code: f.C ?? null, message: f.M ?? '' });
    }
    for (const p of dropped) this.abandon(p, 'not run: an earlier message in the same pipeline failed');
  }

  private abandon(p: Pending, why: string): void {
    for (const r of runsOf(p)) {
      if (r.status !== 'running') continue;
      r.error = why;
      this.complete(r, 'cancelled');
    }
  }

  private onReady(): void {
    this.queue.ready((p) => this.abandon(p, 'no result'));
    // the results are recorded once this chunk has gone to the client (onServerData)
    for (const run of this.done) run.txStatus ??= this.txStatus;
  }

  private complete(run: Running, status: CommandStatus): void {
    if (run.status !== 'running') return;
    if (this.hashRun?.run === run) this.flushHashRun();
    run.status = status;
    this.done.push(run);
  }

  /** Records finished commands: those a ReadyForQuery ended, or all of them (session end). */
  private finishDone(all = true): void {
    let n = 0;
    for (const run of this.done) {
      if (!all && run.txStatus === null) break;
      n++;
      const tx = run.txStatus ?? this.txStatus;
      const handle = run.handle;
      if (!handle) continue;
      const { result, sha256, error, copyIn } = settleResult(this.capture, run, tx);
      if (run.selectStarFrom && run.columns && run.status === 'ok') learnTable(this.ctx.connection.name, run.selectStarFrom, run.columns.map((c) => c.name));
      try {
        if (copyIn.length) this.reportSightings(handle.id, copyIn, 'client→upstream');
        if (run.sightingsOut.length) this.reportSightings(handle.id, run.sightingsOut, 'upstream→client');
        this.session.event('result', 'upstream→client', { tag: run.tag, rowCount: run.rowCount, sha256, error }, { commandId: handle.id, maskedLive: this.live || undefined });
        handle.finish({ status: run.status, result, error: error ?? undefined });
      } catch (err) {
        this.ctx.log.error(`postgres session ${this.session.id}: recording a result failed`);
      }
    }
    if (n === this.done.length) this.done.length = 0;
    else this.done.splice(0, n);
  }
}

const REFUSED = 'Flightlog: recording failed, command not forwarded';

/** What a client gets for a statement the store could not record: SQLSTATE 58030 io_error. */
function refusedError(): Buffer {
  return wire.errorResponse({ severity: 'ERROR', code: '58030', message: REFUSED, detail: 'The Flightlog gateway could not write its recording store (disk full or I/O error); nothing was sent to the database.' });
}
