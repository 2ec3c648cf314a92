/**
 * Record batches and captures for the session capture tests: batches built with the batch encoder, captures
 * compiled from config rules as the server compiles them.
 */
import { createHash } from 'node:crypto';
import { configSchema } from '../../../src/config/schema.ts';
import { combineCaptures, type TopicCapture } from '../../../src/policy/capture.ts';
import { compilePolicy } from '../../../src/policy/engine.ts';
import type { Principal } from '../../../src/core/principal.ts';
import { ATTR_CONTROL, encodeBatch, type BatchHeader, type Compression, type KafkaRecord } from '../../../src/kafka/protocol/records/index.ts';

export const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

export const ann: Principal = { subject: 'ann', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };

/** The combined capture of `ann` for `operation` on `topic` under `rules` (config syntax). */
export function captureOf(rules: unknown[]): (operation: 'produce' | 'consume') => (topic: string) => TopicCapture | undefined {
  const policy = compilePolicy(configSchema.parse({ rules }).rules);
  return (operation) => (topic) => combineCaptures(policy.captures(ann, { kind: 'kafka', api: operation === 'produce' ? 'Produce' : 'Fetch', operation, topic }));
}

export function batchHeader(fields: Partial<BatchHeader> & { compression?: Compression } = {}): BatchHeader {
  const attributes = fields.attributes ?? 0;
  return {
    baseOffset: 0n, batchLength: 0, partitionLeaderEpoch: -1, magic: 2, crc: 0, attributes, compression: 'none',
    isTransactional: false, isControl: (attributes & ATTR_CONTROL) !== 0, lastOffsetDelta: 0,
    baseTimestamp: 1_700_000_000_000n, maxTimestamp: 1_700_000_000_000n, producerId: -1n, producerEpoch: -1, baseSequence: -1,
    recordCount: 0, ...fields,
  };
}

export const rec = (i: number, value: string | Buffer | null, key: string | Buffer | null = null): KafkaRecord => ({
  attributes: 0, timestampDelta: BigInt(i), offsetDelta: i,
  key: key === null ? null : Buffer.from(key), value: value === null ? null : Buffer.from(value), headers: [],
});

/** A batch of `records` (offset deltas 0..n-1) with `lastOffsetDelta` set as a producer sets it. */
export function batch(records: readonly KafkaRecord[], fields: Partial<BatchHeader> = {}): Buffer {
  return encodeBatch(batchHeader({ lastOffsetDelta: Math.max(0, records.length - 1), ...fields }), records);
}

export const payment = (i: number) => JSON.stringify({ id: i, card: { number: '4111111111111111' }, customer: { email: `ann.${i}@example.com` }, note: `call 4012888888881881 or mail billing+${i}@example.com` });
export const PLANTED = /4111111111111111|4012888888881881|@example\.com/;

/** `bytes` with the last byte flipped: a batch whose CRC-32C no longer matches (reading it fails). */
export function corrupted(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  out.writeUInt8(out.readUInt8(out.length - 1) ^ 0xff, out.length - 1);
  return out;
}
