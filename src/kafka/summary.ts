/**
 * @module kafka/summary
 * Audit summaries of Kafka requests and responses: which topics, partitions, groups and transactional ids a
 * request names, how many records and bytes it carries, and what the broker answered per partition for Produce
 * and Fetch. Never any payload bytes, keys, values or headers.
 *
 * Cheap: an API with nothing to summarize is recognised from its header bytes and not decoded; record counts come
 * from the record batch headers (magic 2: `batchLength` at offset 8, `attributes` at 21, `recordsCount` at 57),
 * walking batches by length without decompressing anything. A Fetch response may end with a partial batch (the
 * broker cuts at `max_bytes`): it is not counted, and the partition says `partial: true`.
 *
 * JSON-safe: int64 values are numbers when they are safe integers, decimal strings otherwise.
 */
import { FrameError } from './protocol/errors.ts';
import { SIZE_PREFIX_BYTES } from './protocol/framing.ts';
import { decodeRequest, decodeResponse, isRequestOf } from './protocol/messages.ts';
import type { DecodedRequest, ProduceRequestView } from './protocol/messages.ts';

export interface PartitionSummary {
  readonly partition: number;
  /** Fetch requests: the offset asked for. */
  readonly fetchOffset?: number | string;
  /** OffsetCommit, TxnOffsetCommit requests: the offset committed. */
  readonly committedOffset?: number | string;
  /** Data records (control batches, i.e. transaction markers, excluded) in the records of the partition. */
  readonly records?: number;
  /** Bytes of the records field (compressed, as on the wire). */
  readonly bytes?: number;
  /** The records end with a batch cut short (Fetch responses). */
  readonly partial?: true;
  /** Responses: the partition's error code. */
  readonly errorCode?: number;
  /** Produce responses. */
  readonly baseOffset?: number | string;
  /** Fetch responses. */
  readonly highWatermark?: number | string;
}

export interface TopicSummary {
  /** The topic name; absent when the request names the topic by id only. */
  readonly topic?: string;
  /** Versions that name topics by id. */
  readonly topicId?: string;
  /** Absent when the API names topics without partitions (Metadata, CreateTopics, DeleteTopics). */
  readonly partitions?: PartitionSummary[];
}

export interface RequestSummary {
  readonly topics?: TopicSummary[];
  readonly group?: string;
  readonly groups?: string[];
  readonly transactionalId?: string;
  /** Produce. */
  readonly acks?: number;
  /** Fetch: 0 read uncommitted, 1 read committed. */
  readonly isolationLevel?: number;
  /** Fetch: the fetch session (KIP-227), when one is used. */
  readonly sessionId?: number;
  readonly sessionEpoch?: number;
}

export interface ResponseSummary {
  /** The top-level error code (Fetch v7+), when not 0. */
  readonly errorCode?: number;
  readonly topics: TopicSummary[];
}

// API keys (Kafka's numbers) this module summarizes.
const PRODUCE = 0;
const FETCH = 1;
const LIST_OFFSETS = 2;
const METADATA = 3;
const OFFSET_COMMIT = 8;
const OFFSET_FETCH = 9;
const JOIN_GROUP = 11;
const HEARTBEAT = 12;
const LEAVE_GROUP = 13;
const SYNC_GROUP = 14;
const DESCRIBE_GROUPS = 15;
const CREATE_TOPICS = 19;
const DELETE_TOPICS = 20;
const DELETE_RECORDS = 21;
const INIT_PRODUCER_ID = 22;
const ADD_PARTITIONS_TO_TXN = 24;
const ADD_OFFSETS_TO_TXN = 25;
const END_TXN = 26;
const TXN_OFFSET_COMMIT = 28;
const CREATE_PARTITIONS = 37;
const DELETE_GROUPS = 42;
const OFFSET_DELETE = 47;
const CONSUMER_GROUP_HEARTBEAT = 68;
const CONSUMER_GROUP_DESCRIBE = 69;

