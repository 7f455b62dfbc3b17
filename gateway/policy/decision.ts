/**
 * How a guardrail decision is told to the agent and recorded, the same for every protocol: one
 * message, and a finding whose detail binds the decision to the exact command text (SHA-256)
 * and the rule set's version.
 */
import { createHash } from 'node:crypto';
import type { Json, PolicyDecision } from '../common/types';

/** `flightlog: blocked by guardrail "no-drop": dropping data needs a human` */
export function blockedMessage(decision: PolicyDecision): string {
  const rule = decision.rule ?? 'policy';
  if (decision.action === 'hold') return `flightlog: blocked by guardrail "${rule}": needs a human's approval${decision.reason ? ` (${decision.reason})` : ''}`;
  return `flightlog: blocked by guardrail "${rule}": ${decision.reason ?? 'denied by rule'}`;
}

/** The recorded action: a rule's own word (`deny`, `hold`), not the listener's. */
export function actionWord(decision: PolicyDecision): 'allow' | 'deny' | 'hold' {
  return decision.action === 'block' ? 'deny' : decision.action;
}

/**
 * The finding detail of a decision. `decidedBy` is `rule` for an automatic deny, an approver's
 * identity, or `timeout`; `outcome` is `recorded` where the gateway notes a hit and lets the
 * message through (a model's tool call: the command it causes is decided in its own listener).
 */
export function decisionDetail(decision: PolicyDecision, commandText: string, decidedBy = 'rule', outcome: 'denied' | 'approved' | 'recorded' = 'denied'): { [k: string]: Json } {
  return {
    rule: decision.rule ?? 'policy',
    action: actionWord(decision),
    outcome,
    reason: decision.reason ?? null,
    decidedBy,
    decidedAt: new Date().toISOString(),
    commandSha256: createHash('sha256').update(commandText, 'utf8').digest('hex'),
    rulesVersion: decision.rulesVersion ?? null,
  };
}

/** What a held command asks the approvals registry, taken from the decision the same way everywhere. */
export function holdTerms(decision: PolicyDecision): { rule: string; reason: string | null; rulesVersion: string | null; timeoutSeconds?: number } {
  return { rule: decision.rule ?? 'policy', reason: decision.reason ?? null, rulesVersion: decision.rulesVersion ?? null, timeoutSeconds: decision.timeoutSeconds };
}
