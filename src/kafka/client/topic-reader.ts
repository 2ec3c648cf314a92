/**
 * @module kafka/client/topic-reader
 * Reads a whole topic once, as it stands: every partition from its earliest offset to the high watermark it had
 * when reading began (ListOffsets, then Fetch), record by record. For `tollgate audit replay --from-kafka`; not a
 * consumer group (no offsets are committed, nothing is waited for).
 */
import { API_KEY } from '../protocol/api-keys.ts';
import { KafkaError, kafkaErrorName } from '../protocol/error-codes.ts';
import { decodeBatch, splitBatches } from '../protocol/records/index.ts';
import type { KafkaCluster } from './cluster.ts';

export interface TopicRecord {
  readonly partition: number;
  readonly offset: bigint;
  readonly timestamp: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

const EARLIEST = -2n;
const LATEST = -1n;
const FETCH_MAX_BYTES = 16 * 1024 * 1024;

async function offsetOf(cluster: KafkaCluster, topic: string, partition: number, leader: number, timestamp: bigint): Promise<bigint> {
  const connection = await cluster.node(leader);
  const response = await connection.request(API_KEY.ListOffsets, connection.version(API_KEY.ListOffsets, 1, 7), {
    replicaId: -1, isolationLevel: 0, topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp }] }],
  });
  const answer = response.topics.find((t) => t.name === topic)?.partitions.find((p) => p.partitionIndex === partition);
  if (answer === undefined) throw new Error(`ListOffsets said nothing of ${topic}-${partition}`);
  if (answer.errorCode !== KafkaError.NONE) throw new Error(`ListOffsets of ${topic}-${partition} failed: ${kafkaErrorName(answer.errorCode)}`);
  return answer.offset;
}

export async function* readTopic(cluster: KafkaCluster, topic: string): AsyncGenerator<TopicRecord> {
  const layout = await cluster.topic(topic);
  for (let partition = 0; partition < layout.leaders.length; partition++) {
    const leader = layout.leaders[partition]!;
    if (leader < 0) throw new Error(`partition ${topic}-${partition} has no leader`);
    let next = await offsetOf(cluster, topic, partition, leader, EARLIEST);
    const end = await offsetOf(cluster, topic, partition, leader, LATEST);
    const connection = await cluster.node(leader);
    const version = connection.version(API_KEY.Fetch, 4, 12);
    while (next < end) {
      const response = await connection.request(API_KEY.Fetch, version, {
        replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: FETCH_MAX_BYTES, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
        topics: [{ topic, partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: next, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: FETCH_MAX_BYTES }] }],
        forgottenTopicsData: [], rackId: '',
      });
      if (response.errorCode !== KafkaError.NONE) throw new Error(`Fetch of ${topic} failed: ${kafkaErrorName(response.errorCode)}`);
      const answer = response.responses.find((t) => t.topic === topic)?.partitions.find((p) => p.partitionIndex === partition);
      if (answer === undefined) throw new Error(`Fetch said nothing of ${topic}-${partition}`);
      if (answer.errorCode !== KafkaError.NONE) throw new Error(`Fetch of ${topic}-${partition} at offset ${next} failed: ${kafkaErrorName(answer.errorCode)}`);
      const before = next;
      for (const batch of splitBatches(answer.records ?? Buffer.alloc(0)).batches) {
        const { header, records } = decodeBatch(batch);
        // A control batch (a transaction marker) holds no records of the topic but takes offsets.
        if (!header.isControl) {
          for (const record of records) {
            const offset = header.baseOffset + BigInt(record.offsetDelta);
            if (offset < next || offset >= end) continue;
            yield { partition, offset, timestamp: header.baseTimestamp + record.timestampDelta, key: record.key, value: record.value };
          }
        }
        const after = header.baseOffset + BigInt(header.lastOffsetDelta) + 1n;
        if (after > next) next = after;
      }
      if (next === before) throw new Error(`Fetch of ${topic}-${partition} at offset ${next} returned nothing before offset ${end}`);
    }
  }
}
