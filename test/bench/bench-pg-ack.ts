/**
 * `npm run bench:pg-ack`: what fail-closed forwarding costs. Each statement goes upstream only
 * after the store committed its command, so this measures pgbench select-only (simple and
 * extended protocol, 1 and 8 clients) through the gateway: tps and the gateway process's CPU
 * per transaction (utime + stime from /proc/self/stat: the gateway runs in this process, its
 * writer thread included). BENCH_SECONDS (default 5) and BENCH_RUNS (default 3) set the runs.
 * BENCH_BASELINE=/path/to/other/checkout/dist also starts that build's gateway in this process
 * and alternates runs between the two (A/B under the same load, which shared machines need).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startPostgres } from '../helpers/postgres-server';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

function cpuTicks(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is state (field 3): utime and stime are fields 14 and 15
  return Number(fields[11]) + Number(fields[12]);
}

async function pgbench(host: string, port: number, password: string, args: string[]): Promise<{ tps: number; txns: number }> {
  const { stdout } = await run('pgbench', ['-n', '-h', host, '-p', String(port), '-U', 'bench', ...args, '-T', String(SECONDS), 'app'], {
    env: { ...process.env, PGPASSWORD: password, PGSSLMODE: 'disable' },
    maxBuffer: 16 * 1024 * 1024,
  });
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout);
  const txns = /number of transactions actually processed: (\d+)/.exec(stdout);
  if (!tps || !txns) throw new Error('no tps in pgbench output');
  return { tps: Number(tps[1]), txns: Number(txns[1]) };
}

/**
 * The recorder alone, no sockets: CPU per command (main thread and writer thread) when commands
 * are committed in groups (forward first, the old way), one commit per command (an acknowledged
 * statement, one client) and one commit per 8 commands (8 clients waiting on the same commit).
 */
async function recorderCost(gw: TestGateway): Promise<void> {
  const s = gw.gateway.recorder.openSession({ connection: 'bench-recorder', protocol: 'postgres', identity: 'bench' });
  const start = () => {
    const h = s.startCommand({ kind: 'sql', text: 'SELECT abalance FROM pgbench_accounts WHERE aid = 4242', classification: 'read', targets: ['table:pgbench_accounts'] });
    s.event('query', 'client→upstream', { sql: 'SELECT abalance FROM pgbench_accounts WHERE aid = 4242' }, { commandId: h.id });
    return h;
  };
  const finish = (h: ReturnType<typeof start>) => {
    s.event('result', 'upstream→client', { tag: 'SELECT 1', rowCount: 1 }, { commandId: h.id });
    h.finish({ status: 'ok', result: { rows: [[1]], rowCount: 1, tag: 'SELECT 1' } });
  };
  const N = 4000;
  for (const [name, group] of [['grouped commits (no ack)', 0], ['1 command per commit', 1], ['8 commands per commit', 8]] as const) {
    const t0 = cpuTicks();
    const w0 = process.hrtime.bigint();
    if (group === 0) {
      for (let i = 0; i < N; i++) finish(start());
    } else {
      for (let i = 0; i < N; i += group) {
        const hs = Array.from({ length: group }, start);
        await s.flushed();
        hs.forEach(finish);
      }
    }
    await s.flushed();
    const cpu = ((cpuTicks() - t0) * TICK_US) / N;
    const wall = Number(process.hrtime.bigint() - w0) / 1000 / N;
    console.log(`recorder, ${name.padEnd(26)} CPU ${cpu.toFixed(0)} µs/command, wall ${wall.toFixed(0)} µs/command`);
  }
  s.close();
}

async function main(): Promise<void> {
  console.log(`bench-pg-ack: ${os.cpus().length} cores, pgbench -T ${SECONDS}, ${RUNS} runs, load average ${os.loadavg()[0].toFixed(1)}`);
  const pg = await startPostgres();
  const gws: TestGateway[] = [];
  try {
    await run('pgbench', ['-i', '-q', '-s', '5', '-h', pg.host, '-p', String(pg.port), '-U', 'app', 'app'], { env: { ...process.env, PGPASSWORD: pg.app.password } });
    const opts = {
      env: { APP_PW: pg.app.password },
      connections: [{ name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['bench'] }],
    };
    const builds: Array<{ name: string; start: typeof startTestGateway }> = [];
    const baseline = process.env.BENCH_BASELINE;
    if (baseline) builds.push({ name: 'baseline', start: (require(path.join(baseline, 'test/helpers/gateway.js')) as { startTestGateway: typeof startTestGateway }).startTestGateway });
    builds.push({ name: 'this build', start: startTestGateway });
    const targets: Array<{ name: string; host: string; port: number; token: string }> = [];
    for (const b of builds) {
      const gw = await b.start(opts);
      gws.push(gw);
      targets.push({ name: b.name, ...gw.address('db'), token: gw.addIdentity('bench') });
    }
    await recorderCost(gws[gws.length - 1]);
    const workloads = [
      { name: 'select-only simple, 1 client', args: ['-S', '-c', '1', '-j', '1'] },
      { name: 'select-only extended, 1 client', args: ['-S', '-M', 'extended', '-c', '1', '-j', '1'] },
      { name: 'select-only simple, 8 clients', args: ['-S', '-c', '8', '-j', '2'] },
      { name: 'select-only extended, 8 clients', args: ['-S', '-M', 'extended', '-c', '8', '-j', '2'] },
    ];
    for (const w of workloads) {
      const tps = targets.map(() => [] as number[]);
      const cpu = targets.map(() => [] as number[]);
      for (let i = 0; i < RUNS; i++) {
        for (let t = 0; t < targets.length; t++) {
          const before = cpuTicks();
          const r = await pgbench(targets[t].host, targets[t].port, targets[t].token, w.args);
          tps[t].push(r.tps);
          cpu[t].push(((cpuTicks() - before) * TICK_US) / r.txns);
        }
      }
      const range = (xs: number[], d: number) => `${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}`;
      for (let t = 0; t < targets.length; t++) {
        console.log(`${w.name.padEnd(34)} ${targets[t].name.padEnd(11)} tps ${range(tps[t], 0).padEnd(12)} gateway CPU/txn ${range(cpu[t], 0)} µs   (runs: ${tps[t].map((x) => x.toFixed(0)).join(', ')})`);
      }
    }
  } finally {
    for (const gw of gws) await gw.close();
    await pg.stop();
  }
}

main().catch((err) => {
  console.error(`bench-pg-ack failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
