/**
 * @module kafka/protocol/records/batch
 * Record batch v2 (magic 2, KIP-98) ⇄ header and records, and the cutting of a `records` field into batches.
 *
 * Batch layout (big-endian, offsets from the batch's first byte):
 *   0 baseOffset int64 · 8 batchLength int32 (bytes after this field) · 12 partitionLeaderEpoch int32 · 16 magic int8
 *   · 17 crc uint32 (CRC-32C of everything from attributes to the end) · 21 attributes int16 · 23 lastOffsetDelta int32
 *   · 27 baseTimestamp int64 · 35 maxTimestamp int64 · 43 producerId int64 · 51 producerEpoch int16
 *   · 53 baseSequence int32 · 57 recordCount int32 · 61 records (compressed as a whole when attributes say so).
 * Attributes: bits 0–2 compression, bit 3 timestamp type (log append time), bit 4 transactional, bit 5 control,
 * bit 6 delete horizon set. Other bits are kept as they are.
 *
 * Record layout (varints are zigzag, as protobuf's sint32/sint64): length varint · attributes int8
 *   · timestampDelta varlong · offsetDelta varint · keyLength varint (-1 = null) · key · valueLength varint · value
 *   · headerCount varint · [headerKeyLength varint · key (UTF-8) · headerValueLength varint (-1 = null) · value].
 *
 * Everything is a pure function over bytes. Decoding throws only `RecordError`; views are returned where the bytes
 * are not decompressed (keys, values and header values of an uncompressed batch share its memory).
 */
import { crc32c } from './crc32c.ts';
import { COMPRESSION_BY_ID, compress, compressionId, decompress } from './compression.ts';
import type { Compression } from './compression.ts';
import { RecordError } from './errors.ts';

export interface RecordHeader { readonly key: string; readonly value: Buffer | null }

export interface KafkaRecord {
  readonly attributes: number;
  readonly timestampDelta: bigint;
  readonly offsetDelta: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly RecordHeader[];
}

