/**
 * @module kafka/protocol/messages
 * Whole Kafka frames ⇄ typed messages, through the codecs generated from Kafka's specs (./generated/), plus cheap
 * hot-path readers that pull out only what policy needs.
 *
 * Convention (as header.ts): a frame includes its 4-byte size prefix, and offsets in errors count from its first
 * byte. Decoding throws only `FrameError`: a size prefix that disagrees with the frame's length
 * (`frame_size_invalid`), an unknown or removed API key or a header cut short (`header_*`), a version outside the
 * spec's validVersions, a body cut short, impossible values or trailing bytes after the body (`body_*`).
 * Encoding throws `EncodeError` (./codec/errors.ts).
 *
 * Header versions, from the specs' flexibleVersions:
 * - request header v2 (client id, then tagged fields) for flexible request versions, v1 otherwise, and v0 (no
 *   client id) for ControlledShutdown v0 — a removed API in Kafka 4, so no valid frame uses v0 any more;
 * - response header v1 (tagged fields) for flexible response versions, v0 otherwise — except ApiVersions
 *   responses, always v0, so a client can read one whatever version it asked for.
 *
 * Byte-exactness: decode → encode of a frame gives the same bytes (unknown tagged fields are kept, tagged fields are
 * written exactly when they were read), as long as the strings are valid UTF-8. Forwarding untouched frames as they
 * came is still cheaper and safer than re-encoding them.
 */
import { API_KEY } from './api-keys.ts';
import { EncodeError } from './codec/errors.ts';
import { Reader } from './codec/reader.ts';
import type { TaggedField } from './codec/reader.ts';
import type { MessageSchema, Uuid } from './codec/schema.ts';
import { Writer } from './codec/writer.ts';
import { FrameError } from './errors.ts';
import { SIZE_PREFIX_BYTES } from './framing.ts';
import { decodeRequestHeader, decodeResponseHeader, encodeRequestHeader, encodeResponseHeader } from './generated/headers.ts';
import { API_SPECS, FetchRequestSchema, ProduceRequestSchema } from './generated/index.ts';
import type { ApiCodecs, KnownApiKey, RequestBodies, ResponseBodies } from './generated/index.ts';
import { readRequestHeader } from './header.ts';

export type { TaggedField } from './codec/reader.ts';

export interface RequestHeaderFields {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  /** Null when the client sent a null client id. */
  readonly clientId: string | null;
  /** The header's tagged fields (header v2; no tag is defined by Kafka 4.1, so all are kept raw). */
  readonly taggedFields: readonly TaggedField[];
}

export interface ResponseHeaderFields {
  readonly correlationId: number;
  /** The header's tagged fields (header v1), kept raw. */
  readonly taggedFields: readonly TaggedField[];
}

export interface DecodedRequest<K extends KnownApiKey = KnownApiKey> {
  readonly header: RequestHeaderFields;
  /** The body of the API in `header.apiKey`; narrow it with `isRequestOf`. */
  readonly body: RequestBodies[K];
}

export interface DecodedResponse<K extends KnownApiKey = KnownApiKey> {
  readonly header: ResponseHeaderFields;
  readonly body: ResponseBodies[K];
}

/** Narrows a decoded request to one API: `if (isRequestOf(request, 0)) request.body.topicData…`. */
export function isRequestOf<K extends KnownApiKey>(request: DecodedRequest, apiKey: K): request is DecodedRequest<K> {
  return request.header.apiKey === apiKey;
}

/**
 * The request header version of an API key and version (see the module comment); undefined for an API key the
 * specs do not know.
 */
export function requestHeaderVersionFor(apiKey: number, apiVersion: number): 0 | 1 | 2 | undefined {
  const spec = API_SPECS.get(apiKey);
  if (spec === undefined) return undefined;
  if (apiKey === API_KEY.ControlledShutdown && apiVersion === 0) return 0;
  const flexibleFrom = spec.request.flexibleFrom;
  return flexibleFrom !== null && apiVersion >= flexibleFrom ? 2 : 1;
}

