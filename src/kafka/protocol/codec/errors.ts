/**
 * @module kafka/protocol/codec/errors
 * The error the encoders throw when a message cannot be written in the requested version: a value that does not
 * fit its wire type, null where the version does not allow it, or a field the version lacks set to a non-default
 * value when the spec does not mark it `ignorable` (Kafka's own serializer refuses the same things). Decoding
 * errors are `FrameError`s (../errors.ts): bytes from the wire are a different failure from a caller's mistake.
 */

export class EncodeError extends Error {
  /** Where: the message's spec name then the field path, e.g. `ProduceRequest v9: topicData[0].name`. */
  path: string;
  readonly reason: string;

  constructor(path: string, reason: string) {
    super(`cannot encode ${path}: ${reason}`);
    this.name = 'EncodeError';
    this.path = path;
    this.reason = reason;
  }

  /**
   * Puts an outer path segment in front (`topicData[0]` then `ProduceRequest v9`): the encoders add context only
   * while an error unwinds, so encoding that succeeds builds no path strings.
   */
  within(segment: string, separator = '.'): this {
    this.path = this.path === '' ? segment : `${segment}${this.path.startsWith('[') ? '' : separator}${this.path}`;
    this.message = `cannot encode ${this.path}: ${this.reason}`;
    return this;
  }
}
