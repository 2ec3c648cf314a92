/**
 * @module scripts/lib/kafka-cluster
 * A real, throwaway multi-node KRaft cluster for tests: every node is broker and controller at once, all of them
 * voters of one controller quorum, each its own JVM on free 127.0.0.1 ports, with data, config and log in a per-run
 * folder under RUN_DIR. Built on the single-broker harness (scripts/lib/kafka.ts): same jars, same defaults, same
 * readiness line.
 *
 * Three listeners per node:
 * - `PLAINTEXT` (`port`): the client listener. Its advertised address is the node's own unless `advertised` names
 *   another one (tests point each broker at its own Envoy listener, so clients come back through the proxy).
 *   With `sasl` it is named `SASL_PLAINTEXT` instead and speaks SASL_PLAINTEXT, as do the extra listeners; users and
 *   mechanisms as in the single-broker harness (PLAIN users in the listeners' JAAS config, SCRAM credentials written
 *   by StorageTool at format time, on every node).
 * - `INTERNAL` (`internalPort`): inter-broker replication, always advertised at the node itself and always PLAINTEXT
 *   (also with `sasl`), so replication never goes through a proxy under test. The harness's own admin traffic (readiness, createTopics) uses it too: it works
 *   before any proxy is up.
 * - `CONTROLLER` (`controllerPort`): the Raft quorum.
 * - `extraListeners`: more PLAINTEXT client listeners, each on its own port with its own advertised address. A client
 *   stays on the listener it bootstrapped on (Kafka answers Metadata with the addresses of the listener the request
 *   came in on), so one broker can serve several proxies side by side: bench/kafka-throughput.bench.ts compares the
 *   direct path with three proxies that way, on one warm broker.
 *
 * Quorum: dynamic (KIP-853), like the single-node harness. `controller.quorum.bootstrap.servers` lists every node's
 * controller endpoint and each node is formatted with the same `--initial-controllers id@host:port:directoryId,...`
 * (Kafka 4.1's StorageTool refuses `--standalone` for more than one voter, and `--no-initial-controllers` would leave
 * the quorum without voters). The directory ids are ours: random Uuids that each node's `format` writes into its
 * meta.properties, so the voter set and the disks agree from the first start. The static alternative
 * (`controller.quorum.voters`, formatted without a controller flag) works as well but is the deprecated form and
 * would diverge from the single-node harness.
 *
 * Sizing for the 2-core / 24 GiB machines: `-Xmx512m` per node and internal topics with replication factor
 * min(3, brokers) and one partition per broker (group and transaction coordinators spread over the nodes, without
 * the cost of 50 offset partitions with three replicas each).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import {
  assertKafkaProvisioned,
  brokerLog4j2,
  classpath,
  defaultServerProperties,
  formatProperties,
  harnessSasl,
  newClusterId,
  READY_LINE,
  runKafkaTool,
  saslListenerProperties,
  saslMechanisms,
  scramFormatArgs,
} from './kafka.ts';
import type { KafkaSaslOptions, ServerProperties } from './kafka.ts';
import type { SASLOptions } from 'kafkajs';
import { RUN_DIR } from './paths.ts';
import { freePorts, LOOPBACK } from './ports.ts';
import { spawnManaged } from './process.ts';
import type { ManagedProcess } from './process.ts';

export interface StartKafkaClusterOptions {
  /** How many nodes, each broker and controller (a voter). Default 3; 1 to 5. */
  readonly brokers?: number;
  /** Folder for every node's config, data and log (`node-<id>/`). Default: a new folder under RUN_DIR. */
  readonly workDir?: string;
  /**
   * The `host:port` node `nodeId` (1-based) advertises on client listener `listener` (`PLAINTEXT`, or
   * `SASL_PLAINTEXT` with `sasl`, or one of `extraListeners`); `undefined` keeps the listener's own address. Called
   * once per node and listener before anything starts.
   */
  readonly advertised?: (nodeId: number, listener: string) => string | undefined;
  /** Names of more client listeners (upper-case letters, digits, '_'), each on a free port of every node. */
  readonly extraListeners?: readonly string[];
  /** Merged over the defaults on every node (after the cluster's own settings). */
  readonly extraServerProperties?: ServerProperties;
  /** How long to wait for all nodes to be ready. Default 120 s (three cold JVMs on two cores). */
  readonly startTimeoutMs?: number;
  /** JVM options instead of the default ones (heap and GC); for measurements. */
  readonly jvmOptions?: readonly string[];
  /**
   * Make every client listener (the main one, then named `SASL_PLAINTEXT`, and the extra ones) SASL_PLAINTEXT with
   * these users and mechanisms. The inter-broker and controller listeners stay PLAINTEXT. Absent: PLAINTEXT.
   */
  readonly sasl?: KafkaSaslOptions;
}

