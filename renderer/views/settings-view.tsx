/**
 * Settings: connections (a form per protocol, validated by the gateway with the config loader
 * itself and written back to flightlog.yaml), identities (a token shown once), and the one line
 * that routes an agent. Also the first-start onboarding shown while no connection exists.
 */
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import type { ConnectionInput, ConnectionTestResult, CreateIdentityResult, GatewayStatus, GuardrailsSettings, SettingsFieldError, SettingsSnapshot } from '../../gateway/common/api-types';
import type { SecretRef } from '../../gateway/common/config-schema';
import type { Protocol } from '../../gateway/common/types';
import { announceSettingsChanged, FieldError, FormError, settingsApi, setupApi } from '../api';
import { Empty, ErrorLine, KindTag, useLoad } from '../components/common';
import { CodeEditor } from '../components/monaco';
import { fmtTime } from '../format';
import { href, navigate, type Route } from '../router';
import './settings-view.css';

const PROTOCOLS: Protocol[] = ['postgres', 'ssh', 'http', 'kubernetes'];
const DEFAULT_LISTEN: Record<Protocol, string> = { postgres: '127.0.0.1:6432', ssh: '127.0.0.1:2222', http: '127.0.0.1:8788', kubernetes: '127.0.0.1:6443', mcp: '127.0.0.1:8790' };

export function SettingsView({ route }: { route: Route }) {
  const { value, error, reload } = useLoad(() => settingsApi.get(), []);
  const [snapshot, setSnapshot] = useState<SettingsSnapshot | null>(null);
  const focus = route.params.get('focus');
  useEffect(() => setSnapshot(value), [value]);
  useEffect(() => {
    if (!focus || !snapshot) return;
    document.getElementById(`settings-${focus}`)?.scrollIntoView({ block: 'start' });
  }, [focus, snapshot !== null]);

  const changed = (s?: SettingsSnapshot) => {
    if (s) setSnapshot(s);
    else reload();
    announceSettingsChanged();
  };
  if (error && !snapshot) return <ErrorLine error={error} />;
  if (!snapshot) return <Empty>loading…</Empty>;
  return (
    <div className="view settings-view" data-testid="settings">
      <div className="toolbar">
        <h2>Settings</h2>
        <span className="muted" data-testid="config-file">
          {snapshot.configExists ? 'config' : 'config (created on the first change)'}: <code>{snapshot.configFile}</code>
        </span>
      </div>
      <div className="settings-body">
        <ConnectionsSection snapshot={snapshot} onChanged={changed} openForm={focus === 'connection'} />
        <IdentitiesSection snapshot={snapshot} onChanged={() => changed()} />
        <GuardrailsSection />
        <RunSection snapshot={snapshot} />
      </div>
    </div>
  );
}

/* ───────────── guardrails ───────────── */

const RULES_EXAMPLE = `# No rules yet: every command is forwarded. For example:
# guardrails:
#   - name: no-drop
#     match: { protocol: postgres, sql: { statement: [drop, truncate] } }
#     action: deny
#     reason: dropping data needs a human
`;

/** The `guardrails:` key of flightlog.yaml in an editor; the gateway validates it with the config loader and runs it from the next command. */
function GuardrailsSection() {
  const [saved, setSaved] = useState<GuardrailsSettings | null>(null);
  const [text, setText] = useState('');
  const [base, setBase] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const [justSaved, setJustSaved] = useState(false);
  useEffect(() => {
    settingsApi.guardrails().then(
      (g) => {
        setSaved(g);
        setText(g.yaml || RULES_EXAMPLE);
        setBase(g.yaml || RULES_EXAMPLE);
      },
      (err: unknown) => setError(err),
    );
  }, []);
  const save = async () => {
    setSaving(true);
    try {
      const g = await settingsApi.saveGuardrails(text);
      setSaved(g);
      setBase(text);
      setError(null);
      setJustSaved(true);
    } catch (err) {
      setError(err);
    } finally {
      setSaving(false);
    }
  };
  const marker = error instanceof FieldError && error.line ? { line: error.line, message: error.message } : null;
  const dirty = saved !== null && text !== base;
  return (
    <section className="settings-card" id="settings-guardrails" data-testid="guardrails-section">
      <h3>
        Guardrails{' '}
        {saved && (
          <span className="muted" data-testid="rules-count">
            {saved.rules} {saved.rules === 1 ? 'rule' : 'rules'}
          </span>
        )}
      </h3>
      <p className="muted small">
        Rules decide every command before it is forwarded; the first match wins (<code>name</code>, <code>match</code>, <code>action: allow | deny | hold</code>, <code>reason</code>, <code>timeout</code>). Reference: the
        <b> Guardrails</b> section of Flightlog's <code>README.md</code>. Saving writes only the <code>guardrails:</code> key of the config and applies from the next command.
      </p>
      {saved ? (
        <CodeEditor value={text} language="yaml" onChange={(v) => (setText(v), setJustSaved(false))} error={marker} testId="guardrails-editor" />
      ) : (
        !error && <Empty>loading…</Empty>
      )}
      {error !== null && (
        <div className="error-line" data-testid="guardrails-error">
          {error instanceof Error ? error.message : String(error)}
        </div>
      )}
      <div className="form-actions rules-actions">
        <button className="btn primary" onClick={() => void save()} disabled={saving || !saved} data-testid="save-guardrails">
          {saving ? 'Saving…' : 'Save rules'}
        </button>
        {saved && (
          <span className="muted small" title={saved.version} data-testid="rules-version" data-version={saved.version}>
            rule set version <code>{saved.version.slice(0, 12)}</code>
            {justSaved && !dirty ? ' · saved, in force from the next command' : dirty ? ' · unsaved changes' : ''}
          </span>
        )}
      </div>
    </section>
  );
}

