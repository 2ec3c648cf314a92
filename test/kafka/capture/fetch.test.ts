/**
 * Session capture of a Fetch: the records as served, after masking, in the same pass as the masking. Digests are
 * SHA-256 of the bytes the client receives; offsets are the batch's base offset plus the record's delta; a
 * compressed batch of a topic no masking rule touches is decompressed for the capture and served as the broker sent
 * it; what is not served as records (a partial trailing batch, a partition answered with an error, control batches)
 * is not captured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../../src/config/schema.ts';
import { compilePolicy, type NamedMaskPlan } from '../../../src/policy/engine.ts';
import { FetchCapture } from '../../../src/kafka/capture/fetch.ts';
import { maskFetchResponse } from '../../../src/kafka/masking/fetch.ts';
import { API_KEY } from '../../../src/kafka/protocol/api-keys.ts';
import { decodeResponse, encodeResponse } from '../../../src/kafka/protocol/messages.ts';
import { ATTR_CONTROL, ATTR_TIMESTAMP_TYPE, ATTR_TRANSACTIONAL, decodeBatch, splitBatches } from '../../../src/kafka/protocol/records/index.ts';
import { ann, batch, captureOf, payment, PLANTED, rec, sha256, corrupted } from './helpers.ts';

const VERSION = 12;
const masking = compilePolicy(configSchema.parse({
  rules: [{ name: 'mask-payments', match: { kafka: { topic: 'payments' } }, mask: { fields: { '$.card.number': 'keep-last-4' }, detectors: ['email'] } }],
}).rules);
const maskPlans = (topic: string): readonly NamedMaskPlan[] => masking.masks(ann, { kind: 'kafka', api: 'Fetch', operation: 'consume', topic });
const noMasks = (): readonly NamedMaskPlan[] => [];

const digestAll = captureOf([{ name: 'digest-reads', match: { kafka: { operation: 'consume' } }, capture: { payload: 'digest', keys: true } }])('consume');

function fetchResponse(...partitions: Array<[topic: string, partition: number, records: Buffer]>): Buffer {
  const topics = new Map<string, Array<{ partitionIndex: number; records: Buffer }>>();
  for (const [topic, partitionIndex, records] of partitions) topics.set(topic, [...(topics.get(topic) ?? []), { partitionIndex, records }]);
  return encodeResponse({ correlationId: 9, taggedFields: [] }, API_KEY.Fetch, VERSION, {
    throttleTimeMs: 0, errorCode: 0, sessionId: 0,
    responses: [...topics].map(([topic, parts]) => ({
      topic,
      partitions: parts.map(({ partitionIndex, records }) => ({ partitionIndex, errorCode: 0, highWatermark: 1000n, lastStableOffset: 1000n, logStartOffset: 0n, abortedTransactions: null, preferredReadReplica: -1, records })),
    })),
  });
}

/** The records the client gets of a topic's partition in `frame`, with their offsets. */
function served(frame: Buffer, topic: string, partition = 0): Array<{ offset: bigint; value: Buffer | null; key: Buffer | null }> {
  const records = decodeResponse(frame, API_KEY.Fetch, VERSION).body.responses.find((t) => t.topic === topic)!.partitions.find((p) => p.partitionIndex === partition)!.records!;
  return splitBatches(records).batches.flatMap((b) => {
    const decoded = decodeBatch(b);
    return decoded.header.isControl ? [] : decoded.records.map((r) => ({ offset: decoded.header.baseOffset + BigInt(r.offsetDelta), value: r.value, key: r.key }));
  });
}

for (const compression of ['none', 'gzip', 'lz4'] as const) {
  test(`${compression}: a masked topic's digests are of the masked bytes the client receives, at the offsets it reads`, () => {
    const frame = fetchResponse(['payments', 0, batch([0, 1, 2].map((i) => rec(i, payment(i), `k${i}`)), { compression, baseOffset: 500n })]);
    const capture = new FetchCapture(digestAll, {});
    const result = maskFetchResponse(frame, VERSION, maskPlans, {}, capture);
    assert.equal(result.maskedRecords, 3);
    const client = served(result.frame, 'payments');
    const detail = capture.detail()!;
    assert.deepEqual(detail.rules, ['digest-reads']);
    assert.deepEqual(detail.records.map((r) => [r.offset, r.valueSha256, r.keySha256, r.size]), client.map((c) => [Number(c.offset), sha256(c.value!), sha256(c.key!), c.value!.length]));
    assert.deepEqual(detail.records.map((r) => r.offset), [500, 501, 502]);
    assert.notEqual(detail.records[0]!.valueSha256, sha256(payment(0)), 'not the digest of the broker\'s bytes: the client never saw those');
  });
}

test('a compressed topic no masking rule touches: decompressed for the capture alone, the broker\'s frame served unchanged', () => {
  const frame = fetchResponse(['orders', 3, batch([rec(0, 'o-0'), rec(1, null)], { compression: 'gzip', baseOffset: 7n })]);
  for (const plans of [noMasks, maskPlans]) {
    const capture = new FetchCapture(digestAll, {});
    const result = maskFetchResponse(frame, VERSION, plans, {}, capture);
    assert.equal(result.frame, frame, 'the very same bytes');
    assert.deepEqual(capture.detail()!.records.map((r) => [r.topic, r.partition, r.offset, r.valueSha256, r.size]), [['orders', 3, 7, sha256('o-0'), 3], ['orders', 3, 8, null, 0]]);
  }
});

