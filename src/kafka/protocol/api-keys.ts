/**
 * @module kafka/protocol/api-keys
 * Kafka API keys: the name of each (for logs, metrics and audit records) and the first version that is
 * "flexible" (compact strings, tagged fields, request header v2).
 *
 * HAND TABLE, temporary: transcribed from the `apiKey`, `name` and `flexibleVersions` of Apache Kafka's
 * `clients/src/main/resources/common/message/*Request.json` (Kafka 4.1 line). A later issue generates codecs,
 * and this table with them, from those specs; until then keep edits here to facts checked against the specs.
 * Key 74 is named ListConfigResources since Kafka 4.1 (ListClientMetricsResources before).
 *
 * The generated table (generated/api-table.ts, from the specs themselves) is checked against this one by
 * test/kafka/protocol/generator.test.ts. Keys 4–7 (LeaderAndIsr, StopReplica, UpdateMetadata, ControlledShutdown)
 * have no valid version in Kafka 4's specs; their flexible versions here are facts of the releases before.
 */

export interface ApiKeyInfo {
  readonly name: string;
  /** First flexible version of the request, or null when no version is flexible. */
  readonly firstFlexibleVersion: number | null;
}

// [api key, name, first flexible version (null: none)]
const TABLE: ReadonlyArray<readonly [number, string, number | null]> = [
  [0, 'Produce', 9],
  [1, 'Fetch', 12],
  [2, 'ListOffsets', 6],
  [3, 'Metadata', 9],
  [4, 'LeaderAndIsr', 4],
  [5, 'StopReplica', 2],
  [6, 'UpdateMetadata', 6],
  [7, 'ControlledShutdown', 3],
  [8, 'OffsetCommit', 8],
  [9, 'OffsetFetch', 6],
  [10, 'FindCoordinator', 3],
  [11, 'JoinGroup', 6],
  [12, 'Heartbeat', 4],
  [13, 'LeaveGroup', 4],
  [14, 'SyncGroup', 4],
  [15, 'DescribeGroups', 5],
  [16, 'ListGroups', 3],
  [17, 'SaslHandshake', null],
  [18, 'ApiVersions', 3],
  [19, 'CreateTopics', 5],
  [20, 'DeleteTopics', 4],
  [21, 'DeleteRecords', 2],
  [22, 'InitProducerId', 2],
  [23, 'OffsetForLeaderEpoch', 4],
  [24, 'AddPartitionsToTxn', 3],
  [25, 'AddOffsetsToTxn', 3],
  [26, 'EndTxn', 3],
  [27, 'WriteTxnMarkers', 1],
  [28, 'TxnOffsetCommit', 3],
  [29, 'DescribeAcls', 2],
  [30, 'CreateAcls', 2],
  [31, 'DeleteAcls', 2],
  [32, 'DescribeConfigs', 4],
  [33, 'AlterConfigs', 2],
  [34, 'AlterReplicaLogDirs', 2],
  [35, 'DescribeLogDirs', 2],
  [36, 'SaslAuthenticate', 2],
  [37, 'CreatePartitions', 2],
  [38, 'CreateDelegationToken', 2],
  [39, 'RenewDelegationToken', 2],
  [40, 'ExpireDelegationToken', 2],
  [41, 'DescribeDelegationToken', 2],
  [42, 'DeleteGroups', 2],
  [43, 'ElectLeaders', 2],
  [44, 'IncrementalAlterConfigs', 1],
  [45, 'AlterPartitionReassignments', 0],
  [46, 'ListPartitionReassignments', 0],
  [47, 'OffsetDelete', null],
  [48, 'DescribeClientQuotas', 1],
  [49, 'AlterClientQuotas', 1],
  [50, 'DescribeUserScramCredentials', 0],
  [51, 'AlterUserScramCredentials', 0],
  [52, 'Vote', 0],
  [53, 'BeginQuorumEpoch', 1],
  [54, 'EndQuorumEpoch', 1],
  [55, 'DescribeQuorum', 0],
  [56, 'AlterPartition', 0],
  [57, 'UpdateFeatures', 0],
  [58, 'Envelope', 0],
  [59, 'FetchSnapshot', 0],
  [60, 'DescribeCluster', 0],
  [61, 'DescribeProducers', 0],
  [62, 'BrokerRegistration', 0],
  [63, 'BrokerHeartbeat', 0],
  [64, 'UnregisterBroker', 0],
  [65, 'DescribeTransactions', 0],
  [66, 'ListTransactions', 0],
  [67, 'AllocateProducerIds', 0],
  [68, 'ConsumerGroupHeartbeat', 0],
  [69, 'ConsumerGroupDescribe', 0],
  [70, 'ControllerRegistration', 0],
  [71, 'GetTelemetrySubscriptions', 0],
  [72, 'PushTelemetry', 0],
  [73, 'AssignReplicasToDirs', 0],
  [74, 'ListConfigResources', 0],
  [75, 'DescribeTopicPartitions', 0],
  [76, 'ShareGroupHeartbeat', 0],
  [77, 'ShareGroupDescribe', 0],
  [78, 'ShareFetch', 0],
  [79, 'ShareAcknowledge', 0],
  [80, 'AddRaftVoter', 0],
  [81, 'RemoveRaftVoter', 0],
  [82, 'UpdateRaftVoter', 0],
  [83, 'InitializeShareGroupState', 0],
  [84, 'ReadShareGroupState', 0],
  [85, 'WriteShareGroupState', 0],
  [86, 'DeleteShareGroupState', 0],
  [87, 'ReadShareGroupStateSummary', 0],
  [88, 'StreamsGroupHeartbeat', 0],
  [89, 'StreamsGroupDescribe', 0],
  [90, 'DescribeShareGroupOffsets', 0],
  [91, 'AlterShareGroupOffsets', 0],
  [92, 'DeleteShareGroupOffsets', 0],
];

const BY_KEY: ReadonlyMap<number, ApiKeyInfo> = new Map(
  TABLE.map(([key, name, firstFlexibleVersion]) => [key, { name, firstFlexibleVersion }]),
);

/** Well-known keys the Kafka adapter and tollgate's own client (src/kafka/client/) refer to by name. */
export const API_KEY = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  ControlledShutdown: 7,
  SaslHandshake: 17,
  ApiVersions: 18,
  InitProducerId: 22,
  SaslAuthenticate: 36,
} as const;

/** Facts about an API key, or undefined for a key this table does not know. */
export function apiKeyInfo(apiKey: number): ApiKeyInfo | undefined {
  return BY_KEY.get(apiKey);
}

/** The API's name (`Produce`, `Fetch`, …), or `Unknown(<key>)` for a key this table does not know. */
export function apiKeyName(apiKey: number): string {
  return BY_KEY.get(apiKey)?.name ?? `Unknown(${apiKey})`;
}

/**
 * The request header version a request of this API key and version carries: 2 for flexible versions (client id,
 * then tagged fields), 0 for ControlledShutdown v0 (no client id), 1 otherwise. Undefined for an unknown API key:
 * whether its header has tagged fields cannot be known.
 */
export function requestHeaderVersion(apiKey: number, apiVersion: number): 0 | 1 | 2 | undefined {
  const info = BY_KEY.get(apiKey);
  if (info === undefined) return undefined;
  if (apiKey === API_KEY.ControlledShutdown && apiVersion === 0) return 0;
  return info.firstFlexibleVersion !== null && apiVersion >= info.firstFlexibleVersion ? 2 : 1;
}
