// Types for the two plain-JavaScript compression packages (neither ships its own); only what compression.ts uses.

declare module 'snappyjs' {
  export function compress(uncompressed: Buffer): Buffer;
}

declare module 'lz4js' {
  /** Compresses src[sIndex, sIndex+sLength) as one LZ4 block into dst from 0; returns its size, 0 when incompressible. */
  export function compressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: Uint32Array): number;
  export function compressBound(n: number): number;
}

declare module 'lz4js/xxh32.js' {
  /** xxHash32 of src[index, index+len) with `seed`, unsigned. */
  export function hash(seed: number, src: Uint8Array, index: number, len: number): number;
}
