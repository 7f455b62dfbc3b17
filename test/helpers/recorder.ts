/**
 * A store in a fresh temp dir with a recorder over it, as the gateway builds one (a masker with
 * the dir's fingerprint key, the dir's signing key), with lineage's hooks when a Lineage is given
 * and `touchesOf` (what a command touched) when given.
 * The dir goes at process exit at the latest (tempDir); close `db` in the test.
 */
import { openDb, type Db } from '../../gateway/store/db';
import { Recorder, type RecorderOptions } from '../../gateway/store/recorder';
import { ensureFingerprintKey, ensureGatewayKey, type GatewayKey } from '../../gateway/store/chain';
import { createMasker } from '../../gateway/masking';
import type { Lineage } from '../../gateway/lineage';
import { tempDir } from './tmp';

export function tempRecorder(prefix: string, opts: { lineage?: Lineage; touchesOf?: RecorderOptions['touchesOf'] } = {}): { dir: string; db: Db; key: GatewayKey; rec: Recorder } {
  const dir = tempDir(prefix);
  const db = openDb(dir);
  const key = ensureGatewayKey(dir);
  const rec = new Recorder(db, {
    masker: createMasker({ fingerprintKey: ensureFingerprintKey(dir) }),
    signingKey: key.privateKey,
    keyFingerprint: key.fingerprint,
    onCommandStart: opts.lineage?.onCommandStart,
    onCommandFinish: opts.lineage?.onCommandFinish,
    touchesOf: opts.touchesOf,
  });
  return { dir, db, key, rec };
}