/** The response header version for a request of this API key and version; undefined for an unknown API key. */
export function responseHeaderVersionFor(apiKey: number, apiVersion: number): 0 | 1 | undefined {
  const spec = API_SPECS.get(apiKey);
  if (spec === undefined) return undefined;
  if (apiKey === API_KEY.ApiVersions) return 0;
  const flexibleFrom = spec.response.flexibleFrom;
  return flexibleFrom !== null && apiVersion >= flexibleFrom ? 1 : 0;
}

function checkSizePrefix(frame: Buffer): void {
  if (frame.length < SIZE_PREFIX_BYTES) {
    throw new FrameError('header_truncated', `Kafka frame of ${frame.length} bytes has no size prefix`, { field: 'size', expectedOffset: 4, length: frame.length });
  }
  const size = frame.readInt32BE(0);
  if (size !== frame.length - SIZE_PREFIX_BYTES) {
    throw new FrameError('frame_size_invalid', `Kafka frame size prefix ${size} does not match the ${frame.length - SIZE_PREFIX_BYTES} bytes after it`, {
      size,
      length: frame.length,
    });
  }
}

function codecsOf(apiKey: number, section: 'header' | 'body', offset: number): ApiCodecs {
  const spec = API_SPECS.get(apiKey);
  if (spec?.codecs == null) {
    const what = spec === undefined ? `unknown API key ${apiKey}` : `API key ${apiKey} (${spec.name}) was removed from Kafka`;
    throw new FrameError(section === 'header' ? 'header_invalid' : 'body_invalid', `Kafka ${section} invalid: ${what}`, { field: 'api_key', apiKey, offset });
  }
  return spec.codecs;
}

/** Decodes the body at `offset` to the frame's end; bytes left over are an error. */
function decodeBody<T>(frame: Buffer, offset: number, version: number, decode: (reader: Reader, version: number) => T): T {
  const reader = new Reader(frame, offset, 'body');
  const body = decode(reader, version);
  if (reader.offset !== frame.length) throw reader.invalid('body', `${frame.length - reader.offset} bytes after the end of the message`);
  return body;
}

/** Decodes a whole request frame (size prefix included): header and body. */
export function decodeRequest(frame: Buffer): DecodedRequest {
  checkSizePrefix(frame);
  const reader = new Reader(frame, SIZE_PREFIX_BYTES, 'header');
  const apiKey = reader.int16('request_api_key');
  const apiVersion = reader.int16('request_api_version');
  reader.offset = SIZE_PREFIX_BYTES;
  const codecs = codecsOf(apiKey, 'header', SIZE_PREFIX_BYTES);
  const header = decodeRequestHeader(reader, requestHeaderVersionFor(apiKey, apiVersion)!);
  const body = decodeBody(frame, reader.offset, apiVersion, codecs.decodeRequest) as RequestBodies[KnownApiKey];
  return {
    header: { apiKey, apiVersion, correlationId: header.correlationId, clientId: header.clientId, taggedFields: header._unknownTaggedFields ?? [] },
    body,
  };
}

/**
 * Decodes a whole response frame (size prefix included) to a request of `apiKey` and `apiVersion` (a response
 * carries neither: the caller knows them from the request with the same correlation id).
 */
export function decodeResponse<K extends KnownApiKey>(frame: Buffer, apiKey: K, apiVersion: number): DecodedResponse<K>;
export function decodeResponse(frame: Buffer, apiKey: number, apiVersion: number): DecodedResponse;
export function decodeResponse(frame: Buffer, apiKey: number, apiVersion: number): DecodedResponse {
  checkSizePrefix(frame);
  const codecs = codecsOf(apiKey, 'body', SIZE_PREFIX_BYTES);
  const reader = new Reader(frame, SIZE_PREFIX_BYTES, 'header');
  const header = decodeResponseHeader(reader, responseHeaderVersionFor(apiKey, apiVersion)!);
  const body = decodeBody(frame, reader.offset, apiVersion, codecs.decodeResponse) as ResponseBodies[KnownApiKey];
  return { header: { correlationId: header.correlationId, taggedFields: header._unknownTaggedFields ?? [] }, body };
}