/* ───────────── connections ───────────── */

function upstreamSummary(c: ConnectionInput): string {
  const u = c.upstream as unknown as Record<string, unknown>;
  if (c.protocol === 'postgres' || c.protocol === 'ssh') {
    return `${String(u.user ?? '?')}@${String(u.host ?? '?')}:${String(u.port ?? (c.protocol === 'ssh' ? 22 : 5432))}${u.database ? `/${String(u.database)}` : ''}`;
  }
  if (Array.isArray(u.command)) return u.command.map(String).join(' ');
  return `${String(u.url ?? u.server ?? u.kubeconfig ?? '')}${c.llm ? ` · ${c.llm}` : ''}`;
}

function ConnectionsSection({ snapshot, onChanged, openForm }: { snapshot: SettingsSnapshot; onChanged: (s?: SettingsSnapshot) => void; openForm: boolean }) {
  const [editing, setEditing] = useState<ConnectionInput | 'new' | null>(openForm && snapshot.connections.length === 0 ? 'new' : null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const remove = async (name: string) => {
    if (!confirm(`Remove connection "${name}"? Its listener stops and its open sessions end.`)) return;
    setBusy(name);
    try {
      onChanged(await settingsApi.deleteConnection(name));
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  /** Logs in upstream again with the saved connection: the row shows what it found. */
  const retest = async (name: string) => {
    setBusy(`test:${name}`);
    try {
      await setupApi.testConnection({ name });
      setError(null);
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  return (
    <section className="settings-card" id="settings-connection" data-testid="connections-section">
      <h3>
        Connections <span className="muted">{snapshot.connections.length}</span>
        <span className="section-right">
          {editing === null && (
            <button className="btn small" onClick={() => setEditing('new')} data-testid="add-connection">
              + Add connection
            </button>
          )}
        </span>
      </h3>
      <ErrorLine error={error} />
      {snapshot.connections.length === 0 ? (
        <p className="muted">No connections yet. Add one: the gateway starts listening for it at once, no restart.</p>
      ) : (
        <table className="settings-table" data-testid="connection-list">
          <thead>
            <tr>
              <th>name</th>
              <th>protocol</th>
              <th>listen</th>
              <th>upstream</th>
              <th>identities</th>
              <th>status</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {snapshot.connections.map((c) => {
              const l = snapshot.listeners.find((x) => x.connection === c.name);
              return (
                <tr key={c.name} data-testid="connection-row" data-connection={c.name}>
                  <td className="strong">{c.name}</td>
                  <td>
                    <KindTag kind={c.protocol} />
                  </td>
                  <td className="mono">{c.listen}</td>
                  <td className="mono ellipsis" title={upstreamSummary(c)}>
                    {upstreamSummary(c)}
                  </td>
                  <td>{c.identities.join(', ')}</td>
                  <td data-testid="connection-status">
                    {l?.address ? <span className="ok">● listening {l.address}</span> : <span className="bad">● {l?.error ?? 'not started'}</span>}
                    {snapshot.tests?.[c.name] && (
                      <>
                        {' '}
                        <TestLine result={snapshot.tests[c.name]} compact />
                      </>
                    )}
                  </td>
                  <td className="row-actions">
                    <button className="btn small" onClick={() => void retest(c.name)} disabled={busy !== null} data-testid="retest-connection">
                      {busy === `test:${c.name}` ? 'Testing…' : 'Test'}
                    </button>
                    <button className="btn small" onClick={() => setEditing(c)} disabled={editing !== null}>
                      Edit
                    </button>
                    <button className="btn small danger" onClick={() => void remove(c.name)} disabled={busy !== null}>
                      Remove
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {editing !== null && (
        <ConnectionForm
          key={editing === 'new' ? 'new' : editing.name}
          initial={editing === 'new' ? null : editing}
          identities={snapshot.identities.filter((i) => !i.revokedAt).map((i) => i.name)}
          onCancel={() => setEditing(null)}
          onSaved={(s) => {
            setEditing(null);
            onChanged(s);
          }}
        />
      )}
    </section>
  );
}

/** `store`: the form takes the value once and Flightlog keeps it in a 0600 file (then it is a `file`). */
type RefKind = 'env' | 'file' | 'store';
interface RefState {
  kind: RefKind;
  value: string;
}
interface HeaderRow {
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

interface FormState {
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

function initialState(c: ConnectionInput | null, identities: string[]): FormState {
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
function toInput(f: FormState, initial: ConnectionInput | null): ConnectionInput {
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
const belongsTo = (path: string, field: string) => path === field || path.startsWith(`${field}.`) || path.startsWith(`${field}[`);

const FIELD_LABELS: Record<string, string> = { 'upstream.privateKey': 'private key', 'upstream.hostKey': 'host key' };
const labelOf = (field: string) => FIELD_LABELS[field] ?? field.replace(/^upstream\./, '');

const SECRET_PLACEHOLDERS: Record<string, { env: string; file: string }> = {
  'postgres.password': { env: 'APP_DB_PASSWORD', file: '~/.config/app-db-password' },
  'ssh.password': { env: 'DEPLOY_PASSWORD', file: '~/.config/deploy-password' },
  'ssh.privateKey': { env: 'DEPLOY_SSH_KEY', file: '~/.ssh/id_ed25519' },
  'kubernetes.token': { env: 'K8S_TOKEN', file: '~/.kube/prod-token' },
};

function ConnectionForm({ initial, identities, onCancel, onSaved }: { initial: ConnectionInput | null; identities: string[]; onCancel: () => void; onSaved: (s: SettingsSnapshot) => void }) {
  const [f, setF] = useState<FormState>(() => initialState(initial, identities));
  const [error, setError] = useState<Error | null>(null);
  const [fields, setFields] = useState<SettingsFieldError[]>([]);
  const [saving, setSaving] = useState(false);
  const [testing, setTesting] = useState(false);
  const [tested, setTested] = useState<ConnectionTestResult | null>(null);
  const up = <K extends keyof FormState>(k: K, v: FormState[K]) => setF((s) => ({ ...s, [k]: v }));
  const shown = new Set<string>();
  const errorsOf = (field: string) => {
    const mine = fields.filter((x) => belongsTo(x.field, field));
    for (const x of mine) shown.add(x.field);
    return mine;
  };
  const invalid = (field: string) => (fields.some((x) => belongsTo(x.field, field)) ? 'invalid' : '');

  const refuse = (err: unknown) => {
    if (err instanceof FormError && err.fields.length) {
      setFields(err.fields);
      setError(null);
    } else {
      setFields([]);
      setError(err instanceof Error ? err : new Error(String(err)));
    }
  };
  const saveState = async (state: FormState) => {
    // a value typed for storing is not kept until Store: saving without it would drop it silently
    const shownRefs = { postgres: ['password'], ssh: ['password', 'privateKey'], kubernetes: ['token'], http: [], mcp: [] } as const;
    const unstored = (shownRefs[state.protocol] as readonly ('password' | 'privateKey' | 'token')[]).filter((k) => state[k].kind === 'store');
    if (unstored.length) {
      setFields(unstored.map((k) => ({ field: `upstream.${k}`, message: 'press Store first: Flightlog keeps the value only then' })));
      setError(null);
      return;
    }
    setSaving(true);
    try {
      onSaved(await setupApi.saveConnection(toInput(state, initial), initial?.name));
    } catch (err) {
      refuse(err);
    } finally {
      setSaving(false);
    }
  };
  const save = (e: FormEvent) => {
    e.preventDefault();
    void saveState(f);
  };
  const test = async () => {
    setTesting(true);
    setTested(null);
    try {
      setTested(await setupApi.testConnection({ connection: toInput(f, initial) }));
      setFields([]);
      setError(null);
    } catch (err) {
      refuse(err);
    } finally {
      setTesting(false);
    }
  };
  /** Flightlog keeps the value (0600 file under the data dir); the field then names that file. */
  const store = async (key: 'password' | 'privateKey' | 'token', name: string, value: string, thenSave: boolean) => {
    const r = await setupApi.storeSecret(name, value);
    const next = { ...f, [key]: { kind: 'file', value: r.ref.file } satisfies RefState };
    setF(next);
    setFields((xs) => xs.filter((x) => !belongsTo(x.field, `upstream.${key}`)));
    if (thenSave) await saveState(next);
  };
  const secretName = (label: string) => `${(f.name.trim() || f.protocol).replace(/[^A-Za-z0-9._-]+/g, '-')}-${label}`.replace(/^[^A-Za-z0-9]+/, '');
  const ref = (key: 'password' | 'privateKey' | 'token', label: string) => (
    <RefField
      label={label}
      value={f[key]}
      onChange={(v) => up(key, v)}
      name={`upstream.${key}`}
      errors={errorsOf(`upstream.${key}`)}
      placeholders={SECRET_PLACEHOLDERS[`${f.protocol}.${key}`] ?? { env: 'SECRET_NAME', file: '~/.config/secret' }}
      multiline={key === 'privateKey'}
      onStore={(name, value, thenSave) => store(key, name ?? secretName(key), value, thenSave)}
    />
  );
  const field = (label: string, k: keyof FormState, name: string, props: { placeholder?: string; hint?: ReactNode } = {}) => (
    <label className="field">
      <span className="field-label">{label}</span>
      <input className={invalid(name)} value={f[k] as string} placeholder={props.placeholder} onChange={(e) => up(k, e.target.value as never)} data-testid={`field-${name}`} spellCheck={false} />
      <FieldErrors errors={errorsOf(name)} name={name} />
      {props.hint && <span className="field-hint">{props.hint}</span>}
    </label>
  );
  const body = (
    <>
      <div className="form-grid">
        <label className="field">
          <span className="field-label">protocol</span>
          <select
            value={f.protocol}
            onChange={(e) => {
              const p = e.target.value as Protocol;
              setF((s) => ({ ...s, protocol: p, listen: !initial && Object.values(DEFAULT_LISTEN).includes(s.listen) ? DEFAULT_LISTEN[p] : s.listen }));
              setTested(null);
            }}
            data-testid="field-protocol"
            disabled={initial !== null}
          >
            {PROTOCOLS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        {field('name', 'name', 'name', { placeholder: 'app-db' })}
        {field('listen', 'listen', 'listen', { placeholder: '127.0.0.1:6432', hint: 'host:port the agent connects to' })}
        {field('identities', 'identities', 'identities', { placeholder: 'claude', hint: 'who may use it, comma-separated' })}
        <label className="field">
          <span className="field-label">mask</span>
          <select value={f.mask} onChange={(e) => up('mask', e.target.value as FormState['mask'])} data-testid="field-mask">
            <option value="record">record (mask the recording)</option>
            <option value="live">live (agent sees masked too)</option>
          </select>
          <FieldErrors errors={errorsOf('mask')} name="mask" />
        </label>
      </div>
      <div className="form-sub">upstream · how the gateway reaches it and logs in</div>
      <div className="form-grid">
        {(f.protocol === 'postgres' || f.protocol === 'ssh') && (
          <>
            {field('host', 'host', 'upstream.host', { placeholder: 'db.internal' })}
            {field('port', 'port', 'upstream.port', { placeholder: f.protocol === 'ssh' ? '22' : '5432' })}
            {field('user', 'user', 'upstream.user', { placeholder: f.protocol === 'ssh' ? 'deploy' : 'app' })}
          </>
        )}
        {f.protocol === 'postgres' && (
          <>
            {field('database', 'database', 'upstream.database', { placeholder: 'app (default: the user name)' })}
            {ref('password', 'password')}
            <label className="field">
              <span className="field-label">tls</span>
              <select value={f.tls} onChange={(e) => up('tls', e.target.value)} data-testid="field-upstream.tls">
                <option value="">default (prefer)</option>
                <option value="disable">disable</option>
                <option value="prefer">prefer</option>
                <option value="require">require</option>
                <option value="verify-full">verify-full</option>
              </select>
              <FieldErrors errors={errorsOf('upstream.tls')} name="upstream.tls" />
            </label>
          </>
        )}
        {f.protocol === 'ssh' && (
          <>
            {ref('password', 'password')}
            {ref('privateKey', 'privateKey')}
            {field('hostKey', 'hostKey', 'upstream.hostKey', { placeholder: 'ssh-ed25519 AAAA… (learned on first use when empty)' })}
          </>
        )}
        {(f.protocol === 'http' || f.protocol === 'kubernetes') && field(f.protocol === 'kubernetes' ? 'server' : 'url', 'url', f.protocol === 'kubernetes' ? 'upstream.server' : 'upstream.url', { placeholder: f.protocol === 'http' ? 'https://api.anthropic.com' : 'https://k8s.internal:6443' })}
        {f.protocol === 'kubernetes' && ref('token', 'token')}
        {f.protocol === 'http' && (
          <label className="field">
            <span className="field-label">llm</span>
            <select value={f.llm} onChange={(e) => up('llm', e.target.value)} data-testid="field-llm">
              <option value="">none (plain HTTP)</option>
              <option value="anthropic">anthropic (model calls as conversations)</option>
              <option value="openai">openai</option>
            </select>
            <FieldErrors errors={errorsOf('llm')} name="llm" />
          </label>
        )}
      </div>
      {f.protocol === 'http' && (
        <div className="headers">
          <div className="field-label">headers injected upstream</div>
          {f.headers.map((h, i) => (
            <div key={i}>
              <div className="header-row">
                <input
                  className={invalid(`upstream.headers.${h.name}`)}
                  value={h.name}
                  placeholder="x-api-key"
                  onChange={(e) => up('headers', f.headers.map((x, j) => (j === i ? { ...x, name: e.target.value } : x)))}
                  data-testid="header-name"
                />
                <select
                  value={h.kind}
                  onChange={(e) => up('headers', f.headers.map((x, j) => (j === i ? { ...x, kind: e.target.value as HeaderRow['kind'], value: x.kind === e.target.value ? x.value : '' } : x)))}
                  data-testid="header-kind"
                >
                  <option value="env">env var</option>
                  <option value="file">file</option>
                  <option value="text">plain text (not a secret)</option>
                </select>
                <input
                  className={invalid(`upstream.headers.${h.name}`)}
                  value={h.value}
                  placeholder={h.kind === 'env' ? 'ANTHROPIC_API_KEY' : h.kind === 'file' ? '~/.config/anthropic-key' : '2023-06-01'}
                  onChange={(e) => up('headers', f.headers.map((x, j) => (j === i ? { ...x, value: e.target.value } : x)))}
                  data-testid="header-value"
                  spellCheck={false}
                />
                <button type="button" className="btn small" onClick={() => up('headers', f.headers.filter((_, j) => j !== i))} title="remove header">
                  ✕
                </button>
              </div>
              {h.name.trim() && <FieldErrors errors={errorsOf(`upstream.headers.${h.name.trim()}`)} name={`upstream.headers.${h.name.trim()}`} />}
              {(() => {
                const missing = fields.find((x) => x.code === 'E_SECRET_MISSING' && x.field === `upstream.headers.${h.name.trim()}`);
                return missing?.variable ? (
                  <span className="store-missing">
                    <SecretBox
                      multiline={false}
                      testId={`store-missing-upstream.headers.${h.name.trim()}`}
                      button={`Store ${missing.variable} and save`}
                      onStore={async (v) => {
                        const r = await setupApi.storeSecret(missing.variable ?? '', v);
                        const next = { ...f, headers: f.headers.map((x, j): HeaderRow => (j === i ? { ...x, kind: 'file', value: r.ref.file } : x)) };
                        setF(next);
                        setFields((xs) => xs.filter((x) => x !== missing));
                        await saveState(next);
                      }}
                    />
                  </span>
                ) : null;
              })()}
            </div>
          ))}
          <button type="button" className="btn small" onClick={() => up('headers', [...f.headers, { name: '', kind: 'env', value: '' }])}>
            + header
          </button>
        </div>
      )}
    </>
  );
  // refusals with no field of their own in this form (another key of the connection): listed under it
  const rest = fields.filter((x) => !shown.has(x.field));
  return (
    <form className="conn-form" onSubmit={save} data-testid="connection-form" noValidate>
      <div className="form-title">{initial ? `Edit ${initial.name}` : 'New connection'}</div>
      {body}
      <p className="muted small">
        Secrets are never written into flightlog.yaml: name the environment variable the gateway reads, a file holding the value, or <b>store a value</b> and Flightlog keeps it in a file only you can read (0600, under the data dir; no OS keychain is used).
      </p>
      {(fields.length > 0 || error) && (
        <div className="error-line" data-testid="form-error">
          {fields.length > 0 ? `${fields.length === 1 ? 'One field needs' : `${fields.length} fields need`} a fix before this can be saved${rest.length ? ':' : ' (marked above).'}` : error?.message}
          {rest.map((x) => (
            <div key={x.field} data-testid={`error-${x.field}`}>
              {labelOf(x.field)}: {x.message}
            </div>
          ))}
        </div>
      )}
      {tested && <TestLine result={tested} />}
      <div className="form-actions">
        <button className="btn primary" type="submit" disabled={saving} data-testid="save-connection">
          {saving ? 'Saving and testing…' : initial ? 'Save and restart listener' : 'Add and start listening'}
        </button>
        <button className="btn" type="button" onClick={() => void test()} disabled={testing || saving} data-testid="test-connection">
          {testing ? 'Testing…' : 'Test connection'}
        </button>
        <button className="btn" type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function FieldErrors({ errors, name }: { errors: SettingsFieldError[]; name: string }) {
  if (!errors.length) return null;
  return (
    <span className="field-error" data-testid={`error-${name}`}>
      {errors.map((e) => e.message).join(' · ')}
    </span>
  );
}

/** What the last Test connection found: the upstream's own words. */
export function TestLine({ result, compact = false }: { result: ConnectionTestResult; compact?: boolean }) {
  return (
    <div className={`test-line ${result.ok ? 'ok' : 'bad'} ${compact ? 'compact' : ''}`} data-testid={compact ? 'connection-test' : 'test-result'} data-ok={String(result.ok)} title={result.message}>
      {result.ok ? '✓ ' : '✗ '}
      {compact ? (result.ok ? (result.serverVersion ?? 'upstream login ok') : result.message) : result.message}
      {!compact && result.hostKey && (
        <div className="muted small" data-testid="test-host-key">
          host key {result.hostKey.fingerprint} ({result.hostKey.type}) ·{' '}
          {result.hostKey.state === 'new' ? 'not pinned yet: the first login pins it' : result.hostKey.state === 'pinned' ? 'matches the pinned key' : 'CHANGED since it was pinned'}
        </div>
      )}
    </div>
  );
}

function RefField({
  label,
  value,
  onChange,
  name,
  errors,
  placeholders,
  multiline,
  onStore,
}: {
  label: string;
  value: RefState;
  onChange: (v: RefState) => void;
  name: string;
  errors: SettingsFieldError[];
  placeholders: { env: string; file: string };
  multiline: boolean;
  onStore: (name: string | null, value: string, thenSave: boolean) => Promise<void>;
}) {
  const missing = errors.find((e) => e.code === 'E_SECRET_MISSING');
  return (
    <label className="field ref-field">
      <span className="field-label">{label}</span>
      <span className="ref-input">
        {/* another kind of reference is another thing: the old name or path would only mislead */}
        <select value={value.kind} onChange={(e) => onChange({ kind: e.target.value as RefKind, value: '' })} data-testid={`ref-kind-${name}`}>
          <option value="env">env var</option>
          <option value="file">file</option>
          <option value="store">store a value…</option>
        </select>
        {value.kind === 'store' ? (
          <SecretBox multiline={multiline} testId={`store-${name}`} button="Store" onStore={(v) => onStore(null, v, false)} />
        ) : (
          <input
            className={errors.length ? 'invalid' : ''}
            value={value.value}
            placeholder={value.kind === 'env' ? placeholders.env : placeholders.file}
            onChange={(e) => onChange({ ...value, value: e.target.value })}
            data-testid={`field-${name}`}
            spellCheck={false}
          />
        )}
      </span>
      <FieldErrors errors={errors} name={name} />
      {missing?.variable && (
        <span className="store-missing">
          <SecretBox multiline={multiline} testId={`store-missing-${name}`} button={`Store ${missing.variable} and save`} onStore={(v) => onStore(missing.variable ?? null, v, true)} />
        </span>
      )}
    </label>
  );
}

/** Takes a secret value once: never shown, cleared as soon as the gateway has it. */
function SecretBox({ multiline, testId, button, onStore }: { multiline: boolean; testId: string; button: string; onStore: (value: string) => Promise<void> }) {
  const [v, setV] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const go = async () => {
    setBusy(true);
    try {
      const value = v;
      setV('');
      await onStore(value);
      setError(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="secret-box">
      {multiline ? (
        <textarea className="secret-text" value={v} onChange={(e) => setV(e.target.value)} placeholder="paste the value; Flightlog keeps it, never shows it" data-testid={`${testId}-value`} spellCheck={false} autoComplete="off" />
      ) : (
        <input type="password" value={v} onChange={(e) => setV(e.target.value)} placeholder="the value (kept by Flightlog, never shown)" data-testid={`${testId}-value`} autoComplete="new-password" />
      )}
      <button type="button" className="btn small" disabled={busy || v === ''} onClick={() => void go()} data-testid={`${testId}-button`}>
        {busy ? 'Storing…' : button}
      </button>
      {error && <span className="field-error">{error}</span>}
    </span>
  );
}

/* ───────────── identities ───────────── */

function IdentitiesSection({ snapshot, onChanged }: { snapshot: SettingsSnapshot; onChanged: () => void }) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'agent' | 'human'>('agent');
  const [created, setCreated] = useState<CreateIdentityResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    try {
      setCreated(await settingsApi.createIdentity(name.trim(), kind));
      setName('');
      setError(null);
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (n: string) => {
    if (!confirm(`Revoke identity "${n}"? Its tokens stop working at once.`)) return;
    try {
      await settingsApi.revokeIdentity(n);
      setError(null);
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section className="settings-card" id="settings-identity" data-testid="identities-section">
      <h3>
        Identities <span className="muted">{snapshot.identities.filter((i) => !i.revokedAt).length}</span>
      </h3>
      {created && (
        <div className="token-box" data-testid="new-token">
          <div className="token-title">
            Token for <b>{created.name}</b>: copy it now, <b>you will not see it again</b>. Flightlog keeps only its hash.
          </div>
          <CopyLine text={created.token} testId="token-value" />
          <div className="muted small">
            The agent presents it as its password (Postgres <code>password=</code>, SSH password) or as <code>Authorization: Bearer …</code> over HTTP. <code>flightlog run</code> does not need it: it mints a token per run.
          </div>
          <button className="btn small" onClick={() => setCreated(null)} data-testid="token-done">
            I have copied it
          </button>
        </div>
      )}
      <form className="inline-form" onSubmit={(e) => void create(e)}>
        <input value={name} onChange={(e) => setName(e.target.value)} placeholder="identity name, e.g. claude" data-testid="identity-name" spellCheck={false} />
        <select value={kind} onChange={(e) => setKind(e.target.value as 'agent' | 'human')} data-testid="identity-kind">
          <option value="agent">agent</option>
          <option value="human">human</option>
        </select>
        <button className="btn primary" type="submit" disabled={!name.trim()} data-testid="create-identity">
          Create identity
        </button>
      </form>
      <ErrorLine error={error} />
      {snapshot.identities.length === 0 ? (
        <p className="muted">No identities yet. An agent authenticates to the gateway as one; it never holds upstream secrets.</p>
      ) : (
        <table className="settings-table" data-testid="identity-list">
          <thead>
            <tr>
              <th>name</th>
              <th>kind</th>
              <th>created</th>
              <th>tokens</th>
              <th>ssh keys</th>
              <th>status</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {snapshot.identities.map((i) => (
              <tr key={i.name} data-testid="identity-row" data-identity={i.name} className={i.revokedAt ? 'revoked' : ''}>
                <td className="strong">{i.name}</td>
                <td>{i.kind}</td>
                <td>{fmtTime(i.createdAt)}</td>
                <td>{i.tokens}</td>
                <td>{i.keys.length}</td>
                <td>{i.revokedAt ? <span className="bad">revoked {fmtTime(i.revokedAt)}</span> : <span className="ok">active</span>}</td>
                <td className="row-actions">
                  {!i.revokedAt && (
                    <button className="btn small danger" onClick={() => void revoke(i.name)} data-testid="revoke-identity">
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/* ───────────── routing an agent ───────────── */

function runLine(snapshot: SettingsSnapshot, identity: string, agent: string): string {
  return `${snapshot.runCommand} --identity ${identity || 'NAME'} -- ${agent.trim() || '<agent>'}`;
}

function RunSection({ snapshot }: { snapshot: SettingsSnapshot }) {
  const active = snapshot.identities.filter((i) => !i.revokedAt).map((i) => i.name);
  const [identity, setIdentity] = useState(active[0] ?? '');
  const [agent, setAgent] = useState('claude');
  useEffect(() => {
    if (!active.includes(identity)) setIdentity(active[0] ?? '');
  }, [active.join(',')]);
  const reachable = snapshot.listeners.filter((l) => l.address && l.identities.includes(identity));
  return (
    <section className="settings-card" id="settings-run" data-testid="run-section">
      <h3>Route an agent</h3>
      <div className="inline-form">
        <select value={identity} onChange={(e) => setIdentity(e.target.value)} data-testid="run-identity">
          {active.length === 0 && <option value="">no identity yet</option>}
          {active.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
        <input value={agent} onChange={(e) => setAgent(e.target.value)} placeholder="the agent's command" data-testid="run-agent" spellCheck={false} />
      </div>
      <CopyLine text={runLine(snapshot, identity, agent)} testId="run-command" />
      <RunHelp snapshot={snapshot} />
      <p className="muted small">
        {reachable.length
          ? `It reaches ${reachable.map((l) => l.connection).join(', ')} through the gateway (PGHOST, an ssh config, the model API base URLs…), all grouped under one run.`
          : identity
            ? `No running connection allows "${identity}" yet: add it to a connection's identities.`
            : 'Create an identity first.'}
      </p>
    </section>
  );
}

/** Where the line works as pasted, the same line for any directory, and how to type plain `flightlog`. */
function RunHelp({ snapshot }: { snapshot: SettingsSnapshot }) {
  const h = snapshot.runHelp;
  if (!h) return null;
  return (
    <p className="muted small run-help" data-testid="run-help" data-via={h.via}>
      {h.via === 'npx' && (
        <>
          Paste it in a shell in <code>{h.cwd}</code>; from any other directory: <code data-testid="run-anywhere">{h.anywhere} …</code>{' '}
        </>
      )}
      {h.via === 'node' && <>This install is not on your PATH, so the line names it by its path and works from any directory. </>}
      {h.via !== 'path' && <>· To type plain <code>flightlog</code>, {h.onPath}.</>}
    </p>
  );
}

/** A one-line value with a Copy button; falls back to selecting the text where the clipboard is not allowed. */
export function CopyLine({ text, testId }: { text: string; testId: string }) {
  const [copied, setCopied] = useState(false);
  const ref = useRef<HTMLElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      const sel = window.getSelection();
      if (sel && ref.current) sel.selectAllChildren(ref.current);
    }
  };
  return (
    <div className="copy-line">
      <code ref={ref} data-testid={testId}>
        {text}
      </code>
      <button className="btn small" type="button" onClick={() => void copy()} data-testid={`${testId}-copy`}>
        {copied ? 'Copied' : 'Copy'}
      </button>
    </div>
  );
}

/* ───────────── onboarding ───────────── */

/** First start, no connections yet: three steps into Settings. */
export function Onboarding({ status }: { status: GatewayStatus }) {
  const { value } = useLoad(() => settingsApi.get(), [status.listeners.length]);
  const identity = value?.identities.find((i) => !i.revokedAt)?.name ?? null;
  const step = (n: number, done: boolean, title: string, body: ReactNode) => (
    <li className={`ob-step ${done ? 'done' : ''}`} data-testid={`onboarding-step-${n}`}>
      <span className="ob-num">{done ? '✓' : n}</span>
      <div>
        <div className="ob-title">{title}</div>
        <div className="muted">{body}</div>
      </div>
    </li>
  );
  return (
    <div className="onboarding" data-testid="onboarding">
      <div className="ob-head">
        <h2>Welcome to Flightlog</h2>
        <span className="muted">The gateway is running with no connections. Three steps and your agent's every query, command and model call is on the record.</span>
      </div>
      <ol className="ob-steps">
        {step(
          1,
          identity !== null,
          'Create an identity',
          <>
            Who the agent is to the gateway. <a href={href('settings', null, { focus: 'identity' })}>Create one in Settings</a>
            {identity && <> · done: {identity}</>}
          </>,
        )}
        {step(
          2,
          status.listeners.length > 0,
          'Add a connection',
          <>
            A database, SSH host or HTTP/model API, with the credentials the gateway injects (referenced, never stored).{' '}
            <a href={href('settings', null, { focus: 'connection' })} data-testid="onboarding-add-connection">
              Add one
            </a>
          </>,
        )}
        {step(
          3,
          false,
          'Run your agent',
          <>
            <code>{value ? runLine(value, identity ?? 'NAME', '<agent>') : 'flightlog run --identity NAME -- <agent>'}</code>
            {value?.runHelp?.via === 'npx' && <span data-testid="onboarding-run-where"> (in {value.runHelp.cwd})</span>}{' '}
            <a href={href('settings', null, { focus: 'run' })} onClick={(e) => (e.preventDefault(), navigate(href('settings', null, { focus: 'run' })))}>
              copy it
            </a>
          </>,
        )}
      </ol>
    </div>
  );
}
