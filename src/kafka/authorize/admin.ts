/**
 * @module kafka/authorize/admin
 * Admin APIs. Topic administration is judged per topic (admin; TOPIC_AUTHORIZATION_FAILED per denied topic),
 * configs per resource (describe or admin on the topic, the group, or the cluster for broker resources), and the
 * cluster-wide APIs (ACLs, quotas, SCRAM credentials, log dirs, features, quorum) as one question with no resource
 * (CLUSTER_AUTHORIZATION_FAILED).
 */
import type { KafkaOperation } from '../../core/action.ts';
import {
  AlterClientQuotasResponseSchema,
  AlterConfigsResponseSchema,
  AlterPartitionReassignmentsResponseSchema,
  AlterReplicaLogDirsResponseSchema,
  AlterUserScramCredentialsResponseSchema,
  CreateAclsResponseSchema,
  CreatePartitionsResponseSchema,
  CreateTopicsResponseSchema,
  DeleteAclsResponseSchema,
  DeleteRecordsResponseSchema,
  DeleteTopicsResponseSchema,
  DescribeAclsResponseSchema,
  DescribeClientQuotasResponseSchema,
  DescribeClusterResponseSchema,
  DescribeConfigsResponseSchema,
  DescribeLogDirsResponseSchema,
  DescribeProducersResponseSchema,
  DescribeQuorumResponseSchema,
  DescribeTransactionsResponseSchema,
  DescribeUserScramCredentialsResponseSchema,
  ElectLeadersResponseSchema,
  IncrementalAlterConfigsResponseSchema,
  ListPartitionReassignmentsResponseSchema,
  ListTransactionsResponseSchema,
  UpdateFeaturesResponseSchema,
} from '../protocol/generated/index.ts';
import type {
  AlterConfigsRequest,
  AlterConfigsResponse,
  AlterPartitionReassignmentsRequest,
  AlterPartitionReassignmentsResponse,
  CreatePartitionsRequest,
  CreatePartitionsResponse,
  CreateTopicsRequest,
  CreateTopicsResponse,
  DeleteRecordsRequest,
  DeleteRecordsResponse,
  DeleteTopicsRequest,
  DeleteTopicsResponse,
  DescribeConfigsRequest,
  DescribeConfigsResponse,
  DescribeTransactionsRequest,
  DescribeTransactionsResponse,
  ElectLeadersRequest,
  ElectLeadersResponse,
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponse,
  KnownApiKey,
  RequestBodies,
} from '../protocol/generated/index.ts';
import { apiPolicy, blank, deniedEntry, planEntries, planWhole } from './plan.ts';
import type { ApiPolicy, Denial, Judge, RequestPlan, Resource, Verdict } from './plan.ts';

// ---------------------------------------------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------------------------------------------

function createTopics(judge: Judge, body: CreateTopicsRequest): RequestPlan {
  type Topic = CreateTopicsRequest['topics'][number];
  type Result = CreateTopicsResponse['topics'][number];
  return planEntries<CreateTopicsRequest, CreateTopicsResponse, Topic, Result>(judge, {
    entries: body.topics,
    verdict: (topic) => judge.check('admin', { topic: topic.name }),
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.name,
    results: (response) => response.topics,
    resultKey: (result) => result.name,
    withResults: (response, topics) => ({ ...response, topics }),
    denied: (topic, denial) => deniedEntry<Result>(CreateTopicsResponseSchema, 'topics', judge.version, denial, { name: topic.name }),
    blankResponse: () => blank<CreateTopicsResponse>(CreateTopicsResponseSchema),
  });
}

