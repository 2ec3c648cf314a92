/**
 * Kafka produce/consume throughput and produce latency through each layer of the Kafka data path (issue 4, item 7):
 *
 *   direct       client → broker
 *   tcp_proxy    client → Envoy (tcp_proxy)                                   → broker
 *   passthrough  client → Envoy (network ext_proc → a do-nothing processor)   → broker   the architecture's ceiling
 *   tollgate     client → Envoy (network ext_proc → `tollgate serve`)         → broker
 *
 * The tollgate case runs tollgate as configured for real use: clients authenticate with SASL OAUTHBEARER (a JWT of
 * the dev OIDC issuer started in this process, verified against `identity.oidc`; once per connection), every
 * request is judged by the policy (`rules`: the bench principal may produce and consume the tollgate case's topics
 * and use its consumer groups; nothing else), broker addresses are rewritten (`kafka.brokers`), and every request
 * leaves one audit record, a pino line at `info` on tollgate's stdout (its log file). The other cases have no SASL.
 *
 *   node bench/kafka-throughput.bench.ts [--records 200000] [--record-size 1024] [--warmup-records 50000]
 *        [--probe-requests 3000] [--partitions 1] [--rounds 3] [--time-limit 900] [--producer-props "k=v k=v"]
 *        [--cases direct,tcp_proxy,passthrough,tollgate] [--cpu-prof]
 *
 *   A short run: --records 50000 --warmup-records 20000 --probe-requests 1000 --rounds 1 (about a minute).
 *   --cases runs only some cases (ratios need direct and passthrough). --cpu-prof writes a V8 CPU profile of the
 *   tollgate process (node --cpu-prof) into the run's log folder when it stops.
 *
 * Load: Kafka's own Java clients, org.apache.kafka.tools.ProducerPerformance and ConsumerPerformance, run through
 * runKafkaTool (one JVM per run; the run's own numbers exclude the JVM start), with the clients' default settings
 * (acks=all; extra producer settings with --producer-props). First the broker is warmed up directly; then per case and
 * round: a warm-up (produce and consume `--warmup-records` on a topic of its own, so Envoy's, the processor's and the
 * broker's hot paths are compiled), produce `--records` at full speed, consume them back with a new consumer group.
 * Each figure is the median over `--rounds` (round to round they vary by ±20% on a 2-core machine); each round
 * starts with a different case. The default run takes about 3.5 minutes.
 *
 * Latency, two kinds:
 * - at full speed, ProducerPerformance's p99 (send() to acknowledgement, per record): mostly time queued in the
 *   producer's own buffer, so it follows throughput;
 * - per request at no load: a kafkajs producer in this process sends `--probe-requests` single-record Produce
 *   requests (acks=all) one at a time, after 500 unmeasured ones, timed in microseconds. That isolates what each
 *   layer adds to one round trip. Not ProducerPerformance at a fixed rate: its timer has millisecond resolution
 *   and its p99 there is the JVM's own cold start (metadata fetch and JIT in the first ~100 ms of a short run).
 *
 * One broker (a single-node KRaft cluster with the full JIT) serves every case: besides its direct listener it has
 * one client listener per proxied case, each advertising that case's Envoy listener. A client stays on the listener
 * it bootstrapped through (the broker answers Metadata with the addresses of the listener the request came in on),
 * so every connection of a case goes through that case's proxy. Cheaper and fairer than one broker per case
 * restarted with another advertised listener: one JVM start, one warm broker, the same log settings for all.
 * One Envoy (one worker, as in tests) holds the three proxied listeners, each derived from envoy/kafka.yaml
 * (bench/lib/kafka-envoy.ts); the passthrough processor (bench/lib/passthrough-processor.ts) and tollgate each run
 * as their own Node process on loopback TCP.
 *
 * Everything listens on 127.0.0.1. Bounded by the record counts, a per-run timeout and `--time-limit` seconds for
 * the whole bench (cases not reached are reported as skipped). Everything shares the machine's cores: the numbers
 * are what this machine does with client, proxy, processor and broker on it at once.
 *
 * Exits non-zero when the tollgate case was run and failed, moved no records, or left a wrong trail: tollgate must
 * have counted frames, written audit records and denied nothing (a denial would mean the bench measured refusals).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { SASLOptions } from 'kafkajs';
import { ensureEnvoy, ensureKafka } from '../scripts/provision.ts';
import { startEnvoy } from '../scripts/lib/envoy.ts';
import type { EnvoyProcess } from '../scripts/lib/envoy.ts';
import { runKafkaTool } from '../scripts/lib/kafka.ts';
import { startDevIssuer } from '../src/dev/oidc-issuer.ts';
import { startKafkaCluster } from '../scripts/lib/kafka-cluster.ts';
import type { KafkaCluster } from '../scripts/lib/kafka-cluster.ts';
import { KAFKA_VERSION, ENVOY_VERSION, REPO_ROOT, RUN_DIR } from '../scripts/lib/paths.ts';
import { freePorts, LOOPBACK } from '../scripts/lib/ports.ts';
import { spawnManaged } from '../scripts/lib/process.ts';
import type { CommandResult, ManagedProcess } from '../scripts/lib/process.ts';
import { renderKafkaBenchEnvoy } from './lib/kafka-envoy.ts';
import { AUTO_CREATE_OFF, countAuditRecords, javaOAuthBearerProperties, tollgateBenchConfig } from './lib/tollgate-kafka.ts';
import type { AuditCounts } from './lib/tollgate-kafka.ts';

const { values } = parseArgs({
  options: {
    'records': { type: 'string', default: '200000' },
    'record-size': { type: 'string', default: '1024' },
    'warmup-records': { type: 'string', default: '50000' },
    'probe-requests': { type: 'string', default: '3000' },
    'producer-props': { type: 'string', default: '' },
    'partitions': { type: 'string', default: '1' },
    'rounds': { type: 'string', default: '3' },
    'time-limit': { type: 'string', default: '900' },
    'cases': { type: 'string', default: 'direct,tcp_proxy,passthrough,tollgate' },
    'cpu-prof': { type: 'boolean', default: false },
  },
});

function positiveInt(name: string, text: string | undefined, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name}: expected an integer from 1 to ${max}, got ${text}`);
  return n;
}
const RECORDS = positiveInt('records', values['records'], 10_000_000);
const RECORD_SIZE = positiveInt('record-size', values['record-size'], 1024 * 1024);
const WARMUP_RECORDS = positiveInt('warmup-records', values['warmup-records'], 10_000_000);
const PROBE_REQUESTS = positiveInt('probe-requests', values['probe-requests'], 100_000);
const PROBE_WARMUP = 500;
const PRODUCER_PROPS = (values['producer-props'] ?? '').split(/\s+/).filter((p) => p !== '');
for (const prop of PRODUCER_PROPS) if (!/^[a-z][a-z0-9.]*=\S+$/.test(prop)) throw new Error(`--producer-props: expected key=value pairs, got ${JSON.stringify(prop)}`);
const PARTITIONS = positiveInt('partitions', values['partitions'], 64);
const ROUNDS = positiveInt('rounds', values['rounds'], 10);
const TIME_LIMIT_MS = positiveInt('time-limit', values['time-limit'], 3600) * 1000;
const CPU_PROF = values['cpu-prof'] === true;

const started = Date.now();
const deadline = started + TIME_LIMIT_MS;
// Last resort if something hangs past every timeout: exiting kills every managed child (scripts/lib/process.ts).
setTimeout(() => {
  console.error(`kafka bench: still running ${TIME_LIMIT_MS / 1000 + 60} s after start; giving up`);
  process.exit(2);
}, TIME_LIMIT_MS + 60_000).unref();

class TimeLimitReached extends Error {}

/** A Kafka tool run, killed at the bench's deadline. */
async function tool(mainClass: string, args: readonly string[], jvmOptions: readonly string[] = []): Promise<CommandResult> {
  const remaining = deadline - Date.now();
  if (remaining < 5_000) throw new TimeLimitReached(`time limit of ${TIME_LIMIT_MS / 1000} s reached`);
  try {
    return await runKafkaTool(mainClass, args, { timeoutMs: remaining, maxHeap: '512m', jvmOptions });
  } catch (err) {
    if (Date.now() >= deadline - 1_000) throw new TimeLimitReached(`time limit of ${TIME_LIMIT_MS / 1000} s reached during ${mainClass}`);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The load tools and their output

/** How a case's clients connect: nothing extra, or (tollgate) SASL OAUTHBEARER with a token of the dev issuer. */
interface ClientAuth {
  /** Java clients: a `--producer.config` / `--consumer.config` file. */
  readonly javaConfigFile?: string;
  readonly jvmOptions?: readonly string[];
  /** kafkajs (the latency probe). */
  readonly sasl?: SASLOptions;
}
const NO_AUTH: ClientAuth = {};

interface ProduceResult {
  readonly records: number;
  readonly recordsPerSec: number;
  readonly mibPerSec: number;
  readonly avgMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
}

interface ConsumeResult {
  readonly records: number;
  readonly recordsPerSec: number;
  readonly mibPerSec: number;
  /** The consumer's fetch-latency-avg metric (ConsumerPerformance has no percentiles). */
  readonly fetchLatencyAvgMs: number | undefined;
}

// "200000 records sent, 24189.6 records/sec (23.62 MB/sec), 1100.15 ms avg latency, 2026.00 ms max latency,
//  989 ms 50th, 1798 ms 95th, 2011 ms 99th, 2023 ms 99.9th."  (MB here is 2^20 bytes of record values)
const PRODUCER_SUMMARY = /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, [\d.]+ ms max latency, (\d+) ms 50th, \d+ ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th/;

function failure(what: string, result: CommandResult): Error {
  return new Error(`${what}: exit ${result.code ?? result.signal}\n${result.stderr.trim().split('\n').slice(-15).join('\n')}\n${result.stdout.trim().split('\n').slice(-5).join('\n')}`);
}

async function produce(bootstrap: string, topic: string, records: number, auth: ClientAuth): Promise<ProduceResult> {
  const result = await tool('org.apache.kafka.tools.ProducerPerformance', [
    '--topic', topic,
    '--num-records', String(records),
    '--record-size', String(RECORD_SIZE),
    '--throughput', '-1',
    ...(auth.javaConfigFile !== undefined ? ['--producer.config', auth.javaConfigFile] : []),
    // nargs '+': the rest of the line.
    '--producer-props', `bootstrap.servers=${bootstrap}`, 'acks=all', `client.id=bench-${topic}`, ...PRODUCER_PROPS,
  ], auth.jvmOptions);
  const match = PRODUCER_SUMMARY.exec(result.stdout);
  if (result.code !== 0 || match === null) throw failure(`ProducerPerformance to ${topic} via ${bootstrap}`, result);
  const [, sent, perSec, mib, avg, p50, p99, p999] = match.map(Number) as [number, number, number, number, number, number, number, number];
  if (sent !== records) throw failure(`ProducerPerformance to ${topic}: ${sent} of ${records} records sent`, result);
  return { records: sent, recordsPerSec: perSec, mibPerSec: mib, avgMs: avg, p50Ms: p50, p99Ms: p99, p999Ms: p999 };
}

async function consume(bootstrap: string, topic: string, records: number, auth: ClientAuth): Promise<ConsumeResult> {
  const result = await tool('org.apache.kafka.tools.ConsumerPerformance', [
    '--bootstrap-server', bootstrap,
    '--topic', topic,
    '--messages', String(records),
    '--group', `bench-${topic}-${randomBytes(4).toString('hex')}`,
    '--timeout', '30000',
    '--hide-header',
    '--print-metrics',
    ...(auth.javaConfigFile !== undefined ? ['--consumer.config', auth.javaConfigFile] : []),
  ], auth.jvmOptions);
  // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms,
  // fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec — the fetch.* ones leave out joining the group.
  const line = result.stdout.split('\n').find((l) => /^\d{4}-\d\d-\d\d [\d:]+, /.test(l));
  const fields = line?.split(',').map((f) => f.trim());
  if (result.code !== 0 || fields === undefined || fields.length < 10) throw failure(`ConsumerPerformance from ${topic} via ${bootstrap}`, result);
  const consumed = Number(fields[4]);
  if (consumed < records) throw failure(`ConsumerPerformance from ${topic}: ${consumed} of ${records} records within its timeout`, result);
  const latency = /consumer-fetch-manager-metrics:fetch-latency-avg:\{[^}]*\}\s*:\s*([\d.]+)/.exec(result.stdout);
  return {
    records: consumed,
    recordsPerSec: Number(fields[9]),
    mibPerSec: Number(fields[8]),
    fetchLatencyAvgMs: latency === null ? undefined : Number(latency[1]),
  };
}

interface ProbeResult {
  readonly p50Us: number;
  readonly p99Us: number;
}

/** One Produce request at a time through `bootstrap`, `PROBE_REQUESTS` of them after `PROBE_WARMUP`. */
async function probe(bootstrap: string, topic: string, auth: ClientAuth): Promise<ProbeResult> {
  if (deadline - Date.now() < 5_000) throw new TimeLimitReached(`time limit of ${TIME_LIMIT_MS / 1000} s reached`);
  const producer = new Kafka({ clientId: `bench-probe-${topic}`, brokers: [bootstrap], logLevel: logLevel.NOTHING, ...(auth.sasl !== undefined && { sasl: auth.sasl }) })
    .producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  const value = randomBytes(RECORD_SIZE);
  const samples: number[] = [];
  await producer.connect();
  try {
    for (let i = 0; i < PROBE_WARMUP + PROBE_REQUESTS; i++) {
      if (Date.now() > deadline) throw new TimeLimitReached(`time limit of ${TIME_LIMIT_MS / 1000} s reached during the latency probe`);
      const t0 = process.hrtime.bigint();
      await producer.send({ topic, acks: -1, messages: [{ value }] });
      if (i >= PROBE_WARMUP) samples.push(Number(process.hrtime.bigint() - t0) / 1_000);
    }
  } finally {
    await producer.disconnect();
  }
  samples.sort((a, b) => a - b);
  const at = (q: number): number => samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)]!;
  return { p50Us: at(0.5), p99Us: at(0.99) };
}

