import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeCrashedSessions } from '../../gateway/store/recovery';
import { checkSession } from '../../gateway/store/integrity';
import { getSession, iterateRawEvents } from '../../gateway/store/queries';
import { chainHash, genesisHash } from '../../gateway/store/chain';
import { cleanupStores, newStore } from '../helpers/bundle-fixtures';

after(() => cleanupStores());

test('recovery seals a crashed session over every committed row, even rows whose chain event was still in memory', async () => {
  const store = newStore();
  const key = { publicKeyPem: store.key.publicKeyPem, fingerprint: store.key.fingerprint };
  const s = store.rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
  const done = s.startCommand({ kind: 'sql', text: 'SELECT 1' });
  done.finish({ status: 'ok', result: { rowCount: 1 } });
  s.startCommand({ kind: 'sql', text: 'SELECT pg_sleep(60)' });
  // committed, but its digest would only ride on the next command.done or the close event
  s.finding({ category: 'guardrail', kind: 'slow-query', direction: 'gateway' });
  await store.rec.flush();
  // the process dies here: nothing more is written for the session
  assert.equal(checkSession(store.db, s.id, key).state, 'live');

  const r = closeCrashedSessions(store.db, store.key);
  assert.deepEqual(r, { closed: [s.id], unsealed: [] });
  const d = getSession(store.db, s.id);
  assert.equal(d.status, 'error');
  assert.equal(d.endReason, 'crashed');
  assert.deepEqual(
    d.commands.map((c) => c.status),
    ['ok', 'cancelled'],
  );
  const last = [...iterateRawEvents(store.db, s.id)].at(-1)!;
  assert.equal(last.kind, 'close');
  assert.deepEqual(Object.keys(JSON.parse(last.data) as object).sort(), ['commands', 'findings', 'reason', 'recovered', 'status']);
  const check = checkSession(store.db, s.id, key);
  assert.equal(check.state, 'verified', check.message);
  assert.equal(check.findings, 1);
  assert.deepEqual(closeCrashedSessions(store.db, store.key), { closed: [], unsealed: [] }, 'nothing left to recover');
});

test('a crashed session whose committed chain does not verify is closed but never sealed', async () => {
  const store = newStore();
  const key = { publicKeyPem: store.key.publicKeyPem, fingerprint: store.key.fingerprint };
  const s = store.rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
  s.event('query', 'client→upstream', { sql: 'SELECT 1' });
  await store.rec.flush();
  store.db.prepare("UPDATE events SET data = '{\"sql\":\"SELECT 2\"}' WHERE session_id = ? AND seq = 2").run(s.id);
  assert.deepEqual(closeCrashedSessions(store.db, store.key), { closed: [], unsealed: [s.id] });
  const d = getSession(store.db, s.id);
  assert.equal(d.status, 'error');
  assert.equal(d.seal, null);
  assert.match(d.endReason ?? '', /crashed \(its chain does not verify, not sealed\)/);
  assert.match(checkSession(store.db, s.id, key).message, /NOT verified: event 2 \(events\): its content does not match its hash/);
});

test('a session recorded before rows were chained is recovered as legacy: closed and sealed over its events', () => {
  const store = newStore();
  const key = { publicKeyPem: store.key.publicKeyPem, fingerprint: store.key.fingerprint };
  const id = 'ses_legacycrash01';
  store.db.prepare("INSERT INTO sessions (id, identity, connection, protocol, started_at, started_us, status, event_count) VALUES (?, 'claude', 'app-db', 'postgres', ?, ?, 'live', 1)").run(id, new Date().toISOString(), Date.now() * 1000);
  const e = { seq: 1, t_us: 0, wall: new Date().toISOString(), kind: 'open', direction: 'gateway', command_id: null, data: JSON.stringify({ connection: 'app-db' }) };
  const h = chainHash(genesisHash(id), e);
  store.db.prepare('INSERT INTO events (session_id, seq, t_us, wall, kind, direction, command_id, data, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(id, 1, 0, e.wall, 'open', 'gateway', null, e.data, h);
  store.db.prepare('UPDATE sessions SET last_hash = ? WHERE id = ?').run(h, id);
  assert.deepEqual(closeCrashedSessions(store.db, store.key), { closed: [id], unsealed: [] });
  assert.equal(checkSession(store.db, id, key).state, 'legacy');
});