export interface BatchHeader {
  baseOffset: bigint;
  /** Bytes after the batchLength field (the whole batch is batchLength + 12). */
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  /** The stored CRC-32C, unsigned. */
  crc: number;
  /** The raw int16 attributes (compression, timestamp type, transactional, control, delete horizon bits). */
  attributes: number;
  compression: Compression;
  isTransactional: boolean;
  isControl: boolean;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export interface RecordBatch { readonly header: BatchHeader; readonly records: readonly KafkaRecord[] }

export interface DecodeBatchOptions {
  /** Bound on the decompressed records of one batch; default DEFAULT_MAX_DECOMPRESSED_BYTES (64 MiB). */
  readonly maxDecompressedBytes?: number;
}

/** Size of the fixed part: baseOffset through recordCount. */
export const BATCH_HEADER_BYTES = 61;
/** baseOffset + batchLength: the bytes before the length a batch or legacy message counts. */
export const LOG_OVERHEAD = 12;
const MAGIC_OFFSET = 16;
const CRC_OFFSET = 17;
const ATTRIBUTES_OFFSET = 21;
const RECORDS_OFFSET = 61;
/** Smallest legacy message after its length field: crc, magic, attributes, key length, value length (+ timestamp in v1). */
const LEGACY_MIN_BYTES = [14, 22] as const;

export const ATTR_COMPRESSION_MASK = 0x07;
export const ATTR_TIMESTAMP_TYPE = 0x08;
export const ATTR_TRANSACTIONAL = 0x10;
export const ATTR_CONTROL = 0x20;
export const ATTR_DELETE_HORIZON = 0x40;

/**
 * Cuts a `records` field (Fetch response / Produce request) into whole batches (views, no copy) by their length
 * fields; a trailing partial batch (Fetch responses may end in one: the broker cuts at its byte limit) is returned
 * apart, and must not be forwarded as it is: drop it (the client fetches from there again) or hold it. Magic 0/1
 * message sets are cut by message too (one entry per outer message; a compressed wrapper counts as one).
 * Throws RecordError on impossible lengths or an unknown magic.
 */
export function splitBatches(records: Buffer): { batches: Buffer[]; partial: Buffer | null } {
  const batches: Buffer[] = [];
  let pos = 0;
  while (pos < records.length) {
    const remaining = records.length - pos;
    if (remaining < LOG_OVERHEAD) return { batches, partial: records.subarray(pos) };
    const length = records.readInt32BE(pos + 8);
    if (length < LEGACY_MIN_BYTES[0]) {
      throw new RecordError('length_invalid', `batch at ${pos}: length ${length}, expected at least ${LEGACY_MIN_BYTES[0]}`, { offset: pos + 8, length, expected: LEGACY_MIN_BYTES[0] });
    }
    if (remaining > MAGIC_OFFSET) {
      const magic = records.readInt8(pos + MAGIC_OFFSET);
      const min = magic === 2 ? BATCH_HEADER_BYTES - LOG_OVERHEAD : magic === 0 || magic === 1 ? LEGACY_MIN_BYTES[magic] : -1;
      if (min < 0) throw new RecordError('magic_unsupported', `batch at ${pos}: magic ${magic}, expected 0, 1 or 2`, { offset: pos + MAGIC_OFFSET, magic });
      if (length < min) throw new RecordError('length_invalid', `batch at ${pos}: length ${length} under the ${min} bytes a magic ${magic} header takes`, { offset: pos + 8, length, expected: min, magic });
    }
    if (length > remaining - LOG_OVERHEAD) return { batches, partial: records.subarray(pos) };
    batches.push(records.subarray(pos, pos + LOG_OVERHEAD + length));
    pos += LOG_OVERHEAD + length;
  }
  return { batches, partial: null };
}

/** The fixed header of a whole v2 batch (as `splitBatches` cuts it), without checking the CRC or decompressing. */
export function readBatchHeader(batch: Buffer): BatchHeader {
  if (batch.length < BATCH_HEADER_BYTES) {
    throw new RecordError('truncated', `record batch of ${batch.length} bytes, expected at least ${BATCH_HEADER_BYTES}`, { offset: batch.length, expected: BATCH_HEADER_BYTES });
  }
  const magic = batch.readInt8(MAGIC_OFFSET);
  if (magic !== 2) throw new RecordError('magic_unsupported', `record batch magic ${magic}, expected 2 (decodeLegacyMessageSet reads 0 and 1)`, { offset: MAGIC_OFFSET, magic });
  const batchLength = batch.readInt32BE(8);
  if (batchLength !== batch.length - LOG_OVERHEAD) {
    throw new RecordError('length_invalid', `record batch length ${batchLength}, expected ${batch.length - LOG_OVERHEAD} (the bytes given after the length field)`, { offset: 8, length: batchLength, expected: batch.length - LOG_OVERHEAD });
  }
  const attributes = batch.readInt16BE(ATTRIBUTES_OFFSET);
  const compression = COMPRESSION_BY_ID[attributes & ATTR_COMPRESSION_MASK];
  if (compression === undefined) {
    throw new RecordError('compression_unsupported', `record batch compression id ${attributes & ATTR_COMPRESSION_MASK}, expected 0..4`, { offset: ATTRIBUTES_OFFSET, attributes });
  }
  const recordCount = batch.readInt32BE(57);
  if (recordCount < 0) throw new RecordError('length_invalid', `record count ${recordCount}, expected at least 0`, { offset: 57, recordCount });
  return {
    baseOffset: batch.readBigInt64BE(0),
    batchLength,
    partitionLeaderEpoch: batch.readInt32BE(12),
    magic,
    crc: batch.readUInt32BE(CRC_OFFSET),
    attributes,
    compression,
    isTransactional: (attributes & ATTR_TRANSACTIONAL) !== 0,
    isControl: (attributes & ATTR_CONTROL) !== 0,
    lastOffsetDelta: batch.readInt32BE(23),
    baseTimestamp: batch.readBigInt64BE(27),
    maxTimestamp: batch.readBigInt64BE(35),
    producerId: batch.readBigInt64BE(43),
    producerEpoch: batch.readInt16BE(51),
    baseSequence: batch.readInt32BE(53),
    recordCount,
  };
}

/** Verifies the CRC-32C, decompresses and parses every record of a whole v2 batch. */
export function decodeBatch(batch: Buffer, options: DecodeBatchOptions = {}): RecordBatch {
  const header = readBatchHeader(batch);
  const actual = crc32c(batch.subarray(ATTRIBUTES_OFFSET));
  if (actual !== header.crc) {
    throw new RecordError('crc_mismatch', `record batch CRC-32C 0x${actual.toString(16)} does not match the stored 0x${header.crc.toString(16)}`, { offset: CRC_OFFSET, expected: header.crc, actual });
  }
  const compressed = header.compression !== 'none';
  const body = batch.subarray(RECORDS_OFFSET);
  const data = compressed ? decompress(header.compression, body, options.maxDecompressedBytes === undefined ? {} : { maxBytes: options.maxDecompressedBytes }) : body;
  const reader = new VarReader(data, compressed ? 0 : RECORDS_OFFSET, compressed ? 'decompressed' : 'batch');
  const records: KafkaRecord[] = [];
  for (let i = 0; i < header.recordCount; i++) {
    if (reader.pos >= data.length) {
      throw reader.error('truncated', `record ${i} of ${header.recordCount}: the records end after ${i}`, { recordCount: header.recordCount, records: i });
    }
    records.push(readRecord(reader, i));
  }
  if (reader.pos !== data.length) throw reader.error('record_invalid', `${data.length - reader.pos} bytes after the ${header.recordCount} records the header counts`, { recordCount: header.recordCount });
  return { header, records };
}

function readRecord(reader: VarReader, index: number): KafkaRecord {
  const length = reader.varint('record length');
  const start = reader.pos;
  if (length < 0 || length > reader.bytes.length - start) {
    throw reader.error(length < 0 ? 'length_invalid' : 'truncated', `record ${index}: length ${length}, expected 0..${reader.bytes.length - start}`, { record: index, length });
  }
  const end = start + length;
  reader.end = end;
  const attributes = reader.int8('record attributes');
  const timestampDelta = reader.varlong('timestampDelta');
  const offsetDelta = reader.varint('offsetDelta');
  const key = reader.bytesOrNull('key');
  const value = reader.bytesOrNull('value');
  const headerCount = reader.varint('header count');
  if (headerCount < 0 || headerCount > end - reader.pos) {
    throw reader.error('record_invalid', `record ${index}: header count ${headerCount}, expected 0..${end - reader.pos}`, { record: index, headerCount });
  }
  const headers: RecordHeader[] = [];
  for (let h = 0; h < headerCount; h++) {
    const headerKey = reader.bytesOrNull('header key');
    if (headerKey === null) throw reader.error('record_invalid', `record ${index}: header ${h} has a null key`, { record: index, header: h });
    headers.push({ key: headerKey.toString('utf8'), value: reader.bytesOrNull('header value') });
  }
  if (reader.pos !== end) throw reader.error('record_invalid', `record ${index}: ${end - reader.pos} bytes after its last header`, { record: index });
  reader.end = reader.bytes.length;
  return { attributes, timestampDelta, offsetDelta, key, value, headers };
}

/** Reads zigzag varints and length-prefixed bytes, never past `end`; errors name `section` and the offset. */
class VarReader {
  readonly bytes: Buffer;
  pos = 0;
  end: number;
  /** Added to positions in errors, so they count from the batch's first byte when nothing was decompressed. */
  private readonly base: number;
  private readonly section: string;

