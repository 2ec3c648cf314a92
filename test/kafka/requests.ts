/**
 * Kafka request/response frames and a fake identity provider for the connection and handler tests. Frames are built
 * with the generated codecs (themselves checked against real broker traffic in test/kafka/protocol/traffic.test.ts).
 */
import type { KafkaAction } from '../../src/core/action.ts';
import { DEFAULT_DENY, type Decision } from '../../src/core/decision.ts';
import type { Principal } from '../../src/core/principal.ts';
import { API_KEY } from '../../src/kafka/protocol/api-keys.ts';
import { encodeRequest, encodeResponse } from '../../src/kafka/protocol/messages.ts';
import { encodeOAuthBearerInitialResponse } from '../../src/kafka/sasl/oauthbearer.ts';

/** Tokens of this fake identity provider: `good.<subject>.<exp seconds>`; anything else is refused. */
export async function fakeAuthenticate(token: string): Promise<Principal> {
  const [kind, subject, exp] = token.split('.');
  if (kind !== 'good' || subject === undefined) throw new Error('token signature invalid');
  return { subject, groups: subject === 'admin' ? ['platform-admins'] : ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc', expiresAt: Number(exp) };
}

/** Admins may do anything; others may use topic `orders` and consumer groups `app-*`; nothing else. */
export function fakeDecide(principal: Principal, action: KafkaAction): Decision {
  if (principal.groups.includes('platform-admins')) return { effect: 'allow', rule: 'admins', reason: 'allowed by rule admins' };
  if (action.topic === 'orders') return { effect: 'allow', rule: 'orders', reason: 'allowed by rule orders' };
  if (action.group?.startsWith('app-') === true) return { effect: 'allow', rule: 'groups', reason: 'allowed by rule groups' };
  return DEFAULT_DENY;
}

/** API keys the hand table in api-keys.ts does not name. */
export const HEARTBEAT = 12;
export const METADATA = 3;

export function request(apiKey: number, apiVersion: number, correlationId: number, body: unknown): Buffer {
  return encodeRequest({ apiKey, apiVersion, correlationId, clientId: 'test-client', taggedFields: [] }, body);
}

export const handshake = (id: number, mechanism = 'OAUTHBEARER') => request(API_KEY.SaslHandshake, 1, id, { mechanism });
export const authenticate = (id: number, token: string) =>
  request(API_KEY.SaslAuthenticate, 1, id, { authBytes: encodeOAuthBearerInitialResponse({ token }) });
/** A token of the fake provider valid until `exp` (epoch seconds). */
export const goodToken = (subject: string, exp: number) => `good.${subject}.${exp}`;

/** A request whose broker response passes through tollgate untouched: a Heartbeat v4 of group `app-1`. */
export const heartbeat = (id: number, groupId = 'app-1') =>
  request(HEARTBEAT, 4, id, { groupId, generationId: 1, memberId: 'm-1', groupInstanceId: null });
export const heartbeatResponse = (id: number) =>
  encodeResponse({ correlationId: id, taggedFields: [] }, HEARTBEAT, 4, { throttleTimeMs: 0, errorCode: 0 });

export function produce(id: number, topics: string[], acks = -1): Buffer {
  return request(API_KEY.Produce, 9, id, {
    transactionalId: null, acks, timeoutMs: 1000,
    topicData: topics.map((name) => ({ name, partitionData: [{ index: 0, records: Buffer.alloc(0) }] })),
  });
}

export const correlationIds = (frames: readonly Buffer[]) => frames.map((f) => f.readInt32BE(4));

/** Lets pending promise callbacks (a token verification) run. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));
/** Correlation ids of request frames (after size, api key and version). */
export const requestIds = (frames: readonly Buffer[]) => frames.map((f) => f.readInt32BE(8));
