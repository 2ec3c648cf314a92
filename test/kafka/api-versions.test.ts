/**
 * ApiVersions trimming (src/kafka/api-versions.ts): a client only learns the API versions tollgate accepts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_API_LIMITS, isClientApiVersionAllowed, trimApiVersionsResponse } from '../../src/kafka/api-versions.ts';
import { KafkaError } from '../../src/kafka/protocol/error-codes.ts';
import { FrameError } from '../../src/kafka/protocol/errors.ts';
import { API_TABLE } from '../../src/kafka/protocol/generated/api-table.ts';
import type { ApiVersionsResponse } from '../../src/kafka/protocol/generated/index.ts';
import { decodeResponse, encodeResponse } from '../../src/kafka/protocol/messages.ts';

const API_VERSIONS = 18;

function byName(name: string): number {
  const entry = [...API_TABLE.values()].find((candidate) => candidate.name === name);
  assert.ok(entry, name);
  return entry.apiKey;
}

function frame(version: number, body: Partial<ApiVersionsResponse>): Buffer {
  return encodeResponse({ correlationId: 3, taggedFields: [] }, API_VERSIONS, version, { errorCode: 0, apiKeys: [], throttleTimeMs: 0, ...body });
}

/** What a Kafka 4.1 broker offers: every API the specs list for brokers, full range. */
function brokerOffer(): ApiVersionsResponse['apiKeys'] {
  return [...API_TABLE.values()]
    .filter((entry) => entry.request.validVersions !== null && entry.listeners.includes('broker'))
    .map((entry) => ({ apiKey: entry.apiKey, minVersion: entry.request.validVersions!.min, maxVersion: entry.request.validVersions!.max }));
}

describe('CLIENT_API_LIMITS', () => {
  it('caps the APIs that name topics by id in later versions, and SaslHandshake to v1', () => {
    assert.deepEqual(CLIENT_API_LIMITS.get(byName('Produce')), { min: 3, max: 12 });
    assert.deepEqual(CLIENT_API_LIMITS.get(byName('Fetch')), { min: 4, max: 12 });
    assert.deepEqual(CLIENT_API_LIMITS.get(byName('OffsetCommit')), { min: 2, max: 9 });
    assert.deepEqual(CLIENT_API_LIMITS.get(byName('OffsetFetch')), { min: 1, max: 9 });
    assert.deepEqual(CLIENT_API_LIMITS.get(byName('DeleteTopics')), { min: 1, max: 5 });
    assert.deepEqual(CLIENT_API_LIMITS.get(byName('AddPartitionsToTxn')), { min: 0, max: 3 });
    assert.deepEqual(CLIENT_API_LIMITS.get(byName('SaslHandshake')), { min: 1, max: 1 });
    assert.deepEqual(CLIENT_API_LIMITS.get(byName('Metadata')), { min: 4, max: 13 }, 'v4+: tollgate can turn auto-creation off');
  });

  it('never offers an unstable latest version', () => {
    assert.deepEqual(CLIENT_API_LIMITS.get(byName('InitProducerId')), { min: 0, max: 5 });
    for (const [apiKey, range] of CLIENT_API_LIMITS) {
      const entry = API_TABLE.get(apiKey)!;
      const valid = entry.request.validVersions!;
      assert.ok(range.min >= valid.min && range.max <= valid.max && range.min <= range.max, entry.name);
      if (entry.request.latestVersionUnstable) assert.ok(range.max < valid.max, entry.name);
    }
  });

  it('leaves out share and streams groups and every broker- or controller-internal API', () => {
    const names = new Set([...CLIENT_API_LIMITS.keys()].map((key) => API_TABLE.get(key)!.name));
    for (const name of [
      'ShareGroupHeartbeat', 'ShareGroupDescribe', 'ShareFetch', 'ShareAcknowledge', 'StreamsGroupHeartbeat', 'StreamsGroupDescribe',
      'DescribeShareGroupOffsets', 'AlterShareGroupOffsets', 'DeleteShareGroupOffsets', 'InitializeShareGroupState', 'ReadShareGroupState',
      'WriteShareGroupState', 'DeleteShareGroupState', 'ReadShareGroupStateSummary', 'WriteTxnMarkers', 'Vote', 'BeginQuorumEpoch',
      'EndQuorumEpoch', 'DescribeQuorum', 'AlterPartition', 'Envelope', 'FetchSnapshot', 'BrokerRegistration', 'BrokerHeartbeat',
      'UnregisterBroker', 'AllocateProducerIds', 'ControllerRegistration', 'AssignReplicasToDirs', 'AddRaftVoter', 'RemoveRaftVoter',
      'UpdateRaftVoter', 'CreateDelegationToken', 'RenewDelegationToken', 'ExpireDelegationToken', 'DescribeDelegationToken', 'ListConfigResources',
    ]) {
      assert.equal(names.has(name), false, name);
    }
    assert.equal(CLIENT_API_LIMITS.size, 53);
  });
});

