import { captureCli, type CliResult } from '../helpers/cli';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { chainHash, genesisHash, sealMessage, signSeal } from '../../gateway/store/chain';
import { checkSession, checkStore, IntegrityCache, type StoreIntegrity } from '../../gateway/store/integrity';
import { exportBundle } from '../../gateway/bundle/export';
import { cleanupStores, newStore, recordSamples, tmpDir, type Samples, type Store } from '../helpers/bundle-fixtures';
import * as fs from 'node:fs';
import * as path from 'node:path';

let store: Store;
let samples: Samples;
let work: string;

before(async () => {
  store = newStore();
  samples = await recordSamples(store);
  work = tmpDir();
});

after(() => {
  fs.rmSync(work, { recursive: true, force: true });
  cleanupStores();
});

const cli = (argv: string[]): Promise<CliResult> => captureCli([...argv, '--data-dir', store.dir]);

type Row = Record<string, unknown>;

/** Runs `fn` with a row changed in the store, puts it back afterwards. */
async function withTamper(sql: { get: string; change: string; args: unknown[]; undo?: string }, table: string, fn: () => Promise<void>): Promise<void> {
  const rows = store.db.prepare(sql.get).all(...sql.args) as Row[];
  store.db.prepare(sql.change).run(...sql.args);
  try {
    await fn();
  } finally {
    if (sql.undo) store.db.prepare(sql.undo).run();
    for (const r of rows) {
      const cols = Object.keys(r);
      store.db.prepare(`INSERT OR REPLACE INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...cols.map((c) => r[c]));
    }
    // a replaced command row leaves its old search entry behind (as a tamperer's would): rebuild it
    if (table === 'commands') store.db.prepare("INSERT INTO commands_fts(commands_fts) VALUES ('rebuild')").run();
  }
}

const key = () => ({ publicKeyPem: store.key.publicKeyPem, fingerprint: store.key.fingerprint });

test('an untouched store verifies: every session sealed or live, with its commands and findings matching the chain', async () => {
  const r = await cli(['verify']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^verified: 4 sessions \(3 sealed, 1 live\), signed by SHA256:/m);
  assert.match(r.stdout, new RegExp(`^${samples.pg}  verified: sealed, \\d+ events, 2 commands, \\d+ findings match the chain$`, 'm'));
  const json = JSON.parse((await cli(['verify', '--store', '--json'])).stdout) as StoreIntegrity;
  assert.equal(json.ok, true);
  assert.deepEqual(
    json.sessions.map((s) => [s.session, s.state]),
    [
      [samples.pg, 'verified'],
      [samples.ssh, 'verified'],
      [samples.http, 'verified'],
      [samples.live, 'live'],
    ],
  );
  assert.ok(json.sessions[0].findings >= 2, 'the pg session has its secret and guardrail findings');
});

test('edited, deleted, added and re-linked rows fail verify, which names the first bad row', async () => {
  const pgCommands = store.db.prepare('SELECT id FROM commands WHERE session_id = ? ORDER BY id').all(samples.pg) as { id: number }[];
  const httpCommands = store.db.prepare('SELECT id FROM commands WHERE session_id = ? ORDER BY id').all(samples.http) as { id: number }[];
  const finding = store.db.prepare('SELECT id FROM findings WHERE session_id = ? ORDER BY id LIMIT 1').get(samples.pg) as { id: number };
  const liveCommand = store.db.prepare('SELECT id FROM commands WHERE session_id = ?').get(samples.live) as { id: number };
  const c1 = pgCommands[0].id;
  const cases: Array<{ what: string; table: string; get: string; change: string; args: unknown[]; undo?: string; expect: RegExp }> = [
    {
      what: 'command text edited',
      table: 'commands',
      get: 'SELECT * FROM commands WHERE id = ?',
      change: "UPDATE commands SET text = 'SELECT 1' WHERE id = ?",
      args: [c1],
      expect: new RegExp(`session ${samples.pg}: command ${c1} \\(commands\\): differs from the digest chained at event \\d+`),
    },
    {
      what: 'command result edited',
      table: 'commands',
      get: 'SELECT * FROM commands WHERE id = ?',
      change: `UPDATE commands SET result = '{"rowCount":0}' WHERE id = ?`,
      args: [c1],
      expect: new RegExp(`command ${c1} \\(commands\\): differs from the digest`),
    },
    {
      what: 'a whole HTTP exchange deleted',
      table: 'commands',
      get: 'SELECT * FROM commands WHERE id = ?',
      change: 'DELETE FROM commands WHERE id = ?',
      args: [httpCommands[2].id],
      expect: new RegExp(`session ${samples.http}: command ${httpCommands[2].id} \\(commands\\): is missing: the chain recorded it at event \\d+ \\(deleted\\)`),
    },
    {
      what: 'a finding deleted',
      table: 'findings',
      get: 'SELECT * FROM findings WHERE id = ?',
      change: 'DELETE FROM findings WHERE id = ?',
      args: [finding.id],
      expect: new RegExp(`session ${samples.pg}: finding ${finding.id} \\(findings\\): is missing`),
    },
    {
      what: 'a finding edited',
      table: 'findings',
      get: 'SELECT * FROM findings WHERE id = ?',
      change: "UPDATE findings SET direction = 'client→upstream', kind = 'nothing' WHERE id = ?",
      args: [finding.id],
      expect: new RegExp(`finding ${finding.id} \\(findings\\): differs from the digest`),
    },
    {
      what: 'a finding added',
      table: 'findings',
      get: 'SELECT * FROM findings WHERE id = 99999 AND ? IS NOT NULL',
      undo: 'DELETE FROM findings WHERE id = 99999',
      change: "INSERT INTO findings (id, session_id, category, kind, direction, created_at) VALUES (99999, ?, 'secret', 'aws-key', 'upstream→client', '2026-01-01')",
      args: [samples.ssh],
      expect: new RegExp(`session ${samples.ssh}: finding 99999 \\(findings\\): is not in the hash chain`),
    },
    {
      what: 'a lineage link changed',
      table: 'commands',
      get: 'SELECT * FROM commands WHERE id = ?',
      change: 'UPDATE commands SET caused_by = NULL WHERE id = ?',
      args: [liveCommand.id],
      expect: new RegExp(`session ${samples.live}: command ${liveCommand.id} \\(commands\\): its lineage link \\(caused_by\\) is none, the chain says \\d+`),
    },
    {
      what: 'a command hidden from blame',
      table: 'command_targets',
      get: 'SELECT * FROM command_targets WHERE command_id = ?',
      change: 'DELETE FROM command_targets WHERE command_id = ?',
      args: [c1],
      expect: new RegExp(`session ${samples.pg}: command ${c1} \\(commands\\): its blame index \\(command_targets\\) lists \\[\\], its chained targets are \\["public.users"\\]`),
    },
    {
      what: 'a command hidden from search',
      table: 'commands_fts',
      get: 'SELECT rowid, text FROM commands WHERE id = ? AND 0',
      change: "INSERT INTO commands_fts(commands_fts, rowid, text) SELECT 'delete', id, text FROM commands WHERE id = ?",
      args: [c1],
      undo: `INSERT INTO commands_fts(rowid, text) SELECT id, text FROM commands WHERE id = ${c1}`,
      expect: /^not verified: the store: the search index \(commands_fts\) does not match the command texts/m,
    },
    {
      what: 'the session status rewritten',
      table: 'sessions',
      get: 'SELECT * FROM sessions WHERE id = ?',
      change: "UPDATE sessions SET end_reason = 'all good' WHERE id = ?",
      args: [samples.ssh],
      expect: new RegExp(`session ${samples.ssh}: the session row \\(sessions\\): its end reason is "all good", the chain says "exit"`),
    },
  ];
  for (const c of cases) {
    await withTamper(c, c.table, async () => {
      const r = await cli(['verify']);
      assert.equal(r.code, 1, `${c.what}: verify exits 1\n${r.stdout}`);
      assert.match(r.stdout.trim().split('\n').at(-1)!, /^not verified: /, c.what);
      assert.match(r.stdout, c.expect, c.what);
      const json = JSON.parse((await cli(['verify', '--json'])).stdout) as StoreIntegrity;
      assert.equal(json.ok, false);
      assert.ok(json.problem, c.what);
    });
  }
  assert.equal((await cli(['verify'])).code, 0, 'every tamper was put back');
});

test('export refuses a store whose rows were altered', async () => {
  const c = store.db.prepare('SELECT id FROM commands WHERE session_id = ? ORDER BY id LIMIT 1').get(samples.http) as { id: number };
  await withTamper({ get: 'SELECT * FROM commands WHERE id = ?', change: "UPDATE commands SET text = 'GET /harmless' WHERE id = ?", args: [c.id] }, 'commands', async () => {
    await assert.rejects(
      exportBundle(store.db, { sessionIds: [samples.http], out: path.join(work, 'x.flightlog'), key: store.key }),
      new RegExp(`session ${samples.http}: command ${c.id} differs from the digest chained at event \\d+ .*refusing to export it`),
    );
  });
  assert.equal(fs.existsSync(path.join(work, 'x.flightlog')), false);
});

test('a session recorded before rows were chained verifies as legacy: its events and seal only', async () => {
  const id = 'ses_legacy0001';
  const started = Date.now() * 1000;
  store.db.prepare("INSERT INTO sessions (id, identity, connection, protocol, started_at, started_us, status) VALUES (?, 'claude', 'app-db', 'postgres', ?, ?, 'closed')").run(id, new Date().toISOString(), started);
  let prev = genesisHash(id);
  const datas = [JSON.stringify({ connection: 'app-db', protocol: 'postgres', identity: 'claude', runId: null, clientAddr: null, meta: {} }), JSON.stringify({ sql: 'SELECT 1' }), JSON.stringify({ status: 'closed', reason: null })];
  const kinds = ['open', 'query', 'close'];
  datas.forEach((data, i) => {
    const e = { seq: i + 1, t_us: i, wall: new Date().toISOString(), kind: kinds[i], direction: i === 1 ? 'client→upstream' : 'gateway', command_id: null, data };
    prev = chainHash(prev, e);
    store.db.prepare('INSERT INTO events (session_id, seq, t_us, wall, kind, direction, command_id, data, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(id, e.seq, e.t_us, e.wall, e.kind, e.direction, null, data, prev);
  });
  store.db.prepare("INSERT INTO commands (id, session_id, idx, kind, text, status, started_at, started_us) VALUES (88888, ?, 1, 'sql', 'SELECT 1', 'ok', '2026-01-01', 0)").run(id);
  store.db.prepare('UPDATE sessions SET event_count = 3, last_hash = ?, seal = ?, seal_key = ? WHERE id = ?').run(prev, signSeal(store.key.privateKey, sealMessage(id, 3, prev)), store.key.fingerprint, id);
  try {
    const s = checkSession(store.db, id, key());
    assert.equal(s.state, 'legacy');
    assert.match(s.message, /recorded before commands and findings were chained/);
    const r = await cli(['verify']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /1 legacy \(events and seals only\)/);
    // its events are still covered
    store.db.prepare("UPDATE events SET data = '{\"sql\":\"DROP TABLE x\"}' WHERE session_id = ? AND seq = 2").run(id);
    assert.match(checkSession(store.db, id, key()).message, /NOT verified: event 2 \(events\): its content does not match its hash/);
  } finally {
    for (const t of ['events', 'commands']) store.db.prepare(`DELETE FROM ${t} WHERE session_id = ?`).run(id);
    store.db.prepare('DELETE FROM sessions WHERE id = ?').run(id);
    store.db.prepare("INSERT INTO commands_fts(commands_fts) VALUES ('rebuild')").run();
  }
});

test('the badge check runs off the main thread, is cached until the store changes, and sees a change made by another connection', async () => {
  const cache = new IntegrityCache(store.db, key());
  assert.equal((await cache.check(samples.pg)).state, 'verified');
  const first = cache.check(samples.pg);
  assert.equal(await first, await cache.check(samples.pg), 'the same result object: nothing was recomputed');
  const other = new (store.db.constructor as new (f: string) => typeof store.db)(path.join(store.dir, 'flightlog.db'));
  const c = store.db.prepare('SELECT id, text FROM commands WHERE session_id = ? ORDER BY id LIMIT 1').get(samples.pg) as { id: number; text: string };
  other.prepare("UPDATE commands SET text = 'SELECT 2' WHERE id = ?").run(c.id);
  try {
    const r = await cache.check(samples.pg);
    assert.equal(r.state, 'bad');
    assert.match(r.message, new RegExp(`NOT verified: command ${c.id} \\(commands\\): differs from the digest`));
    await assert.rejects(cache.check('ses_nosuchsession'), /no session "ses_nosuchsession"/);
  } finally {
    other.prepare('UPDATE commands SET text = ? WHERE id = ?').run(c.text, c.id);
    other.close();
    cache.close(true);
  }
  const after = checkStore(store.db, key());
  assert.equal(after.ok, true, after.message);
});

test('a command that finishes after its session closed leaves the sealed row as chained', async () => {
  const s = store.rec.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude' });
  const c = s.startCommand({ kind: 'sql', text: 'SELECT pg_sleep(10)' });
  s.close('closed', 'client went away');
  c.finish({ status: 'ok', result: { rowCount: 1 } });
  s.finding({ category: 'guardrail', kind: 'late', direction: 'gateway' });
  await store.rec.flush();
  const r = checkSession(store.db, s.id, key());
  assert.equal(r.state, 'verified', r.message);
  const row = store.db.prepare('SELECT status FROM commands WHERE id = ?').get(c.id) as { status: string };
  assert.equal(row.status, 'cancelled');
});

test('flightlog show says sealed only when the session checks out', async () => {
  assert.match((await cli(['show', samples.ssh])).stdout, /^status {5}closed, sealed and verified$/m);
  const c = store.db.prepare('SELECT id FROM commands WHERE session_id = ?').get(samples.ssh) as { id: number };
  await withTamper({ get: 'SELECT * FROM commands WHERE id = ?', change: "UPDATE commands SET text = 'ls' WHERE id = ?", args: [c.id] }, 'commands', async () => {
    const r = await cli(['show', samples.ssh]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^status {5}closed, NOT verified: command ${c.id} \\(commands\\): differs from the digest`, 'm'));
    const json = JSON.parse((await cli(['show', samples.ssh, '--json'])).stdout) as { sealed: boolean; integrity: { state: string } };
    assert.equal(json.sealed, false);
    assert.equal(json.integrity.state, 'bad');
  });
});

