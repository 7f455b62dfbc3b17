/**
 * Commands a guardrail held for a human: the gateway keeps each one pending until someone
 * approves or denies it (control API, CLI) or its rule's timeout denies it. The listener that
 * held the command waits on the outcome; other sessions go on.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { PolicyDecision, SessionRecorder } from './common/types';
import type { PendingApproval } from './common/api-types';
import { decisionDetail } from './policy/decision';

/** Seconds a hold waits when its rule names no timeout. */
export const DEFAULT_APPROVAL_TIMEOUT_SECONDS = 300;

export type { PendingApproval };

export interface ApprovalOutcome {
  decision: 'approve' | 'deny';
  /** the approver's name, `timeout`, or `cancelled` when the session closed first */
  by: string;
  reason: string | null;
}

export type ApprovalChange = { state: 'pending'; approval: PendingApproval } | { state: 'decided'; approval: PendingApproval; outcome: ApprovalOutcome };

/** What a hold learns a moment later (the planner's estimate): the hold is listed once it is known. */
export type ApprovalDetails = Pick<PendingApproval, 'estimate' | 'estimateError'>;

export type ApprovalRequest = Omit<PendingApproval, 'id' | 'commandSha256' | 'createdAt' | 'expiresAt'> & {
  timeoutSeconds?: number;
  /**
   * Started only when a human is actually asked (not for a hold approved for its run); settled
   * within a few seconds, the hold is listed and announced then (or after DETAILS_WAIT_MS).
   */
  details?: () => Promise<ApprovalDetails>;
};

/** Longest a hold stays unlisted waiting for its details: a slow EXPLAIN must not hide a hold. */
const DETAILS_WAIT_MS = 5000;

