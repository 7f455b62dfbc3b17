/**
 * Diffs: files written over SFTP (before/after), successive attempts of the same command (an
 * agent retrying a failing migration), and any two commands the reviewer picks.
 */
import { useMemo } from 'react';
import type { CommandView } from '../../gateway/common/api-types';
import { api } from '../api';
import { Empty, ErrorLine, KindTag, StatusPill, useLoad } from '../components/common';
import { DiffView, languageOf } from '../components/monaco';
import { isRecord, prettyJson } from '../format';
import { href, navigate, type Route } from '../router';

interface Pair {
  kind: 'file' | 'retry' | 'pick';
  title: string;
  original: string;
  modified: string;
  language: string;
  a: CommandView | null;
  b: CommandView;
}

/** What a reviewer compares for a command: its text, then how it ended. */
function commandDoc(c: CommandView): string {
  const r = isRecord(c.result) ? c.result : null;
  const lines = [c.text, '', `-- status: ${c.status}`];
  if (c.error) lines.push(`-- error: ${c.error}`);
  if (r && c.kind === 'sql' && (r.tag || typeof r.rowCount === 'number')) {
    lines.push(`-- result: ${[r.tag, typeof r.rowCount === 'number' ? `${r.rowCount} rows` : null].filter(Boolean).join(', ')}`);
  }
  else if (r && 'exitCode' in r) lines.push(`-- exit: ${String(r.exitCode)}`);
  else if (r && 'status' in r) lines.push(`-- http status: ${String(r.status)}`);
  return lines.join('\n');
}

/** Commands that are attempts at the same thing: same kind and targets, or the same first words. */
function signature(c: CommandView): string {
  if (c.targets.length) return `${c.kind}:${[...c.targets].sort().join(',')}`;
  return `${c.kind}:${c.text.trim().split(/\s+/).slice(0, 3).join(' ').toLowerCase()}`;
}

export function retryPairs(commands: CommandView[]): Array<[CommandView, CommandView]> {
  const last = new Map<string, CommandView>();
  const pairs: Array<[CommandView, CommandView]> = [];
  for (const c of commands) {
    if (c.kind === 'sftp' || c.kind === 'llm') continue;
    const sig = signature(c);
    const prev = last.get(sig);
    // a retry follows a failure; identical successes (polling) are not interesting
    if (prev && (prev.status === 'error' || prev.status === 'blocked') && prev.text !== c.text) pairs.push([prev, c]);
    last.set(sig, c);
  }
  return pairs;
}

export function DiffsView({ route }: { route: Route }) {
  const id = route.id ?? '';
  const { value: session, error } = useLoad(() => api.session(id), [id]);
  const aId = Number(route.params.get('a') ?? NaN);
  const bId = Number(route.params.get('b') ?? NaN);
  const pairs = useMemo<Pair[]>(() => {
    if (!session) return [];
    const out: Pair[] = [];
    for (const c of session.commands) {
      const r = isRecord(c.result) ? c.result : null;
      const d = r && isRecord(r.diff) ? r.diff : null;
      if (c.kind === 'sftp' && d && typeof d.after === 'string') {
        out.push({ kind: 'file', title: String(r?.path ?? c.text), original: typeof d.before === 'string' ? d.before : '', modified: d.after, language: 'plaintext', a: null, b: c });
      }
      // a Kubernetes object a kubectl command changed: the gateway recorded it before and after
      if (c.kind === 'kubectl' && r && ((r.before ?? null) !== null || (r.after ?? null) !== null)) {
        const doc = (v: unknown): string => (v === null || v === undefined ? '' : prettyJson(v));
        out.push({ kind: 'file', title: c.targets[0] ?? c.text, original: doc(r.before), modified: doc(r.after), language: 'json', a: null, b: c });
      }
    }
    for (const [a, b] of retryPairs(session.commands)) {
      out.push({ kind: 'retry', title: `#${a.index} → #${b.index} ${b.text.replace(/\s+/g, ' ').slice(0, 60)}`, original: commandDoc(a), modified: commandDoc(b), language: languageOf(b.kind), a, b });
    }
    return out;
  }, [session]);
  if (error) return <ErrorLine error={error} />;
  if (!session) return <Empty>loading…</Empty>;
  const commands = session.commands;
  const a = commands.find((c) => c.id === aId) ?? null;
  const b = commands.find((c) => c.id === bId) ?? null;
  const picked: Pair | null = a && b ? { kind: 'pick', title: `#${a.index} ↔ #${b.index}`, original: commandDoc(a), modified: commandDoc(b), language: languageOf(b.kind), a, b } : null;
  const sel = route.params.get('sel');
  const active = picked ?? pairs[Number(sel ?? 0)] ?? null;
  const setPick = (k: 'a' | 'b', v: string) => {
    const p = { a: route.params.get('a'), b: route.params.get('b'), [k]: v };
    navigate(href('diffs', session.id, p), true);
  };
  return (
    <div className="view diffs-view">
      <div className="diff-side">
        <a href={href('session', session.id)} className="back">
          ← {session.connection} · {session.identity ?? 'unknown'}
        </a>
        <h3>Files written</h3>
        {pairs.filter((p) => p.kind === 'file').length === 0 && <div className="muted small">none recorded</div>}
        {pairs.map((p, i) =>
          p.kind === 'file' ? (
            <a key={i} className={`diff-item ${active === p ? 'selected' : ''}`} href={href('diffs', session.id, { sel: i })} data-testid="diff-file">
              📄 <span className="mono">{p.title}</span>
            </a>
          ) : null,
        )}
        <h3>Retries</h3>
        {pairs.filter((p) => p.kind === 'retry').length === 0 && <div className="muted small">no failed command was retried</div>}
        {pairs.map((p, i) =>
          p.kind === 'retry' ? (
            <a key={i} className={`diff-item ${active === p ? 'selected' : ''}`} href={href('diffs', session.id, { sel: i })} data-testid="diff-retry">
              <StatusPill status={p.a?.status ?? ''} /> → <StatusPill status={p.b.status} /> <span className="mono">{p.title}</span>
            </a>
          ) : null,
        )}
        <h3>Compare any two</h3>
        <select value={a?.id ?? ''} onChange={(e) => setPick('a', e.target.value)} data-testid="pick-a">
          <option value="">left…</option>
          {commands.map((c) => (
            <option key={c.id} value={c.id}>
              #{c.index} {c.kind} {c.text.replace(/\s+/g, ' ').slice(0, 60)}
            </option>
          ))}
        </select>
        <select value={b?.id ?? ''} onChange={(e) => setPick('b', e.target.value)} data-testid="pick-b">
          <option value="">right…</option>
          {commands.map((c) => (
            <option key={c.id} value={c.id}>
              #{c.index} {c.kind} {c.text.replace(/\s+/g, ' ').slice(0, 60)}
            </option>
          ))}
        </select>
      </div>
      <div className="diff-main">
        {active ? (
          <>
            <div className="diff-title">
              {active.a && <KindTag kind={active.a.kind} />}
              <b className="mono">{active.title}</b>
              <span className="muted">{active.kind === 'file' ? 'before ↔ after' : active.kind === 'retry' ? 'failed attempt ↔ next attempt' : 'left ↔ right'}</span>
            </div>
            <DiffView key={`${active.kind}-${active.a?.id ?? ''}-${active.b.id}`} original={active.original} modified={active.modified} language={active.language} />
          </>
        ) : (
          <Empty>Nothing to compare yet: pick two commands on the left.</Empty>
        )}
      </div>
    </div>
  );
}

