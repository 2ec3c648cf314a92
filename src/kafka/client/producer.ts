/**
 * @module kafka/client/producer
 * An idempotent producer for one topic, as Kafka defines one (KIP-98): a producer id and epoch from
 * InitProducerId, and per partition a sequence number for every record, so the broker writes a batch once however
 * often it is sent. acks=all. One batch per partition is in flight at a time, so order holds per partition.
 *
 * The caller sends a set of records with `send(handle, records)` and, when that throws, calls it again with the
 * same handle and records until it resolves: the records keep the producer id, epoch and sequences they were first
 * given, so a batch the broker wrote before a connection broke, a request timed out or the broker restarted comes
 * back as a duplicate (DUPLICATE_SEQUENCE_NUMBER, or success with its first offsets), not as a second copy. A new
 * handle starts a new set.
 *
 * Exactly once within the life of this producer. If the broker forgot the producer (UNKNOWN_PRODUCER_ID,
 * OUT_OF_ORDER_SEQUENCE_NUMBER: its state expired or was lost) a new producer id is taken and the unconfirmed
 * records are sent under it: a batch the broker had written then appears twice; a warning says so. After a restart
 * of tollgate the producer id is new, and records that were sent but not confirmed are sent again (readers
 * de-duplicate by record id).
 *
 * A record the broker refuses as too large (or invalid) is split off and, alone, given up on: counted as rejected,
 * and the partition's later records renumbered so their sequences stay gapless.
 */
import type { Logger } from 'pino';
import { API_KEY } from '../protocol/api-keys.ts';
import { KafkaError, kafkaErrorName } from '../protocol/error-codes.ts';
import { encodeBatch, type KafkaRecord } from '../protocol/records/index.ts';
import type { KafkaCluster } from './cluster.ts';
import { KafkaClientError } from './connection.ts';
import { partitionForKey } from './murmur2.ts';

export interface ProducerRecord {
  readonly key: Buffer;
  readonly value: Buffer;
  /** ms since the epoch. */
  readonly timestamp: number;
}

interface SubBatch {
  readonly records: readonly ProducerRecord[];
  baseSequence: number;
}

interface PartitionPart {
  readonly partition: number;
  /** Sent one after another; the head is the one in flight. */
  readonly queue: SubBatch[];
  rejected: number;
}

interface InFlight {
  readonly handle: object;
  readonly parts: PartitionPart[];
}

/** Answers after which metadata is fetched again and the batch retried. */
const RETRIABLE: ReadonlySet<number> = new Set([
  KafkaError.NOT_LEADER_OR_FOLLOWER, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PARTITION,
  KafkaError.FENCED_LEADER_EPOCH, KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.NOT_ENOUGH_REPLICAS,
  KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND, KafkaError.REQUEST_TIMED_OUT, KafkaError.NETWORK_EXCEPTION,
  KafkaError.KAFKA_STORAGE_ERROR, KafkaError.UNKNOWN_SERVER_ERROR,
]);
/** Answers that mean the broker no longer knows this producer's sequences. */
const PRODUCER_LOST: ReadonlySet<number> = new Set([
  KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, KafkaError.UNKNOWN_PRODUCER_ID, KafkaError.INVALID_PRODUCER_EPOCH,
]);
/** Answers about the records themselves: a batch is split, a single record given up on. */
const RECORD_REFUSED: ReadonlySet<number> = new Set([
  KafkaError.MESSAGE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_RECORD, KafkaError.CORRUPT_MESSAGE,
]);

const MAX_SEQUENCE = 0x7fffffff;

export interface IdempotentProducerOptions {
  readonly cluster: KafkaCluster;
  readonly topic: string;
  readonly timeoutMs: number;
  readonly logger?: Logger;
}

export class IdempotentProducer {
  readonly topic: string;
  readonly #cluster: KafkaCluster;
  readonly #timeoutMs: number;
  readonly #logger: Logger | undefined;
  #producer: { id: bigint; epoch: number } | undefined;
  readonly #sequences = new Map<number, number>();
  #inFlight: InFlight | undefined;

  constructor(options: IdempotentProducerOptions) {
    this.#cluster = options.cluster;
    this.topic = options.topic;
    this.#timeoutMs = options.timeoutMs;
    this.#logger = options.logger;
  }

