/**
 * Publish inspection: `reject` rules over the records of a Produce request. A refused partition is taken out of
 * the request and answered INVALID_RECORD with the batch and the reason (v8+) or POLICY_VIOLATION (before v8);
 * other partitions go on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../../src/config/schema.ts';
import { compilePolicy } from '../../../src/policy/engine.ts';
import type { Principal } from '../../../src/core/principal.ts';
import { addRejections, emptyProduceResponse, inspectProduce, withoutRejected } from '../../../src/kafka/inspect/produce.ts';
import { KafkaError } from '../../../src/kafka/protocol/error-codes.ts';
import { decodeResponse } from '../../../src/kafka/protocol/messages.ts';
import type { ProduceRequest } from '../../../src/kafka/protocol/generated/index.ts';
import { encodeBatch, type BatchHeader, type KafkaRecord } from '../../../src/kafka/protocol/records/index.ts';

const producer: Principal = { subject: 'ann', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const policy = compilePolicy(configSchema.parse({
  rules: [
    { name: 'no-cards-into-analytics', match: { kafka: { topic: 'analytics' } }, reject: { detectors: ['card'] } },
    { name: 'no-test-events', match: { kafka: { topic: 'analytics' } }, reject: { fields: { '$.type': { equals: 'test' } }, headers: { 'x-source': { matches: '^untrusted' } }, maxRecordBytes: 2048 } },
  ],
}).rules);
const plansFor = (topic: string) => policy.rejects(producer, { kind: 'kafka', api: 'Produce', operation: 'produce', topic });

const header: BatchHeader = {
  baseOffset: 0n, batchLength: 0, partitionLeaderEpoch: -1, magic: 2, crc: 0, attributes: 0, compression: 'gzip', isTransactional: false,
  isControl: false, lastOffsetDelta: 0, baseTimestamp: 1n, maxTimestamp: 1n, producerId: -1n, producerEpoch: -1, baseSequence: -1, recordCount: 0,
};
const rec = (value: string, headers: KafkaRecord['headers'] = []): KafkaRecord => ({ attributes: 0, timestampDelta: 0n, offsetDelta: 0, key: null, value: Buffer.from(value), headers });
const batch = (...records: KafkaRecord[]) => encodeBatch(header, records.map((r, i) => ({ ...r, offsetDelta: i })));

function request(partitions: Array<[topic: string, partition: number, records: Buffer]>): ProduceRequest {
  const topics = new Map<string, Array<{ index: number; records: Buffer }>>();
  for (const [topic, index, records] of partitions) topics.set(topic, [...(topics.get(topic) ?? []), { index, records }]);
  return { transactionalId: null, acks: -1, timeoutMs: 1000, topicData: [...topics].map(([name, partitionData]) => ({ name, partitionData })) } as unknown as ProduceRequest;
}

test('a card number into analytics is refused, naming the rule and the detector, never the value', () => {
  const body = request([['analytics', 0, batch(rec('{"event":"view"}'), rec('{"pay":"4111 1111 1111 1111"}'))], ['analytics', 1, batch(rec('{"event":"click"}'))]]);
  const rejections = inspectProduce(body, plansFor);
  assert.deepEqual(rejections, [{ topic: 'analytics', partition: 0, batchIndex: 0, reason: 'rule no-cards-into-analytics: the record carries a card value' }]);
  assert.deepEqual(withoutRejected(body, rejections).topicData.map((t) => [t.name, t.partitionData.map((p) => p.index)]), [['analytics', [1]]]);
});

test('field values, header patterns and record size refuse too; other topics are not read', () => {
  assert.match(inspectProduce(request([['analytics', 0, batch(rec('{"type":"test"}'))]]), plansFor)[0]!.reason, /field \$\.type/);
  assert.match(inspectProduce(request([['analytics', 0, batch(rec('{}', [{ key: 'x-source', value: Buffer.from('untrusted-laptop') }]))]]), plansFor)[0]!.reason, /header x-source/);
  assert.match(inspectProduce(request([['analytics', 0, batch(rec(`{"blob":"${'x'.repeat(3000)}"}`))]]), plansFor)[0]!.reason, /exceeds 2048/);
  assert.deepEqual(inspectProduce(request([['orders', 0, batch(rec('{"pay":"4111 1111 1111 1111"}'))]]), plansFor), []);
  assert.deepEqual(inspectProduce(request([['analytics', 0, batch(rec('{"type":"real","card":"none"}'))]]), plansFor), []);
});

test('the answer: INVALID_RECORD with the batch and reason from v8, POLICY_VIOLATION before; other partitions as the broker answered', () => {
  const rejections = [{ topic: 'analytics', partition: 0, batchIndex: 0, reason: 'rule r: the record carries a card value' }];
  for (const version of [7, 8, 12]) {
    const out = decodeResponse(addRejections(emptyProduceResponse(5, version), version, rejections), 0, version).body;
    const entry = out.responses[0]!.partitionResponses[0]!;
    assert.equal(entry.errorCode, version >= 8 ? KafkaError.INVALID_RECORD : KafkaError.POLICY_VIOLATION);
    if (version >= 8) {
      assert.deepEqual(entry.recordErrors, [{ batchIndex: 0, batchIndexErrorMessage: 'rule r: the record carries a card value' }]);
      assert.equal(entry.errorMessage, 'rule r: the record carries a card value');
    }
  }
});

test('mayInspectKafka: only principals some reject rule can apply to have their records read', () => {
  const scoped = compilePolicy(configSchema.parse({ rules: [{ name: 'r', match: { group: 'interns', kafka: { topic: 'x' } }, reject: { detectors: ['card'] } }] }).rules);
  assert.equal(scoped.mayInspectKafka(producer), false);
  assert.equal(scoped.mayInspectKafka({ ...producer, groups: ['interns'] }), true);
});

test('a shadow reject rule refuses nothing; what it would refuse comes back flagged, once per partition', () => {
  const shadowPolicy = compilePolicy(configSchema.parse({
    rules: [
      { name: 'maybe-no-emails', match: { kafka: { topic: 'analytics' } }, reject: { detectors: ['email'] }, shadow: true },
      { name: 'no-cards-into-analytics', match: { kafka: { topic: 'analytics' } }, reject: { detectors: ['card'] } },
    ],
  }).rules);
  const plans = (topic: string) => shadowPolicy.rejects(producer, { kind: 'kafka', api: 'Produce', operation: 'produce', topic });
  const body = request([
    ['analytics', 0, batch(rec('{"who":"ada@example.com"}'), rec('{"who":"alan@example.org"}'))],
    ['analytics', 1, batch(rec('{"who":"ada@example.com","pay":"4111 1111 1111 1111"}'))],
  ]);
  assert.deepEqual(inspectProduce(body, plans), [
    { topic: 'analytics', partition: 0, batchIndex: 0, reason: 'rule maybe-no-emails: the record carries a email value', shadow: true },
    { topic: 'analytics', partition: 1, batchIndex: 0, reason: 'rule no-cards-into-analytics: the record carries a card value' },
  ]);
  assert.equal(withoutRejected(body, inspectProduce(body, plans).filter((r) => r.shadow !== true)).topicData[0]!.partitionData.length, 1,
    'only the enforced refusal takes a partition out');
});
