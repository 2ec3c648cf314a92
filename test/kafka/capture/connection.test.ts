/**
 * Session capture through the Kafka connection: a Produce's audit record carries its records with the offsets the
 * broker assigned (acks=0: none); a Fetch's carries the records as served, whose bytes are left as the broker sent
 * them when no masking rule applies; principals no capture rule can apply to get no capture at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { BrokerRoutes, KafkaConnection, type KafkaCapture, type KafkaConnectionOptions } from '../../../src/kafka/connection.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { compilePolicy } from '../../../src/policy/engine.ts';
import { API_KEY } from '../../../src/kafka/protocol/api-keys.ts';
import { encodeResponse } from '../../../src/kafka/protocol/messages.ts';
import { blank } from '../../../src/kafka/authorize/plan.ts';
import { FetchRequestSchema, ProduceResponseSchema, type FetchRequest, type ProduceResponse, type ProduceResponsePartitionProduceResponse } from '../../../src/kafka/protocol/generated/index.ts';
import type { CaptureDetail } from '../../../src/kafka/capture/collector.ts';
import { MemoryAudit } from '../fakes.ts';
import { authenticate, fakeAuthenticate, fakeDecide, handshake, request, settle } from '../requests.ts';
import { batch, payment, PLANTED, rec, sha256 } from './helpers.ts';

const T0 = Date.parse('2026-11-23T10:00:00Z');

function captureOf(rules: unknown[]): KafkaCapture {
  const policy = compilePolicy(configSchema.parse({ rules }).rules);
  return {
    plansFor: (principal, operation, topic) => policy.captures(principal, { kind: 'kafka', api: operation === 'produce' ? 'Produce' : 'Fetch', operation, topic }),
    mayCapture: (principal) => policy.mayCaptureKafka(principal),
    context: {},
  };
}

/** The fake identity provider puts `alice` in analysts and `admin` in platform-admins. */
const ANALYSTS_CAPTURED = captureOf([
  { name: 'orders-digests', match: { group: 'analysts', kafka: { topic: 'orders' } }, capture: { payload: 'digest', keys: true } },
  { name: 'orders-masked-writes', match: { group: 'analysts', kafka: { operation: 'produce', topic: 'orders' } }, capture: { payload: 'masked' } },
]);

async function connected(subject: string, overrides: Partial<KafkaConnectionOptions> = {}) {
  const audit = new MemoryAudit();
  const connection = new KafkaConnection({
    maxFrameBytes: 1024 * 1024, maxInFlight: 100, authenticate: fakeAuthenticate, decide: fakeDecide, maxSessionLifetimeMs: 3_600_000,
    routes: new BrokerRoutes([]), audit, logger: pino({ level: 'silent' }), deliver: () => {}, clock: () => T0,
    capture: ANALYSTS_CAPTURED, ...overrides,
  });
  connection.onClientData(Buffer.concat([handshake(1), authenticate(2, `good.${subject}.${T0 / 1000 + 600}`)]));
  await settle();
  return { connection, audit };
}

const produceRequest = (id: number, records: Buffer, acks = -1) => request(API_KEY.Produce, 9, id, {
  transactionalId: null, acks, timeoutMs: 1000, topicData: [{ name: 'orders', partitionData: [{ index: 2, records }] }],
});

function produceResponse(id: number, baseOffset: bigint): Buffer {
  const body = blank<ProduceResponse>(ProduceResponseSchema);
  body.responses.push({
    ...blank<ProduceResponse['responses'][number]>(ProduceResponseSchema, 'responses'),
    name: 'orders',
    partitionResponses: [{ ...blank<ProduceResponsePartitionProduceResponse>(ProduceResponseSchema, 'responses.partitionResponses'), index: 2, baseOffset, logAppendTimeMs: -1n }],
  });
  return encodeResponse({ correlationId: id, taggedFields: [] }, API_KEY.Produce, 9, body);
}

function fetchRequest(id: number): Buffer {
  const body = blank<FetchRequest>(FetchRequestSchema);
  body.topics = [{ ...blank<FetchRequest['topics'][number]>(FetchRequestSchema, 'topics'), topic: 'orders', partitions: [{ ...blank<FetchRequest['topics'][number]['partitions'][number]>(FetchRequestSchema, 'topics.partitions'), partition: 2, fetchOffset: 40n }] }];
  return request(API_KEY.Fetch, 12, id, body);
}

const fetchResponse = (id: number, records: Buffer) => encodeResponse({ correlationId: id, taggedFields: [] }, API_KEY.Fetch, 12, {
  throttleTimeMs: 0, errorCode: 0, sessionId: 0,
  responses: [{ topic: 'orders', partitions: [{ partitionIndex: 2, errorCode: 0, highWatermark: 100n, lastStableOffset: 100n, logStartOffset: 0n, abortedTransactions: null, preferredReadReplica: -1, records }] }],
});

const captureOfRecord = (audit: MemoryAudit, api: string) => audit.records.filter((r) => r.details?.['api'] === api).at(-1)?.details?.['capture'] as CaptureDetail | undefined;

