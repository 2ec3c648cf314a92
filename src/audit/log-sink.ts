/**
 * @module audit/log-sink
 * The stdout sink: each record is one JSON log line on the `audit` channel of tollgate's structured log, so an
 * operator's log pipeline already collects it. Not spooled: the log stream is tollgate's own (server.ts
 * `bufferedStdout`).
 */
import type { Logger } from 'pino';
import type { AuditRecord, AuditSink } from './record.ts';

export function createLogAuditSink(logger: Logger): AuditSink {
  const audit = logger.child({ channel: 'audit' });
  return { write: (record: AuditRecord) => audit.info({ audit: record }, record.event) };
}
