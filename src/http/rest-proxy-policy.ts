/**
 * @module http/rest-proxy-policy
 * Kafka REST Proxy requests before policy, and policy's answers in the proxy's own words. A request is allowed only
 * when every Kafka action it asks is (`decideRestProxy`), with the same rules and the same engine entry point as a
 * wire client's request; an unknown request is denied (fail closed). Denials and refusals are the proxy's error
 * objects, `{"error_code": …, "message": …}`, so REST clients print them as they print the proxy's own errors.
 *
 * Error codes are the proxy's where it has one for the case (rest-utils' KafkaExceptionMapper: 40101 authentication,
 * 40301 authorization); elsewhere the HTTP status itself, as the v3 API writes per-record and generic errors
 * (`{"error_code": 400, …}`). Refused records are 422: the request is well formed, its content is what policy refuses.
 */
import type { KafkaAction } from '../core/action.ts';
import type { Decision, ShadowOutcome } from '../core/decision.ts';
import type { Principal } from '../core/principal.ts';
import type { PolicyEngine } from '../policy/engine.ts';
import type { RestProxyRequest } from './rest-proxy.ts';

/** The proxy's codes for failed authentication and authorization (Confluent rest-utils, KafkaExceptionMapper). */
export const REST_UNAUTHENTICATED = 40101;
export const REST_FORBIDDEN = 40301;

/** The error object the Kafka REST Proxy answers with (v2 and v3 alike). */
export interface RestProxyError {
  readonly error_code: number;
  readonly message: string;
}

/** The proxy's error code for an HTTP status: its own where it has one, the status itself elsewhere. */
export function restErrorCode(status: number): number {
  return status === 401 ? REST_UNAUTHENTICATED : status === 403 ? REST_FORBIDDEN : status;
}

export function restProxyError(status: number, message: string): RestProxyError {
  return { error_code: restErrorCode(status), message };
}

/** `Produce on topic "payments"`: an action as denials and audit records name it. */
export function describeKafkaAction(action: KafkaAction): string {
  const on = action.topic !== undefined ? ` on topic ${JSON.stringify(action.topic)}`
    : action.group !== undefined ? ` on group ${JSON.stringify(action.group)}`
      : action.transactionalId !== undefined ? ` on transactional id ${JSON.stringify(action.transactionalId)}` : ' on the cluster';
  return `${action.api} (${action.operation})${on}`;
}

/** A denial's message: the reason, and the rule when the reason does not already name it. */
export function denialMessage(reason: string, rule: string | null): string {
  return rule === null || reason.includes(`rule ${rule}`) ? reason : `${reason} (tollgate rule ${rule})`;
}

/**
 * Whether `principal` may make `request`: every action it asks up front must be allowed, the first denied one decides
 * (its reason names the action). Shadow outcomes of every action are kept. A request that asks nothing up front (a
 * listing, whose entries are judged in the response; a request whose topics are all in the body, judged when it is
 * read) is allowed with no rule: what it reaches is judged later, as for an all-topics Metadata on the wire.
 */
export function decideRestProxy(policy: PolicyEngine, principal: Principal, request: RestProxyRequest): Decision {
  if (request.kind === 'unknown') return { effect: 'deny', rule: null, reason: `not a Kafka REST Proxy request tollgate knows: ${request.reason}` };
  let shadow: ShadowOutcome[] | undefined;
  let first: Decision | undefined;
  for (const action of request.actions) {
    const decision = policy.decide(principal, action);
    if (decision.shadow !== undefined) (shadow ??= []).push(...decision.shadow);
    if (decision.effect === 'deny') {
      // Approval is asked for on the wire (a ticket in the Kafka answer) and on plain HTTP, not for proxied actions.
      const reason = decision.approval === undefined ? decision.reason : `${decision.reason} (approvals are not taken through the Kafka REST Proxy)`;
      return { effect: 'deny', rule: decision.rule, reason: `${describeKafkaAction(action)}: ${reason}`, ...(shadow !== undefined && { shadow }) };
    }
    first ??= decision;
  }
  const allowed: Decision = first ?? {
    effect: 'allow', rule: null,
    reason: request.listing !== undefined ? 'a listing: each entry is judged in the response' : 'the resources the body names are judged when it is read',
  };
  return shadow === undefined ? allowed : { ...allowed, shadow };
}

/** What audit records say of a REST Proxy request: the proxy operation and the resources it names. */
export function restAuditDetails(request: RestProxyRequest): Record<string, unknown> {
  if (request.kind === 'unknown') return { unknown: request.reason };
  const topics = [...new Set(request.actions.flatMap((a) => (a.topic !== undefined ? [a.topic] : [])))];
  const groups = [...new Set(request.actions.flatMap((a) => (a.group !== undefined ? [a.group] : [])))];
  return {
    version: request.version,
    operation: request.operation,
    ...(request.cluster !== undefined && { cluster: request.cluster }),
    ...(topics.length > 0 && { topics }),
    ...(groups.length > 0 && { groups }),
    actions: request.actions.map((a) => `${a.api} ${a.operation}${a.topic !== undefined ? ` topic=${a.topic}` : ''}${a.group !== undefined ? ` group=${a.group}` : ''}`),
  };
}