const SUMMARIZED_REQUESTS: ReadonlySet<number> = new Set([
  PRODUCE, FETCH, LIST_OFFSETS, METADATA, OFFSET_COMMIT, OFFSET_FETCH, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP,
  DESCRIBE_GROUPS, CREATE_TOPICS, DELETE_TOPICS, DELETE_RECORDS, INIT_PRODUCER_ID, ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN,
  END_TXN, TXN_OFFSET_COMMIT, CREATE_PARTITIONS, DELETE_GROUPS, OFFSET_DELETE, CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE,
]);

/** The all-zero uuid: Kafka's "no topic id". */
const ZERO_UUID = 'AAAAAAAAAAAAAAAAAAAAAA';

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** An int64 as JSON can carry it: a number when safe, a decimal string otherwise. */
export function jsonInt64(value: bigint): number | string {
  return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value.toString();
}

// ---------------------------------------------------------------------------------------------------------------
// Record batches
// ---------------------------------------------------------------------------------------------------------------

/** Offsets in a record batch (magic 2) and in a legacy message set entry (magic 0/1): both open with offset, size. */
const LOG_OVERHEAD = 12;
const BATCH_LENGTH_OFFSET = 8;
const MAGIC_OFFSET = 16;
const ATTRIBUTES_OFFSET = 21;
const RECORDS_COUNT_OFFSET = 57;
const BATCH_HEADER_BYTES = 61;
const CONTROL_FLAG = 0x20;

export interface RecordCount {
  /** Data records: record batches' `recordsCount`, control batches excluded; one per legacy (magic 0/1) entry. */
  readonly records: number;
  readonly bytes: number;
  /** The bytes end inside a batch (or inside a batch header). */
  readonly partial: boolean;
}

/** Counts the records of a `records` field by walking its batch headers; nothing is decompressed or copied. */
export function countRecords(records: Buffer | null): RecordCount {
  if (records === null) return { records: 0, bytes: 0, partial: false };
  let count = 0;
  let offset = 0;
  const end = records.length;
  while (offset < end) {
    if (end - offset < LOG_OVERHEAD) break;
    const length = records.readInt32BE(offset + BATCH_LENGTH_OFFSET);
    if (length < 0 || end - offset - LOG_OVERHEAD < length) break;
    const magic = end - offset > MAGIC_OFFSET ? records.readInt8(offset + MAGIC_OFFSET) : -1;
    if (magic === 2) {
      if (LOG_OVERHEAD + length < BATCH_HEADER_BYTES) break;
      const control = (records.readInt16BE(offset + ATTRIBUTES_OFFSET) & CONTROL_FLAG) !== 0;
      const n = records.readInt32BE(offset + RECORDS_COUNT_OFFSET);
      if (!control && n > 0) count += n;
    } else {
      count += 1;
    }
    offset += LOG_OVERHEAD + length;
  }
  return { records: count, bytes: end, partial: offset < end };
}

function recordsOf(records: Buffer | null): { records: number; bytes: number; partial?: true } {
  const counted = countRecords(records);
  return counted.partial ? { records: counted.records, bytes: counted.bytes, partial: true } : { records: counted.records, bytes: counted.bytes };
}

// ---------------------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------------------

function topicRef(name: string | null | undefined, topicId: string | undefined): { topic?: string; topicId?: string } {
  const ref: { topic?: string; topicId?: string } = {};
  if (name != null && name !== '') ref.topic = name;
  if (topicId !== undefined && topicId !== ZERO_UUID) ref.topicId = topicId;
  return ref;
}

function named(names: readonly (string | null)[]): TopicSummary[] {
  const topics: TopicSummary[] = [];
  for (const name of names) if (name !== null) topics.push({ topic: name });
  return topics;
}

function indexes(partitions: readonly number[]): PartitionSummary[] {
  return partitions.map((partition) => ({ partition }));
}

/**
 * The audit summary of a request frame (size prefix included): pass the decoded request when the caller has it,
 * otherwise the frame is decoded (only for APIs this module summarizes). Undefined for APIs with nothing to say.
 * Throws `FrameError` when the frame does not decode.
 */
