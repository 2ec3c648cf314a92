/**
 * The Kafka connection state machine, byte for byte, without Envoy or a broker: client SASL answered locally,
 * tollgate's own SASL to the broker, requests held while a token is verified, per-request policy, response order,
 * session expiry and re-authentication. The real broker and real clients are in test/e2e/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { BrokerRoutes, KafkaConnection, type ConnectionOutput, type KafkaConnectionOptions } from '../../src/kafka/connection.ts';
import { API_KEY } from '../../src/kafka/protocol/api-keys.ts';
import { KafkaError } from '../../src/kafka/protocol/error-codes.ts';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../src/kafka/protocol/messages.ts';
import { parsePlain } from '../../src/kafka/sasl/plain.ts';
import { MemoryAudit } from './fakes.ts';
import { authenticate, correlationIds, fakeAuthenticate, fakeDecide as decide, handshake, heartbeat, heartbeatResponse, produce, request, settle, METADATA, requestIds } from './requests.ts';

const T0 = Date.parse('2026-11-23T10:00:00Z');

function connect(overrides: Partial<KafkaConnectionOptions> = {}) {
  const delivered: ConnectionOutput[] = [];
  const audit = new MemoryAudit();
  const clock = { now: T0 };
  const connection = new KafkaConnection({
    maxFrameBytes: 1024 * 1024,
    maxInFlight: 100,
    authenticate: fakeAuthenticate,
    decide,
    maxSessionLifetimeMs: 3_600_000,
    routes: new BrokerRoutes([]),
    audit,
    logger: pino({ level: 'silent' }),
    deliver: (output) => delivered.push(output),
    clock: () => clock.now,
    ...overrides,
  });
  return { connection, delivered, audit, clock };
}

/** SASL with a good token; returns the two answers. */
async function login(c: ReturnType<typeof connect>, subject = 'alice', exp = T0 / 1000 + 600) {
  const out = c.connection.onClientData(Buffer.concat([handshake(1), authenticate(2, `good.${subject}.${exp}`)]));
  assert.deepEqual(out.toBroker, [], 'SASL is answered locally, never forwarded');
  await settle();
  const answers = [...out.toClient, ...c.delivered.splice(0).flatMap((d) => d.toClient)];
  return answers;
}

test('SASL OAUTHBEARER is answered by tollgate: handshake offers OAUTHBEARER, the token is verified, the session lasts until the token expires', async () => {
  const c = connect();
  const [hs, auth] = await login(c, 'alice', T0 / 1000 + 600);
  const handshakeBody = decodeResponse(hs!, API_KEY.SaslHandshake, 1).body;
  assert.equal(handshakeBody.errorCode, 0);
  assert.deepEqual(handshakeBody.mechanisms, ['OAUTHBEARER']);
  const authBody = decodeResponse(auth!, API_KEY.SaslAuthenticate, 1).body;
  assert.equal(authBody.errorCode, 0);
  assert.equal(authBody.sessionLifetimeMs, 600_000n, 'the token\'s remaining life, below the 1 h cap');
  assert.equal(c.connection.principal?.subject, 'alice');
  assert.equal(c.audit.records.at(-1)?.event, 'kafka.sasl.authenticated');
});

test('the session lifetime is capped by maxSessionLifetime when the token lives longer', async () => {
  const c = connect({ maxSessionLifetimeMs: 60_000 });
  const [, auth] = await login(c, 'alice', T0 / 1000 + 86_400);
  assert.equal(decodeResponse(auth!, API_KEY.SaslAuthenticate, 1).body.sessionLifetimeMs, 60_000n);
});

test('a refused token gets SASL_AUTHENTICATION_FAILED with the reason, the connection closes, nothing reaches the broker', async () => {
  const c = connect();
  const out = c.connection.onClientData(Buffer.concat([handshake(1), authenticate(2, 'forged.token'), heartbeat(3)]));
  assert.deepEqual(out.toBroker, []);
  await settle();
  const [delivered] = c.delivered;
  assert.ok(delivered?.close, 'the connection is closed');
  assert.equal(delivered.close.event, 'kafka.sasl.authentication_failed');
  assert.deepEqual(delivered.toBroker, [], 'the heartbeat held behind the token never leaves');
  const body = decodeResponse(delivered.toClient[0]!, API_KEY.SaslAuthenticate, 1).body;
  assert.equal(body.errorCode, KafkaError.SASL_AUTHENTICATION_FAILED);
  assert.match(body.errorMessage ?? '', /token signature invalid/);
});

