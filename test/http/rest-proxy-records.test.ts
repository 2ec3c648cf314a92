/**
 * Records in Kafka REST Proxy bodies: produced records read as the bytes the proxy writes (so `reject` rules judge
 * them as they judge a wire Produce), consumed records masked per topic as Kafka Fetch masking masks them, records of
 * topics the principal may not read left out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../src/config/schema.ts';
import { compilePolicy, type NamedMaskPlan } from '../../src/policy/engine.ts';
import type { Principal } from '../../src/core/principal.ts';
import { rejectReason, type InspectedRecord } from '../../src/policy/reject.ts';
import { inspectProduce } from '../../src/kafka/inspect/produce.ts';
import { maskFetchResponse } from '../../src/kafka/masking/fetch.ts';
import { decodeResponse, encodeResponse } from '../../src/kafka/protocol/messages.ts';
import type { ProduceRequest } from '../../src/kafka/protocol/generated/index.ts';
import { decodeBatch, encodeBatch, splitBatches, type BatchHeader, type KafkaRecord } from '../../src/kafka/protocol/records/index.ts';
import { MaskingFailure, type MaskTally } from '../../src/masking/units.ts';
import { RestProxyBodyError } from '../../src/http/rest-proxy.ts';
import { jsonSequenceSplitter } from '../../src/masking/json-sequence.ts';
import {
  consumedRecordAction, embeddedFormat, inspectedRecords, maskConsumedRecords, produceFormat, type EmbeddedFormat,
} from '../../src/http/rest-proxy-records.ts';

const V3 = { api: 'v3', batch: false } as const;
const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');
const record = (key: string | Buffer | null, value: string | Buffer | null, headers: Array<[string, string | null]> = []): InspectedRecord => ({
  key: key === null ? null : Buffer.from(key),
  value: value === null ? null : Buffer.from(value),
  headers: headers.map(([k, v]) => ({ key: k, value: v === null ? null : Buffer.from(v) })),
});

// ---------------------------------------------------------------------------------------------------------------
// Produced records
// ---------------------------------------------------------------------------------------------------------------

test('v3 records: each embedded type gives the bytes a wire producer of that type sends', () => {
  const cases: Array<[string, InspectedRecord]> = [
    // JSON: compact serialization (KafkaJsonSerializer); strings re-escaped; number literals exactly as written.
    ['{"value": {"type": "JSON", "data": {"card": 4111111111111111111, "n": 1.50, "s": "\\u0041\\/é", "list": [ 1, {"a": null} ]}}}',
      record(null, '{"card":4111111111111111111,"n":1.50,"s":"A/é","list":[1,{"a":null}]}')],
    ['{"value": {"type": "JSON", "data": "just a string"}}', record(null, '"just a string"')],
    ['{"key": {"type": "STRING", "data": "user-1 ✓"}, "value": {"type": "BINARY", "data": "AAEC/w=="}}', record('user-1 ✓', Buffer.from([0, 1, 2, 255]))],
    ['{"key": {"type": "string", "data": "k"}, "value": {"type": "json", "data": 7}}', record('k', '7')],
    // Schema Registry types: the JSON data is what is inspected (the registry's bytes cannot be made here).
    ['{"value": {"type": "AVRO", "schema": "{\\"type\\":\\"string\\"}", "data": "hello"}}', record(null, '"hello"')],
    ['{"value": {"schema_id": 3, "data": {"id": 1}}}', record(null, '{"id":1}')],
    ['{"value": {"subject": "orders-value", "data": {"id": 2}}}', record(null, '{"id":2}')],
    // Tombstones and absent parts; headers base64-decoded, null header values kept.
    ['{"key": {"type": "STRING", "data": "k"}, "value": {"type": "JSON", "data": null}}', record('k', null)],
    ['{"key": {"type": "BINARY"}, "value": null, "headers": null}', record(null, null)],
    ['{"value": {"type": "STRING", "data": "v"}, "headers": [{"name": "trace", "value": "dHJhY2UtMQ=="}, {"name": "empty", "value": null}], "partition_id": 1, "timestamp": "2026-01-01T00:00:00Z"}',
      record(null, 'v', [['trace', 'trace-1'], ['empty', null]])],
  ];
  for (const [unit, expected] of cases) assert.deepEqual(inspectedRecords(unit, V3), [expected], unit);
});

test('v3 batch and v2 bodies: every record, in order', () => {
  assert.deepEqual(inspectedRecords('{"entries": [{"id": "1", "value": {"type": "STRING", "data": "a"}}, {"id": 2, "key": {"type": "BINARY", "data": "a2V5"}}]}', { api: 'v3', batch: true }),
    [record(null, 'a'), record('key', null)]);
  const v2 = (embedded: EmbeddedFormat, body: string) => inspectedRecords(body, produceFormat('v2', `application/vnd.kafka.${embedded}.v2+json`));
  assert.deepEqual(v2('json', '{"records": [{"key": "k", "value": {"card": "4111 1111 1111 1111", "big": 12345678901234567890}}, {"value": null}, {"value": [1, "x"], "partition": 0}]}'),
    [record('"k"', '{"card":"4111 1111 1111 1111","big":12345678901234567890}'), record(null, null), record(null, '[1,"x"]')]);
  assert.deepEqual(v2('binary', `{"records": [{"key": "${b64('k1')}", "value": "${b64('{"a":1}')}"}, {"value": null}]}`), [record('k1', '{"a":1}'), record(null, null)]);
  assert.deepEqual(v2('avro', '{"value_schema": "{\\"type\\":\\"record\\"}", "records": [{"value": {"name": "x"}}]}'), [record(null, '{"name":"x"}')]);
  assert.deepEqual(v2('protobuf', '{"value_schema_id": 4, "records": [{"value": {"id": 1}}]}'), [record(null, '{"id":1}')]);
});

test('a v3 stream, split by the sequence splitter at any byte, gives each record once', () => {
  const body = Buffer.from('{"value":{"type":"JSON","data":{"a":"}{"}}}\n{"value":{"type":"STRING","data":"{\\"b\\":2}"}}{"value":{"type":"BINARY","data":"eA=="}}');
  for (let cut = 0; cut <= body.length; cut++) {
    const splitter = jsonSequenceSplitter(4096);
    const units = [...splitter.push(body.subarray(0, cut)), ...splitter.push(body.subarray(cut))];
    splitter.end();
    assert.deepEqual(units.flatMap((u) => inspectedRecords(u.text, V3)), [record(null, '{"a":"}{"}'), record(null, '{"b":2}'), record(null, 'x')], `cut at ${cut}`);
  }
});

test('bodies the proxy would refuse are an error naming the record and field (nothing of them is written)', () => {
  const bad: Array<[string, RegExp]> = [
    ['{"value": {"type": "BINARY", "data": {"a": 1}}}', /record\.value\.data: expected a base64 string, got \{"a":1\}/],
    ['{"value": {"type": "STRING", "data": 5}}', /record\.value\.data: expected a string for type STRING/],
    ['{"value": {"type": "XML", "data": "<a/>"}}', /record\.value\.type: expected BINARY, JSON, STRING, AVRO, JSONSCHEMA or PROTOBUF, got "XML"/],
    ['{"value": {"type": 3, "data": "x"}}', /record\.value\.type: expected a string/],
    ['{"value": "plain"}', /record\.value: expected an object with type and data/],
    ['{"headers": {"name": "h"}}', /record\.headers: expected an array/],
    ['{"headers": [{"value": "eA=="}]}', /record\.headers\[0\]: expected \{name, value\}/],
    ['{"headers": [{"name": "h", "value": 1}]}', /record\.headers\[0\]\.value: expected a base64 string/],
    ['[]', /record: expected a record object/],
    ['{"value": ', /expected a JSON produce body/],
  ];
  for (const [unit, message] of bad) assert.throws(() => inspectedRecords(unit, V3), (err: unknown) => err instanceof RestProxyBodyError && message.test(err.message), unit);
  assert.throws(() => inspectedRecords('{"records": {}}', { api: 'v3', batch: true }), /expected \{"entries": \[records\]\}/);
  assert.throws(() => inspectedRecords('{"records": [{"value": 1}]}', { api: 'v2', embedded: 'binary' }), /records\[0\]\.value: expected a base64 string, got 1/);
  assert.throws(() => inspectedRecords('{"entries": []}', { api: 'v2', embedded: 'json' }), /expected \{"records": \[records\]\}/);
  assert.throws(() => produceFormat('v2', 'application/json'), /expected a v2 produce content type .* got "application\/json"/);
});

test('embedded formats from v2 content types', () => {
  assert.equal(embeddedFormat('application/vnd.kafka.json.v2+json'), 'json');
  assert.equal(embeddedFormat('Application/VND.Kafka.Binary.v2+json; charset=utf-8'), 'binary');
  assert.equal(embeddedFormat('application/vnd.kafka.jsonschema.v2+json'), 'jsonschema');
  assert.equal(embeddedFormat('application/vnd.kafka.v2+json'), 'binary', 'the proxy answers binary reads with the format-less type');
  for (const other of [undefined, '', 'application/json', 'application/vnd.kafka.json.v1+json', 'application/vnd.kafka.xml.v2+json']) assert.equal(embeddedFormat(other), undefined, String(other));
  assert.deepEqual(produceFormat('v3-stream', undefined), { api: 'v3', batch: false });
  assert.deepEqual(produceFormat('v3-batch', 'application/json'), { api: 'v3', batch: true });
});

const producer: Principal = { subject: 'ann', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const rejecting = compilePolicy(configSchema.parse({
  rules: [
    { name: 'no-cards', match: { kafka: { topic: 'analytics' } }, reject: { detectors: ['card'] } },
    { name: 'no-test-events', match: { kafka: { topic: 'analytics' } }, reject: { fields: { '$.type': { equals: 'test' } }, headers: { 'x-source': { matches: '^untrusted' } }, maxRecordBytes: 64 } },
  ],
}).rules);
const rejectPlans = (topic: string) => rejecting.rejects(producer, { kind: 'kafka', api: 'Produce', operation: 'produce', topic });

const batchHeader: BatchHeader = {
  baseOffset: 0n, batchLength: 0, partitionLeaderEpoch: -1, magic: 2, crc: 0, attributes: 0, compression: 'none', isTransactional: false,
  isControl: false, lastOffsetDelta: 0, baseTimestamp: 1n, maxTimestamp: 1n, producerId: -1n, producerEpoch: -1, baseSequence: -1, recordCount: 0,
};

/** What the wire path decides for one record a wire producer sends: a Produce request through publish inspection. */
function wireVerdict(r: InspectedRecord): string | undefined {
  const kafkaRecord: KafkaRecord = { attributes: 0, timestampDelta: 0n, offsetDelta: 0, key: r.key, value: r.value, headers: r.headers };
  const body = { transactionalId: null, acks: -1, timeoutMs: 1000, topicData: [{ name: 'analytics', partitionData: [{ index: 0, records: encodeBatch(batchHeader, [kafkaRecord]) }] }] };
  return inspectProduce(body as unknown as ProduceRequest, rejectPlans)[0]?.reason;
}