export interface KafkaClusterNode {
  readonly nodeId: number;
  readonly host: string;
  /** Client listener (`clientListener`); what it advertises is `advertisedAddress`. */
  readonly port: number;
  /** Inter-broker listener (INTERNAL), always advertised at itself. */
  readonly internalPort: number;
  readonly controllerPort: number;
  /** `host:port` this node's client listener advertises. */
  readonly advertisedAddress: string;
  /** The `extraListeners`, by name: where each listens and what it advertises. */
  readonly extraListeners: Readonly<Record<string, ExtraListener>>;
  readonly pid: number;
  readonly workDir: string;
  /** Everything the node logged (log4j2 at INFO) and printed. */
  readonly logFile: string;
}

export interface ExtraListener {
  readonly port: number;
  readonly advertisedAddress: string;
}

export interface KafkaCluster {
  readonly nodes: readonly KafkaClusterNode[];
  /** Every node's client listener (`127.0.0.1:<port>,...`): clients bootstrap here, then follow what is advertised. */
  readonly bootstrap: string;
  /** Every node's inter-broker listener: always direct and PLAINTEXT, whatever the client listeners advertise. */
  readonly internalBootstrap: string;
  /** Name of the client listener: `PLAINTEXT`, or `SASL_PLAINTEXT` with `sasl`. */
  readonly clientListener: 'PLAINTEXT' | 'SASL_PLAINTEXT';
  /** Security protocol of the client listeners (main and extra). */
  readonly securityProtocol: 'PLAINTEXT' | 'SASL_PLAINTEXT';
  /** kafkajs credentials of the first SASL user with the first mechanism, for the client listeners; absent without `sasl`. */
  readonly clientSasl?: SASLOptions;
  readonly clusterId: string;
  readonly workDir: string;
  /**
   * Stop every node (SIGTERM, SIGKILL after 10 s), in parallel, and delete their data (not configs and logs).
   * Takes ~6 s: the last quorum leader waits out Raft's 5 s graceful-resignation timeout, its voters being gone.
   * Idempotent.
   */
  stop(): Promise<void>;
  /**
   * Create topics through the inter-broker listener and wait for their leaders; existing topics are left as they are.
   * Default 1 partition, replication factor min(3, brokers).
   */
  createTopics(names: readonly string[], partitions?: number, replicationFactor?: number): Promise<void>;
}

const MAX_BROKERS = 5;
const CLIENT_LISTENER = 'PLAINTEXT';
const SASL_CLIENT_LISTENER = 'SASL_PLAINTEXT';
const INTERNAL_LISTENER = 'INTERNAL';
const CONTROLLER_LISTENER = 'CONTROLLER';
/**
 * Measured on the 2-core machine, three nodes started in parallel until the metadata lists all of them (two runs
 * each): G1 (the JVM default) 9.2–12.1 s, SerialGC 9.2–10.3 s, SerialGC + C1 only 6.3–6.4 s, G1 + C1 only 6.4–6.7 s.
 * Three JVMs warming up on two cores spend their start in the JIT, and C1 alone (`-XX:TieredStopAtLevel=1`, as
 * runKafkaTool does for the tools) cuts that by a third. The cost is peak throughput under sustained load, which
 * functional tests do not need (bench/kafka-throughput.bench.ts passes the full JIT and G1 in `jvmOptions`).
 * SerialGC: no parallel GC threads competing for the two cores; it did not slow anything measured.
 */
