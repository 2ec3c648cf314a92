/**
 * @module kafka/protocol/records/errors
 * The one error type the record-batch code throws. Like `FrameError` (../errors.ts), every failure carries a stable
 * `code` and structured `details` — what was expected and where (`offset`, counted from the first byte of the buffer
 * the caller passed in, or of the decompressed records when `section` is `decompressed`).
 */

export type RecordErrorCode =
  /** The bytes end inside a field or a record. */
  | 'truncated'
  /** A length field that no batch, message or record can have (negative, below the fixed header size, ...). */
  | 'length_invalid'
  /** A magic byte other than 0, 1 (legacy message sets) or 2 (record batches), or one the function does not read. */
  | 'magic_unsupported'
  /** The stored CRC (CRC-32C for v2 batches, CRC-32 for v0/v1 messages) does not match the bytes. */
  | 'crc_mismatch'
  /** A compression codec id other than 0–4. */
  | 'compression_unsupported'
  /** Compressed bytes that do not decompress with their codec. */
  | 'compression_invalid'
  /** Decompressed data larger than the allowed maximum. */
  | 'decompressed_too_large'
  /** A record or message whose fields are impossible (an over-long varint, a count that disagrees, bytes left over). */
  | 'record_invalid'
  /** `encodeBatch` was given values that do not fit their wire fields. */
  | 'encode_invalid';

export class RecordError extends Error {
  readonly code: RecordErrorCode;
  readonly details: Readonly<Record<string, number | string>>;

  constructor(code: RecordErrorCode, message: string, details: Readonly<Record<string, number | string>> = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RecordError';
    this.code = code;
    this.details = details;
  }
}
