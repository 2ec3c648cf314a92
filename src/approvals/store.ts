/**
 * @module approvals/store
 * Where approval requests, approver decisions and grants live: the interface every store implements (embedded SQLite
 * by default, PostgreSQL when several tollgate replicas share approvals). Every method is atomic on its own, so two
 * processes deciding, using or revoking at once never both succeed where only one may; times are passed in (`now`,
 * epoch milliseconds) so a clock can be injected.
 */
import type { ApprovalRequest, ApprovalState, ApproverDecision, DecisionRefusal, Grant, NewApprovalRequest, Person } from './model.ts';

export interface RequesterApprovals {
  /** Pending, unexpired requests. */
  readonly pending: readonly ApprovalRequest[];
  /** Live grants (not used up, not revoked, not expired). */
  readonly grants: readonly Grant[];
}

export interface ListFilter {
  readonly state?: ApprovalState;
  /** Newest first; default 100. */
  readonly limit?: number;
}

export type DecideResult =
  | { readonly ok: true; readonly request: ApprovalRequest; readonly grant?: Grant }
  | { readonly ok: false; readonly refusal: DecisionRefusal | 'not_found'; readonly request?: ApprovalRequest };

/**
 * A change one process recorded, as another process sharing the store hears of it: which approval, and what
 * happened to it (`decided`: an approver's decision, whatever the state now is). Readers re-read the approval.
 */
export interface StoreChange {
  readonly kind: 'requested' | 'decided' | 'revoked' | 'expired';
  readonly approval: string;
  /** revoked: the grant that was revoked. */
  readonly grant?: string;
}

export interface ApprovalStore {
  /**
   * Files `request` unless the same requester already has one pending (and unexpired) for the same rule and scope;
   * returns the one in force either way.
   */
  open(request: NewApprovalRequest, now: number): Promise<{ readonly request: ApprovalRequest; readonly created: boolean }>;
  get(id: string): Promise<ApprovalRequest | undefined>;
  list(filter?: ListFilter): Promise<ApprovalRequest[]>;
  /** One requester's pending requests and live grants, for deciding their requests. */
  forRequester(requesterKey: string, now: number): Promise<RequesterApprovals>;
  /** Records an approver's decision with `applyDecision` (approving may create grant `grantId`), atomically. */
  decide(id: string, decision: ApproverDecision, grantId: string): Promise<DecideResult>;
  /** Marks a live one-time grant used; false when it is no longer live (used by someone else first, revoked, expired). */
  useGrant(grantId: string, now: number): Promise<boolean>;
  /** Revokes the live grant of approval `id`; undefined when it has none. */
  revoke(id: string, by: Person, reason: string, now: number): Promise<Grant | undefined>;
  /** Marks pending requests past their expiry as expired; returns them. */
  expire(now: number): Promise<ApprovalRequest[]>;
  /**
   * Calls `listener` with each change other processes record, as it commits (PostgreSQL LISTEN/NOTIFY); the
   * changes of this store object are not repeated to it. Resolves to the function that stops listening, or to
   * undefined where the store cannot push changes (then only re-reading finds them).
   */
  watch?(listener: (change: StoreChange) => void): Promise<(() => Promise<void>) | undefined>;
  close(): Promise<void>;
}

/** The store could not be used (unreachable, a schema newer than this tollgate, a corrupt row): fail closed. */
export class ApprovalStoreError extends Error {
  override readonly name = 'ApprovalStoreError';
}
