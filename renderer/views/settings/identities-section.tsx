/** Identities: create one (its token shown once), revoke one. */
import { type FormEvent, useState } from 'react';
import type { CreateIdentityResult, SettingsSnapshot } from '../../../gateway/common/api-types';
import { settingsApi } from '../../api';
import { ErrorLine } from '../../components/common';
import { fmtTime } from '../../format';
import { CopyLine } from './run-section';

export function IdentitiesSection({ snapshot, onChanged }: { snapshot: SettingsSnapshot; onChanged: () => void }) {
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
