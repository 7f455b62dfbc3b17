/**
 * The HTTP listener: a recording reverse proxy from `connection.listen` to `upstream.url`.
 * One session per client TCP connection; one command per request (kind `http`, or `llm` for
 * model calls on an `llm:` connection). Bodies stream through; the recording keeps a head,
 * the size and a SHA-256 of each.
 */
import * as http from 'node:http';
import type { Socket } from 'node:net';
import type { HttpUpstream } from '../config/schema';
import type { StartListener, ListenerContext, Listener } from '../core/listener';
import type { AuthResult, Json, SessionRecorder } from '../core/types';
import { gatewayCredentialHeaders, presentedCredentials, type PresentedCredential } from './auth';
import { HttpGatewayError } from './errors';
import { Exchange, type ExchangeShared } from './exchange';
import { ConversationTracker } from './llm-turns';
import { resolveUpstream } from './upstream';
import { handleUpgrade } from './websocket';

export const RUN_HEADER = 'x-flightlog-run';

export interface HttpListenerOptions {
  timeoutMs: number;
  tokenHeader?: string;
  maxSockets: number;
  /** largest non-streamed response body masked in live mode */
  liveMaskMaxBytes: number;
  /** largest model-API request or response body parsed whole */
  llmMaxBytes: number;
}

function readOptions(o: Record<string, unknown>): HttpListenerOptions {
  const num = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : d);
  return {
    timeoutMs: num(o.timeoutMs, 30_000),
    tokenHeader: typeof o.tokenHeader === 'string' && o.tokenHeader !== '' ? o.tokenHeader : undefined,
    maxSockets: num(o.maxSockets, 256),
    liveMaskMaxBytes: num(o.liveMaskMaxBytes, 16 * 1024 * 1024),
    llmMaxBytes: num(o.llmMaxBytes, 32 * 1024 * 1024),
  };
}