// ---------------------------------------------------------------------------------------------------------------
// The cases

type CaseName = 'direct' | 'tcp_proxy' | 'passthrough' | 'tollgate';
const ALL_CASES: readonly CaseName[] = ['direct', 'tcp_proxy', 'passthrough', 'tollgate'];
const CASES: readonly CaseName[] = (() => {
  const asked = (values['cases'] ?? '').split(',').map((c) => c.trim()).filter((c) => c !== '');
  for (const c of asked) if (!ALL_CASES.includes(c as CaseName)) throw new Error(`--cases: expected some of ${ALL_CASES.join(',')}, got ${JSON.stringify(c)}`);
  const cases = ALL_CASES.filter((c) => asked.includes(c));
  if (cases.length === 0) throw new Error('--cases: expected at least one case');
  return cases;
})();
/** The bench principal: the token subject tollgate's rules allow the tollgate case's topics and groups. */
const BENCH_CLIENT = 'tollgate-bench';
const BENCH_AUDIENCE = 'tollgate-bench';
const LISTENER: Record<Exclude<CaseName, 'direct'>, string> = { tcp_proxy: 'VIA_TCP_PROXY', passthrough: 'VIA_PASSTHROUGH', tollgate: 'VIA_TOLLGATE' };

interface CaseResult {
  produce?: ProduceResult;
  consume?: ConsumeResult;
  probe?: ProbeResult;
  /** CPU (user + system) Envoy and the case's processor spent during the measured produce and consume runs. */
  produceCpu?: CpuUse;
  consumeCpu?: CpuUse;
  error?: string;
}