test('Produce (hot path): the audit record holds the records with the offsets of the broker\'s answer; masked values never the planted data', async () => {
  const { connection, audit } = await connected('alice');
  const records = batch([rec(0, payment(0), 'key-0'), rec(1, payment(1), 'key-1')], { compression: 'gzip' });
  const frame = produceRequest(10, records);
  const out = connection.onClientData(frame);
  assert.deepEqual(out.toBroker, [frame], 'the request goes to the broker byte for byte');
  assert.equal(captureOfRecord(audit, 'Produce'), undefined, 'audited when the answer leaves');
  const back = connection.onBrokerData(produceResponse(10, 40n));
  assert.equal(back.toClient.length, 1);
  const capture = captureOfRecord(audit, 'Produce')!;
  assert.deepEqual(capture.rules, ['orders-digests', 'orders-masked-writes']);
  assert.equal(capture.payload, 'masked', 'masked wins over digest');
  assert.deepEqual(capture.records.map((r) => [r.topic, r.partition, r.offset]), [['orders', 2, 40], ['orders', 2, 41]]);
  assert.equal(capture.records[0]!.key, 'key-0', 'keys, since one rule asks for them');
  assert.doesNotMatch(JSON.stringify(audit.records), PLANTED);
});

test('Produce with acks=0: audited at once, records without offsets and the reason', async () => {
  const { connection, audit } = await connected('alice');
  connection.onClientData(produceRequest(11, batch([rec(0, 'a')]), 0));
  const capture = captureOfRecord(audit, 'Produce')!;
  assert.deepEqual(capture.records.map((r) => [r.offset, r.error]), [[null, 'acks=0: the broker sends no response, so no offsets']]);
});

test('Fetch with capture and no masking rule: the broker\'s exact frame is served, its records\' digests and offsets audited', async () => {
  const { connection, audit } = await connected('alice');
  connection.onClientData(fetchRequest(12));
  const response = fetchResponse(12, batch([rec(0, 'v-40', 'k'), rec(1, 'v-41', null)], { compression: 'gzip', baseOffset: 40n }));
  const back = connection.onBrokerData(response);
  assert.deepEqual(back.toClient, [response]);
  const capture = captureOfRecord(audit, 'Fetch')!;
  assert.deepEqual(capture.rules, ['orders-digests']);
  assert.deepEqual(capture.records.map((r) => [r.offset, r.valueSha256, r.keySha256]), [[40, sha256('v-40'), sha256('k')], [41, sha256('v-41'), null]]);
});

test('no capture rule can apply to the principal: nothing is captured (and an empty Fetch has no capture either)', async () => {
  const admin = await connected('admin');
  admin.connection.onClientData(produceRequest(13, batch([rec(0, 'a')])));
  admin.connection.onBrokerData(produceResponse(13, 0n));
  admin.connection.onClientData(fetchRequest(14));
  admin.connection.onBrokerData(fetchResponse(14, batch([rec(0, 'a')])));
  assert.equal(admin.audit.records.some((r) => r.details?.['capture'] !== undefined), false);
  const alice = await connected('alice');
  alice.connection.onClientData(fetchRequest(15));
  alice.connection.onBrokerData(fetchResponse(15, Buffer.alloc(0)));
  assert.equal(captureOfRecord(alice.audit, 'Fetch'), undefined);
});

test('a capture that cannot be made is said in the audit record; the traffic goes on', async () => {
  const { connection, audit } = await connected('alice', {
    capture: captureOf([{ name: 'hashed', match: { kafka: { topic: 'orders' } }, capture: { payload: 'masked', mask: { fields: { '$.id': 'hash' } } } }]),
  });
  connection.onClientData(produceRequest(16, batch([rec(0, '{"id":"x"}')])));
  const back = connection.onBrokerData(produceResponse(16, 0n));
  assert.equal(back.toClient.length, 1);
  assert.match(String((captureOfRecord(audit, 'Produce') as unknown as { error: string }).error), /hash mask strategy needs a key/);
});

test('a split Produce (one topic denied): only the records sent to the broker are captured, with the broker\'s offsets', async () => {
  const { connection, audit } = await connected('alice', { capture: captureOf([{ name: 'all', match: {}, capture: { payload: 'digest' } }]) });
  const frame = request(API_KEY.Produce, 9, 17, {
    transactionalId: null, acks: -1, timeoutMs: 1000,
    topicData: [{ name: 'admin.audit', partitionData: [{ index: 0, records: batch([rec(0, 'denied')]) }] }, { name: 'orders', partitionData: [{ index: 2, records: batch([rec(0, 'allowed')]) }] }],
  });
  const out = connection.onClientData(frame);
  assert.equal(out.toBroker.length, 1);
  assert.notDeepEqual(out.toBroker[0], frame, 'the allowed part only');
  connection.onBrokerData(produceResponse(17, 8n));
  const record = audit.records.filter((r) => r.details?.['api'] === 'Produce').at(-1)!;
  assert.equal(record.event, 'kafka.request.partially_denied');
  assert.deepEqual((record.details!['capture'] as CaptureDetail).records.map((r) => [r.topic, r.offset, r.valueSha256]), [['orders', 8, sha256('allowed')]]);
});
