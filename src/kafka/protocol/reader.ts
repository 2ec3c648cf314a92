/**
 * @module kafka/protocol/reader
 * A bounds-checked cursor over a Kafka frame for the few primitive types the adapter reads by hand (the generated
 * codecs of a later issue replace most uses). Every read past the end throws `FrameError('<section>_truncated')`
 * naming the field and the offset it needed; impossible values throw `FrameError('<section>_invalid')`.
 */
import { FrameError } from './errors.ts';

/** Which part of a frame is being read: decides the error codes (`header_truncated` or `body_truncated`). */
export type FrameSection = 'header' | 'body';

export class ByteReader {
  readonly buf: Buffer;
  readonly section: FrameSection;
  /** Offset of the next byte to read. */
  offset: number;

  constructor(buf: Buffer, offset: number, section: FrameSection) {
    this.buf = buf;
    this.offset = offset;
    this.section = section;
  }

  int16(field: string): number {
    this.#need(2, field);
    const value = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(field: string): number {
    this.#need(4, field);
    const value = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** An unsigned varint of at most 5 bytes (Kafka's UNSIGNED_VARINT, a uint32). */
  uvarint(field: string): number {
    let value = 0;
    for (let i = 0; i < 5; i++) {
      this.#need(1, field);
      const byte = this.buf[this.offset++]!;
      value += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) {
        if (i === 4 && byte > 0x0f) break;
        return value;
      }
    }
    throw this.#invalid(field, 'unsigned varint longer than 32 bits');
  }

  /** A non-compact nullable string: INT16 length (-1 for null), then UTF-8 bytes. */
  nullableString(field: string): string | null {
    const length = this.int16(field);
    if (length === -1) return null;
    if (length < -1) throw this.#invalid(field, `string length ${length}`);
    this.#need(length, field);
    const value = this.buf.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** Skips a non-compact nullable string. */
  skipNullableString(field: string): void {
    const length = this.int16(field);
    if (length < -1) throw this.#invalid(field, `string length ${length}`);
    if (length > 0) this.skip(length, field);
  }

  /** Skips a compact nullable string: UNSIGNED_VARINT length + 1 (0 for null), then UTF-8 bytes. */
  skipCompactNullableString(field: string): void {
    const lengthPlusOne = this.uvarint(field);
    if (lengthPlusOne > 1) this.skip(lengthPlusOne - 1, field);
  }

  /** Skips a tagged-field section: an UNSIGNED_VARINT count, then (tag, size, size bytes) per field. */
  skipTaggedFields(field = 'tagged fields'): void {
    const count = this.uvarint(`${field} count`);
    for (let i = 0; i < count; i++) {
      this.uvarint(`${field} tag`);
      const size = this.uvarint(`${field} size`);
      this.skip(size, `${field} data`);
    }
  }

  skip(bytes: number, field: string): void {
    this.#need(bytes, field);
    this.offset += bytes;
  }

  /** Throws `FrameError('<section>_truncated')` unless `bytes` more bytes follow the offset (for readers built on this one). */
  need(bytes: number, field: string): void {
    this.#need(bytes, field);
  }

  /** A `FrameError('<section>_invalid')` for `field` at the current offset (for readers built on this one). */
  invalid(field: string, what: string): FrameError {
    return this.#invalid(field, what);
  }

  #need(bytes: number, field: string): void {
    const end = this.offset + bytes;
    if (end <= this.buf.length) return;
    throw new FrameError(
      this.section === 'header' ? 'header_truncated' : 'body_truncated',
      `Kafka ${this.section} truncated: ${field} needs bytes up to offset ${end}, the frame has ${this.buf.length}`,
      { field, expectedOffset: end, length: this.buf.length },
    );
  }

  #invalid(field: string, what: string): FrameError {
    return new FrameError(
      this.section === 'header' ? 'header_invalid' : 'body_invalid',
      `Kafka ${this.section} invalid: ${field}: ${what} at offset ${this.offset}`,
      { field, offset: this.offset },
    );
  }
}