test('a mechanism other than OAUTHBEARER is refused with UNSUPPORTED_SASL_MECHANISM', () => {
  const c = connect();
  const out = c.connection.onClientData(handshake(1, 'PLAIN'));
  const body = decodeResponse(out.toClient[0]!, API_KEY.SaslHandshake, 1).body;
  assert.equal(body.errorCode, KafkaError.UNSUPPORTED_SASL_MECHANISM);
  assert.deepEqual(body.mechanisms, ['OAUTHBEARER']);
  assert.equal(out.close, undefined);
});

test('a request before authentication closes the connection and reaches nobody', () => {
  const c = connect();
  const out = c.connection.onClientData(heartbeat(1));
  assert.equal(out.close?.event, 'kafka.sasl.unauthenticated_request');
  assert.deepEqual(out.toBroker, []);
});

test('requests pipelined behind SaslAuthenticate are held while the token is verified, then forwarded in order', async () => {
  const c = connect();
  const out = c.connection.onClientData(Buffer.concat([handshake(1), authenticate(2, `good.alice.${T0 / 1000 + 600}`), heartbeat(3), heartbeat(4)]));
  assert.deepEqual(out.toBroker, []);
  assert.equal(c.connection.heldCount, 2);
  await settle();
  assert.deepEqual(requestIds(c.delivered[0]!.toBroker), [3, 4]);
  const back = c.connection.onBrokerData(Buffer.concat([heartbeatResponse(3), heartbeatResponse(4)]));
  assert.deepEqual(correlationIds(back.toClient), [3, 4]);
});

test('a denied Produce is answered locally with TOPIC_AUTHORIZATION_FAILED, after the response to the request before it', async () => {
  const c = connect();
  await login(c);
  const first = c.connection.onClientData(heartbeat(10));
  assert.deepEqual(requestIds(first.toBroker), [10]);
  const denied = c.connection.onClientData(produce(11, ['admin.audit']));
  assert.deepEqual(denied.toBroker, [], 'nothing of a denied request reaches the broker');
  assert.deepEqual(denied.toClient, [], 'the denial waits for the heartbeat\'s response');
  const back = c.connection.onBrokerData(heartbeatResponse(10));
  assert.deepEqual(correlationIds(back.toClient), [10, 11]);
  const body = decodeResponse(back.toClient[1]!, API_KEY.Produce, 9).body;
  assert.equal(body.responses[0]?.partitionResponses[0]?.errorCode, KafkaError.TOPIC_AUTHORIZATION_FAILED);
  const record = c.audit.records.find((r) => r.event === 'kafka.request.denied');
  assert.equal(record?.principal?.subject, 'alice');
});

test('a Produce mixing allowed and denied topics is split: only the allowed topic reaches the broker, the client gets both answers', async () => {
  const c = connect();
  await login(c);
  const out = c.connection.onClientData(produce(20, ['orders', 'admin.audit']));
  const forwarded = decodeRequest(out.toBroker[0]!);
  assert.deepEqual((forwarded.body as { topicData: Array<{ name: string }> }).topicData.map((t) => t.name), ['orders']);
  const brokerAnswer = encodeResponse({ correlationId: 20, taggedFields: [] }, API_KEY.Produce, 9, {
    responses: [{ name: 'orders', partitionResponses: [{ index: 0, errorCode: 0, baseOffset: 42n, logAppendTimeMs: -1n, logStartOffset: 0n, recordErrors: [], errorMessage: null }] }],
    throttleTimeMs: 0,
  });
  const [client] = c.connection.onBrokerData(brokerAnswer).toClient;
  const body = decodeResponse(client!, API_KEY.Produce, 9).body;
  const byTopic = new Map(body.responses.map((r) => [r.name, r.partitionResponses[0]!.errorCode]));
  assert.equal(byTopic.get('orders'), 0);
  assert.equal(byTopic.get('admin.audit'), KafkaError.TOPIC_AUTHORIZATION_FAILED);
});

