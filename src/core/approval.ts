/**
 * @module core/approval
 * Just-in-time approval in domain terms, free of storage and protocol: what an `approve` rule asks for
 * (`ApprovalSpec`), what exactly a grant covers (`GrantScope`, derived from an `Action` the same way on every path),
 * and who asked (`requesterKey`). The approvals room (src/approvals/) stores requests and grants under these keys;
 * the policy engine matches them.
 */
import { qualifiedResource, type Action } from './action.ts';
import type { Principal } from './principal.ts';

/**
 * `hold`: the request waits (an HTTP/Kubernetes ext_authz Check) until approved, rejected or out of time.
 * `ticket`: the request is refused at once with the approval's id; once approved, a grant lets the retry through.
 */
export type ApprovalMode = 'hold' | 'ticket';

export interface ApprovalSpec {
  /** Approvers must be in one of these groups. */
  readonly approverGroups: readonly string[];
  /** Distinct approvers needed (the requester never counts). */
  readonly min: number;
  readonly mode: ApprovalMode;
  /** How long the request waits for a decision (hold: the caller's request; ticket: the approval request). */
  readonly waitMs: number;
  /** How long a grant lasts once approved. */
  readonly grantMs: number;
  /** The grant lets exactly one request through. */
  readonly oneTime: boolean;
}

/**
 * What a grant covers: one path, one operation, one resource. Two actions with the same scope are the same request
 * as far as approval goes (a retry), whatever else differs (a query string, a Kafka correlation id).
 */
export interface GrantScope {
  readonly path: 'http' | 'kubernetes' | 'kafka';
  /** Kafka: the API name and operation (`DeleteTopics admin`); Kubernetes: the verb; HTTP: the method. */
  readonly operation: string;
  /** Kafka: topic, group or transactionalId; Kubernetes: apiGroup, resource, namespace, name (or a path); HTTP: host, path. */
  readonly resource: Readonly<Record<string, string>>;
}

export function grantScope(action: Action): GrantScope {
  if (action.kind === 'kafka') {
    const resource: Record<string, string> = {};
    if (action.topic !== undefined) resource['topic'] = action.topic;
    if (action.group !== undefined) resource['group'] = action.group;
    if (action.transactionalId !== undefined) resource['transactionalId'] = action.transactionalId;
    return { path: 'kafka', operation: `${action.api} ${action.operation}`, resource };
  }
  const k = action.kubernetes;
  if (k === undefined) return { path: 'http', operation: action.method, resource: { host: action.host, path: action.path } };
  if (k.kind === 'non-resource') return { path: 'kubernetes', operation: k.verb, resource: { path: k.path } };
  const resource: Record<string, string> = { apiGroup: k.apiGroup, resource: qualifiedResource(k) };
  if (k.namespace !== undefined) resource['namespace'] = k.namespace;
  if (k.name !== undefined) resource['name'] = k.name;
  return { path: 'kubernetes', operation: k.verb, resource };
}

/** A stable text for a scope: equal scopes give equal keys (resource keys sorted). */
export function scopeKey(scope: GrantScope): string {
  const resource = Object.keys(scope.resource).sort().map((k) => [k, scope.resource[k]]);
  return JSON.stringify([scope.path, scope.operation, resource]);
}

/** One line for people: `kafka DeleteTopics admin topic=orders`. */
export function describeScope(scope: GrantScope): string {
  const resource = Object.entries(scope.resource).map(([k, v]) => `${k}=${v}`).join(' ');
  return `${scope.path} ${scope.operation}${resource === '' ? '' : ` ${resource}`}`;
}

/** Who asked, as grants and requests are keyed: the issuer and the subject, so equal names of two issuers differ. */
export function requesterKey(principal: Pick<Principal, 'issuer' | 'subject'>): string {
  return JSON.stringify([principal.issuer, principal.subject]);
}

/**
 * Whether an approver is the requester: the requester can never approve their own request. Compared by subject
 * alone, across issuers: one name known to two sources (an OIDC user and an API key named after them) is most likely
 * one person, and refusing a rare legitimate case is the safe side.
 */
export function isRequester(requester: Pick<Principal, 'subject'>, approver: Pick<Principal, 'subject'>): boolean {
  return requester.subject === approver.subject;
}
