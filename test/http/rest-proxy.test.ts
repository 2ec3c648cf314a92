/**
 * Kafka REST Proxy requests as the Kafka requests they amount to: the same API names, operations and resources a wire
 * client's request is judged by, so one rule file governs both. Unknown paths and methods are `unknown` (denied).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KafkaAction, KafkaOperation } from '../../src/core/action.ts';
import { configSchema } from '../../src/config/schema.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import type { Principal } from '../../src/core/principal.ts';
import {
  bodyActions, filterListing, listingAction, restProxyActions, RestProxyBodyError, type RestProxyKafkaRequest,
} from '../../src/http/rest-proxy.ts';

const k = (api: string, operation: KafkaOperation, resource: { topic?: string; group?: string } = {}): KafkaAction => ({ kind: 'kafka', api, operation, ...resource });

function kafkaRequest(method: string, path: string): RestProxyKafkaRequest {
  const request = restProxyActions(method, path);
  assert.equal(request?.kind, 'kafka', `${method} ${path}: ${JSON.stringify(request)}`);
  return request as RestProxyKafkaRequest;
}

const C = '/v3/clusters/lkc-1';
const I = '/consumers/analytics/instances/i-1';

// [method, path, Confluent operation id (or v2 name), actions asked up front]
const table: Array<[string, string, string, KafkaAction[]]> = [
  // clusters, brokers, ACLs
  ['GET', '/v3/clusters', 'listKafkaClusters', [k('DescribeCluster', 'describe')]],
  ['GET', C, 'getKafkaCluster', [k('DescribeCluster', 'describe')]],
  ['GET', `${C}/brokers`, 'listKafkaBrokers', [k('DescribeCluster', 'describe')]],
  ['GET', `${C}/brokers/1`, 'getKafkaBroker', [k('DescribeCluster', 'describe')]],
  ['GET', `${C}/acls?resource_type=TOPIC`, 'getKafkaAcls', [k('DescribeAcls', 'describe')]],
  ['POST', `${C}/acls`, 'createKafkaAcls', [k('CreateAcls', 'admin')]],
  ['POST', `${C}/acls:batch`, 'batchCreateKafkaAcls', [k('CreateAcls', 'admin')]],
  ['DELETE', `${C}/acls?principal=User:bob`, 'deleteKafkaAcls', [k('DeleteAcls', 'admin')]],
  // broker and cluster configs: on the cluster, as broker config resources are on the wire
  ['GET', `${C}/broker-configs`, 'listKafkaClusterConfigs', [k('DescribeConfigs', 'describe')]],
  ['GET', `${C}/broker-configs/log.retention.ms`, 'getKafkaClusterConfig', [k('DescribeConfigs', 'describe')]],
  ['PUT', `${C}/broker-configs/log.retention.ms`, 'updateKafkaClusterConfig', [k('IncrementalAlterConfigs', 'admin')]],
  ['DELETE', `${C}/broker-configs/log.retention.ms`, 'deleteKafkaClusterConfig', [k('IncrementalAlterConfigs', 'admin')]],
  ['POST', `${C}/broker-configs:alter`, 'updateKafkaClusterConfigs', [k('IncrementalAlterConfigs', 'admin')]],
  ['GET', `${C}/brokers/-/configs`, 'listKafkaAllBrokerConfigs', [k('DescribeConfigs', 'describe')]],
  ['GET', `${C}/brokers/1/configs`, 'listKafkaBrokerConfigs', [k('DescribeConfigs', 'describe')]],
  ['GET', `${C}/brokers/1/configs/num.io.threads`, 'getKafkaBrokerConfig', [k('DescribeConfigs', 'describe')]],
  ['PUT', `${C}/brokers/1/configs/num.io.threads`, 'updateKafkaBrokerConfig', [k('IncrementalAlterConfigs', 'admin')]],
  ['DELETE', `${C}/brokers/1/configs/num.io.threads`, 'deleteKafkaBrokerConfig', [k('IncrementalAlterConfigs', 'admin')]],
  ['POST', `${C}/brokers/1/configs:alter`, 'updateKafkaBrokerConfigs', [k('IncrementalAlterConfigs', 'admin')]],
  // topics, configs, partitions
  ['GET', `${C}/topics/orders`, 'getKafkaTopic', [k('Metadata', 'describe', { topic: 'orders' })]],
  ['HEAD', `${C}/topics/orders`, 'getKafkaTopic', [k('Metadata', 'describe', { topic: 'orders' })]],
  ['PATCH', `${C}/topics/orders`, 'updatePartitionCountKafkaTopic', [k('CreatePartitions', 'admin', { topic: 'orders' })]],
  ['DELETE', `${C}/topics/orders`, 'deleteKafkaTopic', [k('DeleteTopics', 'admin', { topic: 'orders' })]],
  ['GET', `${C}/topics/orders/configs`, 'listKafkaTopicConfigs', [k('DescribeConfigs', 'describe', { topic: 'orders' })]],
  ['GET', `${C}/topics/orders/configs/retention.ms`, 'getKafkaTopicConfig', [k('DescribeConfigs', 'describe', { topic: 'orders' })]],
  ['PUT', `${C}/topics/orders/configs/retention.ms`, 'updateKafkaTopicConfig', [k('IncrementalAlterConfigs', 'admin', { topic: 'orders' })]],
  ['DELETE', `${C}/topics/orders/configs/retention.ms`, 'deleteKafkaTopicConfig', [k('IncrementalAlterConfigs', 'admin', { topic: 'orders' })]],
  ['POST', `${C}/topics/orders/configs:alter`, 'updateKafkaTopicConfigBatch', [k('IncrementalAlterConfigs', 'admin', { topic: 'orders' })]],
  ['GET', `${C}/topics/orders/partitions`, 'listKafkaPartitions', [k('Metadata', 'describe', { topic: 'orders' })]],
  ['GET', `${C}/topics/orders/partitions/3`, 'getKafkaPartition', [k('Metadata', 'describe', { topic: 'orders' })]],
  ['GET', `${C}/topics/orders/partitions/3/offset?offset_type=LATEST`, 'listKafkaPartitionOffsets', [k('ListOffsets', 'consume', { topic: 'orders' })]],
  ['GET', `${C}/topics/orders/partitions/3/replicas`, 'listKafkaReplicas', [k('Metadata', 'describe', { topic: 'orders' })]],
  ['GET', `${C}/topics/orders/partitions/3/replicas/1`, 'getKafkaReplica', [k('Metadata', 'describe', { topic: 'orders' })]],
  ['GET', `${C}/topics/-/partitions/-/reassignment`, 'listKafkaAllReassignments', [k('ListPartitionReassignments', 'admin')]],
  ['GET', `${C}/topics/orders/partitions/-/reassignment`, 'searchKafkaReassignmentsByTopic', [k('ListPartitionReassignments', 'admin', { topic: 'orders' })]],
  ['GET', `${C}/topics/orders/partitions/3/reassignment`, 'getKafkaReassignment', [k('ListPartitionReassignments', 'admin', { topic: 'orders' })]],
  // records
  ['POST', `${C}/topics/orders/records`, 'produceRecord', [k('Produce', 'produce', { topic: 'orders' })]],
  ['POST', `/kafka${C}/topics/orders/records`, 'produceRecord', [k('Produce', 'produce', { topic: 'orders' })]],
  ['POST', `${C}/topics/orders/records:batch`, 'produceRecordsBatch', [k('Produce', 'produce', { topic: 'orders' })]],
  // consumer groups and lags
  ['GET', `${C}/consumer-groups/analytics`, 'getKafkaConsumerGroup', [k('DescribeGroups', 'describe', { group: 'analytics' })]],
  ['GET', `${C}/consumer-groups/analytics/consumers`, 'listKafkaConsumers', [k('DescribeGroups', 'describe', { group: 'analytics' })]],
  ['GET', `${C}/consumer-groups/analytics/consumers/c-1`, 'getKafkaConsumer', [k('DescribeGroups', 'describe', { group: 'analytics' })]],
  ['GET', `${C}/consumer-groups/analytics/consumers/c-1/assignments`, 'listKafkaConsumerAssignment', [k('DescribeGroups', 'describe', { group: 'analytics' })]],
  ['GET', `${C}/consumer-groups/analytics/consumers/c-1/assignments/orders/partitions/0`, 'getKafkaConsumerAssignment', [k('DescribeGroups', 'describe', { group: 'analytics' })]],
  ['GET', `${C}/consumer-groups/analytics/lag-summary`, 'getKafkaConsumerGroupLagSummary', [k('DescribeGroups', 'describe', { group: 'analytics' }), k('OffsetFetch', 'consume', { group: 'analytics' })]],
  ['GET', `${C}/consumer-groups/analytics/lags`, 'listKafkaConsumerLags', [k('DescribeGroups', 'describe', { group: 'analytics' }), k('OffsetFetch', 'consume', { group: 'analytics' })]],
  ['GET', `${C}/consumer-groups/analytics/lags/orders/partitions/0`, 'getKafkaConsumerLag',
    [k('DescribeGroups', 'describe', { group: 'analytics' }), k('OffsetFetch', 'consume', { group: 'analytics' }), k('OffsetFetch', 'consume', { topic: 'orders' })]],
  // v2 topics, partitions, brokers
  ['GET', '/brokers', 'v2.listBrokers', [k('DescribeCluster', 'describe')]],
  ['GET', '/topics/orders', 'v2.getTopic', [k('Metadata', 'describe', { topic: 'orders' })]],
  ['POST', '/topics/orders', 'v2.produceToTopic', [k('Produce', 'produce', { topic: 'orders' })]],
  ['GET', '/topics/orders/partitions', 'v2.listPartitions', [k('Metadata', 'describe', { topic: 'orders' })]],
  ['GET', '/topics/orders/partitions/2', 'v2.getPartition', [k('Metadata', 'describe', { topic: 'orders' })]],
  ['POST', '/topics/orders/partitions/2', 'v2.produceToPartition', [k('Produce', 'produce', { topic: 'orders' })]],
  ['GET', '/topics/orders/partitions/2/offsets', 'v2.getPartitionOffsets', [k('ListOffsets', 'consume', { topic: 'orders' })]],
  // v2 consumer instances: every request is consume on the group
  ['POST', '/consumers/analytics', 'v2.createConsumer', [k('JoinGroup', 'consume', { group: 'analytics' })]],
  ['DELETE', I, 'v2.deleteConsumer', [k('LeaveGroup', 'consume', { group: 'analytics' })]],
  ['POST', `${I}/subscription`, 'v2.subscribe', [k('JoinGroup', 'consume', { group: 'analytics' })]],
  ['GET', `${I}/subscription`, 'v2.getSubscription', [k('SyncGroup', 'consume', { group: 'analytics' })]],
  ['DELETE', `${I}/subscription`, 'v2.unsubscribe', [k('LeaveGroup', 'consume', { group: 'analytics' })]],
  ['POST', `${I}/assignments`, 'v2.assign', [k('SyncGroup', 'consume', { group: 'analytics' })]],
  ['GET', `${I}/assignments`, 'v2.getAssignments', [k('SyncGroup', 'consume', { group: 'analytics' })]],
  ['GET', `${I}/records?timeout=3000&max_bytes=300000`, 'v2.readRecords', [k('Fetch', 'consume', { group: 'analytics' })]],
  ['POST', `${I}/offsets`, 'v2.commitOffsets', [k('OffsetCommit', 'consume', { group: 'analytics' })]],
  ['GET', `${I}/offsets`, 'v2.getCommittedOffsets', [k('OffsetFetch', 'consume', { group: 'analytics' })]],
  ['POST', `${I}/positions`, 'v2.seek', [k('Fetch', 'consume', { group: 'analytics' })]],
  ['POST', `${I}/positions/beginning`, 'v2.seekToBeginning', [k('Fetch', 'consume', { group: 'analytics' })]],
  ['POST', `${I}/positions/end`, 'v2.seekToEnd', [k('Fetch', 'consume', { group: 'analytics' })]],
];

test('every REST operation is asked as the Kafka request it amounts to', () => {
  for (const [method, path, operation, actions] of table) {
    const request = kafkaRequest(method, path);
    assert.equal(request.operation, operation, `${method} ${path}`);
    assert.deepEqual(request.actions, actions, `${method} ${path}`);
    assert.equal(request.version, path.includes('/v3') ? 'v3' : 'v2');
  }
});

test('v3 requests carry their cluster id; /kafka/v3 (Confluent Server and Cloud) is the same API', () => {
  assert.equal(kafkaRequest('GET', `${C}/topics/orders`).cluster, 'lkc-1');
  assert.deepEqual(kafkaRequest('GET', `/kafka${C}/topics/orders`), kafkaRequest('GET', `${C}/topics/orders`));
  assert.equal(kafkaRequest('GET', '/topics/orders').cluster, undefined);
});

test('path segments are percent-decoded before they are judged; a double slash changes nothing', () => {
  assert.deepEqual(kafkaRequest('POST', `${C}/topics/payments%2Eeu/records`).actions, [k('Produce', 'produce', { topic: 'payments.eu' })]);
  assert.deepEqual(kafkaRequest('POST', `/v3//clusters/lkc-1/topics/orders//records`).actions, [k('Produce', 'produce', { topic: 'orders' })]);
  assert.deepEqual(restProxyActions('GET', `${C}/topics/%E0%A4%A`), { kind: 'unknown', reason: `malformed percent-encoding in "${C}/topics/%E0%A4%A"` });
});

test('what the body carries is said: records to inspect (v3 stream, v3 batch, v2), records read to mask', () => {
  assert.equal(kafkaRequest('POST', `${C}/topics/orders/records`).produce, 'v3-stream');
  assert.equal(kafkaRequest('POST', `${C}/topics/orders/records:batch`).produce, 'v3-batch');
  assert.equal(kafkaRequest('POST', '/topics/orders').produce, 'v2');
  assert.equal(kafkaRequest('POST', '/topics/orders/partitions/0').produce, 'v2');
  assert.equal(kafkaRequest('GET', `${I}/records`).consume, true);
  assert.equal(kafkaRequest('GET', `${C}/topics/orders`).produce, undefined);
  assert.equal(kafkaRequest('GET', `${C}/topics/orders`).consume, undefined);
});

test('unknown v3 paths and methods are an explicit unknown, so the caller can deny them', () => {
  for (const [method, path] of [
    ['GET', '/v3'],
    ['GET', `${C}/links`],
    ['DELETE', `${C}/brokers/1`],
    ['GET', `${C}/brokers/1/tasks`],
    ['GET', `${C}/topics/orders/records`],
    ['PUT', `${C}/topics/orders`],
    ['POST', `${C}/topics/orders/configs`],
    ['GET', `${C}/topics/orders/partitions/0/records`],
    ['OPTIONS', `${C}/topics`],
    ['GET', `${C}/group-configs`],
    ['GET', '/topics/orders/partitions/0/messages'],
    ['GET', '/consumers/analytics'],
    ['POST', `${I}/records`],
  ] as const) {
    const request = restProxyActions(method, path);
    assert.equal(request?.kind, 'unknown', `${method} ${path}: ${JSON.stringify(request)}`);
  }
  assert.deepEqual(restProxyActions('PUT', `${C}/topics/orders`), { kind: 'unknown', reason: `PUT is not a Kafka REST Proxy operation on ${C}/topics/orders` });
  assert.deepEqual(restProxyActions('GET', `${C}/links`), { kind: 'unknown', reason: `${C}/links is not a Kafka REST Proxy path tollgate knows` });
});

test('segments a server would resolve or strip are unknown wherever they are, so no judged path can land elsewhere', () => {
  for (const path of [
    '/foo/../v3/clusters/lkc-1/topics/payments/records',
    `${C}/topics/x/../payments/records`,
    `${C}/topics/payments/./records`,
    `${C}/topics/%2e%2e/records`,
    '/v3%2Fclusters/lkc-1/topics/payments/records',
    `${C}/topics/orders%2Fpayments/records`,
    `${C}/topics/payments;x=1/records`,
    '/public;/../v3/clusters',
  ]) {
    const request = restProxyActions('POST', path);
    assert.equal(request?.kind, 'unknown', `${path}: ${JSON.stringify(request)}`);
  }
  assert.match((restProxyActions('POST', `${C}/topics/payments;x=1/records`) as { reason: string }).reason, /"payments;x=1" is not a path segment tollgate judges/);
});

test('paths outside both APIs are not Kafka requests at all (undefined, for the caller to judge as HTTP)', () => {
  for (const path of ['/', '/metrics', '/v2/topics', '/kafka/v2/topics', '/api/v1/pods']) assert.equal(restProxyActions('GET', path), undefined, path);
});

test('topics named in the body are asked too: created topics, batch config changes, v2 subscriptions and offsets', () => {
  const cases: Array<[string, string, string, KafkaAction[]]> = [
    ['POST', `${C}/topics`, '{"topic_name":"orders","partitions_count":6}', [k('CreateTopics', 'admin', { topic: 'orders' })]],
    ['POST', `${C}/topics/-/configs:alter`, '{"data":[{"topic_name":"a","configs":[]},{"topic_name":"b","configs":[]}]}',
      [k('IncrementalAlterConfigs', 'admin', { topic: 'a' }), k('IncrementalAlterConfigs', 'admin', { topic: 'b' })]],
    ['POST', `${I}/subscription`, '{"topics":["orders","payments","orders"]}', [k('Fetch', 'consume', { topic: 'orders' }), k('Fetch', 'consume', { topic: 'payments' })]],
    ['POST', `${I}/subscription`, '{"topic_pattern":"orders.*"}', []],
    ['POST', `${I}/assignments`, '{"partitions":[{"topic":"orders","partition":0}]}', [k('Fetch', 'consume', { topic: 'orders' })]],
    ['POST', `${I}/offsets`, '{"offsets":[{"topic":"orders","partition":0,"offset":10}]}', [k('OffsetCommit', 'consume', { topic: 'orders' })]],
    ['POST', `${I}/offsets`, '', []],
    ['GET', `${I}/offsets`, '{"partitions":[{"topic":"orders","partition":0}]}', [k('OffsetFetch', 'consume', { topic: 'orders' })]],
    ['POST', `${I}/positions`, '{"offsets":[{"topic":"a","partition":0,"offset":1}],"timestamps":[{"topic":"b","partition":0,"timestamp":"2026-01-01T00:00:00Z"}]}',
      [k('ListOffsets', 'consume', { topic: 'a' }), k('ListOffsets', 'consume', { topic: 'b' })]],
    ['POST', `${I}/positions/end`, '{"partitions":[{"topic":"orders","partition":0}]}', [k('ListOffsets', 'consume', { topic: 'orders' })]],
    // A lenient reader could take one value for a list of one: it is judged either way.
    ['POST', `${I}/subscription`, '{"topics":"secret"}', [k('Fetch', 'consume', { topic: 'secret' })]],
  ];
  for (const [method, path, body, actions] of cases) assert.deepEqual(bodyActions(kafkaRequest(method, path), body), actions, `${method} ${path} ${body}`);
  assert.equal(kafkaRequest('POST', `${C}/topics`).actions.length, 0, 'the created topic is only known from the body');
  assert.deepEqual(bodyActions(kafkaRequest('GET', `${C}/topics/orders`), '{"topic_name":"other"}'), [], 'no body topics for a path-named request');
});

test('a body that does not name its topics properly is an error, not a pass', () => {
  const bad: Array<[string, string, string, RegExp]> = [
    ['POST', `${C}/topics`, '{"partitions_count":6}', /createKafkaTopic: the body names no topic \(topic_name\)/],
    ['POST', `${C}/topics`, '', /the body names no topic/],
    ['POST', `${C}/topics`, '{"topic_name":7}', /expected a topic name at topic_name, got 7/],
    ['POST', `${C}/topics/-/configs:alter`, '{"data":[{"configs":[]}]}', /expected a topic name at data\[0\]\.topic_name, got nothing/],
    ['POST', `${I}/subscription`, '{"topics":["a",{"b":1}]}', /expected a topic name at topics\[1\]/],
    ['POST', `${I}/offsets`, '{"offsets":[{"topic":null}]}', /expected a topic name at offsets\[0\]\.topic, got null/],
    ['POST', `${I}/subscription`, '{"topics":', /v2\.subscribe: expected a JSON body/],
    ['POST', `${I}/subscription`, '["orders"]', /expected a JSON object body/],
  ];
  for (const [method, path, body, message] of bad) {
    assert.throws(() => bodyActions(kafkaRequest(method, path), body), (err: unknown) => err instanceof RestProxyBodyError && message.test(err.message), `${method} ${path} ${body}`);
  }
});

test('listings ask nothing up front; each entry of the response is judged, as an all-topics Metadata is on the wire', () => {
  const listings: Array<[string, string, string, KafkaAction]> = [
    ['GET', `${C}/topics`, 'listKafkaTopics', k('Metadata', 'describe', { topic: 'x' })],
    ['GET', `${C}/topics/-/configs`, 'listKafkaAllTopicConfigs', k('DescribeConfigs', 'describe', { topic: 'x' })],
    ['GET', `${C}/brokers/1/partition-replicas`, 'searchKafkaReplicasByBroker', k('Metadata', 'describe', { topic: 'x' })],
    ['GET', `${C}/consumer-groups`, 'listKafkaConsumerGroups', k('ListGroups', 'describe', { group: 'x' })],
    ['GET', `${C}/consumer-groups/analytics/lags`, 'listKafkaConsumerLags', k('OffsetFetch', 'consume', { topic: 'x' })],
    ['GET', '/topics', 'v2.listTopics', k('Metadata', 'describe', { topic: 'x' })],
  ];
  for (const [method, path, operation, entry] of listings) {
    const request = kafkaRequest(method, path);
    assert.equal(request.operation, operation);
    assert.ok(request.listing !== undefined, path);
    assert.deepEqual(listingAction(request.listing, 'x'), entry, path);
  }
  assert.deepEqual(kafkaRequest('GET', `${C}/topics`).actions, []);
});

const principal: Principal = { subject: 'ann', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const policy = compilePolicy(configSchema.parse({
  rules: [
    { name: 'analysts-read-analytics', match: { kafka: { operation: 'consume', topic: 'analytics.*' }, group: 'analysts' }, effect: 'allow' },
    { name: 'analysts-see-their-groups', match: { kafka: { operation: 'describe', group: 'analytics-*' }, group: 'analysts' }, effect: 'allow' },
  ],
}).rules);
const allowed = (action: KafkaAction) => policy.decide(principal, action).effect === 'allow';

test('a listing keeps what the policy lets the principal see, every other byte as the proxy sent it', () => {
  const topics = `{"kind":"KafkaTopicList","metadata":{"self":"http://proxy/v3/clusters/lkc-1/topics","next":null},"data":[
    {"kind":"KafkaTopic","topic_name":"analytics.views","partitions_count":3},
    {"kind":"KafkaTopic","topic_name":"payments","partitions_count":6},
    {"kind":"KafkaTopic","topic_name":"analytics.clicks","partitions_count":3},
    {"kind":"KafkaTopic","topic_name":"admin.audit","partitions_count":1}
  ]}`;
  const listing = kafkaRequest('GET', `${C}/topics`).listing!;
  const out = filterListing(topics, listing, allowed);
  assert.deepEqual((JSON.parse(out) as { data: Array<{ topic_name: string }> }).data.map((t) => t.topic_name), ['analytics.views', 'analytics.clicks']);
  assert.equal(out, topics.replace(/\n {4}\{"kind":"KafkaTopic","topic_name":"payments"[^\n]*/, '').replace(/,\n {4}\{"kind":"KafkaTopic","topic_name":"admin\.audit"[^\n]*/, ''));
  assert.equal(filterListing(topics, listing, () => true), topics, 'nothing left out: the very same text');

  const groups = '{"kind":"KafkaConsumerGroupList","metadata":{},"data":[{"consumer_group_id":"analytics-1"},{"consumer_group_id":"billing"},{"no_id":true}]}';
  assert.equal(filterListing(groups, kafkaRequest('GET', `${C}/consumer-groups`).listing!, allowed), '{"kind":"KafkaConsumerGroupList","metadata":{},"data":[{"consumer_group_id":"analytics-1"}]}');
  assert.equal(filterListing(' ["payments", "analytics.views","x"] ', kafkaRequest('GET', '/topics').listing!, allowed), ' ["analytics.views"] ');
  assert.equal(filterListing('{"data":[{"topic_name":"payments"}]}', listing, allowed), '{"data":[]}');
  assert.throws(() => filterListing('{"data":{}}', listing, allowed), /expected a JSON object with a data array/);
  assert.throws(() => filterListing('{"data":[', listing, allowed), /expected a JSON listing/);
});

test('the same rule file: a wire Produce and a REST produce to the same topic get the same decision', () => {
  const rules = compilePolicy(configSchema.parse({
    rules: [{ name: 'ingest-writes-events', match: { kafka: { operation: 'produce', topic: 'events.*' }, group: 'ingest' }, effect: 'allow' }],
  }).rules);
  const ingest: Principal = { ...principal, groups: ['ingest'] };
  const wire = k('Produce', 'produce', { topic: 'events.web' }); // what src/kafka/authorize asks of a Produce
  const rest = kafkaRequest('POST', `${C}/topics/events.web/records`).actions;
  assert.deepEqual(rest, [wire]);
  assert.equal(rules.decide(ingest, rest[0]!).effect, 'allow');
  assert.equal(rules.decide(ingest, kafkaRequest('POST', `${C}/topics/payments/records`).actions[0]!).effect, 'deny');
  assert.equal(rules.decide(ingest, kafkaRequest('DELETE', `${C}/topics/events.web`).actions[0]!).effect, 'deny', 'produce does not imply admin');
});
