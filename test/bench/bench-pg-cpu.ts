/**
 * `npm run bench:pg-cpu`: what recording a Postgres command costs in CPU, against a bare Node
 * relay (a net pipe) in the same run. Both run as child processes; their CPU (user + system,
 * all threads) comes from /proc/PID/stat around a fixed amount of work, and the gateway's
 * includes committing every record. Prints µs per transaction for each and the ratio, then
 * throughput ratios (pgbench -S -c 1 and -c 8), 1-client latency p50/p99 and, with
 * BENCH_BIG=1, the gateway's RSS while a 1M-row SELECT streams through it.
 *
 * BENCH_TXNS (default 20000) transactions per CPU workload, BENCH_TPUT_TXNS (default 8000) per
 * throughput run, BENCH_RUNS (default 3) runs;
 * BENCH_PROFILE=1 adds a per-thread breakdown of the gateway (/proc/PID/task/*);
 * BENCH_FLOOR=1 also measures the floor: a second gateway whose sessions record nothing (see
 * recordNothing in cpu.ts), so the figures split into relaying and recording.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startPostgres } from '../helpers/postgres-server';
import { tempDir } from '../helpers/tmp';
import { loadAverage, pct, processCpuUs, range, startMeasured, threadCpuUs, threadDelta, type Measured } from './cpu';

const run = promisify(execFile);
const TXNS = Number(process.env.BENCH_TXNS ?? 20000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** transactions of each throughput / latency run (pgbench -c 1 and -c 8) */
const TPUT_TXNS = Number(process.env.BENCH_TPUT_TXNS ?? 8000);
const PROFILE = process.env.BENCH_PROFILE === '1';
const BIG = process.env.BENCH_BIG === '1';
const FLOOR = process.env.BENCH_FLOOR === '1';
const GATEWAY_NODE_ARGS = process.env.BENCH_GATEWAY_NODE_ARGS ? process.env.BENCH_GATEWAY_NODE_ARGS.split(' ') : [];

interface Target {
  name: string;
  port: number;
  user: string;
  password: string;
  proc: Measured | null;
}

interface PgbenchResult {
  tps: number;
  latenciesUs: number[];
}

async function pgbench(host: string, t: Target, args: string[], logDir: string | null): Promise<PgbenchResult> {
  const extra = logDir ? ['-l', `--log-prefix=${path.join(logDir, 'pgb')}`] : [];
  const { stdout } = await run('pgbench', ['-n', '-h', host, '-p', String(t.port), '-U', t.user, ...extra, ...args, 'app'], {
    env: { ...process.env, PGPASSWORD: t.password, PGSSLMODE: 'disable' },
    maxBuffer: 16 * 1024 * 1024,
  });
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout);
  if (!m) throw new Error(`no tps in pgbench output for ${t.name}`);
  const latenciesUs: number[] = [];
  if (logDir) {
    for (const f of fs.readdirSync(logDir)) {
      for (const line of fs.readFileSync(path.join(logDir, f), 'utf8').split('\n')) {
        const cols = line.split(' ');
        if (cols.length >= 3) latenciesUs.push(Number(cols[2]));
      }
      fs.rmSync(path.join(logDir, f));
    }
    latenciesUs.sort((a, b) => a - b);
  }
  return { tps: Number(m[1]), latenciesUs };
}

interface CpuFigure {
  us: number;
  threads: Map<string, number> | null;
  commands: number;
}

