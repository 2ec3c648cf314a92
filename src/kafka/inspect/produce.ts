/**
 * @module kafka/inspect/produce
 * Publish inspection of a Produce request: every record of every partition whose topic has `reject` rules is
 * checked (src/policy/reject.ts); a partition with a refused record is taken out of the request, so nothing
 * of it is written, and answered with INVALID_RECORD naming the batch and the reason (Produce v8+ carries record
 * errors and an error message) or POLICY_VIOLATION before v8. Other partitions go to the broker as usual, as the
 * broker itself treats a partition with an invalid record.
 */
import { rejectReason, shadowRejectReason, type RejectPlan } from '../../policy/reject.ts';
import { API_KEY } from '../protocol/api-keys.ts';
import { KafkaError } from '../protocol/error-codes.ts';
import { decodeResponse, encodeResponse } from '../protocol/messages.ts';
import { ProduceResponseSchema } from '../protocol/generated/index.ts';
import type { ProduceRequest, ProduceResponse, ProduceResponsePartitionProduceResponse } from '../protocol/generated/index.ts';
import { blank } from '../authorize/plan.ts';
import { decodeBatch, splitBatches, RecordError } from '../protocol/records/index.ts';

const RECORD_ERRORS_FROM = 8;

export interface Rejection {
  readonly topic: string;
  readonly partition: number;
  /** The batch of the partition's records that holds the first refused record. */
  readonly batchIndex: number;
  readonly reason: string;
  /** Found by a shadow rule: audited, not refused. */
  readonly shadow?: true;
}

/**
 * The partitions of `body` that `plansFor(topic)` refuses, with why. Unreadable record bytes are refused too.
 * Shadow rules' findings come back flagged `shadow` (one per partition, when no enforcing rule refuses it).
 */
export function inspectProduce(body: ProduceRequest, plansFor: (topic: string) => readonly RejectPlan[]): Rejection[] {
  const rejections: Rejection[] = [];
  for (const topic of body.topicData) {
    const plans = plansFor(topic.name);
    if (plans.length === 0) continue;
    const enforcing = plans.some((p) => !p.shadow);
    const shadowing = plans.some((p) => p.shadow);
    for (const partition of topic.partitionData) {
      if (partition.records === null || partition.records.length === 0) continue;
      const reject = (batchIndex: number, reason: string) => rejections.push({ topic: topic.name, partition: partition.index, batchIndex, reason });
      try {
        const { batches, partial } = splitBatches(partition.records);
        if (partial !== null) {
          reject(batches.length, 'the records end inside a batch');
          continue;
        }
        let refused = false;
        let shadowed: Rejection | undefined;
        for (let b = 0; b < batches.length && !refused; b++) {
          const batch = decodeBatch(batches[b]!);
          if (batch.header.isControl) continue;
          for (const record of batch.records) {
            const reason = enforcing ? rejectReason(record, plans) : undefined;
            if (reason !== undefined) {
              reject(b, reason);
              refused = true;
              break;
            }
            if (shadowed === undefined && shadowing) {
              const would = shadowRejectReason(record, plans);
              if (would !== undefined) shadowed = { topic: topic.name, partition: partition.index, batchIndex: b, reason: would, shadow: true };
            }
          }
        }
        if (!refused && shadowed !== undefined) rejections.push(shadowed);
      } catch (error) {
        if (!(error instanceof RecordError)) throw error;
        reject(0, `unreadable records: ${error.message}`);
      }
    }
  }
  return rejections;
}

const key = (topic: string, partition: number) => `${topic}\0${partition}`;

/** `body` without the rejected partitions (and without topics left with none). */
export function withoutRejected(body: ProduceRequest, rejections: readonly Rejection[]): ProduceRequest {
  const out = new Set(rejections.map((r) => key(r.topic, r.partition)));
  const topicData = body.topicData
    .map((topic) => ({ ...topic, partitionData: topic.partitionData.filter((p) => !out.has(key(topic.name, p.index))) }))
    .filter((topic) => topic.partitionData.length > 0);
  return { ...body, topicData };
}

function rejectionEntry(rejection: Rejection, version: number): ProduceResponsePartitionProduceResponse {
  const withRecordErrors = version >= RECORD_ERRORS_FROM;
  return {
    ...blank<ProduceResponsePartitionProduceResponse>(ProduceResponseSchema, 'responses.partitionResponses'),
    index: rejection.partition,
    errorCode: withRecordErrors ? KafkaError.INVALID_RECORD : KafkaError.POLICY_VIOLATION,
    baseOffset: -1n,
    logAppendTimeMs: -1n,
    logStartOffset: -1n,
    recordErrors: withRecordErrors ? [{ batchIndex: rejection.batchIndex, batchIndexErrorMessage: rejection.reason }] : [],
    errorMessage: withRecordErrors ? rejection.reason : null,
  };
}

/** Adds the rejected partitions' errors to a Produce response frame of `version` (topics kept in their order). */
export function addRejections(responseFrame: Buffer, version: number, rejections: readonly Rejection[]): Buffer {
  const response = decodeResponse(responseFrame, API_KEY.Produce, version);
  const body: ProduceResponse = response.body;
  for (const rejection of rejections) {
    let topic = body.responses.find((t) => t.name === rejection.topic);
    if (topic === undefined) {
      topic = { ...blank<ProduceResponse['responses'][number]>(ProduceResponseSchema, 'responses'), name: rejection.topic };
      body.responses.push(topic);
    }
    topic.partitionResponses.push(rejectionEntry(rejection, version));
  }
  return encodeResponse(response.header, API_KEY.Produce, version, body);
}

/** A Produce response with no partition at all, for the correlation id: the base `addRejections` fills. */
export function emptyProduceResponse(correlationId: number, version: number): Buffer {
  return encodeResponse({ correlationId, taggedFields: [] }, API_KEY.Produce, version, blank<ProduceResponse>(ProduceResponseSchema));
}
