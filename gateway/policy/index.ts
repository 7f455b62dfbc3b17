/**
 * The policy listeners call: the compiled guardrails of the running config, swapped whole on
 * reload so a command is always decided by one rule set (whose version it records).
 */
import type { FlightlogConfig } from '../common/config-schema';
import type { Policy } from '../common/types';
import { compileGuardrails, type GuardrailAction, type GuardrailSet } from './rules';

export { compileGuardrails, rulesVersion, type GuardrailRule, type GuardrailSet } from './rules';

/** Allows everything: what a gateway with no rules runs. */
export const allowAll: Policy = () => ({ action: 'allow' });

export function guardrailsOf(config: FlightlogConfig): GuardrailSet {
  const defaults: Record<string, GuardrailAction> = {};
  for (const c of config.connections) if (c.guardrails) defaults[c.name] = c.guardrails.default;
  return compileGuardrails(config.guardrails ?? [], defaults);
}

export class LivePolicy {
  private set: GuardrailSet;
  /** Stable across reloads: listeners keep this function. */
  readonly policy: Policy = (input) => this.set.decide(input);

  constructor(config: FlightlogConfig) {
    this.set = guardrailsOf(config);
  }

  get current(): GuardrailSet {
    return this.set;
  }

  reload(config: FlightlogConfig): void {
    this.set = guardrailsOf(config);
  }
}
