/**
 * Audit summaries (src/kafka/summary.ts): topics, partitions, groups and transactional ids of requests; record
 * counts from batch headers; per-partition answers of Produce and Fetch; JSON-safe numbers; no payload bytes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrameError } from '../../src/kafka/protocol/errors.ts';
import type { FetchRequest, ProduceRequest } from '../../src/kafka/protocol/generated/index.ts';
import { decodeRequest, encodeRequest, encodeResponse } from '../../src/kafka/protocol/messages.ts';
import { countRecords, jsonInt64, summarizeRequest, summarizeResponse } from '../../src/kafka/summary.ts';

const SECRET = 'card=4111111111111111';

/** A record batch (magic 2) with `count` records: a real header, then opaque bytes standing in for the records. */
function batch(count: number, options: { control?: boolean; payload?: string } = {}): Buffer {
  const payload = Buffer.from(options.payload ?? SECRET);
  const header = Buffer.alloc(61);
  header.writeBigInt64BE(0n, 0);
  header.writeInt32BE(61 - 12 + payload.length, 8);
  header.writeInt8(2, 16);
  header.writeInt16BE(options.control === true ? 0x20 : 0, 21);
  header.writeInt32BE(count, 57);
  return Buffer.concat([header, payload]);
}

function request<K extends 0 | 1 | 8 | 9 | 11 | 24 | 28 | 42>(apiKey: K, apiVersion: number, body: unknown): Buffer {
  return encodeRequest({ apiKey, apiVersion, correlationId: 1, clientId: 'c', taggedFields: [] }, body);
}

describe('countRecords', () => {
  it('adds the records of every batch, skips control batches, counts bytes', () => {
    const records = Buffer.concat([batch(3), batch(1, { control: true }), batch(4)]);
    assert.deepEqual(countRecords(records), { records: 7, bytes: records.length, partial: false });
    assert.deepEqual(countRecords(null), { records: 0, bytes: 0, partial: false });
    assert.deepEqual(countRecords(Buffer.alloc(0)), { records: 0, bytes: 0, partial: false });
  });

  it('tolerates a partial trailing batch (Fetch responses cut at max_bytes)', () => {
    const whole = Buffer.concat([batch(2), batch(5)]);
    for (const cut of [whole.length - 1, batch(2).length + 30, batch(2).length + 5]) {
      assert.deepEqual(countRecords(whole.subarray(0, cut)), { records: 2, bytes: cut, partial: true }, `cut at ${cut}`);
    }
  });

  it('stops at a negative or impossible batch length instead of looping', () => {
    const bad = batch(2);
    bad.writeInt32BE(-5, 8);
    assert.deepEqual(countRecords(bad), { records: 0, bytes: bad.length, partial: true });
  });
});

describe('jsonInt64', () => {
  it('is a number when safe, a string otherwise', () => {
    assert.equal(jsonInt64(42n), 42);
    assert.equal(jsonInt64(-1n), -1);
    assert.equal(jsonInt64(2n ** 60n), '1152921504606846976');
  });
});

