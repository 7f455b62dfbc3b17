/**
 * The one verdict per opened bundle (gateway/bundle/verdict.ts) and the app's "Trust this key…"
 * behind it (trustBundleSigner): green only for a trusted signer, amber for an intact bundle from
 * an unknown key, red for any failed check; trusting takes the key from the bundle only if it is
 * still the one the user confirmed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportBundle } from '../../gateway/bundle/export';
import { verifyBundle } from '../../gateway/bundle/verify';
import { bundleStatus, bundleTrust } from '../../gateway/bundle/verdict';
import { loadTrustedKeys, trustBundleSigner } from '../../gateway/bundle/trust-store';
import { cleanupStores, newStore, recordSamples, tmpDir, type Store } from '../helpers/bundle-fixtures';

describe('bundle verdict and trusting a signer from the app', () => {
  let store: Store;
  let work: string;
  let bundle: string;
  let tampered: string;

  before(async () => {
    store = newStore();
    const samples = await recordSamples(store);
    work = tmpDir('flightlog-verdict-');
    bundle = path.join(work, 'x.flightlog');
    await exportBundle(store.db, { sessionIds: [samples.pg], out: bundle, key: store.key });
    tampered = path.join(work, 'bad.flightlog');
    const bytes = fs.readFileSync(bundle);
    const i = bytes.indexOf(Buffer.from('"kind":"sql"'));
    assert.ok(i > 0);
    bytes.write('"kind":"SQL"', i);
    fs.writeFileSync(tampered, bytes);
  });
  after(() => {
    cleanupStores();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('unknown, then trusted once the key is trusted; tampered whatever the trust store says', async () => {
    const reader = path.join(work, 'reader');
    const unknown = await verifyBundle(bundle, { trustedKeys: loadTrustedKeys(reader) });
    assert.equal(bundleTrust(unknown), 'unknown');
    assert.deepEqual(bundleStatus({ ...unknown, imported: ['a'] }), {
      file: 'x.flightlog',
      verified: true,
      signer: store.key.fingerprint,
      trusted: false,
      trustedAs: null,
      sessions: 1,
      events: unknown.events,
      message: unknown.message,
      trust: 'unknown',
    });
    const k = await trustBundleSigner(reader, bundle, store.key.fingerprint, 'ci signer');
    assert.deepEqual([k.name, k.fingerprint], ['ci signer', store.key.fingerprint]);
    const trusted = await verifyBundle(bundle, { trustedKeys: loadTrustedKeys(reader) });
    assert.equal(bundleTrust(trusted), 'trusted');
    assert.equal(bundleStatus({ ...trusted, imported: [] }).trustedAs, 'ci signer');
    const bad = await verifyBundle(tampered, { trustedKeys: loadTrustedKeys(reader) });
    assert.equal(bad.ok, false);
    assert.equal(bundleTrust(bad), 'tampered', 'a trusted key does not make a failed check green');
  });

  it('refuses a key that is not the confirmed one, and a bad name, trusting nothing', async () => {
    const reader = path.join(work, 'reader2');
    await assert.rejects(trustBundleSigner(reader, bundle, 'SHA256:not-the-one', 'x'), /not the SHA256:not-the-one you confirmed; nothing was trusted/);
    await assert.rejects(trustBundleSigner(reader, bundle, store.key.fingerprint, '../etc'), /invalid name/);
    assert.deepEqual(loadTrustedKeys(reader), []);
    await assert.rejects(trustBundleSigner(reader, path.join(work, 'missing.flightlog'), store.key.fingerprint, 'x'));
  });
});
