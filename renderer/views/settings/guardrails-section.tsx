/** The guardrails card: the `guardrails:` key of flightlog.yaml in an editor. */
import { useEffect, useState } from 'react';
import type { GuardrailsSettings } from '../../../gateway/common/api-types';
import { FieldError, settingsApi } from '../../api';
import { Empty } from '../../components/common';
import { CodeEditor } from '../../components/monaco';

const RULES_EXAMPLE = `# No rules yet: every command is forwarded. For example:
# guardrails:
#   - name: no-drop
#     match: { protocol: postgres, sql: { statement: [drop, truncate] } }
#     action: deny
#     reason: dropping data needs a human
`;

/** The `guardrails:` key of flightlog.yaml in an editor; the gateway validates it with the config loader and runs it from the next command. */
export function GuardrailsSection() {
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
