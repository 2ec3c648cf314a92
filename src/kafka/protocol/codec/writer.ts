/**
 * @module kafka/protocol/codec/writer
 * A growable buffer that writes Kafka's wire primitives (the inverse of codec/reader.ts, same representations:
 * bigint for int64/varlong, base64url text for uuid, Buffers for bytes and records).
 *
 * The buffer doubles when full, so a message of n bytes costs O(log n) allocations and copies; `finish()` returns
 * a view of the written bytes without a further copy. Values that do not fit their wire type throw `EncodeError`
 * naming the field, never a silently truncated number.
 */
import { EncodeError } from './errors.ts';
import { zigzag32 } from './reader.ts';

const INITIAL_CAPACITY = 256;
const UUID_BYTES = 16;
const MASK_64 = (1n << 64n) - 1n;

function rangeError(field: string, value: unknown, type: string): EncodeError {
  return new EncodeError(field, `${String(value)} is not a valid ${type}`);
}

function checkInt(value: number, min: number, max: number, field: string, type: string): void {
  if (!Number.isInteger(value) || value < min || value > max) throw rangeError(field, value, type);
}

export class Writer {
  #buf: Buffer;
  #length = 0;

  constructor(initialCapacity = INITIAL_CAPACITY) {
    this.#buf = Buffer.allocUnsafe(Math.max(16, initialCapacity));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  /** The bytes written so far, as a view of the internal buffer (valid until the next write). */
  finish(): Buffer {
    return this.#buf.subarray(0, this.#length);
  }

  #byte(value: number): void {
    const at = this.#reserve(1);
    this.#buf[at] = value;
  }

