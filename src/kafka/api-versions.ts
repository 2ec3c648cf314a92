/**
 * @module kafka/api-versions
 * Which requests tollgate accepts from clients, and the broker's ApiVersions answer trimmed to match: a client
 * only learns API versions tollgate can parse and judge, so it never sends one tollgate would have to refuse.
 *
 * The client-facing table (`CLIENT_API_LIMITS`) is built once from a list of API names checked against the
 * generated API table (Kafka 4.1.2's specs): a name the specs do not know, or a cap outside the spec's valid
 * versions, throws when the module loads. A version the spec marks unstable (its latest, offered by brokers only
 * with `unstable.api.versions.enable`) is never offered: its layout may change in the next Kafka release.
 *
 * Caps, and why:
 * - Produce ≤ 12, Fetch ≤ 12, OffsetCommit ≤ 9, OffsetFetch ≤ 9, DeleteTopics ≤ 5: later versions may name
 *   topics by id; tollgate authorizes topics by name, so ids are kept out.
 * - SaslHandshake v1 only: after a v0 handshake the client sends raw, unframed SASL tokens.
 * - AddPartitionsToTxn ≤ 3: v4+ is the broker-to-broker batched form.
 * Share and streams group APIs, and broker- or controller-internal APIs, are never offered.
 */
import { inRange } from './protocol/codec/schema.ts';
import { KafkaError } from './protocol/error-codes.ts';
import { API_TABLE } from './protocol/generated/api-table.ts';
import type { ApiVersionsResponse } from './protocol/generated/api-versions.ts';
import { decodeResponse, encodeResponse } from './protocol/messages.ts';
import { SIZE_PREFIX_BYTES } from './protocol/framing.ts';

/** An inclusive range of API versions. */
export interface ApiVersionRange {
  readonly min: number;
  readonly max: number;
}

/** API key → the versions accepted. */
export type ApiVersionLimits = ReadonlyMap<number, ApiVersionRange>;

const API_VERSIONS_KEY = 18;

/** [API name, highest version accepted (undefined: the spec's highest stable), lowest (undefined: the spec's)]. */
const CLIENT_APIS: ReadonlyArray<readonly [name: string, max?: number, min?: number]> = [
  ['Produce', 12],
  ['Fetch', 12],
  ['ListOffsets'],
  // From v4, where a client says whether Metadata may auto-create topics: tollgate must be able to say no.
  ['Metadata', undefined, 4],
  ['OffsetCommit', 9],
  ['OffsetFetch', 9],
  ['FindCoordinator'],
  ['JoinGroup'],
  ['Heartbeat'],
  ['LeaveGroup'],
  ['SyncGroup'],
  ['DescribeGroups'],
  ['ListGroups'],
  ['SaslHandshake', 1, 1],
  ['ApiVersions'],
  ['CreateTopics'],
  ['DeleteTopics', 5],
  ['DeleteRecords'],
  ['InitProducerId'],
  ['OffsetForLeaderEpoch'],
  ['AddPartitionsToTxn', 3],
  ['AddOffsetsToTxn'],
  ['EndTxn'],
  ['TxnOffsetCommit'],
  ['DescribeAcls'],
  ['CreateAcls'],
  ['DeleteAcls'],
  ['DescribeConfigs'],
  ['AlterConfigs'],
  ['AlterReplicaLogDirs'],
  ['DescribeLogDirs'],
  ['SaslAuthenticate'],
  ['CreatePartitions'],
  ['DeleteGroups'],
  ['ElectLeaders'],
  ['IncrementalAlterConfigs'],
  ['AlterPartitionReassignments'],
  ['ListPartitionReassignments'],
  ['OffsetDelete'],
  ['DescribeClientQuotas'],
  ['AlterClientQuotas'],
  ['DescribeUserScramCredentials'],
  ['AlterUserScramCredentials'],
  ['UpdateFeatures'],
  ['DescribeCluster'],
  ['DescribeProducers'],
  ['DescribeTransactions'],
  ['ListTransactions'],
  ['ConsumerGroupHeartbeat'],
  ['ConsumerGroupDescribe'],
  ['GetTelemetrySubscriptions'],
  ['PushTelemetry'],
  ['DescribeTopicPartitions'],
];

