import * as http from 'node:http';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Db } from '../store/db';
import type { Recorder } from '../store/recorder';
import { FlightlogError } from '../core/errors';
import { getCommand, getSession, listEvents, listFindings, listRuns, listSessions, resolveSessionId, search } from '../store/queries';
import type { GatewayStatus, LiveMessage, LiveProtocol, SessionDetail, SessionListQuery } from '../common/api-types';
import { matchRoute, routes, type ResultOf, type RouteName, type RouteSpec } from '../common/routes';
import { IntegrityCache, type VerifyingKey } from '../store/integrity';
import type { Masker } from '../common/types';
import { createRun, endRun, runCounts, runTimeline } from '../store/runs';
import { blame } from '../store/blame';
import type { ApprovalRegistry } from '../approvals';

export interface ControlApiOptions {
  db: Db;
  /** the live store's recorder; absent when serving opened bundles (read-only, no live feed) */
  recorder?: Recorder;
  /** where the bearer token is kept (0600) */
  dataDir: string;
  host: string;
  port: number;
  /** absent when read-only: then no write routes */
  masker?: Masker;
  /** re-reads the registered secrets after `flightlog secret add` */
  reloadSecrets?: () => void;
  /** a token was revoked (a run ended, `flightlog identity revoke`): end the live sessions it covers now */
  onRevocation?: () => void;
  /** commands guardrails held for a human: listed, decided, and announced on the live feed */
  approvals?: ApprovalRegistry;
  status: () => GatewayStatus;
  /** the gateway's key: each session shown is checked against its chain, seal and rows (the "sealed" badge) */
  integrityKey?: VerifyingKey;
  /** an opened-bundles viewer: trusts a bundle's signing key (`POST /api/bundles/trust`) */
  trustBundleKey?: (req: import('../common/api-types').TrustBundleKeyRequest) => Promise<import('../common/api-types').TrustBundleKeyResult>;
  /** extra routes (runs, static UI) mounted by the gateway: return true when handled */
  extra?: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean | Promise<boolean>;
}

export interface ControlApi {
  url: string;
  token: string;
  close(): Promise<void>;
}

