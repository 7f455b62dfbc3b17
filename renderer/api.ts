/**
 * The control API client: every request carries the bearer token the page got in its URL
 * fragment (web mode) or from the Electron shell. Types come from the gateway's own module.
 */
import type {
  ApprovalDecisionInput,
  ApprovalDecisionResult,
  ConnectionInput,
  LiveMessage,
  LiveProtocol,
  SessionListQuery,
  SettingsFieldError,
  TestConnectionRequest,
  TrustBundleKeyRequest,
  TrustBundleKeyResult,
} from '../gateway/common/api-types';
import { routePath, routes, type BodyOf, type ParamsOf, type QueryOf, type ResultOf, type RouteMethod, type RouteName, type RouteSpec } from '../gateway/common/routes';

const TOKEN_KEY = 'flightlog-token';
const LIVE_PROTOCOL: LiveProtocol = 'flightlog.v1';

/**
 * Moves a token from the URL fragment (`#token=`, never sent to a server) into session storage
 * and out of the address bar. A `?token=` query is dropped unread: it would be in the request line.
 */
export function takeTokenFromUrl(): void {
  const hash = location.hash.replace(/^#/, '');
  const token = new URLSearchParams(hash.startsWith('/') ? '' : hash).get('token');
  if (new URLSearchParams(location.search).has('token')) history.replaceState(null, '', `${location.pathname}${location.hash}`);
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, '', `${location.pathname}#/sessions`);
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Params = Record<string, string | number | undefined | null>;

async function get<T>(path: string, params: Params = {}): Promise<T> {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  const url = qs.size ? `${path}?${qs}` : path;
  const res = await fetch(url, { headers: { authorization: `Bearer ${token() ?? ''}` }, cache: 'no-store' });
  if (!res.ok) {
    let code = 'E_HTTP';
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: { code?: string; message?: string } };
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(res.status, code, message);
  }
  return (await res.json()) as T;
}

/** What a call to route R sends: its path params, query and JSON body, each only where the route has one. */
export type CallArgs<R extends RouteName> = (keyof ParamsOf<R> extends never ? { params?: undefined } : { params: ParamsOf<R> }) & { query?: QueryOf<R> } & (BodyOf<R> extends undefined ? { body?: undefined } : { body: BodyOf<R> });

type ArgsTuple<R extends RouteName> = Record<string, never> extends CallArgs<R> ? [args?: CallArgs<R>] : [args: CallArgs<R>];

/**
 * One control API call, typed by the route map: reads go through `get` (ApiError), writes through
 * `send` (FieldError, with the refused field's path).
 */
export function call<R extends RouteName>(name: R, ...[args]: ArgsTuple<R>): Promise<ResultOf<R>> {
  const a = (args ?? {}) as { params?: ParamsOf<R>; query?: Params; body?: unknown };
  const spec: RouteSpec = routes[name];
  const path = routePath(name, (a.params ?? {}) as ParamsOf<R>);
  if (spec.method === 'GET') return get<ResultOf<R>>(path, a.query ?? {});
  return send<ResultOf<R>>(spec.method, path, a.body);
}

export const api = {
  status: () => call('status'),
  sessions: (q: SessionListQuery) => call('sessions', { query: q }),
  session: (id: string) => call('session', { params: { id } }),
  events: (id: string, afterSeq = 0, limit = 1000) => call('events', { params: { id }, query: { afterSeq, limit } }),
  command: (id: number) => call('command', { params: { id } }),
  search: (q: string, limit = 500) => call('search', { query: { q, limit } }),
  findings: (limit = 5000) => call('findings', { query: { limit } }),
  runs: (limit = 200) => call('runs', { query: { limit } }),
  replayIndex: (id: string) => call('replayIndex', { params: { id } }),
  seek: (id: string, tUs: number) => call('replaySeek', { params: { id }, query: { tUs: Math.max(0, Math.floor(tUs)) } }),
  frames: (id: string, afterSeq: number, limit = 2000) => call('replayFrames', { params: { id }, query: { afterSeq, limit } }),
  approvals: () => call('approvals'),
  // issue 17: object blame and run timelines
  blame: (target: string, since?: string) => call('blame', { query: { target, since } }),
  run: (id: string) => call('run', { params: { id } }),
};

/** A refused Settings write: `path` names the config field the validator refused (`connections[0].upstream.url`). */
export class FieldError extends ApiError {
  constructor(
    status: number,
    code: string,
    message: string,
    readonly path: string | null,
    /** the line within submitted text (the guardrails editor) */
    readonly line: number | null = null,
  ) {
    super(status, code, message);
    this.name = 'FieldError';
  }
}

