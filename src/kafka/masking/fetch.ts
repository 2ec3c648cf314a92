/**
 * @module kafka/masking/fetch
 * Masks the records of a Fetch response before a consumer sees them: per topic, the masking rules that apply to
 * the principal; per record, the value (and, where a rule says so, the key and named headers) as JSON or text.
 *
 * What is never forwarded unmasked, for a topic with rules:
 * - a partial trailing batch (a Fetch response may end inside one): dropped; the consumer fetches it again from its
 *   next offset and then gets it whole, masked;
 * - a legacy (magic 0/1) message set: it cannot be re-encoded here, so the partition is answered with an error
 *   instead (as for `onUndecodable: fail`).
 * Control batches (transaction markers) carry no payload and pass untouched. What no rule changes keeps its exact
 * bytes: an untouched batch is not re-encoded, an untouched response is the broker's frame.
 *
 * A changed batch is re-encoded with its own compression codec; the record batch encoder recomputes lengths and the
 * CRC-32C, so clients that check CRCs (kafkajs, Java with check.crcs=true) accept it.
 */
import type { NamedMaskPlan } from '../../policy/engine.ts';
import type { MaskContext } from '../../masking/strategies.ts';
import { REDACTED } from '../../masking/strategies.ts';
import { MaskingFailure, maskJsonUnit, type MaskTally } from '../../masking/units.ts';
import { API_KEY } from '../protocol/api-keys.ts';
import { KafkaError } from '../protocol/error-codes.ts';
import { decodeResponse, encodeResponse } from '../protocol/messages.ts';
import { decodeBatch, encodeBatch, readBatchHeader, splitBatches, type KafkaRecord, type RecordHeader } from '../protocol/records/index.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const REDACTED_BYTES = Buffer.from(REDACTED, 'utf8');

export interface FetchMaskingResult {
  /** The frame for the client: the broker's own when nothing changed. */
  readonly frame: Buffer;
  /** Records whose key, value or headers changed. */
  readonly maskedRecords: number;
  /** Partitions answered with an error instead of data (a rule's `fail`, a legacy message set). */
  readonly failedPartitions: ReadonlyArray<{ readonly topic: string; readonly partition: number; readonly reason: string }>;
  /** Partial trailing batches dropped. */
  readonly droppedPartialBatches: number;
  readonly tally: Readonly<MaskTally>;
}

/**
 * Masks one payload (a value, a key, a header value) with every plan: JSON documents by field paths and detectors,
 * other UTF-8 text by detectors, bytes that are not UTF-8 by the rules' `onUndecodable`. Returns the same Buffer
 * when nothing changed. Throws MaskingFailure for a rule whose `onUndecodable` is `fail`.
 */
export function maskPayload(payload: Buffer, plans: readonly NamedMaskPlan[], ctx: MaskContext, tally: MaskTally): Buffer {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    // Binary: no detector can read it. The strictest rule decides.
    if (plans.some((p) => p.onUndecodable === 'fail')) throw new MaskingFailure(`rule ${plans.find((p) => p.onUndecodable === 'fail')!.rule}: a record is not UTF-8 text`);
    if (plans.some((p) => p.onUndecodable === 'redact')) return REDACTED_BYTES;
    return payload;
  }
  const masked = maskJsonUnit(text, plans, ctx, tally);
  return masked === text ? payload : Buffer.from(masked, 'utf8');
}

/** A topic's plans sorted once by what they apply to, so no record pays for the sorting. */
interface TopicPlans {
  readonly values: readonly NamedMaskPlan[];
  readonly keys: readonly NamedMaskPlan[];
  /** Header name → its plans. */
  readonly headers: ReadonlyMap<string, readonly NamedMaskPlan[]>;
}

/**
 * Keys and header values are often plain strings (an id, an address): for them a rule's `onUndecodable` does not
 * apply and what is not JSON is read as text, detectors and all.
 */
const asText = (plans: readonly NamedMaskPlan[]): NamedMaskPlan[] => plans.map((p) => (p.onUndecodable === 'pass' ? p : { ...p, onUndecodable: 'pass' }));

