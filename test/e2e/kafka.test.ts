/**
 * Kafka through the real Envoy (network ext_proc → tcp_proxy) and tollgate to a real SASL broker, with the
 * quickstart's rules: clients authenticate to tollgate with SASL OAUTHBEARER (tokens of the stack's dev issuer),
 * tollgate authenticates to the broker with its own SCRAM credential, and every request passes the policy.
 * Also the framing guarantees: frames reassembled whatever the TCP boundaries, closes propagate, oversize refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type Producer } from 'kafkajs';
import type { AuditRecord } from '../../src/audit/record.ts';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import { requestFrame, int32 } from '../kafka/frames.ts';
import {
  authenticate, closedWithin, connectTo, decodeMetadata, decodeSaslAuthenticate, decodeSaslHandshake, frameReader,
  metadataRequest, saslAuthenticateRequest, saslHandshakeRequest, tamperSignature, type FrameReader,
} from '../harness/kafka-client.ts';

const ANALYST = { sub: 'alice', groups: ['analysts'] } as const;
const TOPIC_AUTHORIZATION_FAILED = 29;
const SASL_AUTHENTICATION_FAILED = 58;

let stack: Stack;

before(async () => {
  stack = await startStack();
});
after(async () => { await stack?.stop(); });

const apiVersionsRequest = (correlationId: number) => requestFrame({ apiKey: 18, apiVersion: 0, correlationId, clientId: 'e2e-raw' });

/** Audit records matching `filter`, waiting up to 5 s for at least one (tollgate writes them asynchronously). */
/** The audit records matching `filter`, once at least `atLeast` of them are written (log output is asynchronous). */
async function auditWhere(filter: (r: AuditRecord) => boolean, atLeast = 1): Promise<AuditRecord[]> {
  let found: AuditRecord[] = [];
  for (let i = 0; i < 50; i++) {
    found = stack.auditRecords().filter(filter);
    if (found.length >= atLeast) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  return found;
}

/** Records of the connection from `localPort` (read it while the socket is open: a closed socket forgets it). */
const onConnection = (localPort: number | undefined) => (r: AuditRecord) => localPort !== undefined && r.connection?.['source.port'] === localPort;

/** kafkajs reports a topic authorization failure as a protocol error, or wraps it (Metadata) in a non-retriable one. */
function isTopicAuthorizationFailure(err: Error): boolean {
  const typeOf = (e: unknown) => (e as { type?: unknown } | undefined)?.type;
  return typeOf(err) === 'TOPIC_AUTHORIZATION_FAILED' || typeOf(err.cause) === 'TOPIC_AUTHORIZATION_FAILED' || /Topic authorization failed/.test(err.message);
}

async function rawAuthenticated(sub = ANALYST.sub, groups: readonly string[] = ANALYST.groups): Promise<{ socket: net.Socket; reader: FrameReader }> {
  const socket = await connectTo(stack.kafkaBootstrap);
  socket.setNoDelay(true);
  const reader = frameReader(socket);
  await authenticate(socket, reader, await stack.mintToken(sub, groups));
  return { socket, reader };
}

async function consumeAll(consumer: Consumer, topic: string, count: number): Promise<Array<{ key: string; value: Buffer; headers: Record<string, unknown> }>> {
  await consumer.subscribe({ topic, fromBeginning: true });
  const received: Array<{ key: string; value: Buffer; headers: Record<string, unknown> }> = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${count} messages within 30 s`)), 30_000);
    consumer.run({
      eachMessage: async ({ message }) => {
        received.push({ key: message.key?.toString() ?? '', value: message.value!, headers: message.headers ?? {} });
        if (received.length === count) { clearTimeout(timer); resolve(); }
      },
    }).catch((err: unknown) => { clearTimeout(timer); reject(err as Error); });
  });
  return received;
}

test('an analyst produces to orders and consumes it in an analytics-* group; every message arrives byte for byte', async () => {
  const topic = 'orders';
  const groupId = `analytics-e2e-${Date.now()}`;
  const kafka = stack.kafkaClient({ clientId: 'e2e-kafka', ...ANALYST });
  const big = randomBytes(1536 * 1024); // > 1 MiB: the Produce and Fetch frames span many TCP reads
  const messages = [
    { key: 'order-1', value: JSON.stringify({ id: 1, card: '4111111111111111', email: 'ada@example.com' }), headers: { source: 'e2e' } },
    { key: 'order-big', value: big },
    { key: 'order-2', value: Buffer.from([0, 1, 2, 255, 254]) },
  ];
  const producer: Producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages });
  await producer.disconnect();

  const consumer: Consumer = kafka.consumer({ groupId, maxBytes: 8 * 1024 * 1024 });
  await consumer.connect();
  const received = await consumeAll(consumer, topic, messages.length);
  await consumer.disconnect();

  assert.deepEqual(received.map((m) => m.key), ['order-1', 'order-big', 'order-2']);
  assert.equal(received[0]!.value.toString(), messages[0]!.value);
  assert.equal(String(received[0]!.headers['source']), 'e2e');
  assert.ok(received[1]!.value.equals(big), 'the 1.5 MiB value arrived unchanged');
  assert.ok(received[2]!.value.equals(Buffer.from([0, 1, 2, 255, 254])));

  // The group joined and committed under policy: the broker itself (direct path) has the committed offsets.
  const admin = stack.directKafka().admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.ok(offsets[0]!.partitions.every((p) => Number(p.offset) >= 3), `committed offsets: ${JSON.stringify(offsets)}`);
  } finally {
    await admin.disconnect();
  }

  // Every request was audited with the principal: Produce, and the group APIs with the group.
  const records = await auditWhere((r) => r.event === 'kafka.request' && r.principal?.subject === 'alice');
  const apis = new Set(records.map((r) => r.details?.['api']));
  for (const api of ['Produce', 'Fetch', 'JoinGroup', 'SyncGroup', 'OffsetCommit']) assert.ok(apis.has(api), `an audited ${api} request (got ${[...apis].join(', ')})`);
  assert.ok(stack.auditRecords().some((r) => r.event === 'kafka.sasl.authenticated' && r.principal?.subject === 'alice'));

  const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
  assert.match(metrics, /tollgate_kafka_frames_total\{direction="request",api="Produce"\} [1-9]/);
  assert.match(metrics, /tollgate_kafka_frames_total\{direction="response",api="Fetch"\} [1-9]/);
});

test('producing to an admin-only topic is denied with TOPIC_AUTHORIZATION_FAILED; the same producer stays usable', async () => {
  const kafka = stack.kafkaClient({ clientId: 'e2e-denied', ...ANALYST, kafkajs: { retry: { retries: 0 } } });
  const producer = kafka.producer({ retry: { retries: 0 } });
  await producer.connect();
  try {
    // Not even describable for analysts: kafkajs fails on the topic's metadata.
    await assert.rejects(producer.send({ topic: 'admin.audit-config', messages: [{ value: 'nope' }] }), (err: Error) => {
      assert.ok(isTopicAuthorizationFailure(err), `${err.name}: ${err.message}`);
      return true;
    });
    // payments: describable (analysts consume it) but not producible, so the denial is the Produce request's own.
    await assert.rejects(producer.send({ topic: 'payments', messages: [{ value: 'nope' }] }), (err: Error) => {
      assert.ok(isTopicAuthorizationFailure(err), `${err.name}: ${err.message}`);
      return true;
    });
    const [ok] = await producer.send({ topic: 'orders', messages: [{ key: 'after-denial', value: 'still here' }] });
    assert.equal(ok!.errorCode, 0);
  } finally {
    await producer.disconnect();
  }
  const denied = await auditWhere((r) => r.event === 'kafka.request.denied' && r.details?.['api'] === 'Produce' && JSON.stringify(r.details).includes('payments'));
  assert.ok(denied.length > 0, 'an audit record kafka.request.denied for the Produce to payments');
  assert.equal(denied[0]!.principal?.subject, 'alice');

  // Nothing reached the topics.
  const admin = stack.directKafka().admin();
  await admin.connect();
  try {
    for (const topic of ['admin.audit-config', 'payments']) {
      const offsets = await admin.fetchTopicOffsets(topic);
      assert.deepEqual(offsets.map((o) => o.high), ['0'], `${topic} is empty`);
    }
  } finally {
    await admin.disconnect();
  }
});

test('DeleteTopics by an analyst is refused pending approval and the topic survives (checked on the broker directly)', async () => {
  const admin = stack.kafkaClient({ clientId: 'e2e-delete', ...ANALYST, kafkajs: { retry: { retries: 0 } } }).admin();
  await admin.connect();
  try {
    await assert.rejects(admin.deleteTopics({ topics: ['orders'], timeout: 5_000 }), { type: 'POLICY_VIOLATION' });
  } finally {
    await admin.disconnect();
  }
  const denied = await auditWhere((r) => r.event === 'kafka.request.denied' && r.details?.['api'] === 'DeleteTopics');
  assert.ok(denied.length > 0, 'an audit record kafka.request.denied for DeleteTopics');
  assert.equal(denied[0]!.rule, 'topic-deletion-needs-approval');

  const direct = stack.directKafka().admin();
  await direct.connect();
  try {
    assert.ok((await direct.listTopics()).includes('orders'), 'orders still exists');
  } finally {
    await direct.disconnect();
  }
});

test('a forged or expired token is refused with a SASL authentication error; kafkajs cannot connect', async () => {
  const good = await stack.mintToken('mallory', ['platform-admins']);
  const expired = await stack.issuer.mint({ sub: 'mallory', groups: ['platform-admins'], extraClaims: { exp: Math.floor(Date.now() / 1000) - 600 } });
  for (const [label, token] of [['forged', tamperSignature(good)], ['expired', expired]] as const) {
    const kafka = new Kafka({
      clientId: `e2e-${label}`, brokers: [stack.kafkaBootstrap], logLevel: logLevel.NOTHING, retry: { retries: 0 },
      sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: token }) },
    });
    const admin = kafka.admin();
    await assert.rejects(admin.connect(), (err: Error) => {
      assert.match(`${err.name}: ${err.message}`, /SASL|authentication/i, `${label}: ${err.name}: ${err.message}`);
      return true;
    });
    await admin.disconnect().catch(() => {});
  }
  const failures = await auditWhere((r) => r.event === 'kafka.sasl.authentication_failed', 2);
  assert.ok(failures.length >= 2, `two kafka.sasl.authentication_failed records, got ${failures.length}`);
  assert.ok(!stack.auditRecords().some((r) => r.principal?.subject === 'mallory'), 'nothing was done as mallory');
});

test('a bad token on a raw connection: SASL_AUTHENTICATION_FAILED, then close; the request sent after it never reaches the broker', async () => {
  const socket = await connectTo(stack.kafkaBootstrap);
  const localPort = socket.localPort;
  const reader = frameReader(socket);
  const forged = tamperSignature(await stack.mintToken('mallory', ['platform-admins']));
  // Handshake, authenticate and a Metadata request in one write: tollgate must hold Metadata until the token is checked.
  socket.write(Buffer.concat([saslHandshakeRequest(1), saslAuthenticateRequest(2, forged), metadataRequest(3, ['orders'])]));
  const handshake = decodeSaslHandshake(await reader.next());
  assert.equal(handshake.header.correlationId, 1);
  assert.equal(handshake.body.errorCode, 0);
  assert.deepEqual(handshake.body.mechanisms, ['OAUTHBEARER']);
  const auth = decodeSaslAuthenticate(await reader.next());
  assert.equal(auth.header.correlationId, 2);
  assert.equal(auth.body.errorCode, SASL_AUTHENTICATION_FAILED, `error ${auth.body.errorCode}: ${auth.body.errorMessage}`);
  assert.match(auth.body.errorMessage ?? '', /Authentication failed/);
  const rest = await closedWithin(reader.closed, 10_000);
  assert.deepEqual(rest, [], 'no Metadata response');

  const [failure] = await auditWhere((r) => r.event === 'kafka.sasl.authentication_failed' && onConnection(localPort)(r));
  assert.ok(failure, 'an audit record kafka.sasl.authentication_failed for this connection');
  assert.match(failure.reason ?? '', /signature/);
  assert.ok(!stack.auditRecords().some((r) => onConnection(localPort)(r) && r.details?.['api'] === 'Metadata'), 'no Metadata request was audited (none was forwarded)');
});

test('a request before SASL authentication closes the connection (ApiVersions alone is allowed first)', async () => {
  const socket = await connectTo(stack.kafkaBootstrap);
  const localPort = socket.localPort;
  const reader = frameReader(socket);
  socket.write(apiVersionsRequest(41));
  const versions = await reader.next();
  assert.equal(versions.readInt32BE(4), 41);
  assert.equal(versions.readInt16BE(8), 0, 'ApiVersions error code NONE');
  socket.write(metadataRequest(42, ['orders']));
  const rest = await closedWithin(reader.closed, 10_000);
  assert.deepEqual(rest, [], 'no Metadata response');
  const [record] = await auditWhere((r) => r.event === 'kafka.sasl.unauthenticated_request' && onConnection(localPort)(r));
  assert.ok(record, 'an audit record kafka.sasl.unauthenticated_request');
  assert.equal(record.details?.['api'], 'Metadata');
});

test('after authenticating: a request written one byte at a time, and two requests in one write, get their responses in order', async () => {
  const { socket, reader } = await rawAuthenticated();
  const first = metadataRequest(7001, ['orders']);
  // A pause between bytes so each leaves in its own segment and reaches tollgate as its own read.
  for (const byte of first) {
    socket.write(Buffer.from([byte]));
    await new Promise((r) => setTimeout(r, 2));
  }
  const metadata = decodeMetadata(await reader.next());
  assert.equal(metadata.header.correlationId, 7001);
  assert.deepEqual(metadata.body.topics.map((t) => [t.name, t.errorCode]), [['orders', 0]]);
  // The broker's address is rewritten to the Envoy listener.
  assert.deepEqual(metadata.body.brokers.map((b) => `${b.host}:${b.port}`), [stack.kafkaBootstrap]);

  socket.write(Buffer.concat([metadataRequest(7002, ['orders']), metadataRequest(7003, ['admin.audit-config'])]));
  const second = decodeMetadata(await reader.next());
  const third = decodeMetadata(await reader.next());
  assert.equal(second.header.correlationId, 7002);
  assert.equal(third.header.correlationId, 7003);
  assert.deepEqual(third.body.topics.map((t) => [t.name, t.errorCode]), [['admin.audit-config', TOPIC_AUTHORIZATION_FAILED]]);
  socket.destroy();
});

test('after authenticating: a frame held incomplete for longer than Envoy\'s message timeout (5 s) keeps the connection open', async () => {
  const { socket, reader } = await rawAuthenticated();
  const frame = metadataRequest(7100, ['orders']);
  socket.write(frame.subarray(0, 10));
  // tollgate answers each partial read with an empty reply; without it Envoy would close the connection at 5 s.
  await new Promise((r) => setTimeout(r, 6_000));
  socket.write(frame.subarray(10));
  assert.equal(decodeMetadata(await reader.next()).header.correlationId, 7100);
  socket.destroy();
});

test('after authenticating: a client half-close reaches the broker, which then closes the connection', async () => {
  const { socket, reader } = await rawAuthenticated();
  socket.end();
  await closedWithin(reader.closed, 15_000);
});

test('after authenticating: a frame larger than the limit closes the connection before anything reaches the broker, and is audited', async () => {
  const { socket, reader } = await rawAuthenticated();
  const localPort = socket.localPort;
  // A size prefix of 200 MiB (over the 100 MiB default) followed by the start of a header.
  socket.write(Buffer.concat([int32(200 * 1024 * 1024), Buffer.from([0, 3, 0, 8])]));
  const rest = await closedWithin(reader.closed, 15_000);
  assert.deepEqual(rest, [], 'no response bytes');
  const [record] = await auditWhere((r) => r.event === 'kafka.frame.too_large' && r.connection?.['source.port'] === localPort);
  assert.ok(record, 'an audit record kafka.frame.too_large');
  assert.equal(record.path, 'kafka');
  assert.equal(record.details?.['size'], 200 * 1024 * 1024);
  assert.equal(typeof record.connection?.['connection.id'], 'number');
});
