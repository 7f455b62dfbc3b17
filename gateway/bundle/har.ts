/**
 * HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) from recorded HTTP sessions, one
 * entry per `http` or `llm` command. The HTTP listener records each exchange as the command's
 * result: {method, url (path and query), upstream (host:port), status, requestHeaders, headers,
 * requestBody, responseBody (each {size, sha256, truncated, encoding, decoded, body}), timings
 * {ttfbMs, totalMs}}. Bodies are the recorded heads, masked; a cut head says so in a comment.
 */
import { STATUS_CODES } from 'node:http';
import type { Db } from '../store/db';
import { resolveSessionId } from '../store/queries';
import { countHttpCommands, harSessionRow, httpCommandPages } from '../store/bundle-reads';
import { connectionConfigText } from '../store/connections';
import { VERSION } from '../core/version';
import { BundleError } from './errors';
import { commandView, parseJsonText } from './rows';
import { writeOut } from './streams';
import type { CommandView } from '../common/api-types';

type Obj = Record<string, unknown>;

export interface HarNameValue {
  name: string;
  value: string;
}

export interface HarEntry {
  startedDateTime: string;
  time: number;
  request: {
    method: string;
    url: string;
    httpVersion: string;
    cookies: HarNameValue[];
    headers: HarNameValue[];
    queryString: HarNameValue[];
    postData?: { mimeType: string; text: string; params?: HarNameValue[]; comment?: string };
    headersSize: number;
    bodySize: number;
  };
  response: {
    status: number;
    statusText: string;
    httpVersion: string;
    cookies: HarNameValue[];
    headers: HarNameValue[];
    content: { size: number; mimeType: string; text?: string; encoding?: string; comment?: string };
    redirectURL: string;
    headersSize: number;
    bodySize: number;
  };
  cache: Record<string, never>;
  timings: { send: number; wait: number; receive: number; blocked?: number; dns?: number; connect?: number; ssl?: number };
  comment?: string;
  _flightlog: { session: string; command: number; connection: string; identity: string | null; status: string };
}

function isObj(v: unknown): v is Obj {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function headerList(v: unknown): HarNameValue[] {
  if (!isObj(v)) return [];
  const out: HarNameValue[] = [];
  for (const [name, value] of Object.entries(v)) {
    for (const x of Array.isArray(value) ? value : [value]) if (x !== null && x !== undefined) out.push({ name, value: String(x) });
  }
  return out;
}

function header(list: HarNameValue[], name: string): string | null {
  return list.find((h) => h.name.toLowerCase() === name)?.value ?? null;
}

function ms(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) / 1000 : null;
}

function upstreamBase(db: Db, connection: string): { origin: string; basePath: string } | null {
  const text = connectionConfigText(db, connection);
  const config = text !== undefined ? parseJsonText(text) : null;
  const url = isObj(config) && isObj(config.upstream) && typeof config.upstream.url === 'string' ? config.upstream.url : null;
  if (!url) return null;
  try {
    const u = new URL(url);
    return { origin: u.origin, basePath: u.pathname.replace(/\/+$/, '') };
  } catch {
    return null;
  }
}

