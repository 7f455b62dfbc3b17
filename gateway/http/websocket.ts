/**
 * WebSocket upgrades: authenticated like any request, then a raw socket relay after the 101,
 * with a copy of each direction fed to a frame reader that records the messages.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { Socket } from 'node:net';
import type { CommandHandle, Direction, Json, SessionRecorder } from '../common/types';
import { authenticateRequest, RUN_HEADER, type ClientConnection } from './connection';
import { HttpGatewayError, upstreamError } from './errors';
import { displayPath, recordedHeaders, type ExchangeShared } from './exchange';
import { forwardHeaders, upstreamPath } from './upstream';
import { SecretScrubber } from './scrub';
import { WsFrameReader, type WsMessage } from './ws-frames';
import { blockedMessage, decisionDetail } from '../policy/decision';

function rawResponse(status: number, statusText: string, rawHeaders: string[], body?: string): string {
  let out = `HTTP/1.1 ${status} ${statusText}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) out += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${out}\r\n${body ?? ''}`;
}

function rawError(socket: Socket, err: HttpGatewayError): void {
  const body = err.body();
  const headers = ['Content-Type', 'application/json', 'Content-Length', String(Buffer.byteLength(body)), 'Connection', 'close'];
  if (socket.writable) socket.end(rawResponse(err.status, http.STATUS_CODES[err.status] ?? 'Error', headers, body));
  else socket.destroy();
}

function messageData(m: WsMessage, cap: number): Json {
  const out: Record<string, Json> = { type: m.type, size: m.size, truncated: m.size > m.head.length || m.size > cap };
  if (m.code !== undefined) out.code = m.code;
  if (m.compressed) out.compressed = true;
  const head = Buffer.from(m.head.buffer, m.head.byteOffset, m.head.byteLength);
  if (m.type === 'binary' || m.compressed) out.base64 = head.toString('base64');
  else out.text = head.toString('utf8');
  return out;
}

export function handleUpgrade(shared: ExchangeShared, conn: ClientConnection, req: http.IncomingMessage, socket: Socket, head: Buffer): void {
  upgrade(shared, conn, req, socket, head).catch(() => socket.destroy());
}

async function upgrade(shared: ExchangeShared, conn: ClientConnection, req: http.IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
  const { ctx, options, target, stripHeaders } = shared;
  socket.on('error', () => undefined);
  const auth = authenticateRequest(ctx, req.headers, options.tokenHeader, conn.clientAddr);
  if (!auth.ok) {
    rawError(socket, auth.error as HttpGatewayError);
    return;
  }
  const runHeader = req.headers[RUN_HEADER];
  const runId = auth.runId ?? ((Array.isArray(runHeader) ? runHeader[0] : runHeader)?.trim() || conn.runId || null);
  let session: SessionRecorder;
  try {
    session = conn.sessionFor(auth.identity, runId);
  } catch {
    rawError(socket, new HttpGatewayError('recording_failed', 503, 'the gateway cannot record this session; not forwarded'));
    return;
  }
  if (session.failed) {
    rawError(socket, new HttpGatewayError('recording_failed', 503, 'Flightlog: recording failed, command not forwarded'));
    return;
  }
  const method = req.method ?? 'GET';
  const text = `${method} ${displayPath(req.url ?? '/')}`;
  const decision = ctx.policy({ connection: ctx.connection.name, protocol: 'http', identity: auth.identity, kind: 'http', text, http: { method, path: displayPath(req.url ?? '/').split('?')[0] } });
  const isWebSocket = String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
  let command: CommandHandle;
  try {
    command = session.startCommand({ kind: 'http', text, classification: 'read', detail: { method, url: displayPath(req.url ?? '/'), upgrade: String(req.headers.upgrade ?? '') } });
  } catch {
    rawError(socket, new HttpGatewayError('recording_failed', 503, 'the gateway cannot record this request; not forwarded'));
    return;
  }
  const safe = (fn: () => void): void => {
    try {
      fn();
    } catch {
      ctx.log.warn(`http ${ctx.connection.name}: recording a websocket message failed`);
    }
  };
  if (decision.action !== 'allow') {
    const message = blockedMessage(decision);
    safe(() => session.finding({ category: 'guardrail', kind: decision.rule ?? 'policy', direction: 'gateway', commandId: command.id, detail: decisionDetail(decision, text) }));
    safe(() => command.finish({ status: 'blocked', error: message }));
    rawError(socket, new HttpGatewayError('blocked_by_policy', 403, message));
    return;
  }
  // Fail-closed: the upgrade goes upstream only once its command is committed to the store.
  try {
    await session.flushed();
  } catch {
    ctx.log.error(`http session ${session.id}: recording failed; upgrade not forwarded`);
    safe(() => command.finish({ status: 'blocked', error: 'Flightlog: recording failed, command not forwarded' }));
    rawError(socket, new HttpGatewayError('recording_failed', 503, 'Flightlog: recording failed, command not forwarded'));
    return;
  }
  if (socket.destroyed) {
    safe(() => command.finish({ status: 'cancelled', error: 'the client closed the connection' }));
    return;
  }

  const headers = forwardHeaders(req.headers, stripHeaders);
  headers.host = target.url.host;
  headers.connection = 'Upgrade';
  headers.upgrade = String(req.headers.upgrade ?? 'websocket');
  for (const [k, v] of target.injectHeaders) headers[k] = v;
  // compressed frames would need the whole deflate context to read; ask for none
  const ext = headers['sec-websocket-extensions'];
  if (typeof ext === 'string') {
    const kept = ext.split(',').map((s) => s.trim()).filter((s) => !/^permessage-deflate\b/i.test(s));
    if (kept.length > 0) headers['sec-websocket-extensions'] = kept.join(', ');
    else delete headers['sec-websocket-extensions'];
  }
  const reqOpts: https.RequestOptions = {
    agent: false,
    hostname: target.url.hostname.replace(/^\[|\]$/g, ''),
    port: target.url.port || (target.isHttps ? 443 : 80),
    method,
    path: upstreamPath(target, req.url ?? '/'),
    headers,
  };
  if (target.isHttps) {
    const agentOpts = (target.agent as https.Agent).options;
    reqOpts.rejectUnauthorized = agentOpts.rejectUnauthorized;
    if (agentOpts.ca) reqOpts.ca = agentOpts.ca;
    if (!net.isIP(reqOpts.hostname as string)) reqOpts.servername = reqOpts.hostname as string;
  }
  const started = Date.now();
  let finished = false;
  const counts = { sent: 0, received: 0 };
  let closeCode: number | null = null;
  const finish = (status: 'ok' | 'error' | 'cancelled', result: Record<string, Json>, error?: string): void => {
    if (finished) return;
    finished = true;
    const r: Record<string, Json> = { ...result, messages: { sent: counts.sent, received: counts.received }, closeCode, durationMs: Date.now() - started };
    safe(() => command.finish(error === undefined ? { status, result: r } : { status, result: r, error }));
  };

  const upReq = (target.isHttps ? https : http).request(reqOpts);
  upReq.setTimeout(options.timeoutMs, () => {
    upReq.destroy(Object.assign(new Error('timeout'), { code: 'UPSTREAM_TIMEOUT' }));
  });
  upReq.on('error', (err) => {
    const e = upstreamError(err, target.label, options.timeoutMs);
    finish('error', { status: e.status, gatewayError: e.code }, e.message);
    rawError(socket, e);
  });
  let upgraded = false;
  socket.on('close', () => {
    if (!finished && !upgraded) {
      upReq.destroy();
      finish('cancelled', { status: null }, 'the client closed the connection');
    }
  });
  upReq.on('response', (upRes) => {
    // the upstream refused the upgrade: relay its answer as a plain response
    const chunks: Buffer[] = [];
    upRes.on('data', (c: Buffer) => chunks.push(c));
    upRes.on('end', () => {
      const body = Buffer.concat(chunks);
      const h = forwardHeaders(upRes.headers, new Set());
      const raw: string[] = [];
      for (const [k, v] of Object.entries(h)) if (v !== undefined) raw.push(k, Array.isArray(v) ? v.join(', ') : String(v));
      raw.push('connection', 'close');
      finish(upRes.statusCode && upRes.statusCode < 400 ? 'ok' : 'error', {
        status: upRes.statusCode ?? null,
        headers: recordedHeaders(ctx, upRes.headers, target.credentialHeaders),
      });
      socket.write(rawResponse(upRes.statusCode ?? 502, upRes.statusMessage ?? '', raw));
      socket.end(body);
    });
  });
  upReq.on('upgrade', (upRes, upSocket: Socket, upHead: Buffer) => {
    upgraded = true;
    upReq.setTimeout(0);
    upSocket.setTimeout(0);
    upSocket.on('error', () => socket.destroy());
    socket.write(rawResponse(upRes.statusCode ?? 101, upRes.statusMessage ?? 'Switching Protocols', upRes.rawHeaders));
    safe(() =>
      session.event('http.upgrade', 'upstream→client', { status: upRes.statusCode ?? 101, headers: recordedHeaders(ctx, upRes.headers, target.credentialHeaders) }, { commandId: command.id }),
    );
    const cap = ctx.recording?.payloadHead ?? 64 * 1024;
    const reader = (direction: Direction): WsFrameReader | null => {
      if (!isWebSocket) return null;
      return new WsFrameReader(cap, (m) => {
        if (m.type === 'close' && closeCode === null && m.code !== undefined) closeCode = m.code;
        if (m.type === 'text' || m.type === 'binary') {
          if (direction === 'client→upstream') counts.sent++;
          else counts.received++;
        }
        safe(() => session.event('ws.message', direction, messageData(m, cap), { commandId: command.id }));
      });
    };
    const fromClient = reader('client→upstream');
    const fromUpstream = reader('upstream→client');
    // server frames are unmasked, so injected credentials echoed back can be scrubbed in place
    const scrubber = new SecretScrubber(target.secretValues);
    const relay = (src: Socket, dst: Socket, frames: WsFrameReader | null, first: Buffer, scrub: SecretScrubber | null): void => {
      const feed = (chunk: Buffer): void => {
        if (!frames) return;
        try {
          frames.push(chunk);
        } catch {
          // an unparseable stream is still relayed; it is just no longer recorded message by message
          safe(() => session.event('ws.unparsed', 'gateway', { note: 'frames could not be parsed; relayed unrecorded from here' }, { commandId: command.id }));
          frames = null;
        }
      };
      const out = (chunk: Buffer): Buffer => (scrub && scrub.active ? scrub.push(chunk) : chunk);
      if (first.length > 0) {
        feed(first);
        dst.write(out(first));
      }
      src.on('data', (chunk: Buffer) => {
        feed(chunk);
        if (!dst.write(out(chunk))) src.pause();
      });
      dst.on('drain', () => src.resume());
      src.on('end', () => {
        const rest = scrub ? scrub.flush() : null;
        if (rest && rest.length > 0) dst.end(rest);
        else dst.end();
      });
      src.on('close', () => {
        dst.destroy();
        finish('ok', { status: upRes.statusCode ?? 101, upgrade: String(upRes.headers.upgrade ?? '') });
      });
    };
    relay(upSocket, socket, fromUpstream, upHead, scrubber);
    relay(socket, upSocket, fromClient, head, null);
  });
  upReq.end();
}