/** CPU µs per transaction of `t`'s process for one pgbench run of fixed work. */
async function cpuPerTxn(host: string, t: Target, args: string[], txns: number): Promise<CpuFigure> {
  const p = t.proc as Measured;
  const pid = p.proc.pid as number;
  const c0 = await p.flush();
  const before = processCpuUs(pid);
  const tBefore = PROFILE ? threadCpuUs(pid) : null;
  await pgbench(host, t, args, null);
  const c1 = await p.flush();
  const used = processCpuUs(pid) - before;
  const threads = tBefore ? threadDelta(tBefore, threadCpuUs(pid)) : null;
  if (threads) for (const [k, v] of threads) threads.set(k, v / txns);
  return { us: used / txns, threads, commands: c1 - c0 };
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function main(): Promise<void> {
  console.log(`bench-pg-cpu: ${TXNS} transactions per CPU workload, ${RUNS} runs; load average ${loadAverage()}`);
  const pg = await startPostgres();
  const logDir = tempDir('flightlog-pgbench-log-');
  let relay: Measured | null = null;
  let gw: Measured | null = null;
  let floorGw: Measured | null = null;
  try {
    await run('pgbench', ['-i', '-q', '-s', '1', '-h', pg.host, '-p', String(pg.port), '-U', 'app', 'app'], { env: { ...process.env, PGPASSWORD: pg.app.password } });
    relay = await startMeasured('tcp-relay', { host: pg.host, port: pg.port });
    const gwArgs = {
      env: { APP_PW: pg.app.password },
      identity: 'bench',
      connections: [{ name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['bench'] }],
    };
    gw = await startMeasured('gateway', gwArgs, GATEWAY_NODE_ARGS);
    if (FLOOR) floorGw = await startMeasured('gateway', { ...gwArgs, recording: 'off' }, GATEWAY_NODE_ARGS);
    const direct: Target = { name: 'direct', port: pg.port, user: 'app', password: pg.app.password, proc: null };
    const rel: Target = { ...direct, name: 'relay', port: relay.ready.ports.main, proc: relay };
    const gwt: Target = { name: 'gateway', port: gw.ready.ports.db, user: 'bench', password: gw.ready.token as string, proc: gw };
    const flt: Target | null = floorGw ? { name: 'floor', port: floorGw.ready.ports.db, user: 'bench', password: floorGw.ready.token as string, proc: floorGw } : null;
    const host = pg.host;
    const perClient = (c: number): string => String(Math.ceil(TXNS / c));
    const cpuWorkloads = [
      { name: 'pgbench -S -c 4, simple', args: ['-S', '-c', '4', '-j', '2', '-t', perClient(4)] },
      { name: 'pgbench -S -c 4, extended', args: ['-S', '-M', 'extended', '-c', '4', '-j', '2', '-t', perClient(4)] },
    ];
    const cpu: Record<string, { relay: number[]; gateway: number[]; ratio: number[] }> = {};
    const floor: Record<string, { floor: number[]; ratio: number[]; recording: number[] }> = {};
    const threadRows: string[] = [];
    const tput: Record<string, { relay: number[]; gateway: number[]; ratio: number[] }> = {};
    const lat: Record<string, { p50: number[]; p99: number[] }> = { direct: { p50: [], p99: [] }, relay: { p50: [], p99: [] }, gateway: { p50: [], p99: [] } };
    // warm both (JIT, the gateway's writer thread, pg's caches) before the first figure
    await pgbench(host, rel, ['-S', '-c', '4', '-j', '2', '-t', '500'], null);
    await pgbench(host, gwt, ['-S', '-c', '4', '-j', '2', '-t', '500'], null);
    if (flt) await pgbench(host, flt, ['-S', '-c', '4', '-j', '2', '-t', '500'], null);
    for (let r = 1; r <= RUNS; r++) {
      for (const w of cpuWorkloads) {
        const a = await cpuPerTxn(host, rel, w.args, TXNS);
        const b = await cpuPerTxn(host, gwt, w.args, TXNS);
        if (b.commands < TXNS) throw new Error(`the gateway recorded ${b.commands} commands for ${TXNS} transactions`);
        const e = (cpu[w.name] ??= { relay: [], gateway: [], ratio: [] });
        e.relay.push(a.us);
        e.gateway.push(b.us);
        e.ratio.push(b.us / a.us);
        console.log(`run ${r}: ${w.name}: relay ${a.us.toFixed(1)} µs/txn, gateway ${b.us.toFixed(1)} µs/txn (${(b.us / a.us).toFixed(2)}×)`);
        if (flt) {
          const f = await cpuPerTxn(host, flt, w.args, TXNS);
          const x = (floor[w.name] ??= { floor: [], ratio: [], recording: [] });
          x.floor.push(f.us);
          x.ratio.push(f.us / a.us);
          x.recording.push(b.us - f.us);
          console.log(`run ${r}: ${w.name}: gateway recording nothing ${f.us.toFixed(1)} µs/txn (${(f.us / a.us).toFixed(2)}× the relay)`);
        }
        if (b.threads) threadRows.push(`run ${r} ${w.name}: ` + [...b.threads].filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', '));
      }
      for (const c of [1, 8]) {
        const args = ['-S', '-c', String(c), '-j', c === 1 ? '1' : '2', '-t', String(Math.ceil(TPUT_TXNS / c))];
        const x = await pgbench(host, rel, args, c === 1 ? logDir : null);
        const y = await pgbench(host, gwt, args, c === 1 ? logDir : null);
        const e = (tput[`-c ${c}`] ??= { relay: [], gateway: [], ratio: [] });
        e.relay.push(x.tps);
        e.gateway.push(y.tps);
        e.ratio.push(y.tps / x.tps);
        if (c === 1) {
          const d = await pgbench(host, direct, args, logDir);
          for (const [k, v] of [['direct', d], ['relay', x], ['gateway', y]] as const) {
            lat[k].p50.push(pct(v.latenciesUs, 50));
            lat[k].p99.push(pct(v.latenciesUs, 99));
          }
        }
      }
    }
    console.log(`\nCPU per transaction (µs, user+system, all threads; ranges over ${RUNS} runs):`);
    console.log('workload                      relay            gateway          gateway/relay');
    for (const [k, v] of Object.entries(cpu)) console.log(`${k.padEnd(29)} ${range(v.relay, 1).padEnd(16)} ${range(v.gateway, 1).padEnd(16)} ${range(v.ratio, 2)}×`);
    if (FLOOR) {
      console.log(`\nThe floor: the gateway recording nothing (µs/txn; ranges over ${RUNS} runs):`);
      console.log('workload                      floor            floor/relay      recording (gateway − floor)');
      for (const [k, v] of Object.entries(floor)) console.log(`${k.padEnd(29)} ${range(v.floor, 1).padEnd(16)} ${(range(v.ratio, 2) + '×').padEnd(16)} ${range(v.recording, 1)}`);
    }
    console.log('\nThroughput, pgbench -S (tps):');
    for (const [k, v] of Object.entries(tput)) console.log(`${k.padEnd(6)} relay ${range(v.relay)}  gateway ${range(v.gateway)}  gateway/relay ${range(v.ratio, 2)}×`);
    console.log('\n1 client latency (µs):');
    for (const [k, v] of Object.entries(lat)) console.log(`${k.padEnd(8)} p50 ${range(v.p50)}  p99 ${range(v.p99)}`);
    const added = lat.gateway.p50.map((g, i) => g - lat.relay.p50[i]);
    const added99 = lat.gateway.p99.map((g, i) => g - lat.relay.p99[i]);
    console.log(`gateway adds over the relay: p50 ${range(added)} µs, p99 ${range(added99)} µs`);
    if (threadRows.length) console.log('\nGateway CPU per thread (µs/txn):\n' + threadRows.join('\n'));
    if (BIG) {
      const pid = gw.proc.pid as number;
      const before = rssKb(pid);
      let peak = before;
      const timer = setInterval(() => (peak = Math.max(peak, rssKb(pid))), 50);
      const t0 = Date.now();
      await run('psql', ['-X', '-q', '-h', host, '-p', String(gwt.port), '-U', 'bench', '-d', 'app', '-o', '/dev/null', '-c', 'select g, md5(g::text) from generate_series(1, 1000000) g'], {
        env: { ...process.env, PGPASSWORD: gwt.password, PGSSLMODE: 'disable' },
      });
      clearInterval(timer);
      console.log(`\n1M-row SELECT through the gateway in ${((Date.now() - t0) / 1000).toFixed(1)} s: gateway RSS ${(before / 1024).toFixed(0)} MB before, peak ${(peak / 1024).toFixed(0)} MB`);
    }
    console.log(`load average at the end: ${loadAverage()}`);
  } finally {
    await gw?.stop();
    await floorGw?.stop();
    await relay?.stop();
    await pg.stop();
    fs.rmSync(logDir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench-pg-cpu failed: ${err.message}`);
  process.exit(1);
});
