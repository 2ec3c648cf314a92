/**
 * @module kafka/capture/fetch
 * Session capture of a Fetch: the records as served to the client, after masking, so a digest proves what the
 * client saw. Offsets are the batch's base offset plus the record's offset delta; timestamps are the record's
 * create time, or the batch's max timestamp when the topic uses log append time (as Kafka's clients read them).
 *
 * It is the observer of `maskFetchResponse` (src/kafka/masking/fetch.ts): a masked batch is decompressed once for
 * both; a compressed batch of a topic that no masking rule touches is decompressed for the capture alone and served
 * byte for byte as the broker sent it. Control batches are not captured; transactional batches are (a read_committed
 * client drops the records of aborted transactions itself: they are captured as served).
 */
import type { TopicCapture } from '../../policy/capture.ts';
import type { MaskContext } from '../../masking/strategies.ts';
import type { FetchRecordsObserver, FetchTopicObserver } from '../masking/fetch.ts';
import { ATTR_TIMESTAMP_TYPE } from '../protocol/records/index.ts';
import { CaptureCollector, type CaptureDetail } from './collector.ts';

export class FetchCapture implements FetchRecordsObserver {
  readonly #captureFor: (topic: string) => TopicCapture | undefined;
  readonly #collector: CaptureCollector;

  /** `captureFor(topic)`: the capture of the principal's consumption of that topic, if any. */
  constructor(captureFor: (topic: string) => TopicCapture | undefined, ctx: MaskContext) {
    this.#captureFor = captureFor;
    this.#collector = new CaptureCollector(ctx);
  }

  topic(name: string): FetchTopicObserver | undefined {
    const capture = this.#captureFor(name);
    if (capture === undefined) return undefined;
    const collector = this.#collector;
    return {
      wantsRecords: () => collector.hasRoom(capture),
      batch(partition, header, records) {
        const logAppendTime = (header.attributes & ATTR_TIMESTAMP_TYPE) !== 0;
        try {
          for (const record of records) {
            collector.add(capture, {
              topic: name,
              partition,
              offset: header.baseOffset + BigInt(record.offsetDelta),
              timestamp: logAppendTime ? header.maxTimestamp : header.baseTimestamp + record.timestampDelta,
            }, record);
          }
        } catch (error) {
          // A mask that cannot run (the hash strategy without its key): the served response must not suffer for it.
          collector.unreadable(capture, name, partition, `capture failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      },
      skipped: (_partition, count) => collector.skip(capture, count),
      unreadable: (partition, reason) => collector.unreadable(capture, name, partition, reason),
    };
  }

  /** The audit detail; undefined when the response held no record of a captured topic. */
  detail(): CaptureDetail | undefined {
    return this.#collector.detail();
  }
}
