/**
 * A large session exports and verifies with flat memory. The size defaults to 48 MiB so the suite
 * stays quick; FLIGHTLOG_BUNDLE_TEST_MB=1024 runs the 1 GB case. Prints its measurements.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportBundle } from '../../gateway/bundle/export';
import { verifyBundle } from '../../gateway/bundle/verify';
import { cleanupStores, newStore, tmpDir } from '../helpers/bundle-fixtures';

const MB = Number(process.env.FLIGHTLOG_BUNDLE_TEST_MB ?? 48);
const work = tmpDir('flightlog-bundle-large-');

after(() => {
  fs.rmSync(work, { recursive: true, force: true });
  cleanupStores();
});

/** Samples RSS while fn runs; returns the peak growth over the RSS at the start. */
async function peakRss<T>(fn: () => Promise<T>): Promise<{ result: T; peakMiB: number; seconds: number }> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = process.hrtime.bigint();
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, peakMiB: (peak - base) / 1048576, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  } finally {
    clearInterval(timer);
  }
}

test(`a ${MB} MiB session exports and verifies with flat memory`, { timeout: 1_800_000 }, async (t) => {
  const store = newStore();
  const s = store.rec.openSession({ connection: 'web-1', protocol: 'ssh', identity: 'claude' });
  const chunk = 'x'.repeat(4000) + '\r\n';
  const n = Math.ceil((MB * 1048576) / chunk.length);
  for (let i = 0; i < n; i++) {
    s.event('o', 'upstream→client', `${i} ${chunk}`);
    if (i % 5000 === 0) await store.rec.flush();
  }
  s.close();
  await store.rec.flush();
  global.gc?.();
  const file = path.join(work, 'large.flightlog');
  const ex = await peakRss(() => exportBundle(store.db, { sessionIds: [s.id], out: file, key: store.key }));
  const v = await peakRss(() => verifyBundle(file, { trustedKeys: [] }));
  assert.equal(v.result.ok, true, v.result.message);
  assert.equal(v.result.events, n + 2);
  const size = fs.statSync(file).size / 1048576;
  t.diagnostic(`bundle ${size.toFixed(0)} MiB, ${n + 2} events; export ${ex.seconds.toFixed(1)} s, peak RSS +${ex.peakMiB.toFixed(0)} MiB; verify ${v.seconds.toFixed(1)} s, peak RSS +${v.peakMiB.toFixed(0)} MiB`);
  assert.ok(ex.peakMiB < 150, `export grew RSS by ${ex.peakMiB.toFixed(0)} MiB`);
  assert.ok(v.peakMiB < 150, `verify grew RSS by ${v.peakMiB.toFixed(0)} MiB`);
});
