/** Blame: every command that touched one object (table, SSH file, HTTP path, Kubernetes object), oldest first. */
import { useState } from 'react';
import { api } from '../api';
import { Empty, ErrorLine, KindTag, StatusPill, useLoad } from '../components/common';
import { DiffView } from '../components/monaco';
import { fmtTime, shortId } from '../format';
import { href, navigate, type Route } from '../router';
import './runs-view.css';

export function BlameView({ route }: { route: Route }) {
  const target = route.params.get('target') ?? '';
  const since = route.params.get('since') ?? '';
  const [draft, setDraft] = useState(target);
  const [draftSince, setDraftSince] = useState(since);
  const { value, error } = useLoad(() => (target ? api.blame(target, since || undefined) : Promise.resolve(null)), [target, since]);
  const go = () => navigate(href('blame', null, { target: draft.trim(), since: draftSince.trim() }));
  return (
    <div className="view blame-view" data-testid="blame">
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          go();
        }}
      >
        <h2>Blame</h2>
        <input className="filter wide" placeholder="orders · file:web-1:/etc/nginx/nginx.conf · http:api:/v1/users/* · k8s:deployment/prod/web" value={draft} onChange={(e) => setDraft(e.target.value)} data-testid="blame-target" />
        <input className="filter" placeholder="last known good (ISO time)" value={draftSince} onChange={(e) => setDraftSince(e.target.value)} data-testid="blame-since" />
        <button type="submit">Blame</button>
      </form>
      {!target && <Empty>Name a table, a file on an SSH connection, an HTTP path or a Kubernetes object.</Empty>}
      <ErrorLine error={error} />
      {value && (
        <>
          <div className="muted" data-testid="blame-summary">
            {value.target}: {value.entries.length} command{value.entries.length === 1 ? '' : 's'}
            {value.since ? `, last known good ${value.since}` : ''}
          </div>
          {value.entries.length === 0 && <Empty>No recorded command touched {value.target}.</Empty>}
          <ol className="blame-entries">
            {value.entries.map((e) => (
              <li key={e.commandId} className={`blame-entry ${e.firstWriteSince ? 'first-write' : ''}`} data-testid="blame-entry" data-access={e.access} data-first={e.firstWriteSince ? '1' : '0'}>
                <div className="run-step-head">
                  <span className="muted">{fmtTime(e.at)}</span>
                  <span>{e.identity ?? '—'}</span>
                  {e.run ? (
                    <a className="mono" href={href('runs', e.run)} data-testid="blame-run">
                      {shortId(e.run)}
                    </a>
                  ) : (
                    <span className="muted">no run</span>
                  )}
                  <a className="mono" href={href('session', e.sessionId, { cmd: e.commandId })} data-testid="blame-session">
                    {e.connection} {shortId(e.sessionId)} #{e.index}
                  </a>
                  <KindTag kind={e.kind} />
                  <span className={`tag access-${e.access}`}>{e.access}</span>
                  <StatusPill status={e.status} />
                  <span className="mono run-step-text">{e.text.slice(0, 300)}</span>
                </div>
                {e.firstWriteSince && <div className="warn">first write after the last known good time</div>}
                {e.error && <div className="error-line">{e.error}</div>}
                {e.cause && (
                  <div className="muted" data-testid="blame-cause">
                    caused by model call <a href={href('session', e.cause.sessionId, { cmd: e.cause.commandId })}>#{e.cause.index}</a>: {e.cause.text.slice(0, 200)}
                  </div>
                )}
                {e.change?.tag && (
                  <div className="muted">
                    {e.change.tag}
                    {e.change.rowCount !== null && e.change.rowCount !== undefined ? ` (${e.change.rowCount} rows)` : ''}
                  </div>
                )}
                {e.change?.unavailable && <div className="muted">change: {e.change.unavailable}</div>}
                {e.change && e.change.after !== undefined && <DiffView original={e.change.before ?? ''} modified={e.change.after ?? ''} language="plaintext" height={160} />}
              </li>
            ))}
          </ol>
        </>
      )}
    </div>
  );
}