/** What a listener gets back: the approval as listed, and the outcome it waits for. */
export interface HeldCommand {
  approval: PendingApproval;
  outcome: Promise<ApprovalOutcome>;
  /** The session ended first: nobody is left to run the command. */
  cancel(): void;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function approvalId(): string {
  const bytes = randomBytes(10);
  let s = 'apr_';
  for (const b of bytes) s += BASE32[b & 31];
  return s;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

interface Entry {
  approval: PendingApproval;
  resolve(o: ApprovalOutcome): void;
  timer: NodeJS.Timeout;
  /** listed and told to the feed: a reviewer sees a hold once, complete */
  announced: boolean;
}

export interface ApprovalRegistryOptions {
  /** whether a run is still going: an approval for the run ends with it */
  runActive?(runId: string): boolean;
}

/** Decided ids remembered to tell "already decided" (409) from "unknown" (404). */
const REMEMBERED = 1000;

export class ApprovalRegistry {
  private readonly pending = new Map<string, Entry>();
  private readonly decided = new Map<string, ApprovalOutcome>();
  private readonly listeners = new Set<(c: ApprovalChange) => void>();
  /** run id → rule → who approved it for the rest of that run */
  private readonly runGrants = new Map<string, Map<string, string>>();

  constructor(private readonly opts: ApprovalRegistryOptions = {}) {}

  request(req: ApprovalRequest): HeldCommand {
    const { timeoutSeconds, details, ...rest } = req;
    const seconds = timeoutSeconds && timeoutSeconds > 0 ? timeoutSeconds : DEFAULT_APPROVAL_TIMEOUT_SECONDS;
    const now = Date.now();
    const approval: PendingApproval = {
      ...rest,
      id: approvalId(),
      commandSha256: sha256(req.commandText),
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + seconds * 1000).toISOString(),
    };
    const grantedBy = this.runGrant(approval.runId, approval.rule);
    if (grantedBy !== null) {
      // nobody is asked again: the run's approver already said yes to this rule
      const auto: ApprovalOutcome = { decision: 'approve', by: `${grantedBy} (for the run)`, reason: null };
      this.remember(approval.id, auto);
      return { approval, outcome: Promise.resolve(auto), cancel: () => undefined };
    }
    let resolve!: (o: ApprovalOutcome) => void;
    const outcome = new Promise<ApprovalOutcome>((r) => (resolve = r));
    const timer = setTimeout(() => this.settle(approval.id, { decision: 'deny', by: 'timeout', reason: `no decision within ${seconds}s` }), seconds * 1000);
    timer.unref();
    const entry: Entry = { approval, resolve, timer, announced: false };
    this.pending.set(approval.id, entry);
    const announce = (): void => {
      if (entry.announced || !this.pending.has(approval.id)) return;
      entry.announced = true;
      this.emit({ state: 'pending', approval });
    };
    if (!details) announce();
    else {
      const wait = setTimeout(announce, DETAILS_WAIT_MS);
      wait.unref();
      details().then(
        (d) => {
          if (!entry.announced) Object.assign(approval, d);
          clearTimeout(wait);
          announce();
        },
        () => {
          clearTimeout(wait);
          announce();
        },
      );
    }
    return { approval, outcome, cancel: () => this.settle(approval.id, { decision: 'deny', by: 'cancelled', reason: 'the session ended' }) };
  }

  list(): PendingApproval[] {
    return [...this.pending.values()].filter((e) => e.announced).map((e) => e.approval);
  }

  /** Who approved `rule` for the rest of `runId`, while that run goes on; null otherwise. */
  private runGrant(runId: string | null, rule: string): string | null {
    if (!runId) return null;
    const grants = this.runGrants.get(runId);
    if (!grants) return null;
    if (this.opts.runActive && !this.opts.runActive(runId)) {
      this.runGrants.delete(runId);
      return null;
    }
    return grants.get(rule) ?? null;
  }

  /** A human's decision: `unknown` for an id never seen, `decided` when it was settled already. */
  decide(id: string, decision: 'approve' | 'deny', by: string, reason: string | null, scope?: 'run'): 'ok' | 'unknown' | 'decided' | 'no-run' {
    if (this.decided.has(id)) return 'decided';
    const e = this.pending.get(id);
    if (!e) return 'unknown';
    if (scope === 'run' && decision === 'approve') {
      const runId = e.approval.runId;
      if (!runId) return 'no-run';
      const grants = this.runGrants.get(runId) ?? new Map<string, string>();
      grants.set(e.approval.rule, by);
      this.runGrants.set(runId, grants);
      // the run's other holds by this rule, already waiting, go on too
      for (const other of [...this.pending.values()]) {
        if (other !== e && other.approval.runId === runId && other.approval.rule === e.approval.rule) {
          this.settle(other.approval.id, { decision: 'approve', by: `${by} (for the run)`, reason: null });
        }
      }
    }
    this.settle(id, { decision, by, reason });
    return 'ok';
  }

  /** Denies everything pending (gateway shutdown). */
  cancelAll(): void {
    for (const id of [...this.pending.keys()]) this.settle(id, { decision: 'deny', by: 'cancelled', reason: 'the gateway stopped' });
  }

  subscribe(fn: (c: ApprovalChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private settle(id: string, outcome: ApprovalOutcome): void {
    const e = this.pending.get(id);
    if (!e) return;
    this.pending.delete(id);
    clearTimeout(e.timer);
    this.remember(id, outcome);
    e.resolve(outcome);
    if (e.announced) this.emit({ state: 'decided', approval: e.approval, outcome });
  }

  private remember(id: string, outcome: ApprovalOutcome): void {
    this.decided.set(id, outcome);
    if (this.decided.size > REMEMBERED) this.decided.delete(this.decided.keys().next().value as string);
  }

  private emit(c: ApprovalChange): void {
    for (const fn of this.listeners) {
      try {
        fn(c);
      } catch {
        /* a feed's failure is not the command's */
      }
    }
  }
}

/** What the agent is told when a held command is not approved. */
export function deniedMessage(rule: string | undefined, outcome: ApprovalOutcome): string {
  const why = outcome.by === 'timeout' ? 'timed out waiting for approval' : outcome.by === 'cancelled' ? 'approval cancelled' : `denied by ${outcome.by}`;
  return `flightlog: blocked by guardrail "${rule ?? 'policy'}": ${why}${outcome.reason ? ` (${outcome.reason})` : ''}`;
}

/**
 * Records a human's (or the timeout's) decision on a held command: a `guardrail` finding naming
 * who decided, and an `approval` event so the decision is in the session's hash chain.
 */
export function recordApprovalOutcome(session: SessionRecorder, decision: PolicyDecision, held: PendingApproval, outcome: ApprovalOutcome, commandId?: number): void {
  const detail = { ...decisionDetail(decision, held.commandText, outcome.by, outcome.decision === 'approve' ? 'approved' : 'denied'), approvalId: held.id, approvalReason: outcome.reason };
  session.finding({ category: 'guardrail', kind: decision.rule ?? 'policy', direction: 'gateway', commandId, detail });
  session.event(
    'approval',
    'gateway',
    { id: held.id, rule: held.rule, decision: outcome.decision, by: outcome.by, commandSha256: held.commandSha256, rulesVersion: held.rulesVersion },
    commandId === undefined ? undefined : { commandId },
  );
}
