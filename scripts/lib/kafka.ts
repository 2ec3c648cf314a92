/**
 * @module scripts/lib/kafka
 * A real, throwaway Kafka broker for tests and the quickstart, and a runner for Kafka's own command-line tools.
 *
 * The broker is one KRaft node that is both broker and controller, listening in PLAINTEXT on 127.0.0.1 on free
 * ports, with its data, config and log in a per-run folder under RUN_DIR. It is sized and tuned for tests:
 * - `-Xmx512m` (RSS ends up around 350 MB);
 * - internal topics (offsets, transaction state, share-group state) with replication factor 1 and one partition,
 *   because there is one node and creating 50 offset partitions on first use only costs time;
 * - `group.initial.rebalance.delay.ms=0` so a consumer group forms at once instead of after 3 s;
 * - `message.max.bytes` 4 MiB (default ~1 MiB) so tests can send records of 2 MiB;
 * - `auto.create.topics.enable=false`: a test that forgets `createTopics` fails at once with
 *   UNKNOWN_TOPIC_OR_PARTITION, instead of silently racing an auto-created topic's leader election.
 * Anything can be overridden with `extraServerProperties`.
 *
 * With `sasl`, the client listener is SASL_PLAINTEXT instead (see `saslServerProperties`).
 *
 * Needs the jars from `node scripts/provision.ts kafka` and `java` (17+) on PATH.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { SASLOptions } from 'kafkajs';
import { KAFKA_LIBS_DIR, KAFKA_TOOLS_LOG4J2, KAFKA_VERSION, RUN_DIR } from './paths.ts';
import { freePorts, LOOPBACK } from './ports.ts';
import { runCommand, spawnManaged, type ManagedProcess } from './process.ts';
import type { CommandResult } from './process.ts';

export type ServerProperties = Readonly<Record<string, string | number | boolean>>;

export interface StartKafkaOptions {
  /** Folder for server.properties, log4j2.xml, kafka.log and data/. Default: a new folder under RUN_DIR. */
  readonly workDir?: string;
  /** Added to, or replacing, the defaults described in the module comment. */
  readonly extraServerProperties?: ServerProperties;
  /** How long to wait for `Kafka Server started`. Default 90 s (a cold JVM on a busy 2-core machine). */
  readonly startTimeoutMs?: number;
  /** Make the client listener SASL_PLAINTEXT with these users and mechanisms. Absent: PLAINTEXT, as before. */
  readonly sasl?: KafkaSaslOptions;
}

/**
 * OAUTHBEARER uses Kafka's built-in *unsecured* validator (accepts unsigned JWTs, alg "none", with `sub` and
 * `exp`): for tests of the wire format only. It cannot be the first mechanism (the inter-broker one).
 */
export type KafkaSaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'OAUTHBEARER';

export interface KafkaSaslUser {
  /** Letters, digits, '.', '_' or '-' (it becomes part of a JAAS option name, `user_<name>`). */
  readonly name: string;
  /** Printable ASCII without '"', '\\' or ',' (quoted in JAAS; ',' separates StorageTool's --add-scram fields). */
  readonly password: string;
}

export interface KafkaSaslOptions {
  /** At least one. The first also authenticates the harness's own admin client (createTopics). */
  readonly users: readonly KafkaSaslUser[];
  /** Default `['PLAIN', 'SCRAM-SHA-512']`. Every user gets credentials for every mechanism listed. */
  readonly mechanisms?: readonly KafkaSaslMechanism[];
}

