/**
 * @module bench/lib/masking-engine
 * tollgate's Fetch masking step alone, in this process: `maskFetchResponse` (src/kafka/masking/fetch.ts) over a
 * prebuilt Fetch v12 response frame, one topic and partition holding `records` JSON payment documents
 * (bench/lib/payments.ts) in record batches of `recordsPerBatch`, per codec, next to baselines measured in the same
 * run on the same frame:
 *
 *   copy           Buffer.from(frame): one copy of the frame's bytes (compressed ones for a compressed codec)
 *   decode         decodeResponse + splitBatches + decodeBatch (decompression, record parsing)
 *   decode+encode  decode, then encodeBatch of every batch with its codec (compression, CRC-32C) and encodeResponse:
 *                  what masking does to a frame besides the masking itself
 *   json           JSON.parse + JSON.stringify of every record value (uncompressed values, no Kafka framing): the
 *                  plain-JavaScript cost of reading and writing the documents, for scale
 *   mask           maskFetchResponse with the bench's masking rule (card number kept to its last 4, email and card
 *                  detectors), plans looked up once as tollgate caches them per topic
 *
 * Throughput is MiB/s of record values (uncompressed, as Kafka's ConsumerPerformance counts them) whatever the
 * operation handles; each figure is the median of `slices` timed slices of at least `sliceMs` after one unmeasured
 * slice. Bounded: every slice also stops after MAX_ITERATIONS_PER_SLICE iterations.
 */
import { configSchema } from '../../src/config/schema.ts';
import type { Principal } from '../../src/core/principal.ts';
import { maskFetchResponse } from '../../src/kafka/masking/fetch.ts';
import { decodeResponse, encodeResponse } from '../../src/kafka/protocol/messages.ts';
import { decodeBatch, encodeBatch, splitBatches } from '../../src/kafka/protocol/records/index.ts';
import type { BatchHeader, Compression, KafkaRecord } from '../../src/kafka/protocol/records/index.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import type { NamedMaskPlan } from '../../src/policy/engine.ts';
import { checkMasked, MASK_SPEC, paymentJson } from './payments.ts';

const FETCH = 1;
const FETCH_VERSION = 12;
const TOPIC = 'payments';
const MAX_ITERATIONS_PER_SLICE = 100_000;

export const ENGINE_OPS = ['copy', 'decode', 'decode+encode', 'json', 'mask'] as const;
export type EngineOp = (typeof ENGINE_OPS)[number];

export interface EngineBenchOptions {
  readonly codecs: readonly Compression[];
  readonly records: number;
  readonly recordsPerBatch: number;
  readonly recordSize: number;
  readonly sliceMs: number;
  readonly slices: number;
}

export interface EngineCodecResult {
  readonly codec: Compression;
  readonly frameBytes: number;
  readonly valueBytes: number;
  readonly batches: number;
  /** Median MiB/s of record values, by operation. */
  readonly mibPerSec: Readonly<Record<EngineOp, number>>;
  /** Records the mask step changed in one frame (must be all of them). */
  readonly maskedRecords: number;
}

function batchHeader(compression: Compression, baseOffset: bigint, count: number): BatchHeader {
  return {
    baseOffset, batchLength: 0, partitionLeaderEpoch: 0, magic: 2, crc: 0, attributes: 0, compression, isTransactional: false,
    isControl: false, lastOffsetDelta: count - 1, baseTimestamp: 1_767_225_600_000n, maxTimestamp: 1_767_225_600_000n + BigInt(count - 1),
    producerId: -1n, producerEpoch: -1, baseSequence: -1, recordCount: 0,
  };
}

function fetchFrame(records: Buffer): Buffer {
  return encodeResponse({ correlationId: 7, taggedFields: [] }, FETCH, FETCH_VERSION, {
    throttleTimeMs: 0, errorCode: 0, sessionId: 0,
    responses: [{
      topic: TOPIC,
      partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 1_000_000n, lastStableOffset: 1_000_000n, logStartOffset: 0n, abortedTransactions: null, preferredReadReplica: -1, records }],
    }],
  });
}

function decodeAll(frame: Buffer): Array<{ partition: { records: Buffer | null }; batches: ReturnType<typeof decodeBatch>[] }> {
  const response = decodeResponse(frame, FETCH, FETCH_VERSION);
  const out = [];
  for (const topic of response.body.responses) {
    for (const partition of topic.partitions) {
      if (partition.records === null) continue;
      out.push({ partition, batches: splitBatches(partition.records).batches.map((b) => decodeBatch(b)) });
    }
  }
  return out;
}

function recode(frame: Buffer): Buffer {
  const response = decodeResponse(frame, FETCH, FETCH_VERSION);
  for (const topic of response.body.responses) {
    for (const partition of topic.partitions) {
      if (partition.records === null) continue;
      partition.records = Buffer.concat(splitBatches(partition.records).batches.map((b) => {
        const decoded = decodeBatch(b);
        return encodeBatch(decoded.header, decoded.records);
      }));
    }
  }
  return encodeResponse(response.header, FETCH, FETCH_VERSION, response.body);
}