interface CpuUse {
  readonly envoyMs: number;
  readonly processorMs: number;
}

/** CPU time (user + system) a process has used so far, in ms; undefined where /proc is not there (not Linux). */
function cpuMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, so after its closing parenthesis): utime is the 14th field.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

/** CPU Envoy and `processorPid` use while `run` runs; undefined when either cannot be read. */
async function measureCpu<T>(envoyPid: number | undefined, processorPid: number | undefined, run: () => Promise<T>): Promise<[T, CpuUse | undefined]> {
  const before = [envoyPid, processorPid].map((pid) => (pid === undefined ? undefined : cpuMs(pid)));
  const value = await run();
  const after = [envoyPid, processorPid].map((pid) => (pid === undefined ? undefined : cpuMs(pid)));
  const delta = (i: number): number => (after[i] !== undefined && before[i] !== undefined ? after[i]! - before[i]! : 0);
  return [value, envoyPid === undefined && processorPid === undefined ? undefined : { envoyMs: delta(0), processorMs: delta(1) }];
}

const workDir = await (async () => {
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  return fs.promises.mkdtemp(path.join(RUN_DIR, 'bench-kafka-'));
})();
const stops: Array<() => Promise<unknown>> = [];
const results = new Map<CaseName, CaseResult[]>(CASES.map((c) => [c, []]));
let frameCount = 'unknown';
let frames: number | undefined;
let passthroughMessages = 'unknown';
let audit: AuditCounts | undefined;
let auditError: string | undefined;
let cpuProfile: string | undefined;

