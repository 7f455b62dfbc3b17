/**
 * The control API's one route map: every route the gateway answers, and what each takes and
 * answers. The server dispatches through `matchRoute` and the renderer builds requests with
 * `routePath`, so a route cannot exist on one side only. Runtime-neutral: no Node, no DOM.
 */
import type {
  ApprovalDecisionInput,
  ApprovalDecisionResult,
  BlameReport,
  CommandView,
  ConnectionTestResult,
  CreateIdentityRequest,
  CreateIdentityResult,
  EventView,
  FindingView,
  GatewayStatus,
  GuardrailsSettings,
  IdentityView,
  LiveMessage,
  PendingApproval,
  RunStartResult,
  RunTimeline,
  RunView,
  SaveConnectionRequest,
  SaveGuardrailsRequest,
  SearchHit,
  SessionDetail,
  SessionListQuery,
  SessionSummary,
  SettingsSnapshot,
  StoreSecretRequest,
  StoreSecretResult,
  TestConnectionRequest,
  TrustBundleKeyRequest,
  TrustBundleKeyResult,
} from './api-types';
import type { FramesResult, ReplayIndex, SeekResult } from './replay-types';

export type RouteMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RouteSpec {
  method: RouteMethod;
  /** `:name` segments are path params, each one whole segment */
  path: string;
  /** the success status when it is not 200 */
  status?: number;
  /** a WebSocket upgrade, not a JSON request */
  websocket?: true;
}

type Ok = { ok: true };
type NoQuery = Record<string, never>;

/** What each route takes (query string, JSON body) and answers; `body: undefined` means none is sent. */
export interface RouteTypes {
  status: { query: NoQuery; body: undefined; result: GatewayStatus };
  sessions: { query: SessionListQuery; body: undefined; result: { sessions: SessionSummary[]; total: number } };
  session: { query: NoQuery; body: undefined; result: SessionDetail };
  events: { query: { afterSeq?: number; limit?: number }; body: undefined; result: { events: EventView[]; more: boolean } };
  sessionFindings: { query: NoQuery; body: undefined; result: FindingView[] };
  replayIndex: { query: NoQuery; body: undefined; result: ReplayIndex };
  replaySeek: { query: { tUs?: number }; body: undefined; result: SeekResult };
  replayFrames: { query: { afterSeq?: number; limit?: number }; body: undefined; result: FramesResult };
  command: { query: NoQuery; body: undefined; result: CommandView };
  search: { query: { q: string; limit?: number }; body: undefined; result: SearchHit[] };
  findings: { query: { sessionId?: string; limit?: number }; body: undefined; result: FindingView[] };
  blame: { query: { target: string; since?: string }; body: undefined; result: BlameReport };
  runs: { query: { limit?: number }; body: undefined; result: RunView[] };
  run: { query: NoQuery; body: undefined; result: RunTimeline };
  runStart: { query: NoQuery; body: { identity: string; argv: string[]; pid?: number }; result: RunStartResult };
  runEnd: { query: NoQuery; body: { exitCode: number | null }; result: Ok };
  approvals: { query: NoQuery; body: undefined; result: PendingApproval[] };
  decideApproval: { query: NoQuery; body: ApprovalDecisionInput & { by?: string }; result: ApprovalDecisionResult };
  secretsReload: { query: NoQuery; body: undefined; result: Ok };
  revocationsCheck: { query: NoQuery; body: undefined; result: Ok };
  bundlesTrust: { query: NoQuery; body: TrustBundleKeyRequest; result: TrustBundleKeyResult };
  settings: { query: NoQuery; body: undefined; result: SettingsSnapshot };
  guardrails: { query: NoQuery; body: undefined; result: GuardrailsSettings };
  saveGuardrails: { query: NoQuery; body: SaveGuardrailsRequest; result: GuardrailsSettings };
  saveConnection: { query: NoQuery; body: SaveConnectionRequest; result: SettingsSnapshot };
  deleteConnection: { query: NoQuery; body: undefined; result: SettingsSnapshot };
  testConnection: { query: NoQuery; body: TestConnectionRequest; result: ConnectionTestResult };
  storeSecret: { query: NoQuery; body: StoreSecretRequest; result: StoreSecretResult };
  identities: { query: NoQuery; body: undefined; result: IdentityView[] };
  createIdentity: { query: NoQuery; body: CreateIdentityRequest; result: CreateIdentityResult };
  revokeIdentity: { query: NoQuery; body: undefined; result: Ok };
  /** the live feed: each WebSocket message is one of these */
  live: { query: NoQuery; body: undefined; result: LiveMessage };
}