export interface KafkaBroker {
  /** `127.0.0.1:<port>`, for clients' bootstrap servers. */
  readonly bootstrap: string;
  readonly host: string;
  readonly port: number;
  readonly controllerPort: number;
  /** Security protocol of the client listener at `bootstrap`: `SASL_PLAINTEXT` when started with `sasl`. */
  readonly securityProtocol: 'PLAINTEXT' | 'SASL_PLAINTEXT';
  readonly pid: number;
  readonly clusterId: string;
  readonly workDir: string;
  /** Everything the broker logged (log4j2 at INFO) and printed. */
  readonly logFile: string;
  /** Stop the broker (SIGTERM, then SIGKILL after 15 s) and delete its data, but not its config and log. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL the broker process (a crash): its data, config and ports stay for `restart`. */
  kill(): Promise<void>;
  /** Start the broker again on the same ports, config and data (stopping it first if it runs); `pid` changes. */
  restart(): Promise<void>;
  /** Create topics and wait for their leaders; topics that already exist are left as they are. */
  createTopics(names: readonly string[], partitions?: number): Promise<void>;
}

/** The readiness line KafkaRaftServer logs once every listener accepts requests. */
export const READY_LINE = /Kafka Server started/;
const BROKER_NODE_ID = 1;

/** Throws with the fix if the jars are not there. */
export function assertKafkaProvisioned(): void {
  if (!fs.existsSync(path.join(KAFKA_LIBS_DIR, `kafka_2.13-${KAFKA_VERSION}.jar`))) {
    throw new Error(`Kafka ${KAFKA_VERSION} jars not found in ${KAFKA_LIBS_DIR}: run node scripts/provision.ts kafka`);
  }
}

/** `-cp` value: a literal `*`, expanded by Java itself (we never go through a shell). */
export function classpath(): string {
  return `${KAFKA_LIBS_DIR}/*`;
}

/**
 * A KRaft cluster id: 16 random bytes in URL-safe base64 without padding (22 characters), as Kafka's Uuid prints
 * them. Kafka's own generator avoids a leading '-' so the id cannot be mistaken for a command-line flag; so do we.
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** `key=value` lines. Keys are plain words; values get the escapes java.util.Properties needs. */
export function formatProperties(properties: ServerProperties): string {
  return Object.entries(properties)
    .map(([key, value]) => {
      if (!/^[A-Za-z0-9._-]+$/.test(key)) throw new Error(`server property name ${JSON.stringify(key)}: expected letters, digits, '.', '_' or '-'`);
      const text = String(value).replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('\r', '\\r');
      return `${key}=${text}`;
    })
    .join('\n') + '\n';
}

function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/** Without an explicit configuration file log4j2 only shows errors, so the broker gets one that logs INFO to the log file. */
export function brokerLog4j2(logFile: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName="${escapeXml(logFile)}" append="true" immediateFlush="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="INFO">
      <AppenderRef ref="file"/>
    </Root>
    <!-- One line per request at INFO and below: far too much for a test log. -->
    <Logger name="kafka.request.logger" level="WARN"/>
  </Loggers>
</Configuration>
`;
}

export function defaultServerProperties(port: number, controllerPort: number, dataDir: string): ServerProperties {
  return {
    'process.roles': 'broker,controller',
    'node.id': BROKER_NODE_ID,
    'listeners': `PLAINTEXT://${LOOPBACK}:${port},CONTROLLER://${LOOPBACK}:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${LOOPBACK}:${port}`,
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name': 'PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'controller.quorum.bootstrap.servers': `${LOOPBACK}:${controllerPort}`,
    'log.dirs': dataDir,
    'num.partitions': 1,
    'auto.create.topics.enable': false,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'share.coordinator.state.topic.num.partitions': 1,
    'group.initial.rebalance.delay.ms': 0,
    // Records up to 2 MiB plus batch overhead; a request carries at most this much too.
    'message.max.bytes': 4 * 1024 * 1024,
    'replica.fetch.max.bytes': 4 * 1024 * 1024,
    'socket.request.max.bytes': 100 * 1024 * 1024,
  };
}

const SASL_LISTENER = 'SASL_PLAINTEXT';
const DEFAULT_SASL_MECHANISMS: readonly KafkaSaslMechanism[] = ['PLAIN', 'SCRAM-SHA-512'];

