/**
 * @module kafka/protocol/errors
 * The one error type the Kafka byte-level parsers throw. Every failure carries a stable `code` (used in audit
 * events and metrics) and structured `details` (sizes, offsets) so callers never parse the message.
 */

export type FrameErrorCode =
  /** A size prefix above the configured maximum. */
  | 'frame_too_large'
  /** A negative size prefix. */
  | 'frame_size_invalid'
  /** A frame too short for the header fields it must carry. */
  | 'header_truncated'
  /** A header field that cannot be valid (a string length below -1, an over-long varint). */
  | 'header_invalid'
  /** A frame too short for the body fields a parser needed. */
  | 'body_truncated'
  /** A body field that cannot be valid. */
  | 'body_invalid';

export class FrameError extends Error {
  readonly code: FrameErrorCode;
  readonly details: Readonly<Record<string, number | string>>;
  /**
   * Whole frames the reassembler completed in the same `push` before it met the bad size prefix. They are valid
   * and may still be forwarded before the connection is closed. Empty for errors thrown by header parsers.
   */
  readonly completeFrames: readonly Buffer[];

  constructor(
    code: FrameErrorCode,
    message: string,
    details: Readonly<Record<string, number | string>> = {},
    completeFrames: readonly Buffer[] = [],
  ) {
    super(message);
    this.name = 'FrameError';
    this.code = code;
    this.details = details;
    this.completeFrames = completeFrames;
  }
}
