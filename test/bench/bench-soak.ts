/**
 * Soak: the real `flightlog gateway` (its own process, as a user runs it) under 50 concurrent
 * client sessions across protocols for a fixed time — Postgres through the pg client, SSH exec
 * through ssh2, HTTP through fetch with keep-alive — against a real PostgreSQL, sshd and HTTP
 * upstream from test/helpers, loopback only. Sessions are reopened every few dozen commands so
 * session setup and sealing are soaked too.
 *
 * At the end it checks what a user relies on after a long day:
 *   - the gateway's RSS is flat (first/last/max, least-squares slope, growth after warm-up);
 *   - every command a client saw acknowledged is in the store, counted per client session;
 *   - every session's hash chain verifies, closed sessions are sealed, and a bundle of all of
 *     them verifies (checksums, chains, seals, signature).
 *
 *   npm run bench:soak                     10 minutes
 *   npm run bench:soak -- --minutes 2      any length; --quick is 1 minute
 *   options: --workers 50 --interval-ms 200 (pause between one worker's commands)
 *            --max-commands 500000 (count bound) --per-session 40 (commands before reconnecting)
 * Exits 1 when a check fails.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Client as PgClient } from 'pg';
import { Client as SshClient } from 'ssh2';
import { PACKAGE_ROOT } from '../../gateway/core/version';
import { openDb } from '../../gateway/store/db';
import { getSession, iterateRawEvents, listSessions } from '../../gateway/store/queries';
import { ensureGatewayKey, verifyChain } from '../../gateway/store/chain';
import { exportBundle } from '../../gateway/bundle/export';
import { verifyBundle } from '../../gateway/bundle/verify';
import { startPostgres } from '../helpers/postgres-server';
import { startSshd } from '../helpers/sshd';
import { startHttpUpstream } from '../helpers/http-upstreams';
import { tempDir } from '../helpers/tmp';
import { startGatewayProcess } from './gateway-process';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'flightlog.js');

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
    workers: { type: 'string', default: '50' },
    'interval-ms': { type: 'string', default: '200' },
    'max-commands': { type: 'string', default: '500000' },
    'per-session': { type: 'string', default: '40' },
    'sample-seconds': { type: 'string', default: '5' },
  },
});
const MINUTES = opt.quick ? 1 : Number(opt.minutes);
const WORKERS = Number(opt.workers);
const INTERVAL_MS = Number(opt['interval-ms']);
const MAX_COMMANDS = Number(opt['max-commands']);
const PER_SESSION = Number(opt['per-session']);
const SAMPLE_MS = Number(opt['sample-seconds']) * 1000;
for (const [k, v] of Object.entries({ MINUTES, WORKERS, INTERVAL_MS, MAX_COMMANDS, PER_SESSION, SAMPLE_MS })) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`bench-soak: ${k} must be a positive number`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Client-side truth: per client session, the command numbers the client saw acknowledged. */
const acked = new Map<string, Set<number>>();
const failures: string[] = [];
let issued = 0;
let deadline = 0;
const more = () => Date.now() < deadline && issued < MAX_COMMANDS;

function ack(session: string, n: number): void {
  let s = acked.get(session);
  if (!s) acked.set(session, (s = new Set()));
  s.add(n);
}

function fail(what: string, err: unknown): void {
  if (failures.length < 1000) failures.push(`${what}: ${(err as Error)?.message ?? String(err)}`);
}

// ---------------------------------------------------------------------------------------
// The three kinds of client. Each runs sessions of PER_SESSION commands until time is up;
// a command's text carries `soak:<session>:<n>` so the store can be checked command by command.

