/**
 * The Kafka side of the signals, byte for byte: `throttle_time_ms` written into responses (in place where it leads
 * the body, re-encoded where it does not), what Produce requests and Fetch responses amount to per topic, and the
 * changes an admin request makes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedConfigNames, changesOf, fetchedPerTopic, producedPerTopic, sourceHost, withThrottle } from '../../src/kafka/signals.ts';
import { API_KEY } from '../../src/kafka/protocol/api-keys.ts';
import { decodeRequest, decodeResponse, encodeResponse, readProduceRequest } from '../../src/kafka/protocol/messages.ts';
import { claimedSubject } from '../../src/identity/unverified.ts';
import type { KafkaAction } from '../../src/core/action.ts';
import { batch, rec } from './capture/helpers.ts';
import { request } from './requests.ts';
import { ATTR_CONTROL } from '../../src/kafka/protocol/records/index.ts';

const fetchResponse = (version: number, throttleTimeMs: number, topics: Array<{ topic: string; records: Buffer }>) =>
  encodeResponse({ correlationId: 7, taggedFields: [] }, API_KEY.Fetch, version, {
    throttleTimeMs, errorCode: 0, sessionId: 0,
    responses: topics.map(({ topic, records }) => ({
      topic, topicId: 'AAAAAAAAAAAAAAAAAAAAAA',
      partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 10n, lastStableOffset: 10n, logStartOffset: 0n, abortedTransactions: null, preferredReadReplica: -1, records }],
    })),
  });

test('Fetch v12 (flexible header) and v11: throttle_time_ms rewritten in place, records untouched, a longer broker throttle kept', () => {
  const records = batch([rec(0, 'a'.repeat(100)), rec(1, 'b'.repeat(100))]);
  for (const version of [11, 12]) {
    const frame = fetchResponse(version, 0, [{ topic: 'orders', records }]);
    const out = withThrottle(frame, API_KEY.Fetch, version, 1234.2);
    assert.equal(out.length, frame.length);
    const decoded = decodeResponse(out, API_KEY.Fetch, version);
    assert.equal(decoded.body.throttleTimeMs, 1235, `v${version}: rounded up`);
    assert.equal(decoded.header.correlationId, 7);
    assert.ok(Buffer.compare(decoded.body.responses[0]!.partitions[0]!.records!, records) === 0);
    assert.ok(frame.equals(fetchResponse(version, 0, [{ topic: 'orders', records }])), 'the broker\'s frame itself is not written to');
    const slower = fetchResponse(version, 5000, [{ topic: 'orders', records }]);
    assert.equal(withThrottle(slower, API_KEY.Fetch, version, 1000), slower);
  }
});

test('Produce v9: throttle_time_ms follows the responses, so the answer is re-encoded with it', () => {
  const frame = encodeResponse({ correlationId: 3, taggedFields: [] }, API_KEY.Produce, 9, {
    responses: [{ name: 'orders', partitionResponses: [{ index: 0, errorCode: 0, baseOffset: 42n, logAppendTimeMs: -1n, logStartOffset: 0n, recordErrors: [], errorMessage: null }] }],
    throttleTimeMs: 0,
  });
  const out = withThrottle(frame, API_KEY.Produce, 9, 800);
  const body = decodeResponse(out, API_KEY.Produce, 9).body;
  assert.equal(body.throttleTimeMs, 800);
  assert.equal(body.responses[0]!.partitionResponses[0]!.baseOffset, 42n);
  assert.equal(withThrottle(frame, API_KEY.Produce, 0, 800), frame, 'v0 has no throttle field: unchanged');
});

test('produced and fetched amounts per topic: whole batches\' bytes, data records from batch headers, control batches left out', () => {
  const data = batch([rec(0, 'x'), rec(1, 'y'), rec(2, 'z')]);
  const control = batch([rec(0, null, Buffer.from([0, 0, 0, 1]))], { attributes: ATTR_CONTROL });
  const produce = request(API_KEY.Produce, 9, 1, {
    transactionalId: null, acks: -1, timeoutMs: 1000,
    topicData: [{ name: 'orders', partitionData: [{ index: 0, records: data }, { index: 1, records: data }] }, { name: 'payments', partitionData: [{ index: 0, records: data }] }],
  });
  assert.deepEqual([...producedPerTopic(readProduceRequest(produce))], [['orders', { records: 6, bytes: 2 * data.length }], ['payments', { records: 3, bytes: data.length }]]);
  const partial = data.subarray(0, data.length - 5);
  const response = fetchResponse(12, 0, [{ topic: 'orders', records: Buffer.concat([data, control, partial]) }]);
  assert.deepEqual([...fetchedPerTopic(response, 12)], [['orders', { records: 3, bytes: data.length + control.length }]], 'the partial batch is fetched again later, counted then');
});

const topicAction = (api: string, topic?: string): KafkaAction => ({ kind: 'kafka', api, operation: 'admin', ...(topic !== undefined && { topic }) });

test('changes: config entries of the resource the action names, ACL creations and filters, nothing when validate-only', () => {
  const alter = decodeRequest(request(44, 1, 1, {
    resources: [
      { resourceType: 2, resourceName: 'payments', configs: [{ name: 'retention.ms', configOperation: 0, value: '1' }, { name: 'cleanup.policy', configOperation: 0, value: 'compact' }] },
      { resourceType: 2, resourceName: 'orders', configs: [{ name: 'retention.bytes', configOperation: 0, value: '1' }] },
      { resourceType: 4, resourceName: '1', configs: [{ name: 'log.retention.ms', configOperation: 0, value: '1' }] },
    ],
    validateOnly: false,
  }));
  assert.equal(changesOf(alter, topicAction('IncrementalAlterConfigs', 'payments')), 2);
  assert.deepEqual(changedConfigNames(alter, topicAction('IncrementalAlterConfigs', 'orders')), ['retention.bytes']);
  assert.deepEqual(changedConfigNames(alter, topicAction('IncrementalAlterConfigs')), ['log.retention.ms'], 'a broker resource is the cluster');
  const dry = decodeRequest(request(44, 1, 1, { resources: [{ resourceType: 2, resourceName: 'payments', configs: [{ name: 'retention.ms', configOperation: 0, value: '1' }] }], validateOnly: true }));
  assert.equal(changesOf(dry, topicAction('IncrementalAlterConfigs', 'payments')), 0);
  const acls = decodeRequest(request(30, 1, 1, {
    creations: [0, 1, 2].map((i) => ({ resourceType: 2, resourceName: `t${i}`, resourcePatternType: 3, principal: 'User:x', host: '*', operation: 3, permissionType: 3 })),
  }));
  assert.equal(changesOf(acls, topicAction('CreateAcls')), 3);
  const fetch = decodeRequest(request(API_KEY.Fetch, 12, 1, { replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 0, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, topics: [], forgottenTopicsData: [], rackId: '' }));
  assert.equal(changesOf(fetch, topicAction('Fetch', 'orders')), 0);
});

test('the subject a refused JWT claims is read without verification; anything else claims nothing', () => {
  const jwt = (payload: object) => `e30.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;
  assert.equal(claimedSubject(jwt({ sub: 'root' })), 'root');
  assert.equal(claimedSubject(jwt({ sub: 42 })), undefined);
  assert.equal(claimedSubject('not-a-jwt'), undefined);
  assert.equal(claimedSubject('a.!!!.c'), undefined);
  assert.equal(claimedSubject(undefined), undefined);
});

test('the client address of a Kafka connection, without the port Envoy reports with it', () => {
  assert.equal(sourceHost({ 'source.address': '10.1.2.3:50114' }), '10.1.2.3');
  assert.equal(sourceHost({ 'source.address': '[2001:db8::1]:443' }), '2001:db8::1');
  assert.equal(sourceHost({ 'source.address': '10.1.2.3' }), '10.1.2.3');
  assert.equal(sourceHost({}), undefined);
});
