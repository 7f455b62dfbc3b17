/**
 * The HTTP listener: a recording reverse proxy from `connection.listen` to `upstream.url`.
 * One session per client TCP connection; one command per request (kind `http`, or `llm` for
 * model calls on an `llm:` connection). Bodies stream through; the recording keeps a head,
 * the size and a SHA-256 of each.
 */
import * as http from 'node:http';
import type { Socket } from 'node:net';
import type { HttpUpstream } from '../common/config-schema';
import type { StartListener, ListenerContext, Listener } from '../core/listener';
import type { Json } from '../common/types';
import { gatewayCredentialHeaders } from './auth';
import { ClientConnection, RUN_HEADER, readOptions, sendError } from './connection';
import { HttpGatewayError } from './errors';
import { Exchange, type ExchangeShared } from './exchange';
import { ConversationTracker } from './llm-turns';
import { resolveUpstream } from './upstream';
import { handleUpgrade } from './websocket';
import { closeListener, listenOn } from '../net-listen';

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
  // a client that sends its request and then shuts down its sending side (`nc -N`, one-shot
  // scripts) still gets the answer: Node ends the socket after that last response instead of at
  // the client's FIN (not in @types/node, a documented-by-source property of http.Server)
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
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

  const addr = await listenOn(server, ctx.connection.listen);
  const address = `${addr.address}:${addr.port}`;
  ctx.log.info(`http ${ctx.connection.name}: listening on ${address} → ${target.label}`);

  let closing: Promise<void> | null = null;
  return {
    address,
    close(): Promise<void> {
      closing ??= closeListener(server, connections, () => target.agent.destroy());
      return closing;
    },
  };
};