const DEFAULT_JVM_OPTIONS: readonly string[] = ['-Xmx512m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1'];
const METADATA_POLL_MS = 200;

interface PlannedNode {
  readonly nodeId: number;
  readonly port: number;
  readonly internalPort: number;
  readonly controllerPort: number;
  readonly directoryId: string;
  readonly advertisedAddress: string;
  readonly extraListeners: Readonly<Record<string, ExtraListener>>;
  readonly workDir: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly propertiesFile: string;
  readonly log4j2File: string;
  /** `PLAINTEXT` or `SASL_PLAINTEXT`: name and security protocol of the client listener. */
  readonly clientListener: 'PLAINTEXT' | 'SASL_PLAINTEXT';
}

function advertisedAddress(options: StartKafkaClusterOptions, nodeId: number, listener: string, port: number): string {
  const address = options.advertised?.(nodeId, listener);
  if (address === undefined) return `${LOOPBACK}:${port}`;
  if (!/^[^\s:,/]+:\d{1,5}$/.test(address) || Number(address.slice(address.lastIndexOf(':') + 1)) > 65535) {
    throw new Error(`startKafkaCluster: advertised(${nodeId}, ${JSON.stringify(listener)}) returned ${JSON.stringify(address)}; expected "host:port"`);
  }
  return address;
}

function checkListenerNames(names: readonly string[]): void {
  const reserved = [CLIENT_LISTENER, SASL_CLIENT_LISTENER, INTERNAL_LISTENER, CONTROLLER_LISTENER];
  for (const name of names) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name) || reserved.includes(name)) {
      throw new Error(`startKafkaCluster: extra listener ${JSON.stringify(name)}: expected upper-case letters, digits and '_', not one of ${reserved.join(', ')}`);
    }
  }
  if (new Set(names).size !== names.length) throw new Error(`startKafkaCluster: extraListeners has duplicates: ${names.join(', ')}`);
}

/** The settings every node shares on top of the single-broker defaults, plus this node's identity and listeners. */
function nodeProperties(node: PlannedNode, all: readonly PlannedNode[], sasl: KafkaSaslOptions | undefined): ServerProperties {
  const replicas = Math.min(3, all.length);
  const minIsr = Math.min(2, all.length);
  const extras = Object.entries(node.extraListeners);
  const client = node.clientListener;
  const clientListeners = [client, ...extras.map(([name]) => name)];
  return {
    ...defaultServerProperties(node.port, node.controllerPort, node.dataDir),
    'node.id': node.nodeId,
    'listeners': [
      `${client}://${LOOPBACK}:${node.port}`,
      `${INTERNAL_LISTENER}://${LOOPBACK}:${node.internalPort}`,
      `${CONTROLLER_LISTENER}://${LOOPBACK}:${node.controllerPort}`,
      ...extras.map(([name, l]) => `${name}://${LOOPBACK}:${l.port}`),
    ].join(','),
    'advertised.listeners': [
      `${client}://${node.advertisedAddress}`,
      `${INTERNAL_LISTENER}://${LOOPBACK}:${node.internalPort}`,
      ...extras.map(([name, l]) => `${name}://${l.advertisedAddress}`),
    ].join(','),
    'listener.security.protocol.map': [
      ...clientListeners.map((name) => `${name}:${client}`),
      `${INTERNAL_LISTENER}:PLAINTEXT`,
      `${CONTROLLER_LISTENER}:PLAINTEXT`,
    ].join(','),
    'inter.broker.listener.name': INTERNAL_LISTENER,
    'controller.listener.names': CONTROLLER_LISTENER,
    'controller.quorum.bootstrap.servers': all.map((n) => `${LOOPBACK}:${n.controllerPort}`).join(','),
    'default.replication.factor': replicas,
    'offsets.topic.replication.factor': replicas,
    'offsets.topic.num.partitions': all.length,
    'transaction.state.log.replication.factor': replicas,
    'transaction.state.log.min.isr': minIsr,
    'transaction.state.log.num.partitions': all.length,
    'share.coordinator.state.topic.replication.factor': replicas,
    'share.coordinator.state.topic.min.isr': minIsr,
    'share.coordinator.state.topic.num.partitions': all.length,
    ...(sasl !== undefined ? saslListenerProperties(sasl, clientListeners) : {}),
  };
}

