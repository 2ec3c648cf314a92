/**
 * @module kafka/capture/produce
 * Session capture of a Produce: the records sent to the broker are captured when the request leaves (digests or
 * masked text, from views of the request's batches: nothing is copied, only compressed batches are decompressed),
 * and get their offsets when the broker answers: the partition's `base_offset` plus the record's place in the
 * partition's records (its batch's start plus its offset delta). A partition the broker answered with an error has
 * no offsets (`offset: null` and the error); acks=0 has no answer at all, so no offsets either.
 *
 * Control batches are not captured (clients do not produce them); transactional batches are: they are data.
 */
import type { TopicCapture } from '../../policy/capture.ts';
import type { MaskContext } from '../../masking/strategies.ts';
import { API_KEY } from '../protocol/api-keys.ts';
import { kafkaErrorName } from '../protocol/error-codes.ts';
import { FrameError } from '../protocol/errors.ts';
import { decodeResponse } from '../protocol/messages.ts';
import type { ProduceRequest } from '../protocol/generated/index.ts';
import { decodeBatch, readBatchHeader, RecordError, splitBatches } from '../protocol/records/index.ts';
import { CaptureCollector, type CaptureDetail } from './collector.ts';

/** The records of a Produce request by topic and partition: `readProduceRequest`'s view, or the decoder's output read alike. */
export interface ProduceRecords {
  readonly topics: ReadonlyArray<{
    readonly name: string | null;
    readonly partitions: ReadonlyArray<{ readonly index: number; readonly records: Buffer | null }>;
  }>;
}

/** The records of a decoded Produce request, read as `readProduceRequest` gives them. */
export function produceRecordsOf(body: ProduceRequest): ProduceRecords {
  return { topics: body.topicData.map((t) => ({ name: t.name, partitions: t.partitionData })) };
}

/** A Produce's capture, waiting for the broker's answer. */
export interface PendingProduceCapture {
  /**
   * The audit detail, once the broker answered with `response` (its Produce response frame, size prefix included,
   * of `apiVersion`), or without an answer (`undefined`: acks=0). Never throws: an unreadable answer leaves the
   * offsets null with the reason.
   */
  complete(response: Buffer | undefined, apiVersion: number): CaptureDetail | undefined;
}

const NO_ANSWER = 'acks=0: the broker sends no response, so no offsets';

interface Slot {
  /** Index in the collector. */
  readonly index: number;
  readonly topic: string;
  readonly partition: number;
  /** The record's place among the partition's records: base offset + this is its offset. */
  readonly relative: bigint;
}

/**
 * Captures the records of `request` whose topic has a capture (`captureFor`), or returns undefined when none has.
 * Records that cannot be read leave their partition in `unreadable`; the request is not affected.
 */
export function captureProduce(request: ProduceRecords, captureFor: (topic: string) => TopicCapture | undefined, ctx: MaskContext): PendingProduceCapture | undefined {
  const collector = new CaptureCollector(ctx);
  const slots: Slot[] = [];
  let captured = false;
  for (const topic of request.topics) {
    if (topic.name === null) continue;
    const capture = captureFor(topic.name);
    if (capture === undefined) continue;
    captured = true;
    for (const partition of topic.partitions) {
      if (partition.records === null || partition.records.length === 0) continue;
      try {
        const { batches, partial } = splitBatches(partition.records);
        let batchStart = 0n;
        for (const batch of batches) {
          const header = readBatchHeader(batch);
          const next = batchStart + BigInt(header.lastOffsetDelta) + 1n;
          if (header.isControl) {
            batchStart = next;
            continue;
          }
          if (!collector.hasRoom(capture)) {
            collector.skip(capture, header.recordCount);
            batchStart = next;
            continue;
          }
          for (const record of decodeBatch(batch).records) {
            const place = { topic: topic.name, partition: partition.index, offset: null, timestamp: header.baseTimestamp + record.timestampDelta };
            const index = collector.add(capture, place, record);
            if (index >= 0) slots.push({ index, topic: topic.name, partition: partition.index, relative: batchStart + BigInt(record.offsetDelta) });
          }
          batchStart = next;
        }
        if (partial !== null) collector.unreadable(capture, topic.name, partition.index, 'the records end inside a batch');
      } catch (error) {
        if (!(error instanceof RecordError)) throw error;
        collector.unreadable(capture, topic.name, partition.index, `unreadable records: ${error.message}`);
      }
    }
  }
  if (!captured) return undefined;
  return {
    complete(response, apiVersion) {
      if (response === undefined) {
        for (const slot of slots) collector.settle(slot.index, { error: NO_ANSWER });
        return collector.detail();
      }
      let answers: Map<string, { errorCode: number; errorMessage: string | null; baseOffset: bigint; logAppendTimeMs: bigint }>;
      try {
        answers = new Map();
        for (const t of decodeResponse(response, API_KEY.Produce, apiVersion).body.responses) {
          for (const p of t.partitionResponses) answers.set(key(t.name, p.index), p);
        }
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        for (const slot of slots) collector.settle(slot.index, { error: `unreadable Produce response: ${error.message}` });
        return collector.detail();
      }
      for (const slot of slots) {
        const answer = answers.get(key(slot.topic, slot.partition));
        if (answer === undefined) collector.settle(slot.index, { error: 'the response has no answer for the partition' });
        else if (answer.errorCode !== 0) {
          collector.settle(slot.index, { error: `${kafkaErrorName(answer.errorCode)}${answer.errorMessage ? `: ${answer.errorMessage}` : ''}` });
        } else if (answer.baseOffset < 0n) collector.settle(slot.index, { error: 'the response gives no base offset' });
        // A topic with message.timestamp.type=LogAppendTime: the broker's time replaces the producer's.
        else collector.settle(slot.index, { offset: answer.baseOffset + slot.relative }, answer.logAppendTimeMs >= 0n ? answer.logAppendTimeMs : undefined);
      }
      return collector.detail();
    },
  };
}

const key = (topic: string, partition: number) => `${topic}\0${partition}`;
