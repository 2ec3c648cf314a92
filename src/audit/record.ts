/**
 * @module audit/record
 * The one shape every path writes when it decides something or sees something worth keeping (docs/audit.md).
 * Adapters build records and hand them to an `AuditSink`; where they go (stdout, a hash-chained file, a Kafka
 * topic, a webhook) is the sinks' business (audit/pipeline.ts).
 *
 * Compatibility: fields are only ever added, and every added field is optional for a writer, so a reader of the
 * first schema (time, path, event, principal, rule, reason, connection, details) reads every later record.
 */
import type { Principal } from '../core/principal.ts';

/** `system`: records tollgate writes about its own audit trail (a torn file tail it set aside). */
export type AuditPath = 'http' | 'kubernetes' | 'kafka' | 'system';

/** What the exchange came to, in one word, for timelines and dashboards (the event says it in full). */
export type AuditDecision = 'allow' | 'deny' | 'partial' | 'unauthenticated' | 'refused';

export interface AuditRecord {
  /**
   * Unique and stable: the same record carries the same id in every sink, so a reader can de-duplicate what a
   * sink delivered twice (a webhook retried, a Kafka batch re-sent after a tollgate crash). Set by the pipeline.
   */
  readonly id?: string;
  /** ISO-8601 time the event happened. */
  readonly time: string;
  readonly path: AuditPath;
  /** What happened, dotted and stable: `http.authz.allow`, `kafka.frame.too_large`, `kafka.connection.closed`. */
  readonly event: string;
  /**
   * The exchange this record belongs to: a Kafka connection (one id per connection, every request on it shares
   * it), an HTTP request (its x-request-id, shared by ext_authz and ext_proc records). `tollgate audit replay
   * --session` follows it; the Kafka sink keys records by it.
   */
  readonly session?: string;
  readonly principal?: Principal;
  /** The client's address, `host:port`, when Envoy reported it. */
  readonly client?: string;
  /** See AuditDecision; set by the pipeline from the event when the adapter did not say. */
  readonly decision?: AuditDecision;
  /** The rule that decided, when one did. */
  readonly rule?: string;
  readonly reason?: string;
  /** The approval this exchange went through (approval requests and grants). */
  readonly approval?: string;
  /** Time from the request to its answer, as tollgate saw it. */
  readonly latencyMs?: number;
  /** Sizes of the exchange as it crossed tollgate, in bytes. */
  readonly bytes?: { readonly request?: number; readonly response?: number };
  /** Connection-level facts: source address, Envoy connection id, stream id. */
  readonly connection?: Readonly<Record<string, string | number>>;
  /** Event-specific details; never secrets or unmasked payload bytes. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface AuditSink {
  /** Returns at once: a sink that is down or slow holds the record (audit/spool.ts), it never blocks the caller. */
  write(record: AuditRecord): void;
  /**
   * Why traffic must be refused now, or undefined when records are accepted. Only a sink whose spool is full under
   * `onFull: block` refuses (fail closed): adapters then deny requests and close Kafka connections with this reason.
   */
  refusal?(): string | undefined;
}
