/**
 * Broker endpoint rewriting (src/kafka/routing/): every response that names a broker's address goes out with the
 * Envoy listener of that broker, node ids and racks unchanged; unknown node ids fail closed; controller endpoints
 * never leave.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrameError } from '../../../src/kafka/protocol/errors.ts';
import type {
  DescribeClusterResponseDescribeClusterBroker,
  DescribeQuorumResponseListener,
  DescribeQuorumResponseNode,
  FetchResponseFetchableTopicResponse,
  FetchResponseNodeEndpoint,
  FetchResponsePartitionData,
  FindCoordinatorResponseCoordinator,
  MetadataResponseMetadataResponseBroker,
  MetadataResponseMetadataResponsePartition,
  MetadataResponseMetadataResponseTopic,
  ProduceResponseNodeEndpoint,
  ShareFetchResponseNodeEndpoint,
} from '../../../src/kafka/protocol/generated/index.ts';
import { decodeResponse } from '../../../src/kafka/protocol/messages.ts';
import { BrokerRoutes, carriesBrokerEndpoints, rewriteBrokerEndpoints } from '../../../src/kafka/routing/index.ts';
import type { RewriteResult } from '../../../src/kafka/routing/index.ts';
import { element, response, responseBody } from './responses.ts';

const METADATA = 3;
const FIND_COORDINATOR = 10;
const DESCRIBE_CLUSTER = 60;
const PRODUCE = 0;
const FETCH = 1;
const SHARE_FETCH = 78;
const SHARE_ACKNOWLEDGE = 79;
const DESCRIBE_QUORUM = 55;
const COORDINATOR_NOT_AVAILABLE = 15;

const ROUTES = new BrokerRoutes([
  { nodeId: 1, host: 'kafka-1.envoy.local', port: 19092 },
  { nodeId: 2, host: 'kafka-2.envoy.local', port: 19093 },
  { nodeId: 3, host: '10.0.0.3', port: 19094 },
]);

function rewritten(result: RewriteResult): Buffer {
  assert.equal(result.kind, 'rewritten', JSON.stringify(result));
  return (result as { frame: Buffer }).frame;
}

function metadataBroker(nodeId: number, rack: string | null = null): MetadataResponseMetadataResponseBroker {
  return element(METADATA, ['brokers'], { nodeId, host: `broker-${nodeId}.internal`, port: 9092, rack });
}

describe('BrokerRoutes', () => {
  it('looks routes up by node id', () => {
    assert.equal(ROUTES.size, 3);
    assert.deepEqual(ROUTES.get(2), { nodeId: 2, host: 'kafka-2.envoy.local', port: 19093 });
    assert.equal(ROUTES.get(4), undefined);
    assert.deepEqual(ROUTES.list().map((r) => r.nodeId), [1, 2, 3]);
  });

  it('refuses bad routes when the table is built', () => {
    assert.throws(() => new BrokerRoutes([{ nodeId: 1, host: 'a', port: 1 }, { nodeId: 1, host: 'b', port: 2 }]), /more than one route/);
    assert.throws(() => new BrokerRoutes([{ nodeId: -1, host: 'a', port: 1 }]), /nodeId/);
    assert.throws(() => new BrokerRoutes([{ nodeId: 1.5, host: 'a', port: 1 }]), /nodeId/);
    assert.throws(() => new BrokerRoutes([{ nodeId: 1, host: '', port: 1 }]), /host/);
    assert.throws(() => new BrokerRoutes([{ nodeId: 1, host: 'a b', port: 1 }]), /host/);
    assert.throws(() => new BrokerRoutes([{ nodeId: 1, host: 'a', port: 0 }]), /port/);
    assert.throws(() => new BrokerRoutes([{ nodeId: 1, host: 'a', port: 65536 }]), /port/);
  });
});

describe('carriesBrokerEndpoints', () => {
  it('names exactly the API versions whose responses carry endpoints', () => {
    for (let v = 0; v <= 13; v++) assert.equal(carriesBrokerEndpoints(METADATA, v), true);
    assert.equal(carriesBrokerEndpoints(FIND_COORDINATOR, 0), true);
    assert.equal(carriesBrokerEndpoints(DESCRIBE_CLUSTER, 0), true);
    assert.equal(carriesBrokerEndpoints(PRODUCE, 9), false);
    assert.equal(carriesBrokerEndpoints(PRODUCE, 10), true);
    assert.equal(carriesBrokerEndpoints(FETCH, 15), false);
    assert.equal(carriesBrokerEndpoints(FETCH, 16), true);
    assert.equal(carriesBrokerEndpoints(DESCRIBE_QUORUM, 1), false);
    assert.equal(carriesBrokerEndpoints(DESCRIBE_QUORUM, 2), true);
    assert.equal(carriesBrokerEndpoints(SHARE_FETCH, 1), true);
    assert.equal(carriesBrokerEndpoints(SHARE_ACKNOWLEDGE, 1), true);
    assert.equal(carriesBrokerEndpoints(18, 3), false, 'ApiVersions');
    assert.equal(carriesBrokerEndpoints(9999, 0), false);
  });
});

describe('rewriteBrokerEndpoints: Metadata', () => {
  it('points every broker at its Envoy listener; node ids, racks, topics and unknown tagged fields stay', () => {
    const body = responseBody(METADATA, {
      brokers: [metadataBroker(1, 'rack-a'), metadataBroker(2, null), metadataBroker(3, 'rack-c')],
      clusterId: 'cluster-x',
      controllerId: 2,
      topics: [element<MetadataResponseMetadataResponseTopic>(METADATA, ['topics'], { name: 'orders', partitions: [element<MetadataResponseMetadataResponsePartition>(METADATA, ['topics', 'partitions'], { partitionIndex: 0, leaderId: 2, replicaNodes: [2, 3], isrNodes: [2] })] })],
      _unknownTaggedFields: [{ tag: 9, data: Buffer.from('future') }],
    });
    const frame = response(METADATA, 12, body, 99);
    const out = rewritten(rewriteBrokerEndpoints(frame, METADATA, 12, ROUTES));
    const decoded = decodeResponse(out, METADATA, 12);
    assert.equal(decoded.header.correlationId, 99);
    assert.deepEqual(decoded.body.brokers.map((b) => [b.nodeId, b.host, b.port, b.rack]), [
      [1, 'kafka-1.envoy.local', 19092, 'rack-a'],
      [2, 'kafka-2.envoy.local', 19093, null],
      [3, '10.0.0.3', 19094, 'rack-c'],
    ]);
    const expected = { ...body, brokers: decoded.body.brokers };
    assert.deepEqual(decoded.body, expected);
  });

  it('leaves a response whose addresses already are the routes byte for byte (no re-encoding)', () => {
    const brokers = [1, 2, 3].map((nodeId) => ({ ...metadataBroker(nodeId), host: ROUTES.get(nodeId)!.host, port: ROUTES.get(nodeId)!.port }));
    const frame = response(METADATA, 4, responseBody(METADATA, { brokers }));
    assert.deepEqual(rewriteBrokerEndpoints(frame, METADATA, 4, ROUTES), { kind: 'unchanged' });
  });

  it('fails closed on a broker the routes do not name: the first such one is reported', () => {
    const frame = response(METADATA, 1, responseBody(METADATA, { brokers: [metadataBroker(1), metadataBroker(7), metadataBroker(8)] }));
    assert.deepEqual(rewriteBrokerEndpoints(frame, METADATA, 1, ROUTES), { kind: 'unknown_broker', nodeId: 7, host: 'broker-7.internal', port: 9092 });
  });

  it('does nothing when no route is configured', () => {
    const frame = response(METADATA, 1, responseBody(METADATA, { brokers: [metadataBroker(7)] }));
    assert.deepEqual(rewriteBrokerEndpoints(frame, METADATA, 1, new BrokerRoutes([])), { kind: 'unchanged' });
  });

  it('throws FrameError on a frame that does not decode', () => {
    const frame = response(METADATA, 1, responseBody(METADATA, { brokers: [metadataBroker(1)] }));
    assert.throws(() => rewriteBrokerEndpoints(frame.subarray(0, frame.length - 3), METADATA, 1, ROUTES), FrameError);
    assert.throws(() => rewriteBrokerEndpoints(frame, METADATA, 12, ROUTES), FrameError);
  });
});

describe('rewriteBrokerEndpoints: FindCoordinator', () => {
  it('rewrites the top-level coordinator of v0-3', () => {
    for (const version of [0, 1, 2, 3]) {
      const frame = response(FIND_COORDINATOR, version, responseBody(FIND_COORDINATOR, { nodeId: 2, host: 'broker-2.internal', port: 9092 }));
      const body = decodeResponse(rewritten(rewriteBrokerEndpoints(frame, FIND_COORDINATOR, version, ROUTES)), FIND_COORDINATOR, version).body;
      assert.deepEqual([body.nodeId, body.host, body.port], [2, 'kafka-2.envoy.local', 19093], `v${version}`);
    }
  });

  it('rewrites every coordinator of v4+ and leaves "no coordinator" entries as they are', () => {
    const coordinator = (fields: Partial<FindCoordinatorResponseCoordinator>) => element<FindCoordinatorResponseCoordinator>(FIND_COORDINATOR, ['coordinators'], fields);
    const frame = response(FIND_COORDINATOR, 6, responseBody(FIND_COORDINATOR, {
      coordinators: [
        coordinator({ key: 'g1', nodeId: 3, host: 'broker-3.internal', port: 9092 }),
        coordinator({ key: 'g2', nodeId: -1, host: '', port: -1, errorCode: COORDINATOR_NOT_AVAILABLE, errorMessage: 'not yet' }),
      ],
    }));
    const body = decodeResponse(rewritten(rewriteBrokerEndpoints(frame, FIND_COORDINATOR, 6, ROUTES)), FIND_COORDINATOR, 6).body;
    assert.deepEqual(body.coordinators.map((c) => [c.key, c.nodeId, c.host, c.port, c.errorCode]), [
      ['g1', 3, '10.0.0.3', 19094, 0],
      ['g2', -1, '', -1, COORDINATOR_NOT_AVAILABLE],
    ]);
  });

  it('an error response without a coordinator needs no rewriting at all', () => {
    const frame = response(FIND_COORDINATOR, 2, responseBody(FIND_COORDINATOR, { errorCode: COORDINATOR_NOT_AVAILABLE, nodeId: -1, host: '', port: -1 }));
    assert.deepEqual(rewriteBrokerEndpoints(frame, FIND_COORDINATOR, 2, ROUTES), { kind: 'unchanged' });
  });

  it('a node id of -1 that still carries an address fails closed', () => {
    const frame = response(FIND_COORDINATOR, 2, responseBody(FIND_COORDINATOR, { errorCode: COORDINATOR_NOT_AVAILABLE, nodeId: -1, host: 'broker-9.internal', port: 9092 }));
    assert.equal(rewriteBrokerEndpoints(frame, FIND_COORDINATOR, 2, ROUTES).kind, 'unknown_broker');
  });
});

describe('rewriteBrokerEndpoints: DescribeCluster', () => {
  const broker = (brokerId: number) => element<DescribeClusterResponseDescribeClusterBroker>(DESCRIBE_CLUSTER, ['brokers'], { brokerId, host: `broker-${brokerId}.internal`, port: 9092, rack: 'r', isFenced: brokerId === 3 });

  it('rewrites brokers', () => {
    const frame = response(DESCRIBE_CLUSTER, 2, responseBody(DESCRIBE_CLUSTER, { clusterId: 'c', brokers: [broker(1), broker(3)] }));
    const body = decodeResponse(rewritten(rewriteBrokerEndpoints(frame, DESCRIBE_CLUSTER, 2, ROUTES)), DESCRIBE_CLUSTER, 2).body;
    assert.deepEqual(body.brokers.map((b) => [b.brokerId, b.host, b.port, b.rack, b.isFenced]), [
      [1, 'kafka-1.envoy.local', 19092, 'r', false],
      [3, '10.0.0.3', 19094, 'r', true],
    ]);
  });

  it('never exposes controllers (endpointType 2): the list is emptied', () => {
    const frame = response(DESCRIBE_CLUSTER, 1, responseBody(DESCRIBE_CLUSTER, { clusterId: 'c', endpointType: 2, brokers: [broker(1), broker(9)] }));
    const body = decodeResponse(rewritten(rewriteBrokerEndpoints(frame, DESCRIBE_CLUSTER, 1, ROUTES)), DESCRIBE_CLUSTER, 1).body;
    assert.deepEqual(body.brokers, []);
    assert.equal(body.endpointType, 2);
  });
});

describe('rewriteBrokerEndpoints: nodeEndpoints of Produce, Fetch, ShareFetch, ShareAcknowledge', () => {
  it('Produce v10+: rewrites the tagged nodeEndpoints; absent stays absent', () => {
    const node = (nodeId: number) => element<ProduceResponseNodeEndpoint>(PRODUCE, ['nodeEndpoints'], { nodeId, host: `broker-${nodeId}.internal`, port: 9092, rack: 'rack-1' });
    const without = response(PRODUCE, 10, responseBody(PRODUCE, { responses: [] }));
    assert.deepEqual(rewriteBrokerEndpoints(without, PRODUCE, 10, ROUTES), { kind: 'unchanged' });
    const frame = response(PRODUCE, 12, responseBody(PRODUCE, { responses: [], nodeEndpoints: [node(2)] }));
    const body = decodeResponse(rewritten(rewriteBrokerEndpoints(frame, PRODUCE, 12, ROUTES)), PRODUCE, 12).body;
    assert.deepEqual(body.nodeEndpoints, [{ nodeId: 2, host: 'kafka-2.envoy.local', port: 19093, rack: 'rack-1' }]);
    assert.equal(rewriteBrokerEndpoints(response(PRODUCE, 12, responseBody(PRODUCE, { responses: [], nodeEndpoints: [node(5)] })), PRODUCE, 12, ROUTES).kind, 'unknown_broker');
  });

  it('Produce v9 is never decoded (no endpoints in that version)', () => {
    assert.deepEqual(rewriteBrokerEndpoints(Buffer.from('not a frame'), PRODUCE, 9, ROUTES), { kind: 'unchanged' });
  });

  it('Fetch v16+: rewrites the tagged nodeEndpoints, records untouched', () => {
    const records = Buffer.from('opaque record bytes');
    const frame = response(FETCH, 16, responseBody(FETCH, {
      responses: [element<FetchResponseFetchableTopicResponse>(FETCH, ['responses'], { topicId: 'AAECAwQFBgcICQoLDA0ODw', partitions: [element<FetchResponsePartitionData>(FETCH, ['responses', 'partitions'], { partitionIndex: 0, records })] })],
      nodeEndpoints: [element<FetchResponseNodeEndpoint>(FETCH, ['nodeEndpoints'], { nodeId: 1, host: 'broker-1.internal', port: 9092 })],
    }));
    const body = decodeResponse(rewritten(rewriteBrokerEndpoints(frame, FETCH, 16, ROUTES)), FETCH, 16).body;
    assert.deepEqual(body.nodeEndpoints?.map((n) => `${n.nodeId}@${n.host}:${n.port}`), ['1@kafka-1.envoy.local:19092']);
    assert.deepEqual(body.responses[0]!.partitions[0]!.records, records);
  });

  it('ShareFetch and ShareAcknowledge rewrite nodeEndpoints', () => {
    for (const apiKey of [SHARE_FETCH, SHARE_ACKNOWLEDGE] as const) {
      const node = element<ShareFetchResponseNodeEndpoint>(apiKey, ['nodeEndpoints'], { nodeId: 3, host: 'broker-3.internal', port: 9092 });
      const frame = response(apiKey, 1, responseBody(apiKey, { nodeEndpoints: [node] }));
      const body = decodeResponse(rewritten(rewriteBrokerEndpoints(frame, apiKey, 1, ROUTES)), apiKey, 1).body;
      assert.deepEqual(body.nodeEndpoints.map((n) => `${n.host}:${n.port}`), ['10.0.0.3:19094']);
    }
  });
});

describe('rewriteBrokerEndpoints: DescribeQuorum', () => {
  it('v2+: controller nodes keep their ids and lose their listeners', () => {
    const node = (nodeId: number) => element<DescribeQuorumResponseNode>(DESCRIBE_QUORUM, ['nodes'], {
      nodeId,
      listeners: [element<DescribeQuorumResponseListener>(DESCRIBE_QUORUM, ['nodes', 'listeners'], { name: 'CONTROLLER', host: `controller-${nodeId}.internal`, port: 9093 })],
    });
    const frame = response(DESCRIBE_QUORUM, 2, responseBody(DESCRIBE_QUORUM, { nodes: [node(1), node(100)] }));
    const body = decodeResponse(rewritten(rewriteBrokerEndpoints(frame, DESCRIBE_QUORUM, 2, ROUTES)), DESCRIBE_QUORUM, 2).body;
    assert.deepEqual(body.nodes.map((n) => [n.nodeId, n.listeners]), [[1, []], [100, []]]);
  });

  it('nodes without listeners need no rewriting', () => {
    const frame = response(DESCRIBE_QUORUM, 2, responseBody(DESCRIBE_QUORUM, { nodes: [element<DescribeQuorumResponseNode>(DESCRIBE_QUORUM, ['nodes'], { nodeId: 1 })] }));
    assert.deepEqual(rewriteBrokerEndpoints(frame, DESCRIBE_QUORUM, 2, ROUTES), { kind: 'unchanged' });
  });
});
