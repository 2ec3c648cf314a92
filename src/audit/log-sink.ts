/**
 * @module audit/log-sink
 * The first audit sink: each record is one JSON log line on the `audit` channel of the structured log, so an
 * operator's log pipeline already collects it. Hash-chained files and other sinks come with the audit work.
 */
import type { Logger } from 'pino';
import type { AuditRecord, AuditSink } from './record.ts';

export function createLogAuditSink(logger: Logger): AuditSink {
  const audit = logger.child({ channel: 'audit' });
  return { write: (record: AuditRecord) => audit.info({ audit: record }, record.event) };
}
