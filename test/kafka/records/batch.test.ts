import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { describe, it } from 'node:test';
import {
  ATTR_CONTROL, ATTR_TRANSACTIONAL, RecordError, compress, crc32c, decodeBatch, decodeLegacyMessageSet, decompress, encodeBatch,
  readBatchHeader, splitBatches,
} from '../../../src/kafka/protocol/records/index.ts';
import type { BatchHeader, Compression, KafkaRecord } from '../../../src/kafka/protocol/records/index.ts';

const CODECS: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

function header(overrides: Partial<BatchHeader> = {}): BatchHeader {
  return {
    baseOffset: 0n, batchLength: 0, partitionLeaderEpoch: 0, magic: 2, crc: 0, attributes: 0, compression: 'none',
    isTransactional: false, isControl: false, lastOffsetDelta: 0, baseTimestamp: 1_700_000_000_000n, maxTimestamp: 1_700_000_000_000n,
    producerId: -1n, producerEpoch: -1, baseSequence: -1, recordCount: 0, ...overrides,
  };
}

function record(i: number, overrides: Partial<KafkaRecord> = {}): KafkaRecord {
  return { attributes: 0, timestampDelta: BigInt(i), offsetDelta: i, key: Buffer.from(`key-${i}`), value: Buffer.from(`value-${i}`.repeat(i % 7 + 1)), headers: [], ...overrides };
}

