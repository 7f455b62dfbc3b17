import type { Policy } from '../core/types';

/** Allows everything: the guardrail engine replaces this without the listeners changing shape. */
export const allowAll: Policy = () => ({ action: 'allow' });
