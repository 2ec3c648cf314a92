/**
 * @module audit/pipeline
 * The `AuditSink` every adapter writes to: it stamps each record (audit/stamp.ts) and hands it to every configured
 * sink at once: stdout as a log line, the others (file, Kafka, webhook) into their own spool, serialized once.
 * `write` never waits for a sink. `refusal` says when a sink under `onFull: block` cannot take more, so that
 * adapters refuse traffic (fail closed) instead of letting it through unaudited.
 *
 * Sinks live as long as the process: a config reload does not rebuild them (server.ts tells the operator a changed
 * `audit` section takes effect at the next restart), since a sink swapped under traffic could fork the file's
 * chain or strand records in a spool nobody drains.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { AuditConfig, AuditSinkConfig } from '../config/schema.ts';
import { readCertificateFile, readSecret, SecretError } from '../config/secrets.ts';
import type { KafkaClientOptions } from '../kafka/client/connection.ts';
import { SpooledSink, type Delivery, type RecordResult, type SinkStatus } from './delivery.ts';
import { FileDelivery } from './file-sink.ts';
import { KafkaDelivery } from './kafka-sink.ts';
import { createLogAuditSink } from './log-sink.ts';
import type { AuditRecord, AuditSink } from './record.ts';
import { Spool } from './spool.ts';
import { createStamper, type Stamper } from './stamp.ts';
import { WebhookDelivery } from './webhook-sink.ts';

export const RECORD_RESULTS: readonly RecordResult[] = ['accepted', 'refused', 'dropped', 'delivered', 'rejected'];

/** What /metrics shows of one sink: running totals, and for spooled sinks their state. */
export interface SinkReport {
  readonly name: string;
  readonly type: AuditSinkConfig['type'];
  readonly counts: Readonly<Record<RecordResult, number>>;
  readonly status?: SinkStatus;
}

export interface AuditPipeline extends AuditSink {
  refusal(): string | undefined;
  reports(): SinkReport[];
  /** Stops delivering (the batches under way may finish until `deadline`, ms since the epoch); spools keep the rest. */
  close(deadline?: number): Promise<void>;
}

