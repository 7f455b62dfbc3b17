/**
 * Exact-value masking of secrets the gateway knows: injected upstream credentials and gateway
 * tokens (held in memory), and values a user registered (`flightlog secret add`), which are
 * stored only as digests: a 4-char prefix, a length and an HMAC per encoded form. The masker
 * finds a candidate by its prefix and confirms it by the HMAC of the candidate substring.
 */
import { createHmac } from 'node:crypto';

/**
 * How a secret may appear in traffic. `base64+N` is the stable middle of its base64 when it sits
 * at byte offset N (mod 3) inside a longer encoded value (Basic auth `user:secret`, a JSON blob).
 */
export type SecretForm = 'raw' | 'url' | 'base64' | 'base64url' | 'base64+0' | 'base64+1' | 'base64+2' | 'base64url+0' | 'base64url+1' | 'base64url+2';

/** A registered secret as the store keeps it: never the raw value. */
export interface KnownSecretDigest {
  name: string;
  form: SecretForm;
  /** first 4 chars of the form's text (the scan anchor) */
  prefix: string;
  /** length of the form's text */
  length: number;
  /** hex HMAC-SHA256(fingerprintKey, form text) */
  hmac: string;
  /** fingerprint of the raw value, shown in `[MASKED:registered:<name>:<fp>]` */
  fp: string;
}

/** Shortest value masked by exact match: shorter ones would mask ordinary words. */
export const MIN_KNOWN_LENGTH = 4;
const MIN_CORE_LENGTH = 8;
export const PREFIX_LENGTH = 4;

export function hmacHex(key: Uint8Array, text: string): string {
  return createHmac('sha256', key).update(text, 'utf8').digest('hex');
}

/** `[MASKED:kind:fp]` fingerprint: the first 10 hex chars of HMAC-SHA256(key, value). */
export function fingerprintOf(key: Uint8Array, value: string): string {
  return hmacHex(key, value).slice(0, 10);
}

/** The part of base64(pad ‖ value) that depends on the value's bytes alone. */
function base64Core(bytes: Buffer, offset: number, alphabet: 'base64' | 'base64url'): string {
  const padded = Buffer.concat([Buffer.alloc(offset), bytes]);
  const enc = padded.toString(alphabet).replace(/=+$/, '');
  const first = Math.ceil((8 * offset) / 6);
  const last = Math.floor((8 * (offset + bytes.length)) / 6);
  return enc.slice(first, last);
}

/** Every form a secret may take in traffic, deduplicated, shortest useful forms dropped. */
export function secretForms(value: string): Array<{ form: SecretForm; text: string }> {
  const bytes = Buffer.from(value, 'utf8');
  const candidates: Array<{ form: SecretForm; text: string }> = [
    { form: 'raw', text: value },
    { form: 'url', text: encodeURIComponent(value) },
    { form: 'base64', text: bytes.toString('base64') },
    { form: 'base64url', text: bytes.toString('base64url') },
    { form: 'base64+0', text: base64Core(bytes, 0, 'base64') },
    { form: 'base64+1', text: base64Core(bytes, 1, 'base64') },
    { form: 'base64+2', text: base64Core(bytes, 2, 'base64') },
    { form: 'base64url+0', text: base64Core(bytes, 0, 'base64url') },
    { form: 'base64url+1', text: base64Core(bytes, 1, 'base64url') },
    { form: 'base64url+2', text: base64Core(bytes, 2, 'base64url') },
  ];
  const seen = new Set<string>();
  const forms: Array<{ form: SecretForm; text: string }> = [];
  for (const c of candidates) {
    if (seen.has(c.text)) continue;
    if (c.form !== 'raw' && c.text.length < MIN_CORE_LENGTH) continue;
    seen.add(c.text);
    forms.push(c);
  }
  return forms;
}

/** Digests of every form of a registered secret, for the store; the raw value is not kept. */
export function digestSecret(name: string, value: string, fingerprintKey: Uint8Array): KnownSecretDigest[] {
  if (value.length < MIN_KNOWN_LENGTH) return [];
  const fp = fingerprintOf(fingerprintKey, value);
  return secretForms(value).map(({ form, text }) => ({
    name,
    form,
    prefix: text.slice(0, PREFIX_LENGTH),
    length: text.length,
    hmac: hmacHex(fingerprintKey, text),
    fp,
  }));
}

/** One way to recognise a known secret at a prefix hit. */
export interface KnownEntry {
  prefix: string;
  length: number;
  kind: string;
  fp: string;
  /** in-memory form text (injected credentials, gateway tokens) */
  text?: string;
  /** registered secrets: HMAC of the form text */
  hmac?: string;
}
