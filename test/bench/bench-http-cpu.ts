/**
 * `npm run bench:http-cpu`: what recording a small HTTP request costs in CPU, against a bare
 * node:http keep-alive proxy in the same run. The upstream, the proxy and the gateway each run in
 * a process of their own; the load (a 600 B JSON GET over 16 keep-alive connections, a fixed
 * number of requests) comes from this process. CPU is user + system of all threads from
 * /proc/PID/stat, the gateway's including the commit of every record. Then throughput (16
 * connections), 1-connection latency p50/p99 and, with BENCH_BIG=1, the gateway's RSS while a
 * 1 GB body streams through it.
 *
 * BENCH_REQUESTS (default 20000) per run, BENCH_RUNS (default 3); BENCH_PROFILE=1 adds per-thread CPU;
 * BENCH_FLOOR=1 also measures a second gateway whose sessions record nothing (recordNothing in
 * cpu.ts), so the figures split into proxying and recording.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { startBenchUpstream, type BenchUpstream } from './http-upstream';
import { loadAverage, pct, processCpuUs, range, startMeasured, threadCpuUs, threadDelta, type Measured } from './cpu';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PROFILE = process.env.BENCH_PROFILE === '1';
const BIG = process.env.BENCH_BIG === '1';
const FLOOR = process.env.BENCH_FLOOR === '1';
const CONNS = 16;
const GATEWAY_NODE_ARGS = process.env.BENCH_GATEWAY_NODE_ARGS ? process.env.BENCH_GATEWAY_NODE_ARGS.split(' ') : [];

/** the small response: the first 600 bytes of a JSON text (as measured since stop 11) */
const SMALL = JSON.stringify({ ok: true, items: Array.from({ length: 12 }, (_, i) => ({ id: i, name: 'item ' + i, ok: true })), note: 'x'.repeat(600) }).slice(0, 600);

/**
 * A minimal keep-alive client on raw sockets (cheap, so the load generator stays small): each
 * connection sends one request at a time and reads the response by its content-length.
 * Returns the wall time of every request in µs.
 */
