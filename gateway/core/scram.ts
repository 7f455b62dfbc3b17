/**
 * SCRAM-SHA-256 (RFC 5802/7677) as PostgreSQL speaks it, on node:crypto only: the client side
 * (gateway → upstream), the server side (agent → gateway), and the verifier math both share.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export class ScramError extends Error {
  readonly code = 'PG_SCRAM';
  constructor(message: string) {
    super(message);
    this.name = 'ScramError';
  }
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** PostgreSQL's default, and what the gateway uses for its tokens. */
export const SCRAM_ITERATIONS = 4096;

/** SaltedPassword = Hi(Normalize(password), salt, i). NFKC stands in for SASLprep (tokens are ASCII). */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
}

/**
 * What a server keeps instead of the password, as pg_authid does: StoredKey = H(ClientKey) and
 * ServerKey. Neither lets anyone log in; StoredKey only checks a proof, ServerKey only signs.
 */
export interface ScramVerifier {
  storedKey: Buffer;
  serverKey: Buffer;
}

export function scramVerifier(password: string, salt: Buffer, iterations: number): ScramVerifier {
  const salted = saltedPassword(password, salt, iterations);
  return { storedKey: sha256(hmac(salted, 'Client Key')), serverKey: hmac(salted, 'Server Key') };
}

/** ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage). */
export function clientProof(salted: Buffer, authMessage: string): Buffer {
  const clientKey = hmac(salted, 'Client Key');
  return xor(clientKey, hmac(sha256(clientKey), authMessage));
}

/** True if the proof comes from someone who knew the password behind storedKey. */
export function proofMatches(storedKey: Buffer, authMessage: string, proof: Buffer): boolean {
  if (proof.length !== 32 || storedKey.length !== 32) return false;
  const clientKey = xor(proof, hmac(storedKey, authMessage));
  return timingSafeEqual(sha256(clientKey), storedKey);
}

export function serverSignature(serverKey: Buffer, authMessage: string): Buffer {
  return hmac(serverKey, authMessage);
}

function attrs(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0], part.slice(2));
  }
  return out;
}

/** One client-side SCRAM exchange: first() → (server-first) → final() → (server-final) → verify(). */
export class ScramClient {
  private readonly nonce: string;
  private readonly clientFirstBare: string;
  private serverSignature: Buffer | null = null;

  constructor(private readonly password: string, nonce?: string, user = '') {
    this.nonce = nonce ?? randomBytes(18).toString('base64');
    // PostgreSQL ignores the SCRAM user name (it uses the startup user); libpq sends it empty.
    this.clientFirstBare = `n=${user},r=${this.nonce}`;
  }

