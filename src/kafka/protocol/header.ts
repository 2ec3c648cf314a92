/**
 * @module kafka/protocol/header
 * Pure functions reading Kafka request and response headers.
 *
 * Convention: every function takes a frame exactly as `FrameReassembler.push` returns it, i.e. WITH its 4-byte
 * size prefix; offsets (`bodyOffset`, offsets in error details) count from the first byte of that prefix. The
 * prefix value itself is not re-checked: the reassembler guarantees it matches the frame's length.
 *
 * Request header layout (after the size prefix):
 *   v0: api_key INT16, api_version INT16, correlation_id INT32       (only ControlledShutdown v0)
 *   v1: v0 + client_id NULLABLE_STRING (INT16 length, -1 = null)
 *   v2: v1 + tagged fields                                            (flexible API versions; client_id stays
 *                                                                      a non-compact string, by design of Kafka)
 * Response header: correlation_id INT32 (+ tagged fields in v1, which callers of this module do not need).
 */
import { requestHeaderVersion } from './api-keys.ts';
import { SIZE_PREFIX_BYTES } from './framing.ts';
import { ByteReader } from './reader.ts';

export interface RequestHeader {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  /** Null when the client sent a null client id, and for header v0 (which has none). */
  readonly clientId: string | null;
  /** 0, 1 or 2; undefined for an API key unknown to `api-keys.ts` (read as v1, tagged fields not known). */
  readonly headerVersion: 0 | 1 | 2 | undefined;
  /** Offset (from the size prefix) of the first body byte; undefined when `headerVersion` is. */
  readonly bodyOffset: number | undefined;
}

/**
 * Reads the request header of a frame (size prefix included). Throws `FrameError('header_truncated')` naming the
 * offset a field needed when the frame is too short, `FrameError('header_invalid')` for impossible values.
 */
export function readRequestHeader(frame: Buffer): RequestHeader {
  const reader = new ByteReader(frame, SIZE_PREFIX_BYTES, 'header');
  const apiKey = reader.int16('request_api_key');
  const apiVersion = reader.int16('request_api_version');
  const correlationId = reader.int32('correlation_id');
  const headerVersion = requestHeaderVersion(apiKey, apiVersion);
  const clientId = headerVersion === 0 ? null : reader.nullableString('client_id');
  if (headerVersion === 2) reader.skipTaggedFields('request header tagged fields');
  return {
    apiKey,
    apiVersion,
    correlationId,
    clientId,
    headerVersion,
    bodyOffset: headerVersion === undefined ? undefined : reader.offset,
  };
}

/** Reads the correlation id of a response frame (size prefix included); the same in every header version. */
export function readResponseCorrelationId(frame: Buffer): number {
  return new ByteReader(frame, SIZE_PREFIX_BYTES, 'header').int32('correlation_id');
}
