/**
 * exec, attach and port-forward: HTTP upgrades (WebSocket `v5.channel.k8s.io`/`v4.channel.k8s.io`,
 * SPDY/3.1) relayed byte for byte between kubectl and the API server, with the gateway's login
 * upstream. A copy of each direction is read for the recording: stdin, stdout, stderr, resize and
 * the exit status become terminal events ('i', 'o', 'e', 'r', 'exit') as for SSH, so the session
 * replays in the app like one.
 */
import { createHash, type Hash } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import type { CommandHandle, CommandStatus, Direction, Json, PolicyDecision, SessionRecorder } from '../common/types';
import { authenticateRequest, type ClientConnection } from '../http/connection';
import { WsFrameReader, type WsMessage } from '../http/ws-frames';
import { TextCoalescer } from '../ssh/text-coalescer';
import { blockedMessage, decisionDetail, holdTerms } from '../policy/decision';
import { deniedMessage, recordApprovalOutcome } from '../approvals';
import { authMessage, decide, errorBody, requestOptions, upstreamHeaders, upstreamStatus, type KubeShared } from './shared';
import { kubeDetail, kubectlText, kubeTargets, parseKubeRequest } from './request-info';
import { SpdyTap } from './spdy-tap';

function rawStatus(socket: Socket, code: number, reason: string, message: string): void {
  const { body, contentType } = errorBody(code, reason, message);
  const text = http.STATUS_CODES[code] ?? 'Error';
  if (socket.writable) socket.end(`HTTP/1.1 ${code} ${text}\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  else socket.destroy();
}

/** One stream's head as text events, its size and hash in full. */
class StreamCapture {
  bytes = 0;
  private kept = 0;
  private over = false;
  private readonly hash: Hash = createHash('sha256');
  private readonly coalescer: TextCoalescer;

  constructor(
    private readonly kind: string,
    private readonly direction: Direction,
    private readonly cap: number,
    private readonly emit: (kind: string, direction: Direction, data: Json) => void,
  ) {
    this.coalescer = new TextCoalescer((text) => emit(kind, direction, text));
  }

  push(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    if (this.over) return;
    const take = Math.min(chunk.length, this.cap - this.kept);
    if (take > 0) {
      this.coalescer.push(Buffer.from(chunk.buffer, chunk.byteOffset, take));
      this.kept += take;
    }
    if (this.kept >= this.cap && !this.over) {
      this.over = true;
      this.coalescer.flush();
      this.emit('truncated', this.direction, { stream: this.kind, recordedBytes: this.kept });
    }
  }

  flush(): void {
    this.coalescer.flush();
  }

  summary(): { [k: string]: Json } {
    const s: { [k: string]: Json } = { bytes: this.bytes, sha256: this.hash.digest('hex') };
    if (this.over) s.truncated = true;
    return s;
  }
}

/** What the terminal streams of one exec/attach recorded; the listener names the channels. */
export class TerminalRecording {
  readonly stdin: StreamCapture;
  readonly stdout: StreamCapture;
  readonly stderr: StreamCapture;
  exitCode: number | null = null;
  exitMessage: string | null = null;
  /** bytes of a port-forward, by direction */
  forwarded = { up: 0, down: 0 };

  constructor(
    private readonly session: SessionRecorder,
    private readonly commandId: number,
    cap: number,
  ) {
    const emit = (kind: string, direction: Direction, data: Json): void => {
      try {
        session.event(kind, direction, data, { commandId });
      } catch {
        // the store failed: the session fails closed
      }
    };
    this.stdin = new StreamCapture('i', 'client→upstream', cap, emit);
    this.stdout = new StreamCapture('o', 'upstream→client', cap, emit);
    this.stderr = new StreamCapture('e', 'upstream→client', cap, emit);
  }

  resize(cols: number, rows: number): void {
    this.stdout.flush();
    try {
      this.session.event('r', 'client→upstream', `${cols}x${rows}`, { commandId: this.commandId });
    } catch {
      // as above
    }
  }

  /** The error channel's Status: Success, or Failure with an ExitCode cause. */
  status(text: string): void {
    try {
      const s = JSON.parse(text) as { status?: string; message?: string; details?: { causes?: Array<{ reason?: string; message?: string }> } };
      if (s.status === 'Success') {
        this.exitCode = 0;
        return;
      }
      const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
      this.exitCode = cause?.message !== undefined && /^\d+$/.test(cause.message) ? Number(cause.message) : 1;
      this.exitMessage = s.message ?? null;
    } catch {
      this.exitMessage = text.slice(0, 200);
    }
  }

  finish(command: CommandHandle, closedBy: string): void {
    this.stdin.flush();
    this.stdout.flush();
    this.stderr.flush();
    try {
      this.session.event('exit', 'upstream→client', { code: this.exitCode, signal: null }, { commandId: this.commandId });
    } catch {
      // as above
    }
    const result: { [k: string]: Json } = { exitCode: this.exitCode, stdout: this.stdout.summary(), stderr: this.stderr.summary(), stdin: this.stdin.summary(), closedBy };
    if (this.forwarded.up || this.forwarded.down) result.forwarded = { toPod: this.forwarded.up, fromPod: this.forwarded.down };
    if (this.exitMessage) result.message = this.exitMessage;
    const status: CommandStatus = this.exitCode === null || this.exitCode === 0 ? 'ok' : 'error';
    try {
      command.finish({ status, result, error: status === 'error' ? (this.exitMessage ?? `exit status ${this.exitCode}`) : undefined });
    } catch {
      // as above
    }
  }
}

/** Reads the channel protocol (v4/v5.channel.k8s.io) out of the WebSocket messages of each direction. */
function channelTaps(rec: TerminalRecording, cap: number): { up: (b: Buffer) => void; down: (b: Buffer) => void } {
  const client = new WsFrameReader(cap, (m: WsMessage) => {
    if (m.type !== 'binary' || m.head.length === 0) return;
    const ch = m.head[0];
    const data = m.head.subarray(1);
    if (ch === 0 && data.length) rec.stdin.push(data);
    else if (ch === 4 && data.length) {
      try {
        const s = JSON.parse(Buffer.from(data).toString('utf8')) as { Width?: number; Height?: number };
        if (typeof s.Width === 'number' && typeof s.Height === 'number') rec.resize(s.Width, s.Height);
      } catch {
        // not a resize message after all
      }
    }
  });
  const server = new WsFrameReader(cap, (m: WsMessage) => {
    if (m.type !== 'binary' || m.head.length === 0) return;
    const ch = m.head[0];
    const data = m.head.subarray(1);
    if (data.length === 0) return;
    if (ch === 1) rec.stdout.push(data);
    else if (ch === 2) rec.stderr.push(data);
    else if (ch === 3) rec.status(Buffer.from(data).toString('utf8'));
  });
  return { up: (b) => client.push(b), down: (b) => server.push(b) };
}

export function handleKubeUpgrade(shared: KubeShared, conn: ClientConnection, req: http.IncomingMessage, socket: Socket, head: Buffer): void {
  const { ctx, options } = shared;
  socket.on('error', () => undefined);
  const auth = authenticateRequest(ctx, req.headers, undefined, conn.clientAddr);
  if (!auth.ok) {
    const e = auth.error!;
    return rawStatus(socket, e.status, e.status === 401 ? 'Unauthorized' : 'Forbidden', authMessage(e.status, e.message));
  }
  const runId = auth.runId ?? conn.runId ?? null;
  let session: SessionRecorder;
  try {
    session = conn.sessionFor(auth.identity, runId);
  } catch {
    return rawStatus(socket, 503, 'ServiceUnavailable', 'flightlog: the gateway cannot record this session; not forwarded');
  }
  if (session.failed) return rawStatus(socket, 503, 'ServiceUnavailable', 'flightlog: recording failed, command not forwarded');
  const info = parseKubeRequest(req.method ?? 'GET', req.url ?? '/');
  const text = kubectlText(info);
  const streamDone = shared.working(socket);
  socket.once('close', () => setImmediate(streamDone));
  let command: CommandHandle;
  const start = (): boolean => {
    try {
      command = session.startCommand({ kind: 'kubectl', text, classification: info.classification, targets: kubeTargets(info), detail: kubeDetail(info) });
      return true;
    } catch {
      rawStatus(socket, 503, 'ServiceUnavailable', 'flightlog: the gateway cannot record this command; not forwarded');
      return false;
    }
  };
  const refuse = (message: string, record: (cmd: CommandHandle) => void): void => {
    if (!start()) return;
    try {
      record(command);
      command.finish({ status: 'blocked', error: message, result: { status: 403 } });
    } catch {
      // the store failed: refused all the same
    }
    rawStatus(socket, 403, 'Forbidden', message);
  };

  if (info.ports && !options.allowPortForward) {
    const decision: PolicyDecision = { action: 'block', rule: 'port-forward', reason: `port-forward is off on connection ${ctx.connection.name} (options.allowPortForward: true turns it on)` };
    const message = blockedMessage(decision);
    return refuse(message, (cmd) =>
      session.finding({ category: 'guardrail', kind: 'port-forward', direction: 'gateway', commandId: cmd.id, detail: decisionDetail(decision, text) }),
    );
  }
  const decision = decide(shared, auth.identity, info, text);
  const go = (): void => {
    if (!start()) return;
    session.flushed().then(
      () => {
        if (socket.destroyed) return finishCancelled(command);
        connectUpstream(shared, req, socket, head, session, command, info.ports !== undefined);
      },
      () => rawStatus(socket, 503, 'ServiceUnavailable', 'flightlog: recording failed, command not forwarded'),
    );
  };
  if (decision.action === 'allow') return go();
  if (decision.action === 'hold' && ctx.holdForApproval) {
    const held = ctx.holdForApproval({
      sessionId: session.id,
      identity: auth.identity,
      runId,
      commandText: ctx.masker.maskText(text).text,
      ...holdTerms(decision),
    });
    const gone = (): void => held.cancel();
    socket.once('close', gone);
    void held.outcome.then((outcome) => {
      socket.off('close', gone);
      if (socket.destroyed) return;
      if (outcome.decision !== 'approve') {
        return refuse(deniedMessage(decision.rule, outcome), (cmd) => recordApprovalOutcome(session, decision, held.approval, outcome, cmd.id));
      }
      go();
      try {
        recordApprovalOutcome(session, decision, held.approval, outcome, command?.id);
      } catch {
        // as above
      }
    });
    return;
  }
  refuse(blockedMessage(decision), (cmd) =>
    session.finding({ category: 'guardrail', kind: decision.rule ?? 'policy', direction: 'gateway', commandId: cmd.id, detail: decisionDetail(decision, text) }),
  );
}

function finishCancelled(command: CommandHandle): void {
  try {
    command.finish({ status: 'cancelled', error: 'the client closed the connection' });
  } catch {
    // the store failed
  }
}

function connectUpstream(shared: KubeShared, req: http.IncomingMessage, socket: Socket, head: Buffer, session: SessionRecorder, command: CommandHandle, portForward: boolean): void {
  const { target, options } = shared;
  const headers = upstreamHeaders(shared, req.headers);
  headers.connection = 'Upgrade';
  headers.upgrade = req.headers.upgrade ?? 'websocket';
  const opts = requestOptions(shared, req.method ?? 'GET', req.url ?? '/', headers);
  // an upgraded socket never goes back to a pool: its own connection, with the same TLS login
  Object.assign(opts, { agent: false, ...target.tls });
  const upReq = (target.isHttps ? https : http).request(opts);
  upReq.setTimeout(options.timeoutMs, () => upReq.destroy(Object.assign(new Error('timeout'), { code: 'UPSTREAM_TIMEOUT' })));
  let done = false;
  upReq.on('error', (err) => {
    if (done) return;
    done = true;
    const s = upstreamStatus(shared, err);
    try {
      command.finish({ status: 'error', error: s.message, result: { status: s.code } });
    } catch {
      // the store failed
    }
    rawStatus(socket, s.code, s.reason, s.message);
  });
  socket.once('close', () => {
    if (!done) upReq.destroy();
  });
  upReq.on('response', (res) => {
    // no upgrade: the API server said why (a 400 for a stopped container, a 403…); the client reads it
    done = true;
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const body = Buffer.concat(chunks);
      let lines = `HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}\r\n`;
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        const k = res.rawHeaders[i].toLowerCase();
        if (k === 'connection' || k === 'transfer-encoding' || k === 'content-length' || k === 'keep-alive') continue;
        lines += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`;
      }
      lines += `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
      if (socket.writable) socket.end(Buffer.concat([Buffer.from(lines, 'latin1'), body]));
      const text = body.toString('utf8').slice(0, 2000);
      try {
        command.finish({ status: 'error', error: `upstream answered HTTP ${res.statusCode}`, result: { status: res.statusCode ?? null, body: text } });
      } catch {
        // the store failed
      }
    });
  });
  upReq.on('upgrade', (res, upSocket: Socket, upHead: Buffer) => {
    done = true;
    upReq.setTimeout(0);
    upSocket.setTimeout(0);
    let lines = `HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}\r\n`;
    for (let i = 0; i < res.rawHeaders.length; i += 2) lines += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`;
    const protocol = String(res.headers['sec-websocket-protocol'] ?? '');
    const upgrade = String(res.headers.upgrade ?? '').toLowerCase();
    try {
      session.event('k8s.upgrade', 'upstream→client', { upgrade, protocol }, { commandId: command.id });
    } catch {
      // the store failed
    }
    const rec = new TerminalRecording(session, command.id, options.streamHead);
    let up: (b: Buffer) => void;
    let down: (b: Buffer) => void;
    if (portForward) {
      up = (b) => (rec.forwarded.up += b.length);
      down = (b) => (rec.forwarded.down += b.length);
    } else if (/channel\.k8s\.io/.test(protocol)) {
      ({ up, down } = channelTaps(rec, 1024 * 1024));
    } else if (upgrade.startsWith('spdy/')) {
      const tap = new SpdyTap(rec);
      up = (b) => tap.client(b);
      down = (b) => tap.server(b);
    } else {
      up = (b) => rec.stdin.push(b);
      down = (b) => rec.stdout.push(b);
    }
    socket.write(lines + '\r\n');
    if (upHead.length) {
      down(upHead);
      socket.write(upHead);
    }
    if (head.length) {
      up(head);
      upSocket.write(head);
    }
    let closedBy = '';
    const pipe = (from: Socket, to: Socket, tap: (b: Buffer) => void, name: string): void => {
      from.on('data', (b: Buffer) => {
        try {
          tap(b);
        } catch {
          // a frame the reader cannot parse is still forwarded
        }
        if (!to.write(b)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => {
        closedBy ||= name;
        to.end();
        // kubectl half-closes when it is done; an API server may keep its side open: give it a moment to finish, then cut both
        if (name === 'client') setTimeout(() => {
          socket.destroy();
          upSocket.destroy();
        }, 2000).unref();
      });
      from.on('close', () => {
        closedBy ||= name;
        to.destroy();
      });
      from.on('error', () => undefined);
    };
    pipe(socket, upSocket, up, 'client');
    pipe(upSocket, socket, down, 'upstream');
    let finished = false;
    const end = (): void => {
      if (finished) return;
      finished = true;
      rec.finish(command, closedBy || 'client');
    };
    socket.once('close', end);
    upSocket.once('close', end);
  });
  upReq.end();
}
