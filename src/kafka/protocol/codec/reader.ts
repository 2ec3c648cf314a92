/**
 * @module kafka/protocol/codec/reader
 * Every primitive of Kafka's wire format, read bounds-checked on top of `ByteReader`: a read past the end throws
 * `FrameError('<section>_truncated')` naming the field and the offset it needed, an impossible value throws
 * `FrameError('<section>_invalid')` naming the field and the offset. No other exception type escapes a read.
 *
 * Representation choices (shared by the generated codecs):
 * - int64 and varlong are `bigint`; every other integer is a `number`.
 * - uuid is Kafka's own text form: 16 bytes as unpadded base64url (22 characters), e.g. a topic id as
 *   `kafka-topics --describe` prints it.
 * - bytes and records are views (`subarray`) of the frame: nothing is copied, and they alias the frame's memory.
 */
import { ByteReader } from '../reader.ts';
import type { FrameSection } from '../reader.ts';

/** One entry of a tagged-field section, kept as raw bytes (a view of the frame). */
export interface TaggedField {
  readonly tag: number;
  readonly data: Buffer;
}

export class Reader extends ByteReader {
  constructor(buf: Buffer, offset = 0, section: FrameSection = 'body') {
    super(buf, offset, section);
  }

  /** Bytes left between the offset and the end of the buffer. */
  get remaining(): number {
    return this.buf.length - this.offset;
  }

  int8(field: string): number {
    this.need(1, field);
    return this.buf.readInt8(this.offset++);
  }

  uint16(field: string): number {
    this.need(2, field);
    const value = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  uint32(field: string): number {
    this.need(4, field);
    const value = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  int64(field: string): bigint {
    this.need(8, field);
    const value = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  float64(field: string): number {
    this.need(8, field);
    const value = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return value;
  }

  /** Any non-zero byte is true, as Kafka reads it. */
  bool(field: string): boolean {
    this.need(1, field);
    return this.buf[this.offset++] !== 0;
  }

  /** 16 bytes, returned as unpadded base64url. */
  uuid(field: string): string {
    this.need(16, field);
    const value = this.buf.toString('base64url', this.offset, this.offset + 16);
    this.offset += 16;
    return value;
  }

  /** A zigzag-encoded signed varint of at most 5 bytes (Kafka's VARINT, an int32). */
  varint(field: string): number {
    return unzigzag32(this.uvarint(field));
  }

  /** A zigzag-encoded signed varint of at most 10 bytes (Kafka's VARLONG, an int64). */
  varlong(field: string): bigint {
    let value = 0n;
    for (let i = 0; i < 10; i++) {
      this.need(1, field);
      const byte = this.buf[this.offset++]!;
      value |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) {
        if (i === 9 && byte > 0x01) break;
        return (value >> 1n) ^ -(value & 1n);
      }
    }
    throw this.invalid(field, 'varlong longer than 64 bits');
  }

  /**
   * A string, or null for the null marker: INT16 length (-1 null) or, `compact`, UNSIGNED_VARINT length + 1
   * (0 null). Whether null is acceptable is the caller's decision.
   */
  stringOrNull(field: string, compact: boolean): string | null {
    const length = this.#length(field, compact, false);
    if (length < 0) return null;
    this.need(length, field);
    const value = this.buf.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /**
   * Bytes (a view of the frame), or null for the null marker: INT32 length (-1 null) or, `compact`,
   * UNSIGNED_VARINT length + 1 (0 null). Also the form of `records` fields.
   */
  bytesOrNull(field: string, compact: boolean): Buffer | null {
    const length = this.#length(field, compact, true);
    if (length < 0) return null;
    return this.view(length, field);
  }

  /**
   * An array's element count, -1 for null: INT32 (-1 null) or, `compact`, UNSIGNED_VARINT count + 1 (0 null).
   * A count larger than the bytes left is refused before any element is read (every element but an empty struct
   * takes at least one byte; refusing early keeps a forged count from looping billions of times).
   */
  arrayLength(field: string, compact: boolean): number {
    const count = this.#length(field, compact, true);
    if (count > this.remaining) throw this.invalid(field, `array of ${count} elements with ${this.remaining} bytes left`);
    return count;
  }

  /** `length` bytes from the offset, as a view of the frame. */
  view(length: number, field: string): Buffer {
    this.need(length, field);
    const value = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** A whole tagged-field section as raw entries (count, then tag, size and data per field). */
  taggedFields(field = 'tagged fields'): TaggedField[] {
    const count = this.uvarint(`${field} count`);
    const fields: TaggedField[] = [];
    for (let i = 0; i < count; i++) {
      const tag = this.uvarint(`${field} tag`);
      const size = this.uvarint(`${field} size`);
      fields.push({ tag, data: this.view(size, `${field} data (tag ${tag})`) });
    }
    return fields;
  }

  /** A length or count: -1 for null, otherwise non-negative. `wide`: INT32 rather than INT16 when not compact. */
  #length(field: string, compact: boolean, wide: boolean): number {
    if (compact) {
      const lengthPlusOne = this.uvarint(field);
      // The largest uvarint is 2^32 - 1; its length (2^32 - 2) is refused by `need` like any other overrun.
      return lengthPlusOne === 0 ? -1 : lengthPlusOne - 1;
    }
    const length = wide ? this.int32(field) : this.int16(field);
    if (length < -1) throw this.invalid(field, `length ${length}`);
    return length;
  }
}

/** Zigzag encoding of an int32 as an unsigned number: 0 → 0, -1 → 1, 1 → 2, -2 → 3, … */
export function zigzag32(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

/** The inverse of `zigzag32`. */
export function unzigzag32(raw: number): number {
  return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
}