try {
  await ensureKafka();
  await ensureEnvoy();
  const [envoyAdmin, tcpListener, passListener, tollListener, passPort, tollGrpc, tollAdmin] = (await freePorts(7)) as [number, number, number, number, number, number, number];
  const envoyListener: Record<Exclude<CaseName, 'direct'>, number> = { tcp_proxy: tcpListener, passthrough: passListener, tollgate: tollListener };

  const clusterStart = Date.now();
  const cluster: KafkaCluster = await startKafkaCluster({
    brokers: 1,
    // No workDir: a folder of the cluster's own, whose data (GBs after a run) stop() deletes.
    // Full JIT, as the single-broker harness and production run it: this broker carries the load.
    jvmOptions: ['-Xmx512m', '-XX:+UseG1GC'],
    extraListeners: Object.values(LISTENER),
    advertised: (_nodeId, listener) => {
      const entry = Object.entries(LISTENER).find(([, name]) => name === listener);
      return entry === undefined ? undefined : `${LOOPBACK}:${envoyListener[entry[0] as Exclude<CaseName, 'direct'>]}`;
    },
  });
  stops.push(() => cluster.stop());
  const broker = cluster.nodes[0]!;
  console.error(`broker ready in ${Date.now() - clusterStart} ms (pid ${broker.pid}, log ${broker.logFile})`);

  const passthrough: ManagedProcess = await spawnManaged({
    name: 'passthrough',
    command: process.execPath,
    args: [path.join(REPO_ROOT, 'bench', 'lib', 'passthrough-processor.ts'), '--port', String(passPort)],
    logFile: path.join(workDir, 'passthrough.log'),
  });
  stops.push(() => passthrough.stop(5_000));
  await passthrough.waitForLog(/passthrough processor listening/, 20_000);

  // The dev OIDC issuer, in this process: the Java clients fetch their token with client_credentials (once per JVM,
  // then once per connection in SaslAuthenticate), the kafkajs probe gets one minted per authentication.
  const clientSecret = randomBytes(16).toString('hex');
  const issuer = await startDevIssuer({ audience: BENCH_AUDIENCE, clients: [{ id: BENCH_CLIENT, secret: clientSecret, groups: ['bench'] }] });
  stops.push(() => issuer.close());
  const javaConfigFile = path.join(workDir, 'tollgate-client.properties');
  await fs.promises.writeFile(javaConfigFile, javaOAuthBearerProperties(issuer.tokenEndpoint, BENCH_CLIENT, clientSecret), { mode: 0o600 });
  const authOf = (c: CaseName): ClientAuth => (c !== 'tollgate' ? NO_AUTH : {
    javaConfigFile,
    // Kafka 4 fetches tokens only from listed URLs.
    jvmOptions: [`-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=${issuer.tokenEndpoint}`],
    sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: await issuer.mint({ sub: BENCH_CLIENT, groups: ['bench'] }) }) },
  });

  const tollgateConfig = path.join(workDir, 'tollgate.yaml');
  // Topics and groups of the tollgate case only (see `topics` below and `consume`'s group names): policy on, as in use.
  await fs.promises.writeFile(tollgateConfig, tollgateBenchConfig({
    grpc: `${LOOPBACK}:${tollGrpc}`,
    admin: `${LOOPBACK}:${tollAdmin}`,
    issuer: issuer.issuer,
    audience: BENCH_AUDIENCE,
    subject: BENCH_CLIENT,
    topics: ['warm-tollgate-*', 'bench-tollgate-*', 'probe-tollgate-*'],
    groups: ['bench-warm-tollgate-*', 'bench-bench-tollgate-*'],
    // The broker's VIA_TOLLGATE listener already advertises this address: a same-value rewrite, still done.
    brokers: cluster.nodes.map((node) => ({ nodeId: node.nodeId, advertise: `${LOOPBACK}:${tollListener}` })),
  }));
  if (CPU_PROF) cpuProfile = path.join(workDir, 'tollgate-cpu-prof');
  const tollgate: ManagedProcess = await spawnManaged({
    name: 'tollgate',
    command: process.execPath,
    args: [
      ...(cpuProfile !== undefined ? ['--cpu-prof', '--cpu-prof-dir', cpuProfile] : []),
      path.join(REPO_ROOT, 'src', 'cli.ts'), 'serve', '--config', tollgateConfig,
    ],
    logFile: path.join(workDir, 'tollgate.log'),
  });
  stops.push(() => tollgate.stop(10_000));
  await tollgate.waitForLog(/tollgate listening/, 30_000);

  const envoy: EnvoyProcess = await startEnvoy({
    configYaml: renderKafkaBenchEnvoy(envoyAdmin, [
      { name: 'tcp_proxy', listenerPort: tcpListener, brokerPort: broker.extraListeners[LISTENER.tcp_proxy]!.port },
      { name: 'passthrough', listenerPort: passListener, brokerPort: broker.extraListeners[LISTENER.passthrough]!.port, processorPort: passPort },
      { name: 'tollgate', listenerPort: tollListener, brokerPort: broker.extraListeners[LISTENER.tollgate]!.port, processorPort: tollGrpc },
    ]),
    adminPort: envoyAdmin,
    logLevel: 'warn',
    workDir: path.join(workDir, 'envoy'),
  });
  stops.push(() => envoy.stop());

  const bootstrapOf = (c: CaseName): string => (c === 'direct' ? `${LOOPBACK}:${broker.port}` : `${LOOPBACK}:${envoyListener[c]}`);
  const topics = (c: CaseName, round: number) => ({ warm: `warm-${c}-${round}`, bench: `bench-${c}-${round}`, probe: `probe-${c}-${round}` });
  await cluster.createTopics(['warm-broker', ...CASES.flatMap((c) => Array.from({ length: ROUNDS }, (_, r) => Object.values(topics(c, r)))).flat()], PARTITIONS, 1);

  // The broker's JIT first, or whichever case runs first pays for it.
  const brokerWarmup = Date.now();
  await produce(bootstrapOf('direct'), 'warm-broker', 4 * WARMUP_RECORDS, NO_AUTH);
  await consume(bootstrapOf('direct'), 'warm-broker', 4 * WARMUP_RECORDS, NO_AUTH);
  console.error(`broker warmed up with ${4 * WARMUP_RECORDS} records in ${Date.now() - brokerWarmup} ms`);

  outer: for (let round = 0; round < ROUNDS; round++) {
    // Each round starts one case later, so no case always runs first (the broker still speeds up over the first rounds).
    for (let k = 0; k < CASES.length; k++) {
      const c = CASES[(k + round) % CASES.length]!;
      const t = topics(c, round);
      const bootstrap = bootstrapOf(c);
      const auth = authOf(c);
      const result: CaseResult = {};
      results.get(c)!.push(result);
      try {
        await produce(bootstrap, t.warm, WARMUP_RECORDS, auth);
        await consume(bootstrap, t.warm, WARMUP_RECORDS, auth);
        const envoyPid = c === 'direct' ? undefined : envoy.pid;
        const processorPid = c === 'passthrough' ? passthrough.pid : c === 'tollgate' ? tollgate.pid : undefined;
        [result.produce, result.produceCpu] = await measureCpu(envoyPid, processorPid, () => produce(bootstrap, t.bench, RECORDS, auth));
        [result.consume, result.consumeCpu] = await measureCpu(envoyPid, processorPid, () => consume(bootstrap, t.bench, RECORDS, auth));
        result.probe = await probe(bootstrap, t.probe, auth);
        console.error(`round ${round + 1}/${ROUNDS} ${c}: produce ${result.produce.mibPerSec} MiB/s, consume ${result.consume.mibPerSec.toFixed(1)} MiB/s, ` +
          `one request p50 ${result.probe.p50Us.toFixed(0)} µs p99 ${result.probe.p99Us.toFixed(0)} µs`);
      } catch (err) {
        result.error = (err as Error).message;
        console.error(`round ${round + 1}/${ROUNDS} ${c}: ${result.error}`);
        if (err instanceof TimeLimitReached) break outer;
      }
    }
  }

  // Proof the proxied cases went where they should: tollgate counted frames, the passthrough answered messages.
  try {
    const metrics = await (await fetch(`http://${LOOPBACK}:${tollAdmin}/metrics`)).text();
    frames = metrics.split('\n').filter((l) => l.startsWith('tollgate_kafka_frames_total')).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    frameCount = String(frames);
  } catch (err) {
    frameCount = `unknown (${(err as Error).message})`;
  }
  await passthrough.stop(5_000);
  passthroughMessages = /answered (\d+) messages/.exec(fs.readFileSync(passthrough.logFile, 'utf8'))?.[1] ?? 'unknown';
  // Stopped (SIGTERM, a clean exit) before its log is read, so that --cpu-prof writes its profile.
  await envoy.stop();
  await tollgate.stop(10_000);
  try {
    audit = await countAuditRecords(tollgate.logFile);
  } catch (err) {
    auditError = (err as Error).message;
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch((err: Error) => console.error(`stopping: ${err.message}`));
}

