/** Runs: the list (who ran which agent, how it ended, what it did) and one run as a timeline across its sessions. */
import { useMemo, useState } from 'react';
import type { RunCommandStep, RunStep, RunTimeline } from '../../gateway/common/api-types';
import { api } from '../api';
import { Empty, ErrorLine, KindTag, StatusPill, useLoad } from '../components/common';
import { DiffView } from '../components/monaco';
import { fmtDuration, fmtTime, shortId } from '../format';
import { href, navigate, type Route } from '../router';
import { useBundleMode } from '../components/read-only';
import './runs-view.css';

export function RunsView({ route }: { route: Route }) {
  return route.id ? <RunTimelineView id={route.id} route={route} /> : <RunsList />;
}

function RunsList() {
  const { value, error } = useLoad(() => api.runs(), []);
  const bundles = useBundleMode();
  if (error) return <ErrorLine error={error} />;
  if (!value) return <Empty>loading…</Empty>;
  return (
    <div className="view runs-view" data-testid="runs">
      <div className="toolbar">
        <h2>Runs</h2>
        <span className="muted">{value.length} runs</span>
      </div>
      {value.length === 0 && <Empty>{bundles ? 'The opened bundles hold no agent runs.' : 'No agent runs recorded.'}</Empty>}
      <table className="runs-table">
        <thead>
          <tr>
            <th>run</th>
            <th>started</th>
            <th>identity</th>
            <th>agent</th>
            <th>took</th>
            <th>exit</th>
            <th>sessions</th>
            <th>commands</th>
            <th>writes</th>
            <th>findings</th>
            <th>blocked</th>
            <th>held</th>
          </tr>
        </thead>
        <tbody>
          {value.map((r) => (
            <tr key={r.id} data-testid="run-row" data-run={r.id}>
              <td className="mono">
                <a href={href('runs', r.id)}>{shortId(r.id)}</a>
              </td>
              <td>{fmtTime(r.startedAt)}</td>
              <td>{r.identity ?? '—'}</td>
              <td className="mono">{r.argv.join(' ').slice(0, 80)}</td>
              <td>{r.endedAt ? fmtDuration(Date.parse(r.endedAt) - Date.parse(r.startedAt)) : 'running'}</td>
              <td>{r.exitCode ?? '—'}</td>
              <td>{r.sessions.length}</td>
              <td>{r.counts?.commands ?? '—'}</td>
              <td>{r.counts?.writes ?? '—'}</td>
              <td>{r.counts?.findings ?? '—'}</td>
              <td>{r.counts?.blocked ?? '—'}</td>
              <td>{r.counts?.held ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const LANGUAGES: Record<string, string> = { ts: 'typescript', tsx: 'typescript', js: 'javascript', jsx: 'javascript', json: 'json', py: 'python', go: 'go', rs: 'rust', sql: 'sql', yaml: 'yaml', yml: 'yaml', md: 'markdown', sh: 'shell', css: 'css', html: 'html' };

function languageOf(path: string): string {
  return LANGUAGES[path.slice(path.lastIndexOf('.') + 1).toLowerCase()] ?? 'plaintext';
}

interface Filters {
  protocol: string;
  kind: string;
  writes: boolean;
  errors: boolean;
  findings: boolean;
}

/** Filters pick commands (never whole sessions); a command's findings follow it. */
function visibleSteps(t: RunTimeline, f: Filters): RunStep[] {
  const withFindings = new Set(t.steps.filter((s) => s.type === 'finding' && s.commandId !== null).map((s) => (s.type === 'finding' ? s.commandId : null)));
  const keep = new Set<number>();
  for (const s of t.steps) {
    if (s.type !== 'command') continue;
    if (f.protocol && s.protocol !== f.protocol) continue;
    if (f.kind && s.kind !== f.kind) continue;
    // the code an agent wrote on its own machine is a write too
    if (f.writes && !s.write && !s.edits?.length) continue;
    if (f.errors && s.status !== 'error' && s.status !== 'blocked') continue;
    if (f.findings && !withFindings.has(s.commandId)) continue;
    keep.add(s.commandId);
  }
  const any = f.protocol || f.kind || f.writes || f.errors || f.findings;
  return t.steps.filter((s) => (s.type === 'command' ? keep.has(s.commandId) : s.commandId !== null ? keep.has(s.commandId) : !any));
}

const BUCKETS = 60;

interface Bucket {
  from: number;
  to: number;
  commands: RunCommandStep[];
  errors: number;
  protocol: string;
}

/** Activity over the run's time, in equal buckets: how many commands, which protocol most, any error. */
function buckets(commands: RunCommandStep[]): Bucket[] {
  if (commands.length === 0) return [];
  const times = commands.map((c) => Date.parse(c.at));
  // no spread: a run of 100k commands would overflow the argument list
  const start = times.reduce((a, b) => Math.min(a, b));
  const span = Math.max(times.reduce((a, b) => Math.max(a, b)) - start, 1);
  const out: Bucket[] = Array.from({ length: BUCKETS }, (_, i) => ({ from: start + (span * i) / BUCKETS, to: start + (span * (i + 1)) / BUCKETS, commands: [], errors: 0, protocol: '' }));
  commands.forEach((c, i) => {
    const b = out[Math.min(BUCKETS - 1, Math.floor(((times[i] - start) / span) * BUCKETS))];
    b.commands.push(c);
    if (c.status === 'error' || c.status === 'blocked') b.errors++;
  });
  for (const b of out) {
    const n = new Map<string, number>();
    for (const c of b.commands) n.set(c.protocol, (n.get(c.protocol) ?? 0) + 1);
    b.protocol = [...n.entries()].sort((x, y) => y[1] - x[1])[0]?.[0] ?? '';
  }
  return out;
}

function Minimap({ commands, label, onJump }: { commands: RunCommandStep[]; label: (cid: number) => string; onJump: (b: Bucket) => void }) {
  const bs = useMemo(() => buckets(commands), [commands]);
  const max = Math.max(1, ...bs.map((b) => b.commands.length));
  if (bs.length === 0) return null;
  return (
    <div className="run-minimap" data-testid="run-minimap" role="navigation" aria-label="activity over time">
      {bs.map((b, i) => (
        <button
          key={i}
          type="button"
          className={`mm-bucket ${b.commands.length === 0 ? 'mm-empty' : b.errors > 0 ? 'mm-error' : `mm-${b.protocol}`}`}
          style={{ height: `${b.commands.length === 0 ? 2 : 6 + Math.round((b.commands.length / max) * 22)}px` }}
          disabled={b.commands.length === 0}
          onClick={() => onJump(b)}
          title={b.commands.length ? `${new Date(b.from).toISOString().slice(11, 23)} · ${b.commands.length} command${b.commands.length === 1 ? '' : 's'} (${b.commands.slice(0, 5).map((c) => label(c.commandId)).join(', ')}${b.commands.length > 5 ? ', …' : ''})${b.errors ? ` · ${b.errors} failed` : ''}` : ''}
          data-testid={b.commands.length ? 'minimap-bucket' : undefined}
          data-errors={b.errors}
          data-first={b.commands[0] ? label(b.commands[0].commandId) : undefined}
        />
      ))}
    </div>
  );
}

function RunTimelineView({ id, route }: { id: string; route: Route }) {
  const { value, error } = useLoad(() => api.run(id), [id]);
  const p = route.params;
  const [f, setF] = useState<Filters>({ protocol: p.get('protocol') ?? '', kind: p.get('kind') ?? '', writes: p.get('writes') === '1', errors: p.get('errors') === '1', findings: p.get('findings') === '1' });
  const steps = useMemo(() => (value ? visibleSteps(value, f) : []), [value, f]);
  const [focused, setFocused] = useState<number | null>(null);
  const allCommands = useMemo(() => (value ? value.steps.filter((s): s is RunCommandStep => s.type === 'command') : []), [value]);
  if (error) return <ErrorLine error={error} />;
  if (!value) return <Empty>loading…</Empty>;
  const t = value;
  const sessionNo = new Map(t.sessions.map((s, i) => [s.id, i + 1]));
  const commands = new Map(t.steps.filter((s): s is RunCommandStep => s.type === 'command').map((s) => [s.commandId, s]));
  const label = (cid: number | null): string => {
    const c = cid === null ? undefined : commands.get(cid);
    return c ? `S${sessionNo.get(c.sessionId) ?? '?'}#${c.index}` : `command ${cid ?? ''}`;
  };
  const jump = (cid: number) => {
    setFocused(cid);
    document.querySelector(`[data-step="${cid}"]`)?.scrollIntoView({ block: 'center' });
  };
  // that moment: the bucket's first command the filters show, else the next one shown after it
  const jumpTo = (b: Bucket) => {
    const shown = steps.filter((s): s is RunCommandStep => s.type === 'command');
    const ids = new Set(shown.map((s) => s.commandId));
    const target = b.commands.find((c) => ids.has(c.commandId)) ?? shown.find((s) => Date.parse(s.at) >= b.from) ?? shown[shown.length - 1];
    if (target) jump(target.commandId);
  };
  const protocols = [...new Set(t.sessions.map((s) => s.protocol))];
  const kinds = [...new Set([...commands.values()].map((c) => c.kind))];
  const c = t.counts;
  return (
    <div className="view run-view" data-testid="run-timeline">
      <div className="toolbar">
        <h2>
          Run <span className="mono">{shortId(t.id)}</span>
        </h2>
        <span className="muted">
          {t.identity ?? '—'} · <span className="mono">{t.argv.join(' ').slice(0, 80)}</span> · {fmtTime(t.startedAt)} · {t.exitCode === null ? (t.endedAt ? 'ended' : 'running') : `exit ${t.exitCode}`}
        </span>
      </div>
      <div className="run-counts muted" data-testid="run-counts">
        {t.sessions.length} sessions · {c.commands} commands · {c.writes} writes · {c.findings} findings · {c.blocked} blocked · {c.held} held
      </div>
      <div className="toolbar run-filters">
        <select value={f.protocol} onChange={(e) => setF({ ...f, protocol: e.target.value })} data-testid="filter-protocol">
          <option value="">all protocols</option>
          {protocols.map((x) => (
            <option key={x}>{x}</option>
          ))}
        </select>
        <select value={f.kind} onChange={(e) => setF({ ...f, kind: e.target.value })} data-testid="filter-kind">
          <option value="">all kinds</option>
          {kinds.map((x) => (
            <option key={x}>{x}</option>
          ))}
        </select>
        {(['writes', 'errors', 'findings'] as const).map((k) => (
          <label key={k}>
            <input type="checkbox" checked={f[k]} onChange={(e) => setF({ ...f, [k]: e.target.checked })} data-testid={`filter-${k}`} /> {k} only
          </label>
        ))}
        <span className="muted" data-testid="step-count">
          {steps.filter((s) => s.type === 'command').length} of {c.commands} commands
        </span>
      </div>
      <Minimap commands={allCommands} label={label} onJump={jumpTo} />
      {steps.length === 0 && <Empty>No command in this run matches the filters.</Empty>}
      <ol className="run-steps">
        {steps.map((s) =>
          s.type === 'finding' ? (
            <li key={`f${s.findingId}`} className={`run-finding cat-${s.category}`} data-testid="run-finding">
              <span className={`cat cat-${s.category}`}>{s.category}</span> {s.kind}
              {s.action ? ` · ${s.action}` : ''}
              {s.outcome ? ` → ${s.outcome}` : ''}
              {s.commandId !== null && <span className="muted"> on {label(s.commandId)}</span>}
            </li>
          ) : (
            <li
              key={s.commandId}
              className={`run-step status-${s.status}${focused === s.commandId ? ' focused' : ''}`}
              data-testid="run-step"
              data-step={s.commandId}
              data-kind={s.kind}
              data-focused={focused === s.commandId ? '1' : undefined}
            >
              <div className="run-step-head">
                <span className="mono muted">{s.at.slice(11, 19)}</span>
                <span className="mono" data-testid="step-label">
                  {label(s.commandId)}
                </span>
                <KindTag kind={s.kind} />
                <StatusPill status={s.status} />
                {s.write && <span className="tag">write</span>}
                <span className="mono run-step-text">{s.text.slice(0, 300)}</span>
                {s.summary && <span className="muted">→ {s.summary}</span>}
                <a href={href('session', s.sessionId, { cmd: s.commandId })} data-testid="step-session-link">
                  session ↗
                </a>
                {s.protocol === 'ssh' && s.startUs !== undefined && (
                  <a href={href('replay', s.sessionId, { t: s.startUs })} data-testid="step-replay-link">
                    replay ↗
                  </a>
                )}
              </div>
              {s.reply && <div className="run-reply muted">reply: {s.reply.slice(0, 400)}</div>}
              {s.toolCalls.map((tc, i) => (
                <div key={i} className="run-tool mono" data-testid="tool-call">
                  tool call {tc.name}({tc.arguments.slice(0, 300)})
                </div>
              ))}
              {(s.edits ?? []).map((e, i) => (
                <div key={`e${i}`} className="run-edit" data-testid="agent-edit">
                  <div className="mono">
                    {e.tool}{' '}
                    <a href={href('blame', null, { target: `file:local:${e.path}` })} data-testid="agent-edit-blame">
                      file:local:{e.path}
                    </a>
                    {e.after === null ? ' (deleted)' : e.before === null ? ' (whole file)' : ''}
                  </div>
                  <DiffView original={e.before ?? ''} modified={e.after ?? ''} language={languageOf(e.path)} height={140} />
                </div>
              ))}
              {s.error && <div className="error-line">{s.error}</div>}
              {s.retriedBy !== undefined && commands.has(s.retriedBy) && (
                <div className="run-retry" data-testid="retry-pair">
                  <button type="button" className="linkish" onClick={() => jump(s.retriedBy!)} data-testid="retried-in">
                    ↻ retried in {label(s.retriedBy)}
                  </button>
                  <DiffView original={s.text} modified={commands.get(s.retriedBy)!.text} language={s.kind === 'sql' ? 'sql' : 'plaintext'} height={80} />
                </div>
              )}
              <div className="run-lineage">
                {s.retryOf !== undefined && (
                  <button type="button" className="linkish" onClick={() => jump(s.retryOf!)} data-testid="retry-of">
                    ↻ retry of {label(s.retryOf)}
                  </button>
                )}
                {s.causedBy !== null && (
                  <button type="button" className="linkish" onClick={() => jump(s.causedBy!)} data-testid="caused-by">
                    ← caused by {label(s.causedBy)}
                  </button>
                )}
                {s.caused.map((cid) => (
                  <button key={cid} type="button" className="linkish" onClick={() => jump(cid)} data-testid="caused">
                    → caused {label(cid)}
                  </button>
                ))}
              </div>
            </li>
          ),
        )}
      </ol>
      <p className="muted">
        <a href={href('sessions', null, { run: t.id })}>the run's sessions</a> · <a href="#/runs" onClick={(e) => (e.preventDefault(), navigate('#/runs'))}>all runs</a>
      </p>
    </div>
  );
}
