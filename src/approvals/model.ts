/**
 * @module approvals/model
 * Approval requests, approver decisions and grants as stored and shown, and the one rule that moves a request from
 * pending to approved or rejected (`applyDecision`), pure so every store applies it the same way inside its own
 * transaction.
 */
import { randomBytes } from 'node:crypto';
import type { ApprovalMode, GrantScope } from '../core/approval.ts';

export const APPROVAL_STATES = ['pending', 'approved', 'rejected', 'expired'] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

/** Who a request or decision came from, as far as approvals care. */
export interface Person {
  readonly subject: string;
  readonly issuer: string;
}

export interface Requester extends Person {
  readonly groups: readonly string[];
}

export type Verdict = 'approve' | 'reject';

export interface ApproverDecision {
  readonly approver: Person;
  readonly verdict: Verdict;
  /** Required for a rejection; optional for an approval. */
  readonly reason?: string;
  /** Epoch milliseconds. */
  readonly at: number;
}

export interface Grant {
  readonly id: string;
  /** The approval request it came from. */
  readonly approval: string;
  readonly requesterKey: string;
  readonly scopeKey: string;
  readonly oneTime: boolean;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly usedAt?: number;
  readonly revokedAt?: number;
  readonly revokedBy?: Person;
  readonly revokeReason?: string;
}

/** What an adapter files when a request needs approval. */
export interface NewApprovalRequest {
  readonly id: string;
  readonly rule: string;
  readonly mode: ApprovalMode;
  readonly requester: Requester;
  readonly requesterKey: string;
  readonly scope: GrantScope;
  readonly scopeKey: string;
  /** What is asked, in one line (`kafka DeleteTopics admin topic=orders`). */
  readonly summary: string;
  /** Why it needs approval: the rule's description or its generic reason. */
  readonly reason: string;
  /** Where it came from and anything else the approver should see (client id, source address, request path). */
  readonly context: Readonly<Record<string, string | number>>;
  readonly approverGroups: readonly string[];
  readonly min: number;
  readonly grantMs: number;
  readonly oneTime: boolean;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface ApprovalRequest extends NewApprovalRequest {
  readonly state: ApprovalState;
  readonly decidedAt?: number;
  /** In the order they were made. */
  readonly decisions: readonly ApproverDecision[];
  /** Set once approved. */
  readonly grant?: Grant;
}

/** A live grant: not used up, not revoked, not expired. */
export function isLive(grant: Grant, now: number): boolean {
  return grant.usedAt === undefined && grant.revokedAt === undefined && grant.expiresAt > now;
}

/** A pending request past its expiry counts as expired, whether or not a sweep has written it yet. */
export function effectiveState(request: Pick<ApprovalRequest, 'state' | 'expiresAt'>, now: number): ApprovalState {
  return request.state === 'pending' && request.expiresAt <= now ? 'expired' : request.state;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** `apr_` + 16 base32 characters (80 random bits): unguessable, and short enough to type in a CLI. */
export function newId(prefix: 'apr' | 'grt'): string {
  const bytes = randomBytes(10);
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return `${prefix}_${out}`;
}

export type DecisionRefusal = 'not_pending' | 'expired' | 'already_decided';

export type DecisionOutcome =
  | { readonly ok: true; readonly state: ApprovalState; readonly grant?: Grant }
  | { readonly ok: false; readonly refusal: DecisionRefusal };

export const personKey = (p: Person): string => JSON.stringify([p.issuer, p.subject]);

/**
 * What one approver's decision does to a request: a rejection rejects; an approval that brings the distinct
 * approvers to `min` approves and creates the grant (lasting `grantMs` from now). Who may decide (groups, not the
 * requester) is checked before, by the service; this checks what only the stored request can tell.
 */
export function applyDecision(request: ApprovalRequest, decision: ApproverDecision, grantId: string): DecisionOutcome {
  if (effectiveState(request, decision.at) === 'expired') return { ok: false, refusal: 'expired' };
  if (request.state !== 'pending') return { ok: false, refusal: 'not_pending' };
  const key = personKey(decision.approver);
  if (request.decisions.some((d) => personKey(d.approver) === key)) return { ok: false, refusal: 'already_decided' };
  if (decision.verdict === 'reject') return { ok: true, state: 'rejected' };
  const approvers = new Set(request.decisions.filter((d) => d.verdict === 'approve').map((d) => personKey(d.approver)));
  approvers.add(key);
  if (approvers.size < request.min) return { ok: true, state: 'pending' };
  return {
    ok: true,
    state: 'approved',
    grant: {
      id: grantId, approval: request.id, requesterKey: request.requesterKey, scopeKey: request.scopeKey,
      oneTime: request.oneTime, createdAt: decision.at, expiresAt: decision.at + request.grantMs,
    },
  };
}
