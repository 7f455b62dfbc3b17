import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from './db';
import type { Statement } from 'better-sqlite3';
import { FlightlogError } from '../core/errors';
import { newToken } from '../core/ids';
import type { IdentityView } from '../common/api-types';
import type { AuthResult, Credential } from '../common/types';
import type { ScramVerifierSet } from '../core/listener';
import { SCRAM_ITERATIONS, scramVerifier } from '../core/scram';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function validateIdentityName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new FlightlogError('E_IDENTITY_NAME', `invalid identity name "${name}": use letters, digits, '.', '_' or '-' (at most 63)`);
  }
}

/** Creates an identity and returns its token: the only time the token exists outside the agent (only its hash is kept). */
export function addIdentity(db: Db, name: string, kind: 'agent' | 'human'): string {
  validateIdentityName(name);
  const existing = db.prepare('SELECT id, revoked_at FROM identities WHERE name = ?').get(name) as { id: number; revoked_at: string | null } | undefined;
  const now = new Date().toISOString();
  const token = newToken();
  db.transaction(() => {
    let id: number;
    if (existing && existing.revoked_at === null) {
      throw new FlightlogError('E_IDENTITY_EXISTS', `identity "${name}" already exists (revoke it first to issue a new token)`);
    } else if (existing) {
      db.prepare('UPDATE identities SET kind = ?, revoked_at = NULL, created_at = ? WHERE id = ?').run(kind, now, existing.id);
      id = existing.id;
    } else {
      id = Number(db.prepare('INSERT INTO identities (name, kind, created_at) VALUES (?, ?, ?)').run(name, kind, now).lastInsertRowid);
    }
    insertToken(db, id, token, now, null);
  }).immediate();
  return token;
}

/**
 * Stores a new token: its hash (for cleartext and bearer checks) and its SCRAM verifier under the
 * identity's salt, made here because this is the only moment the raw token exists.
 */
function insertToken(db: Db, identityId: number, token: string, now: string, runId: string | null): void {
  const row = db.prepare('SELECT scram_salt, scram_iterations FROM identities WHERE id = ?').get(identityId) as { scram_salt: string | null; scram_iterations: number | null };
  let salt = row.scram_salt;
  let iterations = row.scram_iterations;
  if (!salt || !iterations) {
    // set once and never changed: every verifier of the identity depends on it
    salt = randomBytes(16).toString('base64');
    iterations = SCRAM_ITERATIONS;
    db.prepare('UPDATE identities SET scram_salt = ?, scram_iterations = ? WHERE id = ?').run(salt, iterations, identityId);
  }
  const v = scramVerifier(token, Buffer.from(salt, 'base64'), iterations);
  db.prepare('INSERT INTO tokens (identity_id, token_hash, created_at, run_id, scram_stored_key, scram_server_key) VALUES (?, ?, ?, ?, ?, ?)').run(
    identityId,
    hashToken(token),
    now,
    runId,
    v.storedKey.toString('base64'),
    v.serverKey.toString('base64'),
  );
}

/** How many revoked tokens still get a verifier offered, so their owner hears "revoked" and not "wrong token". */
const REVOKED_VERIFIERS_KEPT = 16;

/**
 * The SCRAM verifiers an identity can log in with: every live token's, plus the newest few
 * revoked ones. Null (use cleartext) when the identity is unknown, has no verifier, or still has a
 * live token minted before verifiers existed (it could not answer SCRAM).
 */
export function scramVerifiers(db: Db, identity: string): ScramVerifierSet | null {
  const idRow = db.prepare('SELECT id, scram_salt, scram_iterations FROM identities WHERE name = ?').get(identity) as
    | { id: number; scram_salt: string | null; scram_iterations: number | null }
    | undefined;
  if (!idRow || !idRow.scram_salt || !idRow.scram_iterations) return null;
  const legacy = db.prepare('SELECT COUNT(*) AS n FROM tokens WHERE identity_id = ? AND revoked_at IS NULL AND scram_stored_key IS NULL').get(idRow.id) as { n: number };
  if (legacy.n > 0) return null;
  type Row = { id: number; scram_stored_key: string; scram_server_key: string };
  const live = db.prepare('SELECT id, scram_stored_key, scram_server_key FROM tokens WHERE identity_id = ? AND revoked_at IS NULL AND scram_stored_key IS NOT NULL').all(idRow.id) as Row[];
  const revoked = db
    .prepare('SELECT id, scram_stored_key, scram_server_key FROM tokens WHERE identity_id = ? AND revoked_at IS NOT NULL AND scram_stored_key IS NOT NULL ORDER BY id DESC LIMIT ?')
    .all(idRow.id, REVOKED_VERIFIERS_KEPT) as Row[];
  const rows = [...live, ...revoked];
  if (rows.length === 0) return null;
  return {
    salt: Buffer.from(idRow.scram_salt, 'base64'),
    iterations: idRow.scram_iterations,
    verifiers: rows.map((r) => ({ tokenId: r.id, storedKey: Buffer.from(r.scram_stored_key, 'base64'), serverKey: Buffer.from(r.scram_server_key, 'base64') })),
  };
}