/** The mechanisms to enable, after checking users and passwords fit where they are written (JAAS, StorageTool). */
export function saslMechanisms(sasl: KafkaSaslOptions): readonly KafkaSaslMechanism[] {
  const mechanisms = sasl.mechanisms ?? DEFAULT_SASL_MECHANISMS;
  if (mechanisms.length === 0) throw new Error('kafka: sasl.mechanisms must list at least one mechanism');
  if (sasl.users.length === 0) throw new Error('kafka: sasl.users must list at least one user');
  if (mechanisms[0] === 'OAUTHBEARER') throw new Error('kafka: OAUTHBEARER cannot be the first (inter-broker) SASL mechanism: list PLAIN or SCRAM first');
  for (const { name, password } of sasl.users) {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`kafka: SASL user name ${JSON.stringify(name)}: expected letters, digits, '.', '_' or '-'`);
    if (!/^[\x21-\x7e]+$/.test(password) || /["\\,]/.test(password)) {
      throw new Error(`kafka: password of SASL user ${name}: expected printable ASCII without spaces, '"', '\\' or ','`);
    }
  }
  return mechanisms;
}

/**
 * The JAAS settings of one SASL_PLAINTEXT listener (`listener.name.<listener>.<mechanism>.sasl.jaas.config`) and the
 * enabled mechanisms: PLAIN users come from `user_<name>="<password>"` options of the listener's PlainLoginModule,
 * SCRAM users from credentials StorageTool writes into the metadata log at format time (`scramFormatArgs`). The
 * login module's own username/password (the first user) is what the broker uses when this listener is also the
 * inter-broker one.
 */
export function saslListenerProperties(sasl: KafkaSaslOptions, listeners: readonly string[]): Record<string, string> {
  const mechanisms = saslMechanisms(sasl);
  const [first] = sasl.users as [KafkaSaslUser];
  const properties: Record<string, string> = { 'sasl.enabled.mechanisms': mechanisms.join(',') };
  for (const listener of listeners) {
    const prefix = `listener.name.${listener.toLowerCase()}`;
    for (const mechanism of mechanisms) {
      const own = `username="${first.name}" password="${first.password}"`;
      properties[`${prefix}.${mechanism.toLowerCase()}.sasl.jaas.config`] = mechanism === 'PLAIN'
        ? `org.apache.kafka.common.security.plain.PlainLoginModule required ${own} ${sasl.users.map((u) => `user_${u.name}="${u.password}"`).join(' ')};`
        : mechanism === 'OAUTHBEARER'
          ? `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="${first.name}";`
          : `org.apache.kafka.common.security.scram.ScramLoginModule required ${own};`;
    }
  }
  return properties;
}

/**
 * The client listener becomes SASL_PLAINTEXT (also used as the inter-broker listener, with the first user and the
 * first mechanism), see `saslListenerProperties`.
 * The controller listener stays PLAINTEXT: no authorizer is configured, so the broker reaching its own controller
 * as ANONYMOUS is fine (with StandardAuthorizer it would have to be SASL too, see notes/real-components.md).
 */
function saslServerProperties(sasl: KafkaSaslOptions, port: number, controllerPort: number): ServerProperties {
  const mechanisms = saslMechanisms(sasl);
  return {
    'listeners': `${SASL_LISTENER}://${LOOPBACK}:${port},CONTROLLER://${LOOPBACK}:${controllerPort}`,
    'advertised.listeners': `${SASL_LISTENER}://${LOOPBACK}:${port}`,
    'listener.security.protocol.map': `${SASL_LISTENER}:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT`,
    'inter.broker.listener.name': SASL_LISTENER,
    'sasl.mechanism.inter.broker.protocol': mechanisms[0]!,
    ...saslListenerProperties(sasl, [SASL_LISTENER]),
  };
}

