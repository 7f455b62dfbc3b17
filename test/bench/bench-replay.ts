/**
 * `npm run bench:replay`: seek latency in a generated 1-hour, ~100 MB terminal recording.
 * Writes the recording into a real store (hash-chained events, as the recorder writes them),
 * builds the keyframe index once (cold), then times random seeks end to end: the gateway's
 * seek (nearest keyframe + frames up to the target) plus restoring that screen in a headless
 * xterm, which is the work the renderer's xterm.js does. Target: every seek under 200 ms.
 */
import * as fs from 'node:fs';
import { Terminal } from '@xterm/headless';
import { openDb } from '../../gateway/store/db';
import { chainHash, genesisHash } from '../../gateway/store/chain';
import { ReplayIndexer } from '../../gateway/replay/keyframes';
import { TerminalFilter } from '../../gateway/common/terminal-filter';
import { tempDir } from '../helpers/tmp';

const HOUR_US = 3600 * 1_000_000;
const TARGET_BYTES = Number(process.env.BENCH_REPLAY_MB ?? 100) * 1024 * 1024;
const SEEKS = Number(process.env.BENCH_REPLAY_SEEKS ?? 60);

/** Deterministic pseudo-random numbers, so runs compare. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function logLines(r: () => number, n: number, start: number): string {
  let s = '';
  for (let i = 0; i < n; i++) {
    const ms = Math.floor(r() * 900);
    s += `\x1b[2m2025-03-01T12:${String((start + i) % 60).padStart(2, '0')}:00Z\x1b[0m \x1b[36mapi\x1b[0m GET /v1/orders/${Math.floor(r() * 1e6)} ${ms > 800 ? '\x1b[31m500\x1b[0m' : '\x1b[32m200\x1b[0m'} ${ms}ms user=${Math.floor(r() * 5000)} trace=${Math.floor(r() * 1e12).toString(16)}\r\n`;
  }
  return s;
}

function topScreen(r: () => number): string {
  let s = '\x1b[H\x1b[2J\x1b[7m  PID USER      PR  NI    VIRT    RES  %CPU %MEM     TIME+ COMMAND                         \x1b[0m\r\n';
  for (let i = 0; i < 40; i++) s += `\x1b[K${String(1000 + i).padStart(5)} app       20   0 ${String(Math.floor(r() * 9e5)).padStart(7)} ${String(Math.floor(r() * 9e4)).padStart(6)} ${(r() * 100).toFixed(1).padStart(5)} ${(r() * 10).toFixed(1).padStart(4)}   ${Math.floor(r() * 99)}:${Math.floor(r() * 59)}.${Math.floor(r() * 99)} node server-${i}.js\r\n`;
  return s;
}

function generate(dbDir: string): { sessionId: string; bytes: number; events: number; ms: number } {
  const t0 = performance.now();
  const db = openDb(dbDir);
  const id = 'ses_benchreplay0000000000';
  const startWall = Date.now() - HOUR_US / 1000;
  db.prepare(
    `INSERT INTO sessions (id, identity, connection, protocol, run_id, client_addr, meta, started_at, started_us, status, ended_at)
     VALUES (?, 'bench', 'web-1', 'ssh', NULL, '127.0.0.1:1', '{}', ?, ?, 'closed', ?)`,
  ).run(id, new Date(startWall).toISOString(), startWall * 1000, new Date(startWall + HOUR_US / 1000).toISOString());
  const insert = db.prepare('INSERT INTO events (session_id, seq, t_us, wall, kind, direction, command_id, data, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const r = rng(42);
  let prev = genesisHash(id);
  let seq = 0;
  let bytes = 0;
  let t = 0;
  const add = (kind: string, direction: string, data: unknown) => {
    const e = { seq: ++seq, t_us: Math.floor(t), wall: new Date(startWall + t / 1000).toISOString(), kind, direction, command_id: null, data: JSON.stringify(data) };
    prev = chainHash(prev, e);
    insert.run(id, e.seq, e.t_us, e.wall, e.kind, e.direction, null, e.data, prev);
  };
  db.transaction(() => {
    add('pty', 'client→upstream', { term: 'xterm-256color', cols: 160, rows: 48 });
    // ~100 MB over an hour: bursts of logs, full-screen redraws, typing, and idle gaps.
    const perEventUs = HOUR_US / (TARGET_BYTES / 4096);
    while (bytes < TARGET_BYTES) {
      const kind = r();
      let chunk: string;
      if (kind < 0.75) chunk = logLines(r, 24, seq);
      else if (kind < 0.95) chunk = topScreen(r);
      else {
        for (const ch of 'kubectl get pods -A\r') {
          add('i', 'client→upstream', ch);
          t += 60_000;
        }
        chunk = 'NAMESPACE   NAME                      READY   STATUS    RESTARTS   AGE\r\n'.repeat(20);
      }
      add('o', 'upstream→client', chunk);
      bytes += chunk.length;
      t += perEventUs * (chunk.length / 4096) * (r() < 0.02 ? 20 : 0.7);
    }
    t = Math.max(t, HOUR_US);
    add('close', 'gateway', { status: 'closed', reason: null });
  })();
  db.prepare('UPDATE sessions SET event_count = ?, last_hash = ? WHERE id = ?').run(seq, prev, id);
  db.close();
  return { sessionId: id, bytes, events: seq, ms: performance.now() - t0 };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function main(): Promise<void> {
  const dir = tempDir('flightlog-bench-replay-');
  try {
    const gen = generate(dir);
    console.log(`recording   ${(gen.bytes / 1024 / 1024).toFixed(1)} MB of terminal output, ${gen.events.toLocaleString()} events, 1 h (written in ${(gen.ms / 1000).toFixed(1)} s)`);
    const db = openDb(dir);
    const indexer = new ReplayIndexer(db);
    const t0 = performance.now();
    const index = await indexer.index(gen.sessionId);
    const indexMs = performance.now() - t0;
    console.log(`index       ${index.keyframes.length} keyframes, built in ${(indexMs / 1000).toFixed(2)} s (once per session, then cached)`);

    const term = new Terminal({ cols: index.cols, rows: index.rows, scrollback: 2000, allowProposedApi: true });
    const r = rng(7);
    const server: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < SEEKS; i++) {
      const target = Math.floor(r() * index.durationUs);
      const s0 = performance.now();
      const res = await indexer.seek(gen.sessionId, target);
      // what crosses the wire is JSON
      const wire = JSON.parse(JSON.stringify(res)) as typeof res;
      const s1 = performance.now();
      term.reset();
      const filter = new TerminalFilter();
      if (wire.keyframe) {
        term.resize(wire.keyframe.cols, wire.keyframe.rows);
        term.write(wire.keyframe.snapshot);
      }
      let text = '';
      for (const f of wire.frames) if (f.k === 'o') text += filter.push(f.d);
      await new Promise<void>((resolve) => term.write(text, resolve));
      const s2 = performance.now();
      server.push(s1 - s0);
      total.push(s2 - s0);
    }
    term.dispose();
    const fmt = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(1)} ms · p95 ${percentile(xs, 95).toFixed(1)} ms · max ${Math.max(...xs).toFixed(1)} ms`;
    console.log(`seek (gateway)        ${fmt(server)}`);
    console.log(`seek (gateway+screen) ${fmt(total)}   over ${SEEKS} random seeks`);
    const ok = Math.max(...total) < 200;
    console.log(ok ? 'PASS: every seek under 200 ms' : 'FAIL: a seek took 200 ms or more');
    indexer.close();
    db.close();
    process.exitCode = ok ? 0 : 1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