/** Whether `name` is an identity, revoked or not. */
export function identityExists(db: Db, name: string): boolean {
  return cached(db, 'exists').prepare('SELECT 1 FROM identities WHERE name = ?').get(name) !== undefined;
}

/** After a SCRAM proof matched token `tokenId`: is that token (and its identity) still valid, and for which run? */
export function checkScramToken(db: Db, identity: string, tokenId: number): AuthResult {
  const row = db
    .prepare('SELECT i.name, i.revoked_at AS irev, t.revoked_at AS trev, t.run_id FROM tokens t JOIN identities i ON i.id = t.identity_id WHERE t.id = ?')
    .get(tokenId) as { name: string; irev: string | null; trev: string | null; run_id: string | null } | undefined;
  if (!row || row.name !== identity) return { ok: false, reason: 'bad-credential', message: 'invalid gateway token' };
  if (row.irev || row.trev) return { ok: false, identity: row.name, reason: 'revoked', message: `the token of identity "${row.name}" was revoked` };
  return row.run_id ? { ok: true, identity: row.name, runId: row.run_id } : { ok: true, identity: row.name };
}

export function revokeIdentity(db: Db, name: string): void {
  const row = db.prepare('SELECT id, revoked_at FROM identities WHERE name = ?').get(name) as { id: number; revoked_at: string | null } | undefined;
  if (!row) throw new FlightlogError('E_NOT_FOUND', `no identity "${name}"`);
  if (row.revoked_at) throw new FlightlogError('E_REVOKED', `identity "${name}" is already revoked`);
  const now = new Date().toISOString();
  db.transaction(() => {
    db.prepare('UPDATE identities SET revoked_at = ? WHERE id = ?').run(now, row.id);
    db.prepare('UPDATE tokens SET revoked_at = ? WHERE identity_id = ? AND revoked_at IS NULL').run(now, row.id);
  }).immediate();
}

export function listIdentities(db: Db): IdentityView[] {
  const rows = db.prepare('SELECT * FROM identities ORDER BY name').all() as Array<{ id: number; name: string; kind: 'agent' | 'human'; created_at: string; revoked_at: string | null }>;
  return rows.map((r) => ({
    name: r.name,
    kind: r.kind,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    tokens: (db.prepare('SELECT COUNT(*) AS n FROM tokens WHERE identity_id = ? AND revoked_at IS NULL').get(r.id) as { n: number }).n,
    keys: (db.prepare('SELECT fingerprint FROM identity_keys WHERE identity_id = ? ORDER BY id').all(r.id) as { fingerprint: string }[]).map((k) => k.fingerprint),
  }));
}

/** Parses one OpenSSH public key line: `type base64 [comment]`. */
export function parsePublicKeyLine(line: string): { algo: string; keyB64: string; comment: string; fingerprint: string } {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2 || !/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+)$/.test(parts[0])) {
    throw new FlightlogError('E_KEY_FORMAT', 'not an OpenSSH public key (expected "ssh-ed25519 AAAA… comment")');
  }
  const blob = Buffer.from(parts[1], 'base64');
  if (blob.length < 16 || blob.toString('base64').replace(/=+$/, '') !== parts[1].replace(/=+$/, '')) {
    throw new FlightlogError('E_KEY_FORMAT', 'the public key is not valid base64');
  }
  const fingerprint = 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
  return { algo: parts[0], keyB64: blob.toString('base64'), comment: parts.slice(2).join(' '), fingerprint };
}

