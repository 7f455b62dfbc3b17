/** The tokens `upstream.via` mints: a crashed gateway's leftovers are deleted when the next one starts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { openDb } from '../../gateway/store/db';
import { addIdentity, checkCredential } from '../../gateway/store/identities';
import { createMasker } from '../../gateway/masking';
import { ensureFingerprintKey } from '../../gateway/store/chain';
import { ViaTokens } from '../../gateway/mcp/via';
import { tempDir } from '../helpers/tmp';

test('a via token works until released; one left by a crashed gateway is deleted at the next start', () => {
  const dir = tempDir('flightlog-via-tokens-');
  const first = openDb(dir);
  let second: ReturnType<typeof openDb> | null = null;
  try {
    addIdentity(first, 'claude', 'agent');
    const masker = createMasker({ fingerprintKey: ensureFingerprintKey(dir) });
    const via = ViaTokens.of(first, dir);
    const released = via.mint('127.0.0.1:5432', 'claude', 'run_1', masker);
    released.bind('ses_a');
    assert.deepEqual(via.tag(checkCredential(first, 'claude', { token: released.token }), { token: released.token }), { ok: true, identity: 'claude', runId: 'run_1', via: 'ses_a' });
    assert.equal(masker.maskText(`pw ${released.token}`).text.includes(released.token), false, 'masked from the moment it exists');
    released.release();
    assert.equal(checkCredential(first, 'claude', { token: released.token }).ok, false, 'gone once released');
    const leftover = via.mint('127.0.0.1:5432', 'claude', null, masker);
    assert.equal(checkCredential(first, 'claude', { token: leftover.token }).ok, true);
    first.close(); // the gateway dies without releasing it
    second = openDb(dir);
    ViaTokens.of(second, dir);
    assert.equal(checkCredential(second, 'claude', { token: leftover.token }).ok, false, 'deleted at the next start');
    assert.equal(fs.existsSync(`${dir}/mcp/via-tokens.json`), false);
  } finally {
    if (first.open) first.close();
    second?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
