/**
 * The recorder's side of fail-closed forwarding and revocation: `flushed()` as a per-command
 * acknowledgement (the record journal), a store failure reported once and kept, the journal's own
 * reading and writing, and `terminate` ending the sessions it selects with the reason in the chain.
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
import { decodeOps, encodeOps, journalPath, JournalWriter, readJournal } from '../../gateway/store/journal';

function setup(opts: { onStoreFailure?: (e: Error) => void; loadIntervalMs?: number } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-ack-'));
  const db = openDb(dir);
  const key = ensureGatewayKey(dir);
  const masker = createMasker({ fingerprintKey: ensureFingerprintKey(dir) });
  // a long grouping interval: an acknowledgement must not wait for it
  const rec = new Recorder(db, { masker, signingKey: key.privateKey, keyFingerprint: key.fingerprint, commitIntervalMs: 60_000, ...opts });
  const cleanup = () => {
    if (db.open) db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { db, rec, cleanup };
}

test('flushed() makes the command durable at once, whatever the grouping interval: in the journal, then in the store', async () => {
  // the writer thread waits a minute between loads: the acknowledgement must not wait for it
  const { db, rec, cleanup } = setup({ loadIntervalMs: 60_000 });
  try {
    const s = rec.openSession({ connection: 'db', protocol: 'postgres', identity: 'claude' });
    await s.flushed();
    const cmd = s.startCommand({ kind: 'sql', text: 'insert into t values (1)' });
    const t0 = Date.now();
    await s.flushed();
    assert.ok(Date.now() - t0 < 5_000);
    const held = readJournal(journalPath(db)).flatMap((r) => decodeOps(r.payload));
    assert.ok(held.some((p) => Array.isArray(p) && p[0] === cmd.id && p[4] === 'insert into t values (1)'), 'the command is in the journal when it is acknowledged');
    assert.equal((db.prepare('SELECT count(*) AS n FROM commands WHERE id = ?').get(cmd.id) as { n: number }).n, 0, 'and not loaded yet');
    // a process that opens the store now (the gateway was killed) loads it from the journal
    const other = openDb(path.dirname(db.name));
    try {
      const row = other.prepare('SELECT text, status FROM commands WHERE id = ?').get(cmd.id) as { text: string; status: string };
      assert.deepEqual(row, { text: 'insert into t values (1)', status: 'running' });
    } finally {
      other.close();
    }
    // the writer thread skips what the other process loaded: the command is there once
    s.close();
    await rec.flush();
    assert.equal((db.prepare('SELECT count(*) AS n FROM commands WHERE id = ?').get(cmd.id) as { n: number }).n, 1);
    await rec.close();
  } finally {
    cleanup();
  }
});

test('a failed load rejects flush(), is reported once, and fails every session from then on; the journal keeps the batch', async () => {
  const failures: string[] = [];
  const { db, rec, cleanup } = setup({ onStoreFailure: (e) => failures.push(e.message) });
  try {
    const s = rec.openSession({ connection: 'db', protocol: 'postgres', identity: 'claude' });
    await rec.flush();
    assert.equal(rec.storeStatus().ok, true);
    // a trigger that refuses every new command stands in for a full disk
    db.exec("CREATE TRIGGER flightlog_test_full BEFORE INSERT ON commands BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
    const cmd = s.startCommand({ kind: 'sql', text: 'select 1' });
    await s.flushed();
    await assert.rejects(rec.flush(), /disk is full/);
    assert.equal(s.failed, true);
    await assert.rejects(s.flushed(), /disk is full/);
    const later = rec.openSession({ connection: 'db', protocol: 'postgres', identity: 'claude' });
    assert.equal(later.failed, true);
    later.startCommand({ kind: 'sql', text: 'select 2' });
    await assert.rejects(later.flushed());
    assert.deepEqual(failures, ['database or disk is full']);
    const st = rec.storeStatus();
    assert.equal(st.ok, false);
    assert.equal(st.error, 'database or disk is full');
    assert.ok(st.since);
    // space is back: the acknowledged command loads at close, and nothing refused was written
    db.exec('DROP TRIGGER flightlog_test_full');
    await rec.close();
    assert.deepEqual(
      (db.prepare('SELECT text FROM commands ORDER BY id').all() as Array<{ text: string }>).map((r) => r.text),
      ['select 1'],
    );
    assert.equal(cmd.id > 0, true);
    assert.equal(fs.statSync(journalPath(db)).size, 0);
  } finally {
    cleanup();
  }
});

test('the journal: a torn tail ends the read, and a full disk fails the append whole', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-journal-'));
  try {
    const file = path.join(dir, 'j');
    const w = new JournalWriter(file);
    w.append(1, encodeOps([1, ['a', 1]]));
    w.append(2, encodeOps([1, ['b', 2]]));
    w.close();
    assert.deepEqual(readJournal(file).map((r) => [r.seq, decodeOps(r.payload)]), [
      [1, [1, ['a', 1]]],
      [2, [1, ['b', 2]]],
    ]);
    // a crash mid-write: the last record is cut short, and only whole records are read
    fs.truncateSync(file, fs.statSync(file).size - 3);
    assert.deepEqual(readJournal(file).map((r) => r.seq), [1]);
    // a flipped byte fails the record's CRC
    const buf = fs.readFileSync(file);
    buf[buf.length - 1] ^= 0xff;
    fs.writeFileSync(file, buf);
    assert.deepEqual(readJournal(file).map((r) => r.seq), [1]);
    // /dev/full answers every write with ENOSPC, as a full disk does
    const full = new JournalWriter('/dev/full');
    assert.throws(() => full.append(1, encodeOps([1, ['x'.repeat(10_000)]])), (e: NodeJS.ErrnoException) => e.code === 'ENOSPC');
    full.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a journal with a gap: the batches before it load, the rest is kept aside, and numbering goes on', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-gap-'));
  try {
    const db = openDb(dir);
    const key = ensureGatewayKey(dir);
    const masker = createMasker({ fingerprintKey: ensureFingerprintKey(dir) });
    const session = ['ses_gap', null, 'db', 'postgres', null, null, '{}', new Date().toISOString(), 1];
    // seq 1 opens a session; seq 3 follows a missing seq 2 and must not load
    const w = new JournalWriter(journalPath(db));
    w.append(1, encodeOps([0, session]));
    w.append(3, encodeOps([0, ['ses_late', ...session.slice(1)]]));
    w.close();
    const rec = new Recorder(db, { masker, signingKey: key.privateKey, keyFingerprint: key.fingerprint });
    assert.deepEqual((db.prepare('SELECT id FROM sessions ORDER BY id').all() as Array<{ id: string }>).map((r) => r.id), ['ses_gap']);
    const aside = fs.readdirSync(dir).filter((f) => f.startsWith('flightlog.db-pending.unloaded-'));
    assert.equal(aside.length, 1);
    assert.deepEqual(readJournal(path.join(dir, aside[0])).map((r) => r.seq), [1, 3]);
    const s = rec.openSession({ connection: 'db', protocol: 'postgres', identity: 'claude' });
    await rec.flush();
    assert.equal((db.prepare('SELECT seq FROM journal_state').get() as { seq: number }).seq, 2);
    assert.equal(getSession(db, s.id).status, 'live');
    await rec.close();
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
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