function topicPlans(plans: readonly NamedMaskPlan[]): TopicPlans {
  const headers = new Map<string, readonly NamedMaskPlan[]>();
  for (const name of new Set(plans.flatMap((p) => p.headers))) headers.set(name, asText(plans.filter((p) => p.headers.includes(name))));
  return { values: plans, keys: asText(plans.filter((p) => p.keys)), headers };
}

function maskRecord(record: KafkaRecord, plans: TopicPlans, ctx: MaskContext, tally: MaskTally): KafkaRecord {
  const value = record.value === null ? null : maskPayload(record.value, plans.values, ctx, tally);
  const key = record.key === null || plans.keys.length === 0 ? record.key : maskPayload(record.key, plans.keys, ctx, tally);
  let headers: readonly RecordHeader[] = record.headers;
  if (record.headers.length > 0 && plans.headers.size > 0) {
    let headersChanged = false;
    const next = record.headers.map((header) => {
      const headerPlans = plans.headers.get(header.key);
      if (header.value === null || headerPlans === undefined) return header;
      const maskedValue = maskPayload(header.value, headerPlans, ctx, tally);
      if (maskedValue === header.value) return header;
      headersChanged = true;
      return { key: header.key, value: maskedValue };
    });
    if (headersChanged) headers = next;
  }
  if (value === record.value && key === record.key && headers === record.headers) return record;
  return { ...record, key, value, headers };
}

/**
 * Masks a Fetch response frame (size prefix included) of `apiVersion`. `plansFor(topic)` gives the masking rules of
 * the principal for that topic (empty: the topic passes untouched, not even decoded past its place in the frame).
 */
export function maskFetchResponse(
  frame: Buffer,
  apiVersion: number,
  plansFor: (topic: string) => readonly NamedMaskPlan[],
  ctx: MaskContext,
): FetchMaskingResult {
  const response = decodeResponse(frame, API_KEY.Fetch, apiVersion);
  const tally: MaskTally = {};
  const failedPartitions: Array<{ topic: string; partition: number; reason: string }> = [];
  let maskedRecords = 0;
  let droppedPartialBatches = 0;
  let changed = false;
  for (const topic of response.body.responses) {
    const rules = plansFor(topic.topic);
    if (rules.length === 0) continue;
    const plans = topicPlans(rules);
    for (const partition of topic.partitions) {
      const records = partition.records;
      if (records === null || records.length === 0) continue;
      const fail = (reason: string) => {
        failedPartitions.push({ topic: topic.topic, partition: partition.partitionIndex, reason });
        partition.errorCode = KafkaError.POLICY_VIOLATION;
        partition.records = Buffer.alloc(0);
        changed = true;
      };
      try {
        const { batches, partial } = splitBatches(records);
        const out: Buffer[] = [];
        let partitionChanged = false;
        for (const batch of batches) {
          const header = readBatchHeader(batch);
          if (header.magic < 2) throw new MaskingFailure('the broker returned a legacy (magic 0/1) message set, which tollgate cannot re-encode masked');
          if (header.isControl) {
            out.push(batch);
            continue;
          }
          const decoded = decodeBatch(batch);
          let batchChanged = false;
          const masked = decoded.records.map((record) => {
            const next = maskRecord(record, plans, ctx, tally);
            if (next !== record) {
              batchChanged = true;
              maskedRecords++;
            }
            return next;
          });
          if (batchChanged) {
            out.push(encodeBatch(decoded.header, masked));
            partitionChanged = true;
          } else out.push(batch);
        }
        if (partial !== null) {
          droppedPartialBatches++;
          partitionChanged = true;
        }
        if (partitionChanged) {
          partition.records = Buffer.concat(out);
          changed = true;
        }
      } catch (error) {
        if (error instanceof MaskingFailure) fail(error.message);
        else if (error instanceof Error && error.name === 'RecordError') fail(`unreadable record batch: ${error.message}`);
        else throw error;
      }
    }
  }
  return {
    frame: changed ? encodeResponse(response.header, API_KEY.Fetch, apiVersion, response.body) : frame,
    maskedRecords,
    failedPartitions,
    droppedPartialBatches,
    tally,
  };
}