// ---------------------------------------------------------------------------------------------------------------
// Report

const median = (xs: readonly number[]): number | undefined => {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const summary = new Map(CASES.map((c) => {
  const rs = results.get(c)!;
  const pick = <T>(get: (r: CaseResult) => T | undefined): T[] => rs.map(get).filter((v): v is T => v !== undefined);
  return [c, {
    runs: pick((r) => r.produce).length,
    error: rs.find((r) => r.error !== undefined)?.error,
    produceRps: median(pick((r) => r.produce?.recordsPerSec)),
    produceMib: median(pick((r) => r.produce?.mibPerSec)),
    produceP99: median(pick((r) => r.produce?.p99Ms)),
    consumeRps: median(pick((r) => r.consume?.recordsPerSec)),
    consumeMib: median(pick((r) => r.consume?.mibPerSec)),
    fetchAvg: median(pick((r) => r.consume?.fetchLatencyAvgMs)),
    probeP50: median(pick((r) => r.probe?.p50Us)),
    probeP99: median(pick((r) => r.probe?.p99Us)),
    // CPU ms per 10,000 records of the measured runs (the JVM tools' own start-up included, as in their run time).
    produceEnvoyCpu: median(pick((r) => (r.produceCpu === undefined ? undefined : (r.produceCpu.envoyMs * 10_000) / RECORDS))),
    produceProcCpu: median(pick((r) => (r.produceCpu === undefined ? undefined : (r.produceCpu.processorMs * 10_000) / RECORDS))),
    consumeEnvoyCpu: median(pick((r) => (r.consumeCpu === undefined ? undefined : (r.consumeCpu.envoyMs * 10_000) / RECORDS))),
    consumeProcCpu: median(pick((r) => (r.consumeCpu === undefined ? undefined : (r.consumeCpu.processorMs * 10_000) / RECORDS))),
  }] as const;
}));

const num = (v: number | undefined, digits = 0): string => (v === undefined ? '—' : v.toFixed(digits));
const pct = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || b === 0 ? '—' : `${((100 * a) / b).toFixed(0)}%`);
const table = (header: string[], rows: string[][]): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
};

