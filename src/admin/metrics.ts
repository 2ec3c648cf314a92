/**
 * @module admin/metrics
 * Every metric tollgate exports, on one registry per server (tests start several servers in one process).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LabelValues } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * Counts for a labelled counter on a hot path (once per Kafka frame, once per decision): `add` bumps a plain number
 * kept under a caller-chosen key, without prom-client's per-call label hashing and validation (about 1.3% of the
 * processor's time under Kafka load); `flush` moves the counts into the counter, from its `collect` (every scrape).
 */
export class PendingCounts<T extends string> {
  readonly #counter: () => Counter<T>;
  readonly #pending = new Map<string | number, { readonly labels: LabelValues<T>; n: number }>();

  constructor(counter: () => Counter<T>) {
    this.#counter = counter;
  }

  /** One more for the labels of `key`; `labels` is called the first time a key is seen. */
  add(key: string | number, labels: () => LabelValues<T>): void {
    let entry = this.#pending.get(key);
    if (entry === undefined) {
      entry = { labels: labels(), n: 0 };
      this.#pending.set(key, entry);
    }
    entry.n++;
  }

  flush(): void {
    const counter = this.#counter();
    for (const entry of this.#pending.values()) {
      if (entry.n === 0) continue;
      counter.inc(entry.labels, entry.n);
      entry.n = 0;
    }
  }
}

