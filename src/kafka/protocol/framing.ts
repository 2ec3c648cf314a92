/**
 * @module kafka/protocol/framing
 * Reassembles Kafka frames from a byte stream cut at arbitrary places (Envoy turns each TCP read into one
 * message). A Kafka frame is a 4-byte big-endian signed size followed by that many bytes. One reassembler serves
 * one direction of one connection.
 *
 * - `push` returns only whole frames, size prefix included, bytes unchanged, in stream order. Frames that lie
 *   entirely inside one chunk are returned as views (`subarray`) of that chunk: no copy.
 * - A frame spread over several chunks is collected as a list of pieces and concatenated once, when its last byte
 *   arrives: a 10 MiB frame arriving in 64 KiB pieces is copied once, not 160 times.
 * - The size prefix is checked as soon as its 4 bytes are known, before any of the body arrives: a negative size
 *   throws `FrameError('frame_size_invalid')`, a size above `maxFrameBytes` throws `FrameError('frame_too_large')`.
 *   The error carries the frames completed earlier in the same push (`completeFrames`). After an error the
 *   reassembler is failed: every later `push` throws the same error.
 */
import { FrameError } from './errors.ts';

export { FrameError } from './errors.ts';
export type { FrameErrorCode } from './errors.ts';

/** Bytes of the size prefix in front of every Kafka frame. */
export const SIZE_PREFIX_BYTES = 4;

export interface FrameReassemblerOptions {
  /**
   * The largest size prefix accepted: the number of bytes after the prefix, as Kafka's own
   * `socket.request.max.bytes` counts them. A frame occupies up to `maxFrameBytes + 4` bytes on the wire.
   */
  readonly maxFrameBytes: number;
}

export class FrameReassembler {
  readonly maxFrameBytes: number;
  /** Pieces of the one incomplete frame (views of the chunks they came in). */
  #pieces: Buffer[] = [];
  #pendingBytes = 0;
  /** Total length (prefix included) of the incomplete frame, or -1 while its prefix is not yet complete. */
  #expected = -1;
  #failure: FrameError | undefined;

  constructor(options: FrameReassemblerOptions) {
    if (!Number.isSafeInteger(options.maxFrameBytes) || options.maxFrameBytes < 0) {
      throw new RangeError(`maxFrameBytes must be a non-negative integer, got ${options.maxFrameBytes}`);
    }
    // The size prefix is a signed 32-bit integer: larger limits are meaningless.
    this.maxFrameBytes = Math.min(options.maxFrameBytes, 0x7fffffff);
  }

  /** Bytes held for a frame that is not complete yet. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** True when no partial frame is held: the stream is cut exactly between frames. */
  get isIdle(): boolean {
    return this.#pendingBytes === 0;
  }

  /** The error that failed this reassembler, if any. */
  get failure(): FrameError | undefined {
    return this.#failure;
  }

  /**
   * Adds the next bytes of the stream; returns the frames they complete (possibly none). Throws `FrameError` on a
   * size prefix that is negative or above the limit; `error.completeFrames` holds the frames completed before it.
   */
  push(chunk: Buffer): Buffer[] {
    if (this.#failure !== undefined) throw this.#failure;
    const frames: Buffer[] = [];
    let offset = 0;

    if (this.#pendingBytes > 0) {
      if (this.#expected < 0) {
        // The size prefix itself was split: complete it from the front of this chunk.
        const take = Math.min(SIZE_PREFIX_BYTES - this.#pendingBytes, chunk.length);
        this.#hold(chunk.subarray(0, take));
        offset = take;
        if (this.#pendingBytes < SIZE_PREFIX_BYTES) return frames;
        const prefix = Buffer.concat(this.#pieces, SIZE_PREFIX_BYTES);
        this.#expected = SIZE_PREFIX_BYTES + this.#checkSize(prefix.readInt32BE(0), frames);
      }
      const take = Math.min(this.#expected - this.#pendingBytes, chunk.length - offset);
      if (take > 0) this.#hold(chunk.subarray(offset, offset + take));
      offset += take;
      if (this.#pendingBytes < this.#expected) return frames;
      frames.push(this.#pieces.length === 1 ? this.#pieces[0]! : Buffer.concat(this.#pieces, this.#expected));
      this.#reset();
    }

    // Nothing held: take whole frames straight out of the chunk.
    while (chunk.length - offset >= SIZE_PREFIX_BYTES) {
      const total = SIZE_PREFIX_BYTES + this.#checkSize(chunk.readInt32BE(offset), frames);
      if (chunk.length - offset < total) {
        this.#expected = total;
        break;
      }
      frames.push(chunk.subarray(offset, offset + total));
      offset += total;
    }
    if (offset < chunk.length) this.#hold(chunk.subarray(offset));
    return frames;
  }

  #hold(piece: Buffer): void {
    this.#pieces.push(piece);
    this.#pendingBytes += piece.length;
  }

  #reset(): void {
    this.#pieces = [];
    this.#pendingBytes = 0;
    this.#expected = -1;
  }

  /** Returns `size` when acceptable; otherwise fails the reassembler and throws. */
  #checkSize(size: number, completeFrames: Buffer[]): number {
    if (size >= 0 && size <= this.maxFrameBytes) return size;
    const error =
      size < 0
        ? new FrameError('frame_size_invalid', `Kafka frame size prefix is negative: ${size}`, { size }, completeFrames)
        : new FrameError(
            'frame_too_large',
            `Kafka frame of ${size} bytes exceeds the limit of ${this.maxFrameBytes} bytes`,
            { size, limit: this.maxFrameBytes },
            completeFrames,
          );
    this.#failure = error;
    this.#reset();
    throw error;
  }
}