  /**
   * Makes room for `bytes` more bytes and returns the offset to write them at. Call it before touching `#buf`:
   * it may replace the buffer (`this.#buf.write…(v, this.#reserve(n))` would write into the old one).
   */
  #reserve(bytes: number): number {
    const at = this.#length;
    const needed = at + bytes;
    if (needed > this.#buf.length) {
      let capacity = this.#buf.length * 2;
      while (capacity < needed) capacity *= 2;
      const grown = Buffer.allocUnsafe(capacity);
      this.#buf.copy(grown, 0, 0, at);
      this.#buf = grown;
    }
    this.#length = needed;
    return at;
  }

  int8(value: number, field = 'int8'): void {
    checkInt(value, -0x80, 0x7f, field, 'int8');
    const at = this.#reserve(1);
    this.#buf.writeInt8(value, at);
  }

  int16(value: number, field = 'int16'): void {
    checkInt(value, -0x8000, 0x7fff, field, 'int16');
    const at = this.#reserve(2);
    this.#buf.writeInt16BE(value, at);
  }

  uint16(value: number, field = 'uint16'): void {
    checkInt(value, 0, 0xffff, field, 'uint16');
    const at = this.#reserve(2);
    this.#buf.writeUInt16BE(value, at);
  }

  int32(value: number, field = 'int32'): void {
    checkInt(value, -0x80000000, 0x7fffffff, field, 'int32');
    const at = this.#reserve(4);
    this.#buf.writeInt32BE(value, at);
  }

  uint32(value: number, field = 'uint32'): void {
    checkInt(value, 0, 0xffffffff, field, 'uint32');
    const at = this.#reserve(4);
    this.#buf.writeUInt32BE(value, at);
  }

  int64(value: bigint, field = 'int64'): void {
    if (typeof value !== 'bigint' || value < -(1n << 63n) || value >= 1n << 63n) throw rangeError(field, value, 'int64');
    const at = this.#reserve(8);
    this.#buf.writeBigInt64BE(value, at);
  }

  float64(value: number, field = 'float64'): void {
    if (typeof value !== 'number') throw rangeError(field, value, 'float64');
    const at = this.#reserve(8);
    this.#buf.writeDoubleBE(value, at);
  }

  bool(value: boolean, field = 'bool'): void {
    if (typeof value !== 'boolean') throw rangeError(field, value, 'bool');
    const at = this.#reserve(1);
    this.#buf[at] = value ? 1 : 0;
  }

  /** 16 bytes from Kafka's text form (unpadded base64url, 22 characters). */
  uuid(value: string, field = 'uuid'): void {
    const bytes = typeof value === 'string' && value.length === 22 ? Buffer.from(value, 'base64url') : undefined;
    if (bytes?.length !== UUID_BYTES || bytes.toString('base64url') !== value) throw rangeError(field, value, 'uuid (22 base64url characters)');
    const at = this.#reserve(UUID_BYTES);
    bytes.copy(this.#buf, at);
  }

  /** UNSIGNED_VARINT: 7 bits per byte, least significant first, for 0 … 2^32 - 1. */
  uvarint(value: number, field = 'unsigned varint'): void {
    checkInt(value, 0, 0xffffffff, field, 'unsigned varint');
    let rest = value;
    while (rest >= 0x80) {
      this.#byte((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    this.#byte(rest);
  }

  /** VARINT: a zigzag-encoded int32 as an unsigned varint. */
  varint(value: number, field = 'varint'): void {
    checkInt(value, -0x80000000, 0x7fffffff, field, 'varint');
    this.uvarint(zigzag32(value), field);
  }

  /** VARLONG: a zigzag-encoded int64, up to 10 bytes. */
  varlong(value: bigint, field = 'varlong'): void {
    if (typeof value !== 'bigint' || value < -(1n << 63n) || value >= 1n << 63n) throw rangeError(field, value, 'varlong');
    let rest = ((value << 1n) ^ (value >> 63n)) & MASK_64;
    while (rest >= 0x80n) {
      this.#byte(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    this.#byte(Number(rest));
  }

  /** Raw bytes, no length. */
  raw(bytes: Uint8Array): void {
    const at = this.#reserve(bytes.length);
    this.#buf.set(bytes, at);
  }

  /**
   * A string or null: INT16 length (-1 null) or, `compact`, UNSIGNED_VARINT length + 1 (0 null), then UTF-8.
   */
  stringOrNull(value: string | null, compact: boolean, field = 'string'): void {
    if (value === null) {
      this.#nullMarker(compact, false);
      return;
    }
    if (typeof value !== 'string') throw rangeError(field, value, 'string');
    const length = Buffer.byteLength(value, 'utf8');
    if (compact) this.uvarint(length + 1, field);
    else if (length > 0x7fff) throw new EncodeError(field, `a string of ${length} UTF-8 bytes does not fit an INT16 length`);
    else this.int16(length, field);
    const at = this.#reserve(length);
    this.#buf.write(value, at, length, 'utf8');
  }

  /** Bytes or null: INT32 length (-1 null) or, `compact`, UNSIGNED_VARINT length + 1 (0 null), then the bytes. */
  bytesOrNull(value: Uint8Array | null, compact: boolean, field = 'bytes'): void {
    if (value === null) {
      this.#nullMarker(compact, true);
      return;
    }
    if (!(value instanceof Uint8Array)) throw rangeError(field, value, 'Buffer');
    if (compact) this.uvarint(value.length + 1, field);
    else this.int32(value.length, field);
    this.raw(value);
  }

  /** An array's element count, or -1 for null, in INT32 or (compact) UNSIGNED_VARINT count + 1 form. */
  arrayLength(count: number, compact: boolean, field = 'array'): void {
    if (count < 0) this.#nullMarker(compact, true);
    else if (compact) this.uvarint(count + 1, field);
    else this.int32(count, field);
  }

  /** Overwrites 4 bytes at `offset` (already written) with an INT32: for size prefixes filled in at the end. */
  patchInt32(offset: number, value: number): void {
    if (offset < 0 || offset + 4 > this.#length) throw new RangeError(`patchInt32 at ${offset} outside the ${this.#length} bytes written`);
    this.#buf.writeInt32BE(value, offset);
  }

  #nullMarker(compact: boolean, wide: boolean): void {
    if (compact) this.uvarint(0);
    else if (wide) this.int32(-1);
    else this.int16(-1);
  }
}