/** The session of one client TCP connection; reopened if the identity or run changes mid-connection. */
export class ClientConnection {
  session: SessionRecorder | null = null;
  identity: string | null = null;
  runId: string | null = null;
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly ctx: ListenerContext,
    private readonly meta: Record<string, Json>,
    private readonly onSessionClosed: (session: SessionRecorder) => void,
  ) {}

  get clientAddr(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? 0}`;
  }

  sessionFor(identity: string, runId: string | null): SessionRecorder {
    if (this.session && this.identity === identity && this.runId === runId) return this.session;
    this.closeSession();
    this.session = this.ctx.openSession({ identity, runId, clientAddr: this.clientAddr, meta: this.meta });
    this.identity = identity;
    this.runId = runId;
    return this.session;
  }

  closeSession(status: 'closed' | 'error' = 'closed', reason?: string): void {
    if (!this.session) return;
    const s = this.session;
    this.session = null;
    try {
      s.close(status, reason);
    } finally {
      this.onSessionClosed(s);
    }
  }
}

export interface AuthOutcome {
  ok: boolean;
  identity: string;
  credential: PresentedCredential | null;
  error?: HttpGatewayError;
}

/** Checks the presented gateway token; records failed attempts. */
export function authenticateRequest(
  ctx: ListenerContext,
  headers: http.IncomingHttpHeaders,
  tokenHeader: string | undefined,
  clientAddr: string,
): AuthOutcome {
  const creds = presentedCredentials(headers, tokenHeader);
  let failure: AuthResult | null = null;
  let failedIdentity: string | null = null;
  for (const c of creds) {
    let r = ctx.authenticate(c.identity, { token: c.token });
    // a basic-auth user that is not an identity name (curl -u agent:TOKEN): let the token decide
    if (!r.ok && c.identity !== '' && r.reason === 'unknown-identity') r = ctx.authenticate('', { token: c.token });
    if (r.ok && r.identity) return { ok: true, identity: r.identity, credential: c };
    if (!failure || r.reason === 'not-allowed') {
      failure = r;
      failedIdentity = r.identity ?? (c.identity || null);
    }
  }
  const reason = creds.length === 0 ? 'missing-credential' : (failure?.reason ?? 'bad-credential');
  ctx.recordFailedAttempt({ identity: failedIdentity, clientAddr, reason });
  const error =
    reason === 'not-allowed'
      ? new HttpGatewayError('forbidden', 403, `identity ${failedIdentity ?? '?'} may not use connection ${ctx.connection.name}`)
      : creds.length === 0
        ? new HttpGatewayError('unauthorized', 401, 'a gateway token is required (Authorization: Bearer TOKEN, x-api-key, or basic auth)')
        : new HttpGatewayError('unauthorized', 401, reason === 'revoked' ? 'the gateway token was revoked' : 'the gateway token is not valid');
  return { ok: false, identity: '', credential: null, error };
}

export function sendError(res: http.ServerResponse, err: HttpGatewayError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = err.body();
  const headers: http.OutgoingHttpHeaders = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-flightlog-error': err.code,
  };
  if (err.status === 401) headers['www-authenticate'] = 'Bearer realm="flightlog"';
  res.writeHead(err.status, headers);
  res.end(body);
}

export const startHttpListener: StartListener = async (ctx: ListenerContext): Promise<Listener> => {
  const options = readOptions(ctx.connection.options ?? {});
  const target = resolveUpstream(ctx.connection.upstream as HttpUpstream, ctx.secrets, ctx.masker, options.maxSockets);
  const connections = new Map<Socket, ClientConnection>();
  /** conversation state for "new turns": per run when the run is known, else per session */
  const trackers = new Map<string, ConversationTracker>();
  const meta: Record<string, Json> = { upstream: `${target.url.protocol}//${target.label}${target.basePath}` };
  if (ctx.connection.llm) meta.llm = ctx.connection.llm;

  const shared: ExchangeShared = {
    ctx,
    options,
    target,
    stripHeaders: new Set([...gatewayCredentialHeaders(options.tokenHeader), RUN_HEADER, 'expect']),
    tracker(runId, sessionId) {
      const key = runId ? `run:${runId}` : `session:${sessionId}`;
      let t = trackers.get(key);
      if (!t) {
        t = new ConversationTracker();
        trackers.set(key, t);
        // bounded: the oldest run's conversation state goes first
        if (trackers.size > 256) trackers.delete(trackers.keys().next().value as string);
      }
      return t;
    },
  };

  const connectionOf = (socket: Socket): ClientConnection => {
    let c = connections.get(socket);
    if (!c) {
      c = new ClientConnection(socket, ctx, meta, (s) => trackers.delete(`session:${s.id}`));
      connections.set(socket, c);
    }
    return c;
  };

  const server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 30_000 }, (req, res) => {
    const conn = connectionOf(req.socket);
    try {
      new Exchange(shared, conn, req, res).start();
    } catch (err) {
      ctx.log.error(`http ${ctx.connection.name}: ${(err as Error).name}: request handling failed`);
      sendError(res, err instanceof HttpGatewayError ? err : new HttpGatewayError('upstream_error', 502, 'the gateway could not handle the request'));
    }
  });
  server.on('connection', (socket: Socket) => {
    const c = connectionOf(socket);
    socket.once('close', () => {
      c.closed = true;
      connections.delete(socket);
      c.closeSession();
    });
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    handleUpgrade(shared, connectionOf(socket), req, socket, head);
  });
  server.on('clientError', (_err, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(ctx.connection.listen.port, ctx.connection.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const address = addr && typeof addr === 'object' ? `${addr.address}:${addr.port}` : String(addr);
  ctx.log.info(`http ${ctx.connection.name}: listening on ${address} → ${target.label}`);

  let closing: Promise<void> | null = null;
  return {
    address,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const [socket, c] of connections) {
          c.closeSession();
          socket.destroy();
        }
        connections.clear();
        target.agent.destroy();
      });
      return closing;
    },
  };
};
