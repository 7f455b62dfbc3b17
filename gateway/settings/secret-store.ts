/**
 * Upstream secrets kept by Flightlog itself, so a person never edits a shell profile: one file per
 * secret, `<dataDir>/secrets/NAME` (0600, in a 0700 directory), referenced from flightlog.yaml as
 * `{ file: <dataDir>/secrets/NAME }`. No OS keychain is used: a headless gateway (and these
 * machines) has none to ask, and a file beside the store keeps one story on every platform.
 * The value is also registered for masking by value, as `flightlog secret add NAME` does.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FlightlogError } from '../core/errors';
import type { Db } from '../store/db';
import { registerSecret } from '../masking-setup';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** The folder of stored secrets in a data dir. */
export function secretsDir(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'secrets');
}

export interface StoredSecret {
  name: string;
  /** absolute path of the 0600 file: what `{ file: … }` names */
  file: string;
  /** how many encoded forms are masked by value (0 when the value is too short to mask on its own) */
  forms: number;
}

/**
 * Writes the value to `secrets/NAME` (atomic, 0600) and registers it for masking. A value shorter
 * than masking's minimum is still stored: the gateway masks it by value once a connection uses it.
 */
export function storeSecret(opts: { dataDir: string; db: Db; name: string; value: string; fingerprintKey: Buffer }): StoredSecret {
  const { name, value } = opts;
  if (!NAME.test(name)) throw new FlightlogError('E_SECRET_NAME', `invalid secret name "${name}": use letters, digits, '.', '_' or '-'`);
  if (value.trim() === '') throw new FlightlogError('E_SECRET_VALUE', 'the secret is empty');
  const dir = secretsDir(opts.dataDir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const file = path.join(dir, name);
  const tmp = path.join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeFileSync(fd, value);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new FlightlogError('E_SECRET_WRITE', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? 'write failed'}`);
  }
  const forms = value.length >= 8 ? registerSecret(opts.db, name, value, opts.fingerprintKey) : 0;
  return { name, file, forms };
}
