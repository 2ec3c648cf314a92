/**
 * @module signals/outcome
 * What a signal says about one request: an observation with the numbers (what was measured, the observed value, the
 * threshold) and the effect it asks for. Adapters turn the strongest enforced one into their protocol: Kafka
 * `throttle_time_ms` or an authorization error, HTTP 429 or 403, or an approval demand: see {@link signalDecision}.
 */
import type { Action } from '../core/action.ts';
import type { ApprovalSpec } from '../core/approval.ts';
import type { Decision } from '../core/decision.ts';
import { approvalDecision, type ApprovalView } from '../policy/approval-decision.ts';

export type SignalEffect = 'alert' | 'throttle' | 'approve' | 'deny';
export type SignalKind = 'volume' | 'authFailures' | 'replay';

/** Whom a signal counted: the principal's subject, the resource, the client address (the parts its `per` names). */
export interface SignalKey {
  readonly subject?: string;
  readonly resource?: string;
  readonly source?: string;
}

export interface SignalObservation {
  /** The signal rule's name. */
  readonly rule: string;
  readonly kind: SignalKind;
  readonly effect: SignalEffect;
  /** A shadow rule's observation: audited and counted, never acted on. */
  readonly shadow: boolean;
  /** `fetchedBytes`, `requests`, … for volume; `failedAuthentications`; `recordAgeMs`, `duplicatePayload`. */
  readonly measure: string;
  readonly observed: number;
  readonly threshold: number;
  /** Volume: whether the fixed `limit` or the learned baseline was exceeded. */
  readonly thresholdSource?: 'limit' | 'baseline';
  readonly baseline?: { readonly mean: number; readonly stddev: number; readonly periods: number };
  readonly windowMs?: number;
  readonly key: SignalKey;
  /** `throttle`: how long the client should back off. */
  readonly throttleMs?: number;
  /** `deny`/`approve` of a volume signal: epoch milliseconds until which the key stays held back. */
  readonly until?: number;
  /** The effect comes from `escalate` (the breach lasted). */
  readonly escalated?: boolean;
  /** `approve`: who approves (the signal rule's `approval`). */
  readonly approval?: ApprovalSpec;
  /** For people: the numbers in a sentence, used as the denial reason. */
  readonly reason: string;
}

const STRENGTH: Readonly<Record<SignalEffect, number>> = { alert: 1, throttle: 2, approve: 3, deny: 4 };

/** The observation that acts: the strongest effect among the enforced (non-shadow) ones; undefined when none. */
export function strongest(observations: readonly SignalObservation[]): SignalObservation | undefined {
  let best: SignalObservation | undefined;
  for (const o of observations) {
    if (o.shadow) continue;
    if (best === undefined || STRENGTH[o.effect] > STRENGTH[best.effect]) best = o;
  }
  return best;
}

/** The longest throttle among the enforced observations (0 when none throttles). */
export function throttleOf(observations: readonly SignalObservation[]): number {
  let ms = 0;
  for (const o of observations) if (!o.shadow && o.effect === 'throttle' && o.throttleMs !== undefined && o.throttleMs > ms) ms = o.throttleMs;
  return ms;
}

/**
 * The decision for a request a signal holds back (`deny` or `approve`), or undefined when no enforced signal does:
 * the policy's own decision then stands. `approve` is answered as an `approve` access rule would be, under the
 * signal rule's name and its `approval`: a live grant of the principal for this request's scope lets it through,
 * otherwise it is a denial carrying the approval demand, which the adapter files as a ticket (or, on HTTP, holds)
 * exactly as it does for access rules. `approvals` is what the adapter knows of the principal's grants and pending
 * requests (undefined before it looked: a first pass that only finds the demand).
 */
export function signalDecision(action: Action, held: SignalObservation | undefined, approvals?: ApprovalView): Decision | undefined {
  if (held === undefined || held.shadow) return undefined;
  if (held.effect === 'deny') return { effect: 'deny', rule: held.rule, reason: held.reason };
  if (held.effect !== 'approve') return undefined;
  const denial: Decision = { effect: 'deny', rule: held.rule, reason: held.reason };
  // The config refuses an approving signal rule without `approval`; should one get here all the same, fail closed.
  if (held.approval === undefined) return { ...denial, reason: `${held.reason}; an approval is required and the rule names no approvers` };
  return approvalDecision(held.rule, denial, held.approval, action, approvals);
}

/** The audit form of an observation: numbers as they are, no prose. */
export function observationDetails(o: SignalObservation): Record<string, unknown> {
  return {
    signal: o.rule,
    kind: o.kind,
    effect: o.effect,
    ...(o.shadow && { shadow: true }),
    measure: o.measure,
    observed: o.observed,
    threshold: o.threshold,
    ...(o.thresholdSource !== undefined && { thresholdSource: o.thresholdSource }),
    ...(o.baseline !== undefined && { baseline: o.baseline }),
    ...(o.windowMs !== undefined && { windowMs: o.windowMs }),
    key: o.key,
    ...(o.throttleMs !== undefined && { throttleMs: o.throttleMs }),
    ...(o.until !== undefined && { until: new Date(o.until).toISOString() }),
    ...(o.escalated === true && { escalated: true }),
  };
}