/** Seeded xorshift32: fuzz runs are reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}

describe('crc32c', () => {
  it('matches the known check vectors', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(0)), 0);
    assert.equal(crc32c(Buffer.alloc(32, 0)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
    assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43); // RFC 3720 B.4: 32 bytes of 0xff
    assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e); // RFC 3720 B.4: 0..31
  });

  it('continues a CRC over split input', () => {
    const data = Buffer.from('The quick brown fox jumps over the lazy dog, again and again');
    for (let cut = 0; cut <= data.length; cut++) {
      assert.equal(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), crc32c(data));
    }
  });
});

describe('record batch v2 round trips', () => {
  const edgeRecords: KafkaRecord[] = [
    record(0, { key: null, value: null }),
    record(1, { key: Buffer.alloc(0), value: Buffer.alloc(0) }),
    record(2, { headers: [{ key: 'h1', value: Buffer.from('v1') }, { key: 'ünïcødé', value: null }, { key: '', value: Buffer.alloc(0) }] }),
    record(3, { timestampDelta: -(1n << 63n), offsetDelta: -0x80000000, attributes: -128 }),
    record(4, { timestampDelta: (1n << 63n) - 1n, offsetDelta: 0x7fffffff, attributes: 127 }),
    record(5, { timestampDelta: -1n, offsetDelta: -1 }),
    record(6, { timestampDelta: 63n, offsetDelta: 64 }), // one-byte/two-byte varint boundary
    record(7, { value: Buffer.alloc(300_000, 7) }),
  ];
  const many = Array.from({ length: 2000 }, (_, i) => record(i));

  for (const compression of CODECS) {
    it(`encodes and decodes ${compression} batches with edge values and many records`, () => {
      for (const records of [edgeRecords, many, []]) {
        const bytes = encodeBatch(header({ compression, baseOffset: 42n, lastOffsetDelta: Math.max(0, records.length - 1) }), records);
        const decoded = decodeBatch(bytes);
        assert.equal(decoded.header.compression, compression);
        assert.equal(decoded.header.recordCount, records.length);
        assert.equal(decoded.header.batchLength, bytes.length - 12);
        assert.equal(decoded.header.baseOffset, 42n);
        assert.deepEqual(decoded.records.map(plain), records.map(plain));
        assert.deepEqual(splitBatches(bytes), { batches: [bytes], partial: null });
      }
    });
  }

  it('re-encoding a decoded uncompressed batch gives identical bytes', () => {
    const bytes = encodeBatch(header({ attributes: ATTR_TRANSACTIONAL, producerId: 7n, producerEpoch: 3, baseSequence: 10 }), edgeRecords);
    const decoded = decodeBatch(bytes);
    assert.ok(encodeBatch(decoded.header, decoded.records).equals(bytes));
  });

  it('re-encoding a compressed batch with its codec decodes to the same records', () => {
    for (const compression of CODECS) {
      const decoded = decodeBatch(encodeBatch(header({ compression }), many));
      const again = decodeBatch(encodeBatch(decoded.header, decoded.records));
      assert.deepEqual(again.records.map(plain), many.map(plain));
      assert.equal(again.header.compression, compression);
    }
  });

  it('switches codec when the header says another one', () => {
    const decoded = decodeBatch(encodeBatch(header({ compression: 'gzip' }), many));
    const asZstd = decodeBatch(encodeBatch({ ...decoded.header, compression: 'zstd' }, decoded.records));
    assert.equal(asZstd.header.compression, 'zstd');
    assert.equal(asZstd.header.attributes & 0x07, 4);
  });

  it('refuses a corrupted batch with crc_mismatch', () => {
    const bytes = encodeBatch(header(), many.slice(0, 5));
    bytes[bytes.length - 1]! ^= 1;
    assert.throws(() => decodeBatch(bytes), (err: unknown) => err instanceof RecordError && err.code === 'crc_mismatch');
  });

  it('refuses values that do not fit their wire fields', () => {
    assert.throws(() => encodeBatch(header(), [record(0, { offsetDelta: 2 ** 31 })]), (err: unknown) => err instanceof RecordError && err.code === 'encode_invalid');
    assert.throws(() => encodeBatch(header({ magic: 1 }), []), (err: unknown) => err instanceof RecordError && err.code === 'encode_invalid');
  });

  it('bounds decompression (a bomb fails with decompressed_too_large)', () => {
    const bytes = encodeBatch(header({ compression: 'gzip' }), [record(0, { value: Buffer.alloc(2_000_000) })]);
    assert.throws(() => decodeBatch(bytes, { maxDecompressedBytes: 100_000 }), (err: unknown) => err instanceof RecordError && err.code === 'decompressed_too_large');
    for (const codec of ['snappy', 'lz4', 'zstd'] as const) {
      assert.throws(() => decompress(codec, compress(codec, Buffer.alloc(2_000_000)), { maxBytes: 100_000 }), (err: unknown) => err instanceof RecordError && err.code === 'decompressed_too_large', codec);
    }
  });
});

function plain(r: KafkaRecord): unknown {
  return { ...r, key: r.key?.toString('hex') ?? null, value: r.value?.toString('hex') ?? null, headers: r.headers.map((h) => ({ key: h.key, value: h.value?.toString('hex') ?? null })) };
}

describe('snappy framing', () => {
  it('reads a bare snappy block as well as the xerial framing', async () => {
    const { compress: rawCompress } = await import('snappyjs');
    const data = Buffer.from('abcabcabc'.repeat(1000));
    assert.ok(decompress('snappy', Buffer.from(rawCompress(data))).equals(data));
    const framed = compress('snappy', data);
    assert.ok(framed.subarray(0, 8).equals(Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0])));
    assert.ok(decompress('snappy', framed).equals(data));
  });
});

describe('control and transactional batches', () => {
  it('flags a hand-built control batch (COMMIT marker) and a transactional batch', () => {
    // Control record: key = version int16 0, type int16 (1 = COMMIT); value = version int16 0, coordinator epoch int32.
    const key = Buffer.from([0, 0, 0, 1]);
    const value = Buffer.from([0, 0, 0, 0, 0, 5]);
    const control = encodeBatch(header({ attributes: ATTR_TRANSACTIONAL | ATTR_CONTROL, producerId: 1000n, producerEpoch: 2, baseSequence: -1 }), [
      { attributes: 0, timestampDelta: 0n, offsetDelta: 0, key, value, headers: [] },
    ]);
    const h = readBatchHeader(control);
    assert.equal(h.isControl, true);
    assert.equal(h.isTransactional, true);
    assert.equal(h.producerId, 1000n);
    assert.equal(h.producerEpoch, 2);
    assert.deepEqual(decodeBatch(control).records[0]!.key, key);

    const txn = encodeBatch(header({ attributes: ATTR_TRANSACTIONAL, producerId: 1000n, producerEpoch: 2, baseSequence: 0 }), [record(0)]);
    assert.equal(readBatchHeader(txn).isTransactional, true);
    assert.equal(readBatchHeader(txn).isControl, false);
    const idempotent = encodeBatch(header({ producerId: 9n, producerEpoch: 0, baseSequence: 5 }), [record(0)]);
    assert.deepEqual([readBatchHeader(idempotent).isTransactional, readBatchHeader(idempotent).baseSequence], [false, 5]);
  });

  it('reads the layout fields at their documented offsets', () => {
    const bytes = Buffer.alloc(61);
    bytes.writeBigInt64BE(123n, 0);
    bytes.writeInt32BE(49, 8);
    bytes.writeInt32BE(7, 12);
    bytes.writeInt8(2, 16);
    bytes.writeInt16BE(0x0030 | 3, 21); // transactional | control | lz4
    bytes.writeInt32BE(0, 23);
    bytes.writeBigInt64BE(1n, 27);
    bytes.writeBigInt64BE(2n, 35);
    bytes.writeBigInt64BE(3n, 43);
    bytes.writeInt16BE(4, 51);
    bytes.writeInt32BE(5, 53);
    bytes.writeInt32BE(0, 57);
    bytes.writeUInt32BE(crc32c(bytes.subarray(21)), 17);
    assert.deepEqual(readBatchHeader(bytes), {
      baseOffset: 123n, batchLength: 49, partitionLeaderEpoch: 7, magic: 2, crc: crc32c(bytes.subarray(21)), attributes: 0x33,
      compression: 'lz4', isTransactional: true, isControl: true, lastOffsetDelta: 0, baseTimestamp: 1n, maxTimestamp: 2n,
      producerId: 3n, producerEpoch: 4, baseSequence: 5, recordCount: 0,
    });
  });
});

describe('splitBatches', () => {
  const batches = CODECS.map((compression, i) => encodeBatch(header({ compression, baseOffset: BigInt(i * 10) }), Array.from({ length: 10 }, (_, j) => record(j))));
  const all = Buffer.concat(batches);

  it('cuts whole batches as views and keeps a trailing partial batch apart, at every cut point', () => {
    const ends = batches.reduce<number[]>((acc, b) => [...acc, (acc.at(-1) ?? 0) + b.length], []);
    for (let cut = 0; cut <= all.length; cut++) {
      const { batches: whole, partial } = splitBatches(all.subarray(0, cut));
      const complete = ends.filter((end) => end <= cut).length;
      assert.equal(whole.length, complete, `cut ${cut}`);
      whole.forEach((b, i) => assert.ok(b.equals(batches[i]!)));
      const consumed = complete === 0 ? 0 : ends[complete - 1]!;
      if (consumed === cut) assert.equal(partial, null);
      else assert.ok(partial !== null && partial.equals(all.subarray(consumed, cut)), `cut ${cut}`);
    }
    assert.equal(splitBatches(all).batches[0]!.buffer, all.buffer, 'views, not copies');
  });

  it('refuses impossible lengths and unknown magic bytes', () => {
    const bad = Buffer.from(batches[0]!);
    bad.writeInt32BE(-5, 8);
    assert.throws(() => splitBatches(bad), (err: unknown) => err instanceof RecordError && err.code === 'length_invalid');
    const short = Buffer.from(batches[0]!);
    short.writeInt32BE(30, 8); // under a v2 header
    assert.throws(() => splitBatches(short), (err: unknown) => err instanceof RecordError && err.code === 'length_invalid');
    const magic = Buffer.from(batches[0]!);
    magic.writeInt8(3, 16);
    assert.throws(() => splitBatches(magic), (err: unknown) => err instanceof RecordError && err.code === 'magic_unsupported');
  });
});

/** A legacy message (v0/v1) built from the layout. */
function legacyMessage(offset: bigint, magic: 0 | 1, attributes: number, timestamp: bigint, key: Buffer | null, value: Buffer | null): Buffer {
  const body = Buffer.concat([
    Buffer.from([magic, attributes]),
    magic === 1 ? (() => { const t = Buffer.alloc(8); t.writeBigInt64BE(timestamp); return t; })() : Buffer.alloc(0),
    lengthPrefixed(key), lengthPrefixed(value),
  ]);
  const head = Buffer.alloc(16);
  head.writeBigInt64BE(offset, 0);
  head.writeInt32BE(body.length + 4, 8);
  head.writeUInt32BE(zlib.crc32(body), 12);
  return Buffer.concat([head, body]);
}

