/**
 * A live session's commands get their search and blame rows in batches (one FTS5 segment per pass rather
 * than per commit): `flightlog search` finds a command within a second without anyone flushing,
 * `flightlog verify` does not call the short wait a fault, and a crash before the pass loses no
 * search row: recovery builds the missing ones.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeCrashedSessions } from '../../gateway/store/recovery';
import { checkStore } from '../../gateway/store/integrity';
import { search } from '../../gateway/store/queries';
import { collectGarbage } from '../../gateway/store/retention';
import { openMemoryDb } from '../../gateway/bundle/open';
import { cleanupStores, newStore } from '../helpers/bundle-fixtures';

after(() => cleanupStores());

test('a running command is searchable and blamed within a second, without a flush', async () => {
  const store = newStore();
  const s = store.rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
  const c = s.startCommand({ kind: 'sql', text: 'SELECT zebrafinch FROM birds', targets: ['Birds'] });
  await s.flushed();
  assert.equal(checkStore(store.db, store.key).ok, true, 'a blame row on its way is no fault');
  const t0 = Date.now();
  const blamed = store.db.prepare('SELECT target FROM command_targets WHERE command_id = ?');
  while (search(store.db, 'zebrafinch').length === 0 || blamed.get(c.id) === undefined) {
    assert.ok(Date.now() - t0 < 1000, 'searchable within a second');
    await new Promise((r) => setTimeout(r, 20));
  }
  s.close();
  await store.rec.flush();
  assert.equal(checkStore(store.db, store.key).ok, true);
});

test('verify accepts a live command not yet indexed; recovery indexes it; retention removes it cleanly', async () => {
  const store = newStore();
  const now = new Date().toISOString();
  // what the recorder had committed when the process died: a live session, a command, no search row yet
  store.db.prepare("INSERT INTO sessions (id, connection, protocol, started_at, started_us, status) VALUES ('ses_crash1', 'app-db', 'postgres', ?, 1, 'live')").run(now);
  store.db
    .prepare("INSERT INTO commands (id, session_id, idx, kind, text, targets, status, started_at, started_us) VALUES (900, 'ses_crash1', 1, 'sql', 'SELECT kingfisher FROM Birds', '[\"Birds\"]', 'running', ?, 2)")
    .run(now);
  assert.equal(search(store.db, 'kingfisher').length, 0);
  const live = checkStore(store.db, store.key);
  assert.equal(live.problem, null, live.message);

  closeCrashedSessions(store.db, store.key);
  assert.deepEqual(store.db.prepare('SELECT command_id, target FROM command_targets').all(), [{ command_id: 900, target: 'birds' }]);
  assert.deepEqual(
    search(store.db, 'kingfisher').map((h) => h.commandId),
    [900],
  );
  const after = checkStore(store.db, store.key);
  assert.equal(after.problem?.table === 'commands' ? after.problem : null, null, after.message);

  collectGarbage(store.db, { retentionOf: () => ({ spec: '1m', ms: 60_000 }), key: store.key, now: new Date(Date.now() + 3_600_000) });
  assert.equal(search(store.db, 'kingfisher').length, 0);
  store.db.prepare("INSERT INTO commands_fts(commands_fts, rank) VALUES ('integrity-check', 1)").run();
});

test('a closed session whose command is missing from the search index is a fault verify names', async () => {
  const store = newStore();
  const s = store.rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
  s.startCommand({ kind: 'sql', text: 'SELECT heron FROM birds' }).finish({ status: 'ok' });
  s.close();
  await store.rec.flush();
  assert.equal(checkStore(store.db, store.key).ok, true);
  store.db.prepare("INSERT INTO commands_fts(commands_fts, rowid, text) SELECT 'delete', id, text FROM commands WHERE text LIKE '%heron%'").run();
  const bad = checkStore(store.db, store.key);
  assert.equal(bad.ok, false);
  assert.match(bad.message, /search index/);
});

test("a session's closing commit carries its commands' search and blame rows", async () => {
  const store = newStore();
  const s = store.rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
  const c = s.startCommand({ kind: 'sql', text: 'SELECT puffin FROM Birds', targets: ['Birds'] });
  c.finish({ status: 'ok' });
  s.close();
  // loaded into the store as written, with no search pass in between
  await store.rec.settle();
  assert.equal(search(store.db, 'puffin').length, 1);
  assert.deepEqual(store.db.prepare('SELECT target FROM command_targets WHERE command_id = ?').all(c.id), [{ target: 'birds' }]);
  assert.equal(checkStore(store.db, store.key).ok, true);
});

test('a bundle of a session exported while live is searchable once opened', () => {
  const db = openMemoryDb();
  try {
    const now = new Date().toISOString();
    db.prepare("INSERT INTO sessions (id, connection, protocol, meta, started_at, started_us, status) VALUES ('ses_b1', 'app-db', 'postgres', ?, ?, 1, 'live')").run(JSON.stringify({ bundle: { file: 'x.flightlog' } }), now);
    db.prepare("INSERT INTO commands (id, session_id, idx, kind, text, status, started_at, started_us) VALUES (1, 'ses_b1', 1, 'sql', 'SELECT avocet FROM birds', 'running', ?, 2)").run(now);
    assert.equal(search(db, 'avocet').length, 1);
  } finally {
    db.close();
  }
});
