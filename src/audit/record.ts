/**
 * @module audit/record
 * The one shape every path writes when it decides something or sees something worth keeping. The approvals-and-audit
 * work grows it (hash chain, sinks, replay); adapters only ever build records and hand them to an `AuditSink`.
 */
import type { Principal } from '../core/principal.ts';

export type AuditPath = 'http' | 'kubernetes' | 'kafka';

export interface AuditRecord {
  /** ISO-8601 time the event happened. */
  readonly time: string;
  readonly path: AuditPath;
  /** What happened, dotted and stable: `http.authz.allow`, `kafka.frame.too_large`, `kafka.connection.closed`. */
  readonly event: string;
  readonly principal?: Principal;
  /** The rule that decided, when one did. */
  readonly rule?: string;
  readonly reason?: string;
  /** Connection-level facts: source address, Envoy connection id, stream id. */
  readonly connection?: Readonly<Record<string, string | number>>;
  /** Event-specific details; never secrets or unmasked payload bytes. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface AuditSink {
  write(record: AuditRecord): void;
}
