/**
 * @module kafka/authorize/groups
 * Group coordinator APIs. Membership (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ConsumerGroupHeartbeat) needs
 * consume on the group; offsets need consume on the group and on each topic (a denied group answers everything
 * with GROUP_AUTHORIZATION_FAILED, a denied topic its partitions with TOPIC_AUTHORIZATION_FAILED); describing
 * needs describe per group; deleting needs admin.
 */
import {
  ConsumerGroupDescribeResponseSchema,
  ConsumerGroupHeartbeatResponseSchema,
  DeleteGroupsResponseSchema,
  DescribeGroupsResponseSchema,
  FindCoordinatorResponseSchema,
  HeartbeatResponseSchema,
  JoinGroupResponseSchema,
  LeaveGroupResponseSchema,
  OffsetCommitResponseSchema,
  OffsetDeleteResponseSchema,
  OffsetFetchResponseSchema,
  SyncGroupResponseSchema,
  TxnOffsetCommitResponseSchema,
} from '../protocol/generated/index.ts';
import type {
  ConsumerGroupDescribeRequest,
  ConsumerGroupDescribeResponse,
  DeleteGroupsRequest,
  DeleteGroupsResponse,
  DescribeGroupsRequest,
  DescribeGroupsResponse,
  FindCoordinatorRequest,
  FindCoordinatorResponse,
  ListGroupsResponse,
  OffsetCommitRequest,
  OffsetCommitResponse,
  OffsetFetchRequest,
  OffsetFetchResponse,
  TxnOffsetCommitRequest,
  TxnOffsetCommitResponse,
} from '../protocol/generated/index.ts';
import type { KnownApiKey, RequestBodies } from '../protocol/generated/index.ts';
import type { MessageSchema } from '../protocol/codec/schema.ts';
import { apiPolicy, blank, byIdOnly, deniedEntry, mergeByKey, planEntries, planWhole } from './plan.ts';
import type { ApiPolicy, Denial, Judge, RequestPlan, Verdict } from './plan.ts';

/** FindCoordinator key types (KIP-848 share groups are key type 2). */
const KEY_TYPE = { group: 0, transaction: 1, share: 2 } as const;

const findCoordinator = apiPolicy(10, 'consume on the group (key type 0), produce on the transactional id (key type 1), per key; share groups (key type 2) are denied', (judge, body) => {
  const v = judge.version;
  let verdictOf: (key: string) => Verdict;
  switch (body.keyType) {
    case KEY_TYPE.group:
      verdictOf = (key) => judge.check('consume', { group: key });
      break;
    case KEY_TYPE.transaction:
      verdictOf = (key) => judge.check('produce', { transactionalId: key });
      break;
    case KEY_TYPE.share:
      verdictOf = (key) => judge.impose('consume', { group: key }, 'share groups are not supported through tollgate');
      break;
    default:
      return judge.refuse(`FindCoordinator with unknown key type ${body.keyType}`);
  }
  const noCoordinator = { nodeId: -1, host: '', port: -1 };
  if (v < 4) {
    return planWhole(judge, verdictOf(body.key), (denial) => deniedEntry<FindCoordinatorResponse>(FindCoordinatorResponseSchema, '', v, denial, noCoordinator));
  }
  type Coordinator = FindCoordinatorResponse['coordinators'][number];
  return planEntries<FindCoordinatorRequest, FindCoordinatorResponse, string, Coordinator>(judge, {
    entries: body.coordinatorKeys,
    verdict: verdictOf,
    withEntries: (coordinatorKeys) => ({ ...body, coordinatorKeys }),
    requestKey: (key) => key,
    results: (response) => response.coordinators,
    resultKey: (result) => result.key,
    withResults: (response, coordinators) => ({ ...response, coordinators }),
    denied: (key, denial) => deniedEntry<Coordinator>(FindCoordinatorResponseSchema, 'coordinators', v, denial, { key, ...noCoordinator }),
    blankResponse: () => blank<FindCoordinatorResponse>(FindCoordinatorResponseSchema),
  });
});

type GroupApiKey = 11 | 12 | 13 | 14 | 68;

/** An API about one group, answered whole with its top-level error code. */
function membership<K extends GroupApiKey>(apiKey: K, schema: MessageSchema<unknown>, groupOf: (body: RequestBodies[K]) => string): ApiPolicy {
  return apiPolicy(apiKey, 'consume on the group', (judge, body) =>
    planWhole(judge, judge.check('consume', { group: groupOf(body) }), (denial) => deniedEntry(schema, '', judge.version, denial, {})),
  );
}

