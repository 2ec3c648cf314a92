/**
 * @module server
 * Wires one config into a running tollgate: the three Envoy services and gRPC health on one gRPC listener, and the
 * admin listener. Owns the lifecycle: start, readiness, config reload, and a drain that lets open streams finish up
 * to a deadline.
 *
 * Reload: everything a config decides per request (policy, upstream credentials, masking key, identity providers,
 * Kafka connection settings) is built into one `Live` value, and the handlers read it through getters, so a reload
 * is one assignment: requests and streams that start afterwards see the new config, those already running keep
 * what they started with (an ext_proc stream its mask plans, a Kafka connection its settings; a Kafka connection's
 * next request is decided by the new policy). Listener addresses and gRPC limits need a restart, and so does a
 * changed `audit` section: the sinks live as long as the process (audit/pipeline.ts says why), and a reload that
 * changes them keeps the running ones and says a restart is needed.
 *
 * Signal state (counters, baselines, flagged sessions, payload digests) is not part of `Live`: one `SignalEngine`
 * lives as long as the process and is handed each new config's signal rules, keeping the state of the rules that
 * keep their name and state shape (src/signals/engine.ts), so a reload does not reset what the signals learned.
 */
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from './config/schema.ts';
import type { PolicyEngine } from './policy/engine.ts';
import type { UpstreamCredential } from './http/credentials.ts';
import type { MaskContext } from './masking/strategies.ts';
import type { KafkaConnectionSettings } from './kafka/service.ts';
import { createMetrics, type Metrics } from './admin/metrics.ts';
import { startAdminServer, type AdminServer, type ReadinessCheck } from './admin/http.ts';
import { openAuditPipeline, type AuditPipeline } from './audit/pipeline.ts';
import type { AuditSink } from './audit/record.ts';
import { compilePolicy } from './policy/engine.ts';
import { loadUpstreamCredentials } from './http/credentials.ts';
import { createAuthzHandler, type CheckRequestLike } from './http/authz.ts';
import { createExtProcHandler } from './http/extproc.ts';
import { createHttpClassifier, type HttpClassifier } from './http/action.ts';
import { loadMaskContext } from './masking/context.ts';
import { createNetworkExtProcHandler } from './kafka/service.ts';
import { loadKafkaSettings } from './kafka/settings.ts';
import { apiKeyName } from './kafka/protocol/api-keys.ts';
import { loadIdentities, type Identities } from './identity/load.ts';
import {
  authorizationService, externalProcessorService, healthService, networkExternalProcessorService,
} from './grpc/protos.ts';
import { createHealthService } from './admin/grpc-health.ts';
import { createApprovalsRuntime } from './approvals/runtime.ts';
import { API_PREFIX, createApprovalsApi } from './approvals/api.ts';
import type { ApprovalService } from './approvals/service.ts';
import { SignalEngine, type SignalEvent } from './signals/engine.ts';
import { observationDetails } from './signals/outcome.ts';
import { createAlertWebhook, type AlertWebhook } from './signals/webhook.ts';
import { createKafkaSignals } from './kafka/signals.ts';
import { createHttpSignals } from './http/signals.ts';
import { createSharedCountersRuntime } from './signals/shared-runtime.ts';
import type { AuditRecord } from './audit/record.ts';

export interface RunningServer {
  /** What the gRPC listener is bound to: `127.0.0.1:<port>` or `unix:/path`. */
  readonly grpcAddress: string;
  readonly adminAddress: { host: string; port: number };
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Resolves once every configured identity provider was tried once (see /readyz for which are ready). */
  readonly identityReady: Promise<void>;
  /** Short hash of the config file in force (see config/load.ts `configHash`); '' when started without one. */
  readonly configHash: string;
  /** The approval service once its store is open (a config with an `approve` rule); undefined otherwise. */
  approvals(): ApprovalService | undefined;
  /**
   * Puts `config` in force for new requests, streams and Kafka connections. Throws, leaving the running config in
   * force, when it cannot be built (an unreadable secret). Returns the changed keys that only take effect after a
   * restart (listener addresses, gRPC limits).
   */
  reload(config: Config, hash: string): { restartNeeded: string[] };
  /** Stops accepting, lets open streams finish up to the configured drain timeout, then closes everything. */
  drain(): Promise<{ forced: boolean }>;
}

export interface ServerOptions {
  readonly logger?: Logger;
  /** Replaces the sinks of `config.audit` (tests collect records this way). */
  readonly audit?: AuditSink;
  /** Hash of the config file, shown in `tollgate_config_info{hash}`. */
  readonly configHash?: string;
  /** Epoch milliseconds for time windows and signals; `Date.now` by default (tests inject a clock). */
  readonly clock?: () => number;
}