/** What the audit metrics read of one sink at each scrape (audit/pipeline.ts `reports`). */
export interface AuditSinkReport {
  readonly name: string;
  /** Running totals by result. */
  readonly counts: Readonly<Record<string, number>>;
  /** Spooled sinks only. */
  readonly status?: { readonly up: boolean; readonly spoolBytes: number; readonly pendingRecords: number; readonly lagSeconds: number };
}

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tollgate_' });
  const reg = { registers: [registry] };
  const decisions: Counter<'service' | 'effect' | 'rule'> = new Counter({
    name: 'tollgate_decisions_total', help: 'Policy decisions by service, effect and rule.',
    labelNames: ['service', 'effect', 'rule'] as const, ...reg,
    collect: () => pendingDecisions.flush(),
  });
  const pendingDecisions = new PendingCounts(() => decisions);
  const kafkaFrames: Counter<'direction' | 'api'> = new Counter({
    name: 'tollgate_kafka_frames_total', help: 'Whole Kafka frames forwarded, by direction and API.',
    labelNames: ['direction', 'api'] as const, ...reg,
    collect: () => pendingKafkaFrames.flush(),
  });
  const pendingKafkaFrames = new PendingCounts(() => kafkaFrames);

  // The audit pipeline keeps plain running totals (no prom-client call per record); they reach the counter at each
  // scrape, and the gauges are read from the sinks then.
  let auditReports: () => readonly AuditSinkReport[] = () => [];
  const auditSynced = new Map<string, number>();
  const auditRecords: Counter<'sink' | 'result'> = new Counter({
    name: 'tollgate_audit_records_total',
    help: 'Audit records per sink and result: accepted (into its spool), refused (spool full, onFull block), dropped (onFull drop-oldest), delivered (the sink has it), rejected (the sink refused it for good).',
    labelNames: ['sink', 'result'] as const, ...reg,
    collect: () => {
      for (const report of auditReports()) {
        for (const [result, total] of Object.entries(report.counts)) {
          const key = `${report.name}\u0000${result}`;
          const previous = auditSynced.get(key);
          auditSynced.set(key, total);
          // The first scrape shows every series, zeros included, so rates and alerts have something to start from.
          if (previous === undefined || total > previous) auditRecords.inc({ sink: report.name, result }, total - (previous ?? 0));
        }
      }
    },
  });
  const auditGauge = (name: string, help: string, read: (status: NonNullable<AuditSinkReport['status']>) => number): Gauge<'sink'> => {
    const gauge: Gauge<'sink'> = new Gauge({
      name, help, labelNames: ['sink'] as const, ...reg,
      collect: () => {
        gauge.reset();
        for (const report of auditReports()) if (report.status !== undefined) gauge.set({ sink: report.name }, read(report.status));
      },
    });
    return gauge;
  };
  let approvalsPendingSource: () => Promise<number> | undefined = () => undefined;
  const approvalsPending: Gauge = new Gauge({
    name: 'tollgate_approvals_pending', help: 'Approval requests awaiting approvers (in the shared store: every replica reports the same number).',
    ...reg,
    collect: async () => {
      const count = approvalsPendingSource();
      if (count === undefined) approvalsPending.reset();
      else approvalsPending.set(await count.catch(() => 0));
    },
  });
  let signalKeySource: () => ReadonlyArray<{ readonly rule: string; readonly keys: number }> = () => [];
  const signalKeys: Gauge<'signal'> = new Gauge({
    name: 'tollgate_signal_keys', help: 'Keys (principal × resource, subjects, addresses, payload digests) a signal rule keeps state for.',
    labelNames: ['signal'] as const, ...reg,
    collect: () => {
      // Read at scrape time; rules removed by a reload disappear.
      signalKeys.reset();
      for (const { rule, keys } of signalKeySource()) signalKeys.set({ signal: rule }, keys);
    },
  });
  return {
    registry,
    decisions,
    /** Hot-path decision counts (Kafka): reach `decisions` at the next scrape. */
    pendingDecisions,
    grpcStreams: new Counter({
      name: 'tollgate_grpc_streams_total', help: 'gRPC calls and streams opened by Envoy, by service.',
      labelNames: ['service'] as const, ...reg,
    }),
    grpcLatency: new Histogram({
      name: 'tollgate_grpc_handling_seconds', help: 'Time to answer one Envoy message, by service.',
      labelNames: ['service'] as const, buckets: LATENCY_BUCKETS, ...reg,
    }),
    jwksFetches: new Counter({
      name: 'tollgate_jwks_fetches_total', help: 'JWKS fetches by issuer and result.',
      labelNames: ['issuer', 'result'] as const, ...reg,
    }),
    maskedValues: new Counter({
      name: 'tollgate_masked_values_total', help: 'Values masked, by path and detector (`field` for JSON-path rules).',
      labelNames: ['path', 'detector'] as const, ...reg,
    }),
    kafkaConnections: new Gauge({ name: 'tollgate_kafka_connections', help: 'Open Kafka connections.', ...reg }),
    kafkaConnectionsTotal: new Counter({ name: 'tollgate_kafka_connections_total', help: 'Kafka connections seen.', ...reg }),
    kafkaFrames,
    /** Hot-path frame counts: reach `kafkaFrames` at the next scrape. */
    pendingKafkaFrames,
    signalObservations: new Counter({
      name: 'tollgate_signal_observations_total', help: 'Requests (and authentications, produced records) an insider-threat signal acted on or would have (shadow), by signal rule, effect and shadow.',
      labelNames: ['signal', 'effect', 'shadow'] as const, ...reg,
    }),
    signalEvents: new Counter({
      name: 'tollgate_signal_events_total', help: 'Signal news written as audit records and sent to the alert webhook: breach, escalation, flagged, failures, replay; by signal rule, effect and shadow.',
      labelNames: ['signal', 'event', 'effect', 'shadow'] as const, ...reg,
    }),
    signalKeys,
    /** Where `tollgate_signal_keys` reads its values at each scrape (the signal engine of the server). */
    setSignalKeySource(source: () => ReadonlyArray<{ readonly rule: string; readonly keys: number }>) {
      signalKeySource = source;
    },
    signalSyncs: new Counter({
      name: 'tollgate_signal_sync_total', help: 'Syncs of volume counts with the other replicas (`signals.shared`), by result: ok, error (this replica counts on alone meanwhile).',
      labelNames: ['result'] as const, ...reg,
    }),
    signalRemoteKeys: new Gauge({
      name: 'tollgate_signal_remote_keys', help: 'Keys for which the last sync found other replicas\' counts (`signals.shared`).', ...reg,
    }),
    signalAlerts: new Counter({
      name: 'tollgate_signal_alerts_total', help: 'Signal records POSTed to the alert webhook, by result: sent, failed, dropped (queue full).',
      labelNames: ['result'] as const, ...reg,
    }),
    configReloads: new Counter({
      name: 'tollgate_config_reloads_total', help: 'Config reloads (SIGHUP or file change), by result: success, or failure (the running config kept).',
      labelNames: ['result'] as const, ...reg,
    }),
    auditRecords,
    auditSpoolBytes: auditGauge('tollgate_audit_spool_bytes', 'Bytes a spooled audit sink\'s spool takes on disk.', (s) => s.spoolBytes),
    auditSpoolRecords: auditGauge('tollgate_audit_spool_records', 'Audit records waiting in a sink\'s spool (not yet confirmed by the sink).', (s) => s.pendingRecords),
    auditSinkUp: auditGauge('tollgate_audit_sink_up', '1 when the last delivery to a spooled audit sink succeeded, 0 while it fails.', (s) => (s.up ? 1 : 0)),
    auditLag: auditGauge('tollgate_audit_lag_seconds', 'Age of the oldest audit record a sink has not confirmed yet (0 when none waits).', (s) => s.lagSeconds),
    /** Where the audit metrics read from, at each scrape. */
    observeAudit(source: () => readonly AuditSinkReport[]): void {
      auditReports = source;
    },
    kafkaBytes: new Counter({
      name: 'tollgate_kafka_bytes_total', help: 'Kafka bytes Envoy handed to tollgate, by direction: request (from clients), response (from brokers).',
      labelNames: ['direction'] as const, ...reg,
    }),
    approvalEvents: new Counter({
      name: 'tollgate_approval_events_total', help: 'Approval events recorded by this process: requested, decided (an approver, more needed), approved, rejected, expired, revoked.',
      labelNames: ['event'] as const, ...reg,
    }),
    approvalsPending,
    /** Where the pending-approvals gauge reads from at each scrape (undefined: approvals not in use). */
    observeApprovals(source: () => Promise<number> | undefined): void {
      approvalsPendingSource = source;
    },
    /** 1 for the hash of the config in force, so a dashboard shows which config each process runs. */
    configInfo: new Gauge({
      name: 'tollgate_config_info', help: 'The config in force: its file\'s hash (sha256, first 12 hex digits) as a label, value 1.',
      labelNames: ['hash'] as const, ...reg,
    }),
  };
}