function deleteTopics(judge: Judge, body: DeleteTopicsRequest): RequestPlan {
  type Result = DeleteTopicsResponse['responses'][number];
  const v = judge.version;
  const common = {
    results: (response: DeleteTopicsResponse) => response.responses,
    resultKey: (result: Result) => result.name ?? '',
    withResults: (response: DeleteTopicsResponse, responses: Result[]) => ({ ...response, responses }),
    blankResponse: () => blank<DeleteTopicsResponse>(DeleteTopicsResponseSchema),
  };
  if (v < 6) {
    return planEntries<DeleteTopicsRequest, DeleteTopicsResponse, string, Result>(judge, {
      ...common,
      entries: body.topicNames,
      verdict: (name) => judge.check('admin', { topic: name }),
      withEntries: (topicNames) => ({ ...body, topicNames }),
      requestKey: (name) => name,
      denied: (name, denial) => deniedEntry<Result>(DeleteTopicsResponseSchema, 'responses', v, denial, { name }),
    });
  }
  type Topic = DeleteTopicsRequest['topics'][number];
  const byId = body.topics.find((topic) => topic.name === null);
  if (byId !== undefined) return judge.refuse(`DeleteTopics v${v} names topic ${byId.topicId} by id only; tollgate judges topics by name`);
  return planEntries<DeleteTopicsRequest, DeleteTopicsResponse, Topic, Result>(judge, {
    ...common,
    entries: body.topics,
    verdict: (topic) => judge.check('admin', { topic: topic.name! }),
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.name!,
    denied: (topic, denial) => deniedEntry<Result>(DeleteTopicsResponseSchema, 'responses', v, denial, { name: topic.name, topicId: topic.topicId }),
  });
}

function createPartitions(judge: Judge, body: CreatePartitionsRequest): RequestPlan {
  type Topic = CreatePartitionsRequest['topics'][number];
  type Result = CreatePartitionsResponse['results'][number];
  return planEntries<CreatePartitionsRequest, CreatePartitionsResponse, Topic, Result>(judge, {
    entries: body.topics,
    verdict: (topic) => judge.check('admin', { topic: topic.name }),
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.name,
    results: (response) => response.results,
    resultKey: (result) => result.name,
    withResults: (response, results) => ({ ...response, results }),
    denied: (topic, denial) => deniedEntry<Result>(CreatePartitionsResponseSchema, 'results', judge.version, denial, { name: topic.name }),
    blankResponse: () => blank<CreatePartitionsResponse>(CreatePartitionsResponseSchema),
  });
}

function deleteRecords(judge: Judge, body: DeleteRecordsRequest): RequestPlan {
  type Topic = DeleteRecordsRequest['topics'][number];
  type Result = DeleteRecordsResponse['topics'][number];
  const v = judge.version;
  return planEntries<DeleteRecordsRequest, DeleteRecordsResponse, Topic, Result>(judge, {
    entries: body.topics,
    verdict: (topic) => judge.check('admin', { topic: topic.name }),
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.name,
    results: (response) => response.topics,
    resultKey: (result) => result.name,
    withResults: (response, topics) => ({ ...response, topics }),
    denied: (topic, denial) => ({
      name: topic.name,
      partitions: topic.partitions.map((partition) =>
        deniedEntry(DeleteRecordsResponseSchema, 'topics.partitions', v, denial, { partitionIndex: partition.partitionIndex, lowWatermark: -1n }),
      ),
    }),
    blankResponse: () => blank<DeleteRecordsResponse>(DeleteRecordsResponseSchema),
  });
}

function electLeaders(judge: Judge, body: ElectLeadersRequest): RequestPlan {
  const v = judge.version;
  if (body.topicPartitions === null) {
    // All partitions: a cluster-wide question. v0 has no top-level error code to carry a denial.
    const verdict = judge.check('admin');
    if (verdict !== undefined && v === 0) return judge.refuse(`ElectLeaders v0 for all partitions denied: ${verdict.decision.reason}`);
    return planWhole(judge, verdict, (denial) => deniedEntry(ElectLeadersResponseSchema, '', v, denial, {}));
  }
  type Topic = NonNullable<ElectLeadersRequest['topicPartitions']>[number];
  type Result = ElectLeadersResponse['replicaElectionResults'][number];
  return planEntries<ElectLeadersRequest, ElectLeadersResponse, Topic, Result>(judge, {
    entries: body.topicPartitions,
    verdict: (topic) => judge.check('admin', { topic: topic.topic }),
    withEntries: (topicPartitions) => ({ ...body, topicPartitions }),
    requestKey: (topic) => topic.topic,
    results: (response) => response.replicaElectionResults,
    resultKey: (result) => result.topic,
    withResults: (response, replicaElectionResults) => ({ ...response, replicaElectionResults }),
    denied: (topic, denial) => ({
      topic: topic.topic,
      partitionResult: topic.partitions.map((partitionId) => deniedEntry(ElectLeadersResponseSchema, 'replicaElectionResults.partitionResult', v, denial, { partitionId })),
    }),
    blankResponse: () => blank<ElectLeadersResponse>(ElectLeadersResponseSchema),
  });
}

