/** Findings: every secret sighting and guardrail decision, grouped by kind and fingerprint, each linking into its session. */
import { useMemo } from 'react';
import type { FindingView } from '../../gateway/common/api-types';
import { api } from '../api';
import { Empty, ErrorLine, useLive, useLoad } from '../components/common';
import { fmtTime, prettyJson, shortId } from '../format';
import { href, type Route } from '../router';
import { ToolChangedDiff } from './mcp-detail';
import { useBundleMode } from '../components/read-only';

interface Group {
  key: string;
  category: string;
  kind: string;
  byFp: Array<{ fp: string | null; findings: FindingView[] }>;
  count: number;
}

function group(findings: FindingView[]): Group[] {
  const groups = new Map<string, Group>();
  for (const f of findings) {
    const key = `${f.category}:${f.kind}`;
    let g = groups.get(key);
    if (!g) {
      g = { key, category: f.category, kind: f.kind, byFp: [], count: 0 };
      groups.set(key, g);
    }
    g.count++;
    let sub = g.byFp.find((x) => x.fp === f.fp);
    if (!sub) {
      sub = { fp: f.fp, findings: [] };
      g.byFp.push(sub);
    }
    sub.findings.push(f);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count);
}

/** The command as its session numbers it (`#1`, as the session view shows it), not the store's row id. */
function commandLabel(f: FindingView): string {
  if (f.commandId !== null) return typeof f.commandIndex === 'number' ? `#${f.commandIndex}` : `command ${f.commandId}`;
  return f.eventSeq !== null ? `event ${f.eventSeq}` : '';
}

export function FindingsView({ route }: { route: Route }) {
  const sessionFilter = route.params.get('session');
  const bundles = useBundleMode();
  const { value, error, reload } = useLoad(() => api.findings(), []);
  useLive((msgs) => {
    if (msgs.some((m) => m.type === 'finding')) reload();
  }, 1000);
  const groups = useMemo(() => group((value ?? []).filter((f) => !sessionFilter || f.sessionId === sessionFilter)), [value, sessionFilter]);
  if (error) return <ErrorLine error={error} />;
  if (!value) return <Empty>loading…</Empty>;
  return (
    <div className="view findings-view" data-testid="findings">
      <div className="toolbar">
        <h2>Findings</h2>
        {sessionFilter && (
          <span className="tag">
            session {shortId(sessionFilter)} <a href={href('findings')}>✕</a>
          </span>
        )}
        <span className="muted">
          {groups.reduce((n, g) => n + g.count, 0)} findings in {groups.length} kinds · values are always masked
        </span>
      </div>
      {groups.length === 0 && <Empty>{bundles ? 'The opened bundles hold no secret sightings and no guardrail decisions.' : 'No secrets seen and no guardrail decisions.'}</Empty>}
      <div className="finding-groups">
        {groups.map((g) => (
          <section key={g.key} className={`fgroup cat-${g.category}`} data-testid="finding-group" data-kind={g.kind}>
            <h3>
              <span className={`cat cat-${g.category}`}>{g.category}</span> {g.kind} <span className="muted">× {g.count}</span>
            </h3>
            {g.byFp.map((s) => (
              <div key={s.fp ?? '-'} className="fp-group">
                <div className="fp mono">{s.fp ? `[MASKED:${g.kind}:${s.fp}]` : '(no fingerprint)'} <span className="muted">seen {s.findings.length}×</span></div>
                {s.findings.slice(0, 200).map((f) => (
                  <a
                    key={f.id}
                    className="finding"
                    href={f.sessionId ? href('session', f.sessionId, { cmd: f.commandId }) : '#/findings'}
                    data-testid="finding-link"
                  >
                    <span className="mono">{f.sessionId ? shortId(f.sessionId) : '—'}</span>
                    <span data-testid="finding-command">{commandLabel(f)}</span>
                    <span className={f.seenByAgent ? 'warn' : 'muted'}>
                      {f.direction}
                      {f.seenByAgent ? ' · seen by agent' : f.direction === 'client→upstream' ? ' · sent by agent' : ''}
                    </span>
                    <span className="muted">{f.maskedLive ? 'masked live' : ''}</span>
                    <span className="muted">{fmtTime(f.createdAt)}</span>
                    {f.detail !== null && <span className="muted detail-text">{prettyJson(f.detail).replace(/\s+/g, ' ').slice(0, 140)}</span>}
                  </a>
                ))}
                {g.kind === 'tool-changed' && s.findings.slice(0, 20).map((f) => <ToolChangedDiff key={`diff-${f.id}`} f={f} />)}
              </div>
            ))}
          </section>
        ))}
      </div>
    </div>
  );
}
