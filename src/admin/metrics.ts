/**
 * @module admin/metrics
 * Every metric tollgate exports, on one registry per server (tests start several servers in one process).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tollgate_' });
  const reg = { registers: [registry] };
  return {
    registry,
    decisions: new Counter({
      name: 'tollgate_decisions_total', help: 'Policy decisions by service, effect and rule.',
      labelNames: ['service', 'effect', 'rule'] as const, ...reg,
    }),
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
    kafkaFrames: new Counter({
      name: 'tollgate_kafka_frames_total', help: 'Whole Kafka frames forwarded, by direction and API.',
      labelNames: ['direction', 'api'] as const, ...reg,
    }),
  };
}
