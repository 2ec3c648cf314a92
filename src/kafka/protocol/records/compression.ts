/**
 * @module kafka/protocol/records/compression
 * The five codecs of Kafka's batch attributes (bits 0–2: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd), each
 * decompressing what Kafka's Java clients and brokers write and compressing so that they read it back.
 *
 * - gzip: `node:zlib` (`gzipSync` / `gunzipSync`; several members are read as one stream, as Java's GZIPInputStream does).
 * - zstd: `node:zlib` (`zstdCompressSync` / `zstdDecompressSync`, Node 24).
 * - snappy: npm `snappyjs` compresses raw snappy blocks — plain JavaScript, no native build and no download at
 *   install (unlike `snappy` / `@napi-rs/snappy`, which load prebuilt binaries). Blocks are decompressed by our own
 *   bounded decoder (snappyjs's can loop forever on hostile input, see `snappyBlock`). Kafka's Java side writes the
 *   xerial snappy-java *framing* around those blocks: the 8-byte magic `\x82SNAPPY\x00`, int32 version and int32
 *   minimum compatible version (both 1), then chunks of [int32 big-endian length, snappy block]. We write that
 *   framing and read it, and also read a bare snappy block (what some non-Java clients send).
 * - lz4: the LZ4 *frame* format (magic 0x184D2204), as Kafka ≥ 0.10 writes it: version 01, independent blocks, no
 *   block or content checksum, 64 KiB blocks (BD 0x40), and a correct header checksum (HC). npm `lz4js` (plain
 *   JavaScript, no native build) provides the block compressor and xxHash32; the frame around it is written and
 *   read here because lz4js's own frame writer uses 4 MiB dependent blocks and its frame reader sizes its output
 *   from the input without a bound and does not check a block's offsets, so a hostile frame could make it allocate
 *   gigabytes. Our block decoder checks every length and offset. Magic 0 messages (Kafka < 0.10) computed HC over
 *   the magic too, so the header checksum is not checked for them (`legacyLz4`), as Kafka itself does.
 *
 * Every decompression is bounded by `maxBytes` (a decompression bomb fails with `decompressed_too_large`), and any
 * failure is a `RecordError`.
 */
import zlib from 'node:zlib';
import { compressBlock, compressBound } from 'lz4js';
import { hash as xxh32 } from 'lz4js/xxh32.js';
import { compress as snappyCompress } from 'snappyjs';
import { RecordError } from './errors.ts';

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** Codec by attribute id (attributes & 0x07). */
export const COMPRESSION_BY_ID: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** Attribute id (bits 0–2) of a codec. */
export function compressionId(compression: Compression): number {
  const id = COMPRESSION_BY_ID.indexOf(compression);
  if (id < 0) throw new RecordError('encode_invalid', `unknown compression ${JSON.stringify(compression)}: expected one of ${COMPRESSION_BY_ID.join(', ')}`, { field: 'compression' });
  return id;
}

/** Default bound on the bytes one decompression may produce. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

export interface DecompressOptions {
  /** At most this many bytes out; default DEFAULT_MAX_DECOMPRESSED_BYTES. */
  readonly maxBytes?: number;
  /** LZ4 written for a magic 0 message: its frame header checksum is known to be wrong, so it is not checked. */
  readonly legacyLz4?: boolean;
}

export function compress(compression: Compression, data: Buffer): Buffer {
  switch (compression) {
    case 'none': return data;
    case 'gzip': return zlib.gzipSync(data);
    case 'zstd': return zlib.zstdCompressSync(data);
    case 'snappy': return snappyFramedCompress(data);
    case 'lz4': return lz4FrameCompress(data);
    default: throw new RecordError('encode_invalid', `unknown compression ${JSON.stringify(compression)}`, { field: 'compression' });
  }
}