test('reject rules decide a REST record as they decide the same record in a wire Produce', () => {
  const units: Array<[string, string | undefined]> = [
    ['{"value": {"type": "JSON", "data": {"pay": "4111 1111 1111 1111"}}}', 'rule no-cards: the record carries a card value'],
    // Reject detectors read JSON strings only, on either path: a card stored as a JSON number passes both alike.
    ['{"value": {"type": "JSON", "data": {"pay": 4111111111111111}}}', undefined],
    ['{"value": {"type": "BINARY", "data": "' + b64('{"pay":"5500 0000 0000 0004"}') + '"}}', 'rule no-cards: the record carries a card value'],
    ['{"value": {"type": "STRING", "data": "card 4111-1111-1111-1111 thanks"}}', 'rule no-cards: the record carries a card value'],
    ['{"value": {"type": "JSON", "data": {"type": "test"}}}', 'rule no-test-events: field $.type is refused'],
    ['{"value": {"type": "JSON", "data": {}}, "headers": [{"name": "x-source", "value": "' + b64('untrusted-laptop') + '"}]}', 'rule no-test-events: header x-source is refused'],
    ['{"value": {"type": "STRING", "data": "' + 'x'.repeat(65) + '"}}', 'rule no-test-events: a record of 65 bytes exceeds 64'],
    ['{"value": {"type": "JSON", "data": {"type": "real", "note": "no card here"}}, "key": {"type": "STRING", "data": "k"}}', undefined],
  ];
  for (const [unit, expected] of units) {
    const [inspected] = inspectedRecords(unit, V3);
    assert.equal(rejectReason(inspected!, rejectPlans('analytics')), expected, unit);
    assert.equal(wireVerdict(inspected!), expected, `the wire agrees: ${unit}`);
  }
  // Header names and values count towards the size, as on the wire: 60 + 1 + 2 bytes fit in 64, 62 + 1 + 2 do not.
  const sized = (n: number) => inspectedRecords(`{"value": {"type": "STRING", "data": "${'x'.repeat(n)}"}, "headers": [{"name": "h", "value": "${b64('vv')}"}]}`, V3)[0]!;
  assert.equal(rejectReason(sized(61), rejectPlans('analytics')), undefined);
  assert.equal(rejectReason(sized(62), rejectPlans('analytics')), 'rule no-test-events: a record of 65 bytes exceeds 64');
  assert.equal(wireVerdict(sized(62)), 'rule no-test-events: a record of 65 bytes exceeds 64');
});

