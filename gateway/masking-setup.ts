import type { Db } from './store/db';
import { listRegisteredSecrets, registeredSecretDigests, replaceRegisteredSecret } from './store/registered-secrets';
import { FlightlogError } from './core/errors';
import { createMasker, digestSecret, type KnownSecretDigest, type MaskingEngine } from './masking';

/** Registered secrets as the store keeps them: digests only, never the value. */
export function loadDigests(db: Db): KnownSecretDigest[] {
  return registeredSecretDigests(db).map((digest) => JSON.parse(digest) as KnownSecretDigest);
}

/** The gateway's masker: the engine's rules plus the secrets registered in the store. */
export function createGatewayMasker(db: Db, fingerprintKey: Buffer): MaskingEngine {
  return createMasker({ fingerprintKey, known: loadDigests(db) });
}

/** `flightlog secret add NAME`: keeps a digest per encoded form of the value; returns how many forms. */
export function registerSecret(db: Db, name: string, value: string, fingerprintKey: Buffer): number {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) {
    throw new FlightlogError('E_SECRET_NAME', `invalid secret name "${name}": use letters, digits, '.', '_' or '-'`);
  }
  if (value.length < 8) throw new FlightlogError('E_SECRET_VALUE', 'the secret is shorter than 8 characters: too short to mask by value without masking ordinary words');
  const digests = digestSecret(name, value, fingerprintKey);
  const now = new Date().toISOString();
  replaceRegisteredSecret(
    db,
    name,
    digests.map((d) => ({ form: d.form, digest: JSON.stringify(d) })),
    now,
  );
  return digests.length;
}

export { listRegisteredSecrets };
