/**
 * Real HTTP upstreams on 127.0.0.1 for the HTTP listener's tests: plain and TLS (a test CA
 * made with openssl), echo, SSE, gzip JSON, a WebSocket echo, a reset mid-body, a slow one.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { WebSocketServer } from 'ws';

export interface TestCa {
  dir: string;
  caFile: string;
  caPem: string;
  keyPem: string;
  certPem: string;
}

/** A throwaway CA and a server certificate for 127.0.0.1 / localhost, made with openssl. */
export function makeTestCa(): TestCa {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-http-ca-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=flightlog test CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    caPem: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
    keyPem: fs.readFileSync(path.join(dir, 'server.key'), 'utf8'),
    certPem: fs.readFileSync(path.join(dir, 'server.pem'), 'utf8'),
  };
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodySize: number;
}

export interface HttpUpstream {
  url: string;
  port: number;
  /** every request the upstream received, in order */
  seen: SeenRequest[];
  /** what /sse-pieces streams: one `data:` event per piece */
  ssePieces: string[];
  close(): Promise<void>;
}

function readBody(req: http.IncomingMessage, keep: boolean): Promise<{ size: number; sha256: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      hash.update(c);
      if (keep && size <= 1024 * 1024) chunks.push(c);
    });
    req.on('end', () => resolve({ size, sha256: hash.digest('hex'), body: Buffer.concat(chunks) }));
    req.on('error', reject);
  });
}

/** Routes: /echo, /upload, /json-gzip, /sse?n=, /sse-pieces(-gzip), /reset, /slow?ms=, /bytes?n=, /small, /status/CODE, /ws (WebSocket echo). */
function handler(seen: SeenRequest[], ssePieces: () => string[]): http.RequestListener {
  // a client that aborts its upload rejects readBody: that is the test's business, not a crash
  return (req, res) => {
    route(req, res).catch(() => res.destroy());
  };
  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x');
    const record: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodySize: 0 };
    seen.push(record);
    const json = (status: number, v: unknown, extra: http.OutgoingHttpHeaders = {}) => {
      const b = JSON.stringify(v);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b), ...extra });
      res.end(b);
    };
    switch (u.pathname) {
      case '/echo': {
        const b = await readBody(req, true);
        record.bodySize = b.size;
        json(200, { method: req.method, url: req.url, headers: req.headers, body: b.body.toString('utf8'), size: b.size, sha256: b.sha256 }, { 'x-upstream-secret-echo': String(req.headers['x-api-key'] ?? '') });
        return;
      }
      case '/upload': {
        const b = await readBody(req, false);
        record.bodySize = b.size;
        json(200, { size: b.size, sha256: b.sha256 });
        return;
      }
      case '/small':
        req.resume();
        json(200, { ok: true, n: 1 });
        return;
      case '/json-gzip': {
        req.resume();
        const body = zlib.gzipSync(JSON.stringify({ compressed: true, items: [1, 2, 3], note: 'hello gzip' }));
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': body.length });
        res.end(body);
        return;
      }
      case '/sse': {
        req.resume();
        const n = Number(u.searchParams.get('n') ?? 3);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write(': comment to open the stream\n\n');
        for (let i = 1; i <= n; i++) {
          res.write(`event: tick\nid: ${i}\ndata: {"i":${i}}\n\n`);
          await new Promise((r) => setTimeout(r, 20));
        }
        res.end('event: done\ndata: bye\n\n');
        return;
      }
      case '/sse-pieces': {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        for (const p of ssePieces()) {
          res.write(`event: token\ndata: ${p}\n\n`);
          await new Promise((r) => setImmediate(r));
        }
        res.end('event: done\ndata: [end]\n\n');
        return;
      }
      case '/sse-pieces-gzip': {
        // compressed whatever the client asked for, as some servers do
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' });
        const gz = zlib.createGzip();
        gz.pipe(res);
        for (const p of ssePieces()) {
          gz.write(`event: token\ndata: ${p}\n\n`);
          await new Promise<void>((r) => gz.flush(() => r()));
        }
        gz.end('event: done\ndata: [end]\n\n');
        return;
      }
      case '/reset': {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 100_000 });
        res.write('x'.repeat(10_000));
        setTimeout(() => req.socket.destroy(), 30);
        return;
      }
      case '/slow': {
        req.resume();
        const wait = Number(u.searchParams.get('ms') ?? 2000);
        const t = setTimeout(() => json(200, { slow: true }), wait);
        res.on('close', () => clearTimeout(t));
        return;
      }
      case '/bytes': {
        req.resume();
        const n = Number(u.searchParams.get('n') ?? 1024);
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
        let left = n;
        const pump = () => {
          while (left > 0) {
            const c = left >= chunk.length ? chunk : chunk.subarray(0, left);
            left -= c.length;
            if (!res.write(c)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      default: {
        req.resume();
        const m = /^\/status\/(\d{3})$/.exec(u.pathname);
        if (m) {
          json(Number(m[1]), { status: Number(m[1]) });
          return;
        }
        json(404, { error: 'no such route' });
      }
    }
  }
}

/** Starts an upstream on 127.0.0.1 (TLS when `tls` is given). */
export async function startHttpUpstream(opts: { tls?: TestCa } = {}): Promise<HttpUpstream> {
  const seen: SeenRequest[] = [];
  const pieces = { list: [] as string[] };
  const route = handler(seen, () => pieces.list);
  const server = opts.tls ? https.createServer({ key: opts.tls.keyPem, cert: opts.tls.certPem }, route) : http.createServer(route);
  server.keepAliveTimeout = 10_000;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    ws.send(JSON.stringify({ hello: true, sawKey: req.headers['x-api-key'] ?? null }));
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  server.on('upgrade', (req, socket, head) => {
    if (!(req.url ?? '').startsWith('/ws')) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    seen,
    get ssePieces() {
      return pieces.list;
    },
    set ssePieces(v: string[]) {
      pieces.list = v;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function refusedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