export const routes = {
  status: { method: 'GET', path: '/api/status' },
  sessions: { method: 'GET', path: '/api/sessions' },
  session: { method: 'GET', path: '/api/sessions/:id' },
  events: { method: 'GET', path: '/api/sessions/:id/events' },
  sessionFindings: { method: 'GET', path: '/api/sessions/:id/findings' },
  replayIndex: { method: 'GET', path: '/api/sessions/:id/replay' },
  replaySeek: { method: 'GET', path: '/api/sessions/:id/replay/seek' },
  replayFrames: { method: 'GET', path: '/api/sessions/:id/replay/frames' },
  command: { method: 'GET', path: '/api/commands/:id' },
  search: { method: 'GET', path: '/api/search' },
  findings: { method: 'GET', path: '/api/findings' },
  blame: { method: 'GET', path: '/api/blame' },
  runs: { method: 'GET', path: '/api/runs' },
  run: { method: 'GET', path: '/api/runs/:id' },
  runStart: { method: 'POST', path: '/api/runs', status: 201 },
  runEnd: { method: 'POST', path: '/api/runs/:id/end' },
  approvals: { method: 'GET', path: '/api/approvals' },
  decideApproval: { method: 'POST', path: '/api/approvals/:id' },
  secretsReload: { method: 'POST', path: '/api/secrets/reload' },
  revocationsCheck: { method: 'POST', path: '/api/revocations/check' },
  bundlesTrust: { method: 'POST', path: '/api/bundles/trust' },
  settings: { method: 'GET', path: '/api/settings' },
  guardrails: { method: 'GET', path: '/api/settings/guardrails' },
  saveGuardrails: { method: 'PUT', path: '/api/settings/guardrails' },
  saveConnection: { method: 'POST', path: '/api/settings/connections' },
  deleteConnection: { method: 'DELETE', path: '/api/settings/connections/:name' },
  testConnection: { method: 'POST', path: '/api/settings/connections/test' },
  storeSecret: { method: 'POST', path: '/api/settings/secrets', status: 201 },
  identities: { method: 'GET', path: '/api/identities' },
  createIdentity: { method: 'POST', path: '/api/identities', status: 201 },
  revokeIdentity: { method: 'POST', path: '/api/identities/:name/revoke' },
  live: { method: 'GET', path: '/api/live', websocket: true },
} as const satisfies { [R in keyof RouteTypes]: RouteSpec };

export type RouteName = keyof typeof routes;

type ParamNames<P extends string> = P extends `${string}/:${infer N}/${infer Rest}` ? N | ParamNames<`/${Rest}`> : P extends `${string}/:${infer N}` ? N : never;

/** The path params of a route, by name (`{ id }` for `/api/sessions/:id`). */
export type ParamsOf<R extends RouteName> = { [K in ParamNames<(typeof routes)[R]['path']>]: string | number };
export type QueryOf<R extends RouteName> = RouteTypes[R]['query'];
export type BodyOf<R extends RouteName> = RouteTypes[R]['body'];
export type ResultOf<R extends RouteName> = RouteTypes[R]['result'];

export const routeNames = Object.keys(routes) as RouteName[];

/** The path of a route with its params filled in, each URI-encoded as one segment. */
export function routePath<R extends RouteName>(name: R, params: ParamsOf<R>): string {
  const values = params as Record<string, string | number>;
  return routes[name].path.replace(/:(\w+)/g, (_, p: string) => encodeURIComponent(String(values[p])));
}

export interface RouteMatch {
  name: RouteName;
  params: Record<string, string>;
}

/**
 * The route a request names, or null. Segments are split before decoding, so an encoded `/` in
 * an id stays in the id; a trailing `/` is ignored. A malformed escape (`%zz`) matches nothing.
 */
export function matchRoute(method: string, pathname: string): RouteMatch | null {
  const parts = pathname.split('/').filter(Boolean);
  for (const name of routeNames) {
    const spec: RouteSpec = routes[name];
    if (spec.method !== method) continue;
    const pattern = spec.path.split('/').filter(Boolean);
    if (pattern.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < pattern.length && ok; i++) {
      if (!pattern[i].startsWith(':')) ok = pattern[i] === parts[i];
      else {
        const v = decodeSegment(parts[i]);
        if (v === null) ok = false;
        else params[pattern[i].slice(1)] = v;
      }
    }
    if (ok) return { name, params };
  }
  return null;
}

function decodeSegment(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}