  /** The client-first-message (no channel binding: gs2 header "n,,"). */
  first(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`, 'utf8');
  }

  /** Given server-first-message, returns client-final-message. */
  final(serverFirst: string): Buffer {
    const a = attrs(serverFirst);
    const nonce = a.get('r');
    const salt = a.get('s');
    const iterations = Number(a.get('i'));
    if (!nonce || !nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) throw new ScramError('server nonce is invalid');
    if (!salt) throw new ScramError('server did not send a salt');
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) throw new ScramError('server sent an invalid iteration count');
    const salted = saltedPassword(this.password, Buffer.from(salt, 'base64'), iterations);
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = clientProof(salted, authMessage);
    this.serverSignature = serverSignature(hmac(salted, 'Server Key'), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Checks server-final-message; throws if the server did not prove it knows the password. */
  verify(serverFinal: string): void {
    const a = attrs(serverFinal);
    if (a.has('e')) throw new ScramError(`server rejected SCRAM: ${a.get('e')}`);
    const v = a.get('v');
    if (!v || !this.serverSignature) throw new ScramError('server final message is invalid');
    const got = Buffer.from(v, 'base64');
    if (got.length !== 32 || !timingSafeEqual(got, this.serverSignature)) throw new ScramError('server signature does not match');
  }
}

/**
 * PostgreSQL's scram_mock_salt: the salt offered to a name with no verifiers, derived from a
 * secret key of the gateway so it is the same for that name on every attempt and restart, as a
 * real identity's salt is, and unrelated to any other name's.
 */
export function scramMockSalt(key: Buffer, user: string): Buffer {
  return createHmac('sha256', key).update(`scram-mock-salt\0${user}`).digest().subarray(0, 16);
}

/**
 * A verifier set for a name that is not an identity: the exchange runs exactly as for a real
 * one and fails at the proof, since no password leads to these random-looking keys.
 */
export function scramMockCandidates(key: Buffer, user: string): { salt: Buffer; iterations: number; verifiers: ScramVerifier[] } {
  return {
    salt: scramMockSalt(key, user),
    iterations: SCRAM_ITERATIONS,
    verifiers: [{
      storedKey: createHmac('sha256', key).update(`scram-mock-stored-key\0${user}`).digest(),
      serverKey: createHmac('sha256', key).update(`scram-mock-server-key\0${user}`).digest(),
    }],
  };
}

/** The verifiers one identity may log in with: one salt and count, one verifier per token. */
export interface ScramCandidates<T> {
  salt: Buffer;
  iterations: number;
  verifiers: Array<ScramVerifier & { id: T }>;
}

/**
 * One server-side exchange: first(client-first) → server-first; final(client-final) → the
 * matching verifier's id and the server-final message, or null when no verifier's proof matches.
 * Channel binding is never offered (no -PLUS), so the client's gs2 header must be "n" or "y".
 */
export class ScramServer<T> {
  private clientFirstBare = '';
  private serverFirst = '';
  private gs2Header = '';
  private nonce = '';

  constructor(private readonly candidates: ScramCandidates<T>, private readonly serverNonce = randomBytes(18).toString('base64')) {}

  first(clientFirst: string): string {
    const m = /^([ny]),(a=[^,]*)?,(.*)$/s.exec(clientFirst);
    if (!m) {
      if (clientFirst.startsWith('p=')) throw new ScramError('channel binding was not offered (SCRAM-SHA-256-PLUS is not supported)');
      throw new ScramError('malformed SCRAM client-first-message');
    }
    this.gs2Header = `${m[1]},${m[2] ?? ''},`;
    this.clientFirstBare = m[3];
    const parts = this.clientFirstBare.split(',');
    // RFC 5802: "m" (mandatory extension) must be refused when not understood
    if (parts.length < 2 || !parts[0].startsWith('n=') || !parts[1].startsWith('r=')) throw new ScramError('malformed SCRAM client-first-message');
    const clientNonce = parts[1].slice(2);
    if (!clientNonce || !/^[\x21-\x2b\x2d-\x7e]+$/.test(clientNonce)) throw new ScramError('invalid SCRAM client nonce');
    this.nonce = clientNonce + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${this.candidates.salt.toString('base64')},i=${this.candidates.iterations}`;
    return this.serverFirst;
  }

  final(clientFinal: string): { id: T; serverFinal: string } | null {
    const pIdx = clientFinal.lastIndexOf(',p=');
    if (pIdx < 0) throw new ScramError('malformed SCRAM client-final-message');
    const withoutProof = clientFinal.slice(0, pIdx);
    const a = attrs(withoutProof);
    if (a.get('c') !== Buffer.from(this.gs2Header, 'utf8').toString('base64')) throw new ScramError('SCRAM channel binding does not match');
    if (a.get('r') !== this.nonce || !this.nonce) throw new ScramError('SCRAM nonce does not match');
    const proof = Buffer.from(clientFinal.slice(pIdx + 3), 'base64');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    // check every candidate (no early exit) so timing does not tell how many tokens come first
    let hit: (ScramVerifier & { id: T }) | null = null;
    for (const v of this.candidates.verifiers) {
      if (proofMatches(v.storedKey, authMessage, proof) && !hit) hit = v;
    }
    if (!hit) return null;
    return { id: hit.id, serverFinal: `v=${serverSignature(hit.serverKey, authMessage).toString('base64')}` };
  }
}