function lengthPrefixed(bytes: Buffer | null): Buffer {
  const length = Buffer.alloc(4);
  length.writeInt32BE(bytes === null ? -1 : bytes.length);
  return bytes === null ? length : Buffer.concat([length, bytes]);
}

describe('legacy message sets (v0/v1)', () => {
  it('reads plain v0 and v1 messages and leaves out a trailing partial one', () => {
    const set = Buffer.concat([
      legacyMessage(5n, 0, 0, 0n, Buffer.from('k'), Buffer.from('v0')),
      legacyMessage(6n, 1, 0, 1234n, null, Buffer.from('v1')),
    ]);
    const expected = [
      { offset: 5n, magic: 0, attributes: 0, timestamp: null, key: Buffer.from('k'), value: Buffer.from('v0') },
      { offset: 6n, magic: 1, attributes: 0, timestamp: 1234n, key: null, value: Buffer.from('v1') },
    ];
    assert.deepEqual(decodeLegacyMessageSet(set), expected);
    assert.deepEqual(decodeLegacyMessageSet(set.subarray(0, set.length - 3)), expected.slice(0, 1));
    assert.equal(splitBatches(set).batches.length, 2);
  });

  for (const [codec, id] of [['gzip', 1], ['snappy', 2], ['lz4', 3]] as const) {
    it(`opens ${codec} wrappers: v1 relative offsets and log append time, v0 absolute offsets`, () => {
      const inner1 = Buffer.concat([0n, 1n, 2n].map((o) => legacyMessage(o, 1, 0, 100n + o, null, Buffer.from(`m${o}`))));
      const wrapper1 = legacyMessage(52n, 1, id | 0x08, 999n, null, compress(codec, inner1));
      assert.deepEqual(decodeLegacyMessageSet(wrapper1).map((m) => [m.offset, m.timestamp, m.value?.toString()]), [[50n, 999n, 'm0'], [51n, 999n, 'm1'], [52n, 999n, 'm2']]);
      const inner0 = Buffer.concat([70n, 71n].map((o) => legacyMessage(o, 0, 0, 0n, null, Buffer.from(`n${o}`))));
      const wrapper0 = legacyMessage(71n, 0, id, 0n, null, compress(codec, inner0));
      assert.deepEqual(decodeLegacyMessageSet(wrapper0).map((m) => [m.offset, m.value?.toString()]), [[70n, 'n70'], [71n, 'n71']]);
    });
  }

  it('reads an lz4 v0 wrapper whose frame header checksum was computed the old, wrong way', () => {
    const inner = legacyMessage(0n, 0, 0, 0n, null, Buffer.from('old'));
    const frame = compress('lz4', inner);
    frame[6] = (frame[6]! + 1) & 0xff;
    assert.equal(decodeLegacyMessageSet(legacyMessage(0n, 0, 3, 0n, null, frame))[0]!.value?.toString(), 'old');
    assert.throws(() => decompress('lz4', frame), (err: unknown) => err instanceof RecordError && err.code === 'compression_invalid');
  });

  it('checks the CRC-32 of each message', () => {
    const message = legacyMessage(0n, 1, 0, 1n, null, Buffer.from('x'));
    message[message.length - 1]! ^= 1;
    assert.throws(() => decodeLegacyMessageSet(message), (err: unknown) => err instanceof RecordError && err.code === 'crc_mismatch');
  });
});