function buildLimits(): ApiVersionLimits {
  const byName = new Map([...API_TABLE.values()].map((entry) => [entry.name, entry]));
  const limits = new Map<number, ApiVersionRange>();
  for (const [name, cap, floor] of CLIENT_APIS) {
    const entry = byName.get(name);
    const valid = entry?.request.validVersions;
    if (entry === undefined || valid == null) throw new Error(`CLIENT_API_LIMITS: ${name} is not an API of the Kafka specs`);
    const stableMax = entry.request.latestVersionUnstable ? valid.max - 1 : valid.max;
    const max = Math.min(cap ?? stableMax, stableMax);
    const min = floor ?? valid.min;
    if (!inRange(valid, min) || !inRange(valid, max) || min > max) {
      throw new Error(`CLIENT_API_LIMITS: ${name} ${min}-${max} is outside the spec's versions ${valid.min}-${valid.max}`);
    }
    limits.set(entry.apiKey, Object.freeze({ min, max }));
  }
  return limits;
}

/** The requests tollgate accepts from clients: API key → versions. */
export const CLIENT_API_LIMITS: ApiVersionLimits = buildLimits();

/** True when a client may send this API version through tollgate. */
export function isClientApiVersionAllowed(apiKey: number, apiVersion: number, allowed: ApiVersionLimits = CLIENT_API_LIMITS): boolean {
  const range = allowed.get(apiKey);
  return range !== undefined && apiVersion >= range.min && apiVersion <= range.max;
}

/**
 * Trims the broker's ApiVersions response frame (size prefix included) to a request of `requestVersion`: keys
 * not in `allowed` are dropped, each range is narrowed to the overlap with tollgate's (a key without overlap is
 * dropped). Everything else — error code, throttle time, supported and finalized features, unknown tagged
 * fields — stays. Returns the same frame when nothing changes.
 *
 * The response header is always v0 for ApiVersions. A broker that does not support the request's version answers
 * UNSUPPORTED_VERSION with a v0 body (so the client can retry lower): that frame is returned unchanged.
 * Throws `FrameError` when the frame does not decode.
 */
export function trimApiVersionsResponse(responseFrame: Buffer, requestVersion: number, allowed: ApiVersionLimits = CLIENT_API_LIMITS): Buffer {
  // Header v0 is the correlation id alone; the body opens with error_code in every version.
  const errorOffset = SIZE_PREFIX_BYTES + 4;
  if (responseFrame.length >= errorOffset + 2 && responseFrame.readInt16BE(errorOffset) === KafkaError.UNSUPPORTED_VERSION) return responseFrame;
  const { header, body } = decodeResponse(responseFrame, API_VERSIONS_KEY, requestVersion);
  const apiKeys = trimApiKeys(body.apiKeys, allowed);
  if (apiKeys === body.apiKeys) return responseFrame;
  return encodeResponse(header, API_VERSIONS_KEY, requestVersion, { ...body, apiKeys });
}

/** The trimmed list, or the same array when nothing changes. */
function trimApiKeys(apiKeys: ApiVersionsResponse['apiKeys'], allowed: ApiVersionLimits): ApiVersionsResponse['apiKeys'] {
  let changed = false;
  const out: ApiVersionsResponse['apiKeys'] = [];
  for (const entry of apiKeys) {
    const limit = allowed.get(entry.apiKey);
    const minVersion = limit === undefined ? 0 : Math.max(entry.minVersion, limit.min);
    const maxVersion = limit === undefined ? -1 : Math.min(entry.maxVersion, limit.max);
    if (minVersion > maxVersion) {
      changed = true;
      continue;
    }
    if (minVersion === entry.minVersion && maxVersion === entry.maxVersion) {
      out.push(entry);
    } else {
      changed = true;
      out.push({ ...entry, minVersion, maxVersion });
    }
  }
  return changed ? out : apiKeys;
}
