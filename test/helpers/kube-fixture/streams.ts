/**
 * exec, attach and port-forward, over both transports kubectl speaks:
 * - WebSocket (the `ws` package) with the channel protocols `v5.channel.k8s.io` and
 *   `v4.channel.k8s.io`: each binary message is one channel byte (0 stdin, 1 stdout, 2 stderr,
 *   3 error, 4 resize; v5 adds 255 = close a channel, which is how stdin reaches EOF) then data;
 *   port-forward over WebSocket is SPDY tunnelled in binary messages (`SPDY/3.1+portforward.k8s.io`),
 *   as kubectl 1.31+ does, or the kubelet's channel form (`v4.channel.k8s.io`) client libraries use;
 * - SPDY/3.1 (the `spdy-transport` package): an HTTP 101 upgrade, then one SPDY stream per
 *   `streamType` header (error, stdin, stdout, stderr, resize; or error and data per forwarded
 *   connection with `port` and `requestID`). spdy-transport insists on HTTP pseudo-headers in
 *   SYN_STREAM that Kubernetes' SPDY streams never carry, so the parser's header hook fills
 *   them in, and Kubernetes' SPDY peers do no flow control, so neither does the fixture;
 *   everything else is the library's framing and header compression.
 * What the sessions run is the kubelet's business (kubelet.ts).
 */
import type * as http from 'node:http';
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import type { KubeObject } from './resources';
import { checkContainer } from './logs';
import type { Kubelet, Session } from './kubelet';
import { fail } from './status';

// spdy-transport ships no types: the small part used here.
interface WindowSide {
  current: number;
  max: number;
  limit: number;
}
interface SpdyStream extends Duplex {
  headers: Record<string, string>;
  respond(status: number, headers: Record<string, string>): void;
}
interface SpdyConnection {
  on(ev: 'stream', cb: (s: SpdyStream) => void): void;
  on(ev: 'error' | 'close', cb: (e?: Error) => void): void;
  start(version: number): void;
  end(cb?: () => void): void;
  destroyStreams(err?: Error): void;
  _spdyState: {
    parser: { parseKVs(buf: unknown, cb: (err: Error | null, headers?: Record<string, string>) => void): void };
    window: { send: WindowSide };
    streamWindow: { send: WindowSide };
  };
}
const spdy = require('spdy-transport') as { connection: { create(socket: Duplex, opts: Record<string, unknown>): SpdyConnection } };

export interface StreamOptions {
  kubelet: Kubelet;
}

export type StreamKind = 'exec' | 'attach' | 'portforward';

/** The local TCP port a pod's port forwards to: annotation `fixture.flightlog.dev/port-<port>: "<local port>"`. */
export const PORT_ANNOTATION = 'fixture.flightlog.dev/port-';

const CHANNEL_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const SPDY_EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'];
const PORTFORWARD_TUNNEL = 'SPDY/3.1+portforward.k8s.io';

const open = new Set<{ close(): void }>();

/** Ends every exec, attach and port-forward session (the fixture is closing). */
export function closeStreams(): void {
  for (const s of [...open]) s.close();
  open.clear();
}

function track(close: () => void): () => void {
  const entry = { close };
  open.add(entry);
  return () => open.delete(entry);
}

interface ExecRequest {
  argv: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  container: string;
}

