/** The connections list: one row per connection, its last test, and the form to add or edit one. */
import { useState } from 'react';
import type { ConnectionInput, SettingsSnapshot } from '../../../gateway/common/api-types';
import { settingsApi, setupApi } from '../../api';
import { ErrorLine, KindTag } from '../../components/common';
import { ConnectionForm } from './connection-form';
import { TestLine } from './form-fields';

function upstreamSummary(c: ConnectionInput): string {
  const u = c.upstream as unknown as Record<string, unknown>;
  if (c.protocol === 'postgres' || c.protocol === 'ssh') {
    return `${String(u.user ?? '?')}@${String(u.host ?? '?')}:${String(u.port ?? (c.protocol === 'ssh' ? 22 : 5432))}${u.database ? `/${String(u.database)}` : ''}`;
  }
  if (Array.isArray(u.command)) return u.command.map(String).join(' ');
  return `${String(u.url ?? u.server ?? u.kubeconfig ?? '')}${c.llm ? ` · ${c.llm}` : ''}`;
}

export function ConnectionsSection({ snapshot, onChanged, openForm }: { snapshot: SettingsSnapshot; onChanged: (s?: SettingsSnapshot) => void; openForm: boolean }) {
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
