/**
 * Fetch response masking, over record batches built with the batch encoder: masked values, keys and named headers
 * for topics with rules; untouched bytes for everything else; partial trailing batches dropped; control batches
 * kept; legacy or undecodable payloads answered by the rule's onUndecodable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../../src/config/schema.ts';
import { compilePolicy, type NamedMaskPlan } from '../../../src/policy/engine.ts';
import type { Principal } from '../../../src/core/principal.ts';
import { maskFetchResponse } from '../../../src/kafka/masking/fetch.ts';
import { KafkaError } from '../../../src/kafka/protocol/error-codes.ts';
import { decodeResponse, encodeResponse } from '../../../src/kafka/protocol/messages.ts';
import { ATTR_CONTROL, decodeBatch, encodeBatch, splitBatches, type BatchHeader, type Compression, type KafkaRecord } from '../../../src/kafka/protocol/records/index.ts';

const FETCH = 1;
const analyst: Principal = { subject: 'ann', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const policy = compilePolicy(configSchema.parse({
  rules: [{
    name: 'mask-payments',
    match: { group: 'analysts', kafka: { topic: 'payments' } },
    mask: { fields: { '$.card.number': 'keep-last-4' }, detectors: ['email'], keys: true, headers: ['x-email'], onUndecodable: 'fail-fetch' },
  }],
}).rules);
const plansFor = (topic: string): readonly NamedMaskPlan[] => policy.masks(analyst, { kind: 'kafka', api: 'Fetch', operation: 'consume', topic });

function header(compression: Compression, attributes = 0): BatchHeader {
  return {
    baseOffset: 100n, batchLength: 0, partitionLeaderEpoch: 0, magic: 2, crc: 0, attributes, compression, isTransactional: false,
    isControl: (attributes & ATTR_CONTROL) !== 0, lastOffsetDelta: 0, baseTimestamp: 1_700_000_000_000n, maxTimestamp: 1_700_000_000_000n,
    producerId: -1n, producerEpoch: -1, baseSequence: -1, recordCount: 0,
  };
}

const record = (i: number, value: string, key: string | null = null, headers: KafkaRecord['headers'] = []): KafkaRecord => ({
  attributes: 0, timestampDelta: 0n, offsetDelta: i, key: key === null ? null : Buffer.from(key), value: Buffer.from(value), headers,
});

const payment = (i: number) => JSON.stringify({ id: i, card: { number: '4111111111111111' }, email: `p${i}@example.com` });

function fetchResponse(topics: Array<{ topic: string; records: Buffer }>): Buffer {
  return encodeResponse({ correlationId: 9, taggedFields: [] }, FETCH, 12, {
    throttleTimeMs: 0, errorCode: 0, sessionId: 0,
    responses: topics.map(({ topic, records }) => ({
      topic,
      partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 200n, lastStableOffset: 200n, logStartOffset: 0n, abortedTransactions: null, preferredReadReplica: -1, records }],
    })),
  });
}

const recordsOf = (frame: Buffer, topic: string) =>
  decodeResponse(frame, FETCH, 12).body.responses.find((t) => t.topic === topic)!.partitions[0]!;

for (const compression of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const) {
  test(`${compression}: values, keys and named headers of a masked topic are masked; the batch re-encodes with its codec and a valid CRC`, () => {
    const batch = encodeBatch(header(compression), [0, 1, 2].map((i) => record(i, payment(i), JSON.stringify({ email: `k${i}@example.com` }), [{ key: 'x-email', value: Buffer.from(`h${i}@example.com`) }, { key: 'x-trace', value: Buffer.from('t') }])));
    const result = maskFetchResponse(fetchResponse([{ topic: 'payments', records: batch }]), 12, plansFor, {});
    assert.equal(result.maskedRecords, 3);
    const partition = recordsOf(result.frame, 'payments');
    const { batches, partial } = splitBatches(partition.records!);
    assert.equal(partial, null);
    const decoded = decodeBatch(batches[0]!);
    assert.equal(decoded.header.compression, compression);
    for (const r of decoded.records) {
      const doc = JSON.parse(r.value!.toString()) as { card: { number: string }; email: string };
      assert.equal(doc.card.number, '************1111');
      assert.doesNotMatch(r.value!.toString() + r.key!.toString() + r.headers[0]!.value!.toString(), /@example\.com/);
      assert.equal(r.headers[1]!.value!.toString(), 't');
    }
  });
}

test('a topic without rules keeps the broker\'s exact frame', () => {
  const batch = encodeBatch(header('gzip'), [record(0, payment(0))]);
  const frame = fetchResponse([{ topic: 'orders', records: batch }]);
  const result = maskFetchResponse(frame, 12, plansFor, {});
  assert.equal(result.frame, frame);
  assert.equal(result.maskedRecords, 0);
});

test('a partial trailing batch is dropped rather than forwarded unmasked; control batches pass untouched', () => {
  const control = encodeBatch({ ...header('none', ATTR_CONTROL), isControl: true }, [record(0, '\u0000\u0000\u0000\u0000')]);
  const whole = encodeBatch(header('none'), [record(0, payment(0))]);
  const next = encodeBatch({ ...header('none'), baseOffset: 101n }, [record(0, payment(1))]);
  const records = Buffer.concat([control, whole, next.subarray(0, next.length - 7)]);
  const result = maskFetchResponse(fetchResponse([{ topic: 'payments', records }]), 12, plansFor, {});
  assert.equal(result.droppedPartialBatches, 1);
  const { batches, partial } = splitBatches(recordsOf(result.frame, 'payments').records!);
  assert.equal(partial, null);
  assert.equal(batches.length, 2);
  assert.deepEqual(batches[0], control, 'the control batch is byte for byte the broker\'s');
  assert.doesNotMatch(decodeBatch(batches[1]!).records[0]!.value!.toString(), /4111111111111111/);
});

test('a value that is not UTF-8 under onUndecodable: fail-fetch answers the partition with an error and no records', () => {
  const batch = encodeBatch(header('none'), [{ ...record(0, ''), value: Buffer.from([0xff, 0xfe, 0x00]) }]);
  const result = maskFetchResponse(fetchResponse([{ topic: 'payments', records: batch }]), 12, plansFor, {});
  const partition = recordsOf(result.frame, 'payments');
  assert.equal(partition.errorCode, KafkaError.POLICY_VIOLATION);
  assert.equal(partition.records!.length, 0);
  assert.equal(result.failedPartitions.length, 1);
});
