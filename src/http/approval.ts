/**
 * @module http/approval
 * Just-in-time approval on the HTTP and Kubernetes paths, between the policy's decision and the ext_authz answer:
 * a request an `approve` rule demands approval for is let through by a live grant (a one-time grant is used up by
 * it), or an approval request is filed (or found, for a retry) and then
 * - ticket mode: refused at once, the approval's id and URL in the 403 (JSON, or a Kubernetes Status);
 * - hold mode: the Check waits until the approval is decided, its wait runs out (at most `approvals.maxHold`, which
 *   the bundled Envoy configs' ext_authz timeout exceeds) or Envoy gives up on the Check; approved, the request goes
 *   on with the grant the approval created, so `kubectl exec` just pauses, then runs.
 * The store failing is a refusal (fail closed), never an allow.
 */
import type { Decision } from '../core/decision.ts';
import type { Principal } from '../core/principal.ts';
import type { ApprovalView } from '../policy/approval-decision.ts';
import type { ApprovalService, RequestContext } from '../approvals/service.ts';
import type { ApprovalRequest } from '../approvals/model.ts';

export interface HttpApprovals {
  readonly service: ApprovalService;
  /** The longest a held request waits (`approvals.maxHold`). */
  readonly maxHoldMs: number;
}

/** What the answer and the audit record say about the approval. */
export interface ApprovalNote {
  /** Absent only when the store failed before a request could be filed. */
  readonly id?: string;
  /** `pending`, `approved` (a grant let it through), `rejected`, `expired`, or `unavailable` (the store failed). */
  readonly state: string;
  readonly url?: string;
  /** The grant that let it through. */
  readonly grant?: string;
  /** Epoch ms: until when a pending request can be approved. */
  readonly expiresAt?: number;
  /** Hold mode: how long the request waited. */
  readonly heldMs?: number;
}

export interface ApprovalOutcome {
  readonly decision: Decision;
  readonly approval?: ApprovalNote;
}

/** Grants can be raced for (a one-time grant used by a parallel request): a few reads settle it. */
const MAX_ROUNDS = 4;

function finalReason(request: ApprovalRequest, base: string): string {
  if (request.state === 'rejected') {
    const by = request.decisions.find((d) => d.verdict === 'reject');
    return `${base}: approval ${request.id} was rejected${by === undefined ? '' : ` by ${by.approver.subject}: ${by.reason ?? ''}`}`;
  }
  if (request.state === 'expired') return `${base}: approval ${request.id} expired without enough approvals`;
  return `${base}: approval ${request.id} was not given while the request was held; it stays open until ${new Date(request.expiresAt).toISOString()}, retry once approved`;
}

/**
 * Settles `decision` (one with an `approval` demand) for this request: allowed by a grant, refused with a pending
 * approval (ticket), or held until decided (hold). `decide` is what demanded it — the policy, or a signal — asked
 * again with what the store says of the principal's approvals. `signal` aborts a hold when Envoy cancels the Check.
 */
export async function settleApproval(
  approvals: HttpApprovals, decide: (view: ApprovalView) => Decision, principal: Principal, decision: Decision,
  context: RequestContext, signal?: AbortSignal,
): Promise<ApprovalOutcome> {
  const { service } = approvals;
  const started = service.now();
  let heldMs: number | undefined;
  let current = decision;
  try {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const view = await service.view(principal);
      current = decide(view);
      const held = heldMs === undefined ? {} : { heldMs };
      if (current.grant !== undefined) {
        if (await service.use(current.grant)) {
          return { decision: current, approval: { id: current.grant.approval, state: 'approved', grant: current.grant.id, ...held } };
        }
        continue;
      }
      const demand = current.approval;
      if (demand === undefined) return { decision: current };
      const request = await service.open(principal, demand, current.reason, context);
      view.addPending(request);
      current = decide(view);
      const note = { id: request.id, url: service.urlOf(request.id), expiresAt: request.expiresAt };
      if (demand.spec.mode !== 'hold' || heldMs !== undefined) return { decision: current, approval: { ...note, state: request.state, ...held } };
      const deadline = Math.min(request.expiresAt, started + approvals.maxHoldMs);
      const decided = await service.wait(request.id, deadline, signal);
      heldMs = service.now() - started;
      if (decided?.state === 'approved') continue;
      const last = decided ?? request;
      const base = decision.reason;
      return { decision: { ...current, reason: finalReason(last, base) }, approval: { ...note, state: last.state, heldMs } };
    }
    return { decision: { ...decision, reason: `${decision.reason}: the grants found were used up by other requests first` } };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { decision: { ...decision, reason: `${decision.reason}: approvals could not be checked (${message})` }, approval: { state: 'unavailable' } };
  }
}
