/**
 * Group, transaction and admin authorization read as specifications, and the APIs tollgate refuses.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authorizeRequest, KAFKA_API_POLICY } from '../../../src/kafka/authorize/index.ts';
import { KafkaError } from '../../../src/kafka/protocol/error-codes.ts';
import { API_SPECS } from '../../../src/kafka/protocol/generated/index.ts';
import type { KnownApiKey, RequestBodies } from '../../../src/kafka/protocol/generated/index.ts';
import { brokerResponse, decider, expectKind, forwardedBody, requestOf, responseBody, sampleRequest } from './support.ts';
import type { Rule } from './support.ts';

const RULES: Rule[] = [
  { name: 'no-admin-writes', effect: 'deny', topic: 'admin.audit' },
  { name: 'apps', effect: 'allow', topic: 'orders' },
  { name: 'apps-group', effect: 'allow', group: 'orders-app' },
  { name: 'billing-tx', effect: 'allow', transactionalId: 'billing-tx' },
  { name: 'brokers-readable', effect: 'allow', operation: 'describe', cluster: true },
];

function plan<K extends KnownApiKey>(apiKey: K, version: number, body: RequestBodies[K], rules: readonly Rule[] = RULES) {
  const { frame, request } = requestOf(apiKey, version, body);
  return authorizeRequest(frame, request, decider(rules));
}

describe('FindCoordinator', () => {
  it('v3: a denied group gets GROUP_AUTHORIZATION_FAILED, no coordinator and the reason', () => {
    const body = responseBody(expectKind(plan(10, 3, { key: 'other-app', keyType: 0, coordinatorKeys: [] }), 'answer').response, 10, 3);
    assert.equal(body.errorCode, KafkaError.GROUP_AUTHORIZATION_FAILED);
    assert.equal(body.errorMessage, 'no rule allows this request');
    assert.equal(body.nodeId, -1);
  });

  it('v1: a transactional id is judged as produce on it', () => {
    expectKind(plan(10, 1, { key: 'billing-tx', keyType: 1, coordinatorKeys: [] }), 'forward');
    const denied = responseBody(expectKind(plan(10, 1, { key: 'other-tx', keyType: 1, coordinatorKeys: [] }), 'answer').response, 10, 1);
    assert.equal(denied.errorCode, KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  });

  it('v4+: batched keys are split; the denied key gets its own coordinator entry in the client order', () => {
    const split = expectKind(plan(10, 6, { key: '', keyType: 0, coordinatorKeys: ['other-app', 'orders-app'] }), 'split');
    assert.deepEqual(forwardedBody(split.request, 10).coordinatorKeys, ['orders-app']);
    const broker = brokerResponse(10, 6, {
      throttleTimeMs: 0, errorCode: 0, errorMessage: null, nodeId: 0, host: '', port: 0,
      coordinators: [{ key: 'orders-app', nodeId: 2, host: 'broker-2', port: 9092, errorCode: 0, errorMessage: null }],
    });
    const body = responseBody(split.completeResponse(broker), 10, 6);
    assert.deepEqual(body.coordinators.map((c) => [c.key, c.errorCode, c.nodeId]), [['other-app', KafkaError.GROUP_AUTHORIZATION_FAILED, -1], ['orders-app', 0, 2]]);
  });

  it('share groups (key type 2) are denied without asking the policy', () => {
    const answer = expectKind(plan(10, 6, { key: '', keyType: 2, coordinatorKeys: ['orders-app'] }), 'answer');
    assert.equal(responseBody(answer.response, 10, 6).coordinators[0]!.errorCode, KafkaError.GROUP_AUTHORIZATION_FAILED);
    assert.equal(answer.decisions[0]!.decision.rule, null);
  });
});

describe('group membership and offsets', () => {
  for (const version of [0, 9]) {
    it(`JoinGroup v${version}: a denied group is answered with GROUP_AUTHORIZATION_FAILED`, () => {
      const answer = expectKind(plan(11, version, {
        groupId: 'other-app', sessionTimeoutMs: 10000, rebalanceTimeoutMs: -1, memberId: '', groupInstanceId: null, protocolType: 'consumer',
        protocols: [{ name: 'range', metadata: Buffer.alloc(0) }], reason: null,
      }), 'answer');
      const body = responseBody(answer.response, 11, version);
      assert.equal(body.errorCode, KafkaError.GROUP_AUTHORIZATION_FAILED);
      assert.equal(body.generationId, -1);
      assert.deepEqual(answer.decisions.map((d) => d.action), [{ kind: 'kafka', api: 'JoinGroup', operation: 'consume', group: 'other-app' }]);
    });
  }

  function offsetCommit(group: string): RequestBodies[8] {
    return {
      groupId: group, generationIdOrMemberEpoch: 1, memberId: 'm', groupInstanceId: null, retentionTimeMs: -1n,
      topics: ['orders', 'admin.audit'].map((name) => ({
        name, topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitions: [{ partitionIndex: 0, committedOffset: 7n, committedLeaderEpoch: -1, committedMetadata: null }],
      })),
    };
  }

  for (const version of [2, 9]) {
    it(`OffsetCommit v${version}: a denied topic fails its partitions only (29); the rest is committed`, () => {
      const split = expectKind(plan(8, version, offsetCommit('orders-app')), 'split');
      assert.deepEqual(forwardedBody(split.request, 8).topics.map((t) => t.name), ['orders']);
      const broker = brokerResponse(8, version, { throttleTimeMs: 0, topics: [{ name: 'orders', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitions: [{ partitionIndex: 0, errorCode: 0 }] }] });
      const body = responseBody(split.completeResponse(broker), 8, version);
      assert.deepEqual(body.topics.map((t) => [t.name, t.partitions[0]!.errorCode]), [['orders', 0], ['admin.audit', KafkaError.TOPIC_AUTHORIZATION_FAILED]]);
    });

    it(`OffsetCommit v${version}: a denied group fails every partition with 30, topics are not asked`, () => {
      const answer = expectKind(plan(8, version, offsetCommit('other-app')), 'answer');
      const body = responseBody(answer.response, 8, version);
      assert.deepEqual(body.topics.map((t) => t.partitions[0]!.errorCode), [KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED]);
      assert.equal(answer.decisions.length, 1);
    });
  }

  it('OffsetFetch v8: per group and per topic, merged in the client order', () => {
    const split = expectKind(plan(9, 8, {
      groupId: '', topics: [], requireStable: false,
      groups: [
        { groupId: 'other-app', memberId: null, memberEpoch: -1, topics: null },
        { groupId: 'orders-app', memberId: null, memberEpoch: -1, topics: [{ name: 'admin.audit', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitionIndexes: [0] }, { name: 'orders', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitionIndexes: [0] }] },
      ],
    }), 'split');
    const forwarded = forwardedBody(split.request, 9);
    assert.deepEqual(forwarded.groups.map((g) => [g.groupId, g.topics?.map((t) => t.name)]), [['orders-app', ['orders']]]);
    const broker = brokerResponse(9, 8, {
      throttleTimeMs: 0, topics: [], errorCode: 0,
      groups: [{ groupId: 'orders-app', errorCode: 0, topics: [{ name: 'orders', topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitions: [{ partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: -1, metadata: '', errorCode: 0 }] }] }],
    });
    const body = responseBody(split.completeResponse(broker), 9, 8);
    assert.deepEqual(body.groups.map((g) => [g.groupId, g.errorCode]), [['other-app', KafkaError.GROUP_AUTHORIZATION_FAILED], ['orders-app', 0]]);
    assert.deepEqual(body.groups[1]!.topics.map((t) => [t.name, t.partitions[0]!.errorCode, t.partitions[0]!.committedOffset]), [
      ['admin.audit', KafkaError.TOPIC_AUTHORIZATION_FAILED, -1n],
      ['orders', 0, 42n],
    ]);
  });
});

describe('transactions', () => {
  it('InitProducerId without a transactional id is forwarded with no question asked (idempotence only)', () => {
    const forward = expectKind(plan(22, 4, { transactionalId: null, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1, enable2Pc: false, keepPreparedTxn: false }), 'forward');
    assert.deepEqual(forward.decisions, []);
  });

  for (const version of [0, 5]) {
    it(`InitProducerId v${version}: a denied transactional id gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED`, () => {
      const answer = expectKind(plan(22, version, { transactionalId: 'other-tx', transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1, enable2Pc: false, keepPreparedTxn: false }), 'answer');
      const body = responseBody(answer.response, 22, version);
      assert.equal(body.errorCode, KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
      assert.equal(body.producerId, -1n);
      expectKind(plan(22, version, { transactionalId: 'billing-tx', transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1, enable2Pc: false, keepPreparedTxn: false }), 'forward');
    });
  }

  it('AddPartitionsToTxn v3: one denied topic fails the whole request (29 for it, OPERATION_NOT_ATTEMPTED for the rest)', () => {
    const answer = expectKind(plan(24, 3, {
      transactions: [], v3AndBelowTransactionalId: 'billing-tx', v3AndBelowProducerId: 1n, v3AndBelowProducerEpoch: 0,
      v3AndBelowTopics: [{ name: 'orders', partitions: [0] }, { name: 'admin.audit', partitions: [0] }],
    }), 'answer');
    const body = responseBody(answer.response, 24, 3);
    assert.deepEqual(body.resultsByTopicV3AndBelow.map((t) => t.resultsByPartition[0]!.partitionErrorCode), [55, KafkaError.TOPIC_AUTHORIZATION_FAILED]);
  });
});

describe('admin', () => {
  for (const version of [1, 6]) {
    it(`DeleteTopics v${version}: a denied topic gets 29 (and the reason where the version has a message)`, () => {
      const body: RequestBodies[20] = version >= 6
        ? { topics: [{ name: 'admin.audit', topicId: 'AAAAAAAAAAAAAAAAAAAAAA' }], topicNames: [], timeoutMs: 1000 }
        : { topics: [], topicNames: ['admin.audit'], timeoutMs: 1000 };
      const response = responseBody(expectKind(plan(20, version, body), 'answer').response, 20, version);
      assert.equal(response.responses[0]!.name, 'admin.audit');
      assert.equal(response.responses[0]!.errorCode, KafkaError.TOPIC_AUTHORIZATION_FAILED);
      assert.equal(response.responses[0]!.errorMessage, version >= 5 ? 'denied by rule no-admin-writes' : null);
    });
  }

  it('DeleteTopics v6 by topic id only is refused', () => {
    const refuse = expectKind(plan(20, 6, { topics: [{ name: null, topicId: 'AAECAwQFBgcICQoLDA0ODw' }], topicNames: [], timeoutMs: 1000 }), 'refuse');
    assert.match(refuse.reason, /by id only/);
  });

  it('CreateTopics: a mixed request creates the allowed topics, the denied one gets 29 with the reason', () => {
    const rules: Rule[] = [{ name: 'no-admin-writes', effect: 'deny', topic: 'admin.audit' }, { name: 'create', effect: 'allow', operation: 'admin' }];
    const topic = (name: string) => ({ name, numPartitions: 3, replicationFactor: 1, assignments: [], configs: [] });
    const split = expectKind(plan(19, 7, { topics: [topic('orders'), topic('admin.audit')], timeoutMs: 1000, validateOnly: false }, rules), 'split');
    assert.deepEqual(forwardedBody(split.request, 19).topics.map((t) => t.name), ['orders']);
    const broker = brokerResponse(19, 7, {
      throttleTimeMs: 0,
      topics: [{ name: 'orders', topicId: 'AAECAwQFBgcICQoLDA0ODw', errorCode: 0, errorMessage: null, numPartitions: 3, replicationFactor: 1, configs: [] }],
    });
    const body = responseBody(split.completeResponse(broker), 19, 7);
    assert.deepEqual(body.topics.map((t) => [t.name, t.errorCode, t.errorMessage]), [['orders', 0, null], ['admin.audit', KafkaError.TOPIC_AUTHORIZATION_FAILED, 'denied by rule no-admin-writes']]);
  });

  it('DescribeConfigs: a topic resource is judged on the topic, a broker resource on the cluster', () => {
    const resources = [
      { resourceType: 2, resourceName: 'admin.audit', configurationKeys: null },
      { resourceType: 4, resourceName: '1', configurationKeys: null },
    ];
    const decide = decider(RULES);
    const { frame, request } = requestOf(32, 4, { resources, includeSynonyms: false, includeDocumentation: false });
    const split = expectKind(authorizeRequest(frame, request, decide), 'split');
    assert.deepEqual(decide.asked.map((a) => [a.operation, a.topic]), [['describe', 'admin.audit'], ['describe', undefined]]);
    assert.deepEqual(forwardedBody(split.request, 32).resources.map((r) => r.resourceName), ['1']);
    const broker = brokerResponse(32, 4, { throttleTimeMs: 0, results: [{ errorCode: 0, errorMessage: null, resourceType: 4, resourceName: '1', configs: [] }] });
    const body = responseBody(split.completeResponse(broker), 32, 4);
    assert.deepEqual(body.results.map((r) => [r.resourceName, r.errorCode]), [['admin.audit', KafkaError.TOPIC_AUTHORIZATION_FAILED], ['1', 0]]);

    const denied = responseBody(expectKind(plan(32, 1, { resources: [resources[1]!], includeSynonyms: false, includeDocumentation: false }, []), 'answer').response, 32, 1);
    assert.equal(denied.results[0]!.errorCode, KafkaError.CLUSTER_AUTHORIZATION_FAILED);
    assert.equal(denied.results[0]!.errorMessage, 'no rule allows this request');
  });
});

describe('refused APIs', () => {
  for (const [apiKey, name] of [[18, 'ApiVersions'], [36, 'SaslAuthenticate'], [52, 'Vote'], [78, 'ShareFetch'], [88, 'StreamsGroupHeartbeat'], [38, 'CreateDelegationToken']] as const) {
    it(`${name} is refused with a reason naming it, without asking the policy`, () => {
      const version = API_SPECS.get(apiKey)!.request.validVersions!.min;
      const { frame, request } = requestOf(apiKey, version, sampleRequest(apiKey, version) as RequestBodies[typeof apiKey]);
      const decide = decider([{ name: 'everything', effect: 'allow' }]);
      const refuse = expectKind(authorizeRequest(frame, request, decide), 'refuse');
      assert.match(refuse.reason, new RegExp(name));
      assert.deepEqual(decide.asked, []);
      assert.equal(KAFKA_API_POLICY.has(apiKey), false);
    });
  }
});
