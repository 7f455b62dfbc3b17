/** Session: header, the timeline of commands, and the selected command's detail. */
import { useCallback, useEffect, useMemo } from 'react';
import type { CommandView, SessionDetail } from '../../gateway/common/api-types';
import { api } from '../api';
import { Empty, ErrorLine, KindTag, LiveBadge, StatusPill, useLive, useLoad } from '../components/common';
import { VirtualList } from '../components/virtual-list';
import { fmtDuration, fmtTime, isRecord } from '../format';
import { href, navigate, type Route } from '../router';
import { CommandDetail } from './command-detail';
import { BundleSessionBadge, isBundleSession, useBundles } from '../components/bundle-trust';
import { stripSystemReminders } from '../../gateway/common/reminders';

export function SessionView({ route }: { route: Route }) {
  const id = route.id ?? '';
  const { value: session, error, reload } = useLoad(() => api.session(id), [id]);
  useLive((msgs) => {
    if (msgs.some((m) => (m.type === 'command' || m.type === 'session' || m.type === 'finding') && m.sessionId === session?.id)) reload();
  }, 600);
  const cmdParam = route.params.get('cmd');
  const selectedId = cmdParam ? Number(cmdParam) : null;
  // a model call reads as the human's prompt, in the list and in its detail, as in the run timeline
  const commands = useMemo(() => (session?.commands ?? []).map((c) => (c.kind === 'llm' ? { ...c, text: stripSystemReminders(c.text) } : c)), [session]);
  const selectedIndex = useMemo(() => commands.findIndex((c) => c.id === selectedId), [commands, selectedId]);
  const selected = selectedIndex >= 0 ? commands[selectedIndex] : null;

  useEffect(() => {
    // Open on the first command, so a session never shows an empty right pane.
    if (session && selectedId === null && commands.length > 0) navigate(href('session', session.id, { cmd: commands[0].id }), true);
  }, [session, selectedId, commands]);

  const select = useCallback((c: CommandView) => navigate(href('session', c.sessionId, { cmd: c.id }), true), []);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!session || (e.target instanceof HTMLElement && /INPUT|SELECT|TEXTAREA/.test(e.target.tagName))) return;
      if (e.key === 'j' || e.key === 'ArrowDown') {
        const next = commands[Math.min(selectedIndex + 1, commands.length - 1)];
        if (next) select(next);
      } else if (e.key === 'k' || e.key === 'ArrowUp') {
        const prev = commands[Math.max(selectedIndex - 1, 0)];
        if (prev) select(prev);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [session, commands, selectedIndex, select]);

  const renderRow = useCallback(
    (i: number) => {
      const c = commands[i];
      return (
        <button className={`cmd-row ${c.id === selectedId ? 'selected' : ''}`} onClick={() => select(c)} data-testid="command-row" data-command={c.id}>
          <span className="cmd-idx">{c.index}</span>
          <KindTag kind={c.kind} />
          <span className="cmd-text mono">{c.text.replace(/\s+/g, ' ').slice(0, 300)}</span>
          <span className="cmd-meta">
            <StatusPill status={c.status} />
            <span className="muted">{fmtDuration(c.durationMs)}</span>
            <span className="muted summary">{summary(c)}</span>
          </span>
        </button>
      );
    },
    [commands, selectedId, select],
  );

  if (error) return <ErrorLine error={error} />;
  if (!session) return <Empty>loading…</Empty>;
  return (
    <div className="view session-view">
      <SessionHeader s={session} />
      <div className="split">
        <div className="timeline" data-testid="timeline">
          {commands.length === 0 ? <Empty>No commands in this session.</Empty> : <VirtualList count={commands.length} rowHeight={52} renderRow={renderRow} scrollTo={selectedIndex} />}
        </div>
        <div className="detail-pane">{selected ? <CommandDetail key={selected.id} command={selected} session={session} /> : <Empty>Select a command.</Empty>}</div>
      </div>
    </div>
  );
}

function SessionHeader({ s }: { s: SessionDetail }) {
  const fromBundle = isBundleSession(s.meta);
  const bundles = useBundles();
  return (
    <div className="session-head" data-testid="session-head" data-session={s.id}>
      <div className="sh-title">
        <KindTag kind={s.protocol} />
        <b>{s.connection}</b>
        <span className="muted">by</span>
        <b>{s.identity ?? 'unknown'}</b>
        {s.status === 'live' ? <LiveBadge /> : <StatusPill status={s.status} />}
        {s.sealed && !fromBundle && (
          <span className="tag sealed" title={s.integrity?.message ?? (s.seal ? `sealed, key ${s.sealKey ?? ''}` : '')} data-testid="sealed-badge">
            ✓ sealed{s.integrity?.state === 'legacy' ? ' (events only)' : ''}
          </span>
        )}
        {s.integrity?.state === 'bad' && (
          <span className="tag bundle-failed" title={s.integrity.message} data-testid="sealed-badge">
            ✗ NOT verified
          </span>
        )}
        <BundleSessionBadge meta={s.meta} bundles={bundles} />
      </div>
      <div className="sh-meta muted">
        <span className="mono">{s.id}</span> · started {fmtTime(s.startedAt)} · {s.status === 'live' ? 'running' : fmtDuration(s.durationMs)} · {s.commandCount} commands ·{' '}
        {s.eventCount} events · {s.findingCount} findings
        {s.run && (
          <>
            {' · run '}
            <a className="mono" href={href('sessions', null, { run: s.run })} title="this run's sessions" data-testid="session-run-link">
              {s.run}
            </a>
          </>
        )}
        {s.endReason ? ` · ${s.endReason}` : ''}
      </div>
      <div className="sh-actions">
        <a className="btn" href={href('replay', s.id)} data-testid="open-replay">
          ▶ Replay
        </a>
        <a className="btn" href={href('diffs', s.id)} data-testid="open-diffs">
          ⇆ Diffs
        </a>
        {s.findingCount > 0 && (
          <a className="btn" href={href('findings', null, { session: s.id })}>
            ⚑ Findings ({s.findingCount})
          </a>
        )}
      </div>
    </div>
  );
}

/** One line about a command's result: rows, exit code, HTTP status, tokens. */
export function summary(c: CommandView): string {
  const r = c.result;
  if (!isRecord(r)) return c.error ? c.error.slice(0, 80) : '';
  if (c.kind === 'sql') return typeof r.rowCount === 'number' ? `${r.rowCount} row${r.rowCount === 1 ? '' : 's'}` : typeof r.tag === 'string' ? r.tag : '';
  if (c.kind === 'http' || c.kind === 'llm') {
    const tools = Array.isArray(r.toolCalls) && r.toolCalls.length ? ` · ${r.toolCalls.length} tool call${r.toolCalls.length === 1 ? '' : 's'}` : '';
    return `${r.status ?? ''}${tools}`;
  }
  if ('exitCode' in r) return `exit ${String(r.exitCode)}`;
  return '';
}