  /** The producer id and epoch in use (after the first send). */
  get producer(): { readonly id: bigint; readonly epoch: number } | undefined {
    return this.#producer;
  }

  /**
   * Writes `records` (each to the partition of its key, in order per partition). Resolves once every partition's
   * records are acknowledged by all in-sync replicas, with how many the broker refused for good; throws otherwise,
   * and is then called again with the same `handle` and records.
   */
  async send(handle: object, records: readonly ProducerRecord[]): Promise<{ rejected: number }> {
    if (this.#inFlight?.handle !== handle) {
      if (this.#inFlight !== undefined && this.#inFlight.parts.some((p) => p.queue.length > 0)) {
        // Records the caller gave up on may or may not have been written; the next ones must not depend on them.
        this.#logger?.warn('audit producer: a batch was abandoned unconfirmed; taking a new producer id');
        this.#resetProducer();
      }
      this.#inFlight = await this.#assign(handle, records);
    }
    const inFlight = this.#inFlight;
    for (;;) {
      const heads = inFlight.parts.filter((p) => p.queue.length > 0);
      if (heads.length === 0) break;
      await this.#sendHeads(heads);
    }
    this.#inFlight = undefined;
    return { rejected: inFlight.parts.reduce((sum, p) => sum + p.rejected, 0) };
  }

