/**
 * `npm run bench:pg`: what the recording gateway costs compared with going direct, with the
 * price of any extra hop (a plain Node TCP relay) and with pgbouncer. Not a timed test: it
 * prints a table. BENCH_SECONDS (default 5) sets each pgbench run's length.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';
import { tempDir } from '../helpers/tmp';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const SCALE = Number(process.env.BENCH_SCALE ?? 5);
// BENCH_ONLY=select1,select8,tpcb1,tpcb8,big keeps a subset (e.g. to profile one workload)
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
// BENCH_TARGETS=direct,relay,pgbouncer,gateway keeps a subset of targets (ratios need direct first)
const TARGETS = process.env.BENCH_TARGETS ? new Set(process.env.BENCH_TARGETS.split(',')) : null;
const want = (key: string): boolean => ONLY === null || ONLY.has(key);

interface Target {
  name: string;
  host: string;
  port: number;
  user: string;
  password: string;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** The cheapest possible extra hop: bytes piped both ways, no parsing. */
async function startTcpRelay(host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    const u = net.connect({ host, port });
    c.setNoDelay(true);
    u.setNoDelay(true);
    c.pipe(u);
    u.pipe(c);
    for (const s of [c, u]) {
      sockets.add(s);
      s.on('error', () => { c.destroy(); u.destroy(); });
      s.on('close', () => { sockets.delete(s); c.destroy(); u.destroy(); });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

async function startPgbouncer(pg: PostgresServer): Promise<{ port: number; stop(): void } | null> {
  if (!fs.existsSync('/usr/sbin/pgbouncer')) return null;
  const dir = tempDir('flightlog-pgbouncer-');
  const port = await freePort();
  const ini = [
    '[databases]',
    `app = host=${pg.host} port=${pg.port} dbname=app user=app password=${pg.app.password}`,
    '[pgbouncer]',
    `listen_addr = 127.0.0.1`,
    `listen_port = ${port}`,
    `unix_socket_dir =`,
    `auth_type = trust`,
    `auth_file = ${path.join(dir, 'users.txt')}`,
    `pool_mode = session`,
    `max_client_conn = 100`,
    `default_pool_size = 20`,
    `logfile = ${path.join(dir, 'pgbouncer.log')}`,
    `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'pgbouncer.ini'), ini + '\n', { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'users.txt'), '"app" ""\n', { mode: 0o600 });
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (asRoot) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    for (const f of ['', 'pgbouncer.ini', 'users.txt']) fs.chownSync(path.join(dir, f), uid, gid);
  }
  const argv = [path.join(dir, 'pgbouncer.ini')];
  const child: ChildProcess = asRoot
    ? spawn('runuser', ['-u', 'postgres', '--', '/usr/sbin/pgbouncer', ...argv], { stdio: 'ignore' })
    : spawn('/usr/sbin/pgbouncer', argv, { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    stop() {
      child.kill('SIGTERM');
      setTimeout(() => fs.rmSync(dir, { recursive: true, force: true }), 500);
    },
  };
}

async function pgbench(t: Target, args: string[]): Promise<number> {
  const { stdout } = await run('pgbench', ['-n', '-h', t.host, '-p', String(t.port), '-U', t.user, ...args, 'app'], {
    env: { ...process.env, PGPASSWORD: t.password, PGSSLMODE: 'disable' },
    maxBuffer: 16 * 1024 * 1024,
  });
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout);
  if (!m) throw new Error(`no tps in pgbench output for ${t.name}`);
  return Number(m[1]);
}

async function bigSelect(t: Target): Promise<number> {
  const started = process.hrtime.bigint();
  await run('psql', ['-X', '-q', '-h', t.host, '-p', String(t.port), '-U', t.user, '-d', 'app', '-o', '/dev/null', '-c', 'select g, md5(g::text) from generate_series(1, 1000000) g'], {
    env: { ...process.env, PGPASSWORD: t.password, PGSSLMODE: 'disable' },
    maxBuffer: 16 * 1024 * 1024,
  });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function commandsRecorded(gw: TestGateway): number {
  return gw.sessions().reduce((n, x) => n + x.commandCount, 0);
}

async function main(): Promise<void> {
  console.log(`bench-pg: ${os.cpus().length} cores, pgbench -T ${SECONDS}, scale ${SCALE}`);
  const pg = await startPostgres();
  let gw: TestGateway | null = null;
  let relay: Awaited<ReturnType<typeof startTcpRelay>> | null = null;
  let bouncer: Awaited<ReturnType<typeof startPgbouncer>> = null;
  let peakRss = 0;
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 100);
  try {
    const direct: Target = { name: 'direct', host: pg.host, port: pg.port, user: 'app', password: pg.app.password };
    await run('pgbench', ['-i', '-q', '-s', String(SCALE), '-h', pg.host, '-p', String(pg.port), '-U', 'app', 'app'], { env: { ...process.env, PGPASSWORD: pg.app.password } });
    relay = await startTcpRelay(pg.host, pg.port);
    bouncer = await startPgbouncer(pg);
    gw = await startTestGateway({
      env: { APP_PW: pg.app.password },
      connections: [{ name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['bench'] }],
    });
    const token = gw.addIdentity('bench');
    const targets: Target[] = [
      direct,
      { ...direct, name: 'node relay', port: relay.port },
      ...(bouncer ? [{ ...direct, name: 'pgbouncer', port: bouncer.port, password: '' }] : []),
      { name: 'gateway', host: gw.address('db').host, port: gw.address('db').port, user: 'bench', password: token },
    ].filter((t) => !TARGETS || TARGETS.has(t.name.split(' ').pop() as string));
    const workloads = [
      { key: 'select1', name: 'select-only, 1 client', args: ['-S', '-c', '1', '-j', '1'] },
      { key: 'select8', name: 'select-only, 8 clients', args: ['-S', '-c', '8', '-j', '2'] },
      { key: 'tpcb1', name: 'TPC-B-like, 1 client', args: ['-c', '1', '-j', '1'] },
      { key: 'tpcb8', name: 'TPC-B-like, 8 clients', args: ['-c', '8', '-j', '2'] },
    ].filter((w) => want(w.key));
    const cpuLines: string[] = [];
    const rows: string[][] = [['workload', ...targets.map((t) => t.name), 'gateway/relay']];
    for (const w of workloads) {
      const tps: number[] = [];
      for (const t of targets) {
        if (t.name !== 'gateway' || !gw) {
          tps.push(await pgbench(t, [...w.args, '-T', String(SECONDS)]));
          continue;
        }
        peakRss = process.memoryUsage().rss;
        // this process runs the gateway (listener, recorder, writer thread) and nothing else busy
        // during the gateway's run, so its CPU over the run is the recording gateway's cost
        await gw.flush();
        const before = commandsRecorded(gw);
        const cpu = process.cpuUsage();
        tps.push(await pgbench(t, [...w.args, '-T', String(SECONDS)]));
        await gw.flush();
        const used = process.cpuUsage(cpu);
        const n = commandsRecorded(gw) - before;
        cpuLines.push(`${w.name}: gateway CPU ${((used.user + used.system) / Math.max(n, 1)).toFixed(1)} µs per recorded command (${n} commands, all threads)`);
      }
      const base = tps[0];
      const relayIdx = targets.findIndex((t) => t.name === 'node relay');
      rows.push([
        w.name,
        ...tps.map((x, i) => (i === 0 ? `${x.toFixed(0)} tps` : `${x.toFixed(0)} (${(x / base).toFixed(2)}×)`)),
        relayIdx < 0 ? '-' : (tps[tps.length - 1] / tps[relayIdx]).toFixed(2) + '×',
      ]);
      console.log(rows[rows.length - 1].join(' | '));
    }
    console.log('');
    for (const r of rows) console.log(r.map((c, i) => c.padEnd(i === 0 ? 24 : 16)).join(' '));
    for (const l of cpuLines) console.log(l);
    if (want('big')) {
      const d = await bigSelect(direct);
      const g = await bigSelect(targets[targets.length - 1]);
      console.log(`\n1M-row SELECT: direct ${d.toFixed(2)} s, gateway ${g.toFixed(2)} s (${(d / g).toFixed(2)}× direct throughput)`);
    }
    console.log(`gateway process peak RSS: ${(peakRss / 1048576).toFixed(0)} MB`);
    await gw.flush();
    const s = gw.sessions();
    console.log(`recorded ${s.length} sessions, ${s.reduce((n, x) => n + x.commandCount, 0)} commands`);
  } finally {
    clearInterval(sampler);
    await gw?.close();
    await relay?.close();
    bouncer?.stop();
    await pg.stop();
  }
}

main().catch((err) => {
  console.error(`bench-pg failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
