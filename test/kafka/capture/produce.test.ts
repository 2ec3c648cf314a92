/**
 * Session capture of a Produce: records read from the request's batches when it leaves, offsets from the broker's
 * answer. Digests are SHA-256 of the exact bytes sent; masked payloads never hold a planted card number or email;
 * past maxRecords records are counted, not read; failed partitions and acks=0 have no offsets, and say why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { captureProduce, produceRecordsOf, type ProduceRecords } from '../../../src/kafka/capture/produce.ts';
import { API_KEY } from '../../../src/kafka/protocol/api-keys.ts';
import { KafkaError } from '../../../src/kafka/protocol/error-codes.ts';
import { decodeRequest, encodeRequest, encodeResponse, readProduceRequest } from '../../../src/kafka/protocol/messages.ts';
import { ProduceResponseSchema, type ProduceRequest, type ProduceResponse, type ProduceResponsePartitionProduceResponse } from '../../../src/kafka/protocol/generated/index.ts';
import { blank } from '../../../src/kafka/authorize/plan.ts';
import { ATTR_CONTROL, ATTR_TRANSACTIONAL } from '../../../src/kafka/protocol/records/index.ts';
import { batch, captureOf, payment, PLANTED, rec, sha256, corrupted } from './helpers.ts';

const VERSION = 9;

const request = (...partitions: Array<[topic: string, partition: number, records: Buffer | null]>): ProduceRecords => {
  const topics = new Map<string, Array<{ index: number; records: Buffer | null }>>();
  for (const [topic, index, records] of partitions) topics.set(topic, [...(topics.get(topic) ?? []), { index, records }]);
  return { topics: [...topics].map(([name, parts]) => ({ name, partitions: parts })) };
};

type Answer = [topic: string, partition: number, fields: Partial<ProduceResponsePartitionProduceResponse>];

/** A Produce response frame as the broker sends it: per partition an error code and a base offset. */
function response(...answers: Answer[]): Buffer {
  const body = blank<ProduceResponse>(ProduceResponseSchema);
  for (const [name, index, fields] of answers) {
    let topic = body.responses.find((t) => t.name === name);
    if (topic === undefined) {
      topic = { ...blank<ProduceResponse['responses'][number]>(ProduceResponseSchema, 'responses'), name };
      body.responses.push(topic);
    }
    topic.partitionResponses.push({ ...blank<ProduceResponsePartitionProduceResponse>(ProduceResponseSchema, 'responses.partitionResponses'), index, logAppendTimeMs: -1n, ...fields });
  }
  return encodeResponse({ correlationId: 7, taggedFields: [] }, API_KEY.Produce, VERSION, body);
}

const digestRules = [{ name: 'digest-payments', match: { kafka: { operation: 'produce', topic: 'payments' } }, capture: { payload: 'digest', keys: true } }];

for (const compression of ['none', 'gzip', 'zstd'] as const) {
  test(`${compression}: digests are SHA-256 of the exact value and key bytes; offsets are the partition's base offset plus the record's delta`, () => {
    const values = [payment(0), payment(1), null, Buffer.from([0xff, 0x00, 0xfe])];
    const records = values.map((v, i) => rec(i, v, i === 1 ? null : `k-${i}`));
    const pending = captureProduce(request(['payments', 0, batch(records, { compression })], ['orders', 0, batch([rec(0, payment(9))])]), captureOf(digestRules)('produce'), {});
    assert.ok(pending, 'a topic under capture makes a pending capture');
    const detail = pending.complete(response(['payments', 0, { baseOffset: 41n }], ['orders', 0, { baseOffset: 3n }]), VERSION)!;
    assert.deepEqual(detail.rules, ['digest-payments']);
    assert.equal(detail.payload, 'digest');
    assert.deepEqual(detail.records, values.map((v, i) => ({
      topic: 'payments', partition: 0, offset: 41 + i, timestamp: 1_700_000_000_000 + i, size: v === null ? 0 : Buffer.from(v).length,
      valueSha256: v === null ? null : sha256(Buffer.from(v)),
      keySha256: i === 1 ? null : sha256(`k-${i}`),
    })), 'orders has no capture rule: not captured');
    assert.equal(detail.truncated, undefined);
  });
}

test('no capture rule for any topic of the request: nothing is read, no pending capture', () => {
  assert.equal(captureProduce(request(['orders', 0, batch([rec(0, 'x')])]), captureOf(digestRules)('produce'), {}), undefined);
});

