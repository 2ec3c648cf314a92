/**
 * Frame-level codecs (src/kafka/protocol/messages.ts) on frames built by hand from the protocol description
 * (test/kafka/frames.ts): header versions, header tagged fields, errors for bad frames, and the hot-path readers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EncodeError } from '../../../src/kafka/protocol/codec/errors.ts';
import { FrameError } from '../../../src/kafka/protocol/errors.ts';
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  fetchTopics,
  isRequestOf,
  produceTopics,
} from '../../../src/kafka/protocol/messages.ts';
import type { ProduceRequest } from '../../../src/kafka/protocol/generated/index.ts';
import { compactNullableString, framed, int16, int32, metadataRequest, requestFrame, taggedFields, uvarint } from '../frames.ts';

function assertFrameError(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FrameError, `expected FrameError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

const TOPIC_ID = 'AAECAwQFBgcICQoLDA0ODw';

function produce(apiVersion: number, topics: ProduceRequest['topicData']): Buffer {
  return encodeRequest(
    { apiKey: 0, apiVersion, correlationId: 11, clientId: 'p', taggedFields: [] },
    { transactionalId: 'tx', acks: -1, timeoutMs: 500, topicData: topics },
  );
}

describe('decodeRequest / encodeRequest', () => {
  it('decodes a non-flexible request (header v1) and re-encodes it byte for byte', () => {
    const frame = metadataRequest(42, 'client-a');
    const request = decodeRequest(frame);
    assert.deepEqual(request.header, { apiKey: 3, apiVersion: 1, correlationId: 42, clientId: 'client-a', taggedFields: [] });
    assert.ok(isRequestOf(request, 3));
    assert.equal(request.body.topics, null, 'Metadata v1: a null topic array means all topics');
    assert.deepEqual(encodeRequest(request.header, request.body), frame);
  });

  it('keeps the request header tagged fields of a flexible request (header v2)', () => {
    // ApiVersions v3: client_software_name, client_software_version (compact strings), tagged fields.
    const body = Buffer.concat([compactNullableString('tollgate'), compactNullableString('1.0'), taggedFields()]);
    const frame = requestFrame({ apiKey: 18, apiVersion: 3, correlationId: 1, headerVersion: 2, clientId: 'c', tagged: [[7, Buffer.from('x')]], body });
    const request = decodeRequest(frame);
    assert.deepEqual(request.header.taggedFields, [{ tag: 7, data: Buffer.from('x') }]);
    assert.deepEqual(request.body, { clientSoftwareName: 'tollgate', clientSoftwareVersion: '1.0' });
    assert.deepEqual(encodeRequest(request.header, request.body), frame);
  });

  it('refuses frames it cannot decode with FrameError', () => {
    const good = metadataRequest(1);
    const wrongPrefix = Buffer.from(good);
    wrongPrefix.writeInt32BE(good.length, 0);
    assertFrameError(() => decodeRequest(wrongPrefix), 'frame_size_invalid');
    assertFrameError(() => decodeRequest(framed(int16(3))), 'header_truncated');
    assertFrameError(() => decodeRequest(requestFrame({ apiKey: 9999, apiVersion: 0, correlationId: 1 })), 'header_invalid');
    assertFrameError(() => decodeRequest(requestFrame({ apiKey: 4, apiVersion: 0, correlationId: 1 })), 'header_invalid');
    assertFrameError(() => decodeRequest(requestFrame({ apiKey: 0, apiVersion: 2, correlationId: 1, body: int16(1) })), 'body_invalid');
    assertFrameError(() => decodeRequest(requestFrame({ apiKey: 3, apiVersion: 1, correlationId: 1, body: Buffer.concat([int32(-1), int16(0)]) })), 'body_invalid');
    assertFrameError(() => decodeRequest(requestFrame({ apiKey: 3, apiVersion: 1, correlationId: 1, body: int16(0) })), 'body_truncated');
  });

  it('refuses to encode for an unknown or removed API key', () => {
    assert.throws(() => encodeRequest({ apiKey: 9999, apiVersion: 0, correlationId: 1, clientId: null, taggedFields: [] }, {}), EncodeError);
    assert.throws(() => encodeRequest({ apiKey: 7, apiVersion: 0, correlationId: 1, clientId: null, taggedFields: [] }, {}), /removed/);
  });
});

describe('decodeResponse / encodeResponse', () => {
  it('writes ApiVersions responses with header v0 even in flexible versions', () => {
    const frame = encodeResponse({ correlationId: 5, taggedFields: [] }, 18, 3, {
      errorCode: 0,
      apiKeys: [{ apiKey: 0, minVersion: 3, maxVersion: 13 }],
      throttleTimeMs: 0,
      finalizedFeaturesEpoch: -1n,
    });
    // size, correlation id, then the body at once (error code): no header tagged-field byte.
    assert.deepEqual(frame.subarray(4, 10), Buffer.concat([int32(5), int16(0)]));
    const response = decodeResponse(frame, 18, 3);
    assert.equal(response.body.apiKeys[0]?.maxVersion, 13);
    assert.deepEqual(encodeResponse(response.header, 18, 3, response.body), frame);
  });

  it('writes header v1 (tagged fields) for other flexible responses, and keeps its tags', () => {
    // Produce v9 response: header (correlation id, tags), an empty responses array, throttle time, tags.
    const frame = framed(Buffer.concat([int32(9), taggedFields([[3, Buffer.from('zz')]]), uvarint(1), int32(0), taggedFields()]));
    const response = decodeResponse(frame, 0, 9);
    assert.deepEqual(response.header, { correlationId: 9, taggedFields: [{ tag: 3, data: Buffer.from('zz') }] });
    assert.deepEqual(response.body, { responses: [], throttleTimeMs: 0 });
    assert.deepEqual(encodeResponse(response.header, 0, 9, response.body), frame);
  });
});

describe('hot-path readers', () => {
  it('produceTopics reads topic names and partitions (by id from v13) without decoding records', () => {
    const records = Buffer.from('not a record batch at all');
    const named = produce(9, [{ name: 'orders', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitionData: [{ index: 0, records }, { index: 4, records: null }] }]);
    assert.deepEqual(produceTopics(named), [{ name: 'orders', topicId: null, partitions: [0, 4] }]);
    const old = produce(3, [{ name: 'a', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitionData: [] }, { name: 'b', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitionData: [{ index: 1, records }] }]);
    assert.deepEqual(produceTopics(old), [{ name: 'a', topicId: null, partitions: [] }, { name: 'b', topicId: null, partitions: [1] }]);
    const byId = produce(13, [{ name: '', topicId: TOPIC_ID, partitionData: [{ index: 2, records }] }]);
    assert.deepEqual(produceTopics(byId), [{ name: null, topicId: TOPIC_ID, partitions: [2] }]);
  });

  it('fetchTopics reads topic names or ids and partitions of every Fetch version', () => {
    for (const version of [4, 7, 11, 12, 13, 15, 17, 18]) {
      const frame = encodeRequest(
        { apiKey: 1, apiVersion: version, correlationId: 3, clientId: 'c', taggedFields: [] },
        {
          replicaId: -1, maxWaitMs: 100, minBytes: 1, maxBytes: 1000, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
          topics: [{
            topic: version < 13 ? 'orders' : '', topicId: version >= 13 ? TOPIC_ID : 'AAAAAAAAAAAAAAAAAAAAAA',
            partitions: [5, 6].map((partition) => ({
              partition, currentLeaderEpoch: -1, fetchOffset: 10n, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 100,
              ...(version >= 17 ? { replicaDirectoryId: TOPIC_ID } : {}),
            })),
          }],
          forgottenTopicsData: [], rackId: '',
          ...(version >= 12 ? { clusterId: 'cluster' } : {}),
        },
      );
      const expected = version < 13 ? { name: 'orders', topicId: null } : { name: null, topicId: TOPIC_ID };
      assert.deepEqual(fetchTopics(frame), [{ ...expected, partitions: [5, 6] }], `Fetch v${version}`);
    }
  });

  it('refuse frames of another API, and truncated frames, with FrameError', () => {
    assertFrameError(() => produceTopics(metadataRequest(1)), 'body_invalid');
    assertFrameError(() => fetchTopics(metadataRequest(1)), 'body_invalid');
    const frame = produce(9, [{ name: 'orders', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitionData: [{ index: 0, records: Buffer.alloc(100) }] }]);
    const cut = Buffer.from(frame.subarray(0, frame.length - 30));
    cut.writeInt32BE(cut.length - 4, 0);
    assertFrameError(() => produceTopics(cut), 'body_truncated');
  });
});
