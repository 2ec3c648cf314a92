/**
 * @module core/decision
 * The policy engine's answer. `rule` is null only for the default deny, so every other decision can be traced to a
 * named rule in errors, metrics and audit records.
 */

import type { ApprovalSpec, GrantScope } from './approval.ts';

export type Effect = 'allow' | 'deny';

/** A shadow-mode rule that matched: what it would have done. It did not act. */
export interface ShadowOutcome {
  readonly rule: string;
  /** `allow`/`deny`/`approve` for access rules, `mask` and `reject` for masking and publish inspection rules. */
  readonly effect: Effect | 'approve' | 'mask' | 'reject';
  readonly reason?: string;
}

export interface Decision {
  readonly effect: Effect;
  readonly rule: string | null;
  readonly reason: string;
  /** Shadow-mode rules that matched before the deciding rule (absent when none did). */
  readonly shadow?: readonly ShadowOutcome[];
  /**
   * An `approve` rule decided and no grant covers the request: it is denied until approved. `effect` stays `deny`,
   * so every path that does not handle approvals refuses it.
   */
  readonly approval?: ApprovalDemand;
  /** An `approve` rule matched and this grant let the request through (`effect` is `allow`). */
  readonly grant?: GrantUse;
}

/** What an `approve` rule asks for one request. */
export interface ApprovalDemand {
  readonly rule: string;
  readonly spec: ApprovalSpec;
  readonly scope: GrantScope;
  /** The approval request already pending for this requester, rule and scope, when the caller looked it up. */
  readonly pending?: string;
}

/** A grant that let a request through. */
export interface GrantUse {
  readonly id: string;
  /** The approval request it came from. */
  readonly approval: string;
  readonly oneTime: boolean;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

export const DEFAULT_DENY: Decision = Object.freeze({ effect: 'deny', rule: null, reason: 'no rule allows this request' });