function refuseTopicIds(judge: Judge, topics: ReadonlyArray<{ readonly name: string; readonly topicId: string }>): RequestPlan | undefined {
  for (const topic of topics) {
    if (byIdOnly(topic.name, topic.topicId)) {
      return judge.refuse(`${judge.api} v${judge.version} names topic ${topic.topicId} by id only; tollgate judges topics by name (the connection caps ${judge.api} at v9)`);
    }
  }
  return undefined;
}

const offsetCommit = apiPolicy(8, 'consume on the group, then consume per topic', (judge, body) => {
  const refused = refuseTopicIds(judge, body.topics);
  if (refused !== undefined) return refused;
  const v = judge.version;
  type Topic = OffsetCommitRequest['topics'][number];
  type Result = OffsetCommitResponse['topics'][number];
  return planEntries<OffsetCommitRequest, OffsetCommitResponse, Topic, Result>(judge, {
    entries: body.topics,
    all: judge.check('consume', { group: body.groupId }),
    verdict: (topic) => judge.check('consume', { topic: topic.name }),
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.name,
    results: (response) => response.topics,
    resultKey: (result) => result.name,
    withResults: (response, topics) => ({ ...response, topics }),
    denied: (topic, denial) => ({
      ...blank<Result>(OffsetCommitResponseSchema, 'topics'),
      name: topic.name,
      topicId: topic.topicId,
      partitions: topic.partitions.map((partition) => deniedEntry(OffsetCommitResponseSchema, 'topics.partitions', v, denial, { partitionIndex: partition.partitionIndex })),
    }),
    blankResponse: () => blank<OffsetCommitResponse>(OffsetCommitResponseSchema),
  });
});

const txnOffsetCommit = apiPolicy(28, 'produce on the transactional id, consume on the group, then consume per topic', (judge, body) => {
  const v = judge.version;
  type Topic = TxnOffsetCommitRequest['topics'][number];
  type Result = TxnOffsetCommitResponse['topics'][number];
  return planEntries<TxnOffsetCommitRequest, TxnOffsetCommitResponse, Topic, Result>(judge, {
    entries: body.topics,
    all: judge.check('produce', { transactionalId: body.transactionalId }) ?? judge.check('consume', { group: body.groupId }),
    verdict: (topic) => judge.check('consume', { topic: topic.name }),
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.name,
    results: (response) => response.topics,
    resultKey: (result) => result.name,
    withResults: (response, topics) => ({ ...response, topics }),
    denied: (topic, denial) => ({
      name: topic.name,
      partitions: topic.partitions.map((partition) => deniedEntry(TxnOffsetCommitResponseSchema, 'topics.partitions', v, denial, { partitionIndex: partition.partitionIndex })),
    }),
    blankResponse: () => blank<TxnOffsetCommitResponse>(TxnOffsetCommitResponseSchema),
  });
});

/** The partition entry of OffsetFetch for a denied topic: no offset (-1), as Kafka answers. */
const NO_OFFSET = { committedOffset: -1n, committedLeaderEpoch: -1, metadata: '' };

const offsetFetch = apiPolicy(9, 'consume on each group, then consume per topic; for all topics, consume per topic of the response', (judge, body) =>
  judge.version >= 8 ? offsetFetchGroups(judge, body) : offsetFetchOne(judge, body),
);

/** OffsetFetch v1-7: one group. */
function offsetFetchOne(judge: Judge, body: OffsetFetchRequest): RequestPlan {
  const v = judge.version;
  type Topic = NonNullable<OffsetFetchRequest['topics']>[number];
  type Result = OffsetFetchResponse['topics'][number];
  const group = judge.check('consume', { group: body.groupId });
  const readable = (result: Result) => judge.check('consume', { topic: result.name }) === undefined;
  // v1 has no top-level error code: the error then goes in every partition (an ignorable field is left out).
  const blankResponse = (): OffsetFetchResponse => ({ ...blank<OffsetFetchResponse>(OffsetFetchResponseSchema), errorCode: group?.code ?? 0 });
  if (body.topics === null) {
    if (group !== undefined) return judge.answer(blankResponse());
    return judge.forward((frame) =>
      judge.rewrite<OffsetFetchResponse>(frame, (response) => {
        const topics = response.topics.filter(readable);
        return topics.length === response.topics.length ? response : { ...response, topics };
      }),
    );
  }
  return planEntries<OffsetFetchRequest, OffsetFetchResponse, Topic, Result>(judge, {
    entries: body.topics,
    all: group,
    verdict: (topic) => judge.check('consume', { topic: topic.name }),
    withEntries: (topics) => ({ ...body, topics }),
    requestKey: (topic) => topic.name,
    results: (response) => response.topics,
    resultKey: (result) => result.name,
    withResults: (response, topics) => ({ ...response, topics }),
    denied: (topic, denial) => ({
      name: topic.name,
      partitions: topic.partitionIndexes.map((partitionIndex) => deniedEntry(OffsetFetchResponseSchema, 'topics.partitions', v, denial, { partitionIndex, ...NO_OFFSET })),
    }),
    blankResponse,
  });
}