async function pgWorker(w: number, port: number, token: string): Promise<void> {
  for (let s = 0; more(); s++) {
    const key = `pg-${w}-${s}`;
    const client = new PgClient({ host: '127.0.0.1', port, user: 'soak', password: token, database: 'app', ssl: false });
    try {
      await client.connect();
      for (let n = 0; n < PER_SESSION && more(); n++) {
        issued++;
        const r = await client.query(`SELECT 'soak:${key}:${n}' AS marker, md5('${n}') AS h, ${n} + 1 AS next`);
        if (r.rows[0]?.marker === `soak:${key}:${n}`) ack(key, n);
        else fail(key, new Error(`wrong answer ${JSON.stringify(r.rows[0])}`));
        await sleep(INTERVAL_MS);
      }
    } catch (err) {
      fail(key, err);
      await sleep(500);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

function sshConnect(port: number, token: string): Promise<SshClient> {
  return new Promise((resolve, reject) => {
    const c = new SshClient();
    c.once('ready', () => resolve(c));
    c.once('error', reject);
    c.connect({ host: '127.0.0.1', port, username: 'soak', password: token, readyTimeout: 20_000, hostVerifier: () => true });
  });
}

function sshExec(c: SshClient, command: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    c.exec(command, (err, ch) => {
      if (err) return reject(err);
      let out = '';
      let code: number | null = null;
      ch.on('data', (d: Buffer) => (out += d.toString()));
      ch.stderr.resume();
      ch.on('exit', (c2: number | null) => (code = c2));
      ch.once('close', () => resolve({ code, out }));
    });
  });
}

async function sshWorker(w: number, port: number, token: string): Promise<void> {
  for (let s = 0; more(); s++) {
    const key = `ssh-${w}-${s}`;
    let client: SshClient | null = null;
    try {
      client = await sshConnect(port, token);
      client.on('error', (err) => fail(key, err));
      for (let n = 0; n < PER_SESSION && more(); n++) {
        issued++;
        const r = await sshExec(client, `echo soak:${key}:${n}`);
        if (r.code === 0 && r.out.trim() === `soak:${key}:${n}`) ack(key, n);
        else fail(key, new Error(`exit ${r.code}, output ${JSON.stringify(r.out.slice(0, 80))}`));
        await sleep(INTERVAL_MS);
      }
    } catch (err) {
      fail(key, err);
      await sleep(500);
    } finally {
      client?.end();
    }
  }
}

async function httpWorker(w: number, port: number, token: string): Promise<void> {
  // fetch keeps connections alive in its own pool; the client session here is the worker's
  // batch of commands, which the gateway spreads over the pool's connections.
  for (let s = 0; more(); s++) {
    const key = `http-${w}-${s}`;
    for (let n = 0; n < PER_SESSION && more(); n++) {
      issued++;
      try {
        const res = await fetch(`http://127.0.0.1:${port}/small?soak=soak:${key}:${n}`, { headers: { authorization: `Bearer ${token}` } });
        const body = (await res.json()) as { ok?: boolean };
        if (res.status === 200 && body.ok) ack(key, n);
        else fail(key, new Error(`HTTP ${res.status}`));
      } catch (err) {
        fail(key, err);
      }
      await sleep(INTERVAL_MS);
    }
  }
}

// ---------------------------------------------------------------------------------------

interface Sample {
  t: number;
  rssMb: number;
}

function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** Least-squares slope of RSS over time, in MB per minute. */
function slopeMbPerMin(samples: Sample[]): number {
  if (samples.length < 2) return 0;
  const n = samples.length;
  const mt = samples.reduce((a, s) => a + s.t, 0) / n;
  const mr = samples.reduce((a, s) => a + s.rssMb, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (s.rssMb - mr);
    den += (s.t - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60_000;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};


async function main(): Promise<void> {
  console.log(`bench-soak: ${MINUTES} min, ${WORKERS} concurrent sessions, a command every ${INTERVAL_MS} ms per session, at most ${MAX_COMMANDS} commands`);
  const pg = await startPostgres();
  // sshd drops unauthenticated connections past MaxStartups (10 by default): 50 sessions
  // reconnecting would measure that limit of the upstream, not the gateway.
  const sshd = await startSshd({ extraConfig: 'MaxStartups 200\nMaxSessions 200' });
  const upstream = await startHttpUpstream();
  const work = tempDir('flightlog-soak-');
  let gateway: ChildProcess | null = null;
  let ok = true;
  try {
    const dataDir = path.join(work, 'data');
    const configFile = path.join(work, 'flightlog.yaml');
    fs.writeFileSync(
      configFile,
      [
        'connections:',
        '  - name: db',
        '    protocol: postgres',
        '    listen: 127.0.0.1:0',
        `    upstream: { host: 127.0.0.1, port: ${pg.port}, user: app, database: app, password: { env: SOAK_PG_PASSWORD } }`,
        '    identities: [soak]',
        '  - name: host',
        '    protocol: ssh',
        '    listen: 127.0.0.1:0',
        `    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: ${sshd.user}, privateKey: { file: ${sshd.userKeyPath} } }`,
        '    identities: [soak]',
        '  - name: api',
        '    protocol: http',
        '    listen: 127.0.0.1:0',
        `    upstream: { url: "${upstream.url}" }`,
        '    identities: [soak]',
        '',
      ].join('\n'),
    );
    const env = { ...process.env, SOAK_PG_PASSWORD: pg.app.password, FLIGHTLOG_HOME: '' };
    const token = execFileSync(process.execPath, [BIN, 'identity', 'add', 'soak', '--kind', 'agent', '--data-dir', dataDir], { env, encoding: 'utf8' }).trim();
    const logFile = path.join(work, 'gateway.log');
    // the gateway logs every connection: kept in a file, summarised at the end
    const gw = await startGatewayProcess({ configFile, dataDir, env, logFile });
    gateway = gw.child;
    const pid = gw.child.pid as number;
    console.log(`gateway pid ${pid}, listening ${JSON.stringify(gw.ports)}`);

    const started = Date.now();
    deadline = started + MINUTES * 60_000;
    const samples: Sample[] = [{ t: 0, rssMb: rssMb(pid) }];
    const sampler = setInterval(() => {
      samples.push({ t: Date.now() - started, rssMb: rssMb(pid) });
      // The upstream helper keeps every request it saw; this soak does not need them.
      upstream.seen.length = 0;
      const last = samples[samples.length - 1];
      if (samples.length % Math.max(1, Math.round(60_000 / SAMPLE_MS)) === 0) {
        console.log(`  ${(last.t / 60_000).toFixed(1)} min: rss ${last.rssMb.toFixed(0)} MB, ${issued} commands issued, ${failures.length} failures`);
      }
    }, SAMPLE_MS);

    const workers: Promise<void>[] = [];
    for (let w = 0; w < WORKERS; w++) {
      const kind = w % 3;
      if (kind === 0) workers.push(pgWorker(w, gw.ports.db, token));
      else if (kind === 1) workers.push(sshWorker(w, gw.ports.host, token));
      else workers.push(httpWorker(w, gw.ports.api, token));
    }
    await Promise.all(workers);
    clearInterval(sampler);
    samples.push({ t: Date.now() - started, rssMb: rssMb(pid) });
    const elapsedMin = (Date.now() - started) / 60_000;

    // SIGTERM: the gateway closes and seals every session, then exits 0.
    const code = await new Promise<number | null>((resolve) => {
      gw.child.once('exit', (c) => resolve(c));
      gw.child.kill('SIGTERM');
    });
    gateway = null;
    if (code !== 0) {
      ok = false;
      console.log(`FAIL: the gateway exited with ${code} on SIGTERM`);
    }

    const logLines = fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
    const warnings = logLines.filter((l) => /^flightlog (warn|error)/.test(l));
    const kinds = [...new Set(warnings.map((l) => l.replace(/\d+/g, 'N')))].slice(0, 5);
    console.log(`gateway log: ${logLines.length} lines, ${warnings.length} warnings/errors${kinds.length ? `: ${kinds.join(' | ')}` : ''}`);

    // --- RSS -----------------------------------------------------------------------------
    const rss = samples.map((s) => s.rssMb);
    const warm = samples.filter((s) => s.t >= samples[samples.length - 1].t * 0.2);
    const third = Math.max(1, Math.floor(warm.length / 3));
    const early = median(warm.slice(0, third).map((s) => s.rssMb));
    const late = median(warm.slice(-third).map((s) => s.rssMb));
    const growth = (late - early) / early;
    const slope = slopeMbPerMin(warm);
    const flat = growth < 0.25;
    console.log(
      `\nRSS (MB): first ${rss[0].toFixed(0)}, last ${rss[rss.length - 1].toFixed(0)}, max ${Math.max(...rss).toFixed(0)}; after warm-up ${early.toFixed(0)} → ${late.toFixed(0)} (${(growth * 100).toFixed(1)}%), slope ${slope.toFixed(2)} MB/min over ${samples.length} samples: ${flat ? 'flat' : 'GROWING'}`,
    );
    if (!flat) ok = false;

    // --- every acknowledged command is in the store ---------------------------------------
    const db = openDb(dataDir);
    const recorded = new Map<string, Set<number>>();
    let storeCommands = 0;
    let chainsOk = 0;
    let unsealed = 0;
    const chainProblems: string[] = [];
    const { sessions } = listSessions(db, { limit: 1_000_000 });
    for (const s of sessions) {
      const d = getSession(db, s.id);
      for (const c of d.commands) {
        storeCommands++;
        const m = /soak:((?:pg|ssh|http)-\d+-\d+):(\d+)/.exec(c.text);
        if (!m) continue;
        let set = recorded.get(m[1]);
        if (!set) recorded.set(m[1], (set = new Set()));
        set.add(Number(m[2]));
      }
      const check = verifyChain(s.id, iterateRawEvents(db, s.id));
      if (check.ok && check.count === d.eventCount) chainsOk++;
      else if (chainProblems.length < 10) chainProblems.push(`${s.id}: ${check.reason ?? `${check.count} of ${d.eventCount} events`}`);
      if (!d.sealed) unsealed++;
    }
    const byProto: Record<string, { sessions: number; acked: number; missing: number }> = {};
    const missing: string[] = [];
    for (const [key, set] of acked) {
      const proto = key.split('-')[0];
      const row = (byProto[proto] ??= { sessions: 0, acked: 0, missing: 0 });
      row.sessions++;
      row.acked += set.size;
      const have = recorded.get(key) ?? new Set<number>();
      for (const n of set) {
        if (!have.has(n)) {
          row.missing++;
          if (missing.length < 10) missing.push(`${key}:${n}`);
        }
      }
    }
    const totalAcked = [...acked.values()].reduce((a, s) => a + s.size, 0);
    const totalMissing = Object.values(byProto).reduce((a, r) => a + r.missing, 0);
    console.log(`commands: ${issued} issued in ${elapsedMin.toFixed(2)} min (${(issued / (elapsedMin * 60)).toFixed(0)}/s), ${totalAcked} acknowledged, ${failures.length} failed client-side; store holds ${storeCommands} commands in ${sessions.length} sessions`);
    for (const [proto, r] of Object.entries(byProto)) console.log(`  ${proto.padEnd(5)} ${String(r.sessions).padStart(5)} client sessions, ${String(r.acked).padStart(7)} acknowledged, ${r.missing} missing from the store`);
    if (totalMissing > 0) {
      ok = false;
      console.log(`FAIL: ${totalMissing} acknowledged commands are not in the store, e.g. ${missing.join(', ')}`);
    }
    if (failures.length) console.log(`client-side failures (first ${Math.min(5, failures.length)}): ${failures.slice(0, 5).join(' | ')}`);
    console.log(`chains: ${chainsOk} of ${sessions.length} sessions verify; ${unsealed} not sealed after shutdown`);
    if (chainsOk !== sessions.length || unsealed > 0) {
      ok = false;
      console.log(`FAIL: ${chainProblems.join('; ')}`);
    }

    // --- one bundle of everything, verified as a reviewer would -----------------------------
    const bundleFile = path.join(work, 'soak.flightlog');
    const key = ensureGatewayKey(dataDir);
    const t0 = Date.now();
    await exportBundle(db, { sessionIds: sessions.map((s) => s.id), out: bundleFile, key });
    const report = await verifyBundle(bundleFile, { trustedKeys: [{ name: 'soak', fingerprint: key.fingerprint, publicKeyPem: key.publicKeyPem }] });
    db.close();
    console.log(`bundle: ${(fs.statSync(bundleFile).size / 1048576).toFixed(1)} MB, ${report.sessions} sessions, ${report.events} events, exported and verified in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${report.message}`);
    if (!report.ok) ok = false;
    console.log(
      'SOAK ' +
        JSON.stringify({
          minutes: Number(elapsedMin.toFixed(2)),
          workers: WORKERS,
          issued,
          acked: totalAcked,
          missing: totalMissing,
          clientFailures: failures.length,
          sessions: sessions.length,
          rssMb: { first: Math.round(rss[0]), last: Math.round(rss[rss.length - 1]), max: Math.round(Math.max(...rss)), slopePerMin: Number(slope.toFixed(2)), growthAfterWarmup: Number(growth.toFixed(3)) },
          chainsOk,
          bundleOk: report.ok,
        }),
    );
    console.log(ok ? '\nsoak: PASS' : '\nsoak: FAIL');
  } finally {
    if (gateway) gateway.kill('SIGKILL');
    await upstream.close();
    await sshd.stop();
    await pg.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
  process.exitCode = ok ? 0 : 1;
}

main().catch((err) => {
  console.error(`bench-soak failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