console.log(`Kafka throughput: ${RECORDS} records × ${RECORD_SIZE} B (MiB/s of record values), ${PARTITIONS} partition(s), acks=all` +
  `${PRODUCER_PROPS.length > 0 ? ` ${PRODUCER_PROPS.join(' ')}` : ''}, ${ROUNDS} round(s) (median), warm-up ${WARMUP_RECORDS} records per case and round`);
console.log(`load tool: Kafka ${KAFKA_VERSION} Java clients, org.apache.kafka.tools.ProducerPerformance (produce, p99 at full speed) and ` +
  `ConsumerPerformance (consume; fetch.* figures, group join excluded), one JVM per run via runKafkaTool; ` +
  `request latency: kafkajs, ${PROBE_REQUESTS} single-record Produce requests one at a time`);
console.log(`path: one broker (KRaft, one listener per case), Envoy ${ENVOY_VERSION} (--concurrency 1, listeners derived from envoy/kafka.yaml), ` +
  `processors on 127.0.0.1 TCP; all on this machine's shared cores`);
console.log('tollgate case, as configured for use: SASL OAUTHBEARER to tollgate (dev-issuer JWT verified against identity.oidc, once per connection; ' +
  'the other cases have no SASL), per-request policy (2 allow rules on subject, topic and group; anything else denied), broker address rewriting, ' +
  'and one audit record per request (a pino JSON line at info on tollgate\'s stdout, written to its log file)');
