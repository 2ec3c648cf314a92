/**
 * @module kafka/authorize/topics
 * Data-path and topic-metadata APIs: Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, Metadata,
 * DescribeTopicPartitions. Each topic is judged on its own; a mixed request is split as Kafka's own authorizer
 * does (allowed topics processed, denied ones answered with TOPIC_AUTHORIZATION_FAILED per partition).
 */
import { API_KEY } from '../protocol/api-keys.ts';
import {
  DescribeTopicPartitionsResponseSchema,
  FetchResponseSchema,
  ListOffsetsResponseSchema,
  MetadataResponseSchema,
  OffsetForLeaderEpochResponseSchema,
  ProduceResponseSchema,
} from '../protocol/generated/index.ts';
import type {
  DescribeTopicPartitionsRequest,
  DescribeTopicPartitionsRequestTopicRequest,
  DescribeTopicPartitionsResponse,
  DescribeTopicPartitionsResponseDescribeTopicPartitionsResponseTopic,
  FetchRequest,
  FetchRequestFetchTopic,
  FetchResponse,
  FetchResponseFetchableTopicResponse,
  FetchResponsePartitionData,
  ListOffsetsRequest,
  ListOffsetsRequestListOffsetsTopic,
  ListOffsetsResponse,
  ListOffsetsResponseListOffsetsPartitionResponse,
  ListOffsetsResponseListOffsetsTopicResponse,
  MetadataRequest,
  MetadataRequestMetadataRequestTopic,
  MetadataResponse,
  MetadataResponseMetadataResponseTopic,
  OffsetForLeaderEpochRequest,
  OffsetForLeaderEpochRequestOffsetForLeaderTopic,
  OffsetForLeaderEpochResponse,
  OffsetForLeaderEpochResponseEpochEndOffset,
  OffsetForLeaderEpochResponseOffsetForLeaderTopicResult,
  ProduceRequest,
  ProduceRequestTopicProduceData,
  ProduceResponse,
  ProduceResponsePartitionProduceResponse,
  ProduceResponseTopicProduceResponse,
} from '../protocol/generated/index.ts';
import type { DecodedRequest, ProduceRequestView } from '../protocol/messages.ts';
import { Judge, apiPolicy, blank, byIdOnly, deniedEntry, planEntries } from './plan.ts';
import type { ApiPolicy, Decide, RequestPlan, ResourceDecision } from './plan.ts';

const EMPTY_RECORDS = Buffer.alloc(0);

function refuseById(judge: Judge, topicId: string, cap: string): RequestPlan {
  return judge.refuse(`${judge.api} v${judge.version} names topic ${topicId} by id only; tollgate judges topics by name (${cap})`);
}

const produce = apiPolicy(API_KEY.Produce, 'produce per topic; produce on the transactional id of a transactional producer (denied: every partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED)', (judge, body) => {
  for (const topic of body.topicData) if (byIdOnly(topic.name, topic.topicId)) return refuseById(judge, topic.topicId, 'the connection caps Produce at v12');
  const txn = body.transactionalId === null ? undefined : judge.check('produce', { transactionalId: body.transactionalId });
  const verdict = (topic: ProduceRequestTopicProduceData) => judge.check('produce', { topic: topic.name });
  // acks=0: the client reads no response, so no error can reach it. The broker closes the connection when such a
  // request is not authorized, and so does tollgate.
  if (body.acks === 0 && (txn !== undefined || body.topicData.some((topic) => verdict(topic) !== undefined))) {
    return judge.refuse('Produce with acks=0 to a denied resource: no response can carry the error');
  }
  const v = judge.version;
  return planEntries<ProduceRequest, ProduceResponse, ProduceRequestTopicProduceData, ProduceResponseTopicProduceResponse>(judge, {
    entries: body.topicData,
    all: txn,
    verdict,
    withEntries: (allowed) => ({ ...body, topicData: allowed }),
    requestKey: (topic) => topic.name,
    results: (response) => response.responses,
    resultKey: (result) => result.name,
    withResults: (response, responses) => ({ ...response, responses }),
    denied: (topic, denial) => ({
      ...blank<ProduceResponseTopicProduceResponse>(ProduceResponseSchema, 'responses'),
      name: topic.name,
      partitionResponses: topic.partitionData.map((partition) =>
        deniedEntry<ProduceResponsePartitionProduceResponse>(ProduceResponseSchema, 'responses.partitionResponses', v, denial, { index: partition.index, baseOffset: -1n }),
      ),
    }),
    blankResponse: () => blank<ProduceResponse>(ProduceResponseSchema),
  });
});

/**
 * The hot path of Produce: judged from `readProduceRequest` (no generic decoding), asking exactly what the produce
 * policy above asks, in its order (the transactional id, then each distinct topic). Returns the decisions when
 * everything is allowed (the plan is then `forward`, as the policy's); undefined as soon as anything is denied or a
 * topic is named by id only: the caller then runs the full path, which asks the same questions again (answer them
 * from these decisions, see `replayDecisions`) and builds the error response or refusal.
 */