function execRequest(kind: StreamKind, pod: KubeObject, q: URLSearchParams): ExecRequest {
  const container = checkContainer(pod, q.get('container'));
  const argv = q.getAll('command');
  if (kind === 'exec' && !argv.length) fail(400, 'you must specify at least 1 command');
  const tty = q.get('tty') === 'true' || q.get('tty') === '1';
  const flag = (n: string) => q.get(n) === 'true' || q.get(n) === '1';
  const r = { argv, stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr') && !tty, tty, container };
  if (!r.stdin && !r.stdout && !r.stderr) fail(400, 'you must specify at least 1 of stdin, stdout, stderr');
  return r;
}

export function handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, kind: StreamKind, pod: KubeObject, q: URLSearchParams, opts: StreamOptions): void {
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  const exec = kind === 'portforward' ? undefined : execRequest(kind, pod, q);
  if (upgrade === 'websocket') {
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    const wanted = kind === 'portforward' ? [PORTFORWARD_TUNNEL, 'v4.channel.k8s.io'] : CHANNEL_PROTOCOLS;
    const proto = wanted.find((p) => offered.includes(p));
    if (!proto) fail(400, `unable to upgrade: no supported WebSocket subprotocol among [${offered.join(', ')}]; supported: [${wanted.join(', ')}]`);
    // `ws` accepts only RFC 7230 tokens as subprotocols, and `SPDY/3.1+portforward.k8s.io` has a
    // '/': hand it a token and answer with the real name.
    req.headers['sec-websocket-protocol'] = 'k8s-stream';
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: () => proto });
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (exec) webSocketExec(ws, proto, kind as 'exec' | 'attach', exec, pod, opts.kubelet);
      else if (proto === PORTFORWARD_TUNNEL) spdyPortForward(createWebSocketStream(ws), pod, () => ws.terminate());
      else webSocketPortForward(ws, pod, q);
    });
    return;
  }
  if (upgrade.startsWith('spdy/3.1')) {
    const offered = String(req.headers['x-stream-protocol-version'] ?? '').split(',').map((s) => s.trim());
    const wanted = kind === 'portforward' ? ['portforward.k8s.io'] : SPDY_EXEC_PROTOCOLS;
    const proto = wanted.find((p) => offered.includes(p));
    if (!proto) fail(403, `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server supports [${wanted.join(' ')}]`);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${proto}\r\n\r\n`);
    if (head.length) socket.unshift(head);
    if (exec) spdyExec(socket, proto, kind as 'exec' | 'attach', exec, pod, opts.kubelet);
    else spdyPortForward(socket, pod, () => socket.destroy());
    return;
  }
  fail(400, `unable to upgrade: unsupported upgrade ${upgrade || '(none)'}`);
}

// ---- WebSocket channel protocol ---------------------------------------------------------------

function webSocketExec(ws: WebSocket, proto: string, kind: 'exec' | 'attach', r: ExecRequest, pod: KubeObject, kubelet: Kubelet): void {
  const v5 = proto.startsWith('v5.');
  const send = (channel: number, data: Buffer) => {
    if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([channel]), data]));
  };
  const session = kubelet.open(kind, pod, r, (channel, b) => send(channel === 2 && r.stderr ? 2 : 1, b));
  const untrack = track(() => {
    session.detach();
    ws.terminate();
  });
  ws.on('message', (msg: Buffer, isBinary: boolean) => {
    const data = isBinary ? msg : Buffer.from(msg);
    if (!data.length) return;
    const channel = data[0];
    const body = data.subarray(1);
    if (channel === 0 && r.stdin) session.write(body);
    else if (channel === 4) resize(session, body);
    else if (channel === 255 && v5 && body[0] === 0) session.endStdin();
  });
  ws.on('close', () => {
    session.detach();
    untrack();
  });
  ws.on('error', () => session.detach());
  void session.done.then((status) => {
    send(3, Buffer.from(JSON.stringify(status)));
    ws.close(1000);
    untrack();
  });
}

/** A resize message: one or more `{"Width":…,"Height":…}` JSON objects. */
function resize(session: Session, body: Buffer): void {
  for (const m of body.toString('utf8').match(/\{[^}]*\}/g) ?? []) {
    try {
      const s = JSON.parse(m) as { Width?: number; Height?: number };
      if (s.Width && s.Height) session.resize(s.Width, s.Height);
    } catch {
      // a malformed resize is ignored, as the kubelet does
    }
  }
}

// ---- SPDY/3.1 ----------------------------------------------------------------------------------

function spdyServer(socket: Duplex): SpdyConnection {
  const conn = spdy.connection.create(socket, { protocol: 'spdy', isServer: true, windowSize: 1 << 20 });
  const parser = conn._spdyState.parser;
  const parseKVs = parser.parseKVs.bind(parser);
  parser.parseKVs = (buf, cb) => parseKVs(buf, (err, headers) => {
    if (headers) {
      headers[':method'] ??= 'POST';
      headers[':path'] ??= '/';
    }
    cb(err, headers);
  });
  // Kubernetes' SPDY peers (moby/spdystream) never send WINDOW_UPDATE: the kubelet and API
  // server do no SPDY flow control, so neither may the fixture, or output stalls after 64 KiB.
  for (const side of [conn._spdyState.window.send, conn._spdyState.streamWindow.send]) {
    side.current = side.max = side.limit = Number.MAX_SAFE_INTEGER;
  }
  conn.on('error', () => socket.destroy());
  socket.on('error', () => undefined);
  return conn;
}

function spdyExec(socket: Duplex, proto: string, kind: 'exec' | 'attach', r: ExecRequest, pod: KubeObject, kubelet: Kubelet): void {
  const conn = spdyServer(socket);
  const streams = new Map<string, SpdyStream>();
  const expected = ['error', ...(r.stdin ? ['stdin'] : []), ...(r.stdout ? ['stdout'] : []), ...(r.stderr ? ['stderr'] : []), ...(r.tty ? ['resize'] : [])];
  let session: Session | undefined;
  const untrack = track(() => {
    session?.detach();
    socket.destroy();
  });
  socket.on('close', () => {
    session?.detach();
    untrack();
  });
  // The kubelet gives the client a while to open its streams; so does the fixture.
  const timer = setTimeout(() => socket.destroy(), 30_000);
  conn.on('stream', (stream) => {
    stream.respond(200, {});
    stream.on('error', () => undefined);
    const type = stream.headers.streamtype ?? stream.headers.streamType;
    streams.set(type, stream);
    if (type !== 'stdin' && type !== 'resize') stream.resume();
    if (!session && expected.every((t) => streams.has(t))) {
      clearTimeout(timer);
      session = spdySession(kind, r, pod, kubelet, streams, proto, () => {
        untrack();
        // The client closes the connection once it has read the error stream; a slow one is cut off later.
        setTimeout(() => socket.destroy(), 5000).unref();
      });
    }
  });
}

function spdySession(kind: 'exec' | 'attach', r: ExecRequest, pod: KubeObject, kubelet: Kubelet, streams: Map<string, SpdyStream>, proto: string, finished: () => void): Session {
  const stdout = streams.get('stdout');
  const stderr = streams.get('stderr') ?? stdout;
  const session = kubelet.open(kind, pod, r, (channel, b) => (channel === 2 ? stderr : stdout)?.write(b));
  const stdin = streams.get('stdin');
  stdin?.on('data', (b: Buffer) => session.write(b));
  stdin?.on('end', () => session.endStdin());
  streams.get('resize')?.on('data', (b: Buffer) => resize(session, b));
  void session.done.then((status) => {
    stdout?.end();
    streams.get('stderr')?.end();
    // v4 and v5 carry a JSON Status; the older versions a plain message (none on success).
    const body = proto === 'v4.channel.k8s.io' || proto === 'v5.channel.k8s.io' ? JSON.stringify(status) : status.status === 'Success' ? '' : status.message ?? '';
    streams.get('error')?.end(body);
    finished();
  });
  return session;
}

// ---- port-forward ------------------------------------------------------------------------------

function targetPort(pod: KubeObject, port: number): number | undefined {
  const target = Number(pod.metadata.annotations?.[`${PORT_ANNOTATION}${port}`]);
  return Number.isInteger(target) && target > 0 ? target : undefined;
}

function noTarget(pod: KubeObject, port: number): string {
  return `error forwarding port ${port} to pod ${pod.metadata.name}: the fixture has no target for port ${port} (annotate the pod ${PORT_ANNOTATION}${port}: "<local port>")`;
}

/**
 * The kubelet's WebSocket port-forward (`v4.channel.k8s.io`, used by client libraries rather
 * than kubectl): `?ports=a,b` gives each port a data channel (2i) and an error channel (2i+1),
 * each opened by the server with the port number (uint16 little-endian); one TCP connection per port.
 */
function webSocketPortForward(ws: WebSocket, pod: KubeObject, q: URLSearchParams): void {
  const ports = q.getAll('ports').flatMap((p) => p.split(',')).map((p) => Number(p.trim())).filter((p) => p > 0 && p < 65536);
  const conns: net.Socket[] = [];
  const untrack = track(() => ws.terminate());
  const send = (channel: number, data: Buffer) => {
    if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([channel]), data]));
  };
  if (!ports.length) {
    ws.close(1008, 'query parameter "ports" is required');
    untrack();
    return;
  }
  ports.forEach((port, i) => {
    const header = Buffer.alloc(2);
    header.writeUInt16LE(port);
    send(2 * i, header);
    send(2 * i + 1, header);
    const target = targetPort(pod, port);
    if (!target) {
      send(2 * i + 1, Buffer.from(noTarget(pod, port)));
      return;
    }
    const tcp = net.connect(target, '127.0.0.1');
    conns[i] = tcp;
    tcp.on('data', (b: Buffer) => send(2 * i, b));
    tcp.on('error', (e) => send(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod ${pod.metadata.name}, uid ${pod.metadata.uid}: ${e.message}`)));
    tcp.on('close', () => ws.close(1000));
  });
  ws.on('message', (msg: Buffer) => {
    const channel = msg[0];
    if (channel % 2 === 0) conns[channel / 2]?.write(msg.subarray(1));
  });
  ws.on('close', () => {
    for (const c of conns) c?.destroy();
    untrack();
  });
  ws.on('error', () => undefined);
}