/** What one config decides per request: swapped whole on reload. */
interface Live {
  readonly config: Config;
  readonly policy: PolicyEngine;
  readonly credentials: readonly UpstreamCredential[];
  readonly classify: HttpClassifier;
  readonly maskContext: MaskContext;
  readonly identities: Identities;
  readonly kafkaSettings: KafkaConnectionSettings;
  /** Where signal records are POSTed (`signals.alerts.webhook`), if anywhere. */
  readonly alerts: AlertWebhook | undefined;
}

/** Settings read once at start: a reload that changes them is told to restart. */
const RESTART_KEYS: ReadonlyArray<readonly [string, (c: Config) => unknown]> = [
  ['server.grpc.address', (c) => c.server.grpc.address],
  ['server.grpc.maxReceiveMessageBytes', (c) => c.server.grpc.maxReceiveMessageBytes],
  ['server.admin.address', (c) => c.server.admin.address],
  ['approvals.store', (c) => JSON.stringify(c.approvals.store)],
  ['approvals.url', (c) => c.approvals.url],
  ['approvals.pollInterval', (c) => c.approvals.pollInterval],
  ['approvals.webhook', (c) => JSON.stringify(c.approvals.webhook)],
  ['audit', (c) => JSON.stringify(c.audit)],
];

/**
 * Tollgate's own log (and audit) stream: stdout, written asynchronously. A synchronous write per line was about a
 * quarter of the processor's busy time under Kafka load at `info` (one audit line per request). A line is handed to
 * a write at once when none is in flight; lines logged while one is in flight are written together by the next, so
 * a busy process makes few writes and an idle one shows each line within a write's time.
 *
 * Not lost on a clean shutdown: a write in flight keeps the process alive until it completes, and pino's exit hook
 * writes anything still buffered synchronously (`flushSync`). Crash window: lines buffered behind a write in flight
 * when the process is killed (SIGKILL) or aborts are lost; a synchronous destination would lose at most one line.
 */
export function bufferedStdout(): DestinationStream {
  return pino.destination({ dest: 1, sync: false });
}

/** The audit record of signal news: the numbers in `details`, the sentence in `reason`. */
function signalRecord(event: SignalEvent, now: number): AuditRecord {
  const o = event.observation;
  return {
    time: new Date(now).toISOString(),
    path: event.path,
    event: `${event.path}.signal.${event.event}`,
    ...(event.principal !== undefined && { principal: event.principal }),
    rule: o.rule,
    reason: o.reason,
    ...(event.connection !== undefined && { connection: event.connection }),
    details: { ...observationDetails(o), ...event.details },
  };
}

export function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(at + 1)) };
}

/** Removes a Unix socket left by a previous run that did not exit cleanly; never anything that is not a socket. */
function clearStaleSocket(address: string): void {
  if (!address.startsWith('unix:')) return;
  const file = address.slice('unix:'.length);
  if (existsSync(file) && lstatSync(file).isSocket()) unlinkSync(file);
}

