/** The connection form: one per protocol, validated by the gateway with the config loader itself. */
import { type FormEvent, type ReactNode, useState } from 'react';
import type { ConnectionInput, ConnectionTestResult, SettingsFieldError, SettingsSnapshot } from '../../../gateway/common/api-types';
import type { Protocol } from '../../../gateway/common/types';
import { FormError, setupApi } from '../../api';
import { belongsTo, DEFAULT_LISTEN, type FormState, type HeaderRow, initialState, labelOf, PROTOCOLS, type RefState, SECRET_PLACEHOLDERS, toInput } from './connection-form-state';
import { FieldErrors, RefField, SecretBox, TestLine } from './form-fields';

export function ConnectionForm({ initial, identities, onCancel, onSaved }: { initial: ConnectionInput | null; identities: string[]; onCancel: () => void; onSaved: (s: SettingsSnapshot) => void }) {
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