/** Median MiB/s of `bytes` per call of `run`. */
function measure(run: () => unknown, bytes: number, sliceMs: number, slices: number): number {
  const rates: number[] = [];
  for (let s = -1; s < slices; s++) {
    const t0 = performance.now();
    let n = 0;
    let elapsed = 0;
    do {
      run();
      n++;
      elapsed = performance.now() - t0;
    } while (elapsed < sliceMs && n < MAX_ITERATIONS_PER_SLICE);
    if (s >= 0) rates.push((n * bytes) / (1024 * 1024) / (elapsed / 1000));
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)]!;
}

export function runEngineBench(o: EngineBenchOptions, progress: (line: string) => void = () => {}): EngineCodecResult[] {
  const principal: Principal = { subject: 'bench-masked', groups: [], issuer: 'https://bench.invalid', authenticatedBy: 'oidc' };
  const policy = compilePolicy(configSchema.parse({
    rules: [{ name: 'mask-payments', match: { subject: principal.subject, kafka: { topic: TOPIC } }, mask: MASK_SPEC }],
  }).rules);
  const plans: readonly NamedMaskPlan[] = policy.masks(principal, { kind: 'kafka', api: 'Fetch', operation: 'consume', topic: TOPIC });
  if (plans.length !== 1) throw new Error(`engine bench: expected the masking rule to apply, got ${plans.length} plans`);
  const plansFor = (topic: string): readonly NamedMaskPlan[] => (topic === TOPIC ? plans : []);

  const values = Array.from({ length: o.records }, (_, i) => Buffer.from(paymentJson(i, o.recordSize), 'utf8'));
  const valueBytes = values.reduce((sum, v) => sum + v.length, 0);
  const results: EngineCodecResult[] = [];
  for (const codec of o.codecs) {
    const batches: Buffer[] = [];
    for (let first = 0; first < values.length; first += o.recordsPerBatch) {
      const records: KafkaRecord[] = values.slice(first, first + o.recordsPerBatch).map((value, i) => ({
        attributes: 0, timestampDelta: BigInt(i), offsetDelta: i, key: null, value, headers: [],
      }));
      batches.push(encodeBatch(batchHeader(codec, BigInt(first), records.length), records));
    }
    const frame = fetchFrame(Buffer.concat(batches));

    // The steps do what they claim, once, before they are timed.
    const masked = maskFetchResponse(frame, FETCH_VERSION, plansFor, {});
    if (masked.maskedRecords !== o.records || masked.failedPartitions.length > 0 || masked.droppedPartialBatches > 0) {
      throw new Error(`engine bench ${codec}: masked ${masked.maskedRecords} of ${o.records} records, ${masked.failedPartitions.length} failed partitions, ${masked.droppedPartialBatches} dropped batches`);
    }
    const maskedValues = decodeAll(masked.frame).flatMap((p) => p.batches.flatMap((b) => b.records.map((r) => r.value!.toString('utf8'))));
    if (maskedValues.length !== o.records) throw new Error(`engine bench ${codec}: ${maskedValues.length} records after masking`);
    for (const v of maskedValues) {
      const problem = checkMasked(v);
      if (problem !== undefined) throw new Error(`engine bench ${codec}: a record is not masked: ${problem}`);
    }
    const recoded = decodeAll(recode(frame)).flatMap((p) => p.batches.flatMap((b) => b.records.map((r) => r.value!)));
    if (recoded.length !== o.records || recoded.some((v, i) => !v.equals(values[i]!))) throw new Error(`engine bench ${codec}: decode+encode changed the records`);
    const decodedBatches = decodeAll(frame)[0]!.batches;
    if (decodedBatches.some((b) => b.header.compression !== codec)) throw new Error(`engine bench ${codec}: batches are not ${codec}`);

    const ops: Record<EngineOp, () => unknown> = {
      'copy': () => Buffer.from(frame),
      'decode': () => decodeAll(frame),
      'decode+encode': () => recode(frame),
      'json': () => {
        let n = 0;
        for (const v of values) n += JSON.stringify(JSON.parse(v.toString('utf8'))).length;
        return n;
      },
      'mask': () => maskFetchResponse(frame, FETCH_VERSION, plansFor, {}),
    };
    const mibPerSec = {} as Record<EngineOp, number>;
    for (const op of ENGINE_OPS) mibPerSec[op] = measure(ops[op], valueBytes, o.sliceMs, o.slices);
    progress(`engine ${codec}: ${ENGINE_OPS.map((op) => `${op} ${mibPerSec[op].toFixed(1)}`).join(', ')} MiB/s`);
    results.push({ codec, frameBytes: frame.length, valueBytes, batches: batches.length, mibPerSec, maskedRecords: masked.maskedRecords });
  }
  return results;
}
