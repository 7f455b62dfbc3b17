/**
 * `npm run bench:guardrails`: what 20 guardrails cost per command. Two parts:
 * 1. the engine alone: CPU per decision with no rules and with 20, for pgbench-style SQL
 *    (literals vary), agent shell lines and HTTP requests;
 * 2. the whole gateway: `pgbench -S -c 4` through a gateway with no rules and one with 20,
 *    alternated, CPU of the gateway process (all threads, process.cpuUsage) per transaction.
 * Prints ranges over BENCH_RUNS (default 3) runs. Not a timed test.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { validateConfig } from '../../gateway/config/load';
import { guardrailsOf } from '../../gateway/policy';
import { loadSqlParser } from '../../gateway/postgres/sql-info';
import type { PolicyInput } from '../../gateway/common/types';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server';

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TXNS = Number(process.env.BENCH_TXNS ?? 5000);

/** Twenty rules of the kinds a lead writes: statements, tables, shell programs, paths, globs, one regex. */
export const TWENTY_RULES = [
  { name: 'no-drop', match: { protocol: 'postgres', sql: { statement: ['drop', 'truncate'] } }, action: 'deny' },
  { name: 'unbounded-write', match: { sql: { statement: ['delete', 'update'], where: 'absent' } }, action: 'hold' },
  { name: 'no-grant', match: { sql: { statement: ['grant', 'revoke'] } }, action: 'deny' },
  { name: 'no-do', match: { sql: { statement: ['do', 'call'] } }, action: 'hold' },
  { name: 'audit', match: { sql: { tables: ['audit.*', 'secrets', 'pg_authid'] } }, action: 'deny' },
  { name: 'prod-writes', match: { connection: 'prod-*', classification: ['write', 'ddl'] }, action: 'hold' },
  { name: 'interns', match: { identity: 'intern-*', classification: ['write'] }, action: 'deny' },
  { name: 'no-copy-out', match: { sql: { statement: ['copy'] } }, action: 'hold' },
  { name: 'no-alter-users', match: { sql: { statement: ['alter'], tables: ['users'] } }, action: 'hold' },
  { name: 'no-rm-rf', match: { shell: { program: 'rm', flags: ['r', 'f'] } }, action: 'deny' },
  { name: 'no-shutdown', match: { shell: { program: ['shutdown', 'reboot', 'halt', 'poweroff'] } }, action: 'deny' },
  { name: 'no-mkfs', match: { shell: { program: ['mkfs*', 'dd', 'fdisk'] } }, action: 'deny' },
  { name: 'no-chmod-777', match: { shell: { program: 'chmod', args: ['777', '0777'] } }, action: 'deny' },
  { name: 'no-force-push', match: { shell: { program: 'git', flags: ['force'] } }, action: 'hold' },
  { name: 'no-curl-sh', match: { text: 'curl[^|]*\\|\\s*(ba)?sh' }, action: 'deny' },
  { name: 'no-delete-api', match: { http: { method: 'DELETE', path: '/api/*' } }, action: 'deny' },
  { name: 'no-admin-api', match: { http: { path: '/admin/*' } }, action: 'hold' },
  { name: 'no-put-config', match: { http: { method: ['PUT', 'PATCH'], path: '/config*' } }, action: 'hold' },
  { name: 'no-k8s-delete', match: { kubernetes: { verb: ['delete'] } }, action: 'hold' },
  { name: 'no-mcp-write', match: { mcp: { tool: ['write_file', 'delete_*'] } }, action: 'hold' },
];

function range(xs: number[], digits = 1): string {
  const s = [...xs].sort((a, b) => a - b);
  return s[0] === s[s.length - 1] ? s[0].toFixed(digits) : `${s[0].toFixed(digits)}–${s[s.length - 1].toFixed(digits)}`;
}

function cpuUs(fn: () => void): number {
  const a = process.cpuUsage();
  fn();
  const b = process.cpuUsage(a);
  return b.user + b.system;
}