function encoderOf(apiKey: number): ApiCodecs {
  const spec = API_SPECS.get(apiKey);
  if (spec?.codecs == null) throw new EncodeError(`api key ${apiKey}`, spec === undefined ? 'unknown API key' : `${spec.name} was removed from Kafka`);
  return spec.codecs;
}

/** The frame's bytes: a view of the writer's buffer with the size prefix filled in. */
function finishFrame(writer: Writer): Buffer {
  writer.patchInt32(0, writer.length - SIZE_PREFIX_BYTES);
  return writer.finish();
}

/** Encodes a whole request frame, size prefix included. */
export function encodeRequest<K extends KnownApiKey>(header: RequestHeaderFields & { readonly apiKey: K }, body: RequestBodies[K]): Buffer;
export function encodeRequest(header: RequestHeaderFields, body: unknown): Buffer;
export function encodeRequest(header: RequestHeaderFields, body: unknown): Buffer {
  const codecs = encoderOf(header.apiKey);
  const writer = new Writer();
  writer.int32(0);
  encodeRequestHeader(writer, requestHeaderVersionFor(header.apiKey, header.apiVersion)!, {
    requestApiKey: header.apiKey,
    requestApiVersion: header.apiVersion,
    correlationId: header.correlationId,
    clientId: header.clientId,
    _unknownTaggedFields: [...header.taggedFields],
  });
  codecs.encodeRequest(writer, header.apiVersion, body);
  return finishFrame(writer);
}

/** Encodes a whole response frame, size prefix included, answering a request of `apiKey` and `apiVersion`. */
export function encodeResponse<K extends KnownApiKey>(header: ResponseHeaderFields, apiKey: K, apiVersion: number, body: ResponseBodies[K]): Buffer;
export function encodeResponse(header: ResponseHeaderFields, apiKey: number, apiVersion: number, body: unknown): Buffer;
export function encodeResponse(header: ResponseHeaderFields, apiKey: number, apiVersion: number, body: unknown): Buffer {
  const codecs = encoderOf(apiKey);
  const writer = new Writer();
  writer.int32(0);
  encodeResponseHeader(writer, responseHeaderVersionFor(apiKey, apiVersion)!, {
    correlationId: header.correlationId,
    _unknownTaggedFields: [...header.taggedFields],
  });
  codecs.encodeResponse(writer, apiVersion, body);
  return finishFrame(writer);
}

// ---------------------------------------------------------------------------------------------------------------
// Hot paths: only what policy needs, no record bytes touched, few allocations
// ---------------------------------------------------------------------------------------------------------------

/** A topic a request names, and the partition indexes it names in it. */
export interface TopicPartitions {
  /** The topic name; null in versions that name topics by id. */
  readonly name: string | null;
  /** The topic id; null in versions that name topics by name. */
  readonly topicId: Uuid | null;
  readonly partitions: number[];
}

/** The first version in which the field at `path` (property names from the top) is present, from the specs. */
function firstVersionOf(schema: MessageSchema<unknown>, path: readonly string[]): number {
  let fields = schema.struct.fields;
  for (let i = 0; i < path.length; i++) {
    const field = fields.find((candidate) => candidate.name === path[i]);
    if (field === undefined || field.versions === null) throw new Error(`${schema.name} has no field ${path.join('.')}`);
    if (i === path.length - 1) return field.versions.min;
    const type = typeof field.type === 'object' && field.type.kind === 'array' ? field.type.element : field.type;
    if (typeof type !== 'object' || type.kind !== 'struct') throw new Error(`${schema.name}.${path.slice(0, i + 1).join('.')} is not a struct`);
    fields = type.fields;
  }
  throw new Error('empty field path');
}