test('timestamps: create time per record, or the batch\'s max timestamp under log append time', () => {
  const frame = fetchResponse(
    ['orders', 0, batch([rec(0, 'a'), rec(1, 'b')], { baseTimestamp: 1_000n, maxTimestamp: 1_001n })],
    ['orders', 1, batch([rec(0, 'a'), rec(1, 'b')], { attributes: ATTR_TIMESTAMP_TYPE, baseTimestamp: 1_000n, maxTimestamp: 9_999n })],
  );
  const capture = new FetchCapture(digestAll, {});
  maskFetchResponse(frame, VERSION, noMasks, {}, capture);
  assert.deepEqual(capture.detail()!.records.map((r) => [r.partition, r.timestamp]), [[0, 1_000], [0, 1_001], [1, 9_999], [1, 9_999]]);
});

test('masked capture of records served unmasked (no masking rule for this consumer) still masks: no planted card number or email', () => {
  const capture = new FetchCapture(captureOf([{ name: 'm', match: {}, capture: { payload: 'masked', keys: true } }])('consume'), {});
  const frame = fetchResponse(['payments', 0, batch([rec(0, payment(0), 'ann@example.com'), rec(1, payment(1))], { compression: 'zstd' })]);
  const result = maskFetchResponse(frame, VERSION, noMasks, {}, capture);
  assert.equal(result.frame, frame);
  const detail = capture.detail()!;
  assert.equal(detail.payload, 'masked');
  assert.equal(detail.records.length, 2);
  assert.doesNotMatch(JSON.stringify(detail), PLANTED);
  assert.equal((JSON.parse(detail.records[1]!.value!) as { id: number }).id, 1);
});

test('masked capture of records served masked: what was served, masked by the capture on top', () => {
  const capture = new FetchCapture(captureOf([{ name: 'm', match: {}, capture: { payload: 'masked', mask: { detectors: ['card'] } } }])('consume'), {});
  const result = maskFetchResponse(fetchResponse(['payments', 0, batch([rec(0, payment(0))])]), VERSION, maskPlans, {}, capture);
  const value = capture.detail()!.records[0]!.value!;
  assert.deepEqual(JSON.parse(value), JSON.parse(JSON.stringify({ ...JSON.parse(served(result.frame, 'payments')[0]!.value!.toString()), note: 'call [REDACTED] or mail [REDACTED]' })));
  assert.doesNotMatch(value, PLANTED);
});

test('not captured: a partial trailing batch, control batches, a partition answered with an error; transactional data is', () => {
  const whole = batch([rec(0, 'tx')], { attributes: ATTR_TRANSACTIONAL, producerId: 4n, baseOffset: 10n });
  const marker = batch([rec(0, Buffer.from([0, 0, 0, 0]), Buffer.from([0, 0, 0, 0]))], { attributes: ATTR_CONTROL | ATTR_TRANSACTIONAL, baseOffset: 11n });
  const cut = batch([rec(0, 'later')], { baseOffset: 12n }).subarray(0, 30);
  const failing = compilePolicy(configSchema.parse({ rules: [{ name: 'strict', match: { kafka: { topic: 'strict' } }, mask: { fields: { '$.x': 'redact' }, onUndecodable: 'fail' } }] }).rules);
  const capture = new FetchCapture(digestAll, {});
  const result = maskFetchResponse(
    fetchResponse(['orders', 0, Buffer.concat([whole, marker, cut])], ['payments', 0, Buffer.concat([batch([rec(0, payment(0))]), cut])], ['strict', 0, batch([rec(0, '{"x":1}'), rec(1, 'not json')])]),
    VERSION,
    (topic) => failing.masks(ann, { kind: 'kafka', api: 'Fetch', operation: 'consume', topic }).concat(maskPlans(topic)),
    {},
    capture,
  );
  assert.equal(result.failedPartitions.length, 1, 'strict is answered with an error, not data');
  assert.deepEqual(capture.detail()!.records.map((r) => [r.topic, r.offset]), [['orders', 10], ['payments', 0]]);
});

test('past maxRecords: counted from batch headers of untouched topics (nothing decompressed), counted after masking for masked ones', () => {
  const few = captureOf([{ name: 'few', match: {}, capture: { payload: 'digest', maxRecords: 2 } }])('consume');
  const corrupt = corrupted(batch([rec(0, 'a'), rec(1, 'b'), rec(2, 'c')], { compression: 'gzip' }));
  const capture = new FetchCapture(few, {});
  maskFetchResponse(fetchResponse(['payments', 0, batch([0, 1, 2].map((i) => rec(i, payment(i))))], ['orders', 0, corrupt]), VERSION, maskPlans, {}, capture);
  const detail = capture.detail()!;
  assert.equal(detail.records.length, 2);
  assert.equal(detail.truncated, 1 + 3);
  assert.equal(detail.unreadable, undefined, 'the corrupt batch past the limit was never read');
});

test('an unreadable batch of an untouched topic is said, the frame still served as the broker sent it', () => {
  const corrupt = corrupted(batch([rec(0, 'a')]));
  const frame = fetchResponse(['orders', 0, corrupt]);
  const capture = new FetchCapture(digestAll, {});
  assert.equal(maskFetchResponse(frame, VERSION, noMasks, {}, capture).frame, frame);
  assert.deepEqual(capture.detail()!.unreadable!.map((u) => [u.topic, u.partition]), [['orders', 0]]);
  assert.match(capture.detail()!.unreadable![0]!.reason, /CRC-32C/);
});

test('no record of a captured topic: no capture detail; a topic without capture rules is not even decoded for it', () => {
  const scoped = captureOf([{ name: 'p', match: { kafka: { topic: 'payments' } }, capture: { payload: 'digest' } }])('consume');
  const corrupt = corrupted(batch([rec(0, 'a')]));
  const capture = new FetchCapture(scoped, {});
  maskFetchResponse(fetchResponse(['orders', 0, corrupt], ['payments', 0, Buffer.alloc(0)]), VERSION, noMasks, {}, capture);
  assert.equal(capture.detail(), undefined);
});
