/**
 * @module server
 * Wires one config into a running tollgate: the three Envoy services and gRPC health on one gRPC listener, and the
 * admin listener. Owns the lifecycle: start, readiness, and a drain that lets open streams finish up to a deadline.
 */
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { createMetrics, type Metrics } from './admin/metrics.ts';
import { startAdminServer, type AdminServer, type ReadinessCheck } from './admin/http.ts';
import { createLogAuditSink } from './audit/log-sink.ts';
import type { AuditSink } from './audit/record.ts';
import { compilePolicy } from './policy/engine.ts';
import { loadUpstreamCredentials } from './http/credentials.ts';
import { createAuthzHandler, type CheckRequestLike } from './http/authz.ts';
import { createExtProcHandler } from './http/extproc.ts';
import { createHttpClassifier } from './http/action.ts';
import { loadMaskContext } from './masking/context.ts';
import { createNetworkExtProcHandler } from './kafka/service.ts';
import { loadKafkaSettings } from './kafka/settings.ts';
import { apiKeyName } from './kafka/protocol/api-keys.ts';
import { Authenticator } from './identity/authenticator.ts';
import type { OidcVerifierOptions } from './identity/oidc.ts';
import { createMtlsIdentities } from './identity/mtls.ts';
import {
  authorizationService, externalProcessorService, healthService, networkExternalProcessorService,
} from './grpc/protos.ts';
import { createHealthService } from './admin/grpc-health.ts';

export interface RunningServer {
  /** What the gRPC listener is bound to: `127.0.0.1:<port>` or `unix:/path`. */
  readonly grpcAddress: string;
  readonly adminAddress: { host: string; port: number };
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Resolves once every configured identity provider was tried once (see /readyz for which are ready). */
  readonly identityReady: Promise<void>;
  /** Stops accepting, lets open streams finish up to the configured drain timeout, then closes everything. */
  drain(): Promise<{ forced: boolean }>;
}

export interface ServerOptions {
  readonly logger?: Logger;
  readonly audit?: AuditSink;
}