test('masked: values and keys go through the capture\'s mask (default: every detector), never holding a planted card number or email', () => {
  const rules = [{ name: 'masked-payments', match: { kafka: { topic: 'payments' } }, capture: { payload: 'masked', keys: true } }];
  const records = [rec(0, payment(0), JSON.stringify({ email: 'k0@example.com' })), rec(1, payment(1), 'k1@example.com'), rec(2, 'plain text 4111111111111111')];
  const detail = captureProduce(request(['payments', 0, batch(records, { compression: 'gzip' })]), captureOf(rules)('produce'), {})!.complete(response(['payments', 0, { baseOffset: 0n }]), VERSION)!;
  assert.equal(detail.payload, 'masked');
  assert.doesNotMatch(JSON.stringify(detail), PLANTED);
  const first = JSON.parse(detail.records[0]!.value!) as { id: number; card: { number: string } };
  assert.equal(first.id, 0, 'what no detector finds is kept');
  assert.equal(first.card.number, '[REDACTED]');
  assert.equal(detail.records[1]!.key, '[REDACTED]', 'a plain string key is read as text, detectors and all');
  assert.equal(detail.records[2]!.value, '[REDACTED]', 'a value that is not JSON is redacted whole by default');
  assert.equal(detail.records[0]!.valueSha256, undefined, 'masked captures hold no digests');
});

test('masked with the rule\'s own mask: fields and strategies; onUndecodable pass reads text and gives bytes that are not UTF-8 as base64', () => {
  const rules = [{
    name: 'm', match: {},
    capture: { payload: 'masked', mask: { fields: { '$.card.number': 'keep-last-4' }, detectors: ['email', 'card'], onUndecodable: 'pass' } },
  }];
  const binary = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
  const detail = captureProduce(request(['t', 0, batch([rec(0, payment(0)), rec(1, 'mail me: bob@example.com'), rec(2, binary)])]), captureOf(rules)('produce'), {})!
    .complete(response(['t', 0, { baseOffset: 0n }]), VERSION)!;
  assert.equal((JSON.parse(detail.records[0]!.value!) as { card: { number: string } }).card.number, '************1111');
  assert.equal(detail.records[1]!.value, 'mail me: [REDACTED]');
  assert.equal(detail.records[2]!.value, binary.toString('base64'));
  assert.equal(detail.records[2]!.valueEncoding, 'base64');
  assert.equal(detail.records[0]!.valueEncoding, undefined);
  const redacting = captureProduce(request(['t', 0, batch([rec(0, binary)])]), captureOf([{ name: 'm', match: {}, capture: { payload: 'masked' } }])('produce'), {})!
    .complete(response(['t', 0, { baseOffset: 0n }]), VERSION)!;
  assert.equal(redacting.records[0]!.value, '[REDACTED]', 'by default bytes no detector can read are not kept');
});

test('past maxRecords records are counted from the batch headers, not decompressed or read', () => {
  const rules = [{ name: 'few', match: {}, capture: { payload: 'digest', maxRecords: 3 } }];
  const corrupt = corrupted(batch([rec(0, 'a'), rec(1, 'b'), rec(2, 'c'), rec(3, 'd')], { compression: 'gzip' }));
  const detail = captureProduce(request(['t', 0, batch([0, 1, 2, 3, 4].map((i) => rec(i, `v${i}`)))], ['t', 1, corrupt]), captureOf(rules)('produce'), {})!
    .complete(response(['t', 0, { baseOffset: 10n }], ['t', 1, { baseOffset: 0n }]), VERSION)!;
  assert.deepEqual(detail.records.map((r) => r.offset), [10, 11, 12]);
  assert.equal(detail.truncated, 2 + 4);
  assert.equal(detail.unreadable, undefined, 'the corrupt batch past the limit was never read');
});

test('a partition the broker refused has no offsets and says why; so does one missing from the answer', () => {
  const detail = captureProduce(request(['payments', 0, batch([rec(0, 'a')])], ['payments', 1, batch([rec(0, 'b')])], ['payments', 2, batch([rec(0, 'c')])]), captureOf(digestRules)('produce'), {})!
    .complete(response(
      ['payments', 0, { baseOffset: 5n }],
      ['payments', 1, { errorCode: KafkaError.NOT_LEADER_OR_FOLLOWER, baseOffset: -1n, errorMessage: 'leader moved' }],
    ), VERSION)!;
  assert.deepEqual(detail.records.map((r) => [r.partition, r.offset, r.error]), [
    [0, 5, undefined],
    [1, null, 'NOT_LEADER_OR_FOLLOWER (6): leader moved'],
    [2, null, 'the response has no answer for the partition'],
  ]);
});