describe('summarizeRequest', () => {
  it('Produce: topics, partitions, record counts and bytes, acks, transactional id; never the payload', () => {
    const records = Buffer.concat([batch(3), batch(2)]);
    const body: ProduceRequest = {
      transactionalId: 'tx-1',
      acks: -1,
      timeoutMs: 1000,
      topicData: [{ name: 'payments', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitionData: [{ index: 0, records }, { index: 4, records: null }] }],
    };
    const frame = request(0, 9, body);
    const summary = summarizeRequest(frame);
    assert.deepEqual(summary, {
      transactionalId: 'tx-1',
      acks: -1,
      topics: [{ topic: 'payments', partitions: [{ partition: 0, records: 5, bytes: records.length }, { partition: 4, records: 0, bytes: 0 }] }],
    });
    assert.deepEqual(summarizeRequest(frame, decodeRequest(frame)), summary, 'the decoded request gives the same summary');
    assert.ok(!JSON.stringify(summary).includes('4111'));
  });

  it('Fetch: fetch offsets as JSON-safe numbers, session and isolation', () => {
    const body: FetchRequest = {
      clusterId: null, replicaId: -1, replicaState: { replicaId: -1, replicaEpoch: -1n }, maxWaitMs: 500, minBytes: 1, maxBytes: 1 << 20,
      isolationLevel: 1, sessionId: 7, sessionEpoch: 2, rackId: '',
      topics: [{ topic: 'orders', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitions: [
        { partition: 1, currentLeaderEpoch: -1, fetchOffset: 12n, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 1000 },
        { partition: 2, currentLeaderEpoch: -1, fetchOffset: 2n ** 62n, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 1000 },
      ] }],
      forgottenTopicsData: [],
    };
    const summary = summarizeRequest(request(1, 12, body));
    assert.deepEqual(summary, {
      isolationLevel: 1,
      sessionId: 7,
      sessionEpoch: 2,
      topics: [{ topic: 'orders', partitions: [{ partition: 1, fetchOffset: 12 }, { partition: 2, fetchOffset: '4611686018427387904' }] }],
    });
    assert.doesNotThrow(() => JSON.stringify(summary));
  });

  it('groups and transactional ids of group and transaction APIs', () => {
    assert.deepEqual(summarizeRequest(request(11, 5, {
      groupId: 'analytics', sessionTimeoutMs: 1, rebalanceTimeoutMs: 1, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols: [], reason: null,
    })), { group: 'analytics' });
    assert.deepEqual(summarizeRequest(request(42, 2, { groupsNames: ['a', 'b'] })), { groups: ['a', 'b'] });
    assert.deepEqual(summarizeRequest(request(8, 9, {
      groupId: 'g', generationIdOrMemberEpoch: 1, memberId: 'm', groupInstanceId: null, retentionTimeMs: -1n,
      topics: [{ name: 't', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitions: [{ partitionIndex: 0, committedOffset: 99n, committedLeaderEpoch: -1, committedMetadata: null }] }],
    })), { group: 'g', topics: [{ topic: 't', partitions: [{ partition: 0, committedOffset: 99 }] }] });
    assert.deepEqual(summarizeRequest(request(9, 8, {
      groupId: '', topics: [], requireStable: false,
      groups: [{ groupId: 'g1', memberId: null, memberEpoch: -1, topics: [{ name: 't', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitionIndexes: [0, 1] }] }, { groupId: 'g2', memberId: null, memberEpoch: -1, topics: null }],
    })), { groups: ['g1', 'g2'], topics: [{ topic: 't', partitions: [{ partition: 0 }, { partition: 1 }] }] });
    assert.deepEqual(summarizeRequest(request(24, 3, {
      transactions: [], v3AndBelowTransactionalId: 'tx', v3AndBelowProducerId: 1n, v3AndBelowProducerEpoch: 0,
      v3AndBelowTopics: [{ name: 't', partitions: [3] }],
    })), { transactionalId: 'tx', topics: [{ topic: 't', partitions: [{ partition: 3 }] }] });
  });

  it('APIs with nothing to summarize are not decoded at all', () => {
    const apiVersions = encodeRequest({ apiKey: 18, apiVersion: 3, correlationId: 1, clientId: 'c', taggedFields: [] }, { clientSoftwareName: 'x', clientSoftwareVersion: '1' });
    assert.equal(summarizeRequest(apiVersions), undefined);
    const garbage = Buffer.concat([apiVersions.subarray(0, 6), Buffer.from('not a request')]);
    assert.equal(summarizeRequest(garbage), undefined);
  });

  it('throws FrameError on a summarized API whose frame does not decode', () => {
    const frame = request(42, 2, { groupsNames: ['a'] });
    assert.throws(() => summarizeRequest(frame.subarray(0, frame.length - 1)), FrameError);
    assert.throws(() => summarizeRequest(Buffer.alloc(3)), FrameError);
  });
});

describe('summarizeResponse', () => {
  it('Produce: per partition error code and base offset', () => {
    const frame = encodeResponse({ correlationId: 1, taggedFields: [] }, 0, 9, {
      throttleTimeMs: 0,
      responses: [{ name: 'payments', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitionResponses: [
        { index: 0, errorCode: 0, baseOffset: 1234n, logAppendTimeMs: -1n, logStartOffset: 0n, recordErrors: [], errorMessage: null },
        { index: 1, errorCode: 29, baseOffset: -1n, logAppendTimeMs: -1n, logStartOffset: -1n, recordErrors: [], errorMessage: 'denied' },
      ] }],
    });
    assert.deepEqual(summarizeResponse(0, 9, frame), {
      topics: [{ topic: 'payments', partitions: [{ partition: 0, errorCode: 0, baseOffset: 1234 }, { partition: 1, errorCode: 29, baseOffset: -1 }] }],
    });
  });

  it('Fetch: per partition error code, high watermark, records and bytes; a partial trailing batch is flagged', () => {
    const whole = Buffer.concat([batch(10), batch(1, { control: true }), batch(6)]);
    const cut = whole.subarray(0, whole.length - 8);
    const partition = (partitionIndex: number, records: Buffer | null) => ({
      partitionIndex, errorCode: 0, highWatermark: 500n, lastStableOffset: 500n, logStartOffset: 0n, abortedTransactions: null, preferredReadReplica: -1, records,
    });
    const frame = encodeResponse({ correlationId: 1, taggedFields: [] }, 1, 12, {
      throttleTimeMs: 0, errorCode: 0, sessionId: 0,
      responses: [{ topic: 'orders', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitions: [partition(0, whole), partition(1, cut), partition(2, null)] }],
    });
    const summary = summarizeResponse(1, 12, frame);
    assert.deepEqual(summary, {
      topics: [{ topic: 'orders', partitions: [
        { partition: 0, errorCode: 0, highWatermark: 500, records: 16, bytes: whole.length },
        { partition: 1, errorCode: 0, highWatermark: 500, records: 11 - 1, bytes: cut.length, partial: true },
        { partition: 2, errorCode: 0, highWatermark: 500, records: 0, bytes: 0 },
      ] }],
    });
    assert.ok(!JSON.stringify(summary).includes('4111'));
  });

  it('other APIs: nothing, and nothing decoded', () => {
    assert.equal(summarizeResponse(3, 12, Buffer.from('whatever')), undefined);
  });
});