/** `--add-scram 'SCRAM-SHA-512=[name="<n>",password="<p>"]'` per SCRAM mechanism and user (quotes are stripped by the tool). */
export function scramFormatArgs(sasl: KafkaSaslOptions): string[] {
  return saslMechanisms(sasl)
    .filter((mechanism) => mechanism === 'SCRAM-SHA-256' || mechanism === 'SCRAM-SHA-512')
    .flatMap((mechanism) => sasl.users.flatMap((u) => ['--add-scram', `${mechanism}=[name="${u.name}",password="${u.password}"]`]));
}

/** Start a broker and wait until it is ready. On failure the error quotes the end of its log. */
export async function startKafka(options: StartKafkaOptions = {}): Promise<KafkaBroker> {
  assertKafkaProvisioned();
  const ownsWorkDir = options.workDir === undefined;
  let workDir: string;
  if (options.workDir === undefined) {
    await fs.promises.mkdir(RUN_DIR, { recursive: true });
    workDir = await fs.promises.mkdtemp(path.join(RUN_DIR, 'kafka-'));
  } else {
    workDir = path.resolve(options.workDir);
    await fs.promises.mkdir(workDir, { recursive: true });
  }
  const dataDir = path.join(workDir, 'data');
  const logFile = path.join(workDir, 'kafka.log');
  const propertiesFile = path.join(workDir, 'server.properties');
  const log4j2File = path.join(workDir, 'log4j2.xml');

  const [port, controllerPort] = (await freePorts(2)) as [number, number];
  const properties = {
    ...defaultServerProperties(port, controllerPort, dataDir),
    ...(options.sasl !== undefined ? saslServerProperties(options.sasl, port, controllerPort) : {}),
    ...options.extraServerProperties,
  };
  await fs.promises.writeFile(propertiesFile, formatProperties(properties));
  await fs.promises.writeFile(log4j2File, brokerLog4j2(logFile));

  const clusterId = newClusterId();
  const format = await runKafkaTool('kafka.tools.StorageTool', ['format', '--standalone', '--ignore-formatted', '-t', clusterId, '-c', propertiesFile, ...(options.sasl !== undefined ? scramFormatArgs(options.sasl) : [])], { timeoutMs: 60_000 });
  if (format.code !== 0) {
    throw new Error(`kafka: formatting storage in ${dataDir} failed (StorageTool exited with code ${format.code}):\n${format.stderr}${format.stdout}`);
  }

  // The broker process; `kill` and `restart` replace it on the same ports, config and data.
  const spawnBroker = async (): Promise<ManagedProcess> => {
    const started = await spawnManaged({
      name: 'kafka',
      command: 'java',
      args: [
        '-Xmx512m',
        '-XX:+UseG1GC',
        '-Djava.awt.headless=true',
        `-Dlog4j2.configurationFile=${log4j2File}`,
        '-cp', classpath(),
        'kafka.Kafka', propertiesFile,
      ],
      logFile,
      cwd: workDir,
    });
    try {
      await started.waitForLog(READY_LINE, options.startTimeoutMs ?? 90_000);
    } catch (err) {
      await started.stop(0);
      throw err;
    }
    return started;
  };
  let broker = await spawnBroker();

  const bootstrap = `${LOOPBACK}:${port}`;
  let stopped: Promise<void> | undefined;
  return {
    bootstrap,
    host: LOOPBACK,
    port,
    controllerPort,
    securityProtocol: options.sasl !== undefined ? 'SASL_PLAINTEXT' : 'PLAINTEXT',
    get pid() { return broker.pid; },
    clusterId,
    workDir,
    logFile,
    stop() {
      stopped ??= (async () => {
        await broker.stop(15_000);
        if (ownsWorkDir) await fs.promises.rm(dataDir, { recursive: true, force: true });
      })();
      return stopped;
    },
    async kill() {
      broker.signal('SIGKILL');
      await broker.exited;
    },
    async restart() {
      if (stopped !== undefined) throw new Error('kafka: cannot restart a broker that was stopped (its data may be gone)');
      if (broker.exitInfo === undefined) await broker.stop(15_000);
      broker = await spawnBroker();
    },
    createTopics: (names, partitions = 1) => createTopics(bootstrap, names, partitions, options.sasl !== undefined ? harnessSasl(options.sasl) : undefined),
  };
}