test('a request on an expired session closes the connection; re-authenticating in time keeps it open', async () => {
  const c = connect();
  await login(c, 'alice', T0 / 1000 + 60);
  c.clock.now = T0 + 50_000;
  // KIP-368: a new handshake on the authenticated connection, same subject, fresh token.
  const out = c.connection.onClientData(Buffer.concat([handshake(30), authenticate(31, `good.alice.${T0 / 1000 + 600}`)]));
  assert.deepEqual(out.toBroker, []);
  await settle();
  const auth = c.delivered.splice(0).flatMap((d) => d.toClient).at(-1)!;
  assert.equal(decodeResponse(auth, API_KEY.SaslAuthenticate, 1).body.errorCode, 0);
  assert.equal(c.audit.records.at(-1)?.event, 'kafka.sasl.reauthenticated');
  c.clock.now = T0 + 120_000;
  assert.equal(c.connection.onClientData(heartbeat(32)).close, undefined, 'the new session is still valid');

  const late = connect();
  await login(late, 'alice', T0 / 1000 + 60);
  late.clock.now = T0 + 61_000;
  const closed = late.connection.onClientData(heartbeat(5));
  assert.equal(closed.close?.event, 'kafka.sasl.session_expired');
  assert.deepEqual(closed.toBroker, []);
});

test('re-authentication must keep the subject', async () => {
  const c = connect();
  await login(c, 'alice');
  c.connection.onClientData(Buffer.concat([handshake(40), authenticate(41, `good.admin.${T0 / 1000 + 600}`)]));
  await settle();
  const [out] = c.delivered;
  assert.equal(out?.close?.event, 'kafka.sasl.authentication_failed');
  assert.match(out!.close!.reason, /alice cannot become admin/);
});

test('with a gateway-held credential, tollgate authenticates to the broker at the client\'s first request past SASL, and holds it until accepted', async () => {
  const c = connect({ upstreamSasl: { mechanism: 'PLAIN', username: 'tollgate', password: 's3cret' } });
  const apiVersions = request(API_KEY.ApiVersions, 3, 1, { clientSoftwareName: 'test', clientSoftwareVersion: '1' });
  assert.deepEqual(c.connection.onClientData(apiVersions).toBroker, [apiVersions], 'ApiVersions needs no authentication, as on the broker');
  const versions = encodeResponse({ correlationId: 1, taggedFields: [] }, API_KEY.ApiVersions, 3, { errorCode: 0, apiKeys: [{ apiKey: 12, minVersion: 0, maxVersion: 4 }], throttleTimeMs: 0 });
  assert.equal(c.connection.onBrokerData(versions).toClient.length, 1);
  await login(c);

  const first = c.connection.onClientData(heartbeat(3));
  assert.equal(first.toBroker.length, 1, 'only tollgate\'s own handshake goes out');
  const ownHandshake = decodeRequest(first.toBroker[0]!);
  assert.equal(ownHandshake.header.apiKey, API_KEY.SaslHandshake);
  assert.ok(ownHandshake.header.correlationId < 0);

  const hsResponse = encodeResponse({ correlationId: ownHandshake.header.correlationId, taggedFields: [] }, API_KEY.SaslHandshake, 1, { errorCode: 0, mechanisms: ['PLAIN', 'SCRAM-SHA-512'] });
  const second = c.connection.onBrokerData(hsResponse);
  assert.deepEqual(second.toClient, [], 'the broker\'s SASL answers are never shown to the client');
  const ownAuth = decodeRequest(second.toBroker[0]!);
  assert.equal(ownAuth.header.apiKey, API_KEY.SaslAuthenticate);
  assert.deepEqual(parsePlain((ownAuth.body as { authBytes: Buffer }).authBytes), { username: 'tollgate', password: 's3cret' });

  const authResponse = encodeResponse({ correlationId: ownAuth.header.correlationId, taggedFields: [] }, API_KEY.SaslAuthenticate, 2, { errorCode: 0, errorMessage: null, authBytes: Buffer.alloc(0), sessionLifetimeMs: 0n });
  const third = c.connection.onBrokerData(authResponse);
  assert.deepEqual(requestIds(third.toBroker), [3], 'then the client\'s held request goes out, unchanged');
});

test('an unauthenticated client never makes tollgate use its broker credential', () => {
  const c = connect({ upstreamSasl: { mechanism: 'PLAIN', username: 'tollgate', password: 's3cret' } });
  const out = c.connection.onClientData(Buffer.concat([handshake(1), heartbeat(2)]));
  assert.deepEqual(out.toBroker, []);
  assert.equal(out.close?.event, 'kafka.sasl.unauthenticated_request');
});

