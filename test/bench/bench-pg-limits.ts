/**
 * What the Postgres hardening costs and saves. Run: node dist/test/bench/bench-pg-limits.js
 * - CPU per analyzed statement (cache misses: distinct texts), with and without secret columns;
 * - a client streaming a Query that declares 300 MB: time to the gateway's answer, MB sent by
 *   then, and the growth of this process's RSS (gateway and client share it).
 */
import { analyzeSql, loadSqlParser } from '../../gateway/postgres/sql-info';
import { startTestGateway } from '../helpers/gateway';
import { RawPgClient, startPostgres } from '../helpers/postgres-server';

function cpuMicros(n: number, fn: (i: number) => void): string {
  const s = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const d = process.cpuUsage(s);
  return ((d.user + d.system) / n).toFixed(1);
}

async function parseCost(): Promise<void> {
  await loadSqlParser();
  const tag = Date.now();
  const n = 20000;
  // warm the parser and the JIT first, or the first workload pays for both
  cpuMicros(5000, (i) => analyzeSql(`INSERT INTO users(name, password) VALUES ($1, 'w${i}-${tag}')`));
  const secret = cpuMicros(n, (i) => analyzeSql(`INSERT INTO users(name, password, api_key) VALUES ($1, $2, 'k${i}-${tag}')`));
  const join = cpuMicros(n, (i) => analyzeSql(`SELECT a.id, b.name FROM t1 a JOIN t2 b ON a.id = b.id WHERE a.x = $1 AND b.note LIKE '%${i}-${tag}'`));
  const shaped = cpuMicros(n, (i) => analyzeSql(`UPDATE pgbench_accounts SET abalance = abalance + ${i % 5000} WHERE aid = ${i};`));
  console.log(`analyzeSql CPU: INSERT into secret columns ${secret} µs, join SELECT ${join} µs, pgbench UPDATE (shape cache) ${shaped} µs`);
}

async function bigQuery(): Promise<void> {
  const pg = await startPostgres();
  const up = { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } };
  const gw = await startTestGateway({ env: { APP_PW: pg.app.password }, connections: [{ name: 'db', protocol: 'postgres', upstream: up, identities: ['claude'] }] });
  try {
    const a = gw.address('db');
    const raw = await RawPgClient.login(a.host, a.port, 'claude', gw.addIdentity('claude'));
    const base = process.memoryUsage().rss;
    let peak = 0;
    const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss - base); }, 5);
    const size = 300 * 1024 * 1024;
    const header = Buffer.alloc(5);
    header[0] = 0x51;
    header.writeInt32BE(size + 4, 1);
    const t0 = Date.now();
    let sent = 0;
    let answer: string | null = null;
    raw.next(120_000).then((f) => { answer = `${f.type} after ${Date.now() - t0} ms, ${Math.round(sent / 1048576)} MB sent`; }, () => { answer = 'closed'; });
    raw.socket.write(header);
    const chunk = Buffer.alloc(1 << 20, 0x20);
    while (sent < size - 1 && answer === null && !raw.closed) {
      const n = Math.min(chunk.length, size - 1 - sent);
      if (!raw.socket.write(chunk.subarray(0, n))) await new Promise((r) => { raw.socket.once('drain', r); setTimeout(r, 2000); });
      sent += n;
    }
    for (let i = 0; i < 100 && answer === null; i++) await new Promise((r) => setTimeout(r, 100));
    clearInterval(timer);
    console.log(`300 MB Query: answer ${answer ?? 'none within 10 s of the last byte'}; RSS grew ${Math.round(peak / 1048576)} MB`);
    raw.close();
  } finally {
    await gw.close();
    await pg.stop();
  }
}

(async () => {
  await parseCost();
  await bigQuery();
})().catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
