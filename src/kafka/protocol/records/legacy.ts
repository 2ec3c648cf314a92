/**
 * @module kafka/protocol/records/legacy
 * Legacy message sets (magic 0 and 1, before KIP-98), read-only: a broker still returns them for data written in
 * those formats. Layout (big-endian, offsets from the entry's first byte):
 *   0 offset int64 · 8 messageSize int32 (bytes after this field) · 12 crc uint32 (CRC-32 from magic to the end)
 *   · 16 magic int8 · 17 attributes int8 (bits 0–2 compression: none, gzip, snappy, lz4; bit 3 log append time, v1)
 *   · [18 timestamp int64, v1 only] · key (int32 length, -1 = null) · value (int32 length, -1 = null).
 * A compressed message is a wrapper whose value is a compressed message set of inner messages. Inner offsets are
 * absolute in v0; in v1 they are relative, and the wrapper carries the absolute offset of the last inner message.
 * A v1 wrapper with log append time gives its timestamp to every inner message.
 */
import zlib from 'node:zlib';
import { decompress } from './compression.ts';
import type { Compression } from './compression.ts';
import { RecordError } from './errors.ts';

export interface LegacyMessage {
  offset: bigint;
  magic: 0 | 1;
  attributes: number;
  /** Null for magic 0 (no timestamp field). */
  timestamp: bigint | null;
  key: Buffer | null;
  value: Buffer | null;
}

export interface DecodeLegacyOptions {
  /** Bound on the bytes one compressed wrapper may decompress to; default 64 MiB. */
  readonly maxDecompressedBytes?: number;
}

const LEGACY_CODECS: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4'];
const ATTR_LOG_APPEND_TIME = 0x08;

/**
 * Every message of a magic 0/1 message set, compressed wrappers opened (one level deep, as Kafka writes them).
 * A trailing partial message (a Fetch response may end in one) is left out; anything else malformed throws
 * RecordError, as does a magic 2 batch among the messages.
 */
export function decodeLegacyMessageSet(records: Buffer, options: DecodeLegacyOptions = {}): LegacyMessage[] {
  const out: LegacyMessage[] = [];
  readSet(records, out, options, null);
  return out;
}

interface Wrapper { readonly offset: bigint; readonly magic: 0 | 1; readonly timestamp: bigint | null; readonly logAppendTime: boolean }

function readSet(records: Buffer, out: LegacyMessage[], options: DecodeLegacyOptions, wrapper: Wrapper | null): void {
  const inner: LegacyMessage[] = [];
  let pos = 0;
  while (pos < records.length) {
    const remaining = records.length - pos;
    const where = wrapper === null ? 'message set' : `compressed message set of the wrapper at offset ${wrapper.offset}`;
    if (remaining < 12 || records.readInt32BE(pos + 8) > remaining - 12) {
      if (wrapper === null && (remaining < 12 || records.readInt32BE(pos + 8) >= 14)) break; // trailing partial message
      throw new RecordError('truncated', `${where}: message at ${pos} cut short`, { offset: pos, remaining });
    }
    const size = records.readInt32BE(pos + 8);
    if (size < 14) throw new RecordError('length_invalid', `${where}: message at ${pos} of size ${size}, expected at least 14`, { offset: pos + 8, length: size, expected: 14 });
    const end = pos + 12 + size;
    const magic = records.readInt8(pos + 16);
    if (magic !== 0 && magic !== 1) {
      throw new RecordError('magic_unsupported', `${where}: magic ${magic} at ${pos + 16}, expected 0 or 1 (decodeBatch reads magic 2)`, { offset: pos + 16, magic });
    }
    if (magic === 1 && size < 22) throw new RecordError('length_invalid', `${where}: magic 1 message at ${pos} of size ${size}, expected at least 22`, { offset: pos + 8, length: size, expected: 22 });
    const stored = records.readUInt32BE(pos + 12);
    const actual = zlib.crc32(records.subarray(pos + 16, end));
    if (stored !== actual) throw new RecordError('crc_mismatch', `${where}: message at ${pos} has CRC-32 0x${stored.toString(16)}, computed 0x${actual.toString(16)}`, { offset: pos + 12, expected: stored, actual });
    const attributes = records.readInt8(pos + 17);
    let p = pos + 18;
    const timestamp = magic === 1 ? records.readBigInt64BE(p) : null;
    if (magic === 1) p += 8;
    const key = readBytes(records, p, end, 'key', where);
    p = key.next;
    const value = readBytes(records, p, end, 'value', where);
    p = value.next;
    if (p !== end) throw new RecordError('record_invalid', `${where}: message at ${pos} has ${end - p} bytes after its value`, { offset: p });
    const offset = records.readBigInt64BE(pos);
    const codec = LEGACY_CODECS[attributes & 0x07];
    if (codec === undefined) throw new RecordError('compression_unsupported', `${where}: message at ${pos} has compression id ${attributes & 0x07}, expected 0..3`, { offset: pos + 17, attributes });
    if (codec !== 'none') {
      if (wrapper !== null) throw new RecordError('record_invalid', `${where}: compressed message inside a compressed message at ${pos}`, { offset: pos + 17 });
      if (value.bytes === null) throw new RecordError('record_invalid', `compressed message at ${pos} has a null value`, { offset: pos });
      const decompressed = decompress(codec, value.bytes, { legacyLz4: magic === 0, ...(options.maxDecompressedBytes === undefined ? {} : { maxBytes: options.maxDecompressedBytes }) });
      readSet(decompressed, out, options, { offset, magic, timestamp, logAppendTime: (attributes & ATTR_LOG_APPEND_TIME) !== 0 });
    } else {
      let ts = timestamp;
      if (wrapper !== null && wrapper.magic === 1 && wrapper.logAppendTime) ts = wrapper.timestamp;
      inner.push({ offset, magic, attributes, timestamp: ts, key: key.bytes, value: value.bytes });
    }
    pos = end;
  }
  if (wrapper !== null && wrapper.magic === 1 && inner.length > 0) {
    // Relative inner offsets: the last one is the wrapper's (absolute) offset.
    const last = inner[inner.length - 1]!.offset;
    for (const message of inner) message.offset = wrapper.offset - (last - message.offset);
  }
  for (const message of inner) out.push(message);
}

function readBytes(records: Buffer, pos: number, end: number, field: string, where: string): { bytes: Buffer | null; next: number } {
  if (end - pos < 4) throw new RecordError('truncated', `${where}: ${field} length at ${pos} cut short`, { offset: pos, field });
  const length = records.readInt32BE(pos);
  if (length === -1) return { bytes: null, next: pos + 4 };
  if (length < -1 || length > end - pos - 4) {
    throw new RecordError(length < -1 ? 'length_invalid' : 'truncated', `${where}: ${field} length ${length} at ${pos}, expected -1..${end - pos - 4}`, { offset: pos, field, length });
  }
  return { bytes: records.subarray(pos + 4, pos + 4 + length), next: pos + 4 + length };
}
