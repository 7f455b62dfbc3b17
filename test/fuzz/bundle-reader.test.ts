/**
 * Fuzzes the bundle reader a reviewer runs on a file someone sent them: random damage to a
 * valid bundle, and re-signed bundles whose members carry hostile content, must give a verdict
 * (one line) or the module's own one-line error — never another exception, never a hang.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { exportBundle } from '../../gateway/bundle/export';
import { verifyBundle } from '../../gateway/bundle/verify';
import { openBundles } from '../../gateway/bundle/open';
import { FlightlogError } from '../../gateway/core/errors';
import { getSession, listSessions } from '../../gateway/store/queries';
import { cleanupStores, newStore, readMembers, recordSamples, resign, tmpDir, writeMembers, type Member, type Store } from '../helpers/bundle-fixtures';
import { budget, within } from './budget';

let store: Store;
let work = '';
let original: Buffer;
let members: Member[];
let n = 0;
const trusted = () => [{ name: 'fuzz', fingerprint: store.key.fingerprint, publicKeyPem: store.key.publicKeyPem }];

before(async () => {
  store = newStore();
  const s = await recordSamples(store);
  work = tmpDir('flightlog-fuzz-bundle-');
  const file = path.join(work, 'valid.flightlog');
  await exportBundle(store.db, { sessionIds: [s.pg, s.ssh, s.http, s.live], out: file, key: store.key });
  original = fs.readFileSync(file);
  members = await readMembers(file);
});

after(() => {
  store.db.close();
  cleanupStores();
});

function expectedKind(err: unknown, what: string): void {
  if (!(err instanceof FlightlogError)) throw new Error(`${what} threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
  assert.doesNotMatch(err.message, /\n/, `${what}: one line`);
}

/** Verifies and opens a file as `flightlog verify` and `flightlog open` do, then reads every imported session. */
async function review(file: string): Promise<void> {
  const report = await within(10_000, 'verifyBundle', verifyBundle(file, { trustedKeys: trusted() }).catch((err: unknown) => (expectedKind(err, 'verifyBundle'), null)));
  if (report) {
    assert.doesNotMatch(report.message, /\n/, 'the verdict is one line');
    assert.match(report.message, /^(not )?verified/);
    if (!report.ok) assert.ok(report.problem, 'a failed verdict names its first problem');
  }
  try {
    const opened = await within(10_000, 'openBundles', openBundles([file], { trustedKeys: trusted() }));
    try {
      for (const s of listSessions(opened.db).sessions) getSession(opened.db, s.id);
    } finally {
      opened.db.close();
    }
  } catch (err) {
    expectedKind(err, 'openBundles');
  }
}

test('random byte damage (flips, overwrites, truncation, insertion) gives a verdict, never a crash or a hang', async () => {
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), pos: fc.nat(original.length - 1), value: fc.nat(255) }),
    fc.record({ kind: fc.constant('cut' as const), pos: fc.nat(original.length) }),
    fc.record({ kind: fc.constant('insert' as const), pos: fc.nat(original.length), bytes: fc.uint8Array({ minLength: 1, maxLength: 700 }) }),
    fc.record({ kind: fc.constant('fill' as const), pos: fc.nat(original.length - 1), len: fc.nat(1200), value: fc.nat(255) }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), async (edits) => {
      let b = Buffer.from(original);
      for (const e of edits) {
        if (e.kind === 'set') b[Math.min(e.pos, b.length - 1)] = e.value;
        else if (e.kind === 'cut') b = b.subarray(0, Math.min(e.pos, b.length));
        else if (e.kind === 'insert') b = Buffer.concat([b.subarray(0, e.pos), Buffer.from(e.bytes), b.subarray(e.pos)]);
        else b.fill(e.value, Math.min(e.pos, b.length), Math.min(e.pos + e.len, b.length));
        if (b.length === 0) break;
      }
      const file = path.join(work, `damaged-${n++}.flightlog`);
      fs.writeFileSync(file, b);
      try {
        await review(file);
      } finally {
        fs.rmSync(file, { force: true });
      }
    }),
    budget(25),
  );
});

const jsonish = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 80 }),
  fc.constantFrom('{', '[]', 'null', '{"seq":1}', '{"seq":-1,"hash":""}', '{"seq":1e308}', '{"__proto__":{"x":1}}', '"\\u0000"'),
);

test('members with hostile content, re-signed so the reader parses them: a verdict or a one-line error', async () => {
  const names = members.map((m) => m.name).filter((name) => !['manifest.sig', 'SHA256SUMS', 'public-key.pem'].includes(name));
  const mutation = fc.record({
    member: fc.constantFrom(...names),
    how: fc.constantFrom('replace-line', 'insert-line', 'drop-line', 'whole'),
    line: fc.nat(200),
    text: jsonish,
  });
  await fc.assert(
    fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.boolean(), async (muts, resignManifestOnly) => {
      let out = members.map((m) => ({ ...m }));
      for (const mu of muts) {
        const m = out.find((x) => x.name === mu.member);
        if (!m) continue;
        const lines = m.data.toString('utf8').split('\n');
        const i = mu.line % Math.max(1, lines.length);
        if (mu.how === 'replace-line') lines[i] = mu.text;
        else if (mu.how === 'insert-line') lines.splice(i, 0, mu.text);
        else if (mu.how === 'drop-line') lines.splice(i, 1);
        m.data = Buffer.from(mu.how === 'whole' ? mu.text : lines.join('\n'));
      }
      // The manifest itself, when damaged, is signed as it is; otherwise the digests are redone.
      const manifestTouched = muts.some((mu) => mu.member === 'manifest.json');
      if (!manifestTouched || resignManifestOnly) {
        try {
          out = resign(out, { privateKey: store.key.privateKey, publicKeyPem: store.key.publicKeyPem }).members;
        } catch {
          // a manifest the forger's tool cannot parse: keep it as it is
        }
      }
      const file = path.join(work, `forged-${n++}.flightlog`);
      await writeMembers(file, out);
      try {
        await review(file);
      } finally {
        fs.rmSync(file, { force: true });
      }
    }),
    budget(12),
  );
});