// ---------------------------------------------------------------------------------------------------------------
// Consumed records
// ---------------------------------------------------------------------------------------------------------------

const analyst: Principal = { subject: 'ann', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const masking = compilePolicy(configSchema.parse({
  rules: [
    { name: 'mask-payments', match: { group: 'analysts', kafka: { topic: 'payments' } }, mask: { fields: { '$.card.number': 'keep-last-4' }, detectors: ['card', 'email'], keys: true } },
    { name: 'strict-audit', match: { group: 'analysts', kafka: { topic: 'audit' } }, mask: { detectors: ['card'], onUndecodable: 'fail' } },
    { name: 'opaque-blobs', match: { group: 'analysts', kafka: { topic: 'blobs' } }, mask: { detectors: ['card'], onUndecodable: 'redact' } },
  ],
}).rules);
const plansFor = (topic: string): readonly NamedMaskPlan[] => masking.masks(analyst, consumedRecordAction(topic));

const CARD = '4111111111111111';
const payment = (i: number) => ({ id: i, card: { number: CARD }, note: `paid by 4111 1111 1111 1111, mail p${i}@example.com` });

test('json format: the planted card number never survives in a masked topic; other topics keep every byte', () => {
  const text = `[{"topic":"payments","key":{"email":"k@example.com"},"value":${JSON.stringify(payment(1))},"partition":0,"offset":10},`
    + `{"topic":"orders","key":null,"value":{"card":"${CARD}","n":12345678901234567890},"partition":0,"offset":11},`
    + `{"topic":"payments","key":"plain-key","value":${CARD},"partition":1,"offset":12}]`;
  const tally: MaskTally = {};
  const out = maskConsumedRecords(text, 'json', plansFor, {}, tally);
  assert.equal(out.maskedRecords, 2);
  const records = JSON.parse(out.text) as Array<{ topic: string; key: unknown; value: unknown }>;
  assert.equal((records[0]!.value as { card: { number: string } }).card.number, '************1111');
  assert.deepEqual(records[0]!.key, { email: '[REDACTED]' }, 'keys are masked: the rule says keys');
  assert.equal(records[2]!.value, '[REDACTED]', 'a card number stored as a JSON number is still a card number');
  const orders = `{"topic":"orders","key":null,"value":{"card":"${CARD}","n":12345678901234567890},"partition":0,"offset":11}`;
  assert.ok(out.text.includes(`},${orders},{`), 'the unmasked topic keeps its exact bytes (its big number too)');
  assert.doesNotMatch(out.text.replace(orders, ''), /4111[ -]?1111[ -]?1111[ -]?1111|@example\.com/);
  assert.deepEqual(tally, { field: 1, card: 2, email: 2 });
});

test('nothing to mask: the very same text comes back', () => {
  const text = ' [ {"topic":"orders","key":null,"value":{"card":"4111111111111111"},"partition":0,"offset":1} ,\n{"topic":"payments","key":null,"value":{"id":1},"partition":0,"offset":2} ] ';
  const out = maskConsumedRecords(text, 'json', plansFor, {}, {});
  assert.equal(out.text, text);
  assert.deepEqual(out, { text, maskedRecords: 0, droppedRecords: 0, droppedTopics: [] });
  assert.equal(maskConsumedRecords('[]', 'binary', plansFor, {}, {}).text, '[]');
});

/** The Fetch masking of the same record values, for comparison: one batch in one partition of one topic. */
function wireMasked(topic: string, values: readonly Buffer[]): Array<Buffer | null> {
  const header: BatchHeader = { ...batchHeader, compression: 'none' };
  const records = values.map((value, i): KafkaRecord => ({ attributes: 0, timestampDelta: 0n, offsetDelta: i, key: null, value, headers: [] }));
  const frame = encodeResponse({ correlationId: 1, taggedFields: [] }, 1, 12, {
    throttleTimeMs: 0, errorCode: 0, sessionId: 0,
    responses: [{ topic, partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 9n, lastStableOffset: 9n, logStartOffset: 0n, abortedTransactions: null, preferredReadReplica: -1, records: encodeBatch(header, records) }] }],
  });
  const masked = maskFetchResponse(frame, 12, plansFor, {});
  const partition = decodeResponse(masked.frame, 1, 12).body.responses[0]!.partitions[0]!;
  return decodeBatch(splitBatches(partition.records!).batches[0]!).records.map((r) => r.value);
}

