/**
 * One HTTP request through the gateway: authenticate, policy, record the command, forward with
 * injected credentials, stream the response back (with backpressure) while tapping both bodies.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ListenerContext } from '../core/listener';
import type { CommandHandle, CommandKind, CommandStatus, Direction, Json, PolicyDecision, SecretHit, SessionRecorder } from '../common/types';
import type { PendingApproval } from '../common/api-types';
import { HttpGatewayError, upstreamError } from './errors';
import { detectLlmEndpoint, llmDialect, type LlmDialect } from './llm';
import type { ConversationTracker } from './llm-turns';
import { llmCommandText, parseJson, type LlmRequestInfo, type LlmStreamAssembler, type LlmTurn } from './llm-types';
import { authenticateRequest, sendError, RUN_HEADER, type ClientConnection, type HttpListenerOptions } from './connection';
import { PayloadTap, bodyRecord, decodeContent, type BodyRecord } from './payload';
import { SecretScrubber } from './scrub';
import { SseParser, type SseEvent } from './sse';
import { SseStreamMasker } from './sse-mask';
import { CREDENTIAL_KIND, forwardHeaders, upstreamPath, type UpstreamTarget } from './upstream';
import { blockedMessage, decisionDetail, holdTerms } from '../policy/decision';
import { deniedMessage, recordApprovalOutcome, type ApprovalOutcome } from '../approvals';
import { toolCallsOf } from './lineage';

export interface ExchangeShared {
  ctx: ListenerContext;
  options: HttpListenerOptions;
  target: UpstreamTarget;
  /** request headers never forwarded (gateway credentials, the run header) */
  stripHeaders: Set<string>;
  tracker(runId: string | null, sessionId: string): ConversationTracker;
}

/** channel text gathered before the record's stream masker runs (it rescans its context per write) */
const SSE_RECORD_BATCH = 2048;
const SECRETISH_HEADER = /auth|token|secret|password|api[-_]?key|cookie|session|signature|credential/i;
const STREAM_TYPES = /^(text\/event-stream|application\/x-ndjson|application\/stream\+json|multipart\/x-mixed-replace)/i;
const TEXT_TYPES = /^(text\/|application\/(json|[\w.+-]*\+json|xml|[\w.+-]*\+xml|javascript|x-www-form-urlencoded|graphql|yaml))/i;

/** Header values as recorded: credentials masked before the recorder ever sees them. */
export function recordedHeaders(
  ctx: ListenerContext,
  headers: http.IncomingHttpHeaders | http.OutgoingHttpHeaders,
  credentialHeaders: Set<string>,
): Json {
  const out: Record<string, Json> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value.map(String) : [String(value)];
    if (credentialHeaders.has(name) || SECRETISH_HEADER.test(name)) {
      const masked = values.map((v) => {
        const m = ctx.masker.maskText(v);
        return m.text !== v ? m.text : ctx.masker.placeholder(CREDENTIAL_KIND, v);
      });
      out[name] = masked.length === 1 ? masked[0] : masked;
    } else {
      out[name] = values.length === 1 ? values[0] : values;
    }
  }
  return out;
}

function headerText(v: string | string[] | number | undefined): string {
  if (v === undefined) return '';
  return Array.isArray(v) ? v.join(', ') : String(v);
}

function ms(from: number, to: number): number {
  return Math.round((to - from) * 100) / 100;
}

interface LlmCall {
  dialect: LlmDialect;
  info: LlmRequestInfo;
  newTurns: LlmTurn[];
  assembler: LlmStreamAssembler | null;
  /** a non-streamed reply, collected whole to parse */
  chunks: Buffer[];
  size: number;
  overflow: boolean;
}

