/**
 * Insider-threat signals through the Kafka connection, with a clock the test moves: a consumer over its fetch
 * volume gets `throttle_time_ms` in its Fetch responses, then (the breach lasting) its Fetches need an approval,
 * filed as a ticket with the real approval service (in-memory SQLite) and let through by the grant; failed SASL authentications then a success flag the session, and a rule on flagged sessions refuses its
 * DeleteTopics; replayed records are refused like publish inspection's. Every signal decision is in the audit
 * records with the observed value and the threshold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { BrokerRoutes, KafkaConnection, type ConnectionOutput, type KafkaConnectionOptions } from '../../src/kafka/connection.ts';
import { configSchema } from '../../src/config/schema.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { SignalEngine, type SignalEvent } from '../../src/signals/engine.ts';
import { createKafkaSignals } from '../../src/kafka/signals.ts';
import { createKafkaApprovals } from '../../src/kafka/approval.ts';
import { ApprovalService } from '../../src/approvals/service.ts';
import { openSqliteStore } from '../../src/approvals/sqlite.ts';
import type { Principal } from '../../src/core/principal.ts';
import { API_KEY } from '../../src/kafka/protocol/api-keys.ts';
import { KafkaError } from '../../src/kafka/protocol/error-codes.ts';
import { decodeResponse, encodeResponse } from '../../src/kafka/protocol/messages.ts';
import { blank } from '../../src/kafka/authorize/plan.ts';
import { FetchRequestSchema, type FetchRequest } from '../../src/kafka/protocol/generated/index.ts';
import { MemoryAudit } from './fakes.ts';
import { authenticate, fakeAuthenticate, handshake, request, settle } from './requests.ts';
import { batch, rec } from './capture/helpers.ts';

const T0 = Date.parse('2026-11-23T10:00:00Z');

const RULES = [
  {
    name: 'orders-fetch-volume', match: { group: 'analysts', kafka: { operation: 'consume', topic: 'orders' } },
    signal: { volume: { measure: 'fetchedBytes', window: '10s', limit: 1000 }, effect: 'throttle', escalate: { after: '20s', effect: 'approve' } },
    approval: { approvers: { group: 'data-owners' }, grant: '1h' },
  },
  { name: 'brute-force-then-success', signal: { authFailures: { threshold: 5, window: '10m' } } },
  { name: 'no-replayed-orders', match: { kafka: { topic: 'orders' } }, signal: { replay: { maxAge: '1h', duplicates: '10m' }, effect: 'deny' } },
  { name: 'flagged-sessions-may-not-delete-topics', match: { kafka: { api: 'DeleteTopics' }, flagged: true }, effect: 'deny' },
  { name: 'admins', match: { group: 'platform-admins' }, effect: 'allow' },
  { name: 'analysts-orders', match: { group: 'analysts', kafka: { operation: ['consume', 'produce'], topic: 'orders' } }, effect: 'allow' },
];

function setup(withApprovals?: (clock: { now: number }) => KafkaConnectionOptions['approvals']) {
  const clock = { now: T0 };
  const audit = new MemoryAudit();
  const events: SignalEvent[] = [];
  const engine = new SignalEngine({ now: () => clock.now, onEvent: (e) => events.push(e) });
  const config = configSchema.parse({ rules: RULES });
  const policy = compilePolicy(config.rules, { now: () => clock.now, flaggedBy: (p) => engine.flaggedBy(p) });
  engine.update(policy.signals, { maxKeys: 1000, maxThrottleMs: 30_000 });
  const signals = createKafkaSignals(engine);
  const approvals = withApprovals?.(clock);
  // Every connection from 10.1.2.3 has a port of its own, as Envoy reports it.
  let port = 0;
  const connect = (overrides: Partial<KafkaConnectionOptions> = {}) => {
    const delivered: ConnectionOutput[] = [];
    const connection = new KafkaConnection({
      maxFrameBytes: 1024 * 1024, maxInFlight: 100, authenticate: fakeAuthenticate, decide: (p, a, v) => policy.decide(p, a, v),
      ...(approvals !== undefined && { approvals }),
      maxSessionLifetimeMs: 3_600_000, routes: new BrokerRoutes([]), audit, logger: pino({ level: 'silent' }),
      deliver: (output) => delivered.push(output), clock: () => clock.now, signals,
      facts: { 'source.address': `10.1.2.3:${50_000 + (port++)}`, 'source.port': 50_000 }, ...overrides,
    });
    return { connection, delivered };
  };
  return { clock, audit, events, engine, connect };
}

async function login(c: { connection: KafkaConnection; delivered: ConnectionOutput[] }, subject: string, exp = T0 / 1000 + 3600) {
  c.connection.onClientData(Buffer.concat([handshake(1), authenticate(2, `good.${subject}.${exp}`)]));
  await settle();
  return c.delivered.splice(0);
}

function fetchRequest(id: number, topic = 'orders'): Buffer {
  const body = blank<FetchRequest>(FetchRequestSchema);
  body.topics = [{ ...blank<FetchRequest['topics'][number]>(FetchRequestSchema, 'topics'), topic, partitions: [{ ...blank<FetchRequest['topics'][number]['partitions'][number]>(FetchRequestSchema, 'topics.partitions'), partition: 0, fetchOffset: 0n }] }];
  return request(API_KEY.Fetch, 12, id, body);
}

const fetchResponse = (id: number, records: Buffer) => encodeResponse({ correlationId: id, taggedFields: [] }, API_KEY.Fetch, 12, {
  throttleTimeMs: 0, errorCode: 0, sessionId: 0,
  responses: [{ topic: 'orders', partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 100n, lastStableOffset: 100n, logStartOffset: 0n, abortedTransactions: null, preferredReadReplica: -1, records }] }],
});

/** Sends a frame and waits for the connection's asynchronous work (reading and filing approvals). */
async function send(c: { connection: KafkaConnection; delivered: ConnectionOutput[] }, frame: Buffer): Promise<ConnectionOutput> {
  const out = c.connection.onClientData(frame);
  for (let i = 0; i < 40 && c.delivered.length === 0 && out.toBroker.length === 0 && out.toClient.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  const later = c.delivered.splice(0);
  return { toBroker: [...out.toBroker, ...later.flatMap((d) => d.toBroker)], toClient: [...out.toClient, ...later.flatMap((d) => d.toClient)] };
}

const signalsOf = (r: { details?: Readonly<Record<string, unknown>> } | undefined) => (r?.details?.['signals'] ?? []) as Array<Record<string, unknown>>;

test('a consumer over its fetch volume gets throttle_time_ms, then (the breach lasting) needs an approval; the grant lets it read on', async () => {
  let service: ApprovalService | undefined;
  const store = await openSqliteStore(':memory:', T0);
  const { clock, audit, events, connect } = setup((clock) => {
    service = new ApprovalService({
      store, audit: { write: () => {} }, logger: pino({ level: 'silent' }), baseUrl: 'http://127.0.0.1:9901', pollIntervalMs: 1000, clock: () => clock.now,
    });
    return createKafkaApprovals(service);
  });
  const c = connect();
  await login(c, 'alice');
  const records = batch(Array.from({ length: 5 }, (_, i) => rec(i, 'x'.repeat(100))));
  assert.ok(records.length > 500 && records.length < 1000, `one response of ${records.length} bytes stays under the limit`);
  let id = 10;
  const roundTrip = () => {
    const out = c.connection.onClientData(fetchRequest(id));
    assert.equal(out.toBroker.length, 1, 'the Fetch goes to the broker');
    const back = c.connection.onBrokerData(fetchResponse(id, records));
    id++;
    return decodeResponse(back.toClient[0]!, API_KEY.Fetch, 12).body;
  };
  assert.equal(roundTrip().throttleTimeMs, 0, 'under the limit');
  clock.now += 1000;
  const throttled = roundTrip();
  assert.ok(throttled.throttleTimeMs > 0 && throttled.throttleTimeMs <= 10_000, `throttled for ${throttled.throttleTimeMs} ms`);
  assert.equal(throttled.responses[0]!.partitions[0]!.records!.length, records.length, 'the records still reach the client: nothing breaks');
  const record = audit.records.filter((r) => r.details?.['api'] === 'Fetch').at(-1);
  assert.equal(record?.event, 'kafka.request');
  assert.deepEqual(signalsOf(record)?.map((s) => [s['signal'], s['effect'], s['measure'], s['observed'], s['threshold'], s['throttleMs']]),
    [['orders-fetch-volume', 'throttle', 'fetchedBytes', 2 * records.length, 1000, throttled.throttleTimeMs]]);
  assert.deepEqual(events.map((e) => e.event), ['breach']);
  // A client that honours the throttle comes back once the window has room, and is throttled again: the breach lasts.
  for (let s = 0; s < 3; s++) {
    clock.now += 5000;
    assert.ok(roundTrip().throttleTimeMs > 0, `${clock.now - T0} ms: throttled again`);
  }
  // 20 s into the breach (it started at 1 s): escalated.
  clock.now += 5000;
  assert.equal(roundTrip().throttleTimeMs, 0, 'the escalated effect (approve) holds the next requests, not this answer');
  assert.deepEqual(events.map((e) => e.event), ['breach', 'escalation']);
  // The next Fetch of orders needs an approval: a ticket is filed, the partition answered POLICY_VIOLATION.
  clock.now += 100;
  const held = await send(c, fetchRequest(id));
  assert.deepEqual(held.toBroker, [], 'nothing reaches the broker');
  const answer = decodeResponse(held.toClient[0]!, API_KEY.Fetch, 12).body;
  assert.equal(answer.responses[0]!.partitions[0]!.errorCode, KafkaError.POLICY_VIOLATION, 'awaiting approval is no authorization failure');
  const denied = audit.records.at(-1);
  assert.equal(denied?.event, 'kafka.request.denied');
  assert.equal(denied?.rule, 'orders-fetch-volume');
  assert.match(denied!.reason!, /^signal orders-fetch-volume: fetchedBytes of alice on topic:orders .*needs an approval until .*: approval apr_\w+ awaits an approver of data-owners/);
  assert.equal(signalsOf(denied)?.[0]?.['effect'], 'approve');
  assert.equal(signalsOf(denied)?.[0]?.['escalated'], true);
  const ticket = (denied?.details?.['approval'] as { id: string; state: string } | undefined);
  assert.equal(ticket?.state, 'pending');
  const owner: Principal = { subject: 'olga', groups: ['data-owners'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
  const filed = await service!.get(ticket!.id, owner);
  assert.equal(filed.rule, 'orders-fetch-volume', 'filed under the signal rule');
  assert.equal(filed.summary, 'kafka Fetch consume topic=orders');
  // A retry names the same ticket; approved, the grant lets the Fetch through while the key is still held.
  id++;
  const again = await send(c, fetchRequest(id));
  assert.equal(again.toBroker.length, 0);
  assert.equal((audit.records.at(-1)?.details?.['approval'] as { id: string }).id, ticket!.id);
  await service!.approve(ticket!.id, owner);
  id++;
  const granted = await send(c, fetchRequest(id));
  assert.equal(granted.toBroker.length, 1, 'the grant lets the Fetch go to the broker');
  c.connection.onBrokerData(fetchResponse(id, records));
  const through = audit.records.findLast((r) => r.details?.['correlationId'] === id);
  assert.equal((through?.details?.['approval'] as { state: string } | undefined)?.state, 'approved');
  await service!.close();
});

test('without approvals, approve fails closed: the Fetch is refused with the reason saying an approval is needed', async () => {
  const { clock, audit, connect } = setup();
  const c = connect();
  await login(c, 'alice');
  const big = batch(Array.from({ length: 20 }, (_, i) => rec(i, 'y'.repeat(100))));
  let id = 10;
  // In breach from 0 s; at 20 s it escalates to approve.
  for (let s = 0; s <= 20; s += 5) {
    clock.now = T0 + s * 1000;
    c.connection.onClientData(fetchRequest(id));
    c.connection.onBrokerData(fetchResponse(id, big));
    id++;
  }
  const held = c.connection.onClientData(fetchRequest(id));
  assert.equal(decodeResponse(held.toClient[0]!, API_KEY.Fetch, 12).body.responses[0]!.partitions[0]!.errorCode, KafkaError.POLICY_VIOLATION);
  assert.equal(audit.records.at(-1)?.rule, 'orders-fetch-volume');
  assert.match(audit.records.at(-1)!.reason!, /needs an approval until \S+ \(escalated: in breach for 20s\)$/);
});

test('five failed SASL logins from one address, then a success: the session is flagged, its DeleteTopics refused', async () => {
  const { audit, events, connect } = setup();
  for (let i = 0; i < 5; i++) {
    const c = connect();
    c.connection.onClientData(Buffer.concat([handshake(1), authenticate(2, 'forged.token')]));
    await settle();
    const close = c.delivered[0]?.close;
    assert.equal(close?.event, 'kafka.sasl.authentication_failed');
    assert.deepEqual(close?.details['failedAuthentications'], { 'brute-force-then-success': { source: i + 1 } }, 'the failure is counted, and says so');
  }
  assert.deepEqual(events.map((e) => [e.event, e.observation.observed, e.observation.threshold]), [['failures', 5, 5]]);
  const c = connect();
  await login(c, 'admin');
  const authenticated = audit.records.find((r) => r.event === 'kafka.sasl.authenticated');
  assert.deepEqual(signalsOf(authenticated)?.map((s) => [s['signal'], s['measure'], s['observed'], s['threshold']]), [['brute-force-then-success', 'failedAuthentications', 5, 5]]);
  assert.equal(events.at(-1)?.event, 'flagged');
  assert.equal(events.at(-1)?.principal?.subject, 'admin');
  const deleteTopics = request(20, 4, 30, { topics: [], topicNames: ['payments'], timeoutMs: 1000 });
  const out = c.connection.onClientData(deleteTopics);
  assert.deepEqual(out.toBroker, []);
  const body = decodeResponse(out.toClient[0]!, 20, 4).body;
  assert.equal(body.responses[0]!.errorCode, KafkaError.TOPIC_AUTHORIZATION_FAILED);
  assert.equal(audit.records.at(-1)?.rule, 'flagged-sessions-may-not-delete-topics');
  // Another admin session from elsewhere, never flagged, may delete topics.
  const other = connect({ facts: { 'source.address': '10.9.9.9:40000' } });
  await login(other, 'admin');
  assert.equal(other.connection.onClientData(request(20, 4, 31, { topics: [], topicNames: ['payments'], timeoutMs: 1000 })).toBroker.length, 0,
    'the flag is on the subject: admin stays flagged wherever it logs in from');
});

const produceResponse = (id: number, errorCode = 0) => encodeResponse({ correlationId: id, taggedFields: [] }, API_KEY.Produce, 9, {
  responses: [{ name: 'orders', partitionResponses: [{ index: 0, errorCode, baseOffset: errorCode === 0 ? 7n : -1n, logAppendTimeMs: -1n, logStartOffset: 0n, recordErrors: [], errorMessage: null }] }],
  throttleTimeMs: 0,
});
const produceOf = (id: number, records: Buffer) => request(API_KEY.Produce, 9, id, {
  transactionalId: null, acks: -1, timeoutMs: 1000, topicData: [{ name: 'orders', partitionData: [{ index: 0, records }] }],
});

test('a replayed record is refused: an old timestamp at once, a payload already produced once the broker acknowledged it', async () => {
  const { audit, clock, events, connect } = setup();
  const c = connect();
  await login(c, 'alice');
  const stale = batch([rec(0, '{"id":1}')], { baseTimestamp: BigInt(T0 - 3 * 3_600_000), maxTimestamp: BigInt(T0 - 3 * 3_600_000) });
  const refused = c.connection.onClientData(produceOf(10, stale));
  assert.deepEqual(refused.toBroker, [], 'nothing of it is written');
  const body = decodeResponse(refused.toClient[0]!, API_KEY.Produce, 9).body;
  const partition = body.responses[0]!.partitionResponses[0]!;
  assert.equal(partition.errorCode, KafkaError.INVALID_RECORD);
  assert.match(partition.errorMessage ?? '', /signal no-replayed-orders: a record to orders has the timestamp .*, 3h before tollgate's clock \(more than 1h\): refused as a replay/);
  assert.deepEqual(signalsOf(audit.records.at(-1))?.map((s) => [s['measure'], s['observed'], s['threshold']]), [['recordAgeMs', 3 * 3_600_000, 3_600_000]]);
  assert.equal(events.at(-1)?.event, 'replay');

  const fresh = () => batch([rec(0, '{"id":2,"amount":10}', 'k2')], { baseTimestamp: BigInt(clock.now), maxTimestamp: BigInt(clock.now) });
  const first = c.connection.onClientData(produceOf(11, fresh()));
  assert.equal(first.toBroker.length, 1);
  // The broker refuses it (NOT_LEADER): the client's retry is no replay.
  c.connection.onBrokerData(produceResponse(11, KafkaError.NOT_LEADER_OR_FOLLOWER));
  assert.equal(c.connection.onClientData(produceOf(12, fresh())).toBroker.length, 1);
  c.connection.onBrokerData(produceResponse(12));
  clock.now += 30_000;
  const again = c.connection.onClientData(produceOf(13, fresh()));
  assert.deepEqual(again.toBroker, []);
  const dup = decodeResponse(again.toClient[0]!, API_KEY.Produce, 9).body.responses[0]!.partitionResponses[0]!;
  assert.equal(dup.errorCode, KafkaError.INVALID_RECORD);
  assert.match(dup.errorMessage ?? '', /repeats the key and value .* produced 30s earlier \(within 10m\)/);
});

test('produced records and config changes are counted when the request leaves: a Produce over its limit is throttled, a burst of retention changes alerted', async () => {
  const clock = { now: T0 };
  const audit = new MemoryAudit();
  const events: SignalEvent[] = [];
  const engine = new SignalEngine({ now: () => clock.now, onEvent: (e) => events.push(e) });
  const policy = compilePolicy(configSchema.parse({
    rules: [
      { name: 'orders-produce-volume', match: { kafka: { operation: 'produce', topic: 'orders' } }, signal: { volume: { measure: 'producedRecords', window: '1m', limit: 2 }, effect: 'throttle' } },
      { name: 'retention-changes', match: { kafka: { api: 'IncrementalAlterConfigs' } }, signal: { volume: { measure: 'changes', configs: 'retention.*', per: ['subject'], window: '1h', limit: 2 } } },
      { name: 'admins', match: { group: 'platform-admins' }, effect: 'allow' },
    ],
  }).rules, { now: () => clock.now });
  engine.update(policy.signals, { maxKeys: 100, maxThrottleMs: 30_000 });
  const c = { delivered: [] as ConnectionOutput[], connection: undefined as unknown as KafkaConnection };
  c.connection = new KafkaConnection({
    maxFrameBytes: 1024 * 1024, maxInFlight: 100, authenticate: fakeAuthenticate, decide: (p, a) => policy.decide(p, a), maxSessionLifetimeMs: 3_600_000,
    routes: new BrokerRoutes([]), audit, logger: pino({ level: 'silent' }), deliver: (o) => c.delivered.push(o), clock: () => clock.now, signals: createKafkaSignals(engine),
  });
  await login(c, 'admin');
  const three = batch([rec(0, 'a'), rec(1, 'b'), rec(2, 'c')], { baseTimestamp: BigInt(T0), maxTimestamp: BigInt(T0) });
  assert.equal(c.connection.onClientData(produceOf(10, three)).toBroker.length, 1, 'counted and forwarded: throttle slows, it does not refuse');
  const answer = c.connection.onBrokerData(produceResponse(10));
  const body = decodeResponse(answer.toClient[0]!, API_KEY.Produce, 9).body;
  assert.ok(body.throttleTimeMs > 0, `throttle_time_ms ${body.throttleTimeMs}`);
  assert.equal(body.responses[0]!.partitionResponses[0]!.baseOffset, 7n, 'the broker\'s answer otherwise as it was');
  const produceRecord = audit.records.filter((r) => r.details?.['api'] === 'Produce').at(-1)!;
  assert.deepEqual(signalsOf(produceRecord).map((s) => [s['signal'], s['measure'], s['observed'], s['threshold']]), [['orders-produce-volume', 'producedRecords', 3, 2]]);

  const alter = (id: number, configs: string[]) => request(44, 1, id, {
    resources: [{ resourceType: 2, resourceName: 'payments', configs: configs.map((name) => ({ name, configOperation: 0, value: '1' })) }], validateOnly: false,
  });
  c.connection.onClientData(alter(20, ['retention.ms', 'cleanup.policy']));
  assert.equal(events.filter((e) => e.observation.rule === 'retention-changes').length, 0, 'one retention change so far');
  c.connection.onClientData(alter(21, ['retention.bytes', 'retention.ms']));
  const burst = events.filter((e) => e.observation.rule === 'retention-changes');
  assert.deepEqual(burst.map((e) => [e.event, e.observation.effect, e.observation.observed, e.observation.threshold, e.observation.key]), [['breach', 'alert', 3, 2, { subject: 'admin' }]]);
});
