/**
 * Kafka produce/consume throughput and produce latency through each layer of the Kafka data path (issue 4, item 7):
 *
 *   direct       client → broker
 *   tcp_proxy    client → Envoy (tcp_proxy)                                   → broker
 *   passthrough  client → Envoy (network ext_proc → a do-nothing processor)   → broker   the architecture's ceiling
 *   tollgate     client → Envoy (network ext_proc → `tollgate serve`)         → broker
 *
 *   node bench/kafka-throughput.bench.ts [--records 200000] [--record-size 1024] [--warmup-records 50000]
 *        [--probe-requests 3000] [--partitions 1] [--rounds 3] [--time-limit 900] [--producer-props "k=v k=v"]
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
 * the whole bench (cases not reached are reported as skipped). No assertions. Everything shares the machine's cores:
 * the numbers are what this machine does with client, proxy, processor and broker on it at once.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { ensureEnvoy, ensureKafka } from '../scripts/provision.ts';
import { startEnvoy } from '../scripts/lib/envoy.ts';
import type { EnvoyProcess } from '../scripts/lib/envoy.ts';
import { runKafkaTool } from '../scripts/lib/kafka.ts';
import { startKafkaCluster } from '../scripts/lib/kafka-cluster.ts';
import type { KafkaCluster } from '../scripts/lib/kafka-cluster.ts';
import { KAFKA_VERSION, ENVOY_VERSION, REPO_ROOT, RUN_DIR } from '../scripts/lib/paths.ts';
import { freePorts, LOOPBACK } from '../scripts/lib/ports.ts';
import { spawnManaged } from '../scripts/lib/process.ts';
import type { CommandResult, ManagedProcess } from '../scripts/lib/process.ts';
import { renderKafkaBenchEnvoy } from './lib/kafka-envoy.ts';

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

const started = Date.now();
const deadline = started + TIME_LIMIT_MS;
// Last resort if something hangs past every timeout: exiting kills every managed child (scripts/lib/process.ts).
setTimeout(() => {
  console.error(`kafka bench: still running ${TIME_LIMIT_MS / 1000 + 60} s after start; giving up`);
  process.exit(2);
}, TIME_LIMIT_MS + 60_000).unref();

class TimeLimitReached extends Error {}

/** A Kafka tool run, killed at the bench's deadline. */
async function tool(mainClass: string, args: readonly string[]): Promise<CommandResult> {
  const remaining = deadline - Date.now();
  if (remaining < 5_000) throw new TimeLimitReached(`time limit of ${TIME_LIMIT_MS / 1000} s reached`);
  try {
    return await runKafkaTool(mainClass, args, { timeoutMs: remaining, maxHeap: '512m' });
  } catch (err) {
    if (Date.now() >= deadline - 1_000) throw new TimeLimitReached(`time limit of ${TIME_LIMIT_MS / 1000} s reached during ${mainClass}`);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The load tools and their output

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

async function produce(bootstrap: string, topic: string, records: number): Promise<ProduceResult> {
  const result = await tool('org.apache.kafka.tools.ProducerPerformance', [
    '--topic', topic,
    '--num-records', String(records),
    '--record-size', String(RECORD_SIZE),
    '--throughput', '-1',
    // nargs '+': the rest of the line.
    '--producer-props', `bootstrap.servers=${bootstrap}`, 'acks=all', `client.id=bench-${topic}`, ...PRODUCER_PROPS,
  ]);
  const match = PRODUCER_SUMMARY.exec(result.stdout);
  if (result.code !== 0 || match === null) throw failure(`ProducerPerformance to ${topic} via ${bootstrap}`, result);
  const [, sent, perSec, mib, avg, p50, p99, p999] = match.map(Number) as [number, number, number, number, number, number, number, number];
  if (sent !== records) throw failure(`ProducerPerformance to ${topic}: ${sent} of ${records} records sent`, result);
  return { records: sent, recordsPerSec: perSec, mibPerSec: mib, avgMs: avg, p50Ms: p50, p99Ms: p99, p999Ms: p999 };
}

async function consume(bootstrap: string, topic: string, records: number): Promise<ConsumeResult> {
  const result = await tool('org.apache.kafka.tools.ConsumerPerformance', [
    '--bootstrap-server', bootstrap,
    '--topic', topic,
    '--messages', String(records),
    '--group', `bench-${topic}-${randomBytes(4).toString('hex')}`,
    '--timeout', '30000',
    '--hide-header',
    '--print-metrics',
  ]);
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
async function probe(bootstrap: string, topic: string): Promise<ProbeResult> {
  if (deadline - Date.now() < 5_000) throw new TimeLimitReached(`time limit of ${TIME_LIMIT_MS / 1000} s reached`);
  const producer = new Kafka({ clientId: `bench-probe-${topic}`, brokers: [bootstrap], logLevel: logLevel.NOTHING })
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
const CASES: readonly CaseName[] = ['direct', 'tcp_proxy', 'passthrough', 'tollgate'];
const LISTENER: Record<Exclude<CaseName, 'direct'>, string> = { tcp_proxy: 'VIA_TCP_PROXY', passthrough: 'VIA_PASSTHROUGH', tollgate: 'VIA_TOLLGATE' };

interface CaseResult {
  produce?: ProduceResult;
  consume?: ConsumeResult;
  probe?: ProbeResult;
  error?: string;
}

const workDir = await (async () => {
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  return fs.promises.mkdtemp(path.join(RUN_DIR, 'bench-kafka-'));
})();
const stops: Array<() => Promise<unknown>> = [];
const results = new Map<CaseName, CaseResult[]>(CASES.map((c) => [c, []]));
let frameCount = 'unknown';
let passthroughMessages = 'unknown';

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

  const tollgateConfig = path.join(workDir, 'tollgate.yaml');
  await fs.promises.writeFile(tollgateConfig, [
    'server:',
    `  grpc: { address: "${LOOPBACK}:${tollGrpc}" }`,
    `  admin: { address: "${LOOPBACK}:${tollAdmin}" }`,
    // Permissive, so the bench keeps measuring the data path (not denials) once Kafka rules are enforced.
    'rules:',
    '  - { name: bench-allows-everything, effect: allow }',
    '',
  ].join('\n'));
  const tollgate: ManagedProcess = await spawnManaged({
    name: 'tollgate',
    command: process.execPath,
    args: [path.join(REPO_ROOT, 'src', 'cli.ts'), 'serve', '--config', tollgateConfig],
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
  await produce(bootstrapOf('direct'), 'warm-broker', 4 * WARMUP_RECORDS);
  await consume(bootstrapOf('direct'), 'warm-broker', 4 * WARMUP_RECORDS);
  console.error(`broker warmed up with ${4 * WARMUP_RECORDS} records in ${Date.now() - brokerWarmup} ms`);

  outer: for (let round = 0; round < ROUNDS; round++) {
    // Each round starts one case later, so no case always runs first (the broker still speeds up over the first rounds).
    for (let k = 0; k < CASES.length; k++) {
      const c = CASES[(k + round) % CASES.length]!;
      const t = topics(c, round);
      const bootstrap = bootstrapOf(c);
      const result: CaseResult = {};
      results.get(c)!.push(result);
      try {
        await produce(bootstrap, t.warm, WARMUP_RECORDS);
        await consume(bootstrap, t.warm, WARMUP_RECORDS);
        result.produce = await produce(bootstrap, t.bench, RECORDS);
        result.consume = await consume(bootstrap, t.bench, RECORDS);
        result.probe = await probe(bootstrap, t.probe);
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
    const frames = metrics.split('\n').filter((l) => l.startsWith('tollgate_kafka_frames_total')).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    frameCount = String(frames);
  } catch (err) {
    frameCount = `unknown (${(err as Error).message})`;
  }
  await passthrough.stop(5_000);
  passthroughMessages = /answered (\d+) messages/.exec(fs.readFileSync(passthrough.logFile, 'utf8'))?.[1] ?? 'unknown';
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
const direct = summary.get('direct')!;
const ceiling = summary.get('passthrough')!;
console.log(table(
  ['ratio', 'produce vs direct', 'consume vs direct', 'produce vs ceiling', 'consume vs ceiling'],
  CASES.filter((c) => c !== 'direct').map((c) => {
    const s = summary.get(c)!;
    return [c, pct(s.produceMib, direct.produceMib), pct(s.consumeMib, direct.consumeMib), pct(s.produceMib, ceiling.produceMib), pct(s.consumeMib, ceiling.consumeMib)];
  }),
));
for (const c of CASES) {
  const error = summary.get(c)!.error;
  if (error !== undefined) console.log(`${c}: ${error.split('\n')[0]}`);
}
console.log(`sanity: tollgate forwarded ${frameCount} Kafka frames; the passthrough processor answered ${passthroughMessages} messages`);
console.log('');
const toll = summary.get('tollgate')!;
const ratios = [toll.produceMib, toll.consumeMib].map((v, i) => {
  const base = i === 0 ? ceiling.produceMib : ceiling.consumeMib;
  return v === undefined || base === undefined || base === 0 ? undefined : (100 * v) / base;
});
const worst = ratios.every((r) => r !== undefined) ? Math.min(...(ratios as number[])) : undefined;
console.log(`tollgate / passthrough ceiling: ${worst === undefined ? '—' : `${worst.toFixed(0)}%`} (goal ≥ 90%) — produce ${ratios[0] === undefined ? '—' : `${ratios[0].toFixed(0)}%`}, ` +
  `consume ${ratios[1] === undefined ? '—' : `${ratios[1].toFixed(0)}%`} of the passthrough's MiB/s (the lower of the two)`);
console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s (limit ${TIME_LIMIT_MS / 1000} s); logs in ${workDir}`);
