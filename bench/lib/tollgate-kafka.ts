/**
 * @module bench/lib/tollgate-kafka
 * The tollgate side of the Kafka throughput bench (bench/kafka-throughput.bench.ts): tollgate's config as it would
 * run for real (OIDC-verified SASL OAUTHBEARER clients, a policy that allows the bench principal exactly what the
 * bench does, broker address rewriting, audit at `info`), the Java clients' OAUTHBEARER settings, and a count of the
 * audit records tollgate wrote, as a check that every request went through the policy.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import YAML from 'yaml';

export interface TollgateBenchConfigOptions {
  /** `host:port` of tollgate's gRPC listener (Envoy's network ext_proc connects here). */
  readonly grpc: string;
  /** `host:port` of tollgate's admin listener (/metrics). */
  readonly admin: string;
  readonly issuer: string;
  readonly audience: string;
  /** The bench principals' token subjects: the only ones the rules allow anything. */
  readonly subject: string | readonly string[];
  /** Topic globs the principal may produce to and consume from (describe is implied). */
  readonly topics: readonly string[];
  /** Consumer group globs the principal may use. */
  readonly groups: readonly string[];
  /** Broker node id → the Envoy listener advertised for it. */
  readonly brokers: ReadonlyArray<{ readonly nodeId: number; readonly advertise: string }>;
  /** More rules (masking rules, for instance), after the two allow rules and before the default deny. */
  readonly extraRules?: readonly unknown[];
}

const subjects = (s: string | readonly string[]): string | string[] => (typeof s === 'string' ? s : [...s]);

/** tollgate's YAML config for the bench's tollgate case. */
export function tollgateBenchConfig(o: TollgateBenchConfigOptions): string {
  return YAML.stringify({
    server: {
      grpc: { address: o.grpc },
      admin: { address: o.admin },
      // The shipped default: one audit line per Kafka request (debug would add a line per request/response pair).
      logLevel: 'info',
    },
    identity: { oidc: [{ issuer: o.issuer, audiences: [o.audience] }] },
    kafka: {
      // No upstream.sasl: the bench broker's listener is PLAINTEXT.
      brokers: o.brokers.map((b) => ({ nodeId: b.nodeId, advertise: b.advertise })),
    },
    rules: [
      {
        name: 'bench-produce-consume',
        description: 'the bench principal produces to and consumes from the tollgate case topics',
        match: { subject: subjects(o.subject), kafka: { operation: ['produce', 'consume'], topic: [...o.topics] } },
        effect: 'allow',
      },
      {
        name: 'bench-consumer-groups',
        description: 'the bench principal uses the tollgate case consumer groups',
        match: { subject: subjects(o.subject), kafka: { operation: 'consume', group: [...o.groups] } },
        effect: 'allow',
      },
      ...(o.extraRules ?? []),
      // Anything else falls through to the default deny.
    ],
  });
}

/**
 * Settings (a `--producer.config` / `--consumer.config` file) for Kafka's Java clients authenticating with SASL
 * OAUTHBEARER, the token fetched from `tokenEndpoint` with client_credentials. Kafka 4 also needs the JVM system
 * property `-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=<tokenEndpoint>`.
 */
export function javaOAuthBearerProperties(tokenEndpoint: string, clientId: string, clientSecret: string): string {
  return [
    'security.protocol=SASL_PLAINTEXT',
    'sasl.mechanism=OAUTHBEARER',
    `sasl.oauthbearer.token.endpoint.url=${tokenEndpoint}`,
    'sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler',
    `sasl.oauthbearer.client.credentials.client.id=${clientId}`,
    `sasl.oauthbearer.client.credentials.client.secret=${clientSecret}`,
    'sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;',
    '',
  ].join('\n');
}

/** Pseudo-event (in `byEvent`) of a Metadata request forwarded with topic auto-creation off: see `autoCreateOff`. */
export const AUTO_CREATE_OFF = 'kafka.request.partially_denied(auto-creation off)';

