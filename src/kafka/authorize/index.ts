/**
 * @module kafka/authorize
 * Per-request Kafka authorization, pure: a decoded client request and a `decide` function in, a `RequestPlan` out
 * (forward, split, answer locally, or refuse). Called by the connection for every request after SASL; ApiVersions
 * and the SASL APIs are the connection's own and refused here.
 *
 * `KAFKA_API_POLICY` is the table of supported APIs: an API missing from it (broker- and controller-internal APIs,
 * share groups, streams groups, delegation tokens, anything newer) is refused with a reason naming it. Fail closed:
 * a handler that cannot build its answer (a value the schema refuses) also ends in `refuse`.
 *
 * @example
 * const plan = authorizeRequest(frame, decodeRequest(frame), (action) => policy.decide(principal, action));
 * if (plan.kind === 'answer') reply(plan.response);
 */
import { API_SPECS } from '../protocol/generated/index.ts';
import type { DecodedRequest } from '../protocol/messages.ts';
import { ADMIN_APIS } from './admin.ts';
import { GROUP_APIS } from './groups.ts';
import { Judge } from './plan.ts';
import type { ApiPolicy, Decide, RequestPlan } from './plan.ts';
import { TOPIC_APIS } from './topics.ts';
import { TRANSACTION_APIS } from './transactions.ts';

export type { ApiPolicy, Decide, RequestPlan, ResourceDecision } from './plan.ts';
export { replayDecisions } from './plan.ts';
export { allowedProduce } from './topics.ts';

/** APIs forwarded with no question asked: client telemetry (KIP-714) reveals and changes no data. */
const TELEMETRY_APIS: readonly ApiPolicy[] = [71, 72].map((apiKey) => ({
  apiKey,
  api: API_SPECS.get(apiKey)!.name,
  checks: 'none: client telemetry, always forwarded',
  authorize: (judge: Judge) => judge.forward(),
}));

/** Every API tollgate authorizes, by API key. */
export const KAFKA_API_POLICY: ReadonlyMap<number, ApiPolicy> = new Map(
  [...TOPIC_APIS, ...GROUP_APIS, ...TRANSACTION_APIS, ...ADMIN_APIS, ...TELEMETRY_APIS]
    .sort((a, b) => a.apiKey - b.apiKey)
    .map((policy) => [policy.apiKey, policy]),
);

/** APIs the connection handles itself (version negotiation, SASL): never authorized here. */
const CONNECTION_APIS: ReadonlySet<number> = new Set([17, 18, 36]);

/**
 * What to do with one client request. `frame` is the request as the client sent it (size prefix included) and
 * `request` its decoding; `decide` is asked about each resource the request touches (once per distinct action).
 */
export function authorizeRequest(frame: Buffer, request: DecodedRequest, decide: Decide): RequestPlan {
  const judge = new Judge(frame, request, decide);
  const { apiKey, apiVersion } = request.header;
  if (CONNECTION_APIS.has(apiKey)) return judge.refuse(`${judge.api} is handled by the connection, not per-request policy`);
  const policy = KAFKA_API_POLICY.get(apiKey);
  if (policy === undefined) return judge.refuse(`${judge.api} (api key ${apiKey}) is not supported through tollgate`);
  try {
    return policy.authorize(judge);
  } catch (error) {
    return judge.refuse(`${judge.api} v${apiVersion} could not be authorized: ${error instanceof Error ? error.message : String(error)}`);
  }
}
