/**
 * @module kafka/settings
 * The Kafka section of the config → what every Kafka connection shares. Secrets are read here, once, so a missing
 * broker password fails the start, not the first connection.
 */
import type { KafkaConfig } from '../config/schema.ts';
import { readSecret } from '../config/secrets.ts';
import type { KafkaAction } from '../core/action.ts';
import type { Decision } from '../core/decision.ts';
import type { Principal } from '../core/principal.ts';
import { BrokerRoutes } from './routing/index.ts';
import { memoizedScramKeys } from './sasl/scram.ts';
import type { KafkaConnectionSettings } from './service.ts';
import type { KafkaApprovals, KafkaCapture, KafkaInspection, KafkaMasking } from './connection.ts';
import type { ApprovalView } from '../policy/engine.ts';
import type { KafkaSignals } from './signals.ts';

export interface KafkaSettingsInput {
  readonly authenticate: (token: string) => Promise<Principal>;
  readonly decide: (principal: Principal, action: KafkaAction, approvals?: ApprovalView) => Decision;
  /** Just-in-time approval; absent: what needs approval is refused. */
  readonly approvals?: KafkaApprovals;
  /** Masking of consumed records; absent: nothing is masked. */
  readonly masking?: KafkaMasking;
  /** Publish inspection of produced records; absent: records are not inspected. */
  readonly inspection?: KafkaInspection;
  /** Session capture of produced and fetched records; absent: nothing is captured. */
  readonly capture?: KafkaCapture;
  /** Insider-threat signals; absent: nothing is measured. */
  readonly signals?: KafkaSignals;
}

export function loadKafkaSettings(config: KafkaConfig, input: KafkaSettingsInput): KafkaConnectionSettings {
  const sasl = config.upstream.sasl;
  return {
    maxFrameBytes: config.maxFrameBytes,
    maxInFlight: config.maxInFlight,
    maxSessionLifetimeMs: config.clientAuthentication.maxSessionLifetime,
    authenticate: input.authenticate,
    decide: input.decide,
    ...(input.approvals !== undefined && { approvals: input.approvals }),
    ...(input.masking !== undefined && { masking: input.masking }),
    ...(input.inspection !== undefined && { inspection: input.inspection }),
    ...(input.capture !== undefined && { capture: input.capture }),
    ...(input.signals !== undefined && { signals: input.signals }),
    routes: new BrokerRoutes(config.brokers.map(({ nodeId, advertise }) => {
      const at = advertise.lastIndexOf(':');
      return { nodeId, host: advertise.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(advertise.slice(at + 1)) };
    })),
    ...(sasl !== undefined && {
      upstreamSasl: {
        mechanism: sasl.mechanism,
        username: sasl.username,
        password: readSecret(sasl.password, `kafka.upstream.sasl password of ${sasl.username}`),
        deriveKeys: memoizedScramKeys(),
      },
    }),
  };
}
