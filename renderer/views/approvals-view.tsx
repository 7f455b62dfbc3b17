/**
 * Commands a guardrail holds for a human: the pending list (kept by the app shell so the nav
 * badge and the banner agree with the view), and the Approvals view that decides them.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { PendingApproval } from '../../gateway/common/api-types';
import { api, ApiError, decideApproval, live } from '../api';
import { bridge } from '../bridge';
import { Empty, ErrorLine, useLive } from '../components/common';
import { CodeView } from '../components/monaco';
import { fmtTime, shortId } from '../format';
import { href } from '../router';
import './approvals-view.css';

export interface PendingState {
  approvals: PendingApproval[] | null;
  error: unknown;
  reload: () => void;
}

/**
 * The pending approvals, refetched on every `approval` message of the live feed and whenever the
 * feed reconnects (messages sent while it was down are lost). In Electron a newly pending one
 * raises a desktop notification; ones already pending when the app opened do not.
 */
export function usePendingApprovals(enabled: boolean): PendingState {
  const [approvals, setApprovals] = useState<PendingApproval[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const seen = useRef<Set<string> | null>(null);
  const generation = useRef(0);
  const reload = useCallback(() => {
    if (!enabled) return;
    const mine = ++generation.current;
    api.approvals().then(
      (list) => {
        // an older answer arriving after a newer one must not bring back a decided approval
        if (mine !== generation.current) return;
        setApprovals(list);
        setError(null);
        const b = bridge();
        if (seen.current && b) {
          for (const a of list) if (!seen.current.has(a.id)) void b.notify('Flightlog: a command waits for approval', `${a.identity} on ${a.connection}: ${a.rule}`);
        }
        seen.current = new Set([...(seen.current ?? []), ...list.map((a) => a.id)]);
      },
      (e: unknown) => {
        if (mine === generation.current) setError(e);
      },
    );
  }, [enabled]);
  useEffect(() => {
    reload();
    const unsub = live.onState((s) => {
      if (s === 'live') reload();
    });
    return unsub;
  }, [reload]);
  useLive((msgs) => {
    if (msgs.some((m) => m.type === 'approval')) reload();
  }, 100);
  return { approvals, error, reload };
}

export function pendingLine(n: number): string {
  return `${n} command${n === 1 ? ' waits' : 's wait'} for approval`;
}

function languageOfProtocol(protocol: string): string {
  if (protocol === 'postgres') return 'pgsql';
  if (protocol === 'ssh') return 'shell';
  return 'plaintext';
}

function left(ms: number): string {
  if (ms <= 0) return 'expiring now';
  const s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

function useNow(everyMs: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

interface Decided {
  id: string;
  line: string;
  failed?: boolean;
}

export function ApprovalsView({ pending }: { pending: PendingState }) {
  const [decided, setDecided] = useState<Decided[]>([]);
  // decided here: hidden at once, before the refetch confirms it
  const [gone, setGone] = useState<Set<string>>(() => new Set());
  const now = useNow(1000);
  const note = useCallback((d: Decided) => {
    setDecided((list) => [d, ...list.filter((x) => x.id !== d.id)].slice(0, 5));
    setTimeout(() => setDecided((list) => list.filter((x) => x !== d)), 8000);
  }, []);
  const known = useRef(new Map<string, PendingApproval>());
  // decided in this window: its own line (with its scope) wins over the live feed's shorter echo
  const decidedHere = useRef(new Set<string>());
  for (const a of pending.approvals ?? []) known.current.set(a.id, a);
  // decisions made elsewhere (CLI, another window) still get their "decided by" line
  useLive((msgs) => {
    for (const m of msgs) {
      if (m.type !== 'approval' || m.state === 'pending' || decidedHere.current.has(m.id)) continue;
      const a = known.current.get(m.id);
      note({ id: m.id, line: `${m.state === 'approved' ? 'Approved' : 'Denied'} by ${m.by ?? 'someone'}${a ? `: ${a.rule} (${a.identity} on ${a.connection})` : ''}` });
    }
  }, 100);

  if (pending.error && !pending.approvals) return <ErrorLine error={pending.error} />;
  if (!pending.approvals) return <Empty>loading…</Empty>;
  const list = pending.approvals.filter((a) => !gone.has(a.id));
  return (
    <div className="view approvals-view" data-testid="approvals">
      <div className="toolbar">
        <h2>Approvals</h2>
        <span className="muted">commands a guardrail holds until a human decides · the text is masked by the gateway</span>
      </div>
      {decided.map((d) => (
        <div key={d.id} className={d.failed ? 'error-line' : 'approval-decided'} data-testid="approval-decided">
          {d.line}
        </div>
      ))}
      {list.length === 0 && <Empty>Nothing waits for approval.</Empty>}
      {list.map((a) => (
        <ApprovalCard
          key={a.id}
          approval={a}
          now={now}
          onDecided={(line, failed) => {
            if (!failed) decidedHere.current.add(a.id);
            setGone((s) => new Set(s).add(a.id));
            note({ id: a.id, line, failed });
            pending.reload();
          }}
        />
      ))}
    </div>
  );
}

function ApprovalCard({ approval: a, now, onDecided }: { approval: PendingApproval; now: number; onDecided: (line: string, failed?: boolean) => void }) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const decide = (decision: 'approve' | 'deny', scope?: 'run') => {
    setBusy(true);
    setError(null);
    const r = reason.trim();
    decideApproval(a.id, { decision, ...(r ? { reason: r } : {}), ...(scope ? { scope } : {}) }).then(
      (res) =>
        onDecided(
          `${res.decision === 'approve' ? 'Approved' : 'Denied'} by ${res.by}: ${a.rule} (${a.identity} on ${a.connection})${res.scope === 'run' ? ` and for the rest of run ${a.runId}` : ''}`,
        ),
      (e: unknown) => {
        // someone else (the CLI, another window) was first: the item is gone either way
        if (e instanceof ApiError && e.status === 409) return onDecided(e.message, true);
        setBusy(false);
        setError(e);
      },
    );
  };
  const expires = Date.parse(a.expiresAt);
  return (
    <section className="approval" data-testid="approval" data-id={a.id}>
      <div className="approval-facts">
        <span>
          <span className="muted">who</span> <b data-testid="approval-identity">{a.identity}</b>
        </span>
        <span>
          <span className="muted">connection</span> {a.connection} <span className="muted">({a.protocol})</span>
        </span>
        <span>
          <span className="muted">session</span>{' '}
          <a className="mono" href={href('session', a.sessionId)} data-testid="approval-session">
            {shortId(a.sessionId)}
          </a>
        </span>
        {a.runId && (
          <span>
            <span className="muted">run</span> <span className="mono">{a.runId}</span>
          </span>
        )}
        <span className="approval-expires" title={`expires ${fmtTime(a.expiresAt)}`} data-testid="approval-expires">
          <span className="muted">expires in</span> {Number.isFinite(expires) ? left(expires - now) : a.expiresAt}
        </span>
      </div>
      <div className="approval-rule" data-testid="approval-rule">
        <span className="muted">rule</span> <b>{a.rule}</b>
        {a.reason && <span>: {a.reason}</span>}
      </div>
      {(a.tables?.length || a.estimate !== undefined) && (
        <div className="approval-facts" data-testid="approval-sql">
          {a.tables?.length ? (
            <span>
              <span className="muted">tables</span> <span className="mono" data-testid="approval-tables">{a.tables.join(', ')}</span>
            </span>
          ) : null}
          {a.estimate !== undefined && (
            <span data-testid="approval-estimate" title="the planner's estimate (EXPLAIN, run read-only by the gateway), not a count">
              <span className="muted">estimate</span>{' '}
              {a.estimate ? (
                <>
                  <b>~{a.estimate.rows.toLocaleString()}</b> row{a.estimate.rows === 1 ? '' : 's'} <span className="muted">({a.estimate.node})</span>
                </>
              ) : (
                <span className="muted">none ({a.estimateError ?? 'unknown'})</span>
              )}
            </span>
          )}
        </div>
      )}
      {a.causedBy && (
        <div className="approval-cause" data-testid="approval-cause">
          <span className="muted">asked by the model reply to:</span>{' '}
          <a href={href('session', a.causedBy.sessionId, { cmd: a.causedBy.commandId })} data-testid="approval-cause-link">
            {a.causedBy.text}
          </a>
        </div>
      )}
      <div data-testid="approval-command">
        <CodeView value={a.commandText} language={languageOfProtocol(a.protocol)} />
      </div>
      <div className="approval-actions">
        <input
          className="approval-reason"
          placeholder="reason (optional, the agent sees it when denied)"
          value={reason}
          maxLength={500}
          onChange={(e) => setReason(e.target.value)}
          data-testid="approval-reason"
        />
        <button className="btn primary approve" disabled={busy} onClick={() => decide('approve')} data-testid="approve">
          Approve
        </button>
        {a.runId && (
          <button
            className="btn approve-run"
            disabled={busy}
            onClick={() => decide('approve', 'run')}
            title={`also approve later holds by rule ${a.rule} in run ${a.runId}, until the run ends`}
            data-testid="approve-run"
          >
            Approve for this run
          </button>
        )}
        <button className="btn deny" disabled={busy} onClick={() => decide('deny')} data-testid="deny">
          Deny
        </button>
      </div>
      <ErrorLine error={error} />
    </section>
  );
}
