/**
 * The MCP listener for servers reached over HTTP: a recording reverse proxy for the Streamable
 * HTTP transport (POST answered with JSON or an event stream, the GET stream, `Mcp-Session-Id`,
 * resumption with `Last-Event-ID`, DELETE) and the legacy HTTP+SSE transport (GET stream that
 * names a POST endpoint). The agent presents its gateway token; the server's own credentials are
 * injected upstream and never reach the agent. Every JSON-RPC message, either way, goes through
 * the transport-neutral MCP session (record, mask, guardrails) before it is passed on.
 *
 * One Flightlog session per MCP session: an `Mcp-Session-Id` spans many HTTP requests and TCP
 * connections, so sessions are keyed by it (or by the legacy endpoint, or by the client
 * connection for a server that keeps no session).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { Socket } from 'node:net';
import * as nodePath from 'node:path';
import type { HttpUpstream } from '../common/config-schema';
import type { Listener, ListenerContext, StartListener } from '../core/listener';
import type { Json } from '../common/types';
import { gatewayCredentialHeaders } from '../http/auth';
import { authenticateRequest, RUN_HEADER } from '../http/connection';
import { upstreamError } from '../http/errors';
import { SecretScrubber } from '../http/scrub';
import { forwardHeaders, resolveUpstream } from '../http/upstream';
import { replaceData, SseFramer, type SseBlock } from './http-sse';
import { jsonRpcError, JSONRPC_INVALID_REQUEST, JSONRPC_PARSE_ERROR, GATEWAY_ERROR, readMcpHttpOptions } from './http-errors';
import { openHttpMcpSession, type HttpMcpSession } from './http-session';
import { ToolBaselines, toolBaselinesFile } from './tool-drift';
import { listenOn } from '../net-listen';

/** One MCP session as the proxy tracks it. */
interface Entry {
  key: string;
  identity: string;
  runId: string | null;
  session: HttpMcpSession;
  /** client responses still open (event streams, pending POSTs): cut when the session ends */
  open: Set<http.ServerResponse>;
  upstream: Set<http.ClientRequest>;
  /** SSE event ids already recorded, so a resumed stream's replay is not recorded twice */
  seenIds: Set<string>;
  idleTimer: NodeJS.Timeout | null;
  closed: boolean;
}

const MAX_SEEN_IDS = 4096;

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function isLoopbackHost(host: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$/i.test(host);
}

