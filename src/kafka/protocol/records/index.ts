/**
 * @module kafka/protocol/records
 * Kafka record data as pure functions over bytes: record batch v2 (decode, encode, CRC-32C), legacy message sets
 * v0/v1 (read-only), the five compression codecs, and the cutting of a Produce/Fetch `records` field into batches
 * with its trailing partial batch kept apart. Every failure is a `RecordError`.
 *
 * Control batches and transactional/idempotent batches decode like any other (readBatchHeader flags them); a
 * caller that does not change a batch should forward its original bytes untouched.
 */
export type { Compression } from './compression.ts';
export { COMPRESSION_BY_ID, DEFAULT_MAX_DECOMPRESSED_BYTES, compress, decompress } from './compression.ts';
export type { DecompressOptions } from './compression.ts';
export { crc32c } from './crc32c.ts';
export { RecordError } from './errors.ts';
export type { RecordErrorCode } from './errors.ts';
export {
  ATTR_COMPRESSION_MASK, ATTR_CONTROL, ATTR_DELETE_HORIZON, ATTR_TIMESTAMP_TYPE, ATTR_TRANSACTIONAL, BATCH_HEADER_BYTES,
  decodeBatch, encodeBatch, encodeRecords, readBatchHeader, splitBatches,
} from './batch.ts';
export type { BatchHeader, DecodeBatchOptions, KafkaRecord, RecordBatch, RecordHeader } from './batch.ts';
export { decodeLegacyMessageSet } from './legacy.ts';
export type { DecodeLegacyOptions, LegacyMessage } from './legacy.ts';
