import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** Time-sortable, typable ids: `<prefix>_<10 chars of time><8 random>` in Crockford-ish base32. */
export function newId(prefix: string): string {
  let t = Date.now();
  let time = '';
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const rnd = randomBytes(8);
  let tail = '';
  for (const b of rnd) tail += ALPHABET[b % 32];
  return `${prefix}_${time}${tail}`;
}

/** A gateway token: `flt_` + 40 base62 chars (≈238 bits). The masking engine recognises the prefix. */
export function newToken(): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = 'flt_';
  while (out.length < 44) {
    for (const b of randomBytes(48)) {
      if (b < 248 && out.length < 44) out += chars[b % 62];
    }
  }
  return out;
}
