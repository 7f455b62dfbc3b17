/**
 * Real MCP servers over HTTP for the MCP gateway's tests: the reference "everything" server in
 * its Streamable HTTP and legacy SSE modes, each a child process on a free loopback port, and a
 * small header-checking pipe to put in front of a server (proves what the gateway sent upstream).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { reapAtExit } from './tmp';

const EVERYTHING = path.resolve(__dirname, '../../../node_modules/@modelcontextprotocol/server-everything/dist/index.js');

export interface McpServerProcess {
  port: number;
  /** the MCP endpoint: …/mcp (Streamable HTTP) or …/sse (legacy) */
  url: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts server-everything (`streamableHttp` or `sse`); `env` reaches the server's process (its get-env tool shows it). */
export async function startEverything(mode: 'streamableHttp' | 'sse', env: Record<string, string> = {}): Promise<McpServerProcess> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawn(process.execPath, [EVERYTHING, mode], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const forget = reapAtExit(() => child.kill('SIGKILL'));
    const ready = await new Promise<boolean>((resolve) => {
      let out = '';
      const on = (b: Buffer) => {
        out += b.toString();
        if (/listening on port|Server is running on port/i.test(out)) resolve(true);
        if (/EADDRINUSE|already in use/i.test(out)) resolve(false);
      };
      child.stdout!.on('data', on);
      child.stderr!.on('data', on);
      child.once('exit', () => resolve(false));
    });
    if (ready) {
      child.stdout!.resume();
      child.stderr!.resume();
      return { port, url: `http://127.0.0.1:${port}${mode === 'sse' ? '/sse' : '/mcp'}`, stop: () => stopChild(child, forget) };
    }
    await stopChild(child, forget);
    if (attempt >= 3) throw new Error(`server-everything ${mode} did not start`);
  }
}

function stopChild(child: ChildProcess, forget: () => void): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      forget();
      resolve();
      return;
    }
    child.once('exit', () => {
      forget();
      resolve();
    });
    child.kill('SIGKILL');
  });
}

export interface HeaderPipe {
  url: string;
  /** request headers the pipe received, in order */
  seen: http.IncomingHttpHeaders[];
  /** request bodies (first 64 KiB of each), in order */
  bodies: string[];
  close(): Promise<void>;
}

/**
 * A streaming reverse proxy to `target` (an origin): refuses with 401 a request without the
 * `require`d headers and adds `add` to each it forwards (`keepHost`: the client's Host header
 * too). Bodies and event streams pass through unbuffered.
 */
export async function startHeaderPipe(target: string, opts: { require?: Record<string, string>; add?: Record<string, string>; keepHost?: boolean } = {}): Promise<HeaderPipe> {
  const to = new URL(target);
  const seen: http.IncomingHttpHeaders[] = [];
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    const i = bodies.push('') - 1;
    req.on('data', (c: Buffer) => {
      if (bodies[i].length < 65536) bodies[i] += c.toString('utf8');
    });
    for (const [k, v] of Object.entries(opts.require ?? {})) {
      if (req.headers[k.toLowerCase()] !== v) {
        req.resume();
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"missing upstream credential"}');
        return;
      }
    }
    const headers = { ...req.headers, ...Object.fromEntries(Object.entries(opts.add ?? {}).map(([k, v]) => [k.toLowerCase(), v])) };
    if (!opts.keepHost) headers.host = to.host;
    const up = http.request({ hostname: to.hostname, port: to.port, method: req.method, path: req.url, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      res.flushHeaders();
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
