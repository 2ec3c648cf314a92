/**
 * @module scripts/lib/stack
 * The whole data path on 127.0.0.1, as the quickstart runs it and the end-to-end tests exercise it: a dev OIDC
 * issuer, a demo HTTP upstream, a Kafka broker, `tollgate serve` as its own process, and one Envoy with the HTTP edge
 * and Kafka listeners from envoy/. Each test file starts one stack; the quickstart starts one on fixed ports.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import { startDevIssuer, type DevIssuer } from '../../src/dev/oidc-issuer.ts';
import { startDemoUpstream, type DemoUpstream } from '../../src/dev/demo-upstream.ts';
import { ensureEnvoy, ensureKafka } from '../provision.ts';
import { renderTemplate, startEnvoy, type EnvoyProcess } from './envoy.ts';
import { startKafka, type KafkaBroker } from './kafka.ts';
import { REPO_ROOT, RUN_DIR } from './paths.ts';
import { freePorts, LOOPBACK } from './ports.ts';
import { spawnManaged, type ManagedProcess } from './process.ts';

export const QUICKSTART_CONFIG = path.join(REPO_ROOT, 'examples', 'quickstart.yaml');
export const ENVOY_TEMPLATES = { http: path.join(REPO_ROOT, 'envoy', 'http-edge.yaml'), kafka: path.join(REPO_ROOT, 'envoy', 'kafka.yaml') } as const;
export const UPSTREAM_TOKEN_ENV = 'TOLLGATE_DEMO_UPSTREAM_TOKEN';

export interface StackPorts {
  httpListener: number;
  kafkaListener: number;
  issuer: number;
  grpc: number;
  admin: number;
  envoyAdmin: number;
}

export interface StackOptions {
  /** tollgate config; its `quickstart` section names the issuer's clients and the topics. Default: the quickstart's. */
  readonly configFile?: string;
  /** Fixed ports (the quickstart's); anything not given is a free port. */
  readonly ports?: Partial<StackPorts>;
  /** Default: a new folder under .cache/run. */
  readonly workDir?: string;
  /** Changes to the tollgate config before it is written for this stack (tests tighten limits this way). */
  readonly editConfig?: (config: Record<string, unknown>) => void;
  readonly tollgateLogLevel?: 'info' | 'debug';
  readonly progress?: (line: string) => void;
}

export interface Stack {
  readonly ports: StackPorts;
  readonly workDir: string;
  readonly config: Config;
  readonly issuer: DevIssuer;
  readonly upstream: DemoUpstream;
  readonly kafka: KafkaBroker;
  readonly envoy: EnvoyProcess;
  readonly tollgate: ManagedProcess;
  readonly tollgateConfigFile: string;
  readonly httpUrl: string;
  readonly kafkaBootstrap: string;
  readonly adminUrl: string;
  /** Audit records tollgate has logged so far, oldest first. */
  auditRecords(): AuditRecord[];
  /** Stops everything this stack started, in reverse order; idempotent. */
  stop(): Promise<void>;
}

/** One Envoy for both listeners: listeners and clusters of every template, the tollgate cluster once. */
export function mergeBootstraps(texts: readonly string[]): string {
  const docs = texts.map((t) => YAML.parse(t) as { admin: unknown; layered_runtime?: unknown; static_resources: { listeners: Array<{ name: string }>; clusters: Array<{ name: string }> } });
  const first = docs[0];
  if (!first) throw new Error('mergeBootstraps: expected at least one bootstrap');
  const listeners = docs.flatMap((d) => d.static_resources.listeners);
  const clusters = new Map<string, unknown>();
  for (const d of docs) for (const c of d.static_resources.clusters) if (!clusters.has(c.name)) clusters.set(c.name, c);
  const runtime = docs.find((d) => d.layered_runtime)?.layered_runtime;
  return YAML.stringify({ admin: first.admin, ...(runtime ? { layered_runtime: runtime } : {}), static_resources: { listeners, clusters: [...clusters.values()] } });
}

export function renderStackEnvoy(ports: StackPorts, broker: { host: string; port: number }, upstreamPort: number): string {
  const values = {
    ENVOY_ADMIN_PORT: ports.envoyAdmin, HTTP_LISTENER_PORT: ports.httpListener, KAFKA_LISTENER_PORT: ports.kafkaListener,
    TOLLGATE_HOST: LOOPBACK, TOLLGATE_PORT: ports.grpc, UPSTREAM_HOST: LOOPBACK, UPSTREAM_PORT: upstreamPort,
    BROKER_HOST: broker.host, BROKER_PORT: broker.port,
  };
  return mergeBootstraps([ENVOY_TEMPLATES.http, ENVOY_TEMPLATES.kafka].map((f) => renderTemplate(fs.readFileSync(f, 'utf8'), values)));
}

