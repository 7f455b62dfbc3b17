/**
 * One Kubernetes API request through the gateway: authenticate, name it as kubectl would, decide
 * it, record it (committed before it goes upstream), take the object as it was before a mutation,
 * forward with the upstream login, and stream the answer back while recording it: watch events one
 * by one, `logs -f` as it arrives, bodies as a head with size and SHA-256, Secrets masked.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';
import type { ListenerContext } from '../core/listener';
import type { CommandHandle, CommandStatus, Direction, Json, PolicyDecision, SessionRecorder } from '../common/types';
import type { PendingApproval } from '../common/api-types';
import { authenticateRequest, type ClientConnection } from '../http/connection';
import { PayloadTap, bodyRecord, type BodyRecord } from '../http/payload';
import { recordedHeaders } from '../http/exchange';
import { blockedMessage, decisionDetail, holdTerms } from '../policy/decision';
import { deniedMessage, recordApprovalOutcome, type ApprovalOutcome } from '../approvals';
import { bodyFacts, dropNoise, isObject, maskSecrets, parseBody } from './objects';
import { kubeDetail, kubectlText, kubeTargets, parseKubeRequest, type KubeRequest } from './request-info';
import { LiveWatchMasker, LogRecording, WatchRecording } from './response-streams';
import { authMessage, CREDENTIAL_HEADERS, decide, header, HOP, jsonAccept, recordHits, requestOptions, sendStatus, upstreamHeaders, upstreamStatus, type KubeShared } from './shared';

export class KubeExchange {
  private readonly ctx: ListenerContext;
  private readonly t0 = performance.now();
  private ttfb: number | null = null;
  private session!: SessionRecorder;
  private identity = '';
  private runId: string | null = null;
  private info!: KubeRequest;
  private text = '';
  private command: CommandHandle | null = null;
  private finished = false;
  private readonly reqTap: PayloadTap;
  private readonly resTap: PayloadTap;
  private requestBody: Buffer | null = null;
  private requestValue: Json | null = null;
  private before: Json | null | undefined = undefined;
  /** a subresource's change (scale, status) is shown on its object, read again after it */
  private afterOverride: Json | undefined = undefined;
  private beforeNote: string | null = null;
  private upRes: http.IncomingMessage | null = null;
  /** the response collected whole, for a mutation's after, a Secret's masked record, or live masking */
  private collected: Buffer[] | null = null;
  private collectedSize = 0;
  private collectOverflow = false;
  private watch: WatchRecording | null = null;
  private logs: LogRecording | null = null;
  private readonly secretResource: boolean;
  /** the whole response went to the client; what is left is the recording's (a subresource's object read again) */
  private responded = false;
  /** tells the listener this request's recording is finished */
  private done: () => void = () => undefined;

  constructor(
    private readonly shared: KubeShared,
    private readonly conn: ClientConnection,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
  ) {
    this.ctx = shared.ctx;
    const cap = this.ctx.recording?.payloadHead ?? 64 * 1024;
    this.reqTap = new PayloadTap(cap);
    this.resTap = new PayloadTap(cap);
    this.secretResource = /\/secrets(\/|$|\?)/.test(req.url ?? '');
  }

  start(): void {
    this.done = this.shared.working(this.req.socket);
    this.res.once('close', () => {
      // answered before any command was started (refused login…): nothing left to record
      if (!this.command) this.done();
    });
    const { ctx } = this.shared;
    const auth = authenticateRequest(ctx, this.req.headers, undefined, this.conn.clientAddr);
    if (!auth.ok) {
      this.req.resume();
      const e = auth.error!;
      sendStatus(this.res, e.status, e.status === 401 ? 'Unauthorized' : 'Forbidden', authMessage(e.status, e.message));
      return;
    }
    this.identity = auth.identity;
    this.runId = auth.runId ?? this.conn.runId ?? null;
    try {
      this.session = this.conn.sessionFor(auth.identity, this.runId);
    } catch {
      this.req.resume();
      sendStatus(this.res, 503, 'ServiceUnavailable', 'flightlog: the gateway cannot record this session; request not forwarded');
      return;
    }
    if (this.session.failed) {
      this.req.resume();
      sendStatus(this.res, 503, 'ServiceUnavailable', 'flightlog: recording failed, command not forwarded');
      return;
    }
    this.info = parseKubeRequest(this.req.method ?? 'GET', this.req.url ?? '/', header(this.req.headers['content-type']));
    if (this.info.mutation || this.hasBody()) this.bufferRequest();
    else this.decideAndGo();
  }

  private hasBody(): boolean {
    const len = this.req.headers['content-length'];
    return (len !== undefined && len !== '0') || this.req.headers['transfer-encoding'] !== undefined;
  }

  /** A mutation's body is read first: it names what is created and is recorded whole (masked). */
  private bufferRequest(): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    this.req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > this.shared.options.maxParseBytes) over = true;
      else chunks.push(c);
    });
    this.req.on('error', () => undefined);
    this.req.on('end', () => {
      if (over) {
        sendStatus(this.res, 413, 'RequestEntityTooLarge', `flightlog: request body over ${this.shared.options.maxParseBytes} bytes`);
        return;
      }
      this.requestBody = Buffer.concat(chunks);
      this.reqTap.push(this.requestBody);
      this.requestValue = parseBody(this.requestBody, header(this.req.headers['content-type']));
      this.decideAndGo();
    });
  }

  private decideAndGo(): void {
    const facts = bodyFacts(this.requestValue);
    this.text = kubectlText(this.info, facts);
    const decision = decide(this.shared, this.identity, this.info, this.text);
    const go = (): void => {
      if (this.startCommand(facts)) this.forward();
    };
    if (decision.action === 'allow') return go();
    const { ctx } = this.shared;
    if (decision.action === 'hold' && ctx.holdForApproval) {
      const held = ctx.holdForApproval({
        sessionId: this.session.id,
        identity: this.identity,
        runId: this.runId,
        commandText: ctx.masker.maskText(this.text).text,
        ...holdTerms(decision),
      });
      const gone = (): void => held.cancel();
      this.res.once('close', gone);
      void held.outcome.then((outcome) => {
        this.res.off('close', gone);
        if (this.res.destroyed || this.res.writableEnded) return;
        if (outcome.decision !== 'approve') return this.refuse(decision, facts, outcome, held.approval);
        go();
        const cmd = this.command;
        this.safe(() => recordApprovalOutcome(this.session, decision, held.approval, outcome, cmd?.id));
      });
      return;
    }
    this.refuse(decision, facts, null, null);
  }

  private refuse(decision: PolicyDecision, facts: ReturnType<typeof bodyFacts>, outcome: ApprovalOutcome | null, held: PendingApproval | null): void {
    const message = outcome ? deniedMessage(decision.rule, outcome) : blockedMessage(decision);
    if (this.startCommand(facts)) {
      const cmd = this.command!;
      this.safe(() =>
        outcome && held
          ? recordApprovalOutcome(this.session, decision, held, outcome, cmd.id)
          : this.session.finding({ category: 'guardrail', kind: decision.rule ?? 'policy', direction: 'gateway', commandId: cmd.id, detail: decisionDetail(decision, this.text) }),
      );
      this.safe(() => cmd.finish({ status: 'blocked', error: message, result: { status: 403 } }));
    }
    this.finished = true;
    queueMicrotask(this.done);
    this.req.resume();
    sendStatus(this.res, 403, 'Forbidden', message);
  }

  private startCommand(facts: ReturnType<typeof bodyFacts>): boolean {
    try {
      this.command = this.session.startCommand({
        kind: 'kubectl',
        text: this.text,
        classification: this.info.classification,
        targets: kubeTargets(this.info, facts),
        detail: kubeDetail(this.info),
      });
      return true;
    } catch {
      this.req.resume();
      sendStatus(this.res, 503, 'ServiceUnavailable', 'flightlog: the gateway cannot record this request; not forwarded');
      this.finished = true;
      return false;
    }
  }

  private safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.ctx.log.warn(`kubernetes ${this.ctx.connection.name}: recording failed (${(err as Error).name})`);
    }
  }

  private forward(): void {
    // Fail-closed: the request goes upstream only once its command is committed to the store.
    this.session.flushed().then(
      async () => {
        if (this.res.destroyed || this.res.writableEnded) return this.finish('cancelled', 'the client closed the connection');
        if (this.info.mutation) await this.fetchBefore();
        if (this.finished) return;
        this.send();
      },
      () => {
        this.ctx.log.error(`kubernetes session ${this.session.id}: recording failed; request not forwarded`);
        this.finish('blocked', 'flightlog: recording failed, command not forwarded', 503);
        this.req.resume();
        sendStatus(this.res, 503, 'ServiceUnavailable', 'flightlog: recording failed, command not forwarded');
      },
    );
  }

  /** The path of the object a mutation changes (a subresource's parent; a create's new name). */
  private objectPath(): string | null {
    const i = this.info;
    const base = i.path.replace(/\/+$/, '');
    if (i.verb === 'create') {
      const name = bodyFacts(this.requestValue).name;
      return name && !i.subresource ? `${base}/${encodeURIComponent(name)}` : null;
    }
    if (i.verb === 'deletecollection') {
      const q = new URLSearchParams();
      if (i.labelSelector) q.set('labelSelector', i.labelSelector);
      if (i.fieldSelector) q.set('fieldSelector', i.fieldSelector);
      const qs = q.toString();
      return qs ? `${base}?${qs}` : base;
    }
    if (!i.name) return null;
    return i.subresource ? base.slice(0, base.length - i.subresource.length - 1) : base;
  }

  /** GETs an object with the upstream login (JSON, uncompressed); null when it is not there. */
  private getObject(path: string): Promise<{ value: Json | null; note: string | null }> {
    return new Promise((resolve) => {
      const headers: http.OutgoingHttpHeaders = { host: this.shared.target.url.host, accept: 'application/json', 'accept-encoding': 'identity', 'user-agent': 'flightlog-gateway' };
      if (this.shared.target.authorization) headers.authorization = this.shared.target.authorization;
      const r = (this.shared.target.isHttps ? https : http).request(requestOptions(this.shared, 'GET', path, headers));
      r.setTimeout(5000, () => r.destroy(Object.assign(new Error('timeout'), { code: 'UPSTREAM_TIMEOUT' })));
      r.on('error', (err) => resolve({ value: null, note: upstreamStatus(this.shared, err).message }));
      r.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= this.shared.options.maxParseBytes) chunks.push(c);
        });
        res.on('error', () => resolve({ value: null, note: 'the read of the object before the change failed' }));
        res.on('end', () => {
          if (res.statusCode === 404) return resolve({ value: null, note: 'did not exist' });
          if ((res.statusCode ?? 500) >= 400) return resolve({ value: null, note: `the gateway could not read it (HTTP ${res.statusCode})` });
          if (size > this.shared.options.maxParseBytes) return resolve({ value: null, note: `over ${this.shared.options.maxParseBytes} bytes` });
          resolve({ value: parseBody(Buffer.concat(chunks), header(res.headers['content-type'])), note: null });
        });
      });
      r.end();
    });
  }

  private async fetchBefore(): Promise<void> {
    const path = this.objectPath();
    if (!path) {
      this.before = null;
      return;
    }
    const { value, note } = await this.getObject(path);
    this.before = value === null ? null : this.recordable(value);
    this.beforeNote = note;
  }

  /** An object as recorded: Secrets masked (their hits are findings), noise dropped. */
  private recordable(value: Json, direction: Direction = 'upstream→client'): Json {
    const m = maskSecrets(this.ctx.masker, value, this.secretResource);
    if (m.hits.length && this.command) recordHits(this.session, m.hits, direction, this.command.id);
    return dropNoise(m.value);
  }

  private send(): void {
    const { options } = this.shared;
    const headers = upstreamHeaders(this.shared, this.req.headers);
    const live = this.ctx.connection.mask === 'live';
    // what the gateway must read whole it asks for uncompressed, and a Secret as JSON it can mask
    const mustRead = this.info.mutation || this.secretResource || (live && !this.info.streaming);
    if (mustRead || this.info.verb === 'watch') headers['accept-encoding'] = 'identity';
    if (this.secretResource) headers.accept = jsonAccept(header(this.req.headers.accept));
    if (this.requestBody) {
      delete headers['transfer-encoding'];
      headers['content-length'] = this.requestBody.length;
    }
    const upReq = (this.shared.target.isHttps ? https : http).request(requestOptions(this.shared, this.req.method ?? 'GET', this.req.url ?? '/', headers));
    if (!this.info.streaming) {
      upReq.setTimeout(options.timeoutMs, () => upReq.destroy(Object.assign(new Error('timeout'), { code: 'UPSTREAM_TIMEOUT' })));
    }
    upReq.on('error', (err) => this.onUpstreamError(err));
    upReq.on('response', (upRes) => this.onResponse(upRes, mustRead));
    this.res.on('close', () => {
      if (!this.finished && !this.responded) {
        // a watch or `logs -f` ends when the client stops it: that is its normal end (recorded
        // before the upstream is cut, whose abort would read as an upstream failure)
        this.finish(this.info.streaming && this.upRes ? 'ok' : 'cancelled', this.info.streaming && this.upRes ? undefined : 'the client closed the connection');
        upReq.destroy();
        this.upRes?.destroy();
      }
    });
    if (this.requestBody) {
      upReq.end(this.requestBody);
      return;
    }
    this.req.on('data', (chunk: Buffer) => {
      this.reqTap.push(chunk);
      if (!upReq.write(chunk)) this.req.pause();
    });
    upReq.on('drain', () => this.req.resume());
    this.req.on('end', () => upReq.end());
    this.req.on('error', () => undefined);
  }

  private onUpstreamError(err: unknown): void {
    if (this.finished) return;
    if (this.upRes) {
      this.finish('error', `upstream ${this.shared.target.label} closed the connection mid-body after ${this.resTap.size} bytes`);
      this.res.destroy();
      return;
    }
    const s = upstreamStatus(this.shared, err);
    this.finish('error', s.message, s.code);
    this.req.resume();
    sendStatus(this.res, s.code, s.reason, s.message);
  }

  private onResponse(upRes: http.IncomingMessage, mustRead: boolean): void {
    if (this.finished) {
      upRes.resume();
      return;
    }
    this.upRes = upRes;
    this.ttfb = performance.now();
    const status = upRes.statusCode ?? 502;
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
    const contentType = header(upRes.headers['content-type']);
    const live = this.ctx.connection.mask === 'live';
    upRes.on('error', (err) => this.onUpstreamError(err));
    upRes.on('aborted', () => this.onUpstreamError(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
    if (mustRead && !this.info.streaming) this.collected = [];

    if (live && !this.info.streaming && /json|yaml/i.test(contentType)) {
      this.bufferAndMask(upRes, status, headers);
      return;
    }
    this.res.writeHead(status, upRes.statusMessage, headers);
    // a watch or a followed log has nothing to send until something happens: the head goes now
    if (this.info.streaming) this.res.flushHeaders();
    const commandId = this.command?.id;
    const emit = (kind: string, data: Json): void => this.safe(() => this.session.event(kind, 'upstream→client', data, { commandId }));
    const watch = this.info.verb === 'watch' && status < 300 ? (this.watch = new WatchRecording(this.shared.options.maxParseBytes, (v) => this.recordable(v), (d) => emit('k8s.watch', d))) : null;
    const logs = this.info.logs !== undefined && status < 300 ? (this.logs = new LogRecording(this.shared.options.streamHead, emit)) : null;
    const liveWatch = watch && live ? new LiveWatchMasker(this.ctx.masker, this.secretResource) : null;
    upRes.on('data', (chunk: Buffer) => {
      this.resTap.push(chunk);
      if (watch) watch.push(chunk);
      else if (logs) logs.push(chunk);
      else this.collect(chunk);
      const out = liveWatch ? liveWatch.push(chunk) : logs && live ? Buffer.from(this.ctx.masker.maskText(chunk.toString('utf8')).text) : chunk;
      if (out.length && !this.res.write(out)) {
        upRes.pause();
        this.res.once('drain', () => upRes.resume());
      }
    });
    upRes.on('end', () => {
      if (this.finished) return;
      // a live watch's last line without its newline still goes out masked
      const rest = liveWatch?.end();
      if (rest) this.res.write(rest);
      if (upRes.complete === false) return this.onUpstreamError(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
      logs?.flush();
      const path = this.info.mutation && this.info.subresource && status < 300 ? this.objectPath() : null;
      if (!path) {
        this.res.end();
        return this.finish(status >= 400 ? 'error' : 'ok');
      }
      // a subresource's change is shown on its object, read before the answer ends: the client
      // going away next must not close the session under a command still being recorded
      this.responded = true;
      void this.getObject(path).then(({ value }) => {
        this.afterOverride = value === null ? null : this.recordable(value);
        this.res.end();
        this.finish('ok');
      });
    });
  }

  private collect(chunk: Buffer): void {
    if (!this.collected || this.collectOverflow) return;
    this.collectedSize += chunk.length;
    if (this.collectedSize > this.shared.options.maxParseBytes) {
      this.collectOverflow = true;
      this.collected = [];
      return;
    }
    this.collected.push(chunk);
  }

  /** Live masking of a whole JSON or YAML body: buffered, Secrets and secrets masked, sent with its new length. */
  private bufferAndMask(upRes: http.IncomingMessage, status: number, headers: http.OutgoingHttpHeaders): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const limit = this.shared.options.maxParseBytes;
    upRes.on('data', (chunk: Buffer) => {
      this.resTap.push(chunk);
      size += chunk.length;
      if (size > limit) {
        upRes.destroy();
        const message = `flightlog: response over ${limit} bytes cannot be masked live; not forwarded`;
        this.finish('error', message, 502);
        sendStatus(this.res, 502, 'ServiceUnavailable', message);
        return;
      }
      chunks.push(chunk);
    });
    upRes.on('end', () => {
      if (this.finished) return;
      let body: Buffer = Buffer.concat(chunks);
      if (header(upRes.headers['content-encoding']).toLowerCase() === 'gzip') {
        try {
          body = zlib.gunzipSync(body);
          delete headers['content-encoding'];
        } catch {
          // sent as it came
        }
      }
      this.collected = [body];
      this.collectedSize = body.length;
      const value = parseBody(body, header(upRes.headers['content-type']));
      if (value !== null) {
        const m = maskSecrets(this.ctx.masker, value, this.secretResource);
        const all = this.ctx.masker.maskValue(m.value);
        if (m.hits.length + all.hits.length > 0) {
          body = Buffer.from(JSON.stringify(all.value), 'utf8');
          headers['content-type'] = 'application/json';
          this.safe(() => this.session.event('mask.live', 'gateway', { hits: m.hits.length + all.hits.length }, { commandId: this.command?.id, maskedLive: true }));
        }
      } else {
        const masked = this.ctx.masker.maskText(body.toString('utf8'));
        if (masked.hits.length) body = Buffer.from(masked.text, 'utf8');
      }
      headers['content-length'] = body.length;
      this.res.writeHead(status, upRes.statusMessage, headers);
      this.res.end(body);
      this.finish(status >= 400 ? 'error' : 'ok');
    });
  }

  /** The collected response body, decoded and parsed; null when it was not collected or is not JSON/YAML. */
  private responseValue(): Json | null {
    if (!this.collected || this.collectOverflow || !this.upRes) return null;
    let body: Buffer = this.collected.length === 1 ? this.collected[0] : Buffer.concat(this.collected);
    if (header(this.upRes.headers['content-encoding']).toLowerCase() === 'gzip' && this.ctx.connection.mask !== 'live') {
      try {
        body = zlib.gunzipSync(body);
      } catch {
        return null;
      }
    }
    return parseBody(body, header(this.upRes.headers['content-type']));
  }

  /** A body's record: parsed and masked when the gateway read it whole; size and hash only for protobuf; else a text head. */
  private bodyOf(tap: PayloadTap, value: Json | null, headers: http.IncomingHttpHeaders, parsedWhole: boolean, direction: Direction): Json {
    const cap = this.ctx.recording?.payloadHead ?? 64 * 1024;
    const ct = header(headers['content-type']);
    const base: { [k: string]: Json } = { size: tap.size, sha256: tap.digest(), contentType: ct || null };
    if (value !== null) return { ...base, json: this.recordable(value, direction) };
    // protobuf and CBOR carry Secret bytes raw: never a head of them in the store
    if (/protobuf|cbor/i.test(ct) || this.secretResource) {
      return { ...base, omitted: /protobuf|cbor/i.test(ct) ? 'binary (protobuf) body: size and hash only' : `Secret body not parsed${parsedWhole ? '' : ' (over the parse limit)'}: size and hash only` };
    }
    const rec: BodyRecord = bodyRecord(tap, tap.digest(), headers, cap);
    return { ...rec, contentType: ct || null };
  }

  private finish(status: CommandStatus, error?: string, gatewayStatus?: number): void {
    if (this.finished) return;
    this.finished = true;
    // after this turn's synchronous recording below
    queueMicrotask(this.done);
    this.watch?.end();
    this.logs?.flush();
    if (!this.command) return;
    const end = performance.now();
    const upRes = this.upRes;
    const resValue = upRes && !this.info.streaming ? this.responseValue() : null;
    const result: Record<string, Json> = {
      method: this.info.method,
      url: this.req.url ?? '/',
      upstream: this.shared.target.label,
      status: upRes ? (upRes.statusCode ?? null) : (gatewayStatus ?? null),
      requestHeaders: recordedHeaders(this.ctx, this.req.headers, CREDENTIAL_HEADERS),
      headers: upRes ? recordedHeaders(this.ctx, upRes.headers, CREDENTIAL_HEADERS) : {},
      requestBody: this.reqTap.size > 0 || this.requestValue !== null ? this.bodyOf(this.reqTap, this.requestValue, this.req.headers, this.requestBody !== null, 'client→upstream') : null,
      responseBody: upRes ? this.bodyOf(this.resTap, resValue, upRes.headers, this.collected !== null && !this.collectOverflow, 'upstream→client') : null,
      timings: { ttfbMs: this.ttfb === null ? null : round(this.ttfb - this.t0), totalMs: round(end - this.t0) },
    };
    if (this.info.verb === 'watch') result.watchEvents = this.watch?.events ?? 0;
    if (this.info.logs) result.stdout = { bytes: this.resTap.size, sha256: this.resTap.digest(), truncated: this.logs?.over ?? false };
    if (this.info.mutation) {
      result.before = this.before ?? null;
      if (this.beforeNote) result.beforeNote = this.beforeNote;
      const ok = upRes && (upRes.statusCode ?? 500) < 300;
      let after: Json = null;
      if (this.afterOverride !== undefined) after = this.afterOverride;
      else if (ok && isObject(resValue) && resValue.kind !== 'Status') after = this.recordable(resValue);
      // a delete answers with the object as it was; gone unless finalizers keep it
      const lingers = isObject(after) && isObject(after.metadata) && after.metadata.deletionTimestamp !== undefined;
      result.after = this.info.verb === 'delete' && !lingers ? null : after;
    }
    const command = this.command;
    this.safe(() => command.finish(error === undefined ? { status, result } : { status, result, error }));
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