const PRODUCE_TOPIC_ID_FROM = firstVersionOf(ProduceRequestSchema, ['topicData', 'topicId']);
const FETCH = {
  topicIdFrom: firstVersionOf(FetchRequestSchema, ['topics', 'topicId']),
  replicaIdUntil: FetchRequestSchema.struct.fields.find((field) => field.name === 'replicaId')!.versions!.max,
  maxBytesFrom: firstVersionOf(FetchRequestSchema, ['maxBytes']),
  isolationLevelFrom: firstVersionOf(FetchRequestSchema, ['isolationLevel']),
  sessionFrom: firstVersionOf(FetchRequestSchema, ['sessionId']),
  currentLeaderEpochFrom: firstVersionOf(FetchRequestSchema, ['topics', 'partitions', 'currentLeaderEpoch']),
  lastFetchedEpochFrom: firstVersionOf(FetchRequestSchema, ['topics', 'partitions', 'lastFetchedEpoch']),
  logStartOffsetFrom: firstVersionOf(FetchRequestSchema, ['topics', 'partitions', 'logStartOffset']),
} as const;

/** Reads the header with header.ts (no allocation beyond the client id) and checks API key and version. */
function bodyReaderOf(frame: Buffer, apiKey: number, schema: MessageSchema<unknown>): { reader: Reader; version: number; flexible: boolean } {
  checkSizePrefix(frame);
  const header = readRequestHeader(frame);
  if (header.apiKey !== apiKey || header.bodyOffset === undefined) {
    throw new FrameError('body_invalid', `Kafka body invalid: expected a ${schema.name}, got api key ${header.apiKey}`, { field: 'api_key', apiKey: header.apiKey });
  }
  const reader = new Reader(frame, header.bodyOffset, 'body');
  const range = schema.validVersions;
  if (range === null || header.apiVersion < range.min || header.apiVersion > range.max) {
    throw reader.invalid(schema.name, `version ${header.apiVersion} is outside the valid versions`);
  }
  return { reader, version: header.apiVersion, flexible: schema.flexibleFrom !== null && header.apiVersion >= schema.flexibleFrom };
}

function topicRef(reader: Reader, byId: boolean, flexible: boolean): { name: string | null; topicId: Uuid | null } {
  if (byId) return { name: null, topicId: reader.uuid('topic_id') };
  const name = reader.stringOrNull('topic', flexible);
  if (name === null) throw reader.invalid('topic', 'null topic name');
  return { name, topicId: null };
}

function count(reader: Reader, field: string, flexible: boolean): number {
  const n = reader.arrayLength(field, flexible);
  if (n < 0) throw reader.invalid(field, 'null array');
  return n;
}

/**
 * The topics and partition indexes a Produce request writes to, without decoding (or copying) record bytes.
 * Produce v13+ names topics by id (`topicId`; `name` is null): map ids to names with Metadata.
 */
export function produceTopics(frame: Buffer): TopicPartitions[] {
  const { reader, version, flexible } = bodyReaderOf(frame, API_KEY.Produce, ProduceRequestSchema);
  if (flexible) reader.skipCompactNullableString('transactional_id');
  else reader.skipNullableString('transactional_id');
  reader.skip(2 + 4, 'acks, timeout_ms');
  const byId = version >= PRODUCE_TOPIC_ID_FROM;
  const topics: TopicPartitions[] = [];
  for (let t = count(reader, 'topic_data', flexible); t > 0; t--) {
    const { name, topicId } = topicRef(reader, byId, flexible);
    const partitions: number[] = [];
    for (let p = count(reader, 'partition_data', flexible); p > 0; p--) {
      partitions.push(reader.int32('index'));
      // Only the length of the records is read: the bytes are stepped over (a view, nothing copied or parsed).
      reader.bytesOrNull('records', flexible);
      if (flexible) reader.skipTaggedFields();
    }
    if (flexible) reader.skipTaggedFields();
    topics.push({ name, topicId, partitions });
  }
  if (flexible) reader.skipTaggedFields();
  if (reader.offset !== frame.length) throw reader.invalid('body', `${frame.length - reader.offset} bytes after the end of the message`);
  return topics;
}

/**
 * The topics and partition indexes a Fetch request asks for. Fetch v13+ names topics by id (`topicId`; `name` is
 * null): map ids to names with Metadata. Reads up to the end of the topic list; what follows (forgotten topics,
 * rack id, tagged fields) is not needed for the answer and not read.
 *
 * Beware fetch sessions (KIP-227, v7+): a request with a non-zero session id and an epoch above 0 lists only the
 * partitions that changed since the previous request of the session; the response may carry data for partitions
 * this request does not name. A policy on Fetch must look at the response too, or refuse incremental sessions.
 */