test('property: any change to any column of any command or finding row is caught', () => {
  const tables = {
    commands: ['session_id', 'idx', 'kind', 'text', 'classification', 'targets', 'status', 'started_at', 'started_us', 'ended_us', 'start_seq', 'end_seq', 'detail', 'result', 'error', 'caused_by'],
    findings: ['session_id', 'command_id', 'event_seq', 'category', 'kind', 'fp', 'direction', 'masked_live', 'detail', 'created_at'],
  } as const;
  const sealed = [samples.pg, samples.ssh, samples.http];
  const rows = {
    commands: store.db.prepare(`SELECT id, session_id FROM commands WHERE session_id IN (?, ?, ?)`).all(...sealed) as { id: number; session_id: string }[],
    findings: store.db.prepare(`SELECT id, session_id FROM findings WHERE session_id IN (?, ?, ?)`).all(...sealed) as { id: number; session_id: string }[],
  };
  const value = fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ min: -5, max: 1e6 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(null), fc.constantFrom('null', '[]', '{}', 'ok', samples.live, '0', '1'));
  fc.assert(
    fc.property(fc.constantFrom('commands' as const, 'findings' as const), fc.nat(), fc.nat(), value, (table, i, j, v) => {
      const row = rows[table][i % rows[table].length];
      const col = tables[table][j % tables[table].length];
      const get = () => (store.db.prepare(`SELECT ${col} AS v FROM ${table} WHERE id = ?`).get(row.id) as { v: unknown }).v;
      const before = get();
      try {
        store.db.prepare(`UPDATE ${table} SET ${col} = ? WHERE id = ?`).run(v, row.id);
      } catch {
        fc.pre(false); // a NOT NULL column: the schema refuses the change itself
      }
      try {
        const stored = get();
        // SQLite's column affinity can store the same value, and SQL NULL reads as JSON null: no change to catch
        fc.pre(stored !== before && !((col === 'detail' || col === 'result') && ((stored === null && before === 'null') || (stored === 'null' && before === null))));
        const r = checkSession(store.db, row.session_id, key());
        return r.state === 'bad';
      } finally {
        store.db.prepare(`UPDATE ${table} SET ${col} = ? WHERE id = ?`).run(before, row.id);
      }
    }),
    { numRuns: 300 },
  );
  assert.equal(checkStore(store.db, key()).ok, true);
});
