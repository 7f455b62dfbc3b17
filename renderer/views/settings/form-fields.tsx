/** Fields the connection form is built from: secret references, a one-time secret box, errors and test results. */
import { useState } from 'react';
import type { ConnectionTestResult, SettingsFieldError } from '../../../gateway/common/api-types';
import type { RefKind, RefState } from './connection-form-state';

export function FieldErrors({ errors, name }: { errors: SettingsFieldError[]; name: string }) {
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

export function RefField({
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
export function SecretBox({ multiline, testId, button, onStore }: { multiline: boolean; testId: string; button: string; onStore: (value: string) => Promise<void> }) {
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