  constructor(bytes: Buffer, base: number, section: string) {
    this.bytes = bytes;
    this.end = bytes.length;
    this.base = base;
    this.section = section;
  }

  error(code: 'truncated' | 'record_invalid' | 'length_invalid', message: string, details: Record<string, number | string> = {}): RecordError {
    const offset = this.base + this.pos;
    return new RecordError(code, `${message} (at ${this.section} offset ${offset})`, { offset, section: this.section, ...details });
  }

  int8(field: string): number {
    if (this.pos >= this.end) throw this.error('truncated', `${field} cut short`, { field });
    return this.bytes.readInt8(this.pos++);
  }

  varint(field: string): number {
    let raw = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) throw this.error('truncated', `${field} cut short`, { field });
      const b = this.bytes[this.pos++]!;
      raw |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        if (shift === 28 && b > 0x0f) throw this.error('record_invalid', `${field}: varint over 32 bits`, { field });
        return (raw >>> 1) ^ -(raw & 1);
      }
    }
    throw this.error('record_invalid', `${field}: varint longer than 5 bytes`, { field });
  }

  varlong(field: string): bigint {
    let raw = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) throw this.error('truncated', `${field} cut short`, { field });
      const b = this.bytes[this.pos++]!;
      raw |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        if (shift === 63n && b > 0x01) throw this.error('record_invalid', `${field}: varlong over 64 bits`, { field });
        return (raw >> 1n) ^ -(raw & 1n);
      }
    }
    throw this.error('record_invalid', `${field}: varlong longer than 10 bytes`, { field });
  }

  bytesOrNull(field: string): Buffer | null {
    const length = this.varint(`${field} length`);
    if (length === -1) return null;
    if (length < -1) throw this.error('length_invalid', `${field} length ${length}, expected -1 or more`, { field, length });
    if (length > this.end - this.pos) throw this.error('truncated', `${field} of ${length} bytes, ${this.end - this.pos} left in the record`, { field, length });
    const value = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return value;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------------------------

function zigzag32(n: number): number {
  return ((n << 1) ^ (n >> 31)) >>> 0;
}

function varintSize(n: number): number {
  let v = zigzag32(n);
  let size = 1;
  while (v >= 0x80) { v >>>= 7; size++; }
  return size;
}

function zigzag64(n: bigint): bigint {
  return BigInt.asUintN(64, (n << 1n) ^ (n >> 63n));
}

function varlongSize(n: bigint): number {
  let v = zigzag64(n);
  let size = 1;
  while (v >= 0x80n) { v >>= 7n; size++; }
  return size;
}

function writeVarint(out: Buffer, pos: number, n: number): number {
  let v = zigzag32(n);
  while (v >= 0x80) { out[pos++] = (v & 0x7f) | 0x80; v >>>= 7; }
  out[pos++] = v;
  return pos;
}

function writeVarlong(out: Buffer, pos: number, n: bigint): number {
  let v = zigzag64(n);
  while (v >= 0x80n) { out[pos++] = Number(v & 0x7fn) | 0x80; v >>= 7n; }
  out[pos++] = Number(v);
  return pos;
}

function checkInt(field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RecordError('encode_invalid', `${field} ${value}: expected an integer in ${min}..${max}`, { field, min, max });
  }
}

