/**
 * Kafka frame builders for tests, written from the protocol description (Kafka's message JSON specs), not from the
 * code under test; plus splitting helpers and a seeded random source for reproducible "random" cuts.
 */

export function int16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(value);
  return b;
}

export function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(value);
  return b;
}

export function uvarint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** NULLABLE_STRING: INT16 length (-1 for null), UTF-8 bytes. */
export function nullableString(value: string | null): Buffer {
  if (value === null) return int16(-1);
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([int16(bytes.length), bytes]);
}

/** COMPACT_NULLABLE_STRING: UNSIGNED_VARINT length + 1 (0 for null), UTF-8 bytes. */
export function compactNullableString(value: string | null): Buffer {
  if (value === null) return uvarint(0);
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([uvarint(bytes.length + 1), bytes]);
}

/** A tagged-field section: count, then (tag, size, bytes). */
export function taggedFields(fields: ReadonlyArray<readonly [number, Buffer]> = []): Buffer {
  return Buffer.concat([uvarint(fields.length), ...fields.flatMap(([tag, data]) => [uvarint(tag), uvarint(data.length), data])]);
}

/** Puts the 4-byte big-endian size prefix in front of a frame body. */
export function framed(body: Buffer): Buffer {
  return Buffer.concat([int32(body.length), body]);
}

export interface RequestFrameSpec {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  /** Header v0 has no client id; v2 adds tagged fields after it. Default 1. */
  headerVersion?: 0 | 1 | 2;
  clientId?: string | null;
  tagged?: ReadonlyArray<readonly [number, Buffer]>;
  body?: Buffer;
}

/** A whole request frame, size prefix included. */
export function requestFrame(spec: RequestFrameSpec): Buffer {
  const headerVersion = spec.headerVersion ?? 1;
  const parts = [int16(spec.apiKey), int16(spec.apiVersion), int32(spec.correlationId)];
  if (headerVersion >= 1) parts.push(nullableString(spec.clientId === undefined ? 'test-client' : spec.clientId));
  if (headerVersion === 2) parts.push(taggedFields(spec.tagged));
  parts.push(spec.body ?? Buffer.alloc(0));
  return framed(Buffer.concat(parts));
}

/** A whole response frame, size prefix included (header v0: correlation id only). */
export function responseFrame(correlationId: number, body: Buffer = Buffer.from('response-body')): Buffer {
  return framed(Buffer.concat([int32(correlationId), body]));
}

/** A Produce request frame with the given acks; the topic data is opaque filler (the adapter never reads it). */
export function produceRequest(spec: {
  apiVersion: number;
  acks: number;
  correlationId: number;
  transactionalId?: string | null;
  clientId?: string | null;
}): Buffer {
  const flexible = spec.apiVersion >= 9;
  const body: Buffer[] = [];
  if (spec.apiVersion >= 9) body.push(compactNullableString(spec.transactionalId ?? null));
  else if (spec.apiVersion >= 3) body.push(nullableString(spec.transactionalId ?? null));
  body.push(int16(spec.acks), int32(30_000), Buffer.from('opaque-topic-data'));
  return requestFrame({
    apiKey: 0,
    apiVersion: spec.apiVersion,
    correlationId: spec.correlationId,
    headerVersion: flexible ? 2 : 1,
    clientId: spec.clientId === undefined ? 'producer-1' : spec.clientId,
    tagged: flexible ? [[7, Buffer.from('x')]] : [],
    body: Buffer.concat(body),
  });
}

/** A Metadata v1 request (header v1): a plain request that always expects a response. */
export function metadataRequest(correlationId: number, clientId: string | null = 'test-client'): Buffer {
  return requestFrame({ apiKey: 3, apiVersion: 1, correlationId, clientId, body: int32(-1) });
}

/** Cuts a buffer at the given offsets. */
export function splitAt(buf: Buffer, offsets: readonly number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let start = 0;
  for (const offset of offsets) {
    pieces.push(buf.subarray(start, offset));
    start = offset;
  }
  pieces.push(buf.subarray(start));
  return pieces;
}

/** Cuts a buffer into chunks of `size` bytes (the last may be shorter). */
export function chunksOf(buf: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < buf.length; offset += size) chunks.push(buf.subarray(offset, offset + size));
  return chunks;
}

/** mulberry32: a small seeded PRNG, so "random" splits are reproducible. Returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