function engine(): void {
  const none = guardrailsOf(validateConfig({}, 'none.yaml'));
  const twenty = guardrailsOf(validateConfig({ guardrails: TWENTY_RULES }, 'twenty.yaml'));
  const N = 200_000;
  const sql = (i: number): PolicyInput => ({ connection: 'db', protocol: 'postgres', identity: 'claude', kind: 'sql', text: `SELECT abalance FROM pgbench_accounts WHERE aid = ${(i * 7919) % 500000};`, classification: 'read' });
  const shellLines = ['ls -la /srv/app', 'git status', 'cat /etc/hostname', 'grep -rn TODO src | head', 'cd /srv && make test', 'sudo systemctl restart app', 'rm -rf /tmp/build', 'echo done'];
  const shell = (i: number): PolicyInput => ({ connection: 'web', protocol: 'ssh', identity: 'claude', kind: 'exec', text: shellLines[i % shellLines.length] });
  const http = (i: number): PolicyInput => ({ connection: 'api', protocol: 'http', identity: 'claude', kind: 'http', text: `GET /api/items/${i % 1000}`, http: { method: 'GET', path: `/api/items/${i % 1000}` } });
  const rows: string[] = [];
  for (const [name, input] of [['SQL (pgbench -S texts)', sql], ['shell (8 agent lines, cached)', shell], ['HTTP GET', http]] as const) {
    const base: number[] = [];
    const withRules: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      base.push(cpuUs(() => { for (let i = 0; i < N; i++) none.decide(input(i)); }) / N);
      withRules.push(cpuUs(() => { for (let i = 0; i < N; i++) twenty.decide(input(i)); }) / N);
    }
    const extra = withRules.map((w, i) => w - base[i]);
    rows.push(`| ${name} | ${range(base, 2)} µs | ${range(withRules, 2)} µs | ${range(extra, 2)} µs |`);
  }
  // a shell line seen for the first time pays the parser
  const fresh: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const M = 2000;
    fresh.push(cpuUs(() => { for (let i = 0; i < M; i++) twenty.decide({ connection: 'web', protocol: 'ssh', identity: 'claude', kind: 'exec', text: `cd /srv/app-${r}-${i} && ls -la | grep -v x` }); }) / M);
  }
  rows.push(`| shell, every line new (parser) | – | ${range(fresh, 1)} µs | – |`);
  console.log('\nEngine alone, CPU per decision (process.cpuUsage):\n');
  console.log('| commands | no rules | 20 rules | extra |');
  console.log('| --- | --- | --- | --- |');
  for (const r of rows) console.log(r);
}

async function pgbench(gw: TestGateway, token: string): Promise<{ cpuPerTxn: number; tps: number }> {
  const a = gw.address('db');
  const before = process.cpuUsage();
  const { stdout } = await run('pgbench', ['-n', '-S', '-c', '4', '-t', String(Math.ceil(TXNS / 4)), '-h', a.host, '-p', String(a.port), '-U', 'claude', 'app'], { env: { ...process.env, PGPASSWORD: token } });
  const used = process.cpuUsage(before);
  await gw.flush();
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? NaN);
  return { cpuPerTxn: (used.user + used.system) / TXNS, tps };
}

async function whole(): Promise<void> {
  let pg: PostgresServer | null = null;
  const gws: TestGateway[] = [];
  try {
    pg = await startPostgres();
    await run('pgbench', ['-i', '-q', '-s', '1', '-h', pg.host, '-p', String(pg.port), '-U', 'app', 'app'], { env: { ...process.env, PGPASSWORD: pg.app.password } });
    const conn = { name: 'db', protocol: 'postgres', upstream: { host: pg.host, port: pg.port, user: 'app', database: 'app', password: { env: 'APP_PW' } }, identities: ['claude'] };
    const none = await startTestGateway({ env: { APP_PW: pg.app.password }, connections: [conn] });
    gws.push(none);
    const twenty = await startTestGateway({ env: { APP_PW: pg.app.password }, connections: [conn], guardrails: TWENTY_RULES });
    gws.push(twenty);
    const tokens = [none.addIdentity('claude'), twenty.addIdentity('claude')];
    await pgbench(none, tokens[0]); // warm up both
    await pgbench(twenty, tokens[1]);
    const a: Array<{ cpuPerTxn: number; tps: number }> = [];
    const b: Array<{ cpuPerTxn: number; tps: number }> = [];
    for (let r = 0; r < RUNS; r++) {
      a.push(await pgbench(none, tokens[0]));
      b.push(await pgbench(twenty, tokens[1]));
    }
    console.log(`\nWhole gateway, pgbench -S -c 4, ${TXNS} transactions per run, ${RUNS} runs alternated (CPU of the gateway process, all threads):\n`);
    console.log('| gateway | CPU per transaction | tps |');
    console.log('| --- | --- | --- |');
    console.log(`| no rules | ${range(a.map((x) => x.cpuPerTxn))} µs | ${range(a.map((x) => x.tps), 0)} |`);
    console.log(`| 20 rules | ${range(b.map((x) => x.cpuPerTxn))} µs | ${range(b.map((x) => x.tps), 0)} |`);
    console.log(`| difference per run | ${range(b.map((x, i) => x.cpuPerTxn - a[i].cpuPerTxn))} µs | |`);
  } finally {
    for (const g of gws) {
      await g.close();
    }
    await pg?.stop();
  }
}

async function main(): Promise<void> {
  await loadSqlParser();
  engine();
  if (process.env.BENCH_ENGINE_ONLY !== '1') await whole();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