function checkBigInt(field: string, value: bigint, bits: number): void {
  if (typeof value !== 'bigint' || BigInt.asIntN(bits, value) !== value) {
    throw new RecordError('encode_invalid', `${field} ${String(value)}: expected a signed ${bits}-bit bigint`, { field });
  }
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

/** The encoded size of a record's body (after its length varint), checking its fields; header keys as UTF-8. */
function recordBodySize(record: KafkaRecord, index: number, headerKeys: Buffer[]): number {
  checkInt(`record ${index} attributes`, record.attributes, -128, 127);
  checkBigInt(`record ${index} timestampDelta`, record.timestampDelta, 64);
  checkInt(`record ${index} offsetDelta`, record.offsetDelta, INT32_MIN, INT32_MAX);
  let size = 1 + varlongSize(record.timestampDelta) + varintSize(record.offsetDelta);
  size += record.key === null ? 1 : varintSize(record.key.length) + record.key.length;
  size += record.value === null ? 1 : varintSize(record.value.length) + record.value.length;
  size += varintSize(record.headers.length);
  for (const header of record.headers) {
    const key = Buffer.from(header.key, 'utf8');
    headerKeys.push(key);
    size += varintSize(key.length) + key.length;
    size += header.value === null ? 1 : varintSize(header.value.length) + header.value.length;
  }
  return size;
}

function writeBytesOrNull(out: Buffer, pos: number, bytes: Uint8Array | null): number {
  if (bytes === null) return writeVarint(out, pos, -1);
  pos = writeVarint(out, pos, bytes.length);
  out.set(bytes, pos);
  return pos + bytes.length;
}

/** The records of a batch, uncompressed, as they follow its fixed header. */
export function encodeRecords(records: readonly KafkaRecord[]): Buffer {
  const sizes: number[] = [];
  const keys: Buffer[][] = [];
  let total = 0;
  for (let i = 0; i < records.length; i++) {
    const headerKeys: Buffer[] = [];
    const size = recordBodySize(records[i]!, i, headerKeys);
    sizes.push(size);
    keys.push(headerKeys);
    total += varintSize(size) + size;
  }
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    pos = writeVarint(out, pos, sizes[i]!);
    out.writeInt8(record.attributes, pos++);
    pos = writeVarlong(out, pos, record.timestampDelta);
    pos = writeVarint(out, pos, record.offsetDelta);
    pos = writeBytesOrNull(out, pos, record.key);
    pos = writeBytesOrNull(out, pos, record.value);
    pos = writeVarint(out, pos, record.headers.length);
    const headerKeys = keys[i]!;
    for (let h = 0; h < record.headers.length; h++) {
      pos = writeBytesOrNull(out, pos, headerKeys[h]!);
      pos = writeBytesOrNull(out, pos, record.headers[h]!.value);
    }
  }
  return out;
}