async function waitForReady(url: string, tollgate: ManagedProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (tollgate.exitInfo) throw tollgate.failure(`tollgate exited (${JSON.stringify(tollgate.exitInfo)}) before it was ready`);
    try {
      const res = await fetch(url);
      last = `${res.status} ${await res.text()}`;
      if (res.ok) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw tollgate.failure(`tollgate was not ready at ${url} within ${timeoutMs} ms (last: ${last})`);
}

export function readAuditRecords(logFile: string): AuditRecord[] {
  let text: string;
  try { text = fs.readFileSync(logFile, 'utf8'); } catch { return []; }
  const out: AuditRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { channel?: string; audit?: AuditRecord };
      if (entry.channel === 'audit' && entry.audit) out.push(entry.audit);
    } catch { /* a line cut by a crash is not a record */ }
  }
  return out;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const progress = options.progress ?? (() => {});
  const configFile = options.configFile ?? QUICKSTART_CONFIG;
  const configText = fs.readFileSync(configFile, 'utf8');
  const baseConfig = parseConfig(configText, configFile);
  const qs = baseConfig.quickstart;
  if (!qs) throw new Error(`${configFile}: expected a \`quickstart\` section (issuer clients, topics, listener ports)`);

  const free = await freePorts(6);
  const ports: StackPorts = {
    httpListener: options.ports?.httpListener ?? free[0]!,
    kafkaListener: options.ports?.kafkaListener ?? free[1]!,
    issuer: options.ports?.issuer ?? free[2]!,
    grpc: options.ports?.grpc ?? free[3]!,
    admin: options.ports?.admin ?? free[4]!,
    envoyAdmin: options.ports?.envoyAdmin ?? free[5]!,
  };
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  const workDir = options.workDir ?? await fs.promises.mkdtemp(path.join(RUN_DIR, 'stack-'));
  await fs.promises.mkdir(workDir, { recursive: true });

  const stops: Array<() => Promise<unknown>> = [];
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      for (const s of stops.reverse()) await s().catch(() => {});
    })();
    return stopped;
  };

  try {
    progress('provisioning Envoy and Kafka (cached after the first run)');
    await ensureEnvoy();
    await ensureKafka();

    const issuerUrl = `http://${LOOPBACK}:${ports.issuer}`;
    const issuer = await startDevIssuer({
      port: ports.issuer, issuerUrl, audience: qs.issuer.audience,
      clients: qs.issuer.clients.map((c) => ({ id: c.id, secret: c.secret, groups: [...c.groups] })),
    });
    stops.push(() => issuer.close());
    progress(`dev OIDC issuer ${issuer.issuer}`);

    const upstreamToken = randomBytes(24).toString('base64url');
    const upstream = await startDemoUpstream({ token: upstreamToken });
    stops.push(() => upstream.close());

    // tollgate's own config: the file as given, pointed at this stack's ports and issuer.
    const doc = YAML.parse(configText) as Record<string, any>;
    doc['server'] = { ...doc['server'], grpc: { ...doc['server']?.grpc, address: `${LOOPBACK}:${ports.grpc}` }, admin: { address: `${LOOPBACK}:${ports.admin}` } };
    if (options.tollgateLogLevel) doc['server'].logLevel = options.tollgateLogLevel;
    const quickstartIssuer = `http://${LOOPBACK}:${qs.issuer.port}`;
    for (const o of doc['identity']?.oidc ?? []) if (o.issuer === quickstartIssuer) o.issuer = issuerUrl;
    options.editConfig?.(doc);
    const tollgateConfigFile = path.join(workDir, 'tollgate.yaml');
    await fs.promises.writeFile(tollgateConfigFile, YAML.stringify(doc));
    const config = parseConfig(YAML.stringify(doc), tollgateConfigFile);

    const kafka = await startKafka({
      workDir: path.join(workDir, 'kafka'),
      // Clients must come back through Envoy after bootstrap, so the broker advertises Envoy's listener.
      extraServerProperties: { 'advertised.listeners': `PLAINTEXT://${LOOPBACK}:${ports.kafkaListener}` },
    });
    stops.push(() => kafka.stop());
    progress(`Kafka broker ${kafka.bootstrap} (pid ${kafka.pid})`);

    const tollgateLog = path.join(workDir, 'tollgate.log');
    const tollgate = await spawnManaged({
      name: 'tollgate',
      command: process.execPath,
      args: [path.join(REPO_ROOT, 'src', 'cli.ts'), 'serve', '--config', tollgateConfigFile],
      logFile: tollgateLog,
      env: { ...process.env, [UPSTREAM_TOKEN_ENV]: upstreamToken },
    });
    stops.push(() => tollgate.stop());
    const adminUrl = `http://${LOOPBACK}:${ports.admin}`;
    await waitForReady(`${adminUrl}/readyz`, tollgate, 30_000);
    progress(`tollgate gRPC ${LOOPBACK}:${ports.grpc}, admin ${adminUrl} (pid ${tollgate.pid})`);

    const envoy = await startEnvoy({
      configYaml: renderStackEnvoy(ports, kafka, upstream.port), adminPort: ports.envoyAdmin,
      workDir: path.join(workDir, 'envoy'),
    });
    stops.push(() => envoy.stop());
    progress(`Envoy HTTP :${ports.httpListener}, Kafka :${ports.kafkaListener}, admin :${ports.envoyAdmin} (pid ${envoy.pid})`);

    if (qs.topics.length > 0) {
      await kafka.createTopics(qs.topics);
      progress(`topics ${qs.topics.join(', ')}`);
    }

    return {
      ports, workDir, config, issuer, upstream, kafka, envoy, tollgate, tollgateConfigFile,
      httpUrl: `http://${LOOPBACK}:${ports.httpListener}`,
      kafkaBootstrap: `${LOOPBACK}:${ports.kafkaListener}`,
      adminUrl,
      auditRecords: () => readAuditRecords(tollgateLog),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