  async #assign(handle: object, records: readonly ProducerRecord[]): Promise<InFlight> {
    await this.#ensureProducer();
    const layout = await this.#cluster.topic(this.topic);
    const byPartition = new Map<number, ProducerRecord[]>();
    for (const record of records) {
      const partition = partitionForKey(record.key, layout.leaders.length);
      let list = byPartition.get(partition);
      if (list === undefined) byPartition.set(partition, list = []);
      list.push(record);
    }
    const parts: PartitionPart[] = [];
    for (const [partition, list] of byPartition) {
      parts.push({ partition, queue: [{ records: list, baseSequence: this.#take(partition, list.length) }], rejected: 0 });
    }
    return { handle, parts };
  }

  /** The next `count` sequences of `partition`; the first is returned. */
  #take(partition: number, count: number): number {
    const next = this.#sequences.get(partition) ?? 0;
    this.#sequences.set(partition, (next + count) % (MAX_SEQUENCE + 1));
    return next;
  }

  async #ensureProducer(): Promise<void> {
    if (this.#producer !== undefined) return;
    const connection = await this.#cluster.anyConnection();
    const version = connection.version(API_KEY.InitProducerId, 0, 4);
    const response = await connection.request(API_KEY.InitProducerId, version, {
      transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1,
    });
    if (response.errorCode !== KafkaError.NONE) {
      const message = `InitProducerId failed: ${kafkaErrorName(response.errorCode)}`;
      throw response.errorCode === KafkaError.CLUSTER_AUTHORIZATION_FAILED ? new Error(`${message}: the audit credentials need IdempotentWrite on the cluster`) : new KafkaClientError(message);
    }
    // Sequences were reset with the producer (`#resetProducer`), and may already be handed out to records waiting.
    this.#producer = { id: response.producerId, epoch: response.producerEpoch };
    this.#logger?.debug({ producerId: String(response.producerId), epoch: response.producerEpoch }, 'audit producer: producer id');
  }

  /** A new producer id at the next send; what is unconfirmed is numbered again from 0 under it. */
  #resetProducer(): void {
    this.#producer = undefined;
    this.#sequences.clear();
  }

  /** Sends the head sub-batch of each part, one Produce per leader; throws when any is not done. */
  async #sendHeads(parts: readonly PartitionPart[]): Promise<void> {
    await this.#ensureProducer();
    const producer = this.#producer!;
    const layout = await this.#cluster.topic(this.topic);
    const byLeader = new Map<number, PartitionPart[]>();
    for (const part of parts) {
      const leader = layout.leaders[part.partition] ?? -1;
      if (leader < 0) {
        this.#cluster.invalidate();
        throw new KafkaClientError(`partition ${this.topic}-${part.partition} has no leader`);
      }
      let list = byLeader.get(leader);
      if (list === undefined) byLeader.set(leader, list = []);
      list.push(part);
    }
    const failures: string[] = [];
    let lost = false;
    await Promise.all([...byLeader].map(async ([leader, leaderParts]) => {
      try {
        const connection = await this.#cluster.node(leader);
        const version = connection.version(API_KEY.Produce, 3, 12);
        const response = await connection.request(API_KEY.Produce, version, {
          transactionalId: null, acks: -1, timeoutMs: this.#timeoutMs,
          topicData: [{ name: this.topic, partitionData: leaderParts.map((p) => ({ index: p.partition, records: this.#encode(p.queue[0]!, producer) })) }],
        });
        const answers = new Map(response.responses.filter((t) => t.name === this.topic).flatMap((t) => t.partitionResponses.map((r) => [r.index, r] as const)));
        for (const part of leaderParts) {
          const answer = answers.get(part.partition);
          if (answer === undefined) {
            failures.push(`${this.topic}-${part.partition}: no answer in the Produce response`);
            continue;
          }
          const code = answer.errorCode;
          if (code === KafkaError.NONE || code === KafkaError.DUPLICATE_SEQUENCE_NUMBER) {
            part.queue.shift();
          } else if (RECORD_REFUSED.has(code)) {
            this.#refused(part, code, answer.errorMessage);
          } else if (PRODUCER_LOST.has(code)) {
            lost = true;
            failures.push(`${this.topic}-${part.partition}: ${kafkaErrorName(code)}`);
          } else {
            if (RETRIABLE.has(code)) this.#cluster.invalidate();
            failures.push(`${this.topic}-${part.partition}: ${kafkaErrorName(code)}${answer.errorMessage ? `: ${answer.errorMessage}` : ''}`);
          }
        }
      } catch (err) {
        this.#cluster.invalidate();
        failures.push((err as Error).message);
      }
    }));
    if (lost) this.#renumberAfterLoss();
    if (failures.length > 0) throw new KafkaClientError(`Produce to ${this.topic} failed: ${failures.join('; ')}`);
  }

  /** The broker refused the head sub-batch for its records: split it, or give up on a single record. */
  #refused(part: PartitionPart, code: number, message: string | null): void {
    const head = part.queue[0]!;
    if (head.records.length > 1) {
      part.queue.splice(0, 1, ...head.records.map((record, i) => ({ records: [record], baseSequence: (head.baseSequence + i) % (MAX_SEQUENCE + 1) })));
      return;
    }
    part.queue.shift();
    part.rejected++;
    this.#logger?.error({ partition: part.partition, error: kafkaErrorName(code), message }, 'audit producer: the broker refused a record for good');
    // Its sequence was never used: the records after it move down one, so the broker sees no gap.
    for (const later of part.queue) later.baseSequence = later.baseSequence === 0 ? MAX_SEQUENCE : later.baseSequence - 1;
    const next = this.#sequences.get(part.partition) ?? 0;
    this.#sequences.set(part.partition, next === 0 ? MAX_SEQUENCE : next - 1);
  }

  /** The broker lost this producer: a new id, and every unconfirmed sub-batch numbered again under it. */
  #renumberAfterLoss(): void {
    this.#logger?.warn({ producerId: String(this.#producer?.id) }, 'audit producer: the broker no longer knows this producer id; taking a new one (records of the batch in flight may be written twice)');
    this.#resetProducer();
    for (const part of this.#inFlight?.parts ?? []) {
      for (const sub of part.queue) sub.baseSequence = this.#take(part.partition, sub.records.length);
    }
  }

  #encode(sub: SubBatch, producer: { id: bigint; epoch: number }): Buffer {
    const base = sub.records[0]!.timestamp;
    let max = base;
    const records: KafkaRecord[] = sub.records.map((r, i) => {
      if (r.timestamp > max) max = r.timestamp;
      return { attributes: 0, timestampDelta: BigInt(r.timestamp - base), offsetDelta: i, key: r.key, value: r.value, headers: [] };
    });
    return encodeBatch({
      baseOffset: 0n, batchLength: 0, partitionLeaderEpoch: -1, magic: 2, crc: 0, attributes: 0, compression: 'none',
      isTransactional: false, isControl: false, lastOffsetDelta: records.length - 1, baseTimestamp: BigInt(base),
      maxTimestamp: BigInt(max), producerId: producer.id, producerEpoch: producer.epoch, baseSequence: sub.baseSequence,
      recordCount: records.length,
    }, records);
  }
}
