/**
 * What every request on one client TCP connection shares: its session, the gateway-token check,
 * and the JSON error a client receives.
 */
import type * as http from 'node:http';
import type { Socket } from 'node:net';
import type { ListenerContext } from '../core/listener';
import type { AuthResult, Json, SessionRecorder } from '../common/types';
import { presentedCredentials, type PresentedCredential } from './auth';
import { HttpGatewayError } from './errors';

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

export function readOptions(o: Record<string, unknown>): HttpListenerOptions {
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
    // the gateway ending the session (token revoked, run ended) cuts the connection: keep-alive and streams alike
    this.session.onTerminate(() => this.socket.destroy());
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
  /** the run a `flightlog run` token belongs to */
  runId?: string;
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
    if (r.ok && r.identity) return { ok: true, identity: r.identity, credential: c, runId: r.runId };
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
