/**
 * CPU per MB of SSH bulk transfers: the Flightlog gateway (its own process, recording on) against
 * OpenSSH's sshd serving the same transfer direct, plus the throughput ratio, in one run.
 *
 * Workloads (FLIGHTLOG_BENCH_MB, default 256 MB of random bytes each):
 *   download `ssh host 'cat bigfile' > file`, upload `ssh host 'cat > file' < bigfile`,
 *   scp upload (sftp protocol, OpenSSH 9's default).
 * Gateway CPU: utime + stime of every thread of the gateway process (/proc/PID/stat), and per
 * thread (/proc/PID/task/TID/stat). sshd CPU: the sshd processes that serve the session (the
 * listener's descendants named sshd, polled every 20 ms; the last poll before a process exits
 * is its figure, so it reads up to 20 ms low). Each workload runs once as warm-up, then
 * FLIGHTLOG_BENCH_RUNS (default 3) times, direct and gateway interleaved; figures are min–max.
 * FLIGHTLOG_BENCH_NODE_ARGS passes flags to the gateway's node (e.g. `--cpu-prof`),
 * FLIGHTLOG_BENCH_SSH_ARGS options to every ssh/scp client (e.g. `-c aes128-ctr`),
 * FLIGHTLOG_BENCH_ONLY a comma-separated subset of download,upload,scp; FLIGHTLOG_BENCH_VERBOSE=1
 * prints each gateway thread, FLIGHTLOG_BENCH_GC_LOG=FILE appends the gateway's stdout after
 * ready to FILE (with FLIGHTLOG_BENCH_NODE_ARGS=--trace-gc: its garbage collections).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clientOptions, startSshd } from '../helpers/sshd';
import { tempDir } from '../helpers/tmp';
import { startGatewayProcess } from './gateway-process';
import { cpuMs, range, timed } from './bench-ssh';

const MB = Number(process.env.FLIGHTLOG_BENCH_MB ?? 256);
const RUNS = Math.max(1, Number(process.env.FLIGHTLOG_BENCH_RUNS ?? 3));
const NODE_ARGS = (process.env.FLIGHTLOG_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const SSH_ARGS = (process.env.FLIGHTLOG_BENCH_SSH_ARGS ?? '').split(/\s+/).filter(Boolean);
const ONLY = (process.env.FLIGHTLOG_BENCH_ONLY ?? '').split(',').filter(Boolean);
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(PACKAGE_ROOT, 'bin', 'flightlog.js');
const TICK_MS = 1000 / 100;

function statFields(file: string): string[] | null {
  try {
    const stat = fs.readFileSync(file, 'utf8');
    return [stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ...stat.slice(stat.lastIndexOf(')') + 2).split(' ')];
  } catch {
    return null; // the process or thread is gone
  }
}

/** CPU ms per thread of a process, keyed `name/tid`. */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const f = statFields(`/proc/${pid}/task/${tid}/stat`);
    if (!f) continue;
    out.set(`${Number(tid) === pid ? 'main' : f[0]}/${tid}`, (Number(f[12]) + Number(f[13])) * TICK_MS);
  }
  return out;
}