export interface AuditCounts {
  /** Every audit line. */
  readonly total: number;
  /** `kafka.request`: a request forwarded whole, allowed. */
  readonly requests: number;
  /**
   * `kafka.request.denied` and `kafka.request.partially_denied`, but for `autoCreateOff`: a real refusal of something
   * the bench does.
   */
  readonly denied: number;
  /**
   * Metadata requests asking for topic auto-creation, which the bench principal may not do (that takes `admin`): the
   * policy forwards them with auto-creation off (`kafka.request.partially_denied`, only `admin` denied). Kafka's Java
   * producer always asks; the bench's topics exist, so nothing is refused that the bench needs.
   */
  readonly autoCreateOff: number;
  /** Successful SASL authentications (first ones and re-authentications). */
  readonly authentications: number;
  /** Every event by name. */
  readonly byEvent: ReadonlyMap<string, number>;
  /** Requests by Kafka API (`kafka.request*` events). */
  readonly byApi: ReadonlyMap<string, number>;
  /** The first few denial reasons, for the report. */
  readonly denials: readonly string[];
  /** Records masked in Fetch responses (the sum of `details.masking.records`). */
  readonly maskedRecords: number;
  /** Masked values by detector or field (`details.masking.values`, summed). */
  readonly maskedValues: ReadonlyMap<string, number>;
  /** Partitions answered with an error instead of masked data, and partial batches dropped (`details.masking`). */
  readonly maskingFailedPartitions: number;
  readonly maskingDroppedPartialBatches: number;
}

/** Reads tollgate's log (pino JSON lines) and counts the audit records (`channel: "audit"`). */
export async function countAuditRecords(logFile: string): Promise<AuditCounts> {
  const byEvent = new Map<string, number>();
  const byApi = new Map<string, number>();
  const denials: string[] = [];
  const maskedValues = new Map<string, number>();
  let maskedRecords = 0;
  let maskingFailedPartitions = 0;
  let maskingDroppedPartialBatches = 0;
  const lines = readline.createInterface({ input: fs.createReadStream(logFile), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.includes('"channel":"audit"')) continue;
    let parsed: { audit?: { event?: string; reason?: string; details?: {
      api?: string;
      decisions?: Array<{ operation?: string; effect?: string }>;
      masking?: { records?: number; values?: Record<string, number>; failedPartitions?: unknown[]; droppedPartialBatches?: number };
    } } };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      continue;
    }
    let event = parsed.audit?.event ?? '(none)';
    const details = parsed.audit?.details;
    const masking = details?.masking;
    if (masking !== undefined) {
      maskedRecords += masking.records ?? 0;
      for (const [k, v] of Object.entries(masking.values ?? {})) maskedValues.set(k, (maskedValues.get(k) ?? 0) + v);
      maskingFailedPartitions += masking.failedPartitions?.length ?? 0;
      maskingDroppedPartialBatches += masking.droppedPartialBatches ?? 0;
    }
    if (event === 'kafka.request.partially_denied' && details?.api === 'Metadata' &&
      (details.decisions ?? []).every((d) => d.effect !== 'deny' || d.operation === 'admin')) event = AUTO_CREATE_OFF;
    byEvent.set(event, (byEvent.get(event) ?? 0) + 1);
    if (event.startsWith('kafka.request') || event === AUTO_CREATE_OFF) {
      const api = parsed.audit?.details?.api ?? '(unknown)';
      byApi.set(api, (byApi.get(api) ?? 0) + 1);
    }
    if ((event === 'kafka.request.denied' || event === 'kafka.request.partially_denied') && denials.length < 5) {
      denials.push(`${event} ${parsed.audit?.details?.api ?? ''}: ${parsed.audit?.reason ?? ''}`);
    }
  }
  const count = (...events: string[]): number => events.reduce((sum, e) => sum + (byEvent.get(e) ?? 0), 0);
  return {
    total: [...byEvent.values()].reduce((a, b) => a + b, 0),
    requests: count('kafka.request'),
    denied: count('kafka.request.denied', 'kafka.request.partially_denied'),
    autoCreateOff: count(AUTO_CREATE_OFF),
    authentications: count('kafka.sasl.authenticated', 'kafka.sasl.reauthenticated'),
    byEvent,
    byApi,
    denials,
    maskedRecords,
    maskedValues,
    maskingFailedPartitions,
    maskingDroppedPartialBatches,
  };
}