export function fetchTopics(frame: Buffer): TopicPartitions[] {
  const { reader, version, flexible } = bodyReaderOf(frame, API_KEY.Fetch, FetchRequestSchema);
  // replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level, session_id, session_epoch
  let fixed = 4 + 4;
  if (version <= FETCH.replicaIdUntil) fixed += 4;
  if (version >= FETCH.maxBytesFrom) fixed += 4;
  if (version >= FETCH.isolationLevelFrom) fixed += 1;
  if (version >= FETCH.sessionFrom) fixed += 4 + 4;
  reader.skip(fixed, 'fetch request fields before topics');
  // Per partition after its index: current_leader_epoch, fetch_offset, last_fetched_epoch, log_start_offset,
  // partition_max_bytes.
  let partitionRest = 8 + 4;
  if (version >= FETCH.currentLeaderEpochFrom) partitionRest += 4;
  if (version >= FETCH.lastFetchedEpochFrom) partitionRest += 4;
  if (version >= FETCH.logStartOffsetFrom) partitionRest += 8;
  const byId = version >= FETCH.topicIdFrom;
  const topics: TopicPartitions[] = [];
  for (let t = count(reader, 'topics', flexible); t > 0; t--) {
    const { name, topicId } = topicRef(reader, byId, flexible);
    const partitions: number[] = [];
    for (let p = count(reader, 'partitions', flexible); p > 0; p--) {
      partitions.push(reader.int32('partition'));
      reader.skip(partitionRest, 'fetch partition fields');
      if (flexible) reader.skipTaggedFields();
    }
    if (flexible) reader.skipTaggedFields();
    topics.push({ name, topicId, partitions });
  }
  return topics;
}

/** One partition of a Produce request: its index and its records, a view of the frame (nothing copied or parsed). */
export interface ProducePartitionView {
  readonly index: number;
  readonly records: Buffer | null;
}

export interface ProduceTopicView {
  readonly name: string | null;
  readonly topicId: Uuid | null;
  readonly partitions: ProducePartitionView[];
}

/** What policy and the audit summary need of a Produce request, read without the generic decoder. */
export interface ProduceRequestView {
  readonly transactionalId: string | null;
  readonly acks: number;
  readonly topics: ProduceTopicView[];
}

/**
 * The transactional id, acks, topics and per-partition records (views) of a Produce request frame (size prefix
 * included), walked once with no generic decoding. Reads the whole body (trailing bytes are an error, as for
 * `decodeRequest`). Throws `FrameError` like the decoder on bytes that do not read as a Produce request.
 */
export function readProduceRequest(frame: Buffer): ProduceRequestView {
  const { reader, version, flexible } = bodyReaderOf(frame, API_KEY.Produce, ProduceRequestSchema);
  const transactionalId = reader.stringOrNull('transactional_id', flexible);
  const acks = reader.int16('acks');
  reader.skip(4, 'timeout_ms');
  const byId = version >= PRODUCE_TOPIC_ID_FROM;
  const topics: ProduceTopicView[] = [];
  for (let t = count(reader, 'topic_data', flexible); t > 0; t--) {
    const { name, topicId } = topicRef(reader, byId, flexible);
    const partitions: ProducePartitionView[] = [];
    for (let p = count(reader, 'partition_data', flexible); p > 0; p--) {
      const index = reader.int32('index');
      partitions.push({ index, records: reader.bytesOrNull('records', flexible) });
      if (flexible) reader.skipTaggedFields();
    }
    if (flexible) reader.skipTaggedFields();
    topics.push({ name, topicId, partitions });
  }
  if (flexible) reader.skipTaggedFields();
  if (reader.offset !== frame.length) throw reader.invalid('body', `${frame.length - reader.offset} bytes after the end of the message`);
  return { transactionalId, acks, topics };
}