export interface AuditPipelineOptions {
  readonly logger: Logger;
  readonly stamp?: Stamper;
  /** Pauses between attempts of a sink that is down: from min, doubling, up to max. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** Each sink's name: given, or its type, or `<type>-<index>` when several sinks share a type. */
export function sinkNames(sinks: readonly AuditSinkConfig[]): string[] {
  const typeCount = new Map<string, number>();
  for (const s of sinks) typeCount.set(s.type, (typeCount.get(s.type) ?? 0) + 1);
  return sinks.map((s, i) => s.name ?? (typeCount.get(s.type) === 1 ? s.type : `${s.type}-${i}`));
}

/** The secrets and files a sink needs, read now: a missing one fails the start (and `tollgate validate`). */
export function readSinkSecrets(sink: AuditSinkConfig, name: string): { hmacKey?: Buffer; client?: KafkaClientOptions; headers?: Record<string, string> } {
  switch (sink.type) {
    case 'stdout': return {};
    case 'file': return sink.hmacKey === undefined ? {} : { hmacKey: Buffer.from(readSecret(sink.hmacKey, `audit sink ${name} hmacKey`)) };
    case 'kafka': {
      const readFile = (file: string, what: string) => {
        try {
          return readFileSync(file, 'utf8');
        } catch (err) {
          throw new SecretError(`audit sink ${name}: cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      };
      const tls = sink.tls === undefined ? undefined : {
        ...(sink.tls.caFile !== undefined && { ca: readCertificateFile(sink.tls.caFile, `audit sink ${name} tls.caFile`) }),
        ...(sink.tls.certFile !== undefined && { cert: readFile(sink.tls.certFile, 'tls.certFile') }),
        ...(sink.tls.keyFile !== undefined && { key: readFile(sink.tls.keyFile, 'tls.keyFile') }),
        ...(sink.tls.serverName !== undefined && { servername: sink.tls.serverName }),
      };
      return {
        client: {
          clientId: sink.clientId, timeoutMs: sink.timeout,
          ...(sink.sasl !== undefined && { sasl: { mechanism: sink.sasl.mechanism, username: sink.sasl.username, password: readSecret(sink.sasl.password, `audit sink ${name} sasl password`) } }),
          ...(tls !== undefined && { tls }),
        },
      };
    }
    case 'webhook': return {
      headers: Object.fromEntries(Object.entries(sink.headers).map(([header, value]) => [header, typeof value === 'string' ? value : readSecret(value, `audit sink ${name} header ${header}`)])),
    };
  }
}

function deliveryFor(sink: Exclude<AuditSinkConfig, { type: 'stdout' }>, name: string, logger: Logger): Delivery {
  const secrets = readSinkSecrets(sink, name);
  switch (sink.type) {
    case 'file': return new FileDelivery({ path: sink.path, fsync: sink.fsync, logger, ...(secrets.hmacKey !== undefined && { hmacKey: secrets.hmacKey }) });
    case 'kafka': return new KafkaDelivery({ bootstrap: typeof sink.bootstrap === 'string' ? [sink.bootstrap] : sink.bootstrap, topic: sink.topic, client: secrets.client!, logger });
    case 'webhook': return new WebhookDelivery({ url: sink.url, headers: secrets.headers ?? {}, maxRecords: sink.batch.maxRecords, maxWaitMs: sink.batch.maxWait, timeoutMs: sink.timeout });
  }
}

/** A record as one line of JSON; a bigint (none should reach a record) as its decimal string rather than a throw. */
function serialize(record: AuditRecord): string {
  try {
    return JSON.stringify(record);
  } catch {
    return JSON.stringify(record, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  }
}

const zeroCounts = (): Record<RecordResult, number> => ({ accepted: 0, refused: 0, dropped: 0, delivered: 0, rejected: 0 });

export function openAuditPipeline(config: AuditConfig, options: AuditPipelineOptions): AuditPipeline {
  const { logger } = options;
  const stamp = options.stamp ?? createStamper();
  const names = sinkNames(config.sinks);
  const logSinks: Array<{ readonly name: string; readonly sink: AuditSink; readonly counts: Record<RecordResult, number> }> = [];
  const spooled: Array<{ readonly name: string; readonly type: AuditSinkConfig['type']; readonly sink: SpooledSink; readonly counts: Record<RecordResult, number> }> = [];
  try {
    config.sinks.forEach((sinkConfig, i) => {
      const name = names[i]!;
      const counts = zeroCounts();
      if (sinkConfig.type === 'stdout') {
        logSinks.push({ name, sink: createLogAuditSink(logger), counts });
        return;
      }
      const sinkLogger = logger.child({ channel: 'audit-sink' });
      const delivery = deliveryFor(sinkConfig, name, sinkLogger);
      let spool: Spool;
      let writeErrorLogged = 0;
      try {
        spool = new Spool({
          dir: sinkConfig.spool.dir!, maxBytes: sinkConfig.spool.maxBytes, onFull: sinkConfig.spool.onFull,
          onWriteError: (err) => {
            // Once a minute at most: the spool retries every second.
            if (Date.now() - writeErrorLogged < 60_000) return;
            writeErrorLogged = Date.now();
            sinkLogger.error({ sink: name, dir: sinkConfig.spool.dir, err: err.message }, `audit sink ${name} cannot write its spool; records are held in memory (within spool.maxBytes) and written again every second`);
          },
        });
      } catch (err) {
        void delivery.close();
        throw err;
      }
      const sink = new SpooledSink({
        name, type: sinkConfig.type, spool, delivery, logger: sinkLogger,
        onRecords: (result, count) => { counts[result] += count; },
        ...(options.minBackoffMs !== undefined && { minBackoffMs: options.minBackoffMs }),
        ...(options.maxBackoffMs !== undefined && { maxBackoffMs: options.maxBackoffMs }),
      });
      spooled.push({ name, type: sinkConfig.type, sink, counts });
    });
  } catch (err) {
    for (const s of spooled) void s.sink.close(Date.now());
    throw err;
  }
  for (const s of spooled) s.sink.start();

  return {
    write(record) {
      const stamped = stamp(record);
      for (const s of logSinks) {
        s.sink.write(stamped);
        s.counts.delivered++;
      }
      if (spooled.length === 0) return;
      const line = serialize(stamped);
      for (const s of spooled) s.sink.write(line);
    },
    refusal() {
      for (const s of spooled) {
        const reason = s.sink.refusal();
        if (reason !== undefined) return reason;
      }
      return undefined;
    },
    reports() {
      return [
        ...logSinks.map((s) => ({ name: s.name, type: 'stdout' as const, counts: { ...s.counts } })),
        ...spooled.map((s) => ({ name: s.name, type: s.type, counts: { ...s.counts }, status: s.sink.status() })),
      ];
    },
    async close(deadline = Date.now() + 5_000) {
      await Promise.all(spooled.map((s) => s.sink.close(deadline)));
    },
  };
}
