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
 *
 * The same pass shows the records as served to an observer (session capture, src/kafka/capture/fetch.ts), so a
 * masked batch is decompressed once for both; a topic only observed is decoded for the observer, never re-encoded.
 */
import type { NamedMaskPlan } from '../../policy/engine.ts';
import type { MaskContext } from '../../masking/strategies.ts';
import { MaskingFailure, maskPayload, type MaskTally } from '../../masking/units.ts';
import { API_KEY } from '../protocol/api-keys.ts';
import { KafkaError } from '../protocol/error-codes.ts';
import { decodeResponse, encodeResponse } from '../protocol/messages.ts';
import { decodeBatch, encodeBatch, readBatchHeader, RecordError, splitBatches, type BatchHeader, type KafkaRecord, type RecordHeader } from '../protocol/records/index.ts';


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

/** Sees the data records of a Fetch response as they are served: after masking; control batches left out. */
export interface FetchRecordsObserver {
  /** The observer of one topic's records; undefined: not wanted (a topic without masking rules is then not decoded). */
  topic(name: string): FetchTopicObserver | undefined;
}

export interface FetchTopicObserver {
  /** False when more records would only be counted: batches of topics without masking are then not decompressed. */
  wantsRecords(): boolean;
  /** One whole batch of a partition, as served. Only for partitions served as data (a failed one shows nothing). */
  batch(partition: number, header: BatchHeader, records: readonly KafkaRecord[]): void;
  /** `count` records of a batch served but not read (`wantsRecords` said no). */
  skipped(partition: number, count: number): void;
  /** A partition whose served records could not be read. */
  unreadable(partition: number, reason: string): void;
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
 * the principal for that topic (empty: the topic passes untouched, not even decoded past its place in the frame,
 * unless `observer` wants its records). `observer` sees every served data batch of the topics it wants.
 */
export function maskFetchResponse(
  frame: Buffer,
  apiVersion: number,
  plansFor: (topic: string) => readonly NamedMaskPlan[],
  ctx: MaskContext,
  observer?: FetchRecordsObserver,
): FetchMaskingResult {
  const response = decodeResponse(frame, API_KEY.Fetch, apiVersion);
  const tally: MaskTally = {};
  const failedPartitions: Array<{ topic: string; partition: number; reason: string }> = [];
  let maskedRecords = 0;
  let droppedPartialBatches = 0;
  let changed = false;
  for (const topic of response.body.responses) {
    const rules = plansFor(topic.topic);
    const watch = observer?.topic(topic.topic);
    if (rules.length === 0) {
      if (watch !== undefined) for (const partition of topic.partitions) observePartition(partition.partitionIndex, partition.records, watch);
      continue;
    }
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
        // Shown to the observer once the whole partition is served as data (a later batch may still fail it).
        const served: Array<readonly [BatchHeader, readonly KafkaRecord[]]> = [];
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
          if (watch !== undefined) served.push([decoded.header, masked]);
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
        if (watch !== undefined) for (const [batchHeader, batchRecords] of served) watch.batch(partition.partitionIndex, batchHeader, batchRecords);
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

/** Shows the observer the records of a partition served untouched: decoded only while it wants records. */
function observePartition(partition: number, records: Buffer | null, watch: FetchTopicObserver): void {
  if (records === null || records.length === 0) return;
  try {
    // A trailing partial batch is served as bytes but is no record to the client: it fetches it again, whole.
    for (const batch of splitBatches(records).batches) {
      const header = readBatchHeader(batch);
      if (header.isControl) continue;
      if (watch.wantsRecords()) watch.batch(partition, header, decodeBatch(batch).records);
      else watch.skipped(partition, header.recordCount);
    }
  } catch (error) {
    if (!(error instanceof RecordError)) throw error;
    watch.unreadable(partition, `unreadable record batch: ${error.message}`);
  }
}