/** OffsetFetch v8+: several groups, each with its topics (null: all of them). */
function offsetFetchGroups(judge: Judge, body: OffsetFetchRequest): RequestPlan {
  const v = judge.version;
  type Group = OffsetFetchRequest['groups'][number];
  type Topic = NonNullable<Group['topics']>[number];
  type GroupResult = OffsetFetchResponse['groups'][number];
  type TopicResult = GroupResult['topics'][number];
  for (const group of body.groups) {
    const refused = refuseTopicIds(judge, group.topics ?? []);
    if (refused !== undefined) return refused;
  }
  const groupVerdicts = body.groups.map((group) => judge.check('consume', { group: group.groupId }));
  const topicVerdicts = body.groups.map((group, i) =>
    groupVerdicts[i] !== undefined ? [] : (group.topics ?? []).map((topic) => judge.check('consume', { topic: topic.name })),
  );
  const readable = (result: TopicResult) => judge.check('consume', { topic: result.name }) === undefined;
  // Every group's topics in the broker's answer are judged again: this covers all-topics groups (topics null).
  const filterTopics = (result: GroupResult): GroupResult => {
    const topics = result.topics.filter(readable);
    return topics.length === result.topics.length ? result : { ...result, topics };
  };
  const anyDenied = groupVerdicts.some((verdict) => verdict !== undefined) || topicVerdicts.some((verdicts) => verdicts.some((verdict) => verdict !== undefined));
  if (!anyDenied) {
    if (!body.groups.some((group) => group.topics === null)) return judge.forward();
    return judge.forward((frame) =>
      judge.rewrite<OffsetFetchResponse>(frame, (response) => {
        const groups = response.groups.map(filterTopics);
        return groups.every((group, i) => group === response.groups[i]) ? response : { ...response, groups };
      }),
    );
  }
  const deniedTopic = (topic: Topic, denial: Denial): TopicResult => ({
    ...blank<TopicResult>(OffsetFetchResponseSchema, 'groups.topics'),
    name: topic.name,
    partitions: topic.partitionIndexes.map((partitionIndex) => deniedEntry(OffsetFetchResponseSchema, 'groups.topics.partitions', v, denial, { partitionIndex, ...NO_OFFSET })),
  });
  // A group goes to the broker when it is allowed and asks for all topics or at least one allowed topic.
  const forwarded: Group[] = [];
  body.groups.forEach((group, i) => {
    if (groupVerdicts[i] !== undefined) return;
    if (group.topics === null) forwarded.push(group);
    else {
      const topics = group.topics.filter((_, t) => topicVerdicts[i]![t] === undefined);
      if (topics.length > 0) forwarded.push({ ...group, topics });
    }
  });
  const merge = (results: readonly GroupResult[]): GroupResult[] => {
    const byId = new Map<string, GroupResult>();
    for (const result of results) if (!byId.has(result.groupId)) byId.set(result.groupId, filterTopics(result));
    const merged: GroupResult[] = [];
    body.groups.forEach((group, i) => {
      const groupDenial = groupVerdicts[i];
      if (groupDenial !== undefined) {
        merged.push(deniedEntry<GroupResult>(OffsetFetchResponseSchema, 'groups', v, groupDenial, { groupId: group.groupId, topics: [] }));
        return;
      }
      const result = byId.get(group.groupId) ?? { ...blank<GroupResult>(OffsetFetchResponseSchema, 'groups'), groupId: group.groupId };
      if (group.topics === null) merged.push(result);
      else {
        const topics = mergeByKey(group.topics, topicVerdicts[i]!, result.topics, (topic) => topic.name, (topic) => topic.name, deniedTopic, 'drop');
        merged.push({ ...result, topics });
      }
    });
    return merged;
  };
  if (forwarded.length === 0) return judge.answer({ ...blank<OffsetFetchResponse>(OffsetFetchResponseSchema), groups: merge([]) });
  return judge.split<OffsetFetchResponse>({ ...body, groups: forwarded }, (response) => ({ ...response, groups: merge(response.groups) }));
}

