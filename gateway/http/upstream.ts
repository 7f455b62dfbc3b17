/**
 * The upstream side of an HTTP connection, resolved once at start: where requests go, the
 * credentials injected into each, and the keep-alive agent that carries them.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import type { HttpUpstream } from '../common/config-schema';
import type { Masker } from '../common/types';
import { HttpListenerConfigError } from './errors';

export const CREDENTIAL_KIND = 'upstream-credential';

export interface UpstreamTarget {
  url: URL;
  /** base path without a trailing slash ('' for '/') */
  basePath: string;
  isHttps: boolean;
  /** host:port, for messages */
  label: string;
  agent: http.Agent;
  /** lower-case header name → value, set on every upstream request */
  injectHeaders: Map<string, string>;
  /** query parameters set on every upstream request */
  injectQuery: [string, string][];
  /** every injected secret value (and derived forms), for scrubbing and masking */
  secretValues: string[];
  /** lower-case names of headers whose values are credentials */
  credentialHeaders: Set<string>;
}

function readCa(ca: string): string {
  if (ca.includes('-----BEGIN')) return ca;
  const file = ca.startsWith('~/') ? `${os.homedir()}${ca.slice(1)}` : ca;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    throw new HttpListenerConfigError(`cannot read the upstream CA file ${file}`);
  }
}

export function resolveUpstream(up: HttpUpstream, secrets: Record<string, string>, masker: Masker, maxSockets: number): UpstreamTarget {
  let url: URL;
  try {
    url = new URL(up.url);
  } catch {
    throw new HttpListenerConfigError(`upstream url "${up.url}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HttpListenerConfigError(`upstream url must be http:// or https://, got ${url.protocol}`);
  }
  const isHttps = url.protocol === 'https:';
  const injectHeaders = new Map<string, string>();
  const injectQuery: [string, string][] = [];
  const secretValues: string[] = [];
  const credentialHeaders = new Set<string>(['authorization', 'proxy-authorization', 'x-api-key', 'api-key', 'cookie', 'set-cookie']);
  const secret = (key: string, what: string): string => {
    const v = secrets[key] ?? secrets[key.toLowerCase()];
    if (v === undefined || v === '') throw new HttpListenerConfigError(`the upstream ${what} has no resolved secret value (${key})`);
    masker.addKnownSecret(CREDENTIAL_KIND, v);
    secretValues.push(v);
    return v;
  };

  for (const [name, value] of Object.entries(up.headers ?? {})) {
    const lower = name.toLowerCase();
    if (typeof value === 'string') {
      injectHeaders.set(lower, value);
    } else {
      injectHeaders.set(lower, secret(`header:${name}`, `header ${name}`));
      credentialHeaders.add(lower);
    }
  }
  if (up.bearer) {
    injectHeaders.set('authorization', `Bearer ${secret('bearer', 'bearer token')}`);
  }
  if (up.basic) {
    const password = secret('basic.password', 'basic-auth password');
    const encoded = Buffer.from(`${up.basic.user}:${password}`).toString('base64');
    // the header carries the password base64-encoded: that form is secret too
    masker.addKnownSecret(CREDENTIAL_KIND, encoded);
    secretValues.push(encoded);
    injectHeaders.set('authorization', `Basic ${encoded}`);
  }
  for (const name of Object.keys(up.query ?? {})) {
    injectQuery.push([name, secret(`query:${name}`, `query parameter ${name}`)]);
  }
  // a username/password in the URL itself is a credential as well
  if (url.password) {
    const pw = decodeURIComponent(url.password);
    masker.addKnownSecret(CREDENTIAL_KIND, pw);
    secretValues.push(pw);
    injectHeaders.set('authorization', `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${pw}`).toString('base64')}`);
    url.username = '';
    url.password = '';
  }

  const agentOpts: https.AgentOptions = { keepAlive: true, maxSockets, scheduling: 'lifo' };
  let agent: http.Agent;
  if (isHttps) {
    agentOpts.rejectUnauthorized = up.verify !== false;
    if (up.ca) agentOpts.ca = readCa(up.ca);
    agent = new https.Agent(agentOpts);
  } else {
    agent = new http.Agent(agentOpts);
  }
  const port = url.port || (isHttps ? '443' : '80');
  return {
    url,
    basePath: url.pathname.replace(/\/+$/, ''),
    isHttps,
    label: `${url.hostname}:${port}`,
    agent,
    injectHeaders,
    injectQuery,
    secretValues,
    credentialHeaders,
  };
}

/** The upstream path for a client request target, with injected query parameters set. */
export function upstreamPath(target: UpstreamTarget, clientUrl: string): string {
  let pathAndQuery = clientUrl;
  // absolute-form (a client treating us as a forward proxy): keep only path and query
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pathAndQuery)) {
    try {
      const u = new URL(pathAndQuery);
      pathAndQuery = u.pathname + u.search;
    } catch {
      pathAndQuery = '/';
    }
  }
  if (!pathAndQuery.startsWith('/')) pathAndQuery = `/${pathAndQuery}`;
  const q = pathAndQuery.indexOf('?');
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  let query = q < 0 ? '' : pathAndQuery.slice(q + 1);
  if (target.injectQuery.length > 0) {
    const params = new URLSearchParams(query);
    for (const [k, v] of target.injectQuery) params.set(k, v);
    query = params.toString();
  }
  return target.basePath + path + (query !== '' ? `?${query}` : '');
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** Copies headers minus hop-by-hop ones (and those the Connection header lists) and `drop`. */
export function forwardHeaders(headers: http.IncomingHttpHeaders, drop: Set<string>): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const listed = new Set<string>();
  const conn = headers.connection;
  if (typeof conn === 'string') for (const n of conn.split(',')) listed.add(n.trim().toLowerCase());
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || listed.has(name) || drop.has(name)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}
