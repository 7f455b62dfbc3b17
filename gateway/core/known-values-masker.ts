import { createHmac } from 'node:crypto';
import type { Json, Masker, SecretHit } from './types';

/** Exact-value masking of the secrets the gateway knows; the floor under the full engine. */
export function createKnownValuesMasker(fingerprintKey: Uint8Array): Masker {
  const known = new Map<string, string>();
  const fp = (v: string) => createHmac('sha256', fingerprintKey).update(v).digest('hex').slice(0, 10);
  const placeholder = (kind: string, v: string) => `[MASKED:${kind}:${fp(v)}]`;
  const maskText = (text: string) => {
    const hits: SecretHit[] = [];
    let out = text.replace(/flt_[A-Za-z0-9]{32,}/g, (m) => (hits.push({ kind: 'flightlog-token', fp: fp(m) }), placeholder('flightlog-token', m)));
    for (const [v, kind] of known) {
      if (out.includes(v)) {
        hits.push({ kind, fp: fp(v) });
        out = out.split(v).join(placeholder(kind, v));
      }
    }
    return { text: out, hits };
  };
  const maskValue = (value: Json): { value: Json; hits: SecretHit[] } => {
    const hits: SecretHit[] = [];
    const walk = (v: Json): Json => {
      if (typeof v === 'string') {
        const r = maskText(v);
        hits.push(...r.hits);
        return r.text;
      }
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === 'object') {
        const o: { [k: string]: Json } = {};
        for (const [k, x] of Object.entries(v)) o[k] = walk(x);
        return o;
      }
      return v;
    };
    return { value: walk(value), hits };
  };
  return {
    maskText,
    maskValue,
    addKnownSecret(kind, value) {
      if (value.length >= 4) known.set(value, kind);
    },
    placeholder,
  };
}