function alterPartitionReassignments(judge: Judge, body: AlterPartitionReassignmentsRequest): RequestPlan {
  type Topic = AlterPartitionReassignmentsRequest['topics'][number];
  type Result = AlterPartitionReassignmentsResponse['responses'][number];
  const v = judge.version;
  return planEntries<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, Topic, Result>(judge, {
    entries: body.topics,
    verdict: (topic) => judge.check('admin', { topic: topic.name }),
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.name,
    results: (response) => response.responses,
    resultKey: (result) => result.name,
    withResults: (response, responses) => ({ ...response, responses }),
    denied: (topic, denial) => ({
      name: topic.name,
      partitions: topic.partitions.map((partition) =>
        deniedEntry(AlterPartitionReassignmentsResponseSchema, 'responses.partitions', v, denial, { partitionIndex: partition.partitionIndex }),
      ),
    }),
    blankResponse: () => ({ ...blank<AlterPartitionReassignmentsResponse>(AlterPartitionReassignmentsResponseSchema), errorMessage: null }),
  });
}

const listPartitionReassignments = apiPolicy(46, 'admin per topic; admin on the cluster for all topics (whole request)', (judge, body) => {
  // Whole: the response lists ongoing reassignments and has no per-topic error, so a denied topic can only be
  // reported by failing the request (leaving it out would read as "no reassignment in progress").
  let verdict: Verdict;
  if (body.topics === null) verdict = judge.check('admin');
  else for (const topic of body.topics) verdict ??= judge.check('admin', { topic: topic.name });
  return planWhole(judge, verdict, (denial) => deniedEntry(ListPartitionReassignmentsResponseSchema, '', judge.version, denial, {}));
});

// ---------------------------------------------------------------------------------------------------------------
// Configs
// ---------------------------------------------------------------------------------------------------------------

/** Config resource types (org.apache.kafka.common.config.ConfigResource.Type). */
const CONFIG_RESOURCE = { topic: 2, broker: 4, brokerLogger: 8, clientMetrics: 16, group: 32 } as const;

/** The resource a config resource is judged on: topic and group by name, anything else is the cluster's. */
function configResource(resourceType: number, resourceName: string): Resource {
  if (resourceType === CONFIG_RESOURCE.topic) return { topic: resourceName };
  if (resourceType === CONFIG_RESOURCE.group) return { group: resourceName };
  return {};
}

const configKey = (entry: { readonly resourceType: number; readonly resourceName: string }) => `${entry.resourceType}\0${entry.resourceName}`;

function describeConfigs(judge: Judge, body: DescribeConfigsRequest): RequestPlan {
  type Entry = DescribeConfigsRequest['resources'][number];
  type Result = DescribeConfigsResponse['results'][number];
  return planEntries<DescribeConfigsRequest, DescribeConfigsResponse, Entry, Result>(judge, {
    entries: body.resources,
    verdict: (entry) => judge.check('describe', configResource(entry.resourceType, entry.resourceName)),
    withEntries: (resources) => ({ ...body, resources }),
    requestKey: configKey,
    results: (response) => response.results,
    resultKey: configKey,
    withResults: (response, results) => ({ ...response, results }),
    denied: (entry, denial) =>
      deniedEntry<Result>(DescribeConfigsResponseSchema, 'results', judge.version, denial, { resourceType: entry.resourceType, resourceName: entry.resourceName }),
    blankResponse: () => blank<DescribeConfigsResponse>(DescribeConfigsResponseSchema),
  });
}

