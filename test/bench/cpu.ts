/**
 * Shared by `bench:pg-cpu` and `bench:http-cpu`: runs the thing being measured (a bare relay, a
 * bare proxy or the Flightlog gateway) as a child process of its own, so its CPU time can be read
 * from /proc/PID/stat (user + system, all threads) without the load generator's share in it.
 *
 * Run as `node cpu.js child ROLE JSON`, this file is the child: it starts ROLE, reports
 * `{ready, ports, token}` over IPC, answers `{type:'flush'}` once every record is committed
 * (the gateway's CPU must include its writes) and stops on `{type:'stop'}`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import type { Recorder } from '../../gateway/store/recorder';

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

export interface ChildReady {
  type: 'ready';
  ports: Record<string, number>;
  token?: string;
}

/** utime + stime of a whole process (all threads), in µs. */
export function processCpuUs(pid: number): number {
  return statCpu(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')).us;
}

/** CPU µs per thread name (`node`, `V8 DefaultWorke`, a worker's name…), summed over threads of one name. */
export function threadCpuUs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = statCpu(fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
      // the main thread has tid = pid; say so, since every thread of node is called "node"
      const name = tid === String(pid) ? 'main' : s.comm;
      out.set(name, (out.get(name) ?? 0) + s.us);
    } catch {
      // the thread ended between readdir and read: its time is in the process total
    }
  }
  return out;
}

function statCpu(stat: string): { comm: string; us: number } {
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  const f = stat.slice(close + 2).split(' ');
  // fields after the comm start at field 3 (state): utime is field 14, stime 15
  return { comm: stat.slice(open + 1, close), us: (Number(f[11]) + Number(f[12])) * TICK_US };
}

/** Difference of two per-thread readings (threads that came and went count from zero). */
export function threadDelta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of after) out.set(k, v - (before.get(k) ?? 0));
  return out;
}

export interface Measured {
  proc: ChildProcess;
  ready: ChildReady;
  /** resolves once the child committed everything it was sent (a no-op for relays) */
  flush(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts `role` in a child process (this file compiled, run as `child`). */
export async function startMeasured(role: 'tcp-relay' | 'http-proxy' | 'gateway', args: unknown, execArgv: string[] = []): Promise<Measured> {
  const proc = fork(__filename, ['child', role, JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  const ready = await new Promise<ChildReady>((resolve, reject) => {
    proc.once('message', (m) => resolve(m as ChildReady));
    proc.once('exit', (code) => reject(new Error(`${role} exited (${code}) before it was ready`)));
  });
  let flushes = 0;
  return {
    proc,
    ready,
    flush: () =>
      new Promise((resolve) => {
        const id = ++flushes;
        const on = (m: { type: string; id: number; commands: number }): void => {
          if (m.type !== 'flushed' || m.id !== id) return;
          proc.off('message', on);
          resolve(m.commands);
        };
        proc.on('message', on);
        proc.send({ type: 'flush', id });
      }),
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.send({ type: 'stop' });
      }),
  };
}

/** Percentile of a sorted array. */
export function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** `min–max` of several runs, with `digits` decimals. */
export function range(xs: number[], digits = 0): string {
  if (xs.length === 0) return '-';
  const lo = Math.min(...xs).toFixed(digits);
  const hi = Math.max(...xs).toFixed(digits);
  return lo === hi ? lo : `${lo}–${hi}`;
}

export function loadAverage(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

/* ---------- the child side ---------- */

function tcpRelay(host: string, port: number): Promise<number> {
  const server = net.createServer((c) => {
    const u = net.connect({ host, port });
    c.setNoDelay(true);
    u.setNoDelay(true);
    c.pipe(u);
    u.pipe(c);
    for (const s of [c, u]) {
      s.on('error', () => {
        c.destroy();
        u.destroy();
      });
      s.on('close', () => {
        c.destroy();
        u.destroy();
      });
    }
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
}

function httpProxy(port: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http.createServer((req, res) => {
    const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
}

/**
 * The floor (BENCH_FLOOR=1): the same gateway with every session's recording calls made no-ops,
 * so what it still costs is relaying, parsing, policy, authentication and the listener's own
 * capture, and the difference to the whole gateway is what the recorder costs. Bench-only, in the bench's own child process: a
 * gateway that records nothing must not exist anywhere else.
 */
function recordNothing(recorder: Recorder): { commands: () => number } {
  let commands = 0;
  const open = recorder.openSession.bind(recorder);
  recorder.openSession = (o) => {
    const s = open(o);
    s.event = () => 0;
    s.finding = () => undefined;
    s.startCommand = () => ({ id: ++commands, finish: () => undefined });
    s.flushed = () => Promise.resolve();
    return s;
  };
  return { commands: () => commands };
}

async function child(role: string, args: Record<string, unknown>): Promise<void> {
  const send = (m: unknown): void => {
    process.send?.(m);
  };
  if (role === 'tcp-relay' || role === 'http-proxy') {
    const port = role === 'tcp-relay' ? await tcpRelay(args.host as string, args.port as number) : await httpProxy(args.port as number);
    process.on('message', (m: { type: string; id?: number }) => {
      if (m.type === 'flush') send({ type: 'flushed', id: m.id, commands: 0 });
      if (m.type === 'stop') process.exit(0);
    });
    send({ type: 'ready', ports: { main: port } } satisfies ChildReady);
    return;
  }
  // imported here so the relay children load nothing of the gateway
  const { startTestGateway } = await import('../helpers/gateway');
  const gw = await startTestGateway({ connections: args.connections as unknown[], env: args.env as Record<string, string> });
  const token = gw.addIdentity(args.identity as string);
  const floor = args.recording === 'off' ? recordNothing(gw.gateway.recorder) : null;
  const ports: Record<string, number> = {};
  for (const c of args.connections as Array<{ name: string }>) ports[c.name] = gw.address(c.name).port;
  process.on('message', (m: { type: string; id?: number }) => {
    if (m.type === 'flush') {
      // counted in SQL: the session list is paged
      void gw.flush().then(() => send({ type: 'flushed', id: m.id, commands: floor ? floor.commands() : (gw.gateway.db.prepare('SELECT count(*) AS n FROM commands').get() as { n: number }).n }));
    }
    if (m.type === 'stop') void gw.close().then(() => process.exit(0));
  });
  process.on('disconnect', () => void gw.close().then(() => process.exit(0)));
  send({ type: 'ready', ports, token } satisfies ChildReady);
}

if (require.main === module && process.argv[2] === 'child') {
  child(process.argv[3], JSON.parse(process.argv[4]) as Record<string, unknown>).catch((err: Error) => {
    console.error(`bench child ${process.argv[3]} failed: ${err.message}`);
    process.exit(1);
  });
}
