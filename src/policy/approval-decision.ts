/**
 * @module policy/approval-decision
 * What a rule that asks for approval answers for one request, whichever kind of rule asked: an access rule with
 * `effect: approve`, or a signal rule whose effect (or escalation) is `approve`. A live grant of the principal
 * covering the request's scope lets it through; otherwise it is a denial carrying the approval it demands, naming
 * the approval request already pending when the caller's view knows one. One function, so the two kinds of rule
 * cannot drift apart in what a grant covers.
 */
import type { Action } from '../core/action.ts';
import { grantScope, scopeKey, type ApprovalSpec } from '../core/approval.ts';
import type { Decision, GrantUse } from '../core/decision.ts';

/**
 * What the caller knows of one principal's approvals (src/approvals/ reads it from the store). Keys are
 * `scopeKey(grantScope(action))`.
 */
export interface ApprovalView {
  /** A live grant of the principal covering exactly this scope. */
  grant(scope: string): GrantUse | undefined;
  /** The id of the principal's pending approval request for this scope under this rule. */
  pending(scope: string, rule: string): string | undefined;
}

/**
 * `denial` is the answer of `rule` (the rule the approval is asked under) while unapproved: returned as it is plus the
 * `approval` demand, or turned into an allow naming the grant.
 */
export function approvalDecision(rule: string, denial: Decision, spec: ApprovalSpec, action: Action, approvals: ApprovalView | undefined): Decision {
  const scope = grantScope(action);
  const key = scopeKey(scope);
  const grant = approvals?.grant(key);
  if (grant !== undefined) {
    return { effect: 'allow', rule, reason: `allowed by grant ${grant.id} of approval ${grant.approval} (rule ${rule})`, grant };
  }
  const pending = approvals?.pending(key, rule);
  if (pending === undefined) return { ...denial, effect: 'deny', rule, approval: { rule, spec, scope } };
  const who = `${spec.min === 1 ? 'an approver' : `${spec.min} approvers`} of ${spec.approverGroups.join(', ')}`;
  return {
    ...denial,
    effect: 'deny',
    rule,
    reason: `${denial.reason}: approval ${pending} awaits ${who} (tollgate approvals approve ${pending})`,
    approval: { rule, spec, scope, pending },
  };
}