export async function startServer(config: Config, options: ServerOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: config.server.logLevel, base: { service: 'tollgate' } }, bufferedStdout());
  const metrics = createMetrics();
  // Opens the audit file (its lock, its chain) and the spools first: a start that cannot audit does not serve.
  const pipeline: AuditPipeline | undefined = options.audit === undefined ? openAuditPipeline(config.audit, { logger }) : undefined;
  const audit = options.audit ?? pipeline!;
  if (pipeline !== undefined) metrics.observeAudit(() => pipeline.reports());
  let adminBaseUrl = `http://${config.server.admin.address}`;
  const approvals = createApprovalsRuntime({
    audit, logger, defaultBaseUrl: () => adminBaseUrl,
    notify: (event) => metrics.approvalEvents.inc({ event: event.type }),
  });
  metrics.observeApprovals(() => approvals.current()?.pendingCount());
  const clock = options.clock ?? Date.now;
  // Outlives reloads (see the module comment); its records go to the audit sink and the webhook of the config in force.
  const signals = new SignalEngine({
    now: clock,
    onEvent: (event) => {
      const record = signalRecord(event, clock());
      audit.write(record);
      live.alerts?.send(record);
      const o = event.observation;
      metrics.signalEvents.inc({ signal: o.rule, event: event.event, effect: o.effect, shadow: String(o.shadow) });
    },
    onObservation: (o) => metrics.signalObservations.inc({ signal: o.rule, effect: o.effect, shadow: String(o.shadow) }),
  });
  metrics.setSignalKeySource(() => signals.keyCounts());
  const kafkaSignals = createKafkaSignals(signals);
  const httpSignals = createHttpSignals(signals);

  const newIdentities = (c: Config) => loadIdentities(c.identity, {
    logger,
    onJwksFetch: (issuer, ok) => metrics.jwksFetches.inc({ issuer, result: ok ? 'ok' : 'error' }),
  });
  /**
   * Builds everything `c` decides; throws (an unreadable secret) before anything is swapped. The identity providers
   * are kept when their config is unchanged, so a rule edit does not refetch every JWKS.
   */
  const build = (c: Config, previous: Live | undefined): Live => {
    const policy = compilePolicy(c.rules, { timeWindows: c.timeWindows, now: clock, flaggedBy: (principal) => signals.flaggedBy(principal) });
    const credentials = loadUpstreamCredentials(c.http.upstreamCredentials);
    const classify = createHttpClassifier(c.http.kubernetes, c.http.kafkaRest);
    const maskContext = loadMaskContext(c.masking);
    const sameIdentity = previous !== undefined && JSON.stringify(previous.config.identity) === JSON.stringify(c.identity);
    const identities = sameIdentity ? previous.identities : newIdentities(c);
    // Bearer tokens (OIDC and Kubernetes) serve both paths: HTTP through the caller precedence, Kafka OAUTHBEARER.
    const identity = identities.bearer;
    // Decisions and inspection read the policy in force, so a Kafka connection's next request follows a reload;
    // the rest of the settings (limits, broker routes, the upstream credential, masking key) is per connection.
    const kafkaSettings = loadKafkaSettings(c.kafka, {
      authenticate: (token) => identity.authenticateBearer(token),
      decide: (principal, action, grants) => live.policy.decide(principal, action, grants),
      approvals: approvals.kafka,
      masking: {
        plansFor: (principal, topic) => live.policy.masks(principal, { kind: 'kafka', api: 'Fetch', operation: 'consume', topic }),
        mayMask: (principal) => live.policy.mayMaskKafka(principal),
        context: maskContext,
      },
      inspection: {
        plansFor: (principal, topic) => live.policy.rejects(principal, { kind: 'kafka', api: 'Produce', operation: 'produce', topic }),
        mayInspect: (principal) => live.policy.mayInspectKafka(principal),
      },
      capture: {
        plansFor: (principal, operation, topic) => live.policy.captures(principal, { kind: 'kafka', api: operation === 'produce' ? 'Produce' : 'Fetch', operation, topic }),
        mayCapture: (principal) => live.policy.mayCaptureKafka(principal),
        context: maskContext,
      },
      signals: kafkaSignals,
    });
    const webhook = c.signals.alerts.webhook;
    const sameWebhook = previous !== undefined && JSON.stringify(previous.config.signals.alerts) === JSON.stringify(c.signals.alerts);
    const alerts = sameWebhook ? previous.alerts : webhook === undefined ? undefined : createAlertWebhook({
      url: webhook.url, timeoutMs: webhook.timeout, maxQueue: webhook.maxQueue,
      onResult: (result, detail) => {
        metrics.signalAlerts.inc({ result });
        if (result !== 'sent') logger.warn({ url: webhook.url, result, detail }, 'signal alert webhook');
      },
    });
    return { config: c, policy, credentials, classify, maskContext, identities, kafkaSettings, alerts };
  };
  let live: Live = build(config, undefined);
  const signalSettings = (c: Config) => ({ maxKeys: c.signals.maxKeys, maxThrottleMs: c.signals.maxThrottle });
  signals.update(live.policy.signals, signalSettings(config));
  // Volume counts shared with other replicas (signals.shared): restarted by a reload that changes it, stopped by the drain.
  const sharedCounters = createSharedCountersRuntime({
    rules: () => signals.volumeRules(), now: clock, logger,
    onSync: (result) => {
      metrics.signalSyncs.inc({ result: result.ok ? 'ok' : 'error' });
      metrics.signalRemoteKeys.set(result.remoteKeys);
    },
  });
  sharedCounters.ensure(config.signals.shared);
  let configHash = options.configHash ?? '';
  if (configHash !== '') metrics.configInfo.set({ hash: configHash }, 1);

  const authz = createAuthzHandler({
    authenticate: (credentials) => live.identities.authenticateCaller(credentials),
    mtls: () => live.identities.mtls,
    policy: () => live.policy,
    credentials: () => live.credentials,
    classify: () => live.classify,
    approvals: () => {
      const service = approvals.current();
      return service === undefined ? undefined : { service, maxHoldMs: live.config.approvals.maxHold };
    },
    signals: () => httpSignals,
    audit,
    logger,
    hooks: {
      onDecision: (effect, rule, seconds) => {
        metrics.decisions.inc({ service: 'ext_authz', effect, rule: rule ?? 'default' });
        metrics.grpcLatency.observe({ service: 'ext_authz' }, seconds);
      },
    },
  });
  const extProc = createExtProcHandler({
    logger,
    policy: () => live.policy,
    maskContext: () => live.maskContext,
    maxBufferBytes: config.masking.maxBufferBytes,
    classify: () => live.classify,
    audit,
    hooks: {
      onStream: () => metrics.grpcStreams.inc({ service: 'ext_proc' }),
      onMasked: (rules, tally) => {
        for (const [detector, count] of Object.entries(tally)) metrics.maskedValues.inc({ path: 'http', detector }, count);
        for (const rule of rules) metrics.decisions.inc({ service: 'ext_proc', effect: 'mask', rule });
      },
    },
  });
  // Bound once: the byte counters are touched for every read Envoy hands over.
  const kafkaBytesIn = metrics.kafkaBytes.labels({ direction: 'request' });
  const kafkaBytesOut = metrics.kafkaBytes.labels({ direction: 'response' });
  const networkExtProc = createNetworkExtProcHandler({
    logger,
    audit,
    settings: () => live.kafkaSettings,
    hooks: {
      onConnectionOpen: () => { metrics.kafkaConnections.inc(); metrics.kafkaConnectionsTotal.inc(); metrics.grpcStreams.inc({ service: 'network_ext_proc' }); },
      onConnectionClose: () => metrics.kafkaConnections.dec(),
      onBytes: (direction, bytes) => (direction === 'request' ? kafkaBytesIn : kafkaBytesOut).inc(bytes),
      // Keyed by number and by the decision's own strings: no label object is built per frame or decision.
      onFrame: (direction, apiKey) => metrics.pendingKafkaFrames.add(direction === 'request' ? apiKey * 2 : apiKey * 2 + 1, () => ({ direction, api: apiKeyName(apiKey) })),
      onDecision: (decision) => {
        const rule = decision.rule ?? 'default';
        metrics.pendingDecisions.add(`${decision.effect}\u0000${rule}`, () => ({ service: 'network_ext_proc', effect: decision.effect, rule }));
      },
    },
  });
  const health = createHealthService();

  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.server.grpc.maxReceiveMessageBytes,
    'grpc.max_send_message_length': -1,
    'grpc.keepalive_permit_without_calls': 1,
  });
  server.addService(authorizationService, {
    Check: (call: grpc.ServerUnaryCall<CheckRequestLike, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      metrics.grpcStreams.inc({ service: 'ext_authz' });
      // A Check held for approval ends its wait when Envoy gives up on it (its timeout, or the client went away).
      const cancelled = new AbortController();
      call.on('cancelled', () => cancelled.abort());
      authz(call.request, cancelled.signal).then((res) => callback(null, res), (err: Error) => {
        // A bug must not become an allow: Envoy turns a gRPC error into a denial (failure_mode_allow: false).
        logger.error({ err }, 'ext_authz handler failed');
        callback({ code: grpc.status.INTERNAL, details: 'tollgate could not decide' });
      });
    },
  });
  server.addService(externalProcessorService, { Process: extProc });
  server.addService(networkExternalProcessorService, { Process: networkExtProc });
  server.addService(healthService, health.implementation);

  const address = config.server.grpc.address;
  clearStaleSocket(address);
  let boundPort: number;
  try {
    boundPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(new Error(`cannot listen on ${address}: ${err.message}`)) : resolve(port)));
    });
  } catch (err) {
    await pipeline?.close(Date.now());
    throw err;
  }
  const grpcAddress = address.startsWith('unix:') ? address : `${splitHostPort(address).host}:${boundPort}`;

  // Resolves once every issuer was tried; one that failed keeps retrying in the background and shows in /readyz.
  const identityReady = live.identities.bearer.start();

  // Read at every /readyz: after a reload, the issuers of the config in force.
  const checks = (): ReadinessCheck[] => [
    { name: 'grpc', check: () => ({ ok: true, detail: grpcAddress }) },
    ...live.identities.bearer.health().map((h): ReadinessCheck => ({
      name: `${h.issuer === live.identities.bearer.kubernetesIssuer ? 'kubernetes' : 'oidc'} ${h.issuer}`,
      check: () => {
        const now = live.identities.bearer.verifier(h.issuer)?.health() ?? h;
        return now.ready ? { ok: true, detail: `${now.kids.length} keys` } : { ok: false, detail: now.lastError ?? 'keys not loaded yet' };
      },
    })),
    ...(approvals.health() === undefined ? [] : [{ name: 'approvals', check: () => approvals.health() ?? { ok: true } }]),
    // A sink that is down is not a reason to stop traffic (its spool holds the records); a spool full under
    // onFull: block is, and traffic is refused then anyway.
    ...(pipeline?.reports() ?? []).filter((r) => r.status !== undefined).map((r): ReadinessCheck => ({
      name: `audit ${r.name}`,
      check: () => {
        const status = pipeline!.reports().find((x) => x.name === r.name)!.status!;
        const waiting = `${status.pendingRecords} records waiting (${status.spoolBytes} of ${status.spoolMaxBytes} spool bytes)`;
        if (status.blocked) return { ok: false, detail: `spool full, traffic refused: ${waiting}; ${status.lastError ?? ''}`.trim() };
        return { ok: true, detail: status.up ? `up, ${waiting}` : `down since ${new Date(status.since).toISOString()}: ${status.lastError ?? 'unknown error'}; ${waiting}` };
      },
    })),
  ];
  const adminAt = splitHostPort(config.server.admin.address);
  let admin: AdminServer;
  try {
    admin = await startAdminServer({
      ...adminAt, registry: metrics.registry, checks,
      routes: [{ prefix: API_PREFIX, handle: createApprovalsApi({ service: () => approvals.current(), authenticate: () => live.identities.authenticateCaller, logger }) }],
    });
  } catch (err) {
    server.forceShutdown();
    await pipeline?.close(Date.now());
    throw new Error(`cannot listen on admin address ${config.server.admin.address}: ${(err as Error).message}`);
  }
  adminBaseUrl = `http://${admin.address.family === 'IPv6' ? `[${admin.address.address}]` : admin.address.address}:${admin.address.port}`;
  approvals.ensure(config);
  logger.info({ grpc: grpcAddress, admin: `${admin.address.address}:${admin.address.port}`, rules: live.policy.ruleNames.length, ...(configHash !== '' && { config: configHash }) }, 'tollgate listening');

  const reload = (next: Config, hash: string): { restartNeeded: string[] } => {
    const previous = live;
    const built = build(next, previous);
    sharedCounters.ensure(next.signals.shared);
    live = built;
    approvals.ensure(next);
    signals.update(built.policy.signals, signalSettings(next));
    logger.level = next.server.logLevel;
    if (built.identities !== previous.identities) {
      // Connections that authenticated with the old providers keep them (their verifiers still work); only the
      // background retries of the old ones stop.
      previous.identities.bearer.close();
      built.identities.bearer.start().catch((err: Error) => logger.error({ err }, 'identity providers failed to start after reload'));
    }
    if (configHash !== '') metrics.configInfo.remove({ hash: configHash });
    configHash = hash;
    metrics.configInfo.set({ hash }, 1);
    const restartNeeded = RESTART_KEYS.filter(([, read]) => read(next) !== read(previous.config)).map(([key]) => key);
    if (restartNeeded.length > 0) logger.warn({ keys: restartNeeded }, 'config reloaded, but these settings take effect only after a restart');
    return { restartNeeded };
  };

  let draining: Promise<{ forced: boolean }> | undefined;
  const drain = () => {
    draining ??= (async () => {
      const deadlineMs = live.config.server.drainTimeout;
      logger.info({ deadlineMs }, 'draining: no new streams; open ones may finish');
      admin.setDraining();
      health.setServing(false);
      // Held Checks are answered now (their approvals stay pending for a retry), not cut at the deadline.
      approvals.current()?.stopHolding();
      const forced = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn('drain deadline reached; cutting the streams still open');
          server.forceShutdown();
          resolve(true);
        }, deadlineMs);
        server.tryShutdown(() => { clearTimeout(timer); resolve(false); });
      });
      live.identities.bearer.close();
      await approvals.close();
      await sharedCounters.close();
      await admin.close();
      // Sinks get a moment to deliver what the last streams wrote; what they do not stays in their spools.
      await pipeline?.close(Date.now() + Math.min(5_000, deadlineMs));
      logger.info({ forced }, 'drained');
      // Hands what is buffered to a write; the process's exit waits for it (see bufferedStdout).
      logger.flush();
      return { forced };
    })();
    return draining;
  };

  return {
    grpcAddress, adminAddress: { host: admin.address.address, port: admin.address.port }, metrics, logger, identityReady,
    get configHash() { return configHash; },
    approvals: () => approvals.current(),
    reload, drain,
  };
}