/** A state-changing request: JSON body, token in the Authorization header (never the URL), same origin. */
async function send<T>(method: RouteMethod, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${token() ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit' });
  const json = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string; path?: string; line?: number } } | null;
  if (!res.ok) throw new FieldError(res.status, json?.error?.code ?? 'E_HTTP', json?.error?.message ?? `${res.status} ${res.statusText}`, json?.error?.path ?? null, json?.error?.line ?? null);
  return json as T;
}

/** Tells the shell (status chip, onboarding) that connections or identities changed. */
export function announceSettingsChanged(): void {
  window.dispatchEvent(new Event('flightlog-settings-changed'));
}

export const settingsApi = {
  get: () => call('settings'),
  saveConnection: (connection: ConnectionInput, replaces?: string) => call('saveConnection', { body: { connection, replaces } }),
  deleteConnection: (name: string) => call('deleteConnection', { params: { name } }),
  createIdentity: (name: string, kind: 'agent' | 'human') => call('createIdentity', { body: { name, kind } }),
  revokeIdentity: (name: string) => call('revokeIdentity', { params: { name } }),
  guardrails: () => call('guardrails'),
  saveGuardrails: (yaml: string) => call('saveGuardrails', { body: { yaml } }),
};

/** A human's answer to a held command; a 409 means someone (the CLI, another window) decided first. */
export function decideApproval(id: string, input: ApprovalDecisionInput): Promise<ApprovalDecisionResult> {
  return call('decideApproval', { params: { id }, body: input });
}

export type LiveState = 'connecting' | 'live' | 'offline';

/** The live feed: one WebSocket, reconnecting with backoff, fanned out to subscribers. */
class LiveFeed {
  private ws: WebSocket | null = null;
  private subs = new Set<(m: LiveMessage) => void>();
  private stateSubs = new Set<(s: LiveState) => void>();
  private delay = 500;
  state: LiveState = 'connecting';

  start(): void {
    if (this.ws) return;
    // the token rides as a second subprotocol (a browser cannot set headers here), never in the URL
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${routePath('live', {})}`, [LIVE_PROTOCOL, `bearer.${token() ?? ''}`]);
    this.ws = ws;
    this.setState('connecting');
    ws.onopen = () => {
      this.delay = 500;
      this.setState('live');
    };
    ws.onmessage = (e) => {
      if (typeof e.data !== 'string') return;
      let m: LiveMessage;
      try {
        m = JSON.parse(e.data) as ResultOf<'live'>;
      } catch {
        return;
      }
      for (const s of this.subs) s(m);
    };
    ws.onclose = () => {
      this.ws = null;
      this.setState('offline');
      setTimeout(() => this.start(), this.delay);
      // a restarted gateway comes back on the same port (kept per data dir): find it within seconds
      this.delay = Math.min(this.delay * 2, 3_000);
    };
  }

  private setState(s: LiveState): void {
    this.state = s;
    for (const f of this.stateSubs) f(s);
  }

  subscribe(fn: (m: LiveMessage) => void): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }

  onState(fn: (s: LiveState) => void): () => void {
    this.stateSubs.add(fn);
    return () => this.stateSubs.delete(fn);
  }
}

export const live = new LiveFeed();

/** "Trust this key…" in a bundle viewer, once the user confirmed the fingerprint; answers every bundle re-verified. */
export function trustBundleKey(req: TrustBundleKeyRequest): Promise<TrustBundleKeyResult> {
  return call('bundlesTrust', { body: req });
}

/* ───── Setup (issue 18): every field error at once, Test connection, secrets stored by Flightlog ───── */

/** A refused connection form: every field the gateway refused, each to show beside its field. */
export class FormError extends FieldError {
  constructor(
    status: number,
    code: string,
    message: string,
    path: string | null,
    readonly fields: SettingsFieldError[],
  ) {
    super(status, code, message, path);
    this.name = 'FormError';
  }
}

/** A form's write: like `call`, but a refusal lists every field (FormError). */
async function sendForm<R extends RouteName>(name: R, body: BodyOf<R>): Promise<ResultOf<R>> {
  const res = await fetch(routePath(name, {} as ParamsOf<R>), {
    method: 'POST',
    headers: { authorization: `Bearer ${token() ?? ''}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  const json = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string; path?: string; fields?: SettingsFieldError[] } } | null;
  if (!res.ok) {
    const e = json?.error;
    throw new FormError(res.status, e?.code ?? 'E_HTTP', e?.message ?? `${res.status} ${res.statusText}`, e?.path ?? null, Array.isArray(e?.fields) ? e.fields : []);
  }
  return json as ResultOf<R>;
}

export const setupApi = {
  saveConnection: (connection: ConnectionInput, replaces?: string) => sendForm('saveConnection', { connection, replaces }),
  testConnection: (input: TestConnectionRequest) => sendForm('testConnection', input),
  /** the value goes to the gateway once and is never sent back */
  storeSecret: (name: string, value: string) => sendForm('storeSecret', { name, value }),
};