export class Exchange {
  private readonly ctx: ListenerContext;
  private readonly t0 = performance.now();
  private ttfb: number | null = null;
  private session!: SessionRecorder;
  private identity = '';
  private command: CommandHandle | null = null;
  private kind: CommandKind = 'http';
  private text = '';
  private readonly reqTap: PayloadTap;
  private readonly resTap: PayloadTap;
  private upReq: http.ClientRequest | null = null;
  private upRes: http.IncomingMessage | null = null;
  private upstreamHeaders: http.OutgoingHttpHeaders = {};
  private responseHeaders: http.OutgoingHttpHeaders = {};
  private llm: LlmCall | null = null;
  private finished = false;
  private readonly scrubber: SecretScrubber;
  private sseCount = 0;
  /** an event stream is recorded masked over its reassembled deltas, never as the raw bytes */
  private sseRecord: SseStreamMasker | null = null;
  private sseBody: { text: string; over: boolean; omitted?: string } = { text: '', over: false };

  constructor(
    private readonly shared: ExchangeShared,
    private readonly conn: ClientConnection,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
  ) {
    this.ctx = shared.ctx;
    const cap = this.ctx.recording?.payloadHead ?? 64 * 1024;
    this.reqTap = new PayloadTap(cap);
    this.resTap = new PayloadTap(cap);
    this.scrubber = new SecretScrubber(shared.target.secretValues);
  }

  start(): void {
    const { ctx, options } = this.shared;
    const auth = authenticateRequest(ctx, this.req.headers, options.tokenHeader, this.conn.clientAddr);
    if (!auth.ok) {
      this.req.resume();
      sendError(this.res, auth.error as HttpGatewayError);
      return;
    }
    this.identity = auth.identity;
    const runHeader = this.req.headers[RUN_HEADER];
    const runId = auth.runId ?? ((Array.isArray(runHeader) ? runHeader[0] : runHeader)?.trim() || this.conn.runId || null);
    try {
      this.session = this.conn.sessionFor(auth.identity, runId);
    } catch {
      this.req.resume();
      sendError(this.res, new HttpGatewayError('recording_failed', 503, 'the gateway cannot record this session; request not forwarded'));
      return;
    }
    if (this.session.failed) {
      this.req.resume();
      sendError(this.res, new HttpGatewayError('recording_failed', 503, 'Flightlog: recording failed, command not forwarded'));
      return;
    }
    const method = this.req.method ?? 'GET';
    const display = displayPath(this.req.url ?? '/');
    this.text = `${method} ${display}`;
    const llm = ctx.connection.llm;
    const endpoint = llm ? detectLlmEndpoint(llm, method, display.split('?')[0]) : null;
    if (endpoint) {
      this.kind = 'llm';
      this.bufferLlmRequest(llmDialect(endpoint), runId);
      return;
    }
    const go = (): void => {
      this.beginCommand();
      this.forward(null);
    };
    if (this.allowedByPolicy(runId, go)) go();
  }

