/**
 * @module http/signals
 * Insider-threat signals on the HTTP and Kubernetes paths, at ext_authz: every request is counted (`requests`, and
 * `changes` for POST/PUT/PATCH/DELETE, or a Kubernetes create/update/patch/delete/deletecollection) and judged
 * before it reaches the upstream. A request over a `throttle` threshold is answered 429 with Retry-After (for the
 * Kubernetes API a `TooManyRequests` Status with `retryAfterSeconds`, which client-go waits out and retries); one
 * held back by `deny` is answered 403; under `approve` the verdict carries the approval demand, which ext_authz
 * settles as it does an `approve` access rule's (a grant, a ticket, or a hold). Failed authentications are
 * counted per claimed subject and client address; a success after enough of them flags the subject.
 */
import type { Decision } from '../core/decision.ts';
import type { Principal } from '../core/principal.ts';
import type { SignalEngine } from '../signals/engine.ts';
import { signalDecision, strongest, type SignalObservation } from '../signals/outcome.ts';
import { claimedSubject } from '../identity/unverified.ts';
import type { HttpRequestAction } from './action.ts';

const CHANGING_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const CHANGING_VERBS: ReadonlySet<string> = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** What a request amounts to for a `changes` signal: one change, or none. */
export function changesOf(action: HttpRequestAction): number {
  if (action.kubernetes !== undefined) return action.kubernetes.kind === 'resource' && CHANGING_VERBS.has(action.kubernetes.verb) ? 1 : 0;
  return CHANGING_METHODS.has(action.method) ? 1 : 0;
}

/** The signals' verdict on one allowed request. */
export interface HttpSignalVerdict {
  /** Everything observed (shadow ones too), for the request's audit record. */
  readonly observations: readonly SignalObservation[];
  /**
   * Set when a signal refuses the request: `deny`, or `approve` — a denial carrying the approval demand
   * (`decision.approval`), which ext_authz settles, deciding again with `signalDecision` and the principal's approvals.
   */
  readonly decision?: Decision;
  /** The `approve` observation behind `decision.approval`: what the request is decided again from. */
  readonly approving?: SignalObservation;
  /** Set when a signal throttles the request: answer 429 and ask the client to retry after this long. */
  readonly throttle?: SignalObservation;
}

export interface HttpSignals {
  /** An allowed request: held back, throttled, or counted and let through. */
  judge(principal: Principal, action: HttpRequestAction, connection: Readonly<Record<string, string | number>>): HttpSignalVerdict;
  authenticationFailed(authorization: string | undefined, source: string | undefined, path: 'http' | 'kubernetes'): Record<string, { subject?: number; source?: number }>;
  authenticated(principal: Principal, source: string | undefined, path: 'http' | 'kubernetes'): readonly SignalObservation[];
}

/** A refusal (deny, or an approval demand) as the verdict says it. */
function refusal(observations: readonly SignalObservation[], acting: SignalObservation, decision: Decision): HttpSignalVerdict {
  return { observations, decision, ...(decision.approval !== undefined && { approving: acting }) };
}

export function createHttpSignals(engine: SignalEngine): HttpSignals {
  return {
    judge(principal, action, connection) {
      const held = engine.held(principal, action);
      const acting = strongest(held);
      // Held back: not counted (the key's sum falls meanwhile). Without a view of the approvals the decision is a
      // demand; a grant that covers it is found when ext_authz settles the demand.
      if (acting !== undefined) {
        const decision = signalDecision(action, acting);
        if (decision !== undefined && decision.effect !== 'allow') return refusal(held, acting, decision);
      }
      const changes = changesOf(action);
      const measured = engine.measure(principal, [{ action, amounts: { requests: 1, ...(changes > 0 && { changes }) } }], connection);
      const observations = [...held, ...measured];
      const effect = strongest(measured);
      if (effect === undefined || effect.effect === 'alert') return { observations };
      if (effect.effect === 'throttle') return { observations, throttle: effect };
      const decision = signalDecision(action, effect);
      return decision === undefined || decision.effect === 'allow' ? { observations } : refusal(observations, effect, decision);
    },
    authenticationFailed(authorization, source, path) {
      const token = /^bearer\s+(.+)$/i.exec(authorization?.trim() ?? '')?.[1];
      const subject = claimedSubject(token);
      return engine.authFailure(path, { ...(subject !== undefined && { subject }), ...(source !== undefined && { source }) }, source === undefined ? undefined : { sourceAddress: source });
    },
    authenticated(principal, source, path) {
      return engine.authSuccess(path, principal, source, source === undefined ? undefined : { sourceAddress: source });
    },
  };
}

/** Retry-After in whole seconds (at least 1), from a throttle in milliseconds. */
export function retryAfterSeconds(throttleMs: number): number {
  return Math.max(1, Math.ceil(throttleMs / 1000));
}