/** Start every node in parallel and wait until all are ready and the metadata lists each of them. */
export async function startKafkaCluster(options: StartKafkaClusterOptions = {}): Promise<KafkaCluster> {
  assertKafkaProvisioned();
  const count = options.brokers ?? 3;
  if (!Number.isInteger(count) || count < 1 || count > MAX_BROKERS) {
    throw new Error(`startKafkaCluster: brokers must be an integer from 1 to ${MAX_BROKERS}, got ${count}`);
  }
  const started = Date.now();
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  const ownsWorkDir = options.workDir === undefined;
  let workDir: string;
  if (options.workDir === undefined) {
    await fs.promises.mkdir(RUN_DIR, { recursive: true });
    workDir = await fs.promises.mkdtemp(path.join(RUN_DIR, 'kafka-cluster-'));
  } else {
    workDir = path.resolve(options.workDir);
    await fs.promises.mkdir(workDir, { recursive: true });
  }

  const extraNames = options.extraListeners ?? [];
  checkListenerNames(extraNames);
  const sasl = options.sasl;
  // Checks users and passwords before anything starts.
  if (sasl !== undefined) saslMechanisms(sasl);
  const clientListener = sasl !== undefined ? SASL_CLIENT_LISTENER : CLIENT_LISTENER;
  const perNode = 3 + extraNames.length;
  const ports = await freePorts(perNode * count);
  const planned: PlannedNode[] = Array.from({ length: count }, (_, i) => {
    const nodeId = i + 1;
    const [port, internalPort, controllerPort, ...extraPorts] = ports.slice(perNode * i, perNode * (i + 1)) as [number, number, number, ...number[]];
    const nodeDir = path.join(workDir, `node-${nodeId}`);
    return {
      nodeId,
      port,
      internalPort,
      controllerPort,
      // Same shape as a cluster id: a Kafka Uuid in URL-safe base64.
      directoryId: newClusterId(),
      advertisedAddress: advertisedAddress(options, nodeId, clientListener, port),
      extraListeners: Object.fromEntries(extraNames.map((name, j) => {
        const extraPort = extraPorts[j]!;
        return [name, { port: extraPort, advertisedAddress: advertisedAddress(options, nodeId, name, extraPort) }];
      })),
      workDir: nodeDir,
      dataDir: path.join(nodeDir, 'data'),
      logFile: path.join(nodeDir, 'kafka.log'),
      propertiesFile: path.join(nodeDir, 'server.properties'),
      log4j2File: path.join(nodeDir, 'log4j2.xml'),
      clientListener,
    };
  });
  const clusterId = newClusterId();
  const initialControllers = planned.map((n) => `${n.nodeId}@${LOOPBACK}:${n.controllerPort}:${n.directoryId}`).join(',');

  // Format all nodes at once: one short JVM each.
  await Promise.all(planned.map(async (node) => {
    await fs.promises.mkdir(node.workDir, { recursive: true });
    await fs.promises.writeFile(node.propertiesFile, formatProperties({ ...nodeProperties(node, planned, sasl), ...options.extraServerProperties }));
    await fs.promises.writeFile(node.log4j2File, brokerLog4j2(node.logFile));
    const format = await runKafkaTool('kafka.tools.StorageTool', [
      'format', '--ignore-formatted', '-t', clusterId, '-c', node.propertiesFile, '--initial-controllers', initialControllers,
      ...(sasl !== undefined ? scramFormatArgs(sasl) : []),
    ], { timeoutMs: 60_000 });
    if (format.code !== 0) {
      throw new Error(`kafka cluster: formatting node ${node.nodeId} in ${node.dataDir} failed (StorageTool exited with code ${format.code}):\n${format.stderr}${format.stdout}`);
    }
  }));

  const processes: ManagedProcess[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      // All at once: stopping one by one would have the last nodes wait for a quorum that is already gone.
      await Promise.all(processes.map((p) => p.stop(10_000)));
      if (ownsWorkDir) await Promise.all(planned.map((n) => fs.promises.rm(n.dataDir, { recursive: true, force: true })));
    })();
    return stopped;
  };

  try {
    for (const node of planned) {
      processes.push(await spawnManaged({
        name: `kafka-${node.nodeId}`,
        command: 'java',
        args: [
          ...(options.jvmOptions ?? DEFAULT_JVM_OPTIONS),
          '-Djava.awt.headless=true',
          `-Dlog4j2.configurationFile=${node.log4j2File}`,
          '-cp', classpath(),
          'kafka.Kafka', node.propertiesFile,
        ],
        logFile: node.logFile,
        cwd: node.workDir,
      }));
    }
    const remaining = () => Math.max(1, timeoutMs - (Date.now() - started));
    await Promise.all(processes.map((p) => p.waitForLog(READY_LINE, remaining())));
    const internalBootstrap = planned.map((n) => `${LOOPBACK}:${n.internalPort}`).join(',');
    await waitForBrokers(internalBootstrap, count, started + timeoutMs);

    return {
      nodes: planned.map((node, i) => ({
        nodeId: node.nodeId,
        host: LOOPBACK,
        port: node.port,
        internalPort: node.internalPort,
        controllerPort: node.controllerPort,
        advertisedAddress: node.advertisedAddress,
        extraListeners: node.extraListeners,
        pid: processes[i]!.pid,
        workDir: node.workDir,
        logFile: node.logFile,
      })),
      bootstrap: planned.map((n) => `${LOOPBACK}:${n.port}`).join(','),
      internalBootstrap,
      clientListener,
      securityProtocol: clientListener,
      ...(sasl !== undefined && { clientSasl: harnessSasl(sasl) }),
      clusterId,
      workDir,
      stop,
      createTopics: (names, partitions = 1, replicationFactor = Math.min(3, count)) =>
        createTopics(internalBootstrap, names, partitions, replicationFactor),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Until a Metadata answer lists `count` brokers (every node registered and unfenced), or the deadline. */
async function waitForBrokers(bootstrap: string, count: number, deadline: number): Promise<void> {
  let last = 'no answer yet';
  for (;;) {
    // A fresh client per attempt: kafkajs keeps connections to brokers it learnt from earlier answers.
    const admin = new Kafka({ clientId: 'tollgate-harness-cluster', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
    try {
      await admin.connect();
      const { brokers } = await admin.describeCluster();
      if (brokers.length === count) return;
      last = `${brokers.length} broker(s): ${brokers.map((b) => b.nodeId).join(', ')}`;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      await admin.disconnect().catch(() => {});
    }
    if (Date.now() >= deadline) throw new Error(`kafka cluster: metadata did not list ${count} brokers in time (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, METADATA_POLL_MS));
  }
}

async function createTopics(bootstrap: string, names: readonly string[], partitions: number, replicationFactor: number): Promise<void> {
  if (names.length === 0) return;
  const admin = new Kafka({ clientId: 'tollgate-harness-admin', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING }).admin();
  try {
    await admin.connect();
    await admin.createTopics({
      topics: names.map((topic) => ({ topic, numPartitions: partitions, replicationFactor })),
      waitForLeaders: true,
    });
  } catch (err) {
    throw new Error(`kafka cluster: creating topics ${names.join(', ')} (${partitions} partition(s), replication factor ${replicationFactor}) failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await admin.disconnect();
  }
}
