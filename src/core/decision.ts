/**
 * @module core/decision
 * The policy engine's answer. `rule` is null only for the default deny, so every other decision can be traced to a
 * named rule in errors, metrics and audit records.
 */

export type Effect = 'allow' | 'deny';

export interface Decision {
  readonly effect: Effect;
  readonly rule: string | null;
  readonly reason: string;
}

export const DEFAULT_DENY: Decision = Object.freeze({ effect: 'deny', rule: null, reason: 'no rule allows this request' });