export function allowedProduce(frame: Buffer, header: DecodedRequest['header'], request: ProduceRequestView, decide: Decide): ResourceDecision[] | undefined {
  for (const topic of request.topics) if (topic.name === null || topic.name === '') return undefined;
  const judge = new Judge(frame, { header, body: undefined as never }, decide);
  if (request.transactionalId !== null && judge.check('produce', { transactionalId: request.transactionalId }) !== undefined) return undefined;
  for (const topic of request.topics) if (judge.check('produce', { topic: topic.name! }) !== undefined) return undefined;
  return judge.decisions;
}

const fetch = apiPolicy(API_KEY.Fetch, 'consume per topic of the request, and again per topic of the response (defense in depth)', (judge, body) => {
  if (body.replicaId >= 0 || (body.replicaState?.replicaId ?? -1) >= 0) return judge.refuse('Fetch from a replica (broker-internal) is not accepted from clients');
  for (const topic of body.topics) if (byIdOnly(topic.topic, topic.topicId)) return refuseById(judge, topic.topicId, 'the connection caps Fetch at v12');
  const v = judge.version;
  const allowed = (name: string) => judge.check('consume', { topic: name }) === undefined;
  return planEntries<FetchRequest, FetchResponse, FetchRequestFetchTopic, FetchResponseFetchableTopicResponse>(judge, {
    entries: body.topics,
    verdict: (topic) => judge.check('consume', { topic: topic.topic }),
    // Fetch sessions (KIP-227): the broker's session only ever holds what was forwarded, so forwarding the allowed
    // part keeps it consistent. `forgottenTopicsData` is forwarded as is: forgetting needs no right.
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.topic,
    results: (response) => response.responses,
    resultKey: (result) => result.topic,
    withResults: (response, responses) => ({ ...response, responses }),
    denied: (topic, denial) => ({
      ...blank<FetchResponseFetchableTopicResponse>(FetchResponseSchema, 'responses'),
      topic: topic.topic,
      partitions: topic.partitions.map((partition) =>
        deniedEntry<FetchResponsePartitionData>(FetchResponseSchema, 'responses.partitions', v, denial, {
          partitionIndex: partition.partition,
          highWatermark: -1n,
          records: EMPTY_RECORDS,
        }),
      ),
    }),
    // A request in an existing session goes to the broker even when nothing of it is allowed, so that the session's
    // epoch moves on; without a session the answer can be local.
    ...(body.sessionId === 0 ? { blankResponse: () => blank<FetchResponse>(FetchResponseSchema) } : {}),
    // Incremental fetches return partitions the request does not name; each is judged again.
    keep: (result) => allowed(result.topic),
    leftovers: 'keep',
  });
});

const listOffsets = apiPolicy(2, 'consume per topic', (judge, body) => {
  const v = judge.version;
  return planEntries<ListOffsetsRequest, ListOffsetsResponse, ListOffsetsRequestListOffsetsTopic, ListOffsetsResponseListOffsetsTopicResponse>(judge, {
    entries: body.topics,
    verdict: (topic) => judge.check('consume', { topic: topic.name }),
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.name,
    results: (response) => response.topics,
    resultKey: (result) => result.name,
    withResults: (response, topics) => ({ ...response, topics }),
    denied: (topic, denial) => ({
      ...blank<ListOffsetsResponseListOffsetsTopicResponse>(ListOffsetsResponseSchema, 'topics'),
      name: topic.name,
      partitions: topic.partitions.map((partition) =>
        deniedEntry<ListOffsetsResponseListOffsetsPartitionResponse>(ListOffsetsResponseSchema, 'topics.partitions', v, denial, { partitionIndex: partition.partitionIndex }),
      ),
    }),
    blankResponse: () => blank<ListOffsetsResponse>(ListOffsetsResponseSchema),
  });
});

const offsetForLeaderEpoch = apiPolicy(23, 'consume per topic', (judge, body) => {
  if (body.replicaId >= 0) return judge.refuse('OffsetForLeaderEpoch from a replica (broker-internal) is not accepted from clients');
  const v = judge.version;
  return planEntries<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, OffsetForLeaderEpochRequestOffsetForLeaderTopic, OffsetForLeaderEpochResponseOffsetForLeaderTopicResult>(judge, {
    entries: body.topics,
    verdict: (topic) => judge.check('consume', { topic: topic.topic }),
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.topic,
    results: (response) => response.topics,
    resultKey: (result) => result.topic,
    withResults: (response, topics) => ({ ...response, topics }),
    denied: (topic, denial) => ({
      ...blank<OffsetForLeaderEpochResponseOffsetForLeaderTopicResult>(OffsetForLeaderEpochResponseSchema, 'topics'),
      topic: topic.topic,
      partitions: topic.partitions.map((partition) =>
        deniedEntry<OffsetForLeaderEpochResponseEpochEndOffset>(OffsetForLeaderEpochResponseSchema, 'topics.partitions', v, denial, { partition: partition.partition }),
      ),
    }),
    blankResponse: () => blank<OffsetForLeaderEpochResponse>(OffsetForLeaderEpochResponseSchema),
  });
});