/** kafkajs credentials for the harness's admin client: the first user, with the first mechanism. */
export function harnessSasl(sasl: KafkaSaslOptions): SASLOptions {
  const [user] = sasl.users as [KafkaSaslUser];
  const mechanism = saslMechanisms(sasl)[0]!;
  const credentials = { username: user.name, password: user.password };
  if (mechanism === 'PLAIN') return { mechanism: 'plain', ...credentials };
  return { mechanism: mechanism === 'SCRAM-SHA-256' ? 'scram-sha-256' : 'scram-sha-512', ...credentials };
}

/** Through the Kafka protocol with kafkajs: far quicker than starting a JVM for TopicCommand. */
async function createTopics(bootstrap: string, names: readonly string[], partitions: number, sasl?: SASLOptions): Promise<void> {
  if (names.length === 0) return;
  // kafkajs re-authenticates before every request when its threshold (default 10 s) exceeds the broker's session
  // (a test may shorten connections.max.reauth.ms), and the broker refuses that; 1 s keeps it to real renewals.
  const kafka = new Kafka({ clientId: 'tollgate-harness-admin', brokers: [bootstrap], logLevel: logLevel.NOTHING, reauthenticationThreshold: 1_000, ...(sasl !== undefined ? { sasl } : {}) });
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.createTopics({
      topics: names.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
      waitForLeaders: true,
    });
  } catch (err) {
    throw new Error(`kafka: creating topics ${names.join(', ')} (${partitions} partition(s)) on ${bootstrap} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await admin.disconnect();
  }
}

/**
 * Client settings (a `--producer.config` / `--consumer.config` file) for a Kafka 4 Java client authenticating with SASL OAUTHBEARER, fetching
 * its token from `tokenEndpoint` with client_credentials. Kafka 4 refuses token endpoints not listed in the JVM system
 * property `org.apache.kafka.sasl.oauthbearer.allowed.urls` (see `RunKafkaToolOptions.jvmOptions`).
 */
export function javaOAuthClientProperties(tokenEndpoint: string, clientId: string, clientSecret: string): string {
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

export interface RunKafkaToolOptions {
  /** Default 60 s; past it the tool is killed and the call rejects. */
  readonly timeoutMs?: number;
  /** Fed to the tool's stdin (ConsoleProducer reads records from it, one per line). */
  readonly input?: string;
  /** Heap for the tool's JVM. Default 256m. */
  readonly maxHeap?: string;
  /** More JVM options, before the main class (e.g. `-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=...`). */
  readonly jvmOptions?: readonly string[];
}

/**
 * Run one of Kafka's tool classes (`org.apache.kafka.tools.ConsoleProducer`,
 * `org.apache.kafka.tools.consumer.ConsoleConsumer`, `org.apache.kafka.tools.TopicCommand`,
 * `kafka.tools.StorageTool`, ...) to completion. Resolves with its exit status and output whatever the exit code;
 * the tool's own logging goes to stderr at WARN (scripts/kafka/tools-log4j2.xml).
 */
export async function runKafkaTool(mainClass: string, args: readonly string[], options: RunKafkaToolOptions = {}): Promise<CommandResult> {
  assertKafkaProvisioned();
  return runCommand('java', [
    `-Xmx${options.maxHeap ?? '256m'}`,
    // Tools live for seconds: the C1 compiler alone starts faster and that is all they need.
    '-XX:TieredStopAtLevel=1',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${KAFKA_TOOLS_LOG4J2}`,
    ...(options.jvmOptions ?? []),
    '-cp', classpath(),
    mainClass, ...args,
  ], { timeoutMs: options.timeoutMs ?? 60_000, ...(options.input !== undefined ? { input: options.input } : {}) });
}