/** VmHWM (peak RSS) of a process in MiB. */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function children(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Polls the sshd listener's descendants; `stop()` returns the CPU ms of those named sshd since start. */
function watchSshd(listener: number): { stop(): number } {
  const last = new Map<number, number>();
  const base = new Map<number, number>();
  const poll = (): void => {
    const todo = children(listener);
    while (todo.length) {
      const pid = todo.pop() as number;
      todo.push(...children(pid));
      const f = statFields(`/proc/${pid}/stat`);
      if (!f || !f[0].startsWith('sshd')) continue;
      const ms = (Number(f[12]) + Number(f[13])) * TICK_MS;
      if (!last.has(pid)) base.set(pid, ms);
      last.set(pid, ms);
    }
  };
  // A session process that exists before the transfer (none here) counts from its first sight.
  poll();
  for (const [pid, ms] of last) base.set(pid, ms);
  const timer = setInterval(poll, 20);
  return {
    stop() {
      clearInterval(timer);
      poll();
      let sum = 0;
      for (const [pid, ms] of last) sum += ms - (base.get(pid) ?? 0);
      return sum;
    },
  };
}

async function startGateway(configFile: string, dataDir: string, logFile: string): Promise<{ child: ChildProcess; port: number }> {
  const gw = await startGatewayProcess({ configFile, dataDir, logFile, env: { ...process.env, FLIGHTLOG_HOME: '' }, nodeArgs: NODE_ARGS });
  if (process.env.FLIGHTLOG_BENCH_GC_LOG) gw.child.stdout?.on('data', (d: Buffer) => fs.appendFileSync(process.env.FLIGHTLOG_BENCH_GC_LOG as string, d));
  if (gw.ports.bench === undefined) throw new Error(`no ssh listener in the gateway's output: ${gw.out}`);
  return { child: gw.child, port: gw.ports.bench };
}

interface Row {
  wall: number;
  /** CPU ms of the serving side: sshd (direct) or the gateway process */
  cpu: number;
  /** gateway runs: the upstream sshd's CPU ms, and the gateway's per-thread split */
  sshd?: number;
  threads?: Map<string, number>;
}

async function main(): Promise<void> {
  const work = tempDir('flightlog-bench-ssh-cpu-');
  const sshd = await startSshd();
  let gateway: ChildProcess | null = null;
  try {
    const sshdPid = Number(fs.readFileSync(path.join(sshd.dir, 'sshd.pid'), 'utf8'));
    const dataDir = path.join(work, 'data');
    const configFile = path.join(work, 'flightlog.yaml');
    fs.writeFileSync(
      configFile,
      [
        'connections:',
        '  - name: bench',
        '    protocol: ssh',
        '    listen: 127.0.0.1:0',
        `    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: ${sshd.user}, privateKey: { file: ${sshd.userKeyPath} } }`,
        '    identities: [bench]',
        '',
      ].join('\n'),
    );
    const env = { ...process.env, FLIGHTLOG_HOME: '' };
    execFileSync(process.execPath, [BIN, 'identity', 'add', 'bench', '--kind', 'agent', '--data-dir', dataDir], { env, stdio: 'ignore' });
    const agentKey = path.join(work, 'agent');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', agentKey]);
    execFileSync(process.execPath, [BIN, 'identity', 'add-key', 'bench', `${agentKey}.pub`, '--data-dir', dataDir], { env, stdio: 'ignore' });
    const gw = await startGateway(configFile, dataDir, path.join(work, 'gateway.log'));
    gateway = gw.child;
    const gwPid = gw.child.pid as number;

    const directOpts = [...clientOptions(sshd.port, { keyPath: sshd.userKeyPath }), ...SSH_ARGS];
    const gatewayOpts = [...clientOptions(gw.port, { keyPath: agentKey }), ...SSH_ARGS];
    const sides = [
      { name: 'direct', opts: directOpts, port: sshd.port, dest: `${sshd.user}@${sshd.host}` },
      { name: 'gateway', opts: gatewayOpts, port: gw.port, dest: `bench@127.0.0.1` },
    ] as const;
    type Side = (typeof sides)[number];
    const sshArgs = (s: Side): string[] => [...s.opts, '-p', String(s.port), s.dest];

    const big = path.join(work, 'big.bin');
    execFileSync('head', ['-c', String(MB * 1024 * 1024), '/dev/urandom'], { stdio: ['ignore', fs.openSync(big, 'w'), 'inherit'] });
    const sink = path.join(work, 'down.bin');
    const workloads: Array<[string, (s: Side) => Promise<number>]> = [
      ['download', (s) => timed([...sshArgs(s), `cat ${big}`], 'ignore', sink)],
      ['upload', (s) => timed([...sshArgs(s), `cat > ${path.join(work, 'up.bin')}`], big, 'ignore')],
      ['scp', (s) => timed([...s.opts, '-P', String(s.port), big, `${s.dest}:${path.join(work, 'scp.bin')}`], 'ignore', 'ignore', 'scp')],
    ];
    const results: Record<string, { direct: Row[]; gateway: Row[] }> = {};
    const load0 = os.loadavg();
    for (const [name, fn] of workloads) {
      if (ONLY.length && !ONLY.includes(name)) continue;
      const r = (results[name] = { direct: [] as Row[], gateway: [] as Row[] });
      for (let run = 0; run <= RUNS; run++) {
        for (const side of sides) {
          const watch = watchSshd(sshdPid);
          const g0 = side.name === 'gateway' ? cpuMs(gwPid) : 0;
          const t0 = side.name === 'gateway' ? threadCpu(gwPid) : null;
          const wall = await fn(side);
          const sshdMs = watch.stop();
          if (run === 0) continue; // warm-up: page cache, sshd's fork path, V8's JIT
          if (side.name === 'direct') {
            r.direct.push({ wall, cpu: sshdMs });
          } else {
            const t1 = threadCpu(gwPid);
            const threads = new Map<string, number>();
            for (const [k, v] of t1) threads.set(k, v - (t0?.get(k) ?? 0));
            r.gateway.push({ wall, cpu: cpuMs(gwPid) - g0, sshd: sshdMs, threads });
          }
        }
      }
    }
    const load1 = os.loadavg();

    console.log(`ssh CPU per MB, ${MB} MB each way, ${RUNS} runs (min–max), gateway as its own process, recording on`);
    console.log(`load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}`);
    for (const [name, r] of Object.entries(results)) {
      const perMb = (rows: Row[], f: (x: Row) => number): number[] => rows.map((x) => f(x) / MB);
      const dCpu = perMb(r.direct, (x) => x.cpu);
      const gCpu = perMb(r.gateway, (x) => x.cpu);
      const tput = r.gateway.map((g, i) => r.direct[i].wall / g.wall);
      console.log(`  ${name}`);
      console.log(`    throughput     direct ${range(r.direct.map((x) => MB / x.wall), 0)} MB/s   gateway ${range(r.gateway.map((x) => MB / x.wall), 0)} MB/s   ratio ${range(tput, 2)}`);
      console.log(
        `    CPU ms/MB      sshd (direct) ${range(dCpu, 2)}   gateway ${range(gCpu, 2)}   gateway/sshd ${range(gCpu.map((g, i) => g / dCpu[i]), 2)}` +
          `   upstream sshd (gateway run) ${range(perMb(r.gateway, (x) => x.sshd ?? 0), 2)}`,
      );
      // Per thread, summed by name: where the gateway's CPU goes.
      const byName = new Map<string, number[]>();
      for (const g of r.gateway) {
        const sums = new Map<string, number>();
        for (const [k, v] of g.threads ?? []) {
          const n = k.slice(0, k.lastIndexOf('/'));
          sums.set(n, (sums.get(n) ?? 0) + v);
        }
        for (const [n, v] of sums) (byName.get(n) ?? byName.set(n, []).get(n))?.push(v / MB);
      }
      const split = [...byName].filter(([, v]) => Math.max(...v) >= 0.01).sort((a, b) => Math.max(...b[1]) - Math.max(...a[1]));
      console.log(`    gateway threads ms/MB  ${split.map(([n, v]) => `${n} ${range(v, 2)}`).join(', ')}`);
      if (process.env.FLIGHTLOG_BENCH_VERBOSE) {
        for (const g of r.gateway) console.log(`      by thread: ${[...(g.threads ?? [])].filter(([, v]) => v / MB >= 0.05).map(([k, v]) => `${k} ${(v / MB).toFixed(2)}`).join(', ')}`);
      }
    }
    console.log(`  gateway peak RSS (VmHWM) ${peakRssMb(gwPid).toFixed(0)} MiB`);
  } finally {
    if (gateway && gateway.exitCode === null) {
      const g = gateway;
      await new Promise<void>((resolve) => {
        g.once('exit', () => resolve());
        g.kill('SIGTERM');
      });
    }
    await sshd.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench-ssh-cpu: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