console.log('');
console.log(table(
  ['case', 'produce rec/s', 'MiB/s', 'p99 ms (full speed)', 'consume rec/s', 'MiB/s', 'fetch avg ms', 'request p50/p99 µs (1 in flight)'],
  CASES.map((c) => {
    const s = summary.get(c)!;
    if (s.runs === 0) return [c, s.error === undefined ? 'skipped' : 'failed', '', '', '', '', '', ''];
    return [c, num(s.produceRps), num(s.produceMib, 1), num(s.produceP99), num(s.consumeRps), num(s.consumeMib, 1), num(s.fetchAvg, 1), `${num(s.probeP50)}/${num(s.probeP99)}`];
  }),
));
console.log('');
console.log(table(
  ['CPU ms per 10k records (user+sys)', 'produce: Envoy', 'processor', 'consume: Envoy', 'processor'],
  CASES.filter((c) => c !== 'direct' && summary.get(c)!.runs > 0).map((c) => {
    const s = summary.get(c)!;
    const proc = (v: number | undefined): string => (c === 'tcp_proxy' ? '—' : num(v));
    return [c, num(s.produceEnvoyCpu), proc(s.produceProcCpu), num(s.consumeEnvoyCpu), proc(s.consumeProcCpu)];
  }),
));
console.log('');
const direct = summary.get('direct');
const ceiling = summary.get('passthrough');
console.log(table(
  ['ratio', 'produce vs direct', 'consume vs direct', 'produce vs ceiling', 'consume vs ceiling'],
  CASES.filter((c) => c !== 'direct').map((c) => {
    const s = summary.get(c)!;
    return [c, pct(s.produceMib, direct?.produceMib), pct(s.consumeMib, direct?.consumeMib), pct(s.produceMib, ceiling?.produceMib), pct(s.consumeMib, ceiling?.consumeMib)];
  }),
));
for (const c of CASES) {
  const error = summary.get(c)!.error;
  if (error !== undefined) console.log(`${c}: ${error.split('\n')[0]}`);
}
console.log(`sanity: tollgate forwarded ${frameCount} Kafka frames; the passthrough processor answered ${passthroughMessages} messages`);
if (audit !== undefined) {
  const top = [...audit.byApi].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([api, n]) => `${api} ${n}`).join(', ');
  console.log(`audit: ${audit.total} records in tollgate's log — ${audit.requests} allowed requests (${top}), ${audit.denied} denied, ` +
    `${audit.autoCreateOff} Metadata requests sent on with topic auto-creation off (the Java producer asks for it; the principal has no admin right; the topics exist), ` +
    `${audit.authentications} SASL authentications; events: ${[...audit.byEvent].map(([e, n]) => `${e} ${n}`).join(', ')}`);
} else {
  console.log(`audit: could not be counted${auditError !== undefined ? ` (${auditError})` : ''}`);
}
if (cpuProfile !== undefined) console.log(`tollgate CPU profile: ${cpuProfile}`);
console.log('');
const toll = summary.get('tollgate');
const ratios = [toll?.produceMib, toll?.consumeMib].map((v, i) => {
  const base = i === 0 ? ceiling?.produceMib : ceiling?.consumeMib;
  return v === undefined || base === undefined || base === 0 ? undefined : (100 * v) / base;
});
const worst = ratios.every((r) => r !== undefined) ? Math.min(...(ratios as number[])) : undefined;
console.log(`tollgate / passthrough ceiling: ${worst === undefined ? '—' : `${worst.toFixed(0)}%`} (goal ≥ 90%) — produce ${ratios[0] === undefined ? '—' : `${ratios[0].toFixed(0)}%`}, ` +
  `consume ${ratios[1] === undefined ? '—' : `${ratios[1].toFixed(0)}%`} of the passthrough's MiB/s (the lower of the two)`);