describe('isClientApiVersionAllowed', () => {
  it('accepts versions inside the limits only', () => {
    assert.equal(isClientApiVersionAllowed(0, 12), true);
    assert.equal(isClientApiVersionAllowed(0, 13), false);
    assert.equal(isClientApiVersionAllowed(0, 2), false);
    assert.equal(isClientApiVersionAllowed(17, 0), false, 'SaslHandshake v0');
    assert.equal(isClientApiVersionAllowed(78, 1), false, 'ShareFetch');
    assert.equal(isClientApiVersionAllowed(9999, 0), false);
    assert.equal(isClientApiVersionAllowed(78, 1, new Map([[78, { min: 1, max: 1 }]])), true);
  });
});

describe('trimApiVersionsResponse', () => {
  it('drops what tollgate does not accept and clamps the rest; features and tagged fields stay', () => {
    const body: Partial<ApiVersionsResponse> = {
      apiKeys: brokerOffer(),
      throttleTimeMs: 12,
      supportedFeatures: [{ name: 'metadata.version', minVersion: 7, maxVersion: 27 }],
      finalizedFeaturesEpoch: 42n,
      finalizedFeatures: [{ name: 'metadata.version', maxVersionLevel: 27, minVersionLevel: 27 }],
      zkMigrationReady: false,
      _unknownTaggedFields: [{ tag: 11, data: Buffer.from('later') }],
    };
    const out = decodeResponse(trimApiVersionsResponse(frame(4, body), 4), API_VERSIONS, 4);
    assert.equal(out.header.correlationId, 3);
    const { apiKeys, ...rest } = out.body;
    const { apiKeys: _offered, ...expectedRest } = body;
    assert.deepEqual(rest, { errorCode: 0, ...expectedRest });
    assert.deepEqual(apiKeys.map((k) => k.apiKey), [...CLIENT_API_LIMITS.keys()].sort((a, b) => a - b));
    for (const entry of apiKeys) assert.deepEqual({ min: entry.minVersion, max: entry.maxVersion }, CLIENT_API_LIMITS.get(entry.apiKey));
  });

  it('narrows to the overlap with an older broker and drops keys without one', () => {
    const out = trimApiVersionsResponse(frame(2, { apiKeys: [
      { apiKey: 0, minVersion: 0, maxVersion: 9 },
      { apiKey: 17, minVersion: 0, maxVersion: 0 },
      { apiKey: 1, minVersion: 13, maxVersion: 17 },
      { apiKey: 3, minVersion: 0, maxVersion: 12 },
    ] }), 2);
    assert.deepEqual(decodeResponse(out, API_VERSIONS, 2).body.apiKeys, [
      { apiKey: 0, minVersion: 3, maxVersion: 9 },
      { apiKey: 3, minVersion: 4, maxVersion: 12 },
    ]);
  });

  it('returns the very same frame when nothing needs trimming', () => {
    const input = frame(3, { apiKeys: [{ apiKey: 3, minVersion: 4, maxVersion: 13 }, { apiKey: 18, minVersion: 0, maxVersion: 4 }] });
    assert.equal(trimApiVersionsResponse(input, 3), input);
  });

  it('passes an UNSUPPORTED_VERSION answer (a v0 body, whatever the request version) through unchanged', () => {
    const input = frame(0, { errorCode: KafkaError.UNSUPPORTED_VERSION, apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 4 }] });
    assert.equal(trimApiVersionsResponse(input, 5), input);
    assert.equal(trimApiVersionsResponse(input, 3), input);
  });

  it('throws FrameError on a frame that does not decode', () => {
    const input = frame(3, { apiKeys: [{ apiKey: 78, minVersion: 1, maxVersion: 1 }] });
    assert.throws(() => trimApiVersionsResponse(input.subarray(0, input.length - 2), 3), FrameError);
    assert.throws(() => trimApiVersionsResponse(input, 1), FrameError);
  });
});