function alterConfigs(judge: Judge, body: AlterConfigsRequest): RequestPlan {
  type Entry = AlterConfigsRequest['resources'][number];
  type Result = AlterConfigsResponse['responses'][number];
  return planEntries<AlterConfigsRequest, AlterConfigsResponse, Entry, Result>(judge, {
    entries: body.resources,
    verdict: (entry) => judge.check('admin', configResource(entry.resourceType, entry.resourceName)),
    withEntries: (resources) => ({ ...body, resources }),
    requestKey: configKey,
    results: (response) => response.responses,
    resultKey: configKey,
    withResults: (response, responses) => ({ ...response, responses }),
    denied: (entry, denial) =>
      deniedEntry<Result>(AlterConfigsResponseSchema, 'responses', judge.version, denial, { resourceType: entry.resourceType, resourceName: entry.resourceName }),
    blankResponse: () => blank<AlterConfigsResponse>(AlterConfigsResponseSchema),
  });
}

function incrementalAlterConfigs(judge: Judge, body: IncrementalAlterConfigsRequest): RequestPlan {
  type Entry = IncrementalAlterConfigsRequest['resources'][number];
  type Result = IncrementalAlterConfigsResponse['responses'][number];
  return planEntries<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, Entry, Result>(judge, {
    entries: body.resources,
    verdict: (entry) => judge.check('admin', configResource(entry.resourceType, entry.resourceName)),
    withEntries: (resources) => ({ ...body, resources }),
    requestKey: configKey,
    results: (response) => response.responses,
    resultKey: configKey,
    withResults: (response, responses) => ({ ...response, responses }),
    denied: (entry, denial) =>
      deniedEntry<Result>(IncrementalAlterConfigsResponseSchema, 'responses', judge.version, denial, { resourceType: entry.resourceType, resourceName: entry.resourceName }),
    blankResponse: () => blank<IncrementalAlterConfigsResponse>(IncrementalAlterConfigsResponseSchema),
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Cluster-wide
// ---------------------------------------------------------------------------------------------------------------

/** An API judged as one question with no resource; `denied` builds its whole error response. */
function cluster<K extends KnownApiKey>(apiKey: K, operation: KafkaOperation, denied: (body: RequestBodies[K], version: number, denial: Denial) => unknown): ApiPolicy {
  return apiPolicy(apiKey, `${operation} on the cluster`, (judge, body) => planWhole(judge, judge.check(operation), (denial) => denied(body, judge.version, denial)));
}

function describeTransactions(judge: Judge, body: DescribeTransactionsRequest): RequestPlan {
  type Result = DescribeTransactionsResponse['transactionStates'][number];
  return planEntries<DescribeTransactionsRequest, DescribeTransactionsResponse, string, Result>(judge, {
    entries: body.transactionalIds,
    verdict: (transactionalId) => judge.check('describe', { transactionalId }),
    withEntries: (transactionalIds) => ({ ...body, transactionalIds }),
    requestKey: (id) => id,
    results: (response) => response.transactionStates,
    resultKey: (result) => result.transactionalId,
    withResults: (response, transactionStates) => ({ ...response, transactionStates }),
    denied: (transactionalId, denial) => deniedEntry<Result>(DescribeTransactionsResponseSchema, 'transactionStates', judge.version, denial, { transactionalId }),
    blankResponse: () => blank<DescribeTransactionsResponse>(DescribeTransactionsResponseSchema),
  });
}

export const ADMIN_APIS: readonly ApiPolicy[] = [
  apiPolicy(19, 'admin per topic', createTopics),
  apiPolicy(20, 'admin per topic (v6 by topic id only: refused)', deleteTopics),
  apiPolicy(21, 'admin per topic', deleteRecords),
  apiPolicy(37, 'admin per topic', createPartitions),
  apiPolicy(43, 'admin per topic; admin on the cluster for all partitions', electLeaders),
  apiPolicy(45, 'admin per topic', alterPartitionReassignments),
  listPartitionReassignments,
  apiPolicy(32, 'describe per resource: topic, group, or the cluster for broker, broker-logger and client-metrics resources', describeConfigs),
  apiPolicy(33, 'admin per resource: topic, group, or the cluster', alterConfigs),
  apiPolicy(44, 'admin per resource: topic, group, or the cluster', incrementalAlterConfigs),
  cluster(29, 'describe', (_body, v, denial) => deniedEntry(DescribeAclsResponseSchema, '', v, denial, {})),
  cluster(30, 'admin', (body, v, denial) => ({
    ...blank<object>(CreateAclsResponseSchema),
    results: body.creations.map(() => deniedEntry(CreateAclsResponseSchema, 'results', v, denial, {})),
  })),
  cluster(31, 'admin', (body, v, denial) => ({
    ...blank<object>(DeleteAclsResponseSchema),
    filterResults: body.filters.map(() => deniedEntry(DeleteAclsResponseSchema, 'filterResults', v, denial, {})),
  })),
  cluster(34, 'admin', (body, v, denial) => ({
    ...blank<object>(AlterReplicaLogDirsResponseSchema),
    results: body.dirs.flatMap((dir) =>
      dir.topics.map((topic) => ({
        topicName: topic.name,
        partitions: topic.partitions.map((partitionIndex) => deniedEntry(AlterReplicaLogDirsResponseSchema, 'results.partitions', v, denial, { partitionIndex })),
      })),
    ),
  })),
  // v1-2 have no top-level error code: the denial reads as "no log dir".
  cluster(35, 'describe', (_body, v, denial) => deniedEntry(DescribeLogDirsResponseSchema, '', v, denial, {})),
  cluster(48, 'describe', (_body, v, denial) => deniedEntry(DescribeClientQuotasResponseSchema, '', v, denial, { entries: null })),
  cluster(49, 'admin', (body, v, denial) => ({
    ...blank<object>(AlterClientQuotasResponseSchema),
    entries: body.entries.map((entry) =>
      deniedEntry(AlterClientQuotasResponseSchema, 'entries', v, denial, { entity: entry.entity.map(({ entityType, entityName }) => ({ entityType, entityName })) }),
    ),
  })),
  cluster(50, 'describe', (_body, v, denial) => deniedEntry(DescribeUserScramCredentialsResponseSchema, '', v, denial, {})),
  cluster(51, 'admin', (body, v, denial) => ({
    ...blank<object>(AlterUserScramCredentialsResponseSchema),
    results: [...body.deletions, ...body.upsertions].map((user) => deniedEntry(AlterUserScramCredentialsResponseSchema, 'results', v, denial, { user: user.name })),
  })),
  cluster(55, 'describe', (_body, v, denial) => deniedEntry(DescribeQuorumResponseSchema, '', v, denial, {})),
  cluster(57, 'admin', (body, v, denial) =>
    deniedEntry(UpdateFeaturesResponseSchema, '', v, denial, {
      results: body.featureUpdates.map((update) => deniedEntry(UpdateFeaturesResponseSchema, 'results', v, denial, { feature: update.feature })),
    }),
  ),
  cluster(60, 'describe', (_body, v, denial) => deniedEntry(DescribeClusterResponseSchema, '', v, denial, {})),
  cluster(61, 'describe', (body, v, denial) => ({
    ...blank<object>(DescribeProducersResponseSchema),
    topics: body.topics.map((topic) => ({
      name: topic.name,
      partitions: topic.partitionIndexes.map((partitionIndex) => deniedEntry(DescribeProducersResponseSchema, 'topics.partitions', v, denial, { partitionIndex })),
    })),
  })),
  apiPolicy(65, 'describe per transactional id', describeTransactions),
  cluster(66, 'describe', (_body, v, denial) => deniedEntry(ListTransactionsResponseSchema, '', v, denial, {})),
];