  /** Model calls: the prompt is needed before the command is named, so the (bounded) body is read first. */
  private bufferLlmRequest(dialect: LlmDialect, runId: string | null): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    this.req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > this.shared.options.llmMaxBytes) tooLarge = true;
      if (!tooLarge) chunks.push(c);
    });
    this.req.on('end', () => {
      if (tooLarge) {
        sendError(this.res, new HttpGatewayError('payload_too_large', 413, `model request body over ${this.shared.options.llmMaxBytes} bytes`));
        return;
      }
      const body = Buffer.concat(chunks);
      const encoding = headerText(this.req.headers['content-encoding']);
      const plain = encoding ? decodeContent(body, encoding, this.shared.options.llmMaxBytes) : body;
      const info = dialect.parseRequest(plain ? parseJson(plain.toString('utf8')) : undefined);
      const tracker = this.shared.tracker(runId, this.session.id);
      const newTurns = tracker.newTurns(info.turns, info.continues);
      this.text = llmCommandText(info.model, info.turns);
      this.llm = { dialect, info, newTurns, assembler: null, chunks: [], size: 0, overflow: false };
      const go = (): void => {
        this.beginCommand();
        this.reqTap.push(body);
        this.forward(body);
      };
      if (this.allowedByPolicy(runId, go)) go();
    });
    this.req.on('error', () => undefined);
  }

  /**
   * True when the request may go on now. A hold puts it in front of a human instead and returns
   * false: `approved` runs once someone approves; a denial or the timeout answers 403.
   */
  private allowedByPolicy(runId: string | null, approved: () => void): boolean {
    const { ctx } = this.shared;
    const method = this.req.method ?? 'GET';
    const path = displayPath(this.req.url ?? '/').split('?')[0];
    const decision = ctx.policy({ connection: ctx.connection.name, protocol: 'http', identity: this.identity, kind: this.kind, text: this.text, http: { method, path } });
    if (decision.action === 'allow') return true;
    if (decision.action === 'hold' && ctx.holdForApproval) {
      const held = ctx.holdForApproval({
        sessionId: this.session.id,
        identity: this.identity,
        runId,
        commandText: ctx.masker.maskText(this.text).text,
        ...holdTerms(decision),
      });
      // the client gave up: nobody is left to answer
      const gone = (): void => held.cancel();
      this.res.once('close', gone);
      void held.outcome.then((outcome) => {
        this.res.off('close', gone);
        if (this.res.destroyed || this.res.writableEnded) return;
        if (outcome.decision !== 'approve') return this.refuse(decision, outcome, held.approval);
        approved();
        const cmd = this.command;
        this.recordSafe(() => recordApprovalOutcome(this.session, decision, held.approval, outcome, cmd?.id));
      });
      return false;
    }
    this.refuse(decision, null, null);
    return false;
  }

  private refuse(decision: PolicyDecision, outcome: ApprovalOutcome | null, held: PendingApproval | null): void {
    const message = outcome ? deniedMessage(decision.rule, outcome) : blockedMessage(decision);
    const cmd = this.startCommandSafe();
    if (cmd) {
      this.recordSafe(() =>
        outcome && held
          ? recordApprovalOutcome(this.session, decision, held, outcome, cmd.id)
          : this.session.finding({ category: 'guardrail', kind: decision.rule ?? 'policy', direction: 'gateway', commandId: cmd.id, detail: decisionDetail(decision, this.text) }),
      );
      this.recordSafe(() => cmd.finish({ status: 'blocked', error: message, result: { status: 403 } }));
    }
    this.finished = true;
    this.req.resume();
    sendError(this.res, new HttpGatewayError('blocked_by_policy', 403, message));
  }

  private startCommandSafe(): CommandHandle | null {
    const method = this.req.method ?? 'GET';
    const detail: Record<string, Json> = { method, url: displayPath(this.req.url ?? '/') };
    if (this.llm) {
      detail.endpoint = this.llm.dialect.endpoint;
      detail.model = this.llm.info.model;
      detail.stream = this.llm.info.stream;
    }
    // W3C trace context: links this request to the MCP tool call that carried the same trace (lineage)
    const traceparent = this.req.headers.traceparent;
    if (typeof traceparent === 'string') detail.traceparent = traceparent;
    try {
      this.command = this.session.startCommand({ kind: this.kind, text: this.text, classification: classify(method), detail });
      return this.command;
    } catch {
      return null;
    }
  }

  private beginCommand(): void {
    this.startCommandSafe();
  }

  private recordSafe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.ctx.log.warn(`http ${this.ctx.connection.name}: recording failed (${(err as Error).name})`);
    }
  }

  private forward(body: Buffer | null): void {
    if (!this.command) {
      this.req.resume();
      sendError(this.res, new HttpGatewayError('recording_failed', 503, 'the gateway cannot record this request; not forwarded'));
      this.finished = true;
      return;
    }
    // Fail-closed: the request goes upstream only once its command is committed to the store.
    this.session.flushed().then(
      () => {
        if (this.res.destroyed || this.res.writableEnded) this.finish('cancelled', 'the client closed the connection');
        else this.send(body);
      },
      () => {
        this.ctx.log.error(`http session ${this.session.id}: recording failed; request not forwarded`);
        this.finish('blocked', 'Flightlog: recording failed, command not forwarded', 503, 'recording_failed');
        this.req.resume();
        sendError(this.res, new HttpGatewayError('recording_failed', 503, 'Flightlog: recording failed, command not forwarded'));
      },
    );
  }

  private send(body: Buffer | null): void {
    const { target, options, stripHeaders } = this.shared;
    const headers = forwardHeaders(this.req.headers, stripHeaders);
    headers.host = target.url.host;
    for (const [k, v] of target.injectHeaders) headers[k] = v;
    const liveMask = this.ctx.connection.mask === 'live';
    // we decode what we record and mask; asking for identity keeps that cheap and exact
    if (this.llm || liveMask) headers['accept-encoding'] = 'identity';
    if (body) {
      delete headers['transfer-encoding'];
      headers['content-length'] = body.length;
    }
    this.upstreamHeaders = headers;
    const reqOpts: https.RequestOptions = {
      agent: target.agent,
      protocol: target.url.protocol,
      hostname: target.url.hostname.replace(/^\[|\]$/g, ''),
      port: target.url.port || (target.isHttps ? 443 : 80),
      method: this.req.method,
      path: upstreamPath(target, this.req.url ?? '/'),
      headers,
    };
    if (target.isHttps && !net.isIP(reqOpts.hostname as string)) reqOpts.servername = reqOpts.hostname as string;
    const upReq = (target.isHttps ? https : http).request(reqOpts);
    this.upReq = upReq;
    upReq.setTimeout(options.timeoutMs, () => {
      const e = new Error('timeout') as NodeJS.ErrnoException;
      e.code = 'UPSTREAM_TIMEOUT';
      upReq.destroy(e);
    });
    upReq.on('error', (err) => this.onUpstreamError(err));
    upReq.on('response', (upRes) => this.onResponse(upRes));

    // the client going away cancels the upstream request
    this.res.on('close', () => {
      if (!this.finished) {
        upReq.destroy();
        this.upRes?.destroy();
        this.finish('cancelled', 'the client closed the connection');
      }
    });

    if (body) {
      upReq.end(body);
      return;
    }
    this.req.on('data', (chunk: Buffer) => {
      this.reqTap.push(chunk);
      if (upReq.destroyed || upReq.writableEnded) return;
      if (!upReq.write(chunk)) this.req.pause();
    });
    upReq.on('drain', () => this.req.resume());
    this.req.on('end', () => {
      if (!upReq.destroyed) upReq.end();
    });
    // a client aborting its upload: the close handler above records it as cancelled
    this.req.on('error', () => undefined);
  }

  private onUpstreamError(err: unknown): void {
    if (this.finished) return;
    const { target, options } = this.shared;
    if (this.upRes) {
      // the body was under way: the client must see a broken body, not a clean end
      const what = upstreamError(err, target.label, options.timeoutMs);
      const message =
        what.code === 'upstream_timeout'
          ? `upstream ${target.label} stalled mid-body after ${this.resTap.size} bytes`
          : `upstream ${target.label} reset the connection mid-body after ${this.resTap.size} bytes`;
      this.finish('error', message);
      this.res.destroy();
      return;
    }
    const gwErr = upstreamError(err, target.label, options.timeoutMs);
    this.ttfb = null;
    this.finish('error', gwErr.message, gwErr.status, gwErr.code);
    this.req.resume();
    sendError(this.res, gwErr);
  }

  private onResponse(upRes: http.IncomingMessage): void {
    if (this.finished) {
      upRes.resume();
      return;
    }
    this.upRes = upRes;
    this.ttfb = performance.now();
    const status = upRes.statusCode ?? 502;
    const headers = forwardHeaders(upRes.headers, new Set());
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined) continue;
      headers[k] = Array.isArray(v) ? v.map((x) => this.scrubber.scrubText(x)) : this.scrubber.scrubText(String(v));
    }
    this.responseHeaders = headers;
    const contentType = headerText(upRes.headers['content-type']);
    const streamed = STREAM_TYPES.test(contentType);
    const isSse = /^text\/event-stream/i.test(contentType);
    const contentEncoding = headerText(upRes.headers['content-encoding']).trim().toLowerCase();
    // a compressed event stream is not parsed: its events are not recorded, nor its raw body (that
    // would keep each delta of a split secret); live masking then masks it whole, buffered
    const sseEncoded = isSse && contentEncoding !== '' && contentEncoding !== 'identity';
    const live = this.ctx.connection.mask === 'live';
    if (this.llm && isSse) this.llm.assembler = this.llm.dialect.stream();
    if (isSse) {
      this.sseRecord = new SseStreamMasker(
        this.ctx.masker,
        (e) => this.recordSse(e),
        (hits) => this.streamHits(hits),
        SSE_RECORD_BATCH,
      );
      if (sseEncoded) this.sseBody.omitted = `compressed event stream (${contentEncoding}): events not recorded`;
    }

    upRes.on('error', (err) => this.onUpstreamError(err));
    upRes.on('aborted', () => this.onUpstreamError(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));

    if (live && (!streamed || sseEncoded)) {
      this.bufferAndMask(upRes, status, headers, contentType);
      return;
    }
    let liveSse: SseParser | null = null;
    let liveMasker: SseStreamMasker | null = null;
    if (live && isSse) {
      // live masking of a stream: re-emit each event masked over the text its deltas build, so a
      // secret split across deltas reaches the client masked too
      delete headers['content-length'];
      const lm = new SseStreamMasker(this.ctx.masker, (e) => this.res.write(serializeSse(e, (t) => this.ctx.masker.maskText(t).text)));
      liveMasker = lm;
      liveSse = new SseParser((e) => lm.push(e));
    }
    const sse = isSse && !sseEncoded ? new SseParser((e) => this.onSseEvent(e)) : null;
    this.res.writeHead(status, upRes.statusMessage, headers);
    if (streamed) this.res.flushHeaders();
    else {
      // the head goes out with the first body chunk (one write instead of two); a body that is
      // not there by the next turn does not hold the head back
      setImmediate(() => {
        if (!this.res.headersSent && !this.res.destroyed && !this.finished) this.res.flushHeaders();
      });
    }
    upRes.on('data', (chunk: Buffer) => {
      this.resTap.push(chunk);
      if (sse) sse.push(chunk);
      if (this.llm && !isSse) this.collectLlm(chunk);
      if (liveSse) {
        liveSse.push(this.scrubber.push(chunk));
        return;
      }
      const out = this.scrubber.active ? this.scrubber.push(chunk) : chunk;
      if (out.length > 0 && !this.res.write(out)) {
        upRes.pause();
        this.res.once('drain', () => upRes.resume());
      }
    });
    upRes.on('end', () => {
      if (this.finished) return;
      const rest = this.scrubber.flush();
      if (liveSse) {
        liveSse.push(rest);
        liveSse.end();
        liveMasker?.end();
      } else if (rest.length > 0) this.res.write(rest);
      sse?.end();
      if (upRes.complete === false) {
        this.onUpstreamError(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
        return;
      }
      this.res.end();
      this.finish(status >= 400 ? 'error' : 'ok');
    });
  }

  private onSseEvent(e: SseEvent): void {
    this.sseCount++;
    this.llm?.assembler?.event(e.event, e.data);
    if (!this.finished) this.sseRecord?.push(e);
  }

  /** One event as recorded: its deltas already carry their slice of the masked stream. */
  private recordSse(e: SseEvent): void {
    const cap = this.ctx.recording?.payloadHead ?? 64 * 1024;
    const text = serializeSse(e, (t) => t);
    if (!this.sseBody.over) {
      if (this.sseBody.text.length + text.length <= cap) this.sseBody.text += text;
      else this.sseBody.over = true;
    }
    if (!this.command) return;
    const data: Record<string, Json> = { event: e.event, data: e.data };
    if (e.id !== undefined) data.id = e.id;
    const commandId = this.command.id;
    this.recordSafe(() => this.session.event('sse', 'upstream→client', data, { commandId }));
  }

  /** Secrets only the reassembled stream shows (split across deltas) are findings too. */
  private streamHits(hits: SecretHit[]): void {
    if (!this.command) return;
    const commandId = this.command.id;
    for (const h of hits) {
      this.recordSafe(() => this.session.finding({ category: 'secret', kind: h.kind, fp: h.fp, direction: 'upstream→client', commandId }));
    }
  }

  /**
   * The response body of an event stream as stored: the masked events re-serialized (the raw
   * bytes would keep each delta of a split secret), with the size and SHA-256 of what was sent.
   */
  private sseBodyRecord(): BodyRecord {
    const body: BodyRecord = {
      size: this.resTap.size,
      sha256: this.resTap.digest(),
      truncated: this.sseBody.over || this.sseBody.omitted !== undefined,
      encoding: 'utf8',
      decoded: null,
      body: this.sseBody.text,
      maskedStream: true,
    };
    if (this.sseBody.omitted) body.omitted = this.sseBody.omitted;
    return body;
  }

  private collectLlm(chunk: Buffer): void {
    const l = this.llm as LlmCall;
    if (l.overflow) return;
    l.size += chunk.length;
    if (l.size > this.shared.options.llmMaxBytes) {
      l.overflow = true;
      l.chunks = [];
      return;
    }
    l.chunks.push(chunk);
  }

  /** A whole event stream through the recorder and a live masker: the masked SSE text to send. */
  private maskSseText(text: string): string {
    let out = '';
    const live = new SseStreamMasker(this.ctx.masker, (e) => (out += serializeSse(e, (t) => this.ctx.masker.maskText(t).text)));
    const parser = new SseParser((e) => {
      this.onSseEvent(e);
      live.push(e);
    });
    delete this.sseBody.omitted;
    parser.push(text);
    parser.end();
    live.end();
    return out;
  }

  /** Live masking of a whole (non-streamed) body: buffered, masked, sent with its new length. */
  private bufferAndMask(upRes: http.IncomingMessage, status: number, headers: http.OutgoingHttpHeaders, contentType: string): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const limit = this.shared.options.liveMaskMaxBytes;
    upRes.on('data', (chunk: Buffer) => {
      this.resTap.push(chunk);
      if (this.llm) this.collectLlm(chunk);
      size += chunk.length;
      if (size > limit) {
        upRes.destroy();
        const err = new HttpGatewayError('payload_too_large', 502, `response over ${limit} bytes cannot be masked live; not forwarded`);
        this.finish('error', err.message, 502, err.code);
        sendError(this.res, err);
        return;
      }
      chunks.push(chunk);
    });
    upRes.on('end', () => {
      if (this.finished) return;
      let body: Buffer = Buffer.concat(chunks);
      const encoding = headerText(upRes.headers['content-encoding']);
      if (encoding && encoding !== 'identity') {
        const plain = decodeContent(body, encoding, limit);
        if (plain) {
          body = plain;
          delete headers['content-encoding'];
        }
      }
      const enc = headerText(headers['content-encoding']);
      const plainText = !enc || enc === 'identity';
      if (plainText && this.sseRecord) {
        // a compressed event stream, now decoded: recorded and sent as the masked events
        body = Buffer.from(this.maskSseText(body.toString('utf8')), 'utf8');
      } else if (plainText && (TEXT_TYPES.test(contentType) || contentType === '')) {
        const text = body.toString('utf8');
        const masked = this.ctx.masker.maskText(text);
        if (masked.hits.length > 0) {
          body = Buffer.from(masked.text, 'utf8');
          this.recordSafe(() =>
            this.session.event('mask.live', 'gateway', { hits: masked.hits.length }, { commandId: this.command?.id, maskedLive: true }),
          );
        }
      }
      body = Buffer.concat([this.scrubber.push(body), this.scrubber.flush()]);
      delete headers['transfer-encoding'];
      headers['content-length'] = body.length;
      this.res.writeHead(status, upRes.statusMessage, headers);
      this.res.end(body);
      this.finish(status >= 400 ? 'error' : 'ok');
    });
  }

  private finish(status: CommandStatus, error?: string, gatewayStatus?: number, gatewayCode?: string): void {
    if (this.finished) return;
    this.finished = true;
    this.sseRecord?.end();
    if (this.scrubber.hits > 0 && this.command) {
      const commandId = this.command.id;
      this.recordSafe(() =>
        this.session.finding({
          category: 'secret',
          kind: CREDENTIAL_KIND,
          direction: 'upstream→client',
          commandId,
          maskedLive: true,
          detail: { note: 'the upstream returned an injected credential; the gateway replaced it before the client saw it' },
        }),
      );
    }
    if (!this.command) return;
    const end = performance.now();
    const cap = this.ctx.recording?.payloadHead ?? 64 * 1024;
    const { target } = this.shared;
    const upRes = this.upRes;
    const result: Record<string, Json> = {
      method: this.req.method ?? 'GET',
      url: displayPath(this.req.url ?? '/'),
      upstream: target.label,
      status: upRes ? (upRes.statusCode ?? null) : (gatewayStatus ?? null),
      requestHeaders: recordedHeaders(this.ctx, this.upstreamHeaders, target.credentialHeaders),
      headers: upRes ? recordedHeaders(this.ctx, this.responseHeaders, target.credentialHeaders) : {},
      requestBody: bodyRecord(this.reqTap, this.reqTap.digest(), this.req.headers, cap),
      responseBody: !upRes ? null : this.sseRecord ? this.sseBodyRecord() : bodyRecord(this.resTap, this.resTap.digest(), upRes.headers, cap),
      timings: { ttfbMs: this.ttfb === null ? null : ms(this.t0, this.ttfb), totalMs: ms(this.t0, end) },
    };
    if (gatewayCode) result.gatewayError = gatewayCode;
    if (this.sseCount > 0) result.sseEvents = this.sseCount;
    if (this.llm) Object.assign(result, this.llmResult());
    const command = this.command;
    if (this.llm) this.recordToolDecisions(command, result);
    // the request's headers and body are the client's: a secret only there was sent, not seen
    const resultFrom: Record<string, Direction> = { requestHeaders: 'client→upstream', requestBody: 'client→upstream' };
    this.recordSafe(() => command.finish(error === undefined ? { status, result, resultFrom } : { status, result, error, resultFrom }));
  }

  /**
   * A model's tool calls are left in place (the command a tool call causes is what a guardrail
   * stops, in its own listener); a rule that names the tool is recorded as hit on the model call.
   */
  private recordToolDecisions(command: CommandHandle, result: Json): void {
    const { ctx } = this.shared;
    for (const call of toolCallsOf(result)) {
      const decision = ctx.policy({ connection: ctx.connection.name, protocol: 'http', identity: this.identity, kind: 'llm', text: this.text, tools: [call.name] });
      if (decision.action === 'allow') continue;
      const detail = { ...decisionDetail(decision, `${call.name} ${call.arguments}`, 'rule', 'recorded'), tool: call.name, toolCallId: call.id };
      this.recordSafe(() => this.session.finding({ category: 'guardrail', kind: decision.rule ?? 'policy', direction: 'upstream→client', commandId: command.id, detail }));
    }
  }

  private llmResult(): Record<string, Json> {
    const l = this.llm as LlmCall;
    let reply = l.assembler?.result() ?? null;
    if (!reply && l.chunks.length > 0 && !l.overflow) {
      let body: Buffer = Buffer.concat(l.chunks);
      const encoding = headerText(this.upRes?.headers['content-encoding']);
      if (encoding) body = decodeContent(body, encoding, this.shared.options.llmMaxBytes) ?? body;
      reply = l.dialect.replyFromBody(parseJson(body.toString('utf8')));
    }
    return {
      endpoint: l.dialect.endpoint,
      stream: l.info.stream,
      model: reply?.model ?? l.info.model,
      newTurns: l.newTurns,
      assistantText: reply?.assistantText ?? '',
      toolCalls: reply?.toolCalls ?? [],
      usage: reply?.usage ?? null,
      stopReason: reply?.stopReason ?? null,
      responseId: reply?.id ?? null,
      apiError: reply?.error ?? null,
    };
  }
}

/** The request target as a reviewer reads it: origin-form path and query. */
export function displayPath(url: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    try {
      const u = new URL(url);
      return u.pathname + u.search;
    } catch {
      return '/';
    }
  }
  return url.startsWith('/') ? url : `/${url}`;
}

function classify(method: string): string {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' ? 'read' : 'write';
}

function serializeSse(e: SseEvent, mask: (t: string) => string): string {
  let out = '';
  if (e.event !== 'message') out += `event: ${e.event}\n`;
  if (e.id !== undefined) out += `id: ${e.id}\n`;
  for (const line of mask(e.data).split('\n')) out += `data: ${line}\n`;
  return `${out}\n`;
}
