/**
 * ssh2 fills every packet's padding (4–19 bytes) with `crypto.randomFillSync`, which costs ~11 µs
 * a call on these machines: a tenth of the gateway's CPU per MB relayed. This module loads ssh2's
 * cipher module first, with a `randomFillSync` that serves such small fills from a pool refilled
 * 64 KiB at a time from the same CSPRNG, each byte handed out once. Only that module sees the
 * pool: the global `crypto.randomFillSync` is restored before this returns, and ssh2's key
 * exchange (another module) keeps the original. Import it before anything that loads 'ssh2'.
 */
import { createRequire } from 'node:module';

type RandomFillSync = typeof import('node:crypto').randomFillSync;

/** the crypto module object itself, whose property ssh2 destructures when it loads */
const nodeCrypto = createRequire(__filename)('node:crypto') as { randomFillSync: RandomFillSync };
const realFill = nodeCrypto.randomFillSync;

const POOL_BYTES = 64 * 1024;
/** larger fills go to the CSPRNG directly */
const SMALL = 256;
let pool = Buffer.alloc(0);
let at = 0;

/** `randomFillSync` for ssh2's padding: small fills are copied out of a pool of CSPRNG bytes. */
export function pooledRandomFill<T extends NodeJS.ArrayBufferView>(buf: T, offset = 0, size?: number): T {
  const n = size ?? buf.byteLength - offset;
  if (!Buffer.isBuffer(buf) || n > SMALL || n < 0 || offset < 0 || offset + n > buf.length) return realFill(buf, offset, size);
  if (at + n > pool.length) {
    pool = realFill(Buffer.allocUnsafe(POOL_BYTES));
    at = 0;
  }
  pool.copy(buf, offset, at, at + n);
  at += n;
  return buf;
}

const ssh2Require = createRequire(require.resolve('ssh2'));
const cipherModule = ssh2Require.resolve('./protocol/crypto.js');

/** ssh2's cipher module, loaded with the pooled padding if nothing loaded it before. */
export function ssh2CryptoModule(): unknown {
  if (require.cache[cipherModule]) return ssh2Require(cipherModule);
  nodeCrypto.randomFillSync = pooledRandomFill as RandomFillSync;
  try {
    return ssh2Require(cipherModule);
  } finally {
    nodeCrypto.randomFillSync = realFill;
  }
}

ssh2CryptoModule();
