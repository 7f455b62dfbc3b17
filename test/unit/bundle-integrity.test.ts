import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportBundle } from '../../gateway/bundle/export';
import { verifyBundle, type TrustedKey } from '../../gateway/bundle/verify';
import { openBundles } from '../../gateway/bundle/open';
import { getSession } from '../../gateway/store/queries';
import { cleanupStores, newStore, readMembers, recordLegacySession, recordSamples, resign, tmpDir, writeMembers, type Member, type Samples, type Store } from '../helpers/bundle-fixtures';

let store: Store;
let samples: Samples;
let work: string;
let good: string;
let trusted: TrustedKey[];

before(async () => {
  store = newStore();
  samples = await recordSamples(store);
  work = tmpDir();
  good = path.join(work, 'good.flightlog');
  await exportBundle(store.db, { sessionIds: [samples.pg, samples.http, samples.live], out: good, key: store.key });
  trusted = [{ name: 'this gateway', fingerprint: store.key.fingerprint, publicKeyPem: store.key.publicKeyPem }];
});

after(() => {
  fs.rmSync(work, { recursive: true, force: true });
  cleanupStores();
});

type Item = Record<string, unknown>;

/** Rewrites a line-per-element JSON array member the way export writes it. */
function editArray(members: Member[], name: string, edit: (items: Item[]) => Item[]): void {
  const m = members.find((x) => x.name === name)!;
  const items = edit(JSON.parse(m.data.toString()) as Item[]);
  m.data = Buffer.from(items.length ? `[\n${items.map((i) => JSON.stringify(i)).join(',\n')}\n]\n` : '[]\n');
}

/** A bundle altered by someone holding the gateway's key (a tampered exporter): every signature is valid. */
async function forged(label: string, name: string, edit: (items: Item[]) => Item[]): Promise<string> {
  const members = await readMembers(good);
  editArray(members, name, edit);
  const file = path.join(work, `${label}.flightlog`);
  await writeMembers(file, resign(members, store.key).members);
  return file;
}

test('the untouched bundle verifies, trusted as this gateway', async () => {
  const r = await verifyBundle(good, { trustedKeys: trusted });
  assert.equal(r.ok, true, r.message);
  assert.match(r.message, /^verified: 3 sessions, .*\(trusted: this gateway\)/);
});

test('forged command text, a deleted HTTP exchange and a deleted finding are NOT verified even when re-signed with the key', async () => {
  const httpCmds = getSession(store.db, samples.http).commands;
  const pgFinding = getSession(store.db, samples.pg).findings[0];
  const cases: Array<[string, string, (items: Item[]) => Item[], RegExp]> = [
    [
      'text',
      `sessions/${samples.http}/commands.json`,
      (items) => items.map((c) => (c.id === httpCmds[2].id ? { ...c, text: 'GET /harmless' } : c)),
      new RegExp(`^not verified: sessions/${samples.http}/commands.json: session ${samples.http}: line 4: command ${httpCmds[2].id} differs from the digest chained at event \\d+`),
    ],
    [
      'exchange',
      `sessions/${samples.http}/commands.json`,
      (items) => items.filter((c) => c.id !== httpCmds[2].id),
      new RegExp(`^not verified: sessions/${samples.http}/commands.json: session ${samples.http}: command ${httpCmds[2].id} is missing: the chain recorded it at event \\d+ \\(deleted\\)`),
    ],
    [
      'finding',
      `sessions/${samples.pg}/findings.json`,
      (items) => items.filter((f) => f.id !== pgFinding.id),
      new RegExp(`^not verified: sessions/${samples.pg}/findings.json: session ${samples.pg}: finding ${pgFinding.id} is missing`),
    ],
    [
      'lineage',
      `sessions/${samples.live}/commands.json`,
      (items) => items.map((c) => ({ ...c, causedBy: null })),
      /its lineage link \(caused_by\) is none, the chain says \d+/,
    ],
    [
      'malformed',
      `sessions/${samples.pg}/commands.json`,
      (items) => items.map((c) => ({ ...c, endUs: 'soon' })),
      /line 2: endUs is not what a stored row holds/,
    ],
  ];
  for (const [label, member, edit, expect] of cases) {
    const file = await forged(label, member, edit);
    const r = await verifyBundle(file, { trustedKeys: trusted });
    assert.equal(r.ok, false, `${label}: ${r.message}`);
    assert.match(r.message, expect, label);
  }
});

test('open marks a forged bundle NOT verified', async () => {
  const httpCmds = getSession(store.db, samples.http).commands;
  const file = await forged('open', `sessions/${samples.http}/commands.json`, (items) => items.map((c) => (c.id === httpCmds[0].id ? { ...c, text: 'POST /nothing-to-see' } : c)));
  const { db, reports } = await openBundles([file], { trustedKeys: trusted });
  try {
    assert.equal(reports[0].ok, false);
    const s = getSession(db, samples.http);
    const origin = (s.meta as { bundle: { verified: boolean; message: string } }).bundle;
    assert.equal(origin.verified, false);
    assert.match(origin.message, /command \d+ differs from the digest/);
  } finally {
    db.close();
  }
});

test('a session recorded before rows were chained exports and verifies on its events, and the verdict says so', async () => {
  const id = recordLegacySession(store);
  const file = path.join(work, 'legacy.flightlog');
  await exportBundle(store.db, { sessionIds: [id, samples.pg], out: file, key: store.key });
  const r = await verifyBundle(file, { trustedKeys: trusted });
  assert.equal(r.ok, true, r.message);
  assert.deepEqual(r.legacy, [id]);
  assert.match(r.message, /; 1 session was recorded before commands and findings were chained \(only their events are checked\)$/);
});
