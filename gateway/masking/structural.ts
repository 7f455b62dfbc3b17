/**
 * Structural masking of rows, JSON bodies and headers: values under keys or columns that name
 * a secret are masked whole; Kubernetes Secrets have their `data` decoded, scanned and masked
 * whole; every other string still goes through the text rules (it may hold JSON or YAML).
 */
import type { Json, SecretHit } from '../common/types';
import { acceptSecretValue, classifySecretKey, KeyClass } from './keys';

/** What structural masking needs from the engine. */
export interface StructuralEngine {
  maskText(text: string): { text: string; hits: SecretHit[] };
  findSpans(text: string): Array<{ start: number; end: number; kind: string; fp: string }>;
  fingerprint(value: string): string;
}

function isObject(v: Json): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function maskStructured(engine: StructuralEngine, value: Json, keyHint?: string): { value: Json; hits: SecretHit[] } {
  const hits: SecretHit[] = [];

  const mark = (kind: string, secret: string): string => {
    const fp = engine.fingerprint(secret);
    hits.push({ kind, fp });
    return `[MASKED:${kind}:${fp}]`;
  };

  /** A specific kind when one text rule covers the whole value, so a token under `secret` still reads `github-pat`. */
  const wholeKind = (secret: string, fallback: string): { kind: string; fp: string | null } => {
    const t = secret.trim();
    const spans = engine.findSpans(t);
    if (spans.length === 1 && spans[0].start === 0 && spans[0].end === t.length) return { kind: spans[0].kind, fp: spans[0].fp };
    return { kind: fallback, fp: null };
  };

  const maskWhole = (s: string, cls: KeyClass): string => {
    if (s.length === 0 || s.startsWith('[MASKED:')) return s;
    if (cls.header === 'authorization') {
      const m = /^([A-Za-z][A-Za-z0-9._-]*)(\s+)(\S[\s\S]*)$/.exec(s);
      if (m) {
        const scheme = m[1].toLowerCase();
        const kind = scheme === 'bearer' ? 'bearer-token' : scheme === 'basic' ? 'basic-auth' : 'authorization-header';
        return m[1] + m[2] + mark(wholeKind(m[3], kind).kind, m[3]);
      }
    }
    if (!acceptSecretValue(s, cls, { structural: true })) return scanText(s);
    const fallback = cls.kind === 'generic-secret' || cls.kind === 'generic-api-key' ? 'secret-field' : cls.kind;
    return mark(wholeKind(s, fallback).kind, s.trim() || s);
  };

  const scanText = (s: string): string => {
    const r = engine.maskText(s);
    for (const h of r.hits) hits.push(h);
    return r.text;
  };

  const k8sData = (v: Json, isData: boolean): Json => {
    if (!isObject(v)) return walk(v, null);
    const out: { [key: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== 'string') {
        out[k] = walk(x, null);
        continue;
      }
      if (x.length === 0 || x.startsWith('[MASKED:')) {
        out[k] = x;
        continue;
      }
      let secret = x;
      if (isData && /^[A-Za-z0-9+/\s]+={0,2}$/.test(x)) secret = Buffer.from(x, 'base64').toString('utf8');
      out[k] = mark(wholeKind(secret, 'k8s-secret').kind, secret.trim() || secret);
    }
    return out;
  };

  const walk = (v: Json, cls: KeyClass | null): Json => {
    if (v === null || typeof v === 'boolean') return v;
    if (typeof v === 'number') return cls && cls.password ? mark('password', String(v)) : v;
    if (typeof v === 'string') return cls ? maskWhole(v, cls) : scanText(v);
    if (Array.isArray(v)) return v.map((x) => walk(x, cls));
    const isSecret = v.kind === 'Secret' && (typeof v.apiVersion === 'string' || 'data' in v || 'stringData' in v);
    const out: { [key: string]: Json } = {};
    for (const k in v) {
      if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
      const x = v[k];
      const outKey = k.length > 8 ? scanText(k) : k;
      if (isSecret && (k === 'data' || k === 'stringData')) {
        out[outKey] = k8sData(x, k === 'data');
        continue;
      }
      out[outKey] = walk(x, cls ?? classifySecretKey(k));
    }
    return out;
  };

  const result = walk(value, keyHint !== undefined ? classifySecretKey(keyHint) : null);
  return { value: result, hits };
}
