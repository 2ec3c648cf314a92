/**
 * @module scripts/lib/stack
 * The whole data path on 127.0.0.1, as the quickstart runs it and the end-to-end tests exercise it: a dev OIDC
 * issuer, a demo HTTP upstream, Kafka (one broker, or a three-node cluster), `tollgate serve` as its own process, and
 * one Envoy with the HTTP edge listener and one Kafka listener per broker from envoy/. Each test file starts one
 * stack; the quickstart starts one on fixed ports.
 *
 * Kafka as a gateway sees it:
 * - the brokers' client listeners are SASL_PLAINTEXT (PLAIN and SCRAM-SHA-512) with one user, the gateway's
 *   (`tollgate`, a random password per stack, handed to tollgate in TOLLGATE_KAFKA_PASSWORD), and advertise their
 *   own addresses;
 * - the tollgate config written for the stack gets `kafka.upstream.sasl` (that credential) and `kafka.brokers` (each
 *   node id → its Envoy listener), so tollgate rewrites broker addresses to Envoy;
 * - clients authenticate to tollgate with SASL OAUTHBEARER and a token of the stack's dev issuer (`kafkaClient`);
 * - the harness's own admin traffic (topics) takes the direct path (`directKafka`): the single broker's SASL
 *   listener with the gateway user, or the cluster's PLAINTEXT inter-broker listener. It never goes through tollgate.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { Kafka, logLevel } from 'kafkajs';
import type { KafkaConfig as KafkaJsConfig, SASLOptions } from 'kafkajs';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import { startDevIssuer, type DevIssuer } from '../../src/dev/oidc-issuer.ts';
import { startDemoUpstream, type DemoUpstream } from '../../src/dev/demo-upstream.ts';
import { ensureEnvoy, ensureEtcd, ensureKafka, ensureKubernetes } from '../provision.ts';
import { KUBE_GATEWAY_TOKEN_ENV, startKubeGateway, type KubeGateway } from './kube-gateway.ts';
import { renderTemplate, startEnvoy, type EnvoyProcess } from './envoy.ts';
import { harnessSasl, startKafka, type KafkaSaslMechanism, type KafkaSaslOptions, type ServerProperties } from './kafka.ts';
import { startKafkaCluster } from './kafka-cluster.ts';
import { REPO_ROOT, RUN_DIR } from './paths.ts';
import { freePorts, LOOPBACK } from './ports.ts';
import { spawnManaged, type ManagedProcess } from './process.ts';

export const QUICKSTART_CONFIG = path.join(REPO_ROOT, 'examples', 'quickstart.yaml');
export const ENVOY_TEMPLATES = { http: path.join(REPO_ROOT, 'envoy', 'http-edge.yaml'), kafka: path.join(REPO_ROOT, 'envoy', 'kafka.yaml') } as const;
export const UPSTREAM_TOKEN_ENV = 'TOLLGATE_DEMO_UPSTREAM_TOKEN';
/** The environment variable the stack hands tollgate the gateway's broker password in. */
export const KAFKA_PASSWORD_ENV = 'TOLLGATE_KAFKA_PASSWORD';
/** The broker user tollgate authenticates as, unless the config's `kafka.upstream.sasl.username` names another. */
export const GATEWAY_KAFKA_USER = 'tollgate';

export interface StackPorts {
  httpListener: number;
  /** The Envoy Kafka listener of the first broker (node 1): clients bootstrap here. */
  kafkaListener: number;
  issuer: number;
  grpc: number;
  admin: number;
  envoyAdmin: number;
  /** Envoy's Kubernetes gateway listener (TLS), used only with `kubernetes: true`. */
  kubernetesListener: number;
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
  /** One broker (default) or a three-node KRaft cluster; each gets its own Envoy listener. */
  readonly brokers?: 1 | 3;
  /** Extra broker properties (single broker only), e.g. `connections.max.reauth.ms` to make the broker ask for re-authentication. */
  readonly kafkaServerProperties?: ServerProperties;
  /** More HTTP upstreams behind the edge listener, each for its own hosts (the demo upstream keeps every other host). */
  readonly httpUpstreams?: readonly StackHttpUpstream[];
  /** Also a real Kubernetes API server behind Envoy's Kubernetes gateway listener (scripts/lib/kube-gateway.ts). */
  readonly kubernetes?: boolean;
}

/** An HTTP upstream the edge listener routes requests for `domains` to (an Envoy virtual host and cluster). */
export interface StackHttpUpstream {
  /** Names the virtual host and the cluster. */
  readonly name: string;
  /** Envoy virtual host domains, e.g. `["kafka-rest.test", "kafka-rest.test:*"]`. */
  readonly domains: readonly string[];
  readonly port: number;
}