/**
 * A whole v2 batch: the header's fields as given, except that the compression bits of `attributes` follow
 * `header.compression` (records are compressed with it), and batchLength, recordCount and the CRC are computed.
 * `magic` must be 2. Re-encoding a decoded uncompressed batch gives its bytes back (Kafka writes minimal varints).
 */
export function encodeBatch(header: BatchHeader, records: readonly KafkaRecord[]): Buffer {
  if (header.magic !== 2) throw new RecordError('encode_invalid', `magic ${header.magic}: only record batch v2 (magic 2) is written`, { field: 'magic', magic: header.magic });
  checkBigInt('baseOffset', header.baseOffset, 64);
  checkInt('partitionLeaderEpoch', header.partitionLeaderEpoch, INT32_MIN, INT32_MAX);
  checkInt('attributes', header.attributes, -0x8000, 0x7fff);
  checkInt('lastOffsetDelta', header.lastOffsetDelta, INT32_MIN, INT32_MAX);
  checkBigInt('baseTimestamp', header.baseTimestamp, 64);
  checkBigInt('maxTimestamp', header.maxTimestamp, 64);
  checkBigInt('producerId', header.producerId, 64);
  checkInt('producerEpoch', header.producerEpoch, -0x8000, 0x7fff);
  checkInt('baseSequence', header.baseSequence, INT32_MIN, INT32_MAX);
  const attributes = (header.attributes & ~ATTR_COMPRESSION_MASK) | compressionId(header.compression);
  const plain = encodeRecords(records);
  const body = header.compression === 'none' ? plain : compress(header.compression, plain);
  if (body.length > INT32_MAX - BATCH_HEADER_BYTES) throw new RecordError('encode_invalid', `records of ${body.length} bytes do not fit a batch`, { field: 'records', length: body.length });
  const out = Buffer.allocUnsafe(BATCH_HEADER_BYTES + body.length);
  out.writeBigInt64BE(header.baseOffset, 0);
  out.writeInt32BE(out.length - LOG_OVERHEAD, 8);
  out.writeInt32BE(header.partitionLeaderEpoch, 12);
  out.writeInt8(2, MAGIC_OFFSET);
  out.writeInt16BE(attributes, ATTRIBUTES_OFFSET);
  out.writeInt32BE(header.lastOffsetDelta, 23);
  out.writeBigInt64BE(header.baseTimestamp, 27);
  out.writeBigInt64BE(header.maxTimestamp, 35);
  out.writeBigInt64BE(header.producerId, 43);
  out.writeInt16BE(header.producerEpoch, 51);
  out.writeInt32BE(header.baseSequence, 53);
  out.writeInt32BE(records.length, 57);
  out.set(body, RECORDS_OFFSET);
  out.writeUInt32BE(crc32c(out.subarray(ATTRIBUTES_OFFSET)), CRC_OFFSET);
  return out;
}
