/**
 * @module audit/kafka-sink
 * Records written to a Kafka topic by tollgate's idempotent producer (kafka/client/producer.ts), keyed by their
 * `session`: one session's records stay on one partition, in order. The record's JSON is the value; its time the
 * Kafka timestamp. A batch the runner offers again (audit/delivery.ts) is the same array, so it is sent again with
 * the producer id and sequences it was first given: a broker that wrote it before failing to answer keeps one copy.
 */
import type { Logger } from 'pino';
import { KafkaCluster } from '../kafka/client/cluster.ts';
import type { KafkaClientOptions } from '../kafka/client/connection.ts';
import { IdempotentProducer, type ProducerRecord } from '../kafka/client/producer.ts';
import type { Delivery } from './delivery.ts';
import type { SpoolEntry } from './spool.ts';

export interface KafkaDeliveryOptions {
  readonly bootstrap: readonly string[];
  readonly topic: string;
  readonly client: KafkaClientOptions;
  readonly logger: Logger;
}

/** Below a broker's default message.max.bytes (1 MiB), with room for the batch's own overhead. */
const MAX_BATCH_BYTES = 900 * 1024;

export class KafkaDelivery implements Delivery {
  readonly target: string;
  readonly maxRecords = 500;
  readonly maxBytes = MAX_BATCH_BYTES;
  readonly maxWaitMs = 0;
  readonly #cluster: KafkaCluster;
  readonly #producer: IdempotentProducer;
  #last: { readonly batch: readonly SpoolEntry[]; readonly records: readonly ProducerRecord[] } | undefined;

  constructor(options: KafkaDeliveryOptions) {
    this.target = `${options.topic}@${options.bootstrap.join(',')}`;
    this.#cluster = new KafkaCluster(options.bootstrap, options.client);
    this.#producer = new IdempotentProducer({ cluster: this.#cluster, topic: options.topic, timeoutMs: options.client.timeoutMs, logger: options.logger });
  }

  async deliver(batch: readonly SpoolEntry[]): Promise<{ rejected: number }> {
    if (this.#last?.batch !== batch) this.#last = { batch, records: batch.map(toProducerRecord) };
    const result = await this.#producer.send(batch, this.#last.records);
    this.#last = undefined;
    return result;
  }

  async close(): Promise<void> {
    this.#cluster.close();
  }
}

function toProducerRecord(entry: SpoolEntry): ProducerRecord {
  let session = 'unknown';
  let timestamp = Date.now();
  try {
    const record = JSON.parse(entry.line) as { session?: unknown; time?: unknown };
    if (typeof record.session === 'string') session = record.session;
    const time = typeof record.time === 'string' ? Date.parse(record.time) : NaN;
    if (!Number.isNaN(time)) timestamp = time;
  } catch { /* a line that is not JSON still goes, under key "unknown" */ }
  return { key: Buffer.from(session), value: Buffer.from(entry.line), timestamp };
}
