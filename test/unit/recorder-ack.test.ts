/**
 * The recorder's side of fail-closed forwarding and revocation: `flushed()` as a per-command
 * acknowledgement, a store failure reported once and kept, and `terminate` ending the sessions it
 * selects with the reason in the chain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openDb } from '../../gateway/store/db';
import { Recorder } from '../../gateway/store/recorder';
import { ensureFingerprintKey, ensureGatewayKey, verifyChain } from '../../gateway/store/chain';
import { getSession, iterateRawEvents } from '../../gateway/store/queries';
import { createMasker } from '../../gateway/masking';

function setup(opts: { onStoreFailure?: (e: Error) => void } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-ack-'));
  const db = openDb(dir);
  const key = ensureGatewayKey(dir);
  const masker = createMasker({ fingerprintKey: ensureFingerprintKey(dir) });
  // a long grouping interval: an acknowledgement must not wait for it
  const rec = new Recorder(db, { masker, signingKey: key.privateKey, keyFingerprint: key.fingerprint, commitIntervalMs: 60_000, ...opts });
  const cleanup = () => {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { db, rec, cleanup };
}

test('flushed() commits the command at once, whatever the grouping interval', async () => {
  const { db, rec, cleanup } = setup();
  try {
    const s = rec.openSession({ connection: 'db', protocol: 'postgres', identity: 'claude' });
    const cmd = s.startCommand({ kind: 'sql', text: 'insert into t values (1)' });
    const t0 = Date.now();
    await s.flushed();
    assert.ok(Date.now() - t0 < 5_000);
    const row = db.prepare('SELECT text, status FROM commands WHERE id = ?').get(cmd.id) as { text: string; status: string };
    assert.deepEqual(row, { text: 'insert into t values (1)', status: 'running' });
    s.close();
    await rec.flush();
  } finally {
    cleanup();
  }
});

test('a failed commit rejects the acknowledgement, is reported once, and fails every session from then on', async () => {
  const failures: string[] = [];
  const { db, rec, cleanup } = setup({ onStoreFailure: (e) => failures.push(e.message) });
  try {
    const s = rec.openSession({ connection: 'db', protocol: 'postgres', identity: 'claude' });
    await s.flushed();
    assert.equal(rec.storeStatus().ok, true);
    // a trigger that refuses every new command stands in for a full disk
    db.exec("CREATE TRIGGER flightlog_test_full BEFORE INSERT ON commands BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
    s.startCommand({ kind: 'sql', text: 'select 1' });
    await assert.rejects(s.flushed(), /disk is full/);
    assert.equal(s.failed, true);
    const later = rec.openSession({ connection: 'db', protocol: 'postgres', identity: 'claude' });
    assert.equal(later.failed, true);
    later.startCommand({ kind: 'sql', text: 'select 2' });
    await assert.rejects(later.flushed());
    assert.deepEqual(failures, ['database or disk is full']);
    const st = rec.storeStatus();
    assert.equal(st.ok, false);
    assert.equal(st.error, 'database or disk is full');
    assert.ok(st.since);
  } finally {
    cleanup();
  }
});

test('terminate ends only the matching sessions, through their listener, with the reason in the chain', async () => {
  const { db, rec, cleanup } = setup();
  try {
    const a = rec.openSession({ connection: 'db', protocol: 'postgres', identity: 'claude', runId: 'run_1' });
    const b = rec.openSession({ connection: 'db', protocol: 'postgres', identity: 'other' });
    const cut: string[] = [];
    a.onTerminate((reason, message) => {
      cut.push(`${reason}: ${message}`);
      // the listener's own close while cutting keeps the gateway's reason
      a.close('error', 'client connection error');
    });
    b.onTerminate(() => cut.push('b'));
    const n = rec.terminate((s) => s.runId === 'run_1', 'run ended', 'Flightlog run ended');
    assert.equal(n, 1);
    assert.deepEqual(cut, ['run ended: Flightlog run ended']);
    b.close();
    await rec.flush();
    const detail = getSession(db, a.id);
    assert.equal(detail.status, 'closed');
    assert.equal(detail.endReason, 'run ended');
    const events = [...iterateRawEvents(db, a.id)];
    assert.deepEqual(events.slice(-2).map((e) => e.kind), ['terminated', 'close']);
    assert.equal(verifyChain(a.id, events).ok, true);
    assert.equal(rec.liveSessionInfo().length, 0);
  } finally {
    cleanup();
  }
});