/** One broker as the stack runs it. */
export interface StackBroker {
  readonly nodeId: number;
  readonly host: string;
  /** The broker's own SASL_PLAINTEXT client listener (what it advertises). Clients never use it directly. */
  readonly port: number;
  /** `host:port` of the broker's own client listener. */
  readonly address: string;
  /** The Envoy listener for this broker (network ext_proc → tcp_proxy to `address`). */
  readonly envoyPort: number;
  /** `127.0.0.1:<envoyPort>`: what tollgate advertises for this node. */
  readonly envoyAddress: string;
  readonly pid: number;
  readonly logFile: string;
}

export interface StackKafka {
  readonly brokers: readonly StackBroker[];
  /** The broker-side credential tollgate uses (from the stack's config). */
  readonly gatewayUser: string;
  /** The harness's direct path to the brokers (not through Envoy or tollgate): bootstrap addresses and credentials. */
  readonly direct: { readonly brokers: readonly string[]; readonly sasl?: SASLOptions };
  /** Create topics on the direct path and wait for their leaders; existing topics are left as they are. */
  createTopics(names: readonly string[], partitions?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface StackKafkaClientOptions {
  readonly clientId?: string;
  /** Token subject and groups (minted by the stack's dev issuer for each authentication). */
  readonly sub: string;
  readonly groups: readonly string[];
  /** Default: the Envoy listener of the first broker only. */
  readonly brokers?: readonly string[];
  /** Merged into the kafkajs config (e.g. `retry`, `logLevel`, `logCreator`). */
  readonly kafkajs?: Partial<KafkaJsConfig>;
}

export interface Stack {
  readonly ports: StackPorts;
  readonly workDir: string;
  readonly config: Config;
  readonly issuer: DevIssuer;
  readonly upstream: DemoUpstream;
  readonly kafka: StackKafka;
  readonly envoy: EnvoyProcess;
  readonly tollgate: ManagedProcess;
  readonly tollgateConfigFile: string;
  /** With `kubernetes: true`: the API server, the gateway listener and kubectl through it. */
  readonly kubernetes: KubeGateway | undefined;
  readonly httpUrl: string;
  /** `127.0.0.1:<port>` of the first broker's Envoy listener. */
  readonly kafkaBootstrap: string;
  /** Every broker's Envoy listener port, by node id order. */
  readonly kafkaListeners: readonly number[];
  readonly adminUrl: string;
  /** A token of the stack's dev issuer (tollgate's `identity.oidc` trusts it). */
  mintToken(sub: string, groups: readonly string[], ttlSeconds?: number): Promise<string>;
  /** A kafkajs client through Envoy and tollgate, authenticating with OAUTHBEARER (a fresh token per authentication). */
  kafkaClient(options: StackKafkaClientOptions): Kafka;
  /** A kafkajs client on the direct path (the harness's admin credential): for checks behind tollgate's back. */
  directKafka(clientId?: string): Kafka;
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

/** A broker behind its own Envoy listener. */
export interface StackEnvoyBroker {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
  readonly listenerPort: number;
}

interface KafkaBootstrapDoc {
  static_resources: {
    listeners: Array<{ name: string; filter_chains: Array<{ filters: Array<{ name: string; typed_config: Record<string, unknown> }> }> }>;
    clusters: Array<{ name: string; load_assignment: { cluster_name: string } }>;
  };
}

/**
 * envoy/kafka.yaml rendered for one broker, its names suffixed with the node id so several fit in one bootstrap:
 * listener `kafka_<id>`, broker cluster `kafka_broker_<id>`, stat prefixes `kafka_<id>` and `kafka_ext_proc_<id>`.
 * The tollgate cluster keeps its name: every listener shares it.
 */
export function renderKafkaBrokerListener(template: string, values: Readonly<Record<string, string | number>>, broker: StackEnvoyBroker): string {
  const doc = YAML.parse(renderTemplate(template, {
    ...values, KAFKA_LISTENER_PORT: broker.listenerPort, BROKER_HOST: broker.host, BROKER_PORT: broker.port,
  })) as KafkaBootstrapDoc;
  const { listeners, clusters } = doc.static_resources;
  if (listeners.length !== 1) throw new Error(`renderKafkaBrokerListener: expected one listener in ${ENVOY_TEMPLATES.kafka}, found ${listeners.length}`);
  const listener = listeners[0]!;
  const suffix = `_${broker.nodeId}`;
  const renamed = new Map<string, string>();
  listener.name += suffix;
  for (const chain of listener.filter_chains) {
    for (const filter of chain.filters) {
      const config = filter.typed_config;
      if (typeof config['stat_prefix'] === 'string') config['stat_prefix'] += suffix;
      if (filter.name === 'envoy.filters.network.tcp_proxy' && typeof config['cluster'] === 'string') {
        renamed.set(config['cluster'], config['cluster'] + suffix);
        config['cluster'] += suffix;
      }
    }
  }
  for (const cluster of clusters) {
    const name = renamed.get(cluster.name);
    if (name === undefined) continue;
    cluster.name = name;
    cluster.load_assignment.cluster_name = name;
  }
  return YAML.stringify(doc);
}

/**
 * The stack's one Envoy: the HTTP edge and the Kafka listeners. Given one `{host, port}`, one Kafka listener on
 * `ports.kafkaListener` exactly as envoy/kafka.yaml names it; given brokers, one listener per broker
 * (`renderKafkaBrokerListener`).
 */
export function renderStackEnvoy(
  ports: StackPorts, brokers: { host: string; port: number } | readonly StackEnvoyBroker[], upstreamPort: number, httpUpstreams: readonly StackHttpUpstream[] = [],
): string {
  const values = {
    ENVOY_ADMIN_PORT: ports.envoyAdmin, HTTP_LISTENER_PORT: ports.httpListener, KAFKA_LISTENER_PORT: ports.kafkaListener,
    TOLLGATE_HOST: LOOPBACK, TOLLGATE_PORT: ports.grpc, UPSTREAM_HOST: LOOPBACK, UPSTREAM_PORT: upstreamPort,
  };
  const http = withHttpUpstreams(renderTemplate(fs.readFileSync(ENVOY_TEMPLATES.http, 'utf8'), values), httpUpstreams);
  const kafkaTemplate = fs.readFileSync(ENVOY_TEMPLATES.kafka, 'utf8');
  if (!Array.isArray(brokers)) {
    const one = brokers as { host: string; port: number };
    return mergeBootstraps([http, renderTemplate(kafkaTemplate, { ...values, BROKER_HOST: one.host, BROKER_PORT: one.port })]);
  }
  const list = brokers as readonly StackEnvoyBroker[];
  if (list.length === 0) throw new Error('renderStackEnvoy: expected at least one broker');
  return mergeBootstraps([http, ...list.map((b) => renderKafkaBrokerListener(kafkaTemplate, values, b))]);
}

interface HttpEdgeDoc {
  static_resources: {
    listeners: Array<{ filter_chains: Array<{ filters: Array<{ typed_config: { route_config?: { virtual_hosts: unknown[] } } }> }> }>;
    clusters: unknown[];
  };
}

/** The HTTP edge bootstrap with a virtual host and a cluster per extra upstream, ahead of the catch-all host. */
export function withHttpUpstreams(httpBootstrap: string, upstreams: readonly StackHttpUpstream[]): string {
  if (upstreams.length === 0) return httpBootstrap;
  const doc = YAML.parse(httpBootstrap) as HttpEdgeDoc;
  const routes = doc.static_resources.listeners[0]?.filter_chains[0]?.filters[0]?.typed_config.route_config;
  if (routes === undefined) throw new Error(`withHttpUpstreams: expected a route_config in the first filter of ${ENVOY_TEMPLATES.http}`);
  routes.virtual_hosts.unshift(...upstreams.map((u) => ({
    name: u.name, domains: [...u.domains], routes: [{ match: { prefix: '/' }, route: { cluster: u.name, timeout: '0s' } }],
  })));
  doc.static_resources.clusters.push(...upstreams.map((u) => ({
    name: u.name, type: 'STATIC', connect_timeout: '2s',
    load_assignment: { cluster_name: u.name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: LOOPBACK, port_value: u.port } } } }] }] },
  })));
  return YAML.stringify(doc);
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

  const brokerCount = options.brokers ?? 1;
  if (brokerCount !== 1 && brokerCount !== 3) throw new Error(`startStack: brokers must be 1 or 3, got ${String(brokerCount)}`);
  const free = await freePorts(7 + brokerCount - 1);
  const ports: StackPorts = {
    httpListener: options.ports?.httpListener ?? free[0]!,
    kafkaListener: options.ports?.kafkaListener ?? free[1]!,
    issuer: options.ports?.issuer ?? free[2]!,
    grpc: options.ports?.grpc ?? free[3]!,
    admin: options.ports?.admin ?? free[4]!,
    envoyAdmin: options.ports?.envoyAdmin ?? free[5]!,
    kubernetesListener: options.ports?.kubernetesListener ?? free[6]!,
  };
  // Node ids are 1..n in both harnesses; node 1's listener is the bootstrap one.
  const kafkaListeners = [ports.kafkaListener, ...free.slice(7)];
  const nodeIds = kafkaListeners.map((_, i) => i + 1);
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

    let kubernetes: KubeGateway | undefined;
    if (options.kubernetes === true) {
      progress('provisioning and starting the Kubernetes API server (etcd + kube-apiserver)');
      await ensureKubernetes();
      await ensureEtcd();
      kubernetes = await startKubeGateway({ workDir, listenerPort: ports.kubernetesListener });
      const gateway = kubernetes;
      stops.push(() => gateway.stop());
      progress(`Kubernetes API server ${gateway.apiServer.url} (namespace demo, Secret db-credentials)`);
    }

    // tollgate's own config: the file as given, pointed at this stack's ports, issuer and brokers.
    const doc = YAML.parse(configText) as Record<string, any>;
    doc['server'] = { ...doc['server'], grpc: { ...doc['server']?.grpc, address: `${LOOPBACK}:${ports.grpc}` }, admin: { address: `${LOOPBACK}:${ports.admin}` } };
    if (options.tollgateLogLevel) doc['server'].logLevel = options.tollgateLogLevel;
    const quickstartIssuer = `http://${LOOPBACK}:${qs.issuer.port}`;
    for (const o of doc['identity']?.oidc ?? []) if (o.issuer === quickstartIssuer) o.issuer = issuerUrl;
    // The gateway's broker credential: the config's mechanism and user if it names them, always this stack's password.
    const upstreamSasl = (doc['kafka']?.upstream?.sasl ?? {}) as { mechanism?: string; username?: string };
    const gatewayMechanism = (upstreamSasl.mechanism ?? 'SCRAM-SHA-512') as KafkaSaslMechanism;
    const gatewayUser = upstreamSasl.username ?? GATEWAY_KAFKA_USER;
    const gatewayPassword = randomBytes(24).toString('base64url');
    doc['kafka'] = {
      ...doc['kafka'],
      upstream: { ...doc['kafka']?.upstream, sasl: { mechanism: gatewayMechanism, username: gatewayUser, password: { env: KAFKA_PASSWORD_ENV } } },
      brokers: nodeIds.map((nodeId, i) => ({ nodeId, advertise: `${LOOPBACK}:${kafkaListeners[i]!}` })),
    };
    // Approvals live in this stack's folder, never in a store another run (or the quickstart) shares.
    doc['approvals'] = { ...doc['approvals'], store: { sqlite: { path: path.join(workDir, 'approvals.sqlite') } } };
    kubernetes?.editConfig(doc);
    options.editConfig?.(doc);
    const tollgateConfigFile = path.join(workDir, 'tollgate.yaml');
    await fs.promises.writeFile(tollgateConfigFile, YAML.stringify(doc));
    const config = parseConfig(YAML.stringify(doc), tollgateConfigFile);

    // Brokers start while tollgate does (a cold JVM takes seconds); stop() waits for them either way.
    const sasl: KafkaSaslOptions = {
      users: [{ name: gatewayUser, password: gatewayPassword }],
      mechanisms: [...new Set<KafkaSaslMechanism>(['PLAIN', 'SCRAM-SHA-512', gatewayMechanism])],
    };
    const kafkaStarting = startStackKafka(brokerCount, sasl, path.join(workDir, 'kafka'), kafkaListeners, options.kafkaServerProperties);
    stops.push(() => kafkaStarting.then((k) => k.stop()));

    const tollgateLog = path.join(workDir, 'tollgate.log');
    const tollgate = await spawnManaged({
      name: 'tollgate',
      command: process.execPath,
      args: [path.join(REPO_ROOT, 'src', 'cli.ts'), 'serve', '--config', tollgateConfigFile],
      logFile: tollgateLog,
      env: {
        ...process.env, [UPSTREAM_TOKEN_ENV]: upstreamToken, [KAFKA_PASSWORD_ENV]: gatewayPassword,
        ...(kubernetes !== undefined && { [KUBE_GATEWAY_TOKEN_ENV]: kubernetes.gatewayToken }),
      },
    });
    stops.push(() => tollgate.stop());
    const adminUrl = `http://${LOOPBACK}:${ports.admin}`;
    await waitForReady(`${adminUrl}/readyz`, tollgate, 30_000);
    progress(`tollgate gRPC ${LOOPBACK}:${ports.grpc}, admin ${adminUrl} (pid ${tollgate.pid})`);

    const kafka = await kafkaStarting;
    for (const b of kafka.brokers) progress(`Kafka broker ${b.nodeId} ${b.address} (SASL_PLAINTEXT, pid ${b.pid}) behind Envoy :${b.envoyPort}`);

    const stackEnvoy = renderStackEnvoy(ports, kafka.brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, listenerPort: b.envoyPort })), upstream.port, options.httpUpstreams);
    const envoy = await startEnvoy({
      configYaml: kubernetes === undefined ? stackEnvoy
        : mergeBootstraps([stackEnvoy, kubernetes.envoyBootstrap({ envoyAdminPort: ports.envoyAdmin, tollgatePort: ports.grpc })]),
      adminPort: ports.envoyAdmin,
      workDir: path.join(workDir, 'envoy'),
    });
    stops.push(() => envoy.stop());
    progress(`Envoy HTTP :${ports.httpListener}, Kafka :${kafkaListeners.join(', :')}${kubernetes ? `, Kubernetes :${ports.kubernetesListener}` : ''}, admin :${ports.envoyAdmin} (pid ${envoy.pid})`);

    if (qs.topics.length > 0) {
      await kafka.createTopics(qs.topics);
      progress(`topics ${qs.topics.join(', ')}`);
    }

    const kafkaBootstrap = `${LOOPBACK}:${ports.kafkaListener}`;
    const mintToken = (sub: string, groups: readonly string[], ttlSeconds?: number) =>
      issuer.mint({ sub, groups: [...groups], ...(ttlSeconds !== undefined && { ttlSeconds }) });
    return {
      ports, workDir, config, issuer, upstream, kafka, envoy, tollgate, tollgateConfigFile, kubernetes,
      httpUrl: `http://${LOOPBACK}:${ports.httpListener}`,
      kafkaBootstrap,
      kafkaListeners,
      adminUrl,
      mintToken,
      kafkaClient: (o) => new Kafka({
        clientId: o.clientId ?? `stack-${o.sub}`,
        brokers: [...(o.brokers ?? [kafkaBootstrap])],
        logLevel: logLevel.NOTHING,
        sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: await mintToken(o.sub, o.groups) }) },
        ...o.kafkajs,
      }),
      directKafka: (clientId = 'stack-direct') => new Kafka({
        clientId, brokers: [...kafka.direct.brokers], logLevel: logLevel.NOTHING,
        ...(kafka.direct.sasl !== undefined && { sasl: kafka.direct.sasl }),
      }),
      auditRecords: () => readAuditRecords(tollgateLog),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** One SASL broker, or a cluster whose client listeners are SASL and whose inter-broker listener is the direct path. */
