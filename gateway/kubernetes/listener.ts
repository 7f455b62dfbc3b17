/**
 * The Kubernetes listener: HTTPS on the connection's address with the gateway's own certificate,
 * in front of one API server. The agent's kubectl presents its gateway token as a bearer token;
 * the gateway logs in upstream with the connection's credentials. One session per client TCP
 * connection; one command per API request, in kubectl's words (request-info.ts).
 */
import * as https from 'node:https';
import type * as http from 'node:http';
import type { Socket } from 'node:net';
import type { KubernetesUpstream } from '../common/config-schema';
import type { StartListener, ListenerContext, Listener } from '../core/listener';
import type { Json } from '../common/types';
import { ensureGatewayCert } from '../postgres/tls-cert';
import { ClientConnection } from '../http/connection';
import { KubeExchange } from './exchange';
import { sendStatus, type KubeShared } from './shared';
import { handleKubeUpgrade } from './streams';
import { KubeConfigError, resolveKubeTarget } from './upstream';
import { closeListener, listenOn } from '../net-listen';

export interface KubeListenerOptions {
  timeoutMs: number;
  /** `kubectl port-forward` is refused unless the connection allows it */
  allowPortForward: boolean;
  /** largest request or response body parsed whole (mutations, Secrets, live masking) */
  maxParseBytes: number;
  /** head of each exec/attach/logs stream kept in the recording */
  streamHead: number;
}

export function readKubeOptions(o: Record<string, unknown>): KubeListenerOptions {
  const num = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : d);
  return {
    timeoutMs: num(o.timeoutMs, 30_000),
    allowPortForward: o.allowPortForward === true,
    maxParseBytes: num(o.maxParseBytes, 32 * 1024 * 1024),
    streamHead: num(o.streamHead, 1024 * 1024),
  };
}

export const startKubernetesListener: StartListener = async (ctx: ListenerContext): Promise<Listener> => {
  const options = readKubeOptions(ctx.connection.options ?? {});
  const target = resolveKubeTarget(ctx.connection.upstream as KubernetesUpstream, ctx.secrets, ctx.configFile ?? null);
  // a token or key read from a kubeconfig never passed through the config's secret references
  for (const v of target.secretValues) ctx.masker.addKnownSecret('upstream-token', v);
  const cert = ensureGatewayCert(ctx.dataDir);
  if (!cert) throw new KubeConfigError(`connection "${ctx.connection.name}": the gateway could not make its TLS certificate (is openssl installed?)`);
  const connections = new Map<Socket, ClientConnection>();
  const meta: Record<string, Json> = { upstream: target.label };
  /** commands whose recording must finish before their socket's session closes */
  const pending = new Map<Socket, Set<Promise<void>>>();
  const shared: KubeShared = {
    ctx,
    options,
    target,
    working(socket) {
      let done!: () => void;
      const finished = new Promise<void>((resolve) => (done = resolve));
      let set = pending.get(socket);
      if (!set) pending.set(socket, (set = new Set()));
      set.add(finished);
      void finished.then(() => set.delete(finished));
      return done;
    },
  };

  const connectionOf = (socket: Socket): ClientConnection => {
    let c = connections.get(socket);
    if (!c) {
      c = new ClientConnection(socket, ctx, meta, () => undefined);
      connections.set(socket, c);
      socket.once('close', () => {
        c!.closed = true;
        connections.delete(socket);
        const work = [...(pending.get(socket) ?? [])];
        pending.delete(socket);
        // a client may leave once it has its answer (or stop a watch): what is still being
        // recorded (a changed object read again, an exec's exit status) finishes first; 5 s at most
        void Promise.race([Promise.all(work), new Promise((r) => setTimeout(r, 5000).unref())]).then(() => c!.closeSession());
      });
    }
    return c;
  };

  const server = https.createServer({ cert: cert.cert, key: cert.key, requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 30_000 }, (req, res) => {
    try {
      new KubeExchange(shared, connectionOf(req.socket), req, res).start();
    } catch (err) {
      ctx.log.error(`kubernetes ${ctx.connection.name}: ${(err as Error).name}: request handling failed`);
      sendStatus(res, 500, 'InternalError', 'flightlog: the gateway could not handle the request');
    }
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    handleKubeUpgrade(shared, connectionOf(socket), req, socket, head);
  });
  server.on('clientError', (_err, socket: Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  server.on('tlsClientError', () => undefined);

  const addr = await listenOn(server, ctx.connection.listen);
  const address = `${addr.address}:${addr.port}`;
  ctx.log.info(`kubernetes ${ctx.connection.name}: listening on https://${address} → ${target.label}`);

  let closing: Promise<void> | null = null;
  return {
    address,
    close(): Promise<void> {
      closing ??= closeListener(server, connections, () => target.agent.destroy());
      return closing;
    },
  };
};