/** One command as a HAR entry; null for commands that are not HTTP exchanges. */
export function harEntry(c: CommandView, ctx: { connection: string; identity: string | null; base: { origin: string; basePath: string } | null }): HarEntry | null {
  if (c.kind !== 'http' && c.kind !== 'llm') return null;
  const r: Obj = isObj(c.result) ? c.result : {};
  const d: Obj = isObj(c.detail) ? c.detail : {};
  const method = typeof r.method === 'string' ? r.method : typeof d.method === 'string' ? d.method : 'GET';
  const pathAndQuery = typeof r.url === 'string' ? r.url : typeof d.url === 'string' ? d.url : '/';
  const origin = ctx.base?.origin ?? `http://${typeof r.upstream === 'string' ? r.upstream : 'upstream.invalid'}`;
  let url: URL;
  try {
    url = new URL((ctx.base?.basePath ?? '') + (pathAndQuery.startsWith('/') ? pathAndQuery : `/${pathAndQuery}`), origin);
  } catch {
    url = new URL('http://upstream.invalid/');
  }
  const reqHeaders = headerList(r.requestHeaders);
  const resHeaders = headerList(r.headers);
  const reqBody = isObj(r.requestBody) ? r.requestBody : null;
  const resBody = isObj(r.responseBody) ? r.responseBody : null;
  const status = typeof r.status === 'number' && Number.isInteger(r.status) ? r.status : 0;
  const timings = isObj(r.timings) ? r.timings : {};
  const total = ms(timings.totalMs) ?? (c.durationMs !== null && c.durationMs >= 0 ? c.durationMs : 0);
  const wait = Math.min(ms(timings.ttfbMs) ?? total, total);
  const cut = (b: Obj): string | undefined =>
    b.truncated === true ? `recorded head only: ${typeof b.size === 'number' ? b.size : '?'} bytes in all, sha256 ${String(b.sha256 ?? '?')}` : undefined;

  const entry: HarEntry = {
    startedDateTime: c.startedAt,
    time: total,
    request: {
      method,
      url: url.href,
      httpVersion: 'HTTP/1.1',
      cookies: [],
      headers: reqHeaders,
      queryString: [...url.searchParams].map(([name, value]) => ({ name, value })),
      headersSize: -1,
      bodySize: reqBody && typeof reqBody.size === 'number' ? reqBody.size : 0,
    },
    response: {
      status,
      statusText: status ? (STATUS_CODES[status] ?? '') : c.status === 'blocked' ? 'blocked by policy' : (c.error ?? ''),
      httpVersion: 'HTTP/1.1',
      cookies: [],
      headers: resHeaders,
      content: { size: 0, mimeType: header(resHeaders, 'content-type') ?? 'x-unknown' },
      redirectURL: header(resHeaders, 'location') ?? '',
      headersSize: -1,
      bodySize: resBody && typeof resBody.size === 'number' ? resBody.size : status ? -1 : 0,
    },
    cache: {},
    timings: { send: 0, wait, receive: Math.max(0, Math.round((total - wait) * 1000) / 1000) },
    _flightlog: { session: c.sessionId, command: c.id, connection: ctx.connection, identity: ctx.identity, status: c.status },
  };
  if (reqBody && typeof reqBody.body === 'string' && (reqBody.body !== '' || (typeof reqBody.size === 'number' && reqBody.size > 0))) {
    entry.request.postData = {
      mimeType: header(reqHeaders, 'content-type') ?? 'application/octet-stream',
      text: reqBody.body,
      comment: [reqBody.encoding === 'base64' ? 'text is base64' : '', cut(reqBody) ?? ''].filter(Boolean).join('; ') || undefined,
    };
    if (entry.request.postData.comment === undefined) delete entry.request.postData.comment;
  }
  if (resBody && typeof resBody.body === 'string') {
    const content = entry.response.content;
    content.text = resBody.body;
    content.size = resBody.decoded ? Buffer.byteLength(resBody.body, resBody.encoding === 'base64' ? 'base64' : 'utf8') : typeof resBody.size === 'number' ? resBody.size : 0;
    if (resBody.encoding === 'base64') content.encoding = 'base64';
    const note = cut(resBody);
    if (note) content.comment = note;
  }
  const comments = [c.error, c.status === 'blocked' ? 'blocked by policy: never sent upstream' : null].filter((x): x is string => !!x);
  if (comments.length) entry.comment = comments.join('; ');
  return entry;
}

/** Writes the HTTP exchanges of one or more sessions as one HAR 1.2 file. */
export async function exportHar(db: Db, sessionIds: string | string[], out: string): Promise<{ entries: number; bytes: number }> {
  const ids = (Array.isArray(sessionIds) ? sessionIds : [sessionIds]).map((id) => resolveSessionId(db, id));
  const sessions = ids.map((id) => harSessionRow(db, id));
  const httpPage = httpCommandPages(db);
  const count = countHttpCommands(db, ids);
  if (count === 0) {
    throw new BundleError('E_EXPORT_FORMAT', `no HTTP exchanges in ${ids.length === 1 ? `session ${ids[0]} (${sessions[0].protocol})` : 'these sessions'} to export as HAR; use --format jsonl`);
  }
  let entries = 0;
  const bytes = await writeOut(out, async (f) => {
    await f.write(`{"log":{"version":"1.2","creator":{"name":"Flightlog","version":${JSON.stringify(VERSION)}},"entries":[`);
    for (const s of sessions) {
      const base = upstreamBase(db, s.connection);
      for (let after = 0; ; ) {
        const page = httpPage(s.id, after);
        if (page.length === 0) break;
        for (const row of page) {
          const e = harEntry(commandView(row, []), { connection: s.connection, identity: s.identity, base });
          if (!e) continue;
          await f.write((entries ? ',\n' : '\n') + JSON.stringify(e));
          entries++;
        }
        after = page[page.length - 1].idx;
      }
    }
    await f.write('\n]}}\n');
  });
  return { entries, bytes };
}