test('a broker refusing tollgate\'s credential closes the connection without the password in the record', async () => {
  const c = connect({ upstreamSasl: { mechanism: 'PLAIN', username: 'tollgate', password: 's3cret' } });
  await login(c);
  const first = c.connection.onClientData(heartbeat(3));
  const own = decodeRequest(first.toBroker[0]!);
  const second = c.connection.onBrokerData(encodeResponse({ correlationId: own.header.correlationId, taggedFields: [] }, API_KEY.SaslHandshake, 1, { errorCode: 0, mechanisms: ['PLAIN'] }));
  const auth = decodeRequest(second.toBroker[0]!);
  const third = c.connection.onBrokerData(encodeResponse({ correlationId: auth.header.correlationId, taggedFields: [] }, API_KEY.SaslAuthenticate, 2, { errorCode: KafkaError.SASL_AUTHENTICATION_FAILED, errorMessage: 'Authentication failed: Invalid username or password', authBytes: Buffer.alloc(0), sessionLifetimeMs: 0n }));
  assert.equal(third.close?.event, 'kafka.upstream.authentication_failed');
  assert.doesNotMatch(JSON.stringify(third.close), /s3cret/);
  assert.deepEqual(third.toClient, [], 'the held heartbeat is never answered');
});

test('a request version tollgate does not offer closes the connection (Produce v13 names topics by id)', async () => {
  const c = connect();
  await login(c);
  const out = c.connection.onClientData(request(API_KEY.Produce, 13, 50, { transactionalId: null, acks: -1, timeoutMs: 1000, topicData: [] }));
  assert.equal(out.close?.event, 'kafka.request.unsupported_version');
  assert.deepEqual(out.toBroker, []);
});

test('a response for a request never sent closes the connection', async () => {
  const c = connect();
  await login(c);
  const out = c.connection.onBrokerData(heartbeatResponse(77));
  assert.equal(out.close?.event, 'kafka.response.unknown_correlation_id');
});

test('Metadata naming a broker that kafka.brokers does not map closes the connection; mapped brokers are rewritten', async () => {
  const c = connect({ routes: new BrokerRoutes([{ nodeId: 1, host: '127.0.0.1', port: 19092 }]) });
  await login(c);
  const metadata = (id: number) => request(METADATA, 12, id, { topics: [{ topicId: 'AAAAAAAAAAAAAAAAAAAAAA', name: 'orders' }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
  const answer = (id: number, nodes: number[]) => encodeResponse({ correlationId: id, taggedFields: [] }, METADATA, 12, {
    throttleTimeMs: 0,
    brokers: nodes.map((nodeId) => ({ nodeId, host: `broker-${nodeId}.internal`, port: 9092, rack: null })),
    clusterId: 'c', controllerId: 1, topics: [], clusterAuthorizedOperations: -2147483648,
  });
  c.connection.onClientData(metadata(60));
  const [rewritten] = c.connection.onBrokerData(answer(60, [1])).toClient;
  const body = decodeResponse(rewritten!, METADATA, 12).body;
  assert.deepEqual(body.brokers.map((b) => `${b.host}:${b.port}`), ['127.0.0.1:19092']);

  c.connection.onClientData(metadata(61));
  const out = c.connection.onBrokerData(answer(61, [1, 2]));
  assert.equal(out.close?.event, 'kafka.routing.unknown_broker');
  assert.deepEqual(out.toClient, [], 'the broker\'s own address never reaches the client');
});

test('a second ApiVersions (Java clients send one from SASL and one after) waits until tollgate has authenticated to the broker', async () => {
  const c = connect({ upstreamSasl: { mechanism: 'PLAIN', username: 'tollgate', password: 's3cret' } });
  const apiVersions = (id: number) => request(API_KEY.ApiVersions, 3, id, { clientSoftwareName: 'test', clientSoftwareVersion: '1' });
  assert.deepEqual(c.connection.onClientData(apiVersions(1)).toBroker, [apiVersions(1)]);
  c.connection.onBrokerData(encodeResponse({ correlationId: 1, taggedFields: [] }, API_KEY.ApiVersions, 3, { errorCode: 0, apiKeys: [], throttleTimeMs: 0 }));
  await login(c);
  // An unauthenticated broker accepts only one ApiVersions before SaslHandshake: the second waits for tollgate's SASL.
  const out = c.connection.onClientData(apiVersions(3));
  assert.deepEqual(out.toBroker.map((f) => decodeRequest(f).header.apiKey), [API_KEY.SaslHandshake]);
  assert.equal(c.connection.heldCount, 1);
});
