/**
 * @module core/decision
 * The policy engine's answer. `rule` is null only for the default deny, so every other decision can be traced to a
 * named rule in errors, metrics and audit records.
 */

export type Effect = 'allow' | 'deny';

/** A shadow-mode rule that matched: what it would have done. It did not act. */
export interface ShadowOutcome {
  readonly rule: string;
  /** `allow`/`deny` for access rules, `mask` and `reject` for masking and publish inspection rules. */
  readonly effect: Effect | 'mask' | 'reject';
  readonly reason?: string;
}

export interface Decision {
  readonly effect: Effect;
  readonly rule: string | null;
  readonly reason: string;
  /** Shadow-mode rules that matched before the deciding rule (absent when none did). */
  readonly shadow?: readonly ShadowOutcome[];
}

export const DEFAULT_DENY: Decision = Object.freeze({ effect: 'deny', rule: null, reason: 'no rule allows this request' });
