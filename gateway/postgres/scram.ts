/** SCRAM-SHA-256 (RFC 5802/7677) client side, as PostgreSQL speaks it, on node:crypto only. */
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
    const salted = pbkdf2Sync(this.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) proof[i] = clientKey[i] ^ signature[i];
    this.serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
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