function spdyPortForward(socket: Duplex, pod: KubeObject, destroy: () => void): void {
  const conn = spdyServer(socket);
  const pairs = new Map<string, { error?: SpdyStream; data?: SpdyStream }>();
  const conns = new Set<net.Socket>();
  const untrack = track(() => {
    for (const c of conns) c.destroy();
    destroy();
  });
  socket.on('close', () => {
    for (const c of conns) c.destroy();
    untrack();
  });
  conn.on('stream', (stream) => {
    stream.respond(200, {});
    stream.on('error', () => undefined);
    const type = stream.headers.streamtype;
    const id = stream.headers.requestid ?? '';
    const port = Number(stream.headers.port);
    const pair = pairs.get(id) ?? {};
    pairs.set(id, pair);
    if (type === 'error') {
      pair.error = stream;
      stream.resume();
      return;
    }
    if (type !== 'data') {
      stream.destroy();
      return;
    }
    pair.data = stream;
    const target = targetPort(pod, port);
    const sayError = (msg: string) => {
      // The error stream may open after the data stream; wait a moment for it.
      const write = () => (pair.error ? pair.error.end(msg) : undefined);
      if (pair.error) write();
      else setTimeout(write, 100);
      stream.end();
      pairs.delete(id);
    };
    if (!target) {
      sayError(noTarget(pod, port));
      return;
    }
    const tcp = net.connect(target, '127.0.0.1');
    conns.add(tcp);
    tcp.on('error', (e) => sayError(`error forwarding port ${port} to pod ${pod.metadata.name}, uid ${pod.metadata.uid}: failed to connect to localhost:${port} inside namespace: ${e.message}`));
    tcp.on('close', () => {
      conns.delete(tcp);
      stream.end();
      pair.error?.end();
      pairs.delete(id);
    });
    stream.pipe(tcp);
    tcp.pipe(stream);
  });
}