export function decompress(compression: Compression, data: Buffer, options: DecompressOptions = {}): Buffer {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
  switch (compression) {
    case 'none': return data;
    case 'gzip': return zlibDecompress('gzip', () => zlib.gunzipSync(data, { maxOutputLength: Math.max(1, maxBytes) }), maxBytes);
    case 'zstd': return zlibDecompress('zstd', () => zlib.zstdDecompressSync(data, { maxOutputLength: Math.max(1, maxBytes) }), maxBytes);
    case 'snappy': return snappyFramedDecompress(data, maxBytes);
    case 'lz4': return lz4FrameDecompress(data, maxBytes, options.legacyLz4 === true);
    default: throw new RecordError('compression_unsupported', `unknown compression ${JSON.stringify(compression)}`, { field: 'compression' });
  }
}

function zlibDecompress(codec: string, run: () => Buffer, maxBytes: number): Buffer {
  try {
    return run();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new RecordError('decompressed_too_large', `${codec} data decompresses to more than ${maxBytes} bytes`, { codec, maxBytes }, { cause: err });
    }
    throw new RecordError('compression_invalid', `${codec} data does not decompress: ${(err as Error).message}`, { codec }, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// snappy (xerial framing)
// ---------------------------------------------------------------------------------------------------------------

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;
/** Uncompressed bytes per snappy block in the frames we write (snappy-java's default block size). */
const SNAPPY_CHUNK_BYTES = 32 * 1024;

function snappyFramedCompress(data: Buffer): Buffer {
  const parts: Buffer[] = [XERIAL_MAGIC, Buffer.from([0, 0, 0, 1, 0, 0, 0, 1])];
  for (let i = 0; i < data.length; i += SNAPPY_CHUNK_BYTES) {
    const block = toBuffer(snappyCompress(data.subarray(i, Math.min(data.length, i + SNAPPY_CHUNK_BYTES))));
    const length = Buffer.allocUnsafe(4);
    length.writeInt32BE(block.length, 0);
    parts.push(length, block);
  }
  return Buffer.concat(parts);
}

/**
 * One raw snappy block: a varint uncompressed length, then literal and copy elements. Decoded here, with every
 * length and offset checked, rather than by snappyjs: its decoder reads a 4-byte literal length as a signed number
 * and then loops forever on some inputs.
 */
function snappyBlock(block: Buffer, maxBytes: number, offset: number): Buffer {
  const invalid = (what: string, at: number): RecordError =>
    new RecordError('compression_invalid', `snappy block at ${offset}: ${what} at ${offset + at}`, { codec: 'snappy', offset: offset + at });
  let pos = 0;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    if (shift > 28 || pos >= block.length) throw invalid('bad uncompressed length', pos);
    const b = block[pos++]!;
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  if (length > 0xffffffff) throw invalid('bad uncompressed length', 0);
  if (length > maxBytes) {
    throw new RecordError('decompressed_too_large', `snappy block at ${offset} decompresses to ${length} bytes, more than ${maxBytes}`, { codec: 'snappy', offset, length, maxBytes });
  }
  const out = Buffer.allocUnsafe(length);
  let outPos = 0;
  while (pos < block.length) {
    const tag = block[pos++]!;
    const type = tag & 0x03;
    if (type === 0) {
      let n = (tag >>> 2) + 1;
      if (n > 60) {
        const bytes = n - 60;
        if (block.length - pos < bytes) throw invalid('literal length cut short', pos);
        n = block.readUIntLE(pos, bytes) + 1;
        pos += bytes;
      }
      if (n > block.length - pos) throw invalid(`literal of ${n} bytes past the block end`, pos);
      if (n > length - outPos) throw invalid('literal past the uncompressed length', pos);
      block.copy(out, outPos, pos, pos + n);
      pos += n;
      outPos += n;
      continue;
    }
    let n: number;
    let distance: number;
    if (type === 1) {
      if (pos >= block.length) throw invalid('copy cut short', pos);
      n = ((tag >>> 2) & 0x07) + 4;
      distance = ((tag >>> 5) << 8) | block[pos++]!;
    } else {
      const bytes = type === 2 ? 2 : 4;
      if (block.length - pos < bytes) throw invalid('copy cut short', pos);
      n = (tag >>> 2) + 1;
      distance = block.readUIntLE(pos, bytes);
      pos += bytes;
    }
    if (distance === 0 || distance > outPos) throw invalid(`copy offset ${distance} before the start of the data`, pos);
    if (n > length - outPos) throw invalid('copy past the uncompressed length', pos);
    if (distance >= n) {
      out.copyWithin(outPos, outPos - distance, outPos - distance + n);
      outPos += n;
    } else {
      for (const stop = outPos + n; outPos < stop; outPos++) out[outPos] = out[outPos - distance]!;
    }
  }
  if (outPos !== length) throw invalid(`${outPos} bytes decompressed, the block announced ${length}`, pos);
  return out;
}

function snappyFramedDecompress(data: Buffer, maxBytes: number): Buffer {
  if (data.length < XERIAL_HEADER_BYTES || !data.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) {
    return snappyBlock(data, maxBytes, 0);
  }
  const parts: Buffer[] = [];
  let total = 0;
  let pos = XERIAL_HEADER_BYTES;
  while (pos < data.length) {
    if (data.length - pos < 4) throw new RecordError('compression_invalid', `snappy frame: chunk length at ${pos} cut short`, { codec: 'snappy', offset: pos });
    const length = data.readInt32BE(pos);
    if (length < 0 || length > data.length - pos - 4) {
      throw new RecordError('compression_invalid', `snappy frame: chunk length ${length} at ${pos}, expected 0..${data.length - pos - 4}`, { codec: 'snappy', offset: pos, length });
    }
    const block = snappyBlock(data.subarray(pos + 4, pos + 4 + length), maxBytes - total, pos + 4);
    total += block.length;
    parts.push(block);
    pos += 4 + length;
  }
  return Buffer.concat(parts, total);
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---------------------------------------------------------------------------------------------------------------
// lz4 (frame format)
// ---------------------------------------------------------------------------------------------------------------

const LZ4_MAGIC = 0x184d2204;
const LZ4_SKIPPABLE_MASK = 0xfffffff0;
const LZ4_SKIPPABLE_MAGIC = 0x184d2a50;
/** FLG: version 01, block independence. */
const LZ4_FLG_WRITTEN = 0x60;
/** BD: 64 KiB maximum block size, as Kafka writes. */
const LZ4_BD_WRITTEN = 0x40;
const LZ4_BLOCK_BYTES_WRITTEN = 64 * 1024;
const LZ4_UNCOMPRESSED_BIT = 0x80000000;
const LZ4_BLOCK_SIZES: Readonly<Record<number, number>> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024 };

function lz4FrameCompress(data: Buffer): Buffer {
  const blockCount = Math.ceil(data.length / LZ4_BLOCK_BYTES_WRITTEN);
  const out = Buffer.allocUnsafe(7 + blockCount * (4 + LZ4_BLOCK_BYTES_WRITTEN) + 4);
  out.writeUInt32LE(LZ4_MAGIC, 0);
  out[4] = LZ4_FLG_WRITTEN;
  out[5] = LZ4_BD_WRITTEN;
  out[6] = (xxh32(0, out, 4, 2) >>> 8) & 0xff;
  let pos = 7;
  const scratch = new Uint8Array(compressBound(LZ4_BLOCK_BYTES_WRITTEN));
  const hashTable = new Uint32Array(1 << 16);
  for (let i = 0; i < data.length; i += LZ4_BLOCK_BYTES_WRITTEN) {
    const block = data.subarray(i, Math.min(data.length, i + LZ4_BLOCK_BYTES_WRITTEN));
    hashTable.fill(0); // independent blocks: no match may reach into the previous block
    const size = compressBlock(block, scratch, 0, block.length, hashTable);
    if (size === 0 || size >= block.length) {
      out.writeUInt32LE((LZ4_UNCOMPRESSED_BIT | block.length) >>> 0, pos);
      block.copy(out, pos + 4);
      pos += 4 + block.length;
    } else {
      out.writeUInt32LE(size, pos);
      out.set(scratch.subarray(0, size), pos + 4);
      pos += 4 + size;
    }
  }
  out.writeUInt32LE(0, pos);
  return out.subarray(0, pos + 4);
}

function lz4Invalid(what: string, offset: number, extra: Record<string, number> = {}): RecordError {
  return new RecordError('compression_invalid', `lz4 frame: ${what} at ${offset}`, { codec: 'lz4', offset, ...extra });
}

/** A byte array that grows by doubling, never past `max`. */
class Output {
  bytes: Uint8Array;
  length = 0;
  readonly max: number;
  constructor(max: number, hint: number) {
    this.max = max;
    this.bytes = new Uint8Array(Math.max(16, Math.min(max, hint)));
  }
  reserve(n: number): void {
    const need = this.length + n;
    if (need > this.max) throw new RecordError('decompressed_too_large', `lz4 data decompresses to more than ${this.max} bytes`, { codec: 'lz4', maxBytes: this.max });
    if (need <= this.bytes.length) return;
    const grown = new Uint8Array(Math.min(this.max, Math.max(need, this.bytes.length * 2)));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
}

/** Decodes one LZ4 block (src[start, end)) onto `out`; matches may reach back to `historyStart`. */
function lz4DecodeBlock(src: Uint8Array, start: number, end: number, out: Output, historyStart: number, blockMax: number): void {
  const blockStart = out.length;
  let pos = start;
  for (;;) {
    if (pos >= end) throw lz4Invalid('block ends before its last literals', pos);
    const token = src[pos++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      for (;;) {
        if (pos >= end) throw lz4Invalid('literal length cut short', pos);
        const b = src[pos++]!;
        literals += b;
        if (b !== 255) break;
      }
    }
    if (literals > end - pos) throw lz4Invalid(`${literals} literals past the block end`, pos, { literals });
    if (out.length - blockStart + literals > blockMax) throw lz4Invalid(`block decompresses past its maximum size ${blockMax}`, pos, { blockMax });
    out.reserve(literals);
    out.bytes.set(src.subarray(pos, pos + literals), out.length);
    out.length += literals;
    pos += literals;
    if (pos === end) return; // the last sequence has literals only
    if (end - pos < 2) throw lz4Invalid('match offset cut short', pos);
    const offset = src[pos]! | (src[pos + 1]! << 8);
    pos += 2;
    if (offset === 0 || offset > out.length - historyStart) throw lz4Invalid(`match offset ${offset} before the start of the data`, pos - 2, { matchOffset: offset });
    let length = token & 0x0f;
    if (length === 15) {
      for (;;) {
        if (pos >= end) throw lz4Invalid('match length cut short', pos);
        const b = src[pos++]!;
        length += b;
        if (b !== 255) break;
      }
    }
    length += 4;
    if (out.length - blockStart + length > blockMax) throw lz4Invalid(`block decompresses past its maximum size ${blockMax}`, pos, { blockMax });
    out.reserve(length);
    const bytes = out.bytes;
    let from = out.length - offset;
    let to = out.length;
    if (offset >= length) {
      bytes.copyWithin(to, from, from + length);
    } else {
      for (const stop = to + length; to < stop;) bytes[to++] = bytes[from++]!;
    }
    out.length += length;
  }
}

function lz4FrameDecompress(data: Buffer, maxBytes: number, legacy: boolean): Buffer {
  const out = new Output(maxBytes, data.length * 4);
  let pos = 0;
  if (data.length === 0) throw lz4Invalid('empty input, expected a frame', 0);
  while (pos < data.length) {
    if (data.length - pos < 4) throw lz4Invalid('magic number cut short', pos);
    const magic = data.readUInt32LE(pos);
    if (((magic & LZ4_SKIPPABLE_MASK) >>> 0) === LZ4_SKIPPABLE_MAGIC) {
      if (data.length - pos < 8) throw lz4Invalid('skippable frame cut short', pos);
      const size = data.readUInt32LE(pos + 4);
      if (size > data.length - pos - 8) throw lz4Invalid('skippable frame cut short', pos);
      pos += 8 + size;
      continue;
    }
    if (magic !== LZ4_MAGIC) throw lz4Invalid(`magic number 0x${magic.toString(16)}, expected 0x${LZ4_MAGIC.toString(16)}`, pos);
    pos = lz4Frame(data, pos + 4, out, legacy);
  }
  return Buffer.from(out.bytes.buffer, out.bytes.byteOffset, out.length);
}

/** Reads one frame from its descriptor at `pos`; returns the position after it. */
function lz4Frame(data: Buffer, pos: number, out: Output, legacy: boolean): number {
  if (data.length - pos < 3) throw lz4Invalid('frame descriptor cut short', pos);
  const descriptorStart = pos;
  const flg = data[pos]!;
  const bd = data[pos + 1]!;
  if ((flg >>> 6) !== 1) throw lz4Invalid(`frame version ${flg >>> 6}, expected 1`, pos, { flg });
  if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0) throw lz4Invalid('reserved descriptor bits set', pos, { flg, bd });
  if ((flg & 0x01) !== 0) throw lz4Invalid('frame needs a dictionary', pos, { flg });
  const blockMax = LZ4_BLOCK_SIZES[(bd >>> 4) & 0x07];
  if (blockMax === undefined) throw lz4Invalid(`block maximum size id ${(bd >>> 4) & 0x07}, expected 4..7`, pos + 1, { bd });
  const independent = (flg & 0x20) !== 0;
  const blockChecksum = (flg & 0x10) !== 0;
  const contentSize = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  pos += 2;
  if (contentSize) {
    if (data.length - pos < 9) throw lz4Invalid('content size cut short', pos);
    pos += 8;
  }
  if (!legacy) {
    const hc = (xxh32(0, data, descriptorStart, pos - descriptorStart) >>> 8) & 0xff;
    if (data[pos] !== hc) throw lz4Invalid(`header checksum ${data[pos]}, expected ${hc}`, pos);
  }
  pos += 1;
  const frameStart = out.length;
  for (;;) {
    if (data.length - pos < 4) throw lz4Invalid('block size cut short', pos);
    const word = data.readUInt32LE(pos);
    pos += 4;
    if (word === 0) break;
    const size = (word & ~LZ4_UNCOMPRESSED_BIT) >>> 0;
    const stored = (word & LZ4_UNCOMPRESSED_BIT) !== 0;
    if (size > blockMax) throw lz4Invalid(`block of ${size} bytes, expected at most ${blockMax}`, pos - 4, { size, blockMax });
    if (size > data.length - pos - (blockChecksum ? 4 : 0)) throw lz4Invalid(`block of ${size} bytes cut short`, pos - 4, { size });
    if (blockChecksum) {
      const expected = data.readUInt32LE(pos + size);
      if (xxh32(0, data, pos, size) !== expected) throw lz4Invalid('block checksum mismatch', pos - 4);
    }
    if (stored) {
      out.reserve(size);
      out.bytes.set(data.subarray(pos, pos + size), out.length);
      out.length += size;
    } else {
      lz4DecodeBlock(data, pos, pos + size, out, independent ? out.length : frameStart, blockMax);
    }
    pos += size + (blockChecksum ? 4 : 0);
  }
  if (contentChecksum) {
    if (data.length - pos < 4) throw lz4Invalid('content checksum cut short', pos);
    const expected = data.readUInt32LE(pos);
    if (xxh32(0, out.bytes, frameStart, out.length - frameStart) !== expected) throw lz4Invalid('content checksum mismatch', pos);
    pos += 4;
  }
  return pos;
}