test('binary format: values decoded from base64, masked as Fetch masks the same bytes, and encoded again', () => {
  const values = [
    Buffer.from(JSON.stringify(payment(2))),
    Buffer.from(`free text with ${CARD} in it`),
    Buffer.from('{"id":3,"clean":true}'),
  ];
  const text = JSON.stringify(values.map((v, i) => ({ topic: 'payments', key: b64(`key-${i}`), value: b64(v), partition: 0, offset: i })));
  const out = maskConsumedRecords(text, 'binary', plansFor, {}, {});
  const records = JSON.parse(out.text) as Array<{ key: string; value: string }>;
  const restValues = records.map((r) => Buffer.from(r.value, 'base64'));
  assert.deepEqual(restValues, wireMasked('payments', values), 'the same bytes a wire consumer gets');
  for (const v of restValues) assert.doesNotMatch(v.toString(), /4111[ -]?1111[ -]?1111[ -]?1111|@example\.com/);
  assert.equal(records[2]!.value, b64(values[2]!), 'an untouched value keeps its base64 text');
  assert.equal(out.maskedRecords, 2);
  assert.deepEqual(records.map((r) => Buffer.from(r.key, 'base64').toString()), ['key-0', 'key-1', 'key-2'], 'keys without findings stay');
});

test('binary values that are not UTF-8 follow the rule: redact replaces them, fail fails the response', () => {
  const blob = Buffer.from([0xff, 0xfe, 0x00, 0x41]);
  const text = JSON.stringify([{ topic: 'blobs', key: null, value: b64(blob), partition: 0, offset: 0 }]);
  const out = maskConsumedRecords(text, 'binary', plansFor, {}, {});
  assert.equal(Buffer.from((JSON.parse(out.text) as Array<{ value: string }>)[0]!.value, 'base64').toString(), '[REDACTED]');
  assert.deepEqual(wireMasked('blobs', [blob]), [Buffer.from('[REDACTED]')], 'as on the wire');
  assert.throws(() => maskConsumedRecords(JSON.stringify([{ topic: 'audit', key: null, value: b64(blob), partition: 0, offset: 0 }]), 'binary', plansFor, {}, {}),
    (err: unknown) => err instanceof MaskingFailure && /rule strict-audit: a record is not UTF-8 text/.test(err.message));
});