async function startStackKafka(count: 1 | 3, sasl: KafkaSaslOptions, workDir: string, envoyPorts: readonly number[], extraServerProperties?: ServerProperties): Promise<StackKafka> {
  const gatewayUser = sasl.users[0]!.name;
  const envoyOf = (nodeId: number) => envoyPorts[nodeId - 1]!;
  if (count === 1) {
    const broker = await startKafka({ workDir, sasl, ...(extraServerProperties !== undefined && { extraServerProperties }) });
    const direct = { brokers: [broker.bootstrap], sasl: harnessSasl(sasl) };
    return {
      brokers: [{
        nodeId: 1, host: broker.host, port: broker.port, address: broker.bootstrap, envoyPort: envoyOf(1),
        envoyAddress: `${LOOPBACK}:${envoyOf(1)}`, pid: broker.pid, logFile: broker.logFile,
      }],
      gatewayUser,
      direct,
      createTopics: (names, partitions) => broker.createTopics(names, partitions),
      stop: () => broker.stop(),
    };
  }
  const cluster = await startKafkaCluster({ brokers: count, workDir, sasl });
  return {
    brokers: cluster.nodes.map((n) => ({
      nodeId: n.nodeId, host: n.host, port: n.port, address: `${n.host}:${n.port}`, envoyPort: envoyOf(n.nodeId),
      envoyAddress: `${LOOPBACK}:${envoyOf(n.nodeId)}`, pid: n.pid, logFile: n.logFile,
    })),
    gatewayUser,
    direct: { brokers: cluster.internalBootstrap.split(',') },
    createTopics: (names, partitions) => cluster.createTopics(names, partitions),
    stop: () => cluster.stop(),
  };
}
