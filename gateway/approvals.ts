/**
 * Commands a guardrail held for a human: the gateway keeps each one pending until someone
 * approves or denies it (control API, CLI) or its rule's timeout denies it. The listener that
 * held the command waits on the outcome; other sessions go on.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { PolicyDecision, SessionRecorder } from './core/types';
import type { PendingApproval } from './control-api/types';
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

export type ApprovalRequest = Omit<PendingApproval, 'id' | 'commandSha256' | 'createdAt' | 'expiresAt'> & { timeoutSeconds?: number };

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
}

/** Decided ids remembered to tell "already decided" (409) from "unknown" (404). */
const REMEMBERED = 1000;

export class ApprovalRegistry {
  private readonly pending = new Map<string, Entry>();
  private readonly decided = new Map<string, ApprovalOutcome>();
  private readonly listeners = new Set<(c: ApprovalChange) => void>();

  request(req: ApprovalRequest): HeldCommand {
    const { timeoutSeconds, ...rest } = req;
    const seconds = timeoutSeconds && timeoutSeconds > 0 ? timeoutSeconds : DEFAULT_APPROVAL_TIMEOUT_SECONDS;
    const now = Date.now();
    const approval: PendingApproval = {
      ...rest,
      id: approvalId(),
      commandSha256: sha256(req.commandText),
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + seconds * 1000).toISOString(),
    };
    let resolve!: (o: ApprovalOutcome) => void;
    const outcome = new Promise<ApprovalOutcome>((r) => (resolve = r));
    const timer = setTimeout(() => this.settle(approval.id, { decision: 'deny', by: 'timeout', reason: `no decision within ${seconds}s` }), seconds * 1000);
    timer.unref();
    this.pending.set(approval.id, { approval, resolve, timer });
    this.emit({ state: 'pending', approval });
    return { approval, outcome, cancel: () => this.settle(approval.id, { decision: 'deny', by: 'cancelled', reason: 'the session ended' }) };
  }

  list(): PendingApproval[] {
    return [...this.pending.values()].map((e) => e.approval);
  }

  /** A human's decision: `unknown` for an id never seen, `decided` when it was settled already. */
  decide(id: string, decision: 'approve' | 'deny', by: string, reason: string | null): 'ok' | 'unknown' | 'decided' {
    if (this.decided.has(id)) return 'decided';
    if (!this.pending.has(id)) return 'unknown';
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
    this.decided.set(id, outcome);
    if (this.decided.size > REMEMBERED) this.decided.delete(this.decided.keys().next().value as string);
    e.resolve(outcome);
    this.emit({ state: 'decided', approval: e.approval, outcome });
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