console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s (limit ${TIME_LIMIT_MS / 1000} s); logs in ${workDir}`);

// ---------------------------------------------------------------------------------------------------------------
// Loud failure: a tollgate case that moved nothing, failed, or did not go through authentication and policy.

if (CASES.includes('tollgate')) {
  const problems: string[] = [];
  const rs = results.get('tollgate')!;
  if (rs.length === 0) problems.push('the tollgate case never ran');
  for (const [i, r] of rs.entries()) {
    if (r.error !== undefined) problems.push(`round ${i + 1}: ${r.error.split('\n')[0]}`);
    else if (r.produce === undefined || r.produce.records === 0 || r.consume === undefined || r.consume.records === 0) problems.push(`round ${i + 1}: no records produced or consumed`);
  }
  if (frames === undefined || !(frames > 0)) problems.push(`tollgate counted no Kafka frames (${frameCount})`);
  if (audit === undefined) problems.push(`tollgate's audit records could not be counted${auditError !== undefined ? ` (${auditError})` : ''}`);
  else {
    if (audit.requests === 0) problems.push('tollgate wrote no audit record of an allowed request');
    if (audit.authentications === 0) problems.push('tollgate audited no SASL authentication');
    if (audit.denied > 0) problems.push(`tollgate denied ${audit.denied} request(s): ${audit.denials.join('; ')}`);
    const unexpected = [...audit.byEvent].filter(([e]) => !['kafka.request', AUTO_CREATE_OFF, 'kafka.sasl.authenticated', 'kafka.sasl.reauthenticated', 'kafka.request.denied', 'kafka.request.partially_denied'].includes(e));
    if (unexpected.length > 0) problems.push(`unexpected audit events: ${unexpected.map(([e, n]) => `${e} ${n}`).join(', ')}`);
  }
  if (problems.length > 0) {
    console.error(`kafka bench: FAILED, the tollgate case is not a valid measurement:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  }
}