export const startMcpHttpListener: StartListener = async (ctx: ListenerContext): Promise<Listener> => {
  const options = readMcpHttpOptions(ctx.connection.options ?? {});
  const target = resolveUpstream(ctx.connection.upstream as HttpUpstream, ctx.secrets, ctx.masker, 64);
  const strip = new Set([...gatewayCredentialHeaders(options.tokenHeader), RUN_HEADER, 'expect', 'cookie']);
  const entries = new Map<string, Entry>();
  const socketKeys = new WeakMap<Socket, string>();
  let socketSeq = 0;
  const loopbackListen = isLoopbackHost(ctx.connection.listen.host);
  const name = ctx.connection.name;
  // the connection's accepted tool definitions: drift spans its sessions
  const tools = new ToolBaselines(ctx.masker, toolBaselinesFile(ctx.dataDir, name));

  const removeEntry = (entry: Entry, reason: string, status: 'closed' | 'error' = 'closed'): void => {
    if (entry.closed) return;
    entry.closed = true;
    if (entries.get(entry.key) === entry) entries.delete(entry.key);
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    for (const r of entry.upstream) r.destroy();
    for (const r of entry.open) r.destroy();
    try {
      entry.session.close(status, reason);
    } catch (err) {
      ctx.log.warn(`mcp ${name}: closing session failed (${(err as Error).name})`);
    }
  };

  /** An idle session (no request, no open stream) ends after options.idleTimeoutMs: a client may vanish without DELETE. */
  const touch = (entry: Entry): void => {
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    entry.idleTimer = null;
    if (entry.closed || entry.open.size > 0) return;
    entry.idleTimer = setTimeout(() => removeEntry(entry, 'idle timeout'), options.idleTimeoutMs);
    entry.idleTimer.unref();
  };

  const track = (entry: Entry, res: http.ServerResponse): void => {
    entry.open.add(res);
    touch(entry);
    res.once('close', () => {
      entry.open.delete(res);
      touch(entry);
    });
  };

  const newEntry = (key: string, identity: string, runId: string | null, clientAddr: string, transport: 'streamable-http' | 'sse'): Entry => {
    const session = openHttpMcpSession(ctx, { identity, runId, clientAddr, upstream: `${target.url.origin}${target.url.pathname}`, transport, tools });
    const entry: Entry = { key, identity, runId, session, open: new Set(), upstream: new Set(), seenIds: new Set(), idleTimer: null, closed: false };
    entries.set(key, entry);
    // the gateway ending the session (token revoked, run ended) cuts every stream of it at once
    session.onTerminate(() => removeEntry(entry, 'terminated by the gateway'));
    return entry;
  };

  const rekey = (entry: Entry, key: string): void => {
    if (entries.get(entry.key) === entry) entries.delete(entry.key);
    entry.key = key;
    entries.set(key, entry);
  };

  const scrubber = (): SecretScrubber => new SecretScrubber(target.secretValues);

  /** The upstream path: the gateway's `/` and the upstream's own path are the MCP endpoint; any other path (a legacy POST endpoint) is kept. */
  const upstreamPathFor = (reqUrl: string): string => {
    let u: URL;
    try {
      u = new URL(reqUrl, 'http://gateway.invalid');
    } catch {
      return target.url.pathname + target.url.search;
    }
    if (u.pathname === '/' || u.pathname === target.url.pathname) return target.url.pathname + (u.search || target.url.search);
    return u.pathname + u.search;
  };

  /** The agent reaches the MCP endpoint and the legacy endpoints the server named, never the rest of the server's origin with the injected credentials. */
  const reachable = (path: string, method: string): boolean => path.split('?')[0] === target.url.pathname || (method === 'POST' && entries.has(`legacy:${path}`));
  const notReachable = (res: http.ServerResponse): void =>
    sendJson(res, 404, jsonRpcError(null, GATEWAY_ERROR, `Not found: this gateway serves the MCP endpoint of connection ${name} only`));

  const upstreamRequest = (req: http.IncomingMessage, method: string, path: string, body: Buffer | null): http.ClientRequest => {
    const headers = forwardHeaders(req.headers, strip);
    headers.host = target.url.host;
    for (const [k, v] of target.injectHeaders) headers[k] = v;
    // the recording parses every message: an encoded body could not be read
    headers['accept-encoding'] = 'identity';
    if (body) {
      delete headers['transfer-encoding'];
      headers['content-length'] = body.length;
    }
    const reqOpts: https.RequestOptions = {
      agent: target.agent,
      protocol: target.url.protocol,
      hostname: target.url.hostname.replace(/^\[|\]$/g, ''),
      port: target.url.port || (target.isHttps ? 443 : 80),
      method,
      path,
      headers,
    };
    if (target.isHttps && !net.isIP(reqOpts.hostname as string)) reqOpts.servername = reqOpts.hostname as string;
    return (target.isHttps ? https : http).request(reqOpts);
  };

  const responseHeaders = (upRes: http.IncomingMessage, scrub: SecretScrubber): http.OutgoingHttpHeaders => {
    const headers = forwardHeaders(upRes.headers, new Set(['set-cookie']));
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined) continue;
      headers[k] = Array.isArray(v) ? v.map((x) => scrub.scrubText(x)) : scrub.scrubText(String(v));
    }
    return headers;
  };

  const sendJson = (res: http.ServerResponse, status: number, body: Json, extra: http.OutgoingHttpHeaders = {}): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
    res.end(text);
  };

  const failUpstream = (res: http.ServerResponse, err: unknown, id: Json = null): void => {
    const e = upstreamError(err, target.label, options.timeoutMs);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendJson(res, e.status, jsonRpcError(id, GATEWAY_ERROR, e.message), { 'x-flightlog-error': e.code });
  };

  /** One server→client message seen on the way back: recorded before it is passed on; returns its replacement (live masking) or null. */
  const fromServer = (entry: Entry, text: string): string | null => {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return entry.session.serverMessage(json, Buffer.from(text));
  };

  /** Streams an event stream to the client event by event, recording each message once. */
  const pipeSse = (entry: Entry | null, upRes: http.IncomingMessage, res: http.ServerResponse, onLegacy: ((endpoint: string) => Entry | null) | null): void => {
    const scrub = scrubber();
    const headers = responseHeaders(upRes, scrub);
    delete headers['content-length'];
    res.writeHead(upRes.statusCode ?? 200, upRes.statusMessage, headers);
    res.flushHeaders();
    let current = entry;
    let waiting = false;
    const framer = new SseFramer((b: SseBlock) => {
      let raw = b.raw;
      const e = b.event;
      if (e && e.event === 'endpoint' && onLegacy) {
        const endpoint = legacyEndpoint(e.data);
        current = onLegacy(endpoint);
        if (endpoint !== e.data) raw = replaceData(raw, endpoint);
      } else if (e && e.event === 'message' && e.data.trim() !== '' && current) {
        let out: string | null;
        if (e.id !== undefined && current.seenIds.has(e.id)) {
          // a replay after Last-Event-ID: recorded when first seen, still masked if live
          let json: unknown;
          try {
            json = JSON.parse(e.data);
          } catch {
            json = undefined;
          }
          out = current.session.liveMask(json);
        } else {
          if (e.id !== undefined) {
            current.seenIds.add(e.id);
            if (current.seenIds.size > MAX_SEEN_IDS) current.seenIds.delete(current.seenIds.values().next().value as string);
          }
          out = fromServer(current, e.data);
        }
        if (out !== null) raw = replaceData(raw, out);
      }
      const send = scrub.scrubText(raw);
      if (!res.write(send) && !waiting) {
        waiting = true;
        upRes.pause();
        res.once('drain', () => {
          waiting = false;
          upRes.resume();
        });
      }
    });
    upRes.on('data', (chunk: Buffer) => {
      try {
        framer.push(chunk);
      } catch {
        ctx.log.warn(`mcp ${name}: an upstream event was too large to record; stream cut`);
        upRes.destroy();
        res.destroy();
      }
    });
    upRes.on('end', () => {
      const rest = framer.end();
      if (rest !== '') res.write(scrub.scrubText(rest));
      res.end();
    });
    upRes.on('error', () => res.destroy());
    res.on('close', () => {
      if (!upRes.complete) upRes.destroy();
    });
  };

  /** Reads a whole JSON response (bounded), records each message, sends it on. */
  const relayJson = (entry: Entry, upRes: http.IncomingMessage, res: http.ServerResponse, requestId: Json): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    upRes.on('data', (c: Buffer) => {
      size += c.length;
      if (size > options.maxMessageBytes) {
        over = true;
        upRes.destroy();
        return;
      }
      chunks.push(c);
    });
    upRes.on('close', () => {
      if (over) {
        entry.session.serverMessage(undefined, Buffer.from(`response over ${options.maxMessageBytes} bytes, not forwarded`));
        sendJson(res, 502, jsonRpcError(requestId, GATEWAY_ERROR, `the server's response is over ${options.maxMessageBytes} bytes: not recorded, not forwarded`));
        return;
      }
      if (!upRes.complete) {
        failUpstream(res, Object.assign(new Error('aborted'), { code: 'ECONNRESET' }), requestId);
        return;
      }
      const scrub = scrubber();
      const headers = responseHeaders(upRes, scrub);
      const body = Buffer.concat(chunks);
      const text = body.toString('utf8');
      const replaced = text.trim() !== '' ? fromServer(entry, text) : null;
      const hits = scrub.hits;
      const scrubbed = scrub.scrubText(replaced ?? text);
      // unchanged, the server's bytes go on as they came
      const out = replaced === null && scrub.hits === hits ? body : Buffer.from(scrubbed);
      headers['content-length'] = out.length;
      res.writeHead(upRes.statusCode ?? 200, upRes.statusMessage, headers);
      res.end(out);
    });
    upRes.on('error', () => undefined);
  };

  const handlePost = async (req: http.IncomingMessage, res: http.ServerResponse, auth: { identity: string; runId: string | null }, clientAddr: string): Promise<void> => {
    const body = await readBody(req, options.maxMessageBytes);
    if (body === null) {
      sendJson(res, 413, jsonRpcError(null, JSONRPC_INVALID_REQUEST, `message over ${options.maxMessageBytes} bytes`));
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      json = undefined;
    }
    const messages = Array.isArray(json) ? json : [json];
    const valid = messages.length > 0 && messages.every((m) => m !== null && typeof m === 'object' && !Array.isArray(m));
    const firstId = valid ? ((messages[0] as { id?: Json }).id ?? null) : null;
    const sid = one(req.headers['mcp-session-id']);
    const path = upstreamPathFor(req.url ?? '/');
    if (!reachable(path, 'POST')) {
      notReachable(res);
      return;
    }
    const refuseInvalid = async (known: Entry | undefined): Promise<void> => {
      // recorded where the session is known; answered as the server would (400, a JSON-RPC error)
      const v = known ? await known.session.clientMessage(undefined, body) : null;
      const reply = v && !v.forward && v.reply !== undefined ? (v.reply as Json) : jsonRpcError(null, json === undefined ? JSONRPC_PARSE_ERROR : JSONRPC_INVALID_REQUEST, json === undefined ? 'Parse error: the body is not JSON' : 'Invalid Request: expected a JSON-RPC message');
      sendJson(res, 400, reply);
    };
    let entry: Entry | undefined;
    if (sid) {
      entry = entries.get(`sid:${sid}`);
      if (!entry || entry.identity !== auth.identity) {
        // unknown to this gateway (expired, from before a restart, or another identity's): the
        // client starts a new session, as it would with the server itself
        sendJson(res, 404, jsonRpcError(firstId, GATEWAY_ERROR, 'Session not found'));
        return;
      }
    } else {
      const legacy = entries.get(`legacy:${path}`);
      if (legacy) {
        if (legacy.identity !== auth.identity) {
          sendJson(res, 404, jsonRpcError(firstId, GATEWAY_ERROR, 'Session not found'));
          return;
        }
        entry = legacy;
      } else if (!valid) {
        await refuseInvalid(undefined);
        return;
      } else {
        // initialize, or a server that keeps no session: one session per client connection
        const socketKey = socketKeyOf(req.socket);
        entry = entries.get(socketKey);
        if (entry && (entry.identity !== auth.identity || entry.runId !== auth.runId)) {
          removeEntry(entry, 'identity changed on the connection');
          entry = undefined;
        }
        if (!entry || isInitialize(messages)) {
          if (entry) removeEntry(entry, 'the client initialized a new session');
          entry = newEntry(socketKey, auth.identity, auth.runId, clientAddr, 'streamable-http');
        }
      }
    }
    const e = entry;
    touch(e);
    track(e, res);
    if (!valid) {
      await refuseInvalid(e);
      return;
    }

    // the body is put to the session first: recorded (fail-closed), guarded, maybe held
    const verdict = await e.session.clientMessage(json, body);
    if (res.destroyed) return;
    if (!verdict.forward) {
      if (verdict.reply === undefined) res.writeHead(202).end();
      else sendJson(res, 200, verdict.reply);
      return;
    }
    const upBody = body;
    const up = upstreamRequest(req, 'POST', path, upBody);
    e.upstream.add(up);
    up.setTimeout(options.timeoutMs, () => up.destroy(Object.assign(new Error('timeout'), { code: 'UPSTREAM_TIMEOUT' })));
    up.on('error', (err) => failUpstream(res, err, firstId));
    up.on('response', (upRes) => {
      up.setTimeout(0);
      e.upstream.delete(up);
      const status = upRes.statusCode ?? 502;
      const newSid = one(upRes.headers['mcp-session-id']);
      if (newSid && !sid && e.key !== `sid:${newSid}`) {
        const clash = entries.get(`sid:${newSid}`);
        if (clash && clash !== e) removeEntry(clash, 'replaced');
        rekey(e, `sid:${newSid}`);
      }
      if (sid && status === 404) {
        // the server forgot the session: so does the gateway
        upRes.on('end', () => removeEntry(e, 'the server ended the session'));
      }
      const type = String(upRes.headers['content-type'] ?? '');
      if (/^text\/event-stream/i.test(type)) pipeSse(e, upRes, res, null);
      else if (/json/i.test(type)) relayJson(e, upRes, res, firstId);
      else {
        const scrub = scrubber();
        res.writeHead(status, upRes.statusMessage, responseHeaders(upRes, scrub));
        upRes.pipe(res);
      }
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    up.end(upBody);
  };

  const handleGet = (req: http.IncomingMessage, res: http.ServerResponse, auth: { identity: string; runId: string | null }, clientAddr: string): void => {
    const path = upstreamPathFor(req.url ?? '/');
    if (!reachable(path, 'GET')) {
      notReachable(res);
      return;
    }
    const sid = one(req.headers['mcp-session-id']);
    let entry: Entry | null = null;
    if (sid) {
      entry = entries.get(`sid:${sid}`) ?? null;
      if (!entry || entry.identity !== auth.identity) {
        sendJson(res, 404, jsonRpcError(null, GATEWAY_ERROR, 'Session not found'));
        return;
      }
      touch(entry);
      track(entry, res);
    }
    const up = upstreamRequest(req, 'GET', path, null);
    if (entry) entry.upstream.add(up);
    up.setTimeout(options.timeoutMs, () => up.destroy(Object.assign(new Error('timeout'), { code: 'UPSTREAM_TIMEOUT' })));
    up.on('error', (err) => failUpstream(res, err));
    res.on('close', () => up.destroy());
    up.on('response', (upRes) => {
      up.setTimeout(0);
      const type = String(upRes.headers['content-type'] ?? '');
      if (!/^text\/event-stream/i.test(type)) {
        const scrub = scrubber();
        const headers = responseHeaders(upRes, scrub);
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, headers);
        upRes.pipe(res);
        return;
      }
      let legacy: Entry | null = null;
      const onLegacy = entry
        ? null
        : (endpoint: string): Entry | null => {
            // legacy HTTP+SSE: this stream is the session; its POSTs go to the endpoint it names
            const key = `legacy:${upstreamPathFor(endpoint)}`;
            if (legacy) rekey(legacy, key);
            else {
              legacy = newEntry(key, auth.identity, auth.runId, clientAddr, 'sse');
              track(legacy, res);
            }
            return legacy;
          };
      res.on('close', () => {
        if (legacy) removeEntry(legacy, 'the client closed the event stream');
      });
      pipeSse(entry, upRes, res, onLegacy);
    });
    up.end();
  };

  const handleDelete = (req: http.IncomingMessage, res: http.ServerResponse, auth: { identity: string }): void => {
    const path = upstreamPathFor(req.url ?? '/');
    if (!reachable(path, 'DELETE')) {
      notReachable(res);
      return;
    }
    const sid = one(req.headers['mcp-session-id']);
    const entry = sid ? entries.get(`sid:${sid}`) : undefined;
    if (!sid || !entry || entry.identity !== auth.identity) {
      sendJson(res, sid ? 404 : 400, jsonRpcError(null, GATEWAY_ERROR, sid ? 'Session not found' : 'Bad Request: Mcp-Session-Id header is required'));
      return;
    }
    const up = upstreamRequest(req, 'DELETE', path, null);
    up.setTimeout(options.timeoutMs, () => up.destroy(Object.assign(new Error('timeout'), { code: 'UPSTREAM_TIMEOUT' })));
    up.on('error', (err) => {
      failUpstream(res, err);
      removeEntry(entry, 'the client ended the session (the server did not answer)');
    });
    up.on('response', (upRes) => {
      const scrub = scrubber();
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, responseHeaders(upRes, scrub));
      upRes.pipe(res);
      const status = upRes.statusCode ?? 502;
      // 405: the server does not let clients end sessions; the session goes on
      if (status !== 405) upRes.on('end', () => removeEntry(entry, 'the client ended the session'));
    });
    up.end();
  };

  const socketKeyOf = (socket: Socket): string => {
    let k = socketKeys.get(socket);
    if (!k) {
      k = `conn:${++socketSeq}`;
      socketKeys.set(socket, k);
      const key = k;
      socket.once('close', () => {
        const e = entries.get(key);
        if (e) removeEntry(e, 'the client closed the connection');
      });
    }
    return k;
  };

  const server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 30_000 }, (req, res) => {
    const clientAddr = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`;
    const method = req.method ?? 'GET';
    // DNS rebinding: a web page must not reach a gateway on loopback through a name it controls
    if (loopbackListen) {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      const origin = one(req.headers.origin);
      let originHost = '';
      try {
        originHost = origin ? new URL(origin).hostname : '';
      } catch {
        originHost = 'invalid';
      }
      if ((host !== '' && !isLoopbackHost(host)) || (origin && !isLoopbackHost(originHost))) {
        req.resume();
        sendJson(res, 403, jsonRpcError(null, GATEWAY_ERROR, 'Forbidden: the gateway only answers requests addressed to localhost'));
        return;
      }
    }
    const auth = authenticateRequest(ctx, req.headers, options.tokenHeader, clientAddr);
    if (!auth.ok) {
      req.resume();
      const err = auth.error;
      sendJson(res, err?.status ?? 401, jsonRpcError(null, GATEWAY_ERROR, err?.message ?? 'unauthorized'), {
        'x-flightlog-error': err?.code ?? 'unauthorized',
        ...((err?.status ?? 401) === 401 ? { 'www-authenticate': 'Bearer realm="flightlog"' } : {}),
      });
      return;
    }
    const runHeader = one(req.headers[RUN_HEADER])?.trim();
    const who = { identity: auth.identity, runId: auth.runId ?? (runHeader || null) };
    if (method === 'POST') {
      handlePost(req, res, who, clientAddr).catch((err: unknown) => {
        ctx.log.error(`mcp ${name}: request handling failed (${(err as Error).name})`);
        sendJson(res, 500, jsonRpcError(null, GATEWAY_ERROR, 'the gateway could not handle the request'));
      });
    } else if (method === 'GET') handleGet(req, res, who, clientAddr);
    else if (method === 'DELETE') handleDelete(req, res, who);
    else {
      req.resume();
      sendJson(res, 405, jsonRpcError(null, GATEWAY_ERROR, `Method ${method} not allowed`), { allow: 'GET, POST, DELETE' });
    }
  });
  server.on('clientError', (_err, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  const addr = await listenOn(server, ctx.connection.listen);
  const address = `${addr.address}:${addr.port}`;
  ctx.log.info(`mcp ${name}: listening on ${address} → ${target.label} (HTTP)`);
  // the bound address (listen port 0), for `flightlog mcp config NAME`
  const announced = nodePath.join(ctx.dataDir, 'mcp', `${name}.http.json`);
  try {
    fs.mkdirSync(nodePath.dirname(announced), { recursive: true, mode: 0o700 });
    fs.writeFileSync(announced, JSON.stringify({ address, pid: process.pid }) + '\n', { mode: 0o600 });
  } catch (err) {
    ctx.log.warn(`mcp ${name}: cannot write ${announced} (${(err as NodeJS.ErrnoException).code ?? 'error'}); flightlog mcp config shows the configured address`);
  }

  let closing: Promise<void> | null = null;
  return {
    address,
    close(): Promise<void> {
      try {
        if ((JSON.parse(fs.readFileSync(announced, 'utf8')) as { address?: string }).address === address) fs.unlinkSync(announced);
      } catch {
        // already gone
      }
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const e of [...entries.values()]) removeEntry(e, 'gateway stopped');
        for (const s of sockets) s.destroy();
        target.agent.destroy();
      });
      return closing;
    },
  };
};

function isInitialize(messages: unknown[]): boolean {
  return messages.some((m) => (m as { method?: unknown }).method === 'initialize');
}

/** A legacy endpoint as the client should see it: an absolute URL to the server becomes origin-relative, so the client posts to the gateway. */
function legacyEndpoint(data: string): string {
  const s = data.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return s;
  try {
    const u = new URL(s);
    return u.pathname + u.search;
  } catch {
    return s;
  }
}

function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) over = true;
      if (!over) chunks.push(c);
    });
    req.on('end', () => resolve(over ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
