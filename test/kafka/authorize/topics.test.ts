/**
 * Produce, Fetch and Metadata authorization read as specifications: what is asked of the policy, what goes to the
 * broker, and what the client reads back.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authorizeRequest } from '../../../src/kafka/authorize/index.ts';
import { KafkaError } from '../../../src/kafka/protocol/error-codes.ts';
import type { FetchRequest, ProduceRequest } from '../../../src/kafka/protocol/generated/index.ts';
import { brokerResponse, decider, expectKind, forwardedBody, requestOf, responseBody } from './support.ts';
import type { Rule } from './support.ts';

const RULES: Rule[] = [
  { name: 'no-admin-writes', effect: 'deny', topic: 'admin.audit' },
  { name: 'apps', effect: 'allow', topic: 'orders' },
  { name: 'apps', effect: 'allow', topic: 'payments' },
];

const records = Buffer.from('batch');

function produce(version: number, topics: string[], acks = -1, transactionalId: string | null = null): ReturnType<typeof requestOf<0>> {
  const body: ProduceRequest = {
    transactionalId,
    acks,
    timeoutMs: 1000,
    topicData: topics.map((name) => ({ name, topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitionData: [{ index: 0, records }, { index: 1, records }] })),
  };
  return requestOf(0, version, body);
}

function produceResponse(version: number, topics: string[]): Buffer {
  return brokerResponse(0, version, {
    throttleTimeMs: 0,
    responses: topics.map((name) => ({
      name,
      topicId: 'AAAAAAAAAAAAAAAAAAAAAA',
      partitionResponses: [0, 1].map((index) => ({
        index, errorCode: 0, baseOffset: 100n, logAppendTimeMs: -1n, logStartOffset: 0n, recordErrors: [], errorMessage: null,
      })),
    })),
  });
}

describe('Produce', () => {
  it('forwards the client frame untouched when every topic is allowed, asking produce per topic', () => {
    const { frame, request } = produce(12, ['orders', 'payments']);
    const decide = decider(RULES);
    const plan = expectKind(authorizeRequest(frame, request, decide), 'forward');
    assert.equal(plan.filterResponse, undefined);
    assert.deepEqual(decide.asked, [
      { kind: 'kafka', api: 'Produce', operation: 'produce', topic: 'orders' },
      { kind: 'kafka', api: 'Produce', operation: 'produce', topic: 'payments' },
    ]);
    assert.deepEqual(plan.decisions.map((d) => d.decision.effect), ['allow', 'allow']);
  });

  for (const version of [3, 12]) {
    it(`v${version}: answers a denied request with TOPIC_AUTHORIZATION_FAILED on every partition`, () => {
      const { frame, request } = produce(version, ['admin.audit']);
      const plan = expectKind(authorizeRequest(frame, request, decider(RULES)), 'answer');
      const body = responseBody(plan.response, 0, version);
      assert.equal(body.responses.length, 1);
      assert.equal(body.responses[0]!.name, 'admin.audit');
      for (const partition of body.responses[0]!.partitionResponses) {
        assert.equal(partition.errorCode, KafkaError.TOPIC_AUTHORIZATION_FAILED);
        assert.equal(partition.baseOffset, -1n);
        // The error message exists from v8 on.
        assert.equal(partition.errorMessage, version >= 8 ? 'denied by rule no-admin-writes' : null);
      }
      assert.deepEqual(body.responses[0]!.partitionResponses.map((p) => p.index), [0, 1]);
    });
  }

  for (const version of [3, 12]) {
    it(`v${version}: forwards only the allowed topics and merges the denial back in the client's order`, () => {
      const { frame, request } = produce(version, ['admin.audit', 'orders']);
      const plan = expectKind(authorizeRequest(frame, request, decider(RULES)), 'split');
      const forwarded = forwardedBody(plan.request, 0);
      assert.deepEqual(forwarded.topicData.map((t) => t.name), ['orders']);
      assert.deepEqual(forwarded.topicData[0]!.partitionData[0]!.records, records);
      assert.equal(forwarded.acks, -1);
      const body = responseBody(plan.completeResponse(produceResponse(version, ['orders'])), 0, version);
      assert.deepEqual(body.responses.map((t) => t.name), ['admin.audit', 'orders']);
      assert.deepEqual(body.responses.map((t) => t.partitionResponses[0]!.errorCode), [KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.NONE]);
      assert.equal(body.responses[1]!.partitionResponses[0]!.baseOffset, 100n);
    });
  }

  it('refuses acks=0 with any denied topic: no response can carry the error, the broker would close too', () => {
    const { frame, request } = produce(9, ['orders', 'admin.audit'], 0);
    const plan = expectKind(authorizeRequest(frame, request, decider(RULES)), 'refuse');
    assert.match(plan.reason, /acks=0/);
  });

  it('forwards acks=0 when every topic is allowed', () => {
    const { frame, request } = produce(9, ['orders'], 0);
    expectKind(authorizeRequest(frame, request, decider(RULES)), 'forward');
  });

  it('answers every partition with TRANSACTIONAL_ID_AUTHORIZATION_FAILED when the transactional id is denied', () => {
    const { frame, request } = produce(12, ['orders'], -1, 'billing-tx');
    const decide = decider([{ name: 'no-tx', effect: 'deny', transactionalId: 'billing-tx' }, ...RULES]);
    const plan = expectKind(authorizeRequest(frame, request, decide), 'answer');
    const body = responseBody(plan.response, 0, 12);
    assert.equal(body.responses[0]!.partitionResponses[0]!.errorCode, KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    assert.deepEqual(decide.asked.map((a) => a.transactionalId), ['billing-tx'], 'topics are not asked once the transactional id is denied');
  });
});

function fetchRequest(version: number, topics: string[], session = { sessionId: 0, sessionEpoch: -1 }): ReturnType<typeof requestOf<1>> {
  const body: FetchRequest = {
    replicaId: -1,
    maxWaitMs: 500,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    ...session,
    topics: topics.map((topic) => ({
      topic,
      topicId: 'AAAAAAAAAAAAAAAAAAAAAA',
      partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 5n, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 1 << 16 }],
    })),
    forgottenTopicsData: [],
    rackId: '',
  };
  return requestOf(1, version, body);
}

function fetchResponse(version: number, topics: string[]): Buffer {
  return brokerResponse(1, version, {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    responses: topics.map((topic) => ({
      topic,
      topicId: 'AAAAAAAAAAAAAAAAAAAAAA',
      partitions: [{
        partitionIndex: 0, errorCode: 0, highWatermark: 9n, lastStableOffset: 9n, logStartOffset: 0n, abortedTransactions: [], preferredReadReplica: -1, records,
      }],
    })),
  });
}

describe('Fetch', () => {
  for (const version of [4, 12]) {
    it(`v${version}: forwards the allowed topics, answers the denied ones with error 29 and no records`, () => {
      const { frame, request } = fetchRequest(version, ['orders', 'admin.audit']);
      const decide = decider(RULES);
      const plan = expectKind(authorizeRequest(frame, request, decide), 'split');
      assert.deepEqual(forwardedBody(plan.request, 1).topics.map((t) => t.topic), ['orders']);
      const body = responseBody(plan.completeResponse(fetchResponse(version, ['orders'])), 1, version);
      assert.deepEqual(body.responses.map((t) => t.topic), ['orders', 'admin.audit']);
      const denied = body.responses[1]!.partitions[0]!;
      assert.equal(denied.errorCode, KafkaError.TOPIC_AUTHORIZATION_FAILED);
      assert.equal(denied.highWatermark, -1n);
      assert.equal(denied.records?.length ?? 0, 0);
      assert.deepEqual(body.responses[0]!.partitions[0]!.records, records);
      assert.ok(decide.asked.every((a) => a.operation === 'consume'));
    });
  }

  it('drops from the broker response any topic the policy denies (defense in depth, incremental sessions)', () => {
    const { frame, request } = fetchRequest(12, [], { sessionId: 77, sessionEpoch: 3 });
    const plan = expectKind(authorizeRequest(frame, request, decider(RULES)), 'forward');
    const response = fetchResponse(12, ['orders', 'admin.audit']);
    const body = responseBody(plan.filterResponse!(response), 1, 12);
    assert.deepEqual(body.responses.map((t) => t.topic), ['orders']);
    const clean = fetchResponse(12, ['orders']);
    assert.equal(plan.filterResponse!(clean), clean, 'nothing dropped: the broker frame goes on untouched');
  });

  it('answers locally when every topic is denied and there is no session', () => {
    const { frame, request } = fetchRequest(12, ['admin.audit']);
    const plan = expectKind(authorizeRequest(frame, request, decider(RULES)), 'answer');
    const body = responseBody(plan.response, 1, 12);
    assert.equal(body.sessionId, 0);
    assert.equal(body.responses[0]!.partitions[0]!.errorCode, KafkaError.TOPIC_AUTHORIZATION_FAILED);
  });

  it('still forwards an empty request in an existing session when every topic is denied, so the session moves on', () => {
    const { frame, request } = fetchRequest(12, ['admin.audit'], { sessionId: 77, sessionEpoch: 3 });
    const plan = expectKind(authorizeRequest(frame, request, decider(RULES)), 'split');
    const forwarded = forwardedBody(plan.request, 1);
    assert.deepEqual(forwarded.topics, []);
    assert.equal(forwarded.sessionId, 77);
    const body = responseBody(plan.completeResponse(fetchResponse(12, [])), 1, 12);
    assert.deepEqual(body.responses.map((t) => t.topic), ['admin.audit']);
  });

  it('refuses a topic named by id only', () => {
    const { frame, request } = requestOf(1, 13, {
      replicaId: -1, maxWaitMs: 1, minBytes: 1, maxBytes: 1, isolationLevel: 0, sessionId: 0, sessionEpoch: -1, rackId: '', forgottenTopicsData: [],
      topics: [{ topic: '', topicId: 'AAECAwQFBgcICQoLDA0ODw', partitions: [] }],
    });
    assert.match(expectKind(authorizeRequest(frame, request, decider(RULES)), 'refuse').reason, /by id only/);
  });
});

describe('Metadata', () => {
  const brokers = [{ nodeId: 1, host: 'broker-1', port: 9092, rack: null }];
  function metadataResponse(version: number, topics: string[]): Buffer {
    return brokerResponse(3, version, {
      throttleTimeMs: 0, brokers, clusterId: 'c1', controllerId: 1, clusterAuthorizedOperations: -2147483648, errorCode: 0,
      topics: topics.map((name) => ({
        errorCode: 0, name, topicId: 'AAAAAAAAAAAAAAAAAAAAAA', isInternal: false, topicAuthorizedOperations: -2147483648,
        partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 1, leaderEpoch: 0, replicaNodes: [1], isrNodes: [1], offlineReplicas: [] }],
      })),
    });
  }

  for (const version of [1, 12]) {
    it(`v${version}: asks describe per topic; a denied topic gets error 29, the broker still gives the brokers`, () => {
      const { frame, request } = requestOf(3, version, {
        topics: [{ name: 'admin.audit', topicId: 'AAAAAAAAAAAAAAAAAAAAAA' }, { name: 'orders', topicId: 'AAAAAAAAAAAAAAAAAAAAAA' }],
        // v0-3 always allow auto-creation (no field); auto-creation has its own spec (auto-create.test.ts).
        allowAutoTopicCreation: version < 4, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false,
      });
      const decide = decider(RULES);
      const plan = expectKind(authorizeRequest(frame, request, decide), 'split');
      assert.ok(decide.asked.every((a) => a.operation === 'describe'));
      assert.deepEqual(forwardedBody(plan.request, 3).topics?.map((t) => t.name), ['orders']);
      const body = responseBody(plan.completeResponse(metadataResponse(version, ['orders'])), 3, version);
      assert.deepEqual(body.brokers.map((b) => b.host), ['broker-1']);
      assert.deepEqual(body.topics.map((t) => [t.name, t.errorCode]), [['admin.audit', KafkaError.TOPIC_AUTHORIZATION_FAILED], ['orders', 0]]);
      assert.deepEqual(body.topics[0]!.partitions, []);
      assert.equal(body.topics[0]!.isInternal, false);
    });
  }

  it('forwards an all-denied request asking for no topic, so the client still learns the brokers', () => {
    const { frame, request } = requestOf(3, 12, {
      topics: [{ name: 'admin.audit', topicId: 'AAAAAAAAAAAAAAAAAAAAAA' }],
      allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false,
    });
    const plan = expectKind(authorizeRequest(frame, request, decider(RULES)), 'split');
    assert.deepEqual(forwardedBody(plan.request, 3).topics, []);
  });

  it('all topics (null): forwards, then leaves out the topics the principal may not describe', () => {
    const { frame, request } = requestOf(3, 12, { topics: null, allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    const decide = decider(RULES);
    const plan = expectKind(authorizeRequest(frame, request, decide), 'forward');
    assert.equal(plan.decisions.length, 0, 'nothing is asked before the broker answers');
    const body = responseBody(plan.filterResponse!(metadataResponse(12, ['orders', 'admin.audit', 'payments'])), 3, 12);
    assert.deepEqual(body.topics.map((t) => t.name), ['orders', 'payments']);
    assert.deepEqual(plan.decisions.map((d) => d.action.topic), ['orders', 'admin.audit', 'payments'], 'decisions taken while filtering are recorded');
  });
});