export function addIdentityKey(db: Db, name: string, publicKeyLine: string): string {
  const row = db.prepare('SELECT id, revoked_at FROM identities WHERE name = ?').get(name) as { id: number; revoked_at: string | null } | undefined;
  if (!row) throw new FlightlogError('E_NOT_FOUND', `no identity "${name}"`);
  if (row.revoked_at) throw new FlightlogError('E_REVOKED', `identity "${name}" is revoked`);
  const key = parsePublicKeyLine(publicKeyLine);
  try {
    db.prepare('INSERT INTO identity_keys (identity_id, algo, key_b64, comment, fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      row.id,
      key.algo,
      key.keyB64,
      key.comment,
      key.fingerprint,
      new Date().toISOString(),
    );
  } catch (err) {
    if (/UNIQUE/.test((err as Error).message)) throw new FlightlogError('E_KEY_EXISTS', `that key (${key.fingerprint}) is already registered`);
    throw err;
  }
  return key.fingerprint;
}

/**
 * Checks a credential. `identity` may be '' for token-only protocols (HTTP bearer): the token
 * then names its identity. Does not check the connection's allow-list (the gateway does).
 */
export function checkCredential(db: Db, identity: string, credential: Credential): AuthResult {
  if ('token' in credential) {
    const row = cached(db, 'token')
      .prepare('SELECT i.name, i.revoked_at AS irev, t.revoked_at AS trev, t.run_id FROM tokens t JOIN identities i ON i.id = t.identity_id WHERE t.token_hash = ?')
      .get(hashToken(credential.token)) as { name: string; irev: string | null; trev: string | null; run_id: string | null } | undefined;
    if (!row) return { ok: false, reason: 'bad-credential', message: 'invalid gateway token' };
    if (identity !== '' && !safeEqual(row.name, identity)) return { ok: false, reason: 'bad-credential', message: 'invalid gateway token' };
    if (row.irev || row.trev) return { ok: false, identity: row.name, reason: 'revoked', message: `the token of identity "${row.name}" was revoked` };
    return row.run_id ? { ok: true, identity: row.name, runId: row.run_id } : { ok: true, identity: row.name };
  }
  const keyB64 = Buffer.from(credential.publicKey.data).toString('base64');
  const row = cached(db, 'key')
    .prepare('SELECT i.name, i.revoked_at FROM identity_keys k JOIN identities i ON i.id = k.identity_id WHERE k.algo = ? AND k.key_b64 = ?')
    .get(credential.publicKey.algo, keyB64) as { name: string; revoked_at: string | null } | undefined;
  if (!row || (identity !== '' && row.name !== identity)) return { ok: false, reason: 'bad-credential', message: 'unknown public key' };
  if (row.revoked_at) return { ok: false, identity: row.name, reason: 'revoked', message: `identity "${row.name}" was revoked` };
  return { ok: true, identity: row.name };
}

/** Authentication runs on every request: keep its statements prepared, once per database. */
const statementCache = new WeakMap<Db, Map<string, Statement<unknown[]>>>();
function cached(db: Db, name: string): { prepare(sql: string): Statement<unknown[]> } {
  let m = statementCache.get(db);
  if (!m) statementCache.set(db, (m = new Map()));
  const cache = m;
  return {
    prepare(sql: string) {
      let st = cache.get(name);
      if (!st) cache.set(name, (st = db.prepare(sql)));
      return st;
    },
  };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Mints a token for one run of an agent (`flightlog run`); it tags every session it opens with the run. */
export function addRunToken(db: Db, name: string, runId: string | null): string {
  const row = db.prepare('SELECT id, revoked_at FROM identities WHERE name = ?').get(name) as { id: number; revoked_at: string | null } | undefined;
  if (!row) throw new FlightlogError('E_NOT_FOUND', `no identity "${name}" (create it with: flightlog identity add ${name} --kind agent)`);
  if (row.revoked_at) throw new FlightlogError('E_REVOKED', `identity "${name}" is revoked`);
  const token = newToken();
  db.transaction(() => insertToken(db, row.id, token, new Date().toISOString(), runId)).immediate();
  return token;
}

export function revokeRunTokens(db: Db, runId: string): void {
  db.prepare('UPDATE tokens SET revoked_at = ? WHERE run_id = ? AND revoked_at IS NULL').run(new Date().toISOString(), runId);
}
