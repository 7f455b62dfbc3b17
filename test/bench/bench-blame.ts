/**
 * `node dist/test/bench/bench-blame.js [COMMANDS]`: what blame and a run timeline cost on a store
 * of COMMANDS commands (default 20000; half SQL on 40 tables, half HTTP, in 10 runs). Prints
 * wall and CPU milliseconds per query, BENCH_RUNS (default 3) times. Not a timed test.
 */
import * as fs from 'node:fs';
import { openDb } from '../../gateway/store/db';
import { Recorder } from '../../gateway/store/recorder';
import { ensureFingerprintKey, ensureGatewayKey } from '../../gateway/store/chain';
import { createMasker } from '../../gateway/masking';
import { blame } from '../../gateway/store/blame';
import { runTimeline } from '../../gateway/store/runs';
import { tempDir } from '../helpers/tmp';

const N = Number(process.argv[2] ?? 20000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

function measure(f: () => number): string {
  const cpu = process.cpuUsage();
  const t = process.hrtime.bigint();
  const n = f();
  const used = process.cpuUsage(cpu);
  return `${n} rows, ${(Number(process.hrtime.bigint() - t) / 1e6).toFixed(1)} ms wall, ${((used.user + used.system) / 1000).toFixed(1)} ms CPU`;
}

async function main(): Promise<void> {
  const dir = tempDir('flightlog-bench-blame-');
  try {
    const db = openDb(dir);
    const key = ensureGatewayKey(dir);
    const rec = new Recorder(db, { masker: createMasker({ fingerprintKey: ensureFingerprintKey(dir) }), signingKey: key.privateKey, keyFingerprint: key.fingerprint });
    for (let s = 0; s < N / 100; s++) {
      const runId = `run_${s % 10}`;
      const pg = rec.openSession({ connection: 'db', protocol: 'postgres', identity: 'claude', runId });
      for (let i = 0; i < 50; i++) pg.startCommand({ kind: 'sql', text: `UPDATE t${i % 40} SET x = ${i}`, classification: 'write', targets: [`t${i % 40}`] }).finish({ status: 'ok', result: { tag: 'UPDATE 1', rowCount: 1 } });
      pg.close();
      const h = rec.openSession({ connection: 'api', protocol: 'http', identity: 'claude', runId });
      for (let i = 0; i < 50; i++) h.startCommand({ kind: 'http', text: `GET /v1/users/${i}`, classification: 'read', detail: { method: 'GET', url: `/v1/users/${i}` } }).finish({ status: 'ok', result: { status: 200 } });
      h.close();
      if (s % 20 === 0) await rec.flush();
    }
    await rec.flush();
    for (let r = 0; r < RUNS; r++) {
      console.log(`run ${r + 1}: table ${measure(() => blame(db, 't7').entries.length)}; http glob ${measure(() => blame(db, 'http:api:/v1/users/*').entries.length)}; run timeline ${measure(() => runTimeline(db, 'run_3').steps.length)}`);
    }
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