/** Reads the control API token from the data dir, creating it (0600) on first use. */
export function ensureControlToken(dataDir: string): string {
  const file = path.join(dataDir, 'control-token');
  if (!fs.existsSync(file)) {
    try {
      fs.writeFileSync(file, randomBytes(24).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return fs.readFileSync(file, 'utf8').trim();
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}

export function sendError(res: http.ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

/** A handler's answer when it already sent an error itself. */
export const ANSWERED: unique symbol = Symbol('answered');

export interface RouteContext {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  url: URL;
  /** the route's path params, decoded */
  params: Record<string, string>;
}

export type Handler<R extends RouteName> = (ctx: RouteContext) => ResultOf<R> | typeof ANSWERED | Promise<ResultOf<R> | typeof ANSWERED>;

/** Handlers keyed by the route map's names: each must answer its route's result type. */
export type Handlers = { [R in RouteName]?: Handler<R> };

/** Sends a route's result with the map's success status (201 where it says so). */
export function reply<R extends RouteName>(res: http.ServerResponse, name: R, result: ResultOf<R>): void {
  const spec: RouteSpec = routes[name];
  sendJson(res, spec.status ?? 200, result);
}

function answerError(res: http.ServerResponse, status: number, code: string, message: string): typeof ANSWERED {
  sendError(res, status, code, message);
  return ANSWERED;
}

/** The WebSocket subprotocol of the live feed; the token rides beside it as `bearer.<token>`. */
export const LIVE_PROTOCOL: LiveProtocol = 'flightlog.v1';
const BEARER_PROTOCOL = 'bearer.';

/**
 * The bearer token: the Authorization header, or (WebSocket handshakes only, where a browser
 * cannot set headers) a `bearer.<token>` subprotocol. Never the URL: URLs end up in logs,
 * history and Referer headers.
 */
function tokenOf(req: http.IncomingMessage, websocket = false): string | null {
  const auth = req.headers.authorization;
  if (auth && /^Bearer /i.test(auth)) return auth.slice(7).trim();
  if (!websocket) return null;
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const bearer = offered.find((p) => p.startsWith(BEARER_PROTOCOL));
  return bearer ? bearer.slice(BEARER_PROTOCOL.length) : null;
}

/** The request target, or null when it does not parse (an absolute-form URL can be malformed). */
function requestUrl(req: http.IncomingMessage): URL | null {
  try {
    return new URL(req.url ?? '/', 'http://127.0.0.1');
  } catch {
    return null;
  }
}

const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Why a request may not be served, or null. Host must name this server on loopback (a page on
 * another name that resolves to 127.0.0.1, DNS rebinding, is refused) and a browser's Origin, when
 * sent, must be this same origin (`null`, from sandboxed frames and files, is not).
 */
export function refusedOrigin(req: http.IncomingMessage, port: number, boundHost: string): string | null {
  const host = (req.headers.host ?? '').toLowerCase();
  const i = host.lastIndexOf(':');
  const name = i > host.lastIndexOf(']') ? host.slice(0, i) : host;
  const hostPort = i > host.lastIndexOf(']') ? host.slice(i + 1) : '';
  if (hostPort !== String(port) || !(LOOPBACK_NAMES.has(name) || name === boundHost.toLowerCase())) return 'forbidden host';
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let o: URL | null = null;
    try {
      o = new URL(origin);
    } catch {
      o = null;
    }
    if (!o || o.protocol !== 'http:' || o.host !== host) return 'cross-origin request refused';
  }
  if (req.headers['sec-fetch-site'] === 'cross-site') return 'cross-origin request refused';
  return null;
}

function sameToken(a: string | null, b: string): boolean {
  if (a === null) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Reads a small JSON object request body (64 KiB at most; content-type application/json). */
export async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const type = String(req.headers['content-type'] ?? '');
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new FlightlogError('E_CONTENT_TYPE', 'the request body must be JSON (content-type: application/json)');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 64 * 1024) throw new FlightlogError('E_PARAM', 'request body too large');
    chunks.push(c as Buffer);
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new FlightlogError('E_PARAM', 'request body is not valid JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new FlightlogError('E_PARAM', 'request body must be a JSON object');
  return v as Record<string, unknown>;
}

function intParam(url: URL, name: string): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new FlightlogError('E_PARAM', `${name} must be a whole number ≥ 0`);
  return n;
}

/** HTTP + WebSocket on loopback; every request must carry the bearer token. */
export async function startControlApi(opts: ControlApiOptions): Promise<ControlApi> {
  const token = ensureControlToken(opts.dataDir);
  const { db } = opts;
  const integrity = opts.integrityKey ? new IntegrityCache(db, opts.integrityKey) : null;
  /** The badge reflects a check, never the stored seal column alone. */
  const withIntegrity = async (d: SessionDetail): Promise<SessionDetail> => {
    if (integrity) {
      const r = await integrity.check(d.id);
      return { ...d, sealed: r.state === 'verified' || r.state === 'legacy', integrity: { state: r.state, message: r.message } };
    }
    // an opened bundle: its sessions are as trustworthy as the bundle's verification
    const b = d.meta && typeof d.meta === 'object' && !Array.isArray(d.meta) ? d.meta.bundle : null;
    const verified = !!b && typeof b === 'object' && !Array.isArray(b) && b.verified === true;
    return { ...d, sealed: d.sealed && verified };
  };

  const masker = opts.masker;
  const approvals = opts.approvals;
  const trustBundleKey = opts.trustBundleKey;
  /** The routes this server answers itself (settings and replay are mounted through `extra`), each checked against the map's result type. */
  const handlers: Handlers = {
    status: () => opts.status(),
    sessions: ({ url }) =>
      listSessions(db, {
        limit: intParam(url, 'limit'),
        offset: intParam(url, 'offset'),
        identity: url.searchParams.get('identity') ?? undefined,
        connection: url.searchParams.get('connection') ?? undefined,
        protocol: url.searchParams.get('protocol') ?? undefined,
        status: url.searchParams.get('status') ?? undefined,
        run: url.searchParams.get('run') ?? undefined,
        sort: (url.searchParams.get('sort') || undefined) as SessionListQuery['sort'],
        order: (url.searchParams.get('order') || undefined) as SessionListQuery['order'],
      }),
    session: ({ params }) => withIntegrity(getSession(db, params.id)),
    events: ({ url, params }) => listEvents(db, resolveSessionId(db, params.id), { afterSeq: intParam(url, 'afterSeq'), limit: intParam(url, 'limit') }),
    sessionFindings: ({ params }) => listFindings(db, { sessionId: resolveSessionId(db, params.id) }),
    command: ({ res, params }) => getCommand(db, Number(params.id)) ?? answerError(res, 404, 'E_NOT_FOUND', `no command ${params.id}`),
    search: ({ url }) => search(db, url.searchParams.get('q') ?? '', { limit: intParam(url, 'limit') }),
    findings: ({ url }) => listFindings(db, { sessionId: url.searchParams.get('sessionId') ?? undefined, limit: intParam(url, 'limit') }),
    // issue 17: object blame, one run's timeline, and what each run did
    blame: ({ url }) => blame(db, url.searchParams.get('target') ?? '', { since: url.searchParams.get('since') || undefined }),
    runs: ({ url }) => listRuns(db, { limit: intParam(url, 'limit') }).map((r) => ({ ...r, counts: runCounts(db, r.id) })),
    run: ({ params }) => runTimeline(db, params.id),
    approvals: () => approvals?.list() ?? [],
    secretsReload: () => {
      opts.reloadSecrets?.();
      return { ok: true };
    },
    revocationsCheck: () => {
      opts.onRevocation?.();
      return { ok: true };
    },
    runEnd: async ({ req, params }) => {
      const body = (await readJson(req)) as { exitCode?: unknown };
      endRun(db, params.id, typeof body.exitCode === 'number' ? body.exitCode : null);
      opts.onRevocation?.();
      return { ok: true };
    },
  };
  if (masker) {
    handlers.runStart = async ({ req }) => {
      const body = (await readJson(req)) as { identity?: unknown; argv?: unknown; pid?: unknown };
      if (typeof body.identity !== 'string') throw new FlightlogError('E_PARAM', 'identity must be a string');
      // argv can hold secrets (a URI with a password): it is stored masked.
      const argv = Array.isArray(body.argv) ? body.argv.map((a) => (typeof a === 'string' ? masker.maskText(a).text : a)) : body.argv;
      const run = createRun(db, { identity: body.identity, argv: argv as string[], pid: typeof body.pid === 'number' ? body.pid : undefined });
      return { ...run, listeners: opts.status().listeners };
    };
  }
  if (trustBundleKey) {
    handlers.bundlesTrust = async ({ req, res }) => {
      const { file, fingerprint, name } = await readJson(req);
      if (typeof file !== 'string' || typeof fingerprint !== 'string' || typeof name !== 'string') return answerError(res, 400, 'E_PARAM', 'file, fingerprint and name must be strings');
      return trustBundleKey({ file, fingerprint, name });
    };
  }
  if (approvals) {
    handlers.decideApproval = async ({ req, res, params }) => {
      const id = params.id;
      const body = await readJson(req);
      if (body.decision !== 'approve' && body.decision !== 'deny') return answerError(res, 400, 'E_PARAM', 'decision must be "approve" or "deny"');
      if (body.reason !== undefined && typeof body.reason !== 'string') return answerError(res, 400, 'E_PARAM', 'reason must be a string');
      // the CLI names its user; anyone else holding the token is the control API
      const named = typeof body.by === 'string' && /^[\w.@-]{1,64}$/.test(body.by) ? body.by : null;
      // `timeout` and `cancelled` are the gateway's own words in the record: nobody may claim them
      const by = named && named !== 'timeout' && named !== 'cancelled' ? named : 'control-api';
      const reason = typeof body.reason === 'string' ? (masker?.maskText(body.reason.slice(0, 500)).text ?? null) : null;
      if (body.scope !== undefined && (body.scope !== 'run' || body.decision !== 'approve')) return answerError(res, 400, 'E_PARAM', 'scope may only be "run", with decision "approve"');
      const scope = body.scope === 'run' ? 'run' : undefined;
      const r = approvals.decide(id, body.decision, by, reason, scope);
      if (r === 'unknown') return answerError(res, 404, 'E_NOT_FOUND', `no pending approval ${id}`);
      if (r === 'decided') return answerError(res, 409, 'E_DECIDED', `approval ${id} was already decided`);
      if (r === 'no-run') return answerError(res, 400, 'E_PARAM', `approval ${id} is not part of a run: approve it alone`);
      return { id, decision: body.decision, by, ...(scope ? { scope } : {}) };
    };
  }

  let port = opts.port;
  const boundHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = requestUrl(req);
    if (!url) {
      req.resume();
      return sendError(res, 400, 'E_PARAM', 'malformed request target');
    }
    const refused = refusedOrigin(req, port, boundHost);
    if (refused) {
      req.resume();
      return sendError(res, 403, 'E_ORIGIN', refused);
    }
    if (opts.extra && !url.pathname.startsWith('/api/') && (await opts.extra(req, res, url))) return;
    if (!sameToken(tokenOf(req), token)) return sendError(res, 401, 'E_UNAUTHORIZED', 'missing or wrong control API token');
    if (opts.extra && (await opts.extra(req, res, url))) return;
    const m = matchRoute(req.method ?? 'GET', url.pathname);
    // a viewer of opened bundles writes one thing: the user's own trust store
    if (req.method === 'POST' && !opts.masker && !(m?.name === 'bundlesTrust' && handlers.bundlesTrust)) return sendError(res, 405, 'E_READ_ONLY', 'this view is read-only (opened bundles)');
    const handler = m ? (handlers[m.name] as Handler<RouteName> | undefined) : undefined;
    if (m && handler) {
      const result = await handler({ req, res, url, params: m.params });
      if (result !== ANSWERED) reply(res, m.name, result);
      return;
    }
    if (req.method !== 'GET') return sendError(res, 405, 'E_METHOD', `${req.method} is not allowed on ${url.pathname}`);
    sendError(res, 404, 'E_NOT_FOUND', `no route ${url.pathname}`);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      if (err instanceof FlightlogError) {
        const status = err.code === 'E_NOT_FOUND' ? 404 : 400;
        return sendError(res, status, err.code, err.message);
      }
      sendError(res, 500, 'E_INTERNAL', 'internal error');
    });
  });

  // a client that half-closes after its request still gets the answer (see gateway/http/listener.ts)
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024,
    // echo only our protocol name, never the bearer.<token> offered beside it
    handleProtocols: (offered) => (offered.has(LIVE_PROTOCOL) ? LIVE_PROTOCOL : false),
  });
  const clients = new Set<WebSocket>();
  const refuse = (socket: Duplex, status: string) => {
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  };
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = requestUrl(req);
    if (refusedOrigin(req, port, boundHost)) return refuse(socket, '403 Forbidden');
    if (!url || matchRoute('GET', url.pathname)?.name !== 'live') return refuse(socket, '404 Not Found');
    if (!sameToken(tokenOf(req, true), token)) return refuse(socket, '401 Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => {
      clients.add(ws);
      ws.on('close', () => clients.delete(ws));
      ws.on('error', () => clients.delete(ws));
    });
  });
  const broadcast = (n: LiveMessage) => {
    if (clients.size === 0) return;
    const text = JSON.stringify(n);
    for (const ws of clients) if (ws.bufferedAmount < 4 * 1024 * 1024) ws.send(text);
  };
  const unsubscribeRecorder = opts.recorder ? opts.recorder.subscribe(broadcast) : () => undefined;
  const unsubscribeApprovals = opts.approvals
    ? opts.approvals.subscribe((c) =>
        broadcast({
          type: 'approval',
          sessionId: c.approval.sessionId,
          id: c.approval.id,
          state: c.state === 'pending' ? 'pending' : c.outcome.decision === 'approve' ? 'approved' : 'denied',
          by: c.state === 'decided' ? c.outcome.by : undefined,
        }),
      )
    : () => undefined;
  const unsubscribe = (): void => {
    unsubscribeRecorder();
    unsubscribeApprovals();
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new FlightlogError('E_ADDR_IN_USE', `control API: ${opts.host}:${opts.port} is already in use`) : err),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  port = addr.port;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    token,
    close: async () => {
      unsubscribe();
      integrity?.close(true);
      for (const ws of clients) ws.terminate();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
