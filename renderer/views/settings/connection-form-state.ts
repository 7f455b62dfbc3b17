/** What the connection form holds, and how it becomes a ConnectionInput for the gateway to validate. */
import type { SecretRef } from '../../../gateway/common/config-schema';
import type { ConnectionInput } from '../../../gateway/common/api-types';
import type { Protocol } from '../../../gateway/common/types';

export const PROTOCOLS: Protocol[] = ['postgres', 'ssh', 'http', 'kubernetes'];
export const DEFAULT_LISTEN: Record<Protocol, string> = { postgres: '127.0.0.1:6432', ssh: '127.0.0.1:2222', http: '127.0.0.1:8788', kubernetes: '127.0.0.1:6443', mcp: '127.0.0.1:8790' };

/** `store`: the form takes the value once and Flightlog keeps it in a 0600 file (then it is a `file`). */
export type RefKind = 'env' | 'file' | 'store';
export interface RefState {
  kind: RefKind;
  value: string;
}
export interface HeaderRow {
  name: string;
  kind: 'env' | 'file' | 'text';
  value: string;
}

const refOf = (v: unknown, empty: RefKind = 'env'): RefState => {
  if (v && typeof v === 'object' && 'file' in v) return { kind: 'file', value: String((v as { file: string }).file) };
  if (v && typeof v === 'object' && 'env' in v) return { kind: 'env', value: String((v as { env: string }).env) };
  return { kind: empty, value: '' };
};
const refValue = (r: RefState): SecretRef | undefined =>
  r.value.trim() === '' || r.kind === 'store' ? undefined : r.kind === 'env' ? { env: r.value.trim() } : { file: r.value.trim() };
/** A port as typed: digits become a number, anything else goes to the validator as typed so its message names it. */
const portValue = (s: string): number | string | undefined => (s.trim() === '' ? undefined : /^\d+$/.test(s.trim()) ? Number(s.trim()) : s);

export interface FormState {
  protocol: Protocol;
  name: string;
  listen: string;
  identities: string;
  mask: 'record' | 'live';
  host: string;
  port: string;
  user: string;
  database: string;
  tls: string;
  password: RefState;
  privateKey: RefState;
  hostKey: string;
  url: string;
  llm: string;
  headers: HeaderRow[];
  token: RefState;
}

export function initialState(c: ConnectionInput | null, identities: string[]): FormState {
  const u = (c?.upstream ?? {}) as unknown as Record<string, unknown>;
  const headers = Object.entries((u.headers as Record<string, unknown> | undefined) ?? {}).map(([name, v]): HeaderRow =>
    typeof v === 'string' ? { name, kind: 'text', value: v } : { name, ...(refOf(v) as { kind: 'env' | 'file'; value: string }) },
  );
  return {
    protocol: c?.protocol ?? 'http',
    name: c?.name ?? '',
    listen: c?.listen ?? DEFAULT_LISTEN.http,
    identities: c ? c.identities.join(', ') : identities.join(', '),
    mask: c?.mask ?? 'record',
    host: String(u.host ?? ''),
    port: u.port === undefined ? '' : String(u.port),
    user: String(u.user ?? ''),
    database: String(u.database ?? ''),
    tls: String(u.tls ?? ''),
    password: refOf(u.password),
    // a key is a file on disk far more often than a variable
    privateKey: refOf(u.privateKey, 'file'),
    hostKey: String(u.hostKey ?? ''),
    url: String(u.url ?? u.server ?? ''),
    llm: c?.llm ?? '',
    headers: headers.length ? headers : [{ name: '', kind: 'env', value: '' }],
    token: refOf(u.token),
  };
}

/** The form as flightlog.yaml would spell it; fields the form does not show (basic, query, ca, options…) are kept from the original. */
export function toInput(f: FormState, initial: ConnectionInput | null): ConnectionInput {
  const keep = initial && initial.protocol === f.protocol ? { ...(initial.upstream as unknown as Record<string, unknown>) } : {};
  const set = (k: string, v: unknown) => {
    if (v === undefined || v === '') delete keep[k];
    else keep[k] = v;
  };
  switch (f.protocol) {
    case 'postgres':
      set('host', f.host.trim());
      set('port', portValue(f.port));
      set('user', f.user.trim());
      set('database', f.database.trim());
      set('password', refValue(f.password));
      set('tls', f.tls);
      break;
    case 'ssh':
      set('host', f.host.trim());
      set('port', portValue(f.port));
      set('user', f.user.trim());
      set('password', refValue(f.password));
      set('privateKey', refValue(f.privateKey));
      set('hostKey', f.hostKey.trim());
      break;
    case 'http': {
      set('url', f.url.trim());
      const headers: Record<string, SecretRef | string> = {};
      for (const h of f.headers) {
        if (!h.name.trim()) continue;
        headers[h.name.trim()] = h.kind === 'text' ? h.value : (refValue({ kind: h.kind, value: h.value }) ?? '');
      }
      set('headers', Object.keys(headers).length ? headers : undefined);
      break;
    }
    case 'kubernetes':
      set('url', undefined);
      set('server', f.url.trim());
      set('token', refValue(f.token));
      break;
  }
  const out: ConnectionInput = {
    name: f.name.trim(),
    protocol: f.protocol,
    listen: f.listen.trim(),
    upstream: keep as unknown as ConnectionInput['upstream'],
    identities: f.identities
      .split(/[\s,]+/)
      .map((s) => s.trim())
      .filter(Boolean),
    mask: f.mask,
  };
  if (f.protocol === 'http' && f.llm) out.llm = f.llm as 'anthropic' | 'openai';
  if (initial?.options) out.options = initial.options;
  return out;
}

/** Where each form field's errors go: a refused path inside the connection (`upstream.url`, `identities[0]`) belongs to the field whose key it starts with. */
export const belongsTo = (path: string, field: string) => path === field || path.startsWith(`${field}.`) || path.startsWith(`${field}[`);

const FIELD_LABELS: Record<string, string> = { 'upstream.privateKey': 'private key', 'upstream.hostKey': 'host key' };
export const labelOf = (field: string) => FIELD_LABELS[field] ?? field.replace(/^upstream\./, '');

export const SECRET_PLACEHOLDERS: Record<string, { env: string; file: string }> = {
  'postgres.password': { env: 'APP_DB_PASSWORD', file: '~/.config/app-db-password' },
  'ssh.password': { env: 'DEPLOY_PASSWORD', file: '~/.config/deploy-password' },
  'ssh.privateKey': { env: 'DEPLOY_SSH_KEY', file: '~/.ssh/id_ed25519' },
  'kubernetes.token': { env: 'K8S_TOKEN', file: '~/.kube/prod-token' },
};