test('acks=0: captured without offsets, the reason given', () => {
  const detail = captureProduce(request(['payments', 0, batch([rec(0, 'a'), rec(1, 'b')])]), captureOf(digestRules)('produce'), {})!.complete(undefined, VERSION)!;
  assert.deepEqual(detail.records.map((r) => [r.offset, r.error]), [[null, 'acks=0: the broker sends no response, so no offsets'], [null, 'acks=0: the broker sends no response, so no offsets']]);
});

test('a topic with log append time: the broker\'s time from the answer replaces the producer\'s', () => {
  const detail = captureProduce(request(['payments', 0, batch([rec(0, 'a'), rec(1, 'b')])]), captureOf(digestRules)('produce'), {})!
    .complete(response(['payments', 0, { baseOffset: 0n, logAppendTimeMs: 1_800_000_000_000n }]), VERSION)!;
  assert.deepEqual(detail.records.map((r) => r.timestamp), [1_800_000_000_000, 1_800_000_000_000]);
});

test('transactional batches are captured; control batches are not; later batches of a partition continue its offsets', () => {
  const marker = batch([rec(0, Buffer.from([0, 0, 0, 0]), Buffer.from([0, 0, 0, 0]))], { attributes: ATTR_CONTROL | ATTR_TRANSACTIONAL });
  const records = Buffer.concat([batch([rec(0, 'tx-0'), rec(1, 'tx-1')], { attributes: ATTR_TRANSACTIONAL, producerId: 7n }), marker, batch([rec(0, 'after')])]);
  const detail = captureProduce(request(['payments', 0, records]), captureOf(digestRules)('produce'), {})!.complete(response(['payments', 0, { baseOffset: 100n }]), VERSION)!;
  assert.deepEqual(detail.records.map((r) => [r.offset, r.valueSha256]), [[100, sha256('tx-0')], [101, sha256('tx-1')], [103, sha256('after')]]);
});

test('unreadable records are said per partition; the rest is still captured', () => {
  const bad = corrupted(batch([rec(0, 'x')]));
  const detail = captureProduce(request(['payments', 0, bad], ['payments', 1, batch([rec(0, 'ok')])], ['payments', 2, batch([rec(0, 'cut')]).subarray(0, 40)]), captureOf(digestRules)('produce'), {})!
    .complete(response(['payments', 1, { baseOffset: 0n }]), VERSION)!;
  assert.deepEqual(detail.records.map((r) => r.partition), [1]);
  assert.deepEqual(detail.unreadable?.map((u) => u.partition), [0, 2]);
  assert.match(detail.unreadable![0]!.reason, /CRC-32C/);
  assert.match(detail.unreadable![1]!.reason, /end inside a batch/);
});

test('an unreadable answer leaves the offsets null with the reason', () => {
  const pending = captureProduce(request(['payments', 0, batch([rec(0, 'a')])]), captureOf(digestRules)('produce'), {})!;
  const detail = pending.complete(response(['payments', 0, { baseOffset: 1n }]).subarray(0, 12), VERSION)!;
  assert.equal(detail.records[0]!.offset, null);
  assert.match(detail.records[0]!.error!, /^unreadable Produce response/);
});

test('the hot path\'s view of a Produce frame and the decoder\'s output capture the same', () => {
  const frame = encodeRequest({ apiKey: API_KEY.Produce, apiVersion: VERSION, correlationId: 3, clientId: 'c', taggedFields: [] }, {
    transactionalId: null, acks: -1, timeoutMs: 1000,
    topicData: [{ name: 'payments', partitionData: [{ index: 0, records: batch([rec(0, 'a', 'k'), rec(1, 'b')], { compression: 'gzip' }) }, { index: 1, records: batch([rec(0, 'c')]) }] }],
  });
  const answer = response(['payments', 0, { baseOffset: 3n }], ['payments', 1, { baseOffset: 9n }]);
  const fromView = captureProduce(readProduceRequest(frame), captureOf(digestRules)('produce'), {})!.complete(answer, VERSION)!;
  const fromDecoded = captureProduce(produceRecordsOf(decodeRequest(frame).body as ProduceRequest), captureOf(digestRules)('produce'), {})!.complete(answer, VERSION)!;
  assert.deepEqual(fromDecoded, fromView);
  assert.deepEqual(fromView.records.map((r) => [r.partition, r.offset]), [[0, 3], [0, 4], [1, 9]]);
});