describe('garbage in: only RecordError, never a hang (seeded fuzz)', () => {
  const seeds = [
    ...CODECS.map((compression) => encodeBatch(header({ compression }), Array.from({ length: 20 }, (_, j) => record(j, { headers: [{ key: 'h', value: Buffer.from([j]) }] })))),
    legacyMessage(3n, 1, 1, 5n, null, compress('gzip', legacyMessage(0n, 1, 0, 5n, null, Buffer.from('x')))),
    legacyMessage(3n, 1, 3, 5n, null, compress('lz4', legacyMessage(0n, 1, 0, 5n, null, Buffer.from('y')))),
  ];

  function expectOnlyRecordError(fn: () => unknown, what: string): void {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof RecordError)) throw new Error(`${what}: threw ${(err as Error).name}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Re-stamps a v2 batch's CRC so mutations reach the record and codec parsers. */
  function restamp(bytes: Buffer): void {
    if (bytes.length >= 61 && bytes[16] === 2) bytes.writeUInt32BE(crc32c(bytes.subarray(21)), 17);
  }

  it('mutated real batches, random bytes and random codec inputs', () => {
    const random = rng(0xc0ffee);
    const started = Date.now();
    for (let round = 0; round < 3000; round++) {
      const seed = seeds[round % seeds.length]!;
      const bytes = Buffer.from(seed);
      const flips = 1 + Math.floor(random() * 8);
      for (let f = 0; f < flips; f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      const cut = random() < 0.2 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes;
      if (random() < 0.7) restamp(cut);
      expectOnlyRecordError(() => splitBatches(cut), `splitBatches round ${round}`);
      expectOnlyRecordError(() => readBatchHeader(cut), `readBatchHeader round ${round}`);
      expectOnlyRecordError(() => decodeBatch(cut), `decodeBatch round ${round}`);
      expectOnlyRecordError(() => decodeLegacyMessageSet(cut), `decodeLegacyMessageSet round ${round}`);
      const noise = Buffer.from(Array.from({ length: Math.floor(random() * 200) }, () => Math.floor(random() * 256)));
      for (const codec of CODECS) expectOnlyRecordError(() => decompress(codec, noise), `decompress ${codec} round ${round}`);
      // Noise behind a valid codec header reaches the block decoders.
      expectOnlyRecordError(() => decompress('lz4', Buffer.concat([compress('lz4', Buffer.alloc(0)).subarray(0, 7), noise])), `lz4 blocks round ${round}`);
      expectOnlyRecordError(() => decompress('snappy', Buffer.concat([compress('snappy', Buffer.alloc(0)), noise])), `snappy chunks round ${round}`);
    }
    assert.ok(Date.now() - started < 60_000);
  });
});