export function summarizeRequest(frame: Buffer, request?: DecodedRequest): RequestSummary | undefined {
  if (request === undefined) {
    if (frame.length < SIZE_PREFIX_BYTES + 2) throw new FrameError('header_truncated', `Kafka frame of ${frame.length} bytes has no api key`, { length: frame.length });
    if (!SUMMARIZED_REQUESTS.has(frame.readInt16BE(SIZE_PREFIX_BYTES))) return undefined;
    request = decodeRequest(frame);
  }
  return summarizeDecoded(request);
}

/** The summary of a Produce request read by the hot path (`readProduceRequest`): the same as from its decoding. */
export function summarizeProduceRequest(request: ProduceRequestView): RequestSummary {
  return {
    ...(request.transactionalId !== null && { transactionalId: request.transactionalId }),
    acks: request.acks,
    topics: request.topics.map((t) => ({
      ...topicRef(t.name, t.topicId ?? undefined),
      partitions: t.partitions.map((p) => ({ partition: p.index, ...recordsOf(p.records) })),
    })),
  };
}

function summarizeDecoded(request: DecodedRequest): RequestSummary | undefined {
  if (isRequestOf(request, PRODUCE)) {
    const body = request.body;
    return {
      ...(body.transactionalId !== null && { transactionalId: body.transactionalId }),
      acks: body.acks,
      topics: body.topicData.map((t) => ({
        ...topicRef(t.name, t.topicId),
        partitions: t.partitionData.map((p) => ({ partition: p.index, ...recordsOf(p.records) })),
      })),
    };
  }
  if (isRequestOf(request, FETCH)) {
    const body = request.body;
    return {
      isolationLevel: body.isolationLevel,
      ...(body.sessionId !== 0 && { sessionId: body.sessionId, sessionEpoch: body.sessionEpoch }),
      topics: body.topics.map((t) => ({
        ...topicRef(t.topic, t.topicId),
        partitions: t.partitions.map((p) => ({ partition: p.partition, fetchOffset: jsonInt64(p.fetchOffset) })),
      })),
    };
  }
  if (isRequestOf(request, LIST_OFFSETS)) {
    return { topics: request.body.topics.map((t) => ({ topic: t.name, partitions: t.partitions.map((p) => ({ partition: p.partitionIndex })) })) };
  }
  if (isRequestOf(request, METADATA)) {
    const topics = request.body.topics;
    return topics === null ? undefined : { topics: topics.map((t) => topicRef(t.name, t.topicId)) };
  }
  if (isRequestOf(request, OFFSET_COMMIT)) {
    return {
      group: request.body.groupId,
      topics: request.body.topics.map((t) => ({
        ...topicRef(t.name, t.topicId),
        partitions: t.partitions.map((p) => ({ partition: p.partitionIndex, committedOffset: jsonInt64(p.committedOffset) })),
      })),
    };
  }
  if (isRequestOf(request, OFFSET_FETCH)) {
    const body = request.body;
    if (body.groups.length === 0) {
      return {
        group: body.groupId,
        ...(body.topics !== null && { topics: body.topics.map((t) => ({ topic: t.name, partitions: indexes(t.partitionIndexes) })) }),
      };
    }
    const topics: TopicSummary[] = [];
    for (const group of body.groups) {
      for (const t of group.topics ?? []) topics.push({ ...topicRef(t.name, t.topicId), partitions: indexes(t.partitionIndexes) });
    }
    return { groups: body.groups.map((g) => g.groupId), ...(topics.length > 0 && { topics }) };
  }
  if (isRequestOf(request, JOIN_GROUP) || isRequestOf(request, HEARTBEAT) || isRequestOf(request, LEAVE_GROUP) || isRequestOf(request, SYNC_GROUP)) {
    return { group: request.body.groupId };
  }
  if (isRequestOf(request, CONSUMER_GROUP_HEARTBEAT)) {
    const names = request.body.subscribedTopicNames;
    return { group: request.body.groupId, ...(names !== null && names.length > 0 && { topics: named(names) }) };
  }
  if (isRequestOf(request, DESCRIBE_GROUPS)) return { groups: request.body.groups };
  if (isRequestOf(request, DELETE_GROUPS)) return { groups: request.body.groupsNames };
  if (isRequestOf(request, CONSUMER_GROUP_DESCRIBE)) return { groups: request.body.groupIds };
  if (isRequestOf(request, OFFSET_DELETE)) {
    return {
      group: request.body.groupId,
      topics: request.body.topics.map((t) => ({ topic: t.name, partitions: t.partitions.map((p) => ({ partition: p.partitionIndex })) })),
    };
  }
  if (isRequestOf(request, TXN_OFFSET_COMMIT)) {
    return {
      transactionalId: request.body.transactionalId,
      group: request.body.groupId,
      topics: request.body.topics.map((t) => ({
        topic: t.name,
        partitions: t.partitions.map((p) => ({ partition: p.partitionIndex, committedOffset: jsonInt64(p.committedOffset) })),
      })),
    };
  }
  if (isRequestOf(request, ADD_OFFSETS_TO_TXN)) return { transactionalId: request.body.transactionalId, group: request.body.groupId };
  if (isRequestOf(request, INIT_PRODUCER_ID)) {
    return request.body.transactionalId === null ? undefined : { transactionalId: request.body.transactionalId };
  }
  if (isRequestOf(request, END_TXN)) return { transactionalId: request.body.transactionalId };
  if (isRequestOf(request, ADD_PARTITIONS_TO_TXN)) {
    const body = request.body;
    if (body.transactions.length === 0) {
      return {
        transactionalId: body.v3AndBelowTransactionalId,
        topics: body.v3AndBelowTopics.map((t) => ({ topic: t.name, partitions: indexes(t.partitions) })),
      };
    }
    return { topics: body.transactions.flatMap((tx) => tx.topics.map((t) => ({ topic: t.name, partitions: indexes(t.partitions) }))) };
  }
  if (isRequestOf(request, CREATE_TOPICS)) return { topics: named(request.body.topics.map((t) => t.name)) };
  if (isRequestOf(request, DELETE_TOPICS)) {
    const body = request.body;
    return { topics: body.topics.length > 0 ? body.topics.map((t) => topicRef(t.name, t.topicId)) : named(body.topicNames) };
  }
  if (isRequestOf(request, CREATE_PARTITIONS)) return { topics: named(request.body.topics.map((t) => t.name)) };
  if (isRequestOf(request, DELETE_RECORDS)) {
    return { topics: request.body.topics.map((t) => ({ topic: t.name, partitions: t.partitions.map((p) => ({ partition: p.partitionIndex })) })) };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------------------------

/**
 * The audit summary of a Produce or Fetch response frame (size prefix included) to a request of `apiKey` and
 * `apiVersion`: per partition the error code and the offsets (Produce: base offset; Fetch: high watermark, record
 * count and bytes). Undefined for other APIs (nothing is decoded). Throws `FrameError` when the frame does not
 * decode.
 */
export function summarizeResponse(apiKey: number, apiVersion: number, responseFrame: Buffer): ResponseSummary | undefined {
  if (apiKey === PRODUCE) {
    const body = decodeResponse(responseFrame, PRODUCE, apiVersion).body;
    return {
      topics: body.responses.map((t) => ({
        ...topicRef(t.name, t.topicId),
        partitions: t.partitionResponses.map((p) => ({ partition: p.index, errorCode: p.errorCode, baseOffset: jsonInt64(p.baseOffset) })),
      })),
    };
  }
  if (apiKey === FETCH) {
    const body = decodeResponse(responseFrame, FETCH, apiVersion).body;
    return {
      ...(body.errorCode !== 0 && { errorCode: body.errorCode }),
      topics: body.responses.map((t) => ({
        ...topicRef(t.topic, t.topicId),
        partitions: t.partitions.map((p) => ({
          partition: p.partitionIndex,
          errorCode: p.errorCode,
          highWatermark: jsonInt64(p.highWatermark),
          ...recordsOf(p.records),
        })),
      })),
    };
  }
  return undefined;
}
