/**
 * Test doubles for the Kafka ext_proc handler: a fake gRPC duplex, an in-memory audit sink, a capturing logger and
 * Envoy's connection attributes as proto-loader decodes them.
 */
import { EventEmitter } from 'node:events';
import pino from 'pino';
import type { Logger } from 'pino';
import type { AuditRecord, AuditSink } from '../../src/audit/record.ts';
import type {
  NetworkProcessingRequest,
  NetworkProcessingResponse,
  NetworkProcessStream,
} from '../../src/kafka/service.ts';

/** A stand-in for grpc-js's ServerDuplexStream: feed it messages, read back what the handler wrote. */
export class FakeCall extends EventEmitter implements NetworkProcessStream {
  readonly written: NetworkProcessingResponse[] = [];
  ended = false;

  write(message: NetworkProcessingResponse): boolean {
    if (this.ended) throw new Error('write after end');
    this.written.push(message);
    return true;
  }

  end(): void {
    if (this.ended) throw new Error('end called twice');
    this.ended = true;
  }

  /** Delivers one ProcessingRequest, as grpc-js would; returns the replies it produced. */
  send(message: NetworkProcessingRequest): NetworkProcessingResponse[] {
    const before = this.written.length;
    this.emit('data', message);
    return this.written.slice(before);
  }

  read(data: Buffer, endOfStream = false): NetworkProcessingResponse[] {
    return this.send({ read_data: { data, end_of_stream: endOfStream }, write_data: null });
  }

  writeData(data: Buffer, endOfStream = false): NetworkProcessingResponse[] {
    return this.send({ read_data: null, write_data: { data, end_of_stream: endOfStream } });
  }
}

export class MemoryAudit implements AuditSink {
  readonly records: AuditRecord[] = [];
  write(record: AuditRecord): void {
    this.records.push(record);
  }
}

/** A pino logger at `level` whose lines are collected, parsed, in `lines`. */
export function captureLogger(level: pino.Level = 'debug'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** A Struct as proto-loader decodes `google.protobuf.Struct` (camelCase value kinds). */
export function connectionAttributes(facts: Record<string, string | number>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(facts)) {
    fields[key] =
      typeof value === 'string' ? { stringValue: value, kind: 'stringValue' } : { numberValue: value, kind: 'numberValue' };
  }
  return { 'envoy.filters.network.ext_proc': { fields } };
}
