import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { FrameError, FrameReassembler } from '../../src/kafka/protocol/framing.ts';
import { chunksOf, framed, int32, seededRandom, splitAt } from './frames.ts';

const MiB = 1024 * 1024;

function pushAll(reassembler: FrameReassembler, chunks: readonly Buffer[]): Buffer[] {
  return chunks.flatMap((chunk) => reassembler.push(chunk));
}

/** Three frames of different sizes, one with an empty body. */
const FRAMES = [framed(Buffer.from('first frame body')), framed(Buffer.alloc(0)), framed(Buffer.from('the third, a bit longer'))];
const STREAM = Buffer.concat(FRAMES);

function assertFrames(actual: readonly Buffer[], expected: readonly Buffer[], context: string): void {
  assert.equal(actual.length, expected.length, `${context}: frame count`);
  actual.forEach((frame, i) => assert.deepEqual(frame, expected[i], `${context}: frame ${i}`));
}

describe('FrameReassembler', () => {
  it('returns a frame only when its last byte has arrived, size prefix included and bytes unchanged', () => {
    const r = new FrameReassembler({ maxFrameBytes: 1024 });
    const frame = FRAMES[0]!;
    assert.deepEqual(r.push(frame.subarray(0, 10)), []);
    assert.equal(r.pendingBytes, 10);
    assert.equal(r.isIdle, false);
    assert.deepEqual(r.push(frame.subarray(10)), [frame]);
    assert.equal(r.pendingBytes, 0);
    assert.equal(r.isIdle, true);
  });

  it('returns every frame of a chunk that holds several, as views of that chunk (no copy)', () => {
    const r = new FrameReassembler({ maxFrameBytes: 1024 });
    const frames = r.push(STREAM);
    assertFrames(frames, FRAMES, 'coalesced');
    for (const frame of frames) assert.equal(frame.buffer, STREAM.buffer);
    assert.equal(r.isIdle, true);
  });

  it('reassembles the same frames whatever single boundary cuts the stream', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const r = new FrameReassembler({ maxFrameBytes: 1024 });
      assertFrames(pushAll(r, splitAt(STREAM, [cut])), FRAMES, `cut at ${cut}`);
      assert.equal(r.isIdle, true, `cut at ${cut}: nothing left over`);
    }
  });

  it('reassembles the same frames whatever two boundaries cut the stream (prefixes split too)', () => {
    for (let a = 0; a <= STREAM.length; a++) {
      for (let b = a; b <= STREAM.length; b++) {
        const r = new FrameReassembler({ maxFrameBytes: 1024 });
        assertFrames(pushAll(r, splitAt(STREAM, [a, b])), FRAMES, `cuts at ${a},${b}`);
        assert.equal(r.isIdle, true);
      }
    }
  });

  it('reassembles a stream delivered one byte at a time', () => {
    const r = new FrameReassembler({ maxFrameBytes: 1024 });
    assertFrames(pushAll(r, chunksOf(STREAM, 1)), FRAMES, 'byte by byte');
  });

  it('property: random frames under seeded random splits come back whole, in order', () => {
    const random = seededRandom(0x7011_6a7e);
    for (let round = 0; round < 200; round++) {
      const frames = Array.from({ length: 1 + Math.floor(random() * 20) }, () => {
        const body = Buffer.alloc(Math.floor(random() * 300));
        for (let i = 0; i < body.length; i++) body[i] = Math.floor(random() * 256);
        return framed(body);
      });
      const stream = Buffer.concat(frames);
      const cuts: number[] = [];
      for (let offset = 0; offset < stream.length; ) {
        offset += Math.floor(random() * 64);
        if (offset < stream.length) cuts.push(offset);
      }
      const r = new FrameReassembler({ maxFrameBytes: 1024 });
      assertFrames(pushAll(r, splitAt(stream, cuts)), frames, `round ${round}`);
      assert.equal(r.isIdle, true);
    }
  });

  it('reassembles a 10 MiB frame from 64 KiB chunks with a single concatenation', () => {
    const body = Buffer.alloc(10 * MiB);
    for (let i = 0; i < body.length; i += 4096) body[i] = i & 0xff;
    const frame = framed(body);
    const chunks = chunksOf(frame, 64 * 1024);
    const r = new FrameReassembler({ maxFrameBytes: 100 * MiB });
    const concat = mock.method(Buffer, 'concat');
    try {
      for (const chunk of chunks.slice(0, -1)) assert.deepEqual(r.push(chunk), []);
      assert.equal(r.pendingBytes, frame.length - chunks.at(-1)!.length);
      const [whole, ...rest] = r.push(chunks.at(-1)!);
      assert.equal(rest.length, 0);
      assert.equal(concat.mock.callCount(), 1, 'pieces are concatenated once, when the frame is complete');
      assert.ok(whole!.equals(frame));
    } finally {
      concat.mock.restore();
    }
  });

  it('rejects a size above maxFrameBytes as soon as the 4 prefix bytes are known, without the body', () => {
    const r = new FrameReassembler({ maxFrameBytes: 1000 });
    assert.throws(
      () => r.push(int32(1001)),
      (error: unknown) =>
        error instanceof FrameError &&
        error.code === 'frame_too_large' &&
        error.details['size'] === 1001 &&
        error.details['limit'] === 1000,
    );
  });

  it('decides the size limit even when the prefix itself is split across chunks', () => {
    const r = new FrameReassembler({ maxFrameBytes: 1000 });
    const prefix = int32(50 * MiB);
    assert.deepEqual(r.push(prefix.subarray(0, 2)), []);
    assert.throws(() => r.push(prefix.subarray(2)), { name: 'FrameError', code: 'frame_too_large' });
  });

  it('accepts a frame of exactly maxFrameBytes', () => {
    const r = new FrameReassembler({ maxFrameBytes: 16 });
    const frame = framed(Buffer.alloc(16, 1));
    assert.deepEqual(r.push(frame), [frame]);
  });

  it('rejects a negative size prefix as frame_size_invalid', () => {
    const r = new FrameReassembler({ maxFrameBytes: 1000 });
    assert.throws(() => r.push(int32(-5)), (error: unknown) =>
      error instanceof FrameError && error.code === 'frame_size_invalid' && error.details['size'] === -5);
  });

  it('hands over the frames completed before a bad prefix, then stays failed', () => {
    const r = new FrameReassembler({ maxFrameBytes: 100 });
    const good = FRAMES[0]!;
    let caught: unknown;
    try {
      r.push(Buffer.concat([good, int32(101), Buffer.alloc(8)]));
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof FrameError);
    assertFrames(caught.completeFrames, [good], 'frames before the bad prefix');
    assert.throws(() => r.push(FRAMES[1]!), { code: 'frame_too_large' });
    assert.equal(r.failure, caught);
  });
});
