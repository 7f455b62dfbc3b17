/**
 * What the Kubernetes listener's request and upgrade paths share: the upstream request (the
 * agent's credential out, the gateway's login in), the errors kubectl is told, the decision.
 */
import type * as http from 'node:http';
import type * as https from 'node:https';
import * as net from 'node:net';
import type { Socket } from 'node:net';
import type { ListenerContext } from '../core/listener';
import type { Direction, PolicyDecision, SecretHit, SessionRecorder } from '../common/types';
import { RUN_HEADER } from '../http/connection';
import { upstreamError } from '../http/errors';
import type { KubeListenerOptions } from './listener';
import { statusBody } from './objects';
import { policyVerb, type KubeRequest } from './request-info';
import type { KubeTarget } from './upstream';

export interface KubeShared {
  ctx: ListenerContext;
  options: KubeListenerOptions;
  target: KubeTarget;
  /**
   * A command on this socket whose recording may end after the client is gone (the socket's
   * close comes first): its session is closed only once it is. Returns the function that says so.
   */
  working(socket: Socket): () => void;
}

/** Request headers never forwarded: the gateway credential and what hop-by-hop or the gateway sets itself. */
const STRIP = new Set(['authorization', 'proxy-authorization', 'x-api-key', RUN_HEADER, 'host', 'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection', 'expect', 'impersonate-user', 'impersonate-group', 'impersonate-uid']);
export const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'x-api-key']);
export const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer']);

/**
 * The body of an error the gateway answers itself. A Status object, which kubectl prints as
 * `Error from server (Forbidden): …`; but for 5xx, plain text: client-go shows a 5xx's Status only
 * on some paths (discovery prints "unknown"), and plain text on all of them.
 */
export function errorBody(code: number, reason: string, message: string): { body: string; contentType: string } {
  if (code >= 500) return { body: message, contentType: 'text/plain; charset=utf-8' };
  return { body: statusBody(code, reason, message), contentType: 'application/json' };
}

export function sendStatus(res: http.ServerResponse, code: number, reason: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { body, contentType } = errorBody(code, reason, message);
  const headers: http.OutgoingHttpHeaders = { 'content-type': contentType, 'content-length': Buffer.byteLength(body) };
  if (code === 401) headers['www-authenticate'] = 'Bearer realm="flightlog"';
  res.writeHead(code, headers);
  res.end(body);
}

/** Upstream request headers: the client's, minus its credential, plus the upstream login. */
export function upstreamHeaders(shared: KubeShared, incoming: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(incoming)) {
    if (v === undefined || STRIP.has(k) || k.startsWith('impersonate-extra-')) continue;
    out[k] = v;
  }
  out.host = shared.target.url.host;
  if (shared.target.authorization) out.authorization = shared.target.authorization;
  return out;
}

export function requestOptions(shared: KubeShared, method: string, path: string, headers: http.OutgoingHttpHeaders): https.RequestOptions {
  const { target } = shared;
  const hostname = target.url.hostname.replace(/^\[|\]$/g, '');
  const opts: https.RequestOptions = {
    agent: target.agent,
    protocol: target.url.protocol,
    hostname,
    port: target.url.port || (target.isHttps ? 443 : 80),
    method,
    path: (target.url.pathname.replace(/\/$/, '') || '') + path,
    headers,
  };
  if (target.isHttps && !net.isIP(hostname)) opts.servername = hostname;
  return opts;
}

/** What a client is told when the upstream cannot be reached; nothing was forwarded. */
export function upstreamStatus(shared: KubeShared, err: unknown): { code: number; reason: string; message: string } {
  const e = upstreamError(err, shared.target.label, shared.options.timeoutMs);
  const hint = e.code === 'upstream_tls_error' ? ': the API server certificate does not match the connection\'s CA (upstream.ca); nothing was forwarded' : '';
  return { code: e.status === 504 ? 504 : 502, reason: e.status === 504 ? 'Timeout' : 'ServiceUnavailable', message: `flightlog: ${e.message}${hint}` };
}

/** `flightlog: Unauthorized: the gateway token was revoked`: kubectl prints it in `You must be logged in to the server (…)` */
export function authMessage(status: number, message: string): string {
  return `flightlog: ${status === 401 ? 'Unauthorized' : 'Forbidden'}: ${message}`;
}

export function header(v: string | string[] | number | undefined): string {
  if (v === undefined) return '';
  return Array.isArray(v) ? v.join(', ') : String(v);
}

/** Accept without protobuf: what the gateway must read (a Secret it masks) it asks for as JSON. */
export function jsonAccept(accept: string): string {
  const kept = accept
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && !/protobuf|cbor/i.test(s));
  return kept.length ? kept.join(', ') : 'application/json';
}

/** Decides a command against the guardrails; shared with the upgrade path. */
export function decide(shared: KubeShared, identity: string, info: KubeRequest, text: string): PolicyDecision {
  const { ctx } = shared;
  return ctx.policy({
    connection: ctx.connection.name,
    protocol: 'kubernetes',
    identity,
    kind: 'kubectl',
    text,
    classification: info.classification,
    http: { method: info.method, path: info.path },
    kubernetes: { verb: policyVerb(info), resource: info.resource, group: info.group, namespace: info.namespace, name: info.name },
  });
}

/** Records a hit the gateway masked before the recorder saw it (the recorder cannot see it any more). */
export function recordHits(session: SessionRecorder, hits: SecretHit[], direction: Direction, commandId: number | undefined, maskedLive = false): void {
  const seen = new Set<string>();
  for (const h of hits) {
    const key = `${h.kind}:${h.fp}`;
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      session.finding({ category: 'secret', kind: h.kind, fp: h.fp, direction, commandId, maskedLive });
    } catch {
      // the store failed: the session is failing closed already
    }
  }
}