/** Describe-by-group APIs: one error entry per denied group. */
function describeGroups(judge: Judge, body: DescribeGroupsRequest): RequestPlan {
  type Result = DescribeGroupsResponse['groups'][number];
  return planEntries<DescribeGroupsRequest, DescribeGroupsResponse, string, Result>(judge, {
    entries: body.groups,
    verdict: (group) => judge.check('describe', { group }),
    withEntries: (groups) => ({ ...body, groups }),
    requestKey: (group) => group,
    results: (response) => response.groups,
    resultKey: (result) => result.groupId,
    withResults: (response, groups) => ({ ...response, groups }),
    denied: (groupId, denial) => deniedEntry<Result>(DescribeGroupsResponseSchema, 'groups', judge.version, denial, { groupId }),
    blankResponse: () => blank<DescribeGroupsResponse>(DescribeGroupsResponseSchema),
  });
}

function consumerGroupDescribe(judge: Judge, body: ConsumerGroupDescribeRequest): RequestPlan {
  type Result = ConsumerGroupDescribeResponse['groups'][number];
  return planEntries<ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, string, Result>(judge, {
    entries: body.groupIds,
    verdict: (group) => judge.check('describe', { group }),
    withEntries: (groupIds) => ({ ...body, groupIds }),
    requestKey: (group) => group,
    results: (response) => response.groups,
    resultKey: (result) => result.groupId,
    withResults: (response, groups) => ({ ...response, groups }),
    denied: (groupId, denial) => deniedEntry<Result>(ConsumerGroupDescribeResponseSchema, 'groups', judge.version, denial, { groupId }),
    blankResponse: () => blank<ConsumerGroupDescribeResponse>(ConsumerGroupDescribeResponseSchema),
  });
}

function deleteGroups(judge: Judge, body: DeleteGroupsRequest): RequestPlan {
  type Result = DeleteGroupsResponse['results'][number];
  return planEntries<DeleteGroupsRequest, DeleteGroupsResponse, string, Result>(judge, {
    entries: body.groupsNames,
    verdict: (group) => judge.check('admin', { group }),
    withEntries: (groupsNames) => ({ ...body, groupsNames }),
    requestKey: (group) => group,
    results: (response) => response.results,
    resultKey: (result) => result.groupId,
    withResults: (response, results) => ({ ...response, results }),
    denied: (groupId, denial) => deniedEntry<Result>(DeleteGroupsResponseSchema, 'results', judge.version, denial, { groupId }),
    blankResponse: () => blank<DeleteGroupsResponse>(DeleteGroupsResponseSchema),
  });
}

const listGroups = apiPolicy(16, 'describe per group of the response (groups not describable are left out)', (judge) =>
  judge.forward((frame) =>
    judge.rewrite<ListGroupsResponse>(frame, (response) => {
      const groups = response.groups.filter((group) => judge.check('describe', { group: group.groupId }) === undefined);
      return groups.length === response.groups.length ? response : { ...response, groups };
    }),
  ),
);

function policy<K extends KnownApiKey>(apiKey: K, checks: string, handler: (judge: Judge, body: RequestBodies[K]) => RequestPlan): ApiPolicy {
  return apiPolicy(apiKey, checks, handler);
}

export const GROUP_APIS: readonly ApiPolicy[] = [
  findCoordinator,
  membership(11, JoinGroupResponseSchema, (body: RequestBodies[11]) => body.groupId),
  membership(12, HeartbeatResponseSchema, (body: RequestBodies[12]) => body.groupId),
  membership(13, LeaveGroupResponseSchema, (body: RequestBodies[13]) => body.groupId),
  membership(14, SyncGroupResponseSchema, (body: RequestBodies[14]) => body.groupId),
  membership(68, ConsumerGroupHeartbeatResponseSchema, (body: RequestBodies[68]) => body.groupId),
  offsetCommit,
  txnOffsetCommit,
  offsetFetch,
  policy(15, 'describe per group', describeGroups),
  policy(69, 'describe per group', consumerGroupDescribe),
  listGroups,
  policy(42, 'admin per group', deleteGroups),
  policy(47, 'admin on the group', (judge, body) =>
    planWhole(judge, judge.check('admin', { group: body.groupId }), (denial) => deniedEntry(OffsetDeleteResponseSchema, '', judge.version, denial, {})),
  ),
];