test('records of topics the principal may not consume are left out (a pattern subscription names none up front)', () => {
  const text = '[{"topic":"payments","key":null,"value":{"id":1},"partition":0,"offset":1},{"topic":"secret","key":null,"value":{"s":1},"partition":0,"offset":7},'
    + '{"topic":"orders","key":null,"value":{"o":1},"partition":0,"offset":3},{"topic":"secret","key":null,"value":{"s":2},"partition":0,"offset":8}]';
  const out = maskConsumedRecords(text, 'json', plansFor, {}, {}, (topic) => topic !== 'secret');
  assert.equal(out.text, '[{"topic":"payments","key":null,"value":{"id":1},"partition":0,"offset":1},{"topic":"orders","key":null,"value":{"o":1},"partition":0,"offset":3}]');
  assert.deepEqual([out.droppedRecords, out.droppedTopics], [2, ['secret']]);
  const both = maskConsumedRecords(`[{"topic":"secret","key":null,"value":1,"partition":0,"offset":1},{"topic":"payments","key":null,"value":"${CARD}","partition":0,"offset":2}]`, 'json', plansFor, {}, {}, (t) => t !== 'secret');
  assert.equal(both.text, '[{"topic":"payments","key":null,"value":"[REDACTED]","partition":0,"offset":2}]', 'masking and leaving out together');
  assert.equal(maskConsumedRecords(text, 'json', plansFor, {}, {}, () => false).text, '[]');
});

test('a response that is not an array of records fails rather than passes', () => {
  for (const [body, message] of [
    ['{"error_code":40403}', /expected a JSON array of records/],
    ['[{"topic":"payments","value":', /expected a JSON array of records/],
    ['[{"value":1}]', /record 0: expected an object with a topic/],
    [`[{"topic":"payments","key":null,"value":{"a":1},"partition":0,"offset":0}]`, null],
  ] as const) {
    if (message === null) assert.doesNotThrow(() => maskConsumedRecords(body, 'json', plansFor, {}, {}));
    else assert.throws(() => maskConsumedRecords(body, 'json', plansFor, {}, {}), (err: unknown) => err instanceof MaskingFailure && message.test(err.message), body);
  }
  assert.throws(() => maskConsumedRecords('[{"topic":"payments","key":null,"value":{"a":1},"partition":0,"offset":0}]', 'binary', plansFor, {}, {}),
    /record 0 \(payments\) value: expected a base64 string in a binary records response/);
});
