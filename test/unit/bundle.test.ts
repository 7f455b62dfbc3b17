import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportBundle, sessionsOfRun } from '../../gateway/bundle/export';
import { verifyBundle, type VerifyReport } from '../../gateway/bundle/verify';
import { openBundles } from '../../gateway/bundle/open';
import { ustarHeader } from '../../gateway/bundle/tar';
import { getSession, listEvents, listSessions, search, listRuns, commandsTouching } from '../../gateway/store/queries';
import { chainHash, genesisHash, verifyChain, type ChainedEvent } from '../../gateway/store/chain';
import type { SessionDetail } from '../../gateway/common/api-types';
import {
  PLANTED_SECRET,
  flipByte,
  memberRange,
  cleanupStores,
  newStore,
  readMembers,
  recordSamples,
  resign,
  tmpDir,
  writeMembers,
  type Member,
  type Samples,
  type Store,
} from '../helpers/bundle-fixtures';

let store: Store;
let samples: Samples;
let work: string;
let bundle: string;
const all = () => [samples.pg, samples.ssh, samples.http, samples.live];
const trusted = () => [{ name: 'ci-gateway', fingerprint: store.key.fingerprint, publicKeyPem: store.key.publicKeyPem }];

before(async () => {
  store = newStore();
  samples = await recordSamples(store);
  work = tmpDir();
  bundle = path.join(work, 'main.flightlog');
  await exportBundle(store.db, { sessionIds: all(), out: bundle, key: store.key });
});

after(() => {
  store.db.close();
  fs.rmSync(work, { recursive: true, force: true });
  cleanupStores();
});

/** A copy of the bundle to damage. */
function copy(name: string): string {
  const f = path.join(work, name);
  fs.copyFileSync(bundle, f);
  return f;
}

async function rebuilt(name: string, edit: (members: Member[]) => Member[]): Promise<string> {
  const f = path.join(work, name);
  await writeMembers(f, edit(await readMembers(bundle)));
  return f;
}

function withoutOrigin(d: SessionDetail): SessionDetail {
  const meta = { ...(d.meta as Record<string, unknown>) };
  delete meta.bundle;
  return { ...d, meta: meta as SessionDetail['meta'] };
}