const metadata = apiPolicy(3, 'describe per requested topic; for all topics, describe per topic of the response (denied ones are left out)', (judge, body) => {
  const v = judge.version;
  const describable = (name: string | null) => name !== null && judge.check('describe', { topic: name }) === undefined;
  if (body.topics === null || body.topics.length === 0) {
    // All topics (null; an empty list in v0): the broker lists them, tollgate leaves out those not describable,
    // as Kafka does. An empty list in v1+ asks for no topic: the filter then has nothing to do.
    return judge.forward((frame) =>
      judge.rewrite<MetadataResponse>(frame, (response) => {
        const topics = response.topics.filter((topic) => describable(topic.name));
        return topics.length === response.topics.length ? response : { ...response, topics };
      }),
    );
  }
  for (const topic of body.topics) if (byIdOnly(topic.name, topic.topicId)) return refuseById(judge, topic.topicId, 'Metadata by topic id is not supported');
  // Auto-creation is a create: a principal that may only write or read a topic pattern must not bring new topics of
  // that pattern into existence through Metadata (Kafka's authorizer asks for Create too). Where any requested topic
  // may not be created (admin), the broker is asked not to create: a missing topic then answers
  // UNKNOWN_TOPIC_OR_PARTITION, as from a broker whose authorizer denies the create.
  // Versions before 4 cannot say no (the field does not exist); tollgate's ApiVersions does not offer them.
  const request = v >= 4 && body.allowAutoTopicCreation && body.topics.some((topic) => describable(topic.name) && judge.check('admin', { topic: topic.name ?? '' }) !== undefined)
    ? { ...body, allowAutoTopicCreation: false }
    : body;
  const plan = planEntries<MetadataRequest, MetadataResponse, MetadataRequestMetadataRequestTopic, MetadataResponseMetadataResponseTopic>(judge, {
    entries: body.topics,
    verdict: (topic) => judge.check('describe', { topic: topic.name ?? '' }),
    withEntries: (topics) => ({ ...request, topics }),
    requestKey: (topic) => topic.name ?? '',
    results: (response) => response.topics,
    resultKey: (result) => result.name ?? '',
    withResults: (response, topics) => ({ ...response, topics }),
    denied: (topic, denial) =>
      deniedEntry<MetadataResponseMetadataResponseTopic>(MetadataResponseSchema, 'topics', v, denial, { name: topic.name, isInternal: false, partitions: [] }),
    // No blank response: even when every topic is denied the request goes to the broker (asking for no topic), as
    // clients need the brokers and controller of a Metadata response. In v0 an empty list means all topics: the
    // merge drops every topic the client did not ask for.
    leftovers: 'drop',
  });
  // Every topic describable: planEntries forwards the client's frame, which still asks for auto-creation.
  if (plan.kind === 'forward' && request !== body) return judge.split<MetadataResponse>(request, (response) => response);
  return plan;
});

const describeTopicPartitions = apiPolicy(75, 'describe per requested topic; for all topics, describe per topic of the response', (judge, body) => {
  const v = judge.version;
  const keep = (topic: DescribeTopicPartitionsResponseDescribeTopicPartitionsResponseTopic) => topic.name !== null && judge.check('describe', { topic: topic.name }) === undefined;
  if (body.topics.length === 0) {
    return judge.forward((frame) =>
      judge.rewrite<DescribeTopicPartitionsResponse>(frame, (response) => {
        const topics = response.topics.filter(keep);
        return topics.length === response.topics.length ? response : { ...response, topics };
      }),
    );
  }
  return planEntries<DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, DescribeTopicPartitionsRequestTopicRequest, DescribeTopicPartitionsResponseDescribeTopicPartitionsResponseTopic>(judge, {
    entries: body.topics,
    verdict: (topic) => judge.check('describe', { topic: topic.name }),
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.name,
    results: (response) => response.topics,
    resultKey: (result) => result.name ?? '',
    withResults: (response, topics) => ({ ...response, topics }),
    denied: (topic, denial) =>
      deniedEntry<DescribeTopicPartitionsResponseDescribeTopicPartitionsResponseTopic>(DescribeTopicPartitionsResponseSchema, 'topics', v, denial, { name: topic.name, isInternal: false, partitions: [] }),
    blankResponse: () => blank<DescribeTopicPartitionsResponse>(DescribeTopicPartitionsResponseSchema),
    keep,
  });
});

export const TOPIC_APIS: readonly ApiPolicy[] = [produce, fetch, listOffsets, offsetForLeaderEpoch, metadata, describeTopicPartitions];