async function load(port: number, path: string, headers: string[], conns: number, total: number): Promise<{ latUs: number[]; secs: number; bytes: number }> {
  const req = Buffer.from(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n${headers.map((h) => h + '\r\n').join('')}\r\n`);
  const latUs: number[] = [];
  let bytes = 0;
  let left = total;
  const t0 = process.hrtime.bigint();
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.setNoDelay(true);
      let buf: Buffer = Buffer.alloc(0);
      let need = -1;
      let started = 0n;
      const next = (): void => {
        if (left <= 0) {
          s.end();
          resolve();
          return;
        }
        left--;
        started = process.hrtime.bigint();
        s.write(req);
      };
      s.on('data', (d: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        for (;;) {
          if (need < 0) {
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0) return;
            const head = buf.subarray(0, end).toString('latin1');
            if (!/^HTTP\/1\.1 200/.test(head)) {
              reject(new Error(`upstream answered ${head.split('\r\n')[0]}`));
              s.destroy();
              return;
            }
            need = end + 4 + Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          }
          if (buf.length < need) {
            // a large body: count it and drop what has arrived
            if (need - buf.length > 1 << 20) {
              bytes += buf.length;
              need -= buf.length;
              buf = Buffer.alloc(0);
              need = Math.max(need, 0);
            }
            return;
          }
          bytes += need;
          buf = buf.subarray(need);
          need = -1;
          latUs.push(Number(process.hrtime.bigint() - started) / 1000);
          next();
        }
      });
      s.on('error', reject);
      s.on('connect', next);
    });
  await Promise.all(Array.from({ length: conns }, one));
  return { latUs: latUs.sort((a, b) => a - b), secs: Number(process.hrtime.bigint() - t0) / 1e9, bytes };
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function main(): Promise<void> {
  console.log(`bench-http-cpu: ${REQUESTS} requests of 600 B JSON over ${CONNS} keep-alive connections, ${RUNS} runs; load average ${loadAverage()}`);
  let up: BenchUpstream | null = null;
  let proxy: Measured | null = null;
  let gw: Measured | null = null;
  let floorGw: Measured | null = null;
  try {
    up = await startBenchUpstream(SMALL);
    const upPort = up.port;
    proxy = await startMeasured('http-proxy', { port: upPort });
    const gwArgs = {
      env: { BENCH_KEY: 'sk-bench-upstream-key-0123456789' },
      identity: 'bench',
      connections: [{ name: 'api', protocol: 'http', upstream: { url: `http://127.0.0.1:${upPort}`, headers: { 'x-api-key': { env: 'BENCH_KEY' } } }, identities: ['bench'] }],
    };
    gw = await startMeasured('gateway', gwArgs, GATEWAY_NODE_ARGS);
    if (FLOOR) floorGw = await startMeasured('gateway', { ...gwArgs, recording: 'off' }, GATEWAY_NODE_ARGS);
    type Target = { name: 'proxy' | 'gateway' | 'floor'; port: number; headers: string[]; m: Measured };
    const bearer = (m: Measured): string[] => [`authorization: Bearer ${m.ready.token}`];
    const targets: Target[] = [
      { name: 'proxy', port: proxy.ready.ports.main, headers: [], m: proxy },
      { name: 'gateway', port: gw.ready.ports.api, headers: bearer(gw), m: gw },
    ];
    const floorTarget: Target | null = floorGw ? { name: 'floor', port: floorGw.ready.ports.api, headers: bearer(floorGw), m: floorGw } : null;
    const cpu = { proxy: [] as number[], gateway: [] as number[], ratio: [] as number[] };
    const floor = { floor: [] as number[], ratio: [] as number[], recording: [] as number[] };
    const rps = { proxy: [] as number[], gateway: [] as number[], ratio: [] as number[] };
    const lat: Record<string, { p50: number[]; p99: number[] }> = { direct: { p50: [], p99: [] }, proxy: { p50: [], p99: [] }, gateway: { p50: [], p99: [] } };
    const threadRows: string[] = [];
    /** CPU µs per request of one target over REQUESTS requests, and the load's req/s */
    const measure = async (t: Target, r: number): Promise<{ us: number; rps: number }> => {
      const pid = t.m.proc.pid as number;
      const c0 = await t.m.flush();
      const before = processCpuUs(pid);
      const th0 = PROFILE ? threadCpuUs(pid) : null;
      const res = await load(t.port, '/small', t.headers, CONNS, REQUESTS);
      const c1 = await t.m.flush();
      const us = (processCpuUs(pid) - before) / REQUESTS;
      if (t.name === 'gateway' && c1 - c0 < REQUESTS) throw new Error(`the gateway recorded ${c1 - c0} requests of ${REQUESTS}`);
      if (th0) threadRows.push(`run ${r} ${t.name}: ` + [...threadDelta(th0, threadCpuUs(pid))].filter(([, v]) => v > 0).map(([k, v]) => `${k} ${(v / REQUESTS).toFixed(1)}`).join(', '));
      return { us, rps: REQUESTS / res.secs };
    };
    for (const t of floorTarget ? [...targets, floorTarget] : targets) await load(t.port, '/small', t.headers, CONNS, 1000);
    for (let r = 1; r <= RUNS; r++) {
      const us: Record<string, number> = {};
      for (const t of targets) {
        const f = await measure(t, r);
        us[t.name] = f.us;
        rps[t.name as 'proxy' | 'gateway'].push(f.rps);
        cpu[t.name as 'proxy' | 'gateway'].push(f.us);
      }
      cpu.ratio.push(us.gateway / us.proxy);
      rps.ratio.push(rps.gateway[rps.gateway.length - 1] / rps.proxy[rps.proxy.length - 1]);
      console.log(`run ${r}: proxy ${us.proxy.toFixed(1)} µs/request, gateway ${us.gateway.toFixed(1)} µs/request (${(us.gateway / us.proxy).toFixed(2)}×)`);
      if (floorTarget) {
        const f = (await measure(floorTarget, r)).us;
        floor.floor.push(f);
        floor.ratio.push(f / us.proxy);
        floor.recording.push(us.gateway - f);
        console.log(`run ${r}: gateway recording nothing ${f.toFixed(1)} µs/request (${(f / us.proxy).toFixed(2)}× the proxy)`);
      }
      for (const [name, port, headers] of [['direct', upPort, []], ...targets.map((t) => [t.name, t.port, t.headers])] as Array<[string, number, string[]]>) {
        const l = await load(port, '/small', headers, 1, 2000);
        lat[name].p50.push(pct(l.latUs, 50));
        lat[name].p99.push(pct(l.latUs, 99));
      }
    }
    console.log(`\nCPU per request (µs, user+system, all threads; ranges over ${RUNS} runs): proxy ${range(cpu.proxy, 1)}, gateway ${range(cpu.gateway, 1)}, gateway/proxy ${range(cpu.ratio, 2)}×`);
    if (FLOOR) console.log(`The floor, the gateway recording nothing: ${range(floor.floor, 1)} µs/request, ${range(floor.ratio, 2)}× the proxy; recording (gateway − floor) ${range(floor.recording, 1)} µs/request`);
    console.log(`Throughput, ${CONNS} connections (req/s): proxy ${range(rps.proxy)}, gateway ${range(rps.gateway)}, gateway/proxy ${range(rps.ratio, 2)}×`);
    console.log('1 connection latency (µs):');
    for (const [k, v] of Object.entries(lat)) console.log(`  ${k.padEnd(8)} p50 ${range(v.p50)}  p99 ${range(v.p99)}`);
    console.log(`gateway adds over the proxy: p50 ${range(lat.gateway.p50.map((g, i) => g - lat.proxy.p50[i]))} µs, p99 ${range(lat.gateway.p99.map((g, i) => g - lat.proxy.p99[i]))} µs`);
    if (threadRows.length) console.log('\nCPU per thread (µs/request):\n' + threadRows.join('\n'));
    if (BIG) {
      const pid = gw.proc.pid as number;
      const before = rssKb(pid);
      let peak = before;
      const timer = setInterval(() => (peak = Math.max(peak, rssKb(pid))), 50);
      const res = await load(gw.ready.ports.api, '/1gb', targets[1].headers, 1, 1);
      clearInterval(timer);
      console.log(`\n1 GB body through the gateway in ${res.secs.toFixed(1)} s (${(res.bytes / 1048576 / res.secs).toFixed(0)} MB/s): gateway RSS ${(before / 1024).toFixed(0)} MB before, peak ${(peak / 1024).toFixed(0)} MB`);
    }
    console.log(`load average at the end: ${loadAverage()}`);
  } finally {
    await gw?.stop();
    await floorGw?.stop();
    await proxy?.stop();
    up?.stop();
  }
}

main().catch((err: Error) => {
  console.error(`bench-http-cpu failed: ${err.message}`);
  process.exit(1);
});