function eventsOf(member: Member): Array<Record<string, unknown>> {
  return member.data
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function ndjson(rows: unknown[]): Buffer {
  return Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

describe('bundle format', () => {
  test('a bundle is a tar that standard tools list, extract and checksum', () => {
    const list = execFileSync('tar', ['tf', bundle]).toString().trim().split('\n');
    assert.deepEqual(list.slice(0, 4), ['manifest.json', 'manifest.sig', 'SHA256SUMS', 'identities.json']);
    for (const id of all()) for (const f of ['session.json', 'commands.json', 'findings.json', 'events.ndjson']) assert.ok(list.includes(`sessions/${id}/${f}`), `${id}/${f}`);
    const out = tmpDir('flightlog-bundle-x-');
    execFileSync('tar', ['xf', bundle, '-C', out]);
    const check = execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out }).toString();
    assert.ok(check.split('\n').filter(Boolean).every((l) => l.endsWith(': OK')), check);
    // commands.json is a JSON array any tool parses
    const cmds = JSON.parse(fs.readFileSync(path.join(out, 'sessions', samples.pg, 'commands.json'), 'utf8')) as unknown[];
    assert.equal(cmds.length, 2);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.key.fingerprint, store.key.fingerprint);
    assert.equal(manifest.sessions.length, 4);
    const identities = fs.readFileSync(path.join(out, 'identities.json'), 'utf8');
    assert.ok(!identities.includes('deadbeef-token-hash'), 'no token hashes');
    const connections = fs.readFileSync(path.join(out, 'connections.json'), 'utf8');
    assert.ok(!connections.includes('inline-header-secret-1234'), 'an inline credential header is redacted');
    assert.ok(connections.includes('"env": "API_KEY"') && connections.includes('"x-team": "blue"'), 'references and plain settings stay');
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('the planted secret appears nowhere in the bundle', () => {
    assert.equal(fs.readFileSync(bundle).includes(Buffer.from(PLANTED_SECRET)), false);
  });

  test('export refuses an existing file, an unknown session and a store whose chain was altered', async () => {
    await assert.rejects(exportBundle(store.db, { sessionIds: [samples.pg], out: bundle, key: store.key }), /already exists/);
    await assert.rejects(exportBundle(store.db, { sessionIds: ['ses_nope'], out: path.join(work, 'x.flightlog'), key: store.key }), /no session "ses_nope"/);
    const s = newStore();
    const one = await recordSamples(s);
    s.db.prepare("UPDATE events SET data = '\"tampered\"' WHERE session_id = ? AND seq = 3").run(one.ssh);
    const out = path.join(work, 'altered-store.flightlog');
    await assert.rejects(exportBundle(s.db, { sessionIds: [one.ssh], out, key: s.key }), /does not verify at event 3/);
    assert.equal(fs.existsSync(out), false, 'nothing left behind');
    assert.deepEqual(fs.readdirSync(work).filter((f) => f.includes('.partial')), []);
  });

  test('--run selects every session of a run; progress is reported up to the total', async () => {
    assert.deepEqual(new Set(sessionsOfRun(store.db, 'run_test1')), new Set([samples.pg, samples.ssh, samples.http]));
    assert.deepEqual(new Set(sessionsOfRun(store.db, 'run_te')), new Set([samples.pg, samples.ssh, samples.http]));
    assert.throws(() => sessionsOfRun(store.db, 'run_none'), /no sessions for run/);
    const seen: Array<[number, number]> = [];
    const out = path.join(work, 'run.flightlog');
    const r = await exportBundle(store.db, { sessionIds: sessionsOfRun(store.db, 'run_test1'), out, key: store.key, onProgress: (d, t) => seen.push([d, t]) });
    assert.equal(r.sessions, 3);
    assert.deepEqual(seen[seen.length - 1], [r.events, r.events]);
    assert.equal(r.bytes, fs.statSync(out).size);
  });
});

describe('verify', () => {
  test('an intact bundle verifies and names its signer (trusted or unknown)', async () => {
    const r = await verifyBundle(bundle, { trustedKeys: trusted() });
    assert.equal(r.ok, true, r.message);
    const events = all().reduce((n, id) => n + [...listEvents(store.db, id, { limit: 10000 }).events].length, 0);
    assert.equal(r.message.split(';')[0], `verified: 4 sessions, ${events} events, signed by ${store.key.fingerprint} (trusted: ci-gateway)`);
    assert.match(r.message, /1 session was still live at export/);
    assert.deepEqual(r.unsealed, [samples.live]);
    const u = await verifyBundle(bundle, { trustedKeys: [] });
    assert.equal(u.ok, true);
    assert.match(u.message, /\(unknown key\)/);
  });

  // Flip one byte inside each kind of member: each is detected and the member named.
  const flips: Array<{ member: (s: Samples) => string; at: (data: Buffer) => number; expect: (r: VerifyReport, s: Samples) => void }> = [
    { member: () => 'manifest.json', at: (d) => d.indexOf('"created": "') + 14, expect: (r) => assert.equal(r.problem?.member, 'manifest.json') },
    { member: () => 'manifest.sig', at: () => 3, expect: (r) => assert.equal(r.problem?.member, 'manifest.sig') },
    { member: () => 'public-key.pem', at: (d) => d.indexOf('\n') + 20, expect: (r) => assert.equal(r.problem?.member, 'public-key.pem') },
    { member: () => 'SHA256SUMS', at: () => 5, expect: (r) => assert.equal(r.problem?.member, 'SHA256SUMS') },
    { member: () => 'identities.json', at: (d) => d.indexOf('claude') + 1, expect: (r) => assert.equal(r.problem?.member, 'identities.json') },
    { member: () => 'connections.json', at: (d) => d.indexOf('web-1.internal'), expect: (r) => assert.equal(r.problem?.member, 'connections.json') },
    { member: () => 'runs.json', at: (d) => d.indexOf('--go') + 2, expect: (r) => assert.equal(r.problem?.member, 'runs.json') },
    { member: (s) => `sessions/${s.pg}/session.json`, at: (d) => d.indexOf('client quit'), expect: (r, s) => assert.equal(r.problem?.member, `sessions/${s.pg}/session.json`) },
    { member: (s) => `sessions/${s.pg}/commands.json`, at: (d) => d.indexOf('a@example.com'), expect: (r, s) => assert.equal(r.problem?.member, `sessions/${s.pg}/commands.json`) },
    { member: (s) => `sessions/${s.pg}/findings.json`, at: (d) => d.indexOf('no-ddl'), expect: (r, s) => assert.equal(r.problem?.member, `sessions/${s.pg}/findings.json`) },
    {
      member: (s) => `sessions/${s.ssh}/events.ndjson`,
      at: (d) => d.indexOf('total 0'),
      expect: (r, s) => {
        assert.equal(r.problem?.member, `sessions/${s.ssh}/events.ndjson`);
        assert.equal(r.problem?.session, s.ssh);
        assert.equal(r.problem?.seq, 6);
        assert.match(r.message, /^not verified: sessions\/.*events\.ndjson: session ses_\w+, event 6: the hash does not match/);
      },
    },
  ];
  for (const f of flips) {
    test(`one flipped byte in ${f.member({ pg: '<pg>', ssh: '<ssh>', http: '<http>', live: '<live>' })} is detected and named`, async () => {
      const name = f.member(samples);
      const file = copy(`flip-${name.replace(/\W/g, '_')}.flightlog`);
      const { offset } = await memberRange(file, name);
      const data = (await readMembers(file)).find((m) => m.name === name)!.data;
      const at = f.at(data);
      assert.ok(at >= 0 && at < data.length, `offset inside ${name}`);
      flipByte(file, offset + at);
      const r = await verifyBundle(file, { trustedKeys: trusted() });
      assert.equal(r.ok, false);
      assert.equal(r.readable, true, r.message);
      assert.match(r.message, /^not verified: /);
      assert.equal(r.message.includes('\n'), false);
      f.expect(r, samples);
    });
  }

  test('a dropped event is named: the first event after the gap', async () => {
    const f = await rebuilt('dropped.flightlog', (ms) => ms.map((m) => (m.name.endsWith(`${samples.ssh}/events.ndjson`) ? { ...m, data: ndjson(eventsOf(m).filter((e) => e.seq !== 4)) } : m)));
    const r = await verifyBundle(f, { trustedKeys: [] });
    assert.equal(r.problem?.code, 'E_BUNDLE_SEQ');
    assert.equal(r.problem?.seq, 5);
    assert.match(r.message, /expected seq 4, found 5/);
  });

  test('a dropped last event is caught by the manifest and the seal', async () => {
    const f = await rebuilt('dropped-last.flightlog', (ms) => ms.map((m) => (m.name.endsWith(`${samples.ssh}/events.ndjson`) ? { ...m, data: ndjson(eventsOf(m).slice(0, -1)) } : m)));
    const r = await verifyBundle(f, { trustedKeys: [] });
    assert.equal(r.ok, false);
    assert.equal(r.problem?.member, `sessions/${samples.ssh}/events.ndjson`);
    assert.ok(r.problems.some((p) => p.code === 'E_BUNDLE_CHAIN_END' && p.session === samples.ssh));
  });

  test('two reordered events are named', async () => {
    const f = await rebuilt('reordered.flightlog', (ms) =>
      ms.map((m) => {
        if (!m.name.endsWith(`${samples.ssh}/events.ndjson`)) return m;
        const ev = eventsOf(m);
        [ev[2], ev[3]] = [ev[3], ev[2]];
        return { ...m, data: ndjson(ev) };
      }),
    );
    const r = await verifyBundle(f, { trustedKeys: [] });
    assert.equal(r.problem?.session, samples.ssh);
    assert.equal(r.problem?.seq, 4);
  });

  test('a duplicated sequence number is named', async () => {
    const f = await rebuilt('dup.flightlog', (ms) =>
      ms.map((m) => {
        if (!m.name.endsWith(`${samples.pg}/events.ndjson`)) return m;
        const ev = eventsOf(m);
        ev.splice(3, 0, ev[2]);
        return { ...m, data: ndjson(ev) };
      }),
    );
    const r = await verifyBundle(f, { trustedKeys: [] });
    assert.equal(r.problem?.code, 'E_BUNDLE_SEQ');
    assert.match(r.message, /duplicated or reordered sequence number 3 \(expected 4\)/);
  });

  test('a session swapped in from another bundle is named at its first event', async () => {
    const other = newStore();
    const o = await recordSamples(other);
    const otherBundle = path.join(work, 'other.flightlog');
    await exportBundle(other.db, { sessionIds: [o.ssh], out: otherBundle, key: other.key });
    const foreign = (await readMembers(otherBundle)).find((m) => m.name.endsWith('/events.ndjson'))!;
    const f = await rebuilt('swapped.flightlog', (ms) => ms.map((m) => (m.name === `sessions/${samples.ssh}/events.ndjson` ? { name: m.name, data: foreign.data } : m)));
    const r = await verifyBundle(f, { trustedKeys: [] });
    assert.equal(r.problem?.member, `sessions/${samples.ssh}/events.ndjson`);
    assert.equal(r.problem?.seq, 1);
    assert.match(r.message, /moved from another session/);
    other.db.close();
  });

  test('re-signed with another key: the seals give it away, and the signer is not the trusted one', async () => {
    // The forger alters an event, recomputes the chain, and signs a fresh manifest with their own key.
    const f = await rebuilt('resigned.flightlog', (ms) => {
      const ev = ms.find((m) => m.name === `sessions/${samples.ssh}/events.ndjson`)!;
      const rows = eventsOf(ev);
      rows[5].data = JSON.stringify('nothing to see here\r\n');
      const rehashed = rechain(samples.ssh, rows);
      const out = ms.map((m) => (m === ev ? { ...m, data: ndjson(rehashed) } : m));
      return resign(out, undefined, (manifest) => {
        const s = (manifest.sessions as Array<Record<string, unknown>>).find((x) => x.id === samples.ssh)!;
        s.lastHash = rehashed[rehashed.length - 1].hash;
      }).members;
    });
    const r = await verifyBundle(f, { trustedKeys: trusted() });
    assert.equal(r.ok, false);
    assert.equal(r.problem?.code, 'E_BUNDLE_SEAL');
    // every sealed session fails: their seals were made by the real gateway's key
    assert.deepEqual(new Set(r.problems.filter((p) => p.code === 'E_BUNDLE_SEAL').map((p) => p.session)), new Set([samples.pg, samples.ssh, samples.http]));
    assert.match(r.message, /seal does not verify with the bundle's key SHA256:\S+ \(it was sealed by SHA256:/);
    assert.notEqual(r.signer.fingerprint, store.key.fingerprint);
    assert.equal(r.signer.trusted, false);
    assert.equal(verifyChain(samples.ssh, rechain(samples.ssh, eventsOf((await readMembers(f)).find((m) => m.name === `sessions/${samples.ssh}/events.ndjson`)!))).ok, true, 'the forged chain itself is consistent');
  });

  test('a valid signature over altered content: the member checksum does not match the signed manifest', async () => {
    const f = await rebuilt('altered-content.flightlog', (ms) =>
      ms.map((m) => (m.name === `sessions/${samples.pg}/commands.json` ? { ...m, data: Buffer.from(m.data.toString().replace('SELECT email', 'SELECT phone')) } : m)),
    );
    const r = await verifyBundle(f, { trustedKeys: [] });
    assert.equal(r.problem?.code, 'E_BUNDLE_CHECKSUM');
    assert.equal(r.problem?.member, `sessions/${samples.pg}/commands.json`);
    assert.match(r.message, /does not match manifest\.json \(altered after signing\)/);
  });

  test('invalid JSON, even correctly signed, is named with its member', async () => {
    const f = await rebuilt('bad-json.flightlog', (ms) => resign(ms.map((m) => (m.name === `sessions/${samples.pg}/session.json` ? { ...m, data: Buffer.from('{"id": "oops",') } : m)), store.key).members);
    const r = await verifyBundle(f, { trustedKeys: [] });
    assert.equal(r.ok, false);
    assert.ok(r.problems.some((p) => p.member === `sessions/${samples.pg}/session.json` && /invalid JSON/.test(p.message)), r.message);
    const g = await rebuilt('bad-manifest.flightlog', (ms) => ms.map((m) => (m.name === 'manifest.json' ? { ...m, data: Buffer.from('{ nope') } : m)));
    const r2 = await verifyBundle(g, { trustedKeys: [] });
    assert.equal(r2.readable, false);
    assert.match(r2.message, /^not verified: manifest\.json: invalid JSON/);
  });

  test('an added member is named: unlisted, or refused when its name is not part of the format', async () => {
    const f = await rebuilt('added.flightlog', (ms) => [...ms, { name: 'sessions/ses_extra/session.json', data: Buffer.from('{}') }]);
    const r = await verifyBundle(f, { trustedKeys: [] });
    assert.equal(r.readable, true);
    assert.equal(r.problem?.code, 'E_BUNDLE_UNLISTED');
    assert.equal(r.problem?.member, 'sessions/ses_extra/session.json');
    const g = await rebuilt('added-odd.flightlog', (ms) => [...ms, { name: 'runs.json.bak', data: Buffer.from('x') }]);
    const r2 = await verifyBundle(g, { trustedKeys: [] });
    assert.equal(r2.readable, false);
    assert.match(r2.message, /member "runs\.json\.bak" has a name this bundle format does not define/);
  });

  test('path traversal and absolute member names are refused, and nothing is written', async () => {
    for (const name of ['../evil.txt', '/tmp/flightlog-evil.txt', 'sessions/../../evil', 'sessions/x/..']) {
      const f = await rebuilt(`trav-${name.replace(/\W/g, '_')}.flightlog`, (ms) => [{ name, data: Buffer.from('pwned') }, ...ms]);
      const before = fs.readdirSync(work).length;
      const r = await verifyBundle(f, { trustedKeys: [] });
      assert.equal(r.ok, false);
      assert.equal(r.readable, false);
      assert.match(r.message, /absolute path|leaves the bundle/);
      assert.equal(fs.readdirSync(work).length, before);
      assert.equal(fs.existsSync('/tmp/flightlog-evil.txt'), false);
      assert.equal(fs.existsSync(path.join(work, '..', 'evil.txt')), false);
    }
  });

  test('a header claiming 100 GB, symlinks, too many members: one clear line each', async () => {
    const huge = path.join(work, 'huge.flightlog');
    fs.writeFileSync(huge, Buffer.concat([ustarHeader(`sessions/${samples.pg}/events.ndjson`, 100 * 1000 ** 3, Date.now()), Buffer.alloc(4096)]));
    let r = await verifyBundle(huge, { trustedKeys: [] });
    assert.equal(r.readable, false);
    assert.match(r.message, /^not verified: member "sessions\/ses_\w+\/events\.ndjson" claims 93\.1 GiB, over the 64\.0 GiB limit for one member$/);
    fs.writeFileSync(huge, Buffer.concat([ustarHeader(`sessions/${samples.pg}/events.ndjson`, 10 * 1000 ** 3, Date.now()), Buffer.alloc(4096)]));
    r = await verifyBundle(huge, { trustedKeys: [] });
    assert.match(r.message, /^not verified: the file is truncated: member "sessions\/ses_\w+\/events\.ndjson" claims 9\.3 GiB but only 4\.0 KiB remain$/);
    const big = path.join(work, 'big-json.flightlog');
    fs.writeFileSync(big, Buffer.concat([ustarHeader('manifest.json', 200 * 1024 ** 2, Date.now()), Buffer.alloc(200 * 1024 ** 2 + 1024)]));
    r = await verifyBundle(big, { trustedKeys: [] });
    assert.match(r.message, /manifest\.json" is \d+ bytes, over the \d+-byte limit for it/);
    fs.rmSync(big);
    const link = path.join(work, 'symlink.flightlog');
    const h = ustarHeader('manifest.json', 0, Date.now(), '2');
    fs.writeFileSync(link, Buffer.concat([h, Buffer.alloc(1024)]));
    r = await verifyBundle(link, { trustedKeys: [] });
    assert.match(r.message, /is a symbolic link; a bundle holds regular files only/);
    r = await verifyBundle(bundle, { trustedKeys: [], limits: { maxMembers: 5 } });
    assert.match(r.message, /more than 5 members/);
  });

  test('truncated files, garbage and empty files are refused without a crash', async () => {
    const size = fs.statSync(bundle).size;
    const { offset } = await memberRange(bundle, `sessions/${samples.ssh}/events.ndjson`);
    for (const cut of [offset + 10, offset - 512, Math.floor(size / 3), 100, 0]) {
      const f = path.join(work, `cut-${cut}.flightlog`);
      fs.writeFileSync(f, fs.readFileSync(bundle).subarray(0, cut));
      const r = await verifyBundle(f, { trustedKeys: [] });
      assert.equal(r.ok, false);
      assert.match(r.message, /truncated/, `cut at ${cut}: ${r.message}`);
    }
    const garbage = path.join(work, 'garbage.flightlog');
    fs.writeFileSync(garbage, Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251)));
    const g = await verifyBundle(garbage, { trustedKeys: [] });
    assert.equal(g.ok, false);
    assert.match(g.message, /^not verified: tar header 1 .*(corrupt|not a ustar)/);
    const missing = await verifyBundle(path.join(work, 'does-not-exist'), { trustedKeys: [] });
    assert.match(missing.message, /cannot open .*ENOENT/);
    const fifo = path.join(work, 'fifo.flightlog');
    execFileSync('mkfifo', [fifo]);
    assert.match((await verifyBundle(fifo, { trustedKeys: [] })).message, /is not a regular file/);
    assert.match((await verifyBundle(work, { trustedKeys: [] })).message, /is not a regular file/);
  });
});

/** Recomputes a chain the way the recorder does (for forgery tests). */
function rechain(sessionId: string, rows: Array<Record<string, unknown>>): Array<ChainedEvent & { hash: string }> {
  let prev = genesisHash(sessionId);
  return rows.map((r) => {
    const e = { seq: r.seq as number, t_us: r.t_us as number, wall: r.wall as string, kind: r.kind as string, direction: r.direction as string, command_id: r.command_id as number | null, data: r.data as string };
    prev = chainHash(prev, e);
    return { ...e, hash: prev };
  });
}

describe('open', () => {
  test('an opened bundle reads exactly like the live store', async () => {
    const { db, reports } = await openBundles([bundle], { trustedKeys: trusted() });
    assert.equal(reports[0].ok, true);
    assert.deepEqual(new Set(reports[0].imported), new Set(all()));
    for (const id of all()) {
      const live = getSession(store.db, id);
      const imported = getSession(db, id);
      const origin = (imported.meta as Record<string, unknown>).bundle as Record<string, unknown>;
      assert.deepEqual(origin, { file: 'main.flightlog', verified: true, signer: store.key.fingerprint, trusted: true, trustedAs: 'ci-gateway', message: reports[0].message });
      if (id === samples.live) {
        // a live session is exported as it stood: the bundle's chain, no seal
        assert.equal(imported.sealed, false);
        assert.deepEqual({ ...withoutOrigin(imported), lastHash: null }, { ...live, lastHash: null });
      } else {
        assert.deepEqual(withoutOrigin(imported), live);
      }
      assert.deepEqual(listEvents(db, id, { limit: 10000 }), listEvents(store.db, id, { limit: 10000 }));
    }
    assert.deepEqual(
      listSessions(db).sessions.map((s) => s.id),
      listSessions(store.db).sessions.map((s) => s.id),
    );
    assert.deepEqual(search(db, 'users'), search(store.db, 'users'));
    assert.deepEqual(commandsTouching(db, 'public.users').map((c) => c.id), commandsTouching(store.db, 'public.users').map((c) => c.id));
    assert.equal(listRuns(db)[0].id, 'run_test1');
    assert.throws(() => db.prepare('DELETE FROM sessions').run(), /readonly|query_only|attempt to write/i);
    db.close();
  });

  test('several bundles from different gateways open together, searchable together', async () => {
    const other = newStore();
    const o = await recordSamples(other);
    const otherBundle = path.join(work, 'other-gw.flightlog');
    await exportBundle(other.db, { sessionIds: [o.pg, o.http, o.live], out: otherBundle, key: other.key });
    const { db, reports } = await openBundles([bundle, otherBundle, bundle], { trustedKeys: trusted() });
    assert.equal(reports[1].ok, true);
    assert.equal(reports[1].signer.trusted, false);
    assert.equal(reports[2].imported.length, 0);
    assert.equal(reports[2].skipped.length, 4);
    assert.match(reports[2].skipped[0].reason, /already open from another bundle/);
    assert.equal(listSessions(db).total, 7);
    const hits = search(db, 'users');
    assert.deepEqual(new Set(hits.map((h) => h.sessionId)), new Set([...search(store.db, 'users'), ...search(other.db, 'users')].map((h) => h.sessionId).filter((id) => id !== o.ssh)));
    assert.ok(hits.some((h) => h.sessionId === samples.pg) && hits.some((h) => h.sessionId === o.pg));
    // command ids collided between the two gateways: the second bundle's moved, links kept inside it
    const a = getSession(db, o.pg);
    const b = getSession(other.db, o.pg);
    assert.deepEqual(a.commands.map((c) => c.text), b.commands.map((c) => c.text));
    assert.notDeepEqual(a.commands.map((c) => c.id), b.commands.map((c) => c.id));
    const liveCmd = getSession(db, o.live).commands[0];
    const llm = getSession(db, o.http).commands.find((c) => c.kind === 'llm')!;
    assert.equal(liveCmd.causedBy, llm.id);
    assert.deepEqual(llm.caused, [liveCmd.id]);
    const ev = listEvents(db, o.pg).events.filter((e) => e.commandId !== null);
    assert.ok(ev.every((e) => a.commands.some((c) => c.id === e.commandId)));
    db.close();
    other.db.close();
  });

  test('a bundle that fails verification opens marked as failed; an unreadable one is skipped', async () => {
    const bad = copy('open-bad.flightlog');
    const { offset } = await memberRange(bad, `sessions/${samples.ssh}/events.ndjson`);
    const data = (await readMembers(bad)).find((m) => m.name === `sessions/${samples.ssh}/events.ndjson`)!.data;
    flipByte(bad, offset + data.indexOf('total 0'));
    const cut = path.join(work, 'open-cut.flightlog');
    fs.writeFileSync(cut, fs.readFileSync(bundle).subarray(0, 2000));
    const { db, reports } = await openBundles([bad, cut]);
    assert.equal(reports[0].ok, false);
    assert.equal(reports[0].imported.length, 4);
    const origin = (getSession(db, samples.ssh).meta as Record<string, unknown>).bundle as Record<string, unknown>;
    assert.equal(origin.verified, false);
    assert.match(String(origin.message), /^not verified: .*event 6/);
    assert.equal(reports[1].readable, false);
    assert.equal(reports[1].imported.length, 0);
    assert.equal(listSessions(db).total, 4);
    db.close();
  });
});
