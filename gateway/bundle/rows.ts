/**
 * Store rows ↔ the JSON shapes a bundle carries. The shapes are the control API's views
 * (SessionDetail, CommandView, FindingView) so a person reading a bundle sees what the app shows,
 * and the import maps them back to rows so the store's own queries work over a bundle.
 */
import type { Json } from '../common/types';

export { commandView, findingView, parseJsonText, sessionRecord } from '../store/rows';
export type { CommandRow, FindingRow, SessionRecord, SessionRow } from '../store/rows';

const SECRETISH = /pass(word)?|secret|token|key|auth|cookie|credential|bearer|signature/i;

/**
 * The connection config as a bundle carries it. Secrets in a config are references
 * ({env} / {file}) by design; a plain string under a secret-sounding name (an injected header
 * given inline) is replaced too, so no value that could be a credential leaves the machine.
 */
export function sanitizeConfig(value: Json, keyHint = ''): Json {
  if (typeof value === 'string') return keyHint && SECRETISH.test(keyHint) ? '[REDACTED]' : value;
  if (Array.isArray(value)) return value.map((v) => sanitizeConfig(v, keyHint));
  if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    // a secret reference: keep it, it names where the value lives, not the value
    if (keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file') && typeof value[keys[0]] === 'string') return value;
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) out[k] = sanitizeConfig(v, SECRETISH.test(k) ? k : keyHint);
    return out;
  }
  return value;
}