function oidcOptions(o: Config['identity']['oidc'][number]): OidcVerifierOptions {
  return {
    issuer: o.issuer,
    audiences: [...o.audiences],
    groupsClaim: o.groupsClaim,
    subjectClaim: o.subjectClaim,
    algorithms: [...o.algorithms],
    clockToleranceSeconds: Math.round(o.clockTolerance / 1000),
    ...(o.discoveryUrl ? { discoveryUrl: o.discoveryUrl } : {}),
    jwksRefreshCooldownMs: o.jwksRefreshCooldown,
    jwksMaxAgeMs: o.jwksMaxAge,
    tokenCacheMax: o.tokenCacheSize,
  };
}

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
  const audit = options.audit ?? createLogAuditSink(logger);
  const policy = compilePolicy(config.rules);
  const credentials = loadUpstreamCredentials(config.http.upstreamCredentials);
  const classify = createHttpClassifier(config.http.kubernetes, config.http.kafkaRest);
  const identity = new Authenticator({
    oidc: config.identity.oidc.map(oidcOptions),
    logger,
    onJwksFetch: (issuer, ok) => metrics.jwksFetches.inc({ issuer, result: ok ? 'ok' : 'error' }),
  });

  const mtlsConfig = config.identity.mtls;
  const mtls = mtlsConfig === undefined ? undefined : createMtlsIdentities(mtlsConfig);

  const authz = createAuthzHandler({
    authenticate: (header) => identity.authenticateHeader(header),
    mtls: () => mtls,
    policy: () => policy,
    credentials: () => credentials,
    classify: () => classify,
    audit,
    logger,
    hooks: {
      onDecision: (effect, rule, seconds) => {
        metrics.decisions.inc({ service: 'ext_authz', effect, rule: rule ?? 'default' });
        metrics.grpcLatency.observe({ service: 'ext_authz' }, seconds);
      },
    },
  });
  const maskContext = loadMaskContext(config.masking);
  const extProc = createExtProcHandler({
    logger,
    policy: () => policy,
    maskContext: () => maskContext,
    maxBufferBytes: config.masking.maxBufferBytes,
    classify: () => classify,
    audit,
    hooks: {
      onStream: () => metrics.grpcStreams.inc({ service: 'ext_proc' }),
      onMasked: (rules, tally) => {
        for (const [detector, count] of Object.entries(tally)) metrics.maskedValues.inc({ path: 'http', detector }, count);
        for (const rule of rules) metrics.decisions.inc({ service: 'ext_proc', effect: 'mask', rule });
      },
    },
  });
  const kafkaSettings = loadKafkaSettings(config.kafka, {
    authenticate: (token) => identity.authenticateBearer(token),
    decide: (principal, action) => policy.decide(principal, action),
    masking: {
      plansFor: (principal, topic) => policy.masks(principal, { kind: 'kafka', api: 'Fetch', operation: 'consume', topic }),
      mayMask: (principal) => policy.mayMaskKafka(principal),
      context: maskContext,
    },
    inspection: {
      plansFor: (principal, topic) => policy.rejects(principal, { kind: 'kafka', api: 'Produce', operation: 'produce', topic }),
      mayInspect: (principal) => policy.mayInspectKafka(principal),
    },
  });
  const networkExtProc = createNetworkExtProcHandler({
    logger,
    audit,
    settings: () => kafkaSettings,
    hooks: {
      onConnectionOpen: () => { metrics.kafkaConnections.inc(); metrics.kafkaConnectionsTotal.inc(); metrics.grpcStreams.inc({ service: 'network_ext_proc' }); },
      onConnectionClose: () => metrics.kafkaConnections.dec(),
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
      authz(call.request).then((res) => callback(null, res), (err: Error) => {
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
  const boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(new Error(`cannot listen on ${address}: ${err.message}`)) : resolve(port)));
  });
  const grpcAddress = address.startsWith('unix:') ? address : `${splitHostPort(address).host}:${boundPort}`;

  // Resolves once every issuer was tried; one that failed keeps retrying in the background and shows in /readyz.
  const identityReady = identity.start();

  const checks = (): ReadinessCheck[] => [
    { name: 'grpc', check: () => ({ ok: true, detail: grpcAddress }) },
    ...identity.health().map((h): ReadinessCheck => ({
      name: `oidc ${h.issuer}`,
      check: () => {
        const now = identity.verifier(h.issuer)?.health() ?? h;
        return now.ready ? { ok: true, detail: `${now.kids.length} keys` } : { ok: false, detail: now.lastError ?? 'keys not loaded yet' };
      },
    })),
  ];
  const adminAt = splitHostPort(config.server.admin.address);
  let admin: AdminServer;
  try {
    admin = await startAdminServer({ ...adminAt, registry: metrics.registry, checks });
  } catch (err) {
    server.forceShutdown();
    throw new Error(`cannot listen on admin address ${config.server.admin.address}: ${(err as Error).message}`);
  }
  logger.info({ grpc: grpcAddress, admin: `${admin.address.address}:${admin.address.port}`, rules: policy.ruleNames.length }, 'tollgate listening');

  let draining: Promise<{ forced: boolean }> | undefined;
  const drain = () => {
    draining ??= (async () => {
      logger.info({ deadlineMs: config.server.drainTimeout }, 'draining: no new streams; open ones may finish');
      admin.setDraining();
      health.setServing(false);
      const forced = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn('drain deadline reached; cutting the streams still open');
          server.forceShutdown();
          resolve(true);
        }, config.server.drainTimeout);
        server.tryShutdown(() => { clearTimeout(timer); resolve(false); });
      });
      identity.close();
      await admin.close();
      logger.info({ forced }, 'drained');
      // Hands what is buffered to a write; the process's exit waits for it (see bufferedStdout).
      logger.flush();
      return { forced };
    })();
    return draining;
  };

  return { grpcAddress, adminAddress: { host: admin.address.address, port: admin.address.port }, metrics, logger, identityReady, drain };
}
