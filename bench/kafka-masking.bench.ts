/**
 * Kafka consume throughput with masking on, and the masking engine alone.
 *
 * Part 1, the masking engine in this process (bench/lib/masking-engine.ts): `maskFetchResponse` over a prebuilt
 * Fetch v12 frame of `--engine-records` JSON records (1 KiB) in batches of 16, per codec (none, gzip, zstd, lz4,
 * snappy, built with encodeBatch), in MiB/s of record values, next to baselines of the same run: a Buffer copy of
 * the frame, decode only, decode + re-encode without masking, JSON.parse + stringify of the values. Run first, on a
 * quiet machine (no broker, Envoy or tollgate yet).
 *
 * Part 2, end to end: `--records` JSON payment records of `--record-size` bytes (a card number, an email, padding
 * words; bench/lib/payments.ts), produced once per codec of `--codecs` straight to the broker by Kafka's
 * ProducerPerformance with `--payload-file` (1,000 distinct documents, one per line, picked at random per record;
 * `compression.type` per codec), then consumed back with ConsumerPerformance through each case:
 *
 *   direct           consumer → broker
 *   tcp_proxy        consumer → Envoy (tcp_proxy)                           → broker
 *   tollgate         consumer → Envoy (network ext_proc → `tollgate serve`) → broker   principal without masking rules
 *   tollgate+mask    the same, as a principal with a masking rule on the topics:
 *                    mask: {fields: {"$.card.number": keep-last-4}, detectors: [email, card]}
 *
 * Both tollgate cases go through one tollgate (SASL OAUTHBEARER with dev-issuer tokens, per-request policy, audit at
 * info, broker address rewriting, as in bench/kafka-throughput.bench.ts); they differ only in the principal, so
 * their ratio is the cost of masking (tollgate does not even look at Fetch responses of a principal no masking rule
 * can apply to). Every case reads the same topics (one per codec), each run with a new consumer group.
 *
 * Per codec and round, cases in rotating order; figures are medians over `--rounds` of ConsumerPerformance's fetch.*
 * figures (group join excluded; MiB of uncompressed record values). Before the rounds every case reads
 * `--warmup-records` once per codec, unmeasured (JIT of broker, Envoy, tollgate).
 *
 *   node bench/kafka-masking.bench.ts [--records 60000] [--record-size 1024] [--warmup-records 20000] [--rounds 3]
 *        [--codecs none,zstd] [--engine-codecs none,gzip,zstd,lz4,snappy] [--engine-records 1024]
 *        [--time-limit 240] [--skip-engine] [--engine-only]
 *
 * The default run takes about 3.5 minutes on 2 cores (the engine part ~25 s); --engine-only about 25 s.
 *
 * Fails loudly (exit 1) when the masked consumers did not get masked records: after the rounds a Java console
 * consumer (check.crcs=true) reads records of every codec through tollgate as the masked principal, each must have
 * its card number masked to the last 4 and no raw card number or email; the same through tollgate as the plain
 * principal must be the produced documents byte for byte; tollgate's audit must count masked records (at least
 * every record the masked runs consumed), no masking failure, no denial. Everything on 127.0.0.1; bounded by the
 * record counts, per-run timeouts and `--time-limit` (runs not reached are reported as skipped).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureEnvoy, ensureKafka } from '../scripts/provision.ts';
import { startEnvoy } from '../scripts/lib/envoy.ts';
import type { EnvoyProcess } from '../scripts/lib/envoy.ts';
import { runKafkaTool } from '../scripts/lib/kafka.ts';
import { startKafkaCluster } from '../scripts/lib/kafka-cluster.ts';
import type { KafkaCluster } from '../scripts/lib/kafka-cluster.ts';
import { ENVOY_VERSION, KAFKA_VERSION, REPO_ROOT, RUN_DIR } from '../scripts/lib/paths.ts';
import { freePorts, LOOPBACK } from '../scripts/lib/ports.ts';
import { spawnManaged } from '../scripts/lib/process.ts';
import type { CommandResult, ManagedProcess } from '../scripts/lib/process.ts';
import { startDevIssuer } from '../src/dev/oidc-issuer.ts';
import { COMPRESSION_BY_ID } from '../src/kafka/protocol/records/index.ts';
import type { Compression } from '../src/kafka/protocol/records/index.ts';
import { renderKafkaBenchEnvoy } from './lib/kafka-envoy.ts';
import { ENGINE_OPS, runEngineBench } from './lib/masking-engine.ts';
import type { EngineCodecResult } from './lib/masking-engine.ts';
import { checkMasked, MASK_SPEC, paymentJson } from './lib/payments.ts';
import { AUTO_CREATE_OFF, countAuditRecords, javaOAuthBearerProperties, tollgateBenchConfig } from './lib/tollgate-kafka.ts';
import type { AuditCounts } from './lib/tollgate-kafka.ts';

const { values } = parseArgs({
  options: {
    'records': { type: 'string', default: '60000' },
    'record-size': { type: 'string', default: '1024' },
    'warmup-records': { type: 'string', default: '20000' },
    'rounds': { type: 'string', default: '3' },
    'codecs': { type: 'string', default: 'none,zstd' },
    'engine-codecs': { type: 'string', default: 'none,gzip,zstd,lz4,snappy' },
    'engine-records': { type: 'string', default: '1024' },
    'time-limit': { type: 'string', default: '240' },
    'skip-engine': { type: 'boolean', default: false },
    'engine-only': { type: 'boolean', default: false },
  },
});

function positiveInt(name: string, text: string | undefined, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name}: expected an integer from 1 to ${max}, got ${text}`);
  return n;
}
function codecList(name: string, text: string | undefined): Compression[] {
  const list = (text ?? '').split(',').map((c) => c.trim()).filter((c) => c !== '');
  for (const c of list) if (!COMPRESSION_BY_ID.includes(c as Compression)) throw new Error(`--${name}: expected some of ${COMPRESSION_BY_ID.join(',')}, got ${JSON.stringify(c)}`);
  if (list.length === 0) throw new Error(`--${name}: expected at least one codec`);
  return [...new Set(list)] as Compression[];
}
const RECORDS = positiveInt('records', values['records'], 10_000_000);
const RECORD_SIZE = positiveInt('record-size', values['record-size'], 1024 * 1024);
if (RECORD_SIZE < 320) throw new Error('--record-size: at least 320 bytes (a payment document without padding)');
const WARMUP_RECORDS = positiveInt('warmup-records', values['warmup-records'], 10_000_000);
const ROUNDS = positiveInt('rounds', values['rounds'], 10);
const CODECS = codecList('codecs', values['codecs']);
const ENGINE_CODECS = codecList('engine-codecs', values['engine-codecs']);
const ENGINE_RECORDS = positiveInt('engine-records', values['engine-records'], 100_000);
const TIME_LIMIT_MS = positiveInt('time-limit', values['time-limit'], 3600) * 1000;
const SKIP_ENGINE = values['skip-engine'] === true;
const ENGINE_ONLY = values['engine-only'] === true;
const PAYLOAD_LINES = 1_000;
const VERIFY_RECORDS = 50;

const started = Date.now();
const deadline = started + TIME_LIMIT_MS;
setTimeout(() => {
  console.error(`kafka masking bench: still running ${TIME_LIMIT_MS / 1000 + 60} s after start; giving up`);
  process.exit(2);
}, TIME_LIMIT_MS + 60_000).unref();

class TimeLimitReached extends Error {}

const mib = (n: number, digits = 1): string => n.toFixed(digits);
const pct = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || b === 0 ? '—' : `${((100 * a) / b).toFixed(0)}%`);
const table = (header: string[], rows: string[][]): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
};
const median = (xs: readonly number[]): number | undefined => {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// ---------------------------------------------------------------------------------------------------------------
// Part 1: the masking engine alone

let engine: EngineCodecResult[] | undefined;
let engineError: string | undefined;
if (!SKIP_ENGINE) {
  try {
    engine = runEngineBench({ codecs: ENGINE_CODECS, records: ENGINE_RECORDS, recordsPerBatch: 16, recordSize: RECORD_SIZE, sliceMs: 200, slices: 5 }, (l) => console.error(l));
  } catch (err) {
    engineError = (err as Error).message;
    console.error(`engine bench: ${engineError}`);
  }
}

function printEngine(): void {
  if (SKIP_ENGINE) return;
  console.log(`Masking engine alone (this process, Node ${process.version}): maskFetchResponse over one Fetch v12 frame of ${ENGINE_RECORDS} JSON records × ${RECORD_SIZE} B ` +
    'in batches of 16 (encodeBatch), MiB/s of uncompressed record values, median of 5 slices of ≥ 200 ms');
  console.log('rule: mask {fields: {"$.card.number": keep-last-4}, detectors: [email, card]}; every record masked (checked)');
  if (engine === undefined) {
    console.log(`engine bench failed: ${engineError ?? 'unknown'}`);
    return;
  }
  console.log(table(
    ['codec', 'frame KiB', ...ENGINE_OPS.map((op) => `${op} MiB/s`), 'mask / decode+encode', 'mask / copy'],
    engine.map((r) => [r.codec, (r.frameBytes / 1024).toFixed(0), ...ENGINE_OPS.map((op) => mib(r.mibPerSec[op])),
      pct(r.mibPerSec.mask, r.mibPerSec['decode+encode']), pct(r.mibPerSec.mask, r.mibPerSec.copy)]),
  ));
  console.log('copy: Buffer.from(frame) (the compressed bytes for a compressed codec); decode: decodeResponse + decodeBatch; decode+encode: ' +
    'also encodeBatch with the same codec + encodeResponse, no masking; json: JSON.parse + JSON.stringify of each value, for scale');
}

if (ENGINE_ONLY) {
  printEngine();
  if (engine === undefined) process.exitCode = 1;
  process.exit();
}

// ---------------------------------------------------------------------------------------------------------------
// Part 2: end to end

async function tool(mainClass: string, args: readonly string[], jvmOptions: readonly string[] = [], timeoutMs = 120_000): Promise<CommandResult> {
  const remaining = deadline - Date.now();
  if (remaining < 5_000) throw new TimeLimitReached(`time limit of ${TIME_LIMIT_MS / 1000} s reached`);
  try {
    return await runKafkaTool(mainClass, args, { timeoutMs: Math.min(remaining, timeoutMs), maxHeap: '512m', jvmOptions });
  } catch (err) {
    if (Date.now() >= deadline - 1_000) throw new TimeLimitReached(`time limit of ${TIME_LIMIT_MS / 1000} s reached during ${mainClass}`);
    throw err;
  }
}

function failure(what: string, result: CommandResult): Error {
  return new Error(`${what}: exit ${result.code ?? result.signal}\n${result.stderr.trim().split('\n').slice(-15).join('\n')}\n${result.stdout.trim().split('\n').slice(-5).join('\n')}`);
}

interface ClientAuth {
  readonly javaConfigFile?: string;
  readonly jvmOptions?: readonly string[];
}
const NO_AUTH: ClientAuth = {};

const PRODUCER_SUMMARY = /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\)/;

async function produce(bootstrap: string, topic: string, codec: Compression, payloadFile: string): Promise<{ recordsPerSec: number; mibPerSec: number }> {
  const result = await tool('org.apache.kafka.tools.ProducerPerformance', [
    '--topic', topic,
    '--num-records', String(RECORDS),
    '--payload-file', payloadFile,
    '--throughput', '-1',
    '--producer-props', `bootstrap.servers=${bootstrap}`, 'acks=all', `client.id=bench-produce-${topic}`, `compression.type=${codec}`,
  ], [], 180_000);
  const match = PRODUCER_SUMMARY.exec(result.stdout);
  if (result.code !== 0 || match === null) throw failure(`ProducerPerformance to ${topic}`, result);
  if (Number(match[1]) !== RECORDS) throw failure(`ProducerPerformance to ${topic}: ${match[1]} of ${RECORDS} records sent`, result);
  return { recordsPerSec: Number(match[2]), mibPerSec: Number(match[3]) };
}

interface ConsumeResult {
  readonly records: number;
  readonly recordsPerSec: number;
  readonly mibPerSec: number;
}

async function consume(bootstrap: string, topic: string, records: number, auth: ClientAuth, label: string): Promise<ConsumeResult> {
  const result = await tool('org.apache.kafka.tools.ConsumerPerformance', [
    '--bootstrap-server', bootstrap,
    '--topic', topic,
    '--messages', String(records),
    '--group', `bench-${label}-${topic}-${randomBytes(4).toString('hex')}`,
    '--timeout', '30000',
    '--hide-header',
    ...(auth.javaConfigFile !== undefined ? ['--consumer.config', auth.javaConfigFile] : []),
  ], auth.jvmOptions);
  // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms,
  // fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  const line = result.stdout.split('\n').find((l) => /^\d{4}-\d\d-\d\d [\d:]+, /.test(l));
  const fields = line?.split(',').map((f) => f.trim());
  if (result.code !== 0 || fields === undefined || fields.length < 10) throw failure(`ConsumerPerformance from ${topic} via ${bootstrap}`, result);
  const consumed = Number(fields[4]);
  if (consumed < records) throw failure(`ConsumerPerformance from ${topic}: ${consumed} of ${records} records within its timeout`, result);
  return { records: consumed, recordsPerSec: Number(fields[9]), mibPerSec: Number(fields[8]) };
}

/** Record values read by the Java console consumer (check.crcs=true), one per line. */
async function consoleConsume(bootstrap: string, topic: string, count: number, auth: ClientAuth, label: string): Promise<string[]> {
  const result = await tool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
    '--bootstrap-server', bootstrap, '--topic', topic, '--from-beginning', '--max-messages', String(count),
    '--timeout-ms', '30000', '--group', `bench-verify-${label}-${topic}-${randomBytes(4).toString('hex')}`,
    '--consumer-property', 'check.crcs=true',
    ...(auth.javaConfigFile !== undefined ? ['--consumer.config', auth.javaConfigFile] : []),
  ], auth.jvmOptions, 60_000);
  const lines = result.stdout.split('\n').filter((l) => l.startsWith('{'));
  if (result.code !== 0 || lines.length < count) throw failure(`ConsoleConsumer from ${topic} via ${bootstrap} (${lines.length} of ${count} records)`, result);
  return lines;
}

/** CPU time (user + system) a process has used so far, in ms; undefined where /proc is not there. */
function cpuMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/** Bytes of the topic's log segments on the broker (what the codec made of the records). */
function storedBytes(dataRoot: string, topic: string): number | undefined {
  const walk = (dir: string, depth: number): string | undefined => {
    if (depth > 4) return undefined;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      if (entry.name === `${topic}-0`) return path.join(dir, entry.name);
      const found = walk(path.join(dir, entry.name), depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  try {
    const dir = walk(dataRoot, 0);
    if (dir === undefined) return undefined;
    return fs.readdirSync(dir).filter((f) => f.endsWith('.log')).reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
  } catch {
    return undefined;
  }
}

type CaseName = 'direct' | 'tcp_proxy' | 'tollgate' | 'tollgate+mask';
const CASES: readonly CaseName[] = ['direct', 'tcp_proxy', 'tollgate', 'tollgate+mask'];
const LISTENER = { tcp_proxy: 'VIA_TCP_PROXY', tollgate: 'VIA_TOLLGATE' } as const;
const PLAIN_CLIENT = 'tollgate-bench';
const MASKED_CLIENT = 'tollgate-bench-masked';
const BENCH_AUDIENCE = 'tollgate-bench';
const topicOf = (codec: Compression): string => `pay-${codec}`;

interface Run {
  readonly consume: ConsumeResult;
  readonly envoyCpuMs?: number;
  readonly tollgateCpuMs?: number;
}
const runs = new Map<string, Run[]>();
const key = (codec: Compression, c: CaseName): string => `${codec} ${c}`;
const errors: string[] = [];
const produced = new Map<Compression, { recordsPerSec: number; mibPerSec: number; stored?: number }>();
const verified: string[] = [];
const problems: string[] = [];
let audit: AuditCounts | undefined;
let maskedRunRecords = 0;
let skipped = 0;

const workDir = await (async () => {
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  return fs.promises.mkdtemp(path.join(RUN_DIR, 'bench-kafka-masking-'));
})();
const stops: Array<() => Promise<unknown>> = [];

try {
  await ensureKafka();
  await ensureEnvoy();
  const [envoyAdmin, tcpListener, tollListener, tollGrpc, tollAdmin] = (await freePorts(5)) as [number, number, number, number, number];
  const envoyListener = { tcp_proxy: tcpListener, tollgate: tollListener };

  const cluster: KafkaCluster = await startKafkaCluster({
    brokers: 1,
    jvmOptions: ['-Xmx512m', '-XX:+UseG1GC'],
    extraListeners: Object.values(LISTENER),
    advertised: (_nodeId, listener) => {
      const entry = Object.entries(LISTENER).find(([, name]) => name === listener);
      return entry === undefined ? undefined : `${LOOPBACK}:${envoyListener[entry[0] as keyof typeof LISTENER]}`;
    },
  });
  stops.push(() => cluster.stop());
  const broker = cluster.nodes[0]!;

  const secrets = new Map([PLAIN_CLIENT, MASKED_CLIENT].map((id) => [id, randomBytes(16).toString('hex')]));
  const issuer = await startDevIssuer({ audience: BENCH_AUDIENCE, clients: [...secrets].map(([id, secret]) => ({ id, secret, groups: ['bench'] })) });
  stops.push(() => issuer.close());
  const authFor = async (client: string): Promise<ClientAuth> => {
    const secret = secrets.get(client)!;
    const javaConfigFile = path.join(workDir, `${client}.properties`);
    await fs.promises.writeFile(javaConfigFile, javaOAuthBearerProperties(issuer.tokenEndpoint, client, secret), { mode: 0o600 });
    return { javaConfigFile, jvmOptions: [`-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=${issuer.tokenEndpoint}`] };
  };
  const plainAuth = await authFor(PLAIN_CLIENT);
  const maskedAuth = await authFor(MASKED_CLIENT);

  const tollgateConfig = path.join(workDir, 'tollgate.yaml');
  await fs.promises.writeFile(tollgateConfig, tollgateBenchConfig({
    grpc: `${LOOPBACK}:${tollGrpc}`,
    admin: `${LOOPBACK}:${tollAdmin}`,
    issuer: issuer.issuer,
    audience: BENCH_AUDIENCE,
    subject: [PLAIN_CLIENT, MASKED_CLIENT],
    topics: ['pay-*'],
    groups: ['bench-*'],
    brokers: cluster.nodes.map((node) => ({ nodeId: node.nodeId, advertise: `${LOOPBACK}:${tollListener}` })),
    extraRules: [{
      name: 'bench-mask-payments',
      description: 'the masked bench principal reads the payment topics masked',
      match: { subject: MASKED_CLIENT, kafka: { topic: 'pay-*' } },
      mask: MASK_SPEC,
    }],
  }));
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
      { name: 'tollgate', listenerPort: tollListener, brokerPort: broker.extraListeners[LISTENER.tollgate]!.port, processorPort: tollGrpc },
    ]),
    adminPort: envoyAdmin,
    logLevel: 'warn',
    workDir: path.join(workDir, 'envoy'),
  });
  stops.push(() => envoy.stop());

  const bootstrapOf = (c: CaseName): string => (c === 'direct' ? `${LOOPBACK}:${broker.port}` : `${LOOPBACK}:${c === 'tcp_proxy' ? tcpListener : tollListener}`);
  const authOf = (c: CaseName): ClientAuth => (c === 'tollgate' ? plainAuth : c === 'tollgate+mask' ? maskedAuth : NO_AUTH);

  // The records: PAYLOAD_LINES distinct documents, ProducerPerformance picks one at random per record.
  const payloads = Array.from({ length: PAYLOAD_LINES }, (_, i) => paymentJson(i, RECORD_SIZE));
  const payloadSet = new Set(payloads);
  const payloadFile = path.join(workDir, 'payments.jsonl');
  await fs.promises.writeFile(payloadFile, payloads.join('\n'));
  await cluster.createTopics(CODECS.map(topicOf), 1, 1);
  for (const codec of CODECS) {
    const t0 = Date.now();
    const p = await produce(bootstrapOf('direct'), topicOf(codec), codec, payloadFile);
    const stored = storedBytes(broker.workDir, topicOf(codec));
    produced.set(codec, { ...p, ...(stored !== undefined && { stored }) });
    console.error(`produced ${RECORDS} records to ${topicOf(codec)} (${codec}) in ${Date.now() - t0} ms: ${p.mibPerSec} MiB/s` +
      `${stored !== undefined ? `, ${(stored / 1024 / 1024).toFixed(1)} MiB on the broker` : ''}`);
  }

  // Warm-up: every case reads every topic once.
  const warm = Date.now();
  for (const codec of CODECS) for (const c of CASES) await consume(bootstrapOf(c), topicOf(codec), Math.min(WARMUP_RECORDS, RECORDS), authOf(c), 'warm');
  maskedRunRecords += CODECS.length * Math.min(WARMUP_RECORDS, RECORDS);
  console.error(`warm-up: every case read ${Math.min(WARMUP_RECORDS, RECORDS)} records of every topic in ${Date.now() - warm} ms`);

  outer: for (let round = 0; round < ROUNDS; round++) {
    for (const [ci, codec] of CODECS.entries()) {
      for (let k = 0; k < CASES.length; k++) {
        const c = CASES[(k + round + ci) % CASES.length]!;
        try {
          const envoyBefore = c === 'direct' ? undefined : cpuMs(envoy.pid);
          const tollBefore = c.startsWith('tollgate') ? cpuMs(tollgate.pid) : undefined;
          const result = await consume(bootstrapOf(c), topicOf(codec), RECORDS, authOf(c), c === 'tollgate+mask' ? 'masked' : c.replace('_', '-'));
          const envoyAfter = c === 'direct' ? undefined : cpuMs(envoy.pid);
          const tollAfter = c.startsWith('tollgate') ? cpuMs(tollgate.pid) : undefined;
          if (c === 'tollgate+mask') maskedRunRecords += RECORDS;
          const run: Run = {
            consume: result,
            ...(envoyBefore !== undefined && envoyAfter !== undefined && { envoyCpuMs: envoyAfter - envoyBefore }),
            ...(tollBefore !== undefined && tollAfter !== undefined && { tollgateCpuMs: tollAfter - tollBefore }),
          };
          runs.set(key(codec, c), [...(runs.get(key(codec, c)) ?? []), run]);
          console.error(`round ${round + 1}/${ROUNDS} ${codec} ${c}: ${result.recordsPerSec.toFixed(0)} rec/s, ${result.mibPerSec.toFixed(1)} MiB/s`);
        } catch (err) {
          if (err instanceof TimeLimitReached) {
            skipped = (ROUNDS - round) * CODECS.length * CASES.length - (ci * CASES.length + k);
            console.error(`time limit: ${skipped} runs skipped`);
            break outer;
          }
          errors.push(`${codec} ${c}: ${(err as Error).message}`);
          console.error(`round ${round + 1}/${ROUNDS} ${codec} ${c}: ${(err as Error).message}`);
        }
      }
    }
  }

  // Masked for the masked principal, byte-exact for the plain one, whatever the codec. Not bounded by --time-limit's
  // remaining time only: verification runs even when the rounds ran out of time (its own 60 s per run).
  for (const codec of CODECS) {
    const topic = topicOf(codec);
    try {
      const masked = await runKafkaTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
        '--bootstrap-server', bootstrapOf('tollgate+mask'), '--topic', topic, '--from-beginning', '--max-messages', String(VERIFY_RECORDS),
        '--timeout-ms', '30000', '--group', `bench-verify-masked-${topic}-${randomBytes(4).toString('hex')}`,
        '--consumer-property', 'check.crcs=true', '--consumer.config', maskedAuth.javaConfigFile!,
      ], { timeoutMs: 60_000, jvmOptions: maskedAuth.jvmOptions! });
      const maskedLines = masked.stdout.split('\n').filter((l) => l.startsWith('{'));
      if (masked.code !== 0 || maskedLines.length < VERIFY_RECORDS) throw failure(`ConsoleConsumer (masked) from ${topic}: ${maskedLines.length} of ${VERIFY_RECORDS} records`, masked);
      const bad = maskedLines.map(checkMasked).filter((p) => p !== undefined);
      if (bad.length > 0) problems.push(`${codec}: ${bad.length} of ${maskedLines.length} records read as the masked principal are not masked: ${bad[0]}`);
      const plainLines = await consoleConsume(bootstrapOf('tollgate'), topic, VERIFY_RECORDS, plainAuth, 'plain');
      const foreign = plainLines.filter((l) => !payloadSet.has(l)).length;
      if (foreign > 0) problems.push(`${codec}: ${foreign} of ${plainLines.length} records read as the plain principal differ from every produced document`);
      if (bad.length === 0 && foreign === 0) {
        const sample = JSON.parse(maskedLines[0]!) as { card: { number: string }; customer: { email: string } };
        verified.push(`${codec}: ${maskedLines.length}/${maskedLines.length} masked (e.g. card.number ${sample.card.number}, customer.email ${JSON.stringify(sample.customer.email)}), ` +
          `${plainLines.length}/${plainLines.length} unmasked records byte-exact`);
      }
    } catch (err) {
      problems.push(`${codec}: verification failed: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  await envoy.stop();
  await tollgate.stop(10_000);
  try {
    audit = await countAuditRecords(tollgate.logFile);
  } catch (err) {
    problems.push(`tollgate's audit records could not be counted: ${(err as Error).message}`);
  }
} catch (err) {
  problems.push(`the bench did not complete: ${(err as Error).message.split('\n').slice(0, 3).join(' / ')}`);
} finally {
  for (const stop of stops.reverse()) await stop().catch((err: Error) => console.error(`stopping: ${err.message}`));
}

// ---------------------------------------------------------------------------------------------------------------
// Report

printEngine();
console.log('');
console.log(`Kafka consume with masking: ${RECORDS} JSON records × ${RECORD_SIZE} B per codec (a card number and an email each; ${PAYLOAD_LINES} distinct documents), ` +
  `1 partition, ${ROUNDS} round(s) (median), warm-up ${Math.min(WARMUP_RECORDS, RECORDS)} records per case and codec`);
console.log(`producer: Kafka ${KAFKA_VERSION} ProducerPerformance --payload-file (one document per line, picked at random), acks=all, compression.type per codec, ` +
  'default batch.size/linger.ms, straight to the broker (not measured here)');
console.log(`consumer: ConsumerPerformance (fetch.* figures: group join excluded; MiB of uncompressed record values), a new group per run, default fetch sizes (1 MiB per partition), check.crcs on`);
console.log(`path: one broker (KRaft), Envoy ${ENVOY_VERSION} --concurrency 1 (listeners derived from envoy/kafka.yaml), tollgate on 127.0.0.1 gRPC; all sharing this machine's cores. ` +
  'tollgate: SASL OAUTHBEARER, per-request policy, audit at info; "tollgate" = principal without masking rules, "tollgate+mask" = principal with ' +
  'mask {fields: {"$.card.number": keep-last-4}, detectors: [email, card]} on the topics');
for (const codec of CODECS) {
  const p = produced.get(codec);
  if (p === undefined) continue;
  console.log(`${codec}: produced at ${p.mibPerSec} MiB/s${p.stored !== undefined ? `; ${(p.stored / 1024 / 1024).toFixed(1)} MiB on the broker for ${(RECORDS * RECORD_SIZE / 1024 / 1024).toFixed(1)} MiB of values (${((RECORDS * RECORD_SIZE) / p.stored).toFixed(1)}×)` : ''}`);
}
console.log('');
const summary = new Map<string, { rps?: number; mibps?: number; envoyCpu?: number; tollCpu?: number; n: number }>();
for (const codec of CODECS) {
  for (const c of CASES) {
    const rs = runs.get(key(codec, c)) ?? [];
    summary.set(key(codec, c), {
      n: rs.length,
      ...(rs.length > 0 && {
        rps: median(rs.map((r) => r.consume.recordsPerSec))!,
        mibps: median(rs.map((r) => r.consume.mibPerSec))!,
      }),
      ...(rs.some((r) => r.envoyCpuMs !== undefined) && { envoyCpu: median(rs.flatMap((r) => (r.envoyCpuMs === undefined ? [] : [(r.envoyCpuMs * 10_000) / RECORDS])))! }),
      ...(rs.some((r) => r.tollgateCpuMs !== undefined) && { tollCpu: median(rs.flatMap((r) => (r.tollgateCpuMs === undefined ? [] : [(r.tollgateCpuMs * 10_000) / RECORDS])))! }),
    });
  }
}
const num = (v: number | undefined, digits = 0): string => (v === undefined ? '—' : v.toFixed(digits));
console.log(table(
  ['codec', 'case', 'runs', 'consume rec/s', 'MiB/s', 'vs direct', 'vs tcp_proxy', 'vs tollgate', 'CPU ms/10k rec: Envoy', 'tollgate'],
  CODECS.flatMap((codec) => CASES.map((c) => {
    const s = summary.get(key(codec, c))!;
    const direct = summary.get(key(codec, 'direct'))!;
    const tcp = summary.get(key(codec, 'tcp_proxy'))!;
    const toll = summary.get(key(codec, 'tollgate'))!;
    return [codec, c, String(s.n), num(s.rps), num(s.mibps, 1),
      c === 'direct' ? '' : pct(s.mibps, direct.mibps),
      c === 'direct' || c === 'tcp_proxy' ? '' : pct(s.mibps, tcp.mibps),
      c === 'tollgate+mask' ? pct(s.mibps, toll.mibps) : '',
      num(s.envoyCpu), num(s.tollCpu)];
  })),
));
if (skipped > 0) console.log(`${skipped} measured runs skipped: time limit of ${TIME_LIMIT_MS / 1000} s reached`);
for (const e of errors) console.log(`error: ${e.split('\n')[0]}`);
for (const v of verified) console.log(`verified ${v}`);
if (audit !== undefined) {
  console.log(`audit: ${audit.requests} allowed requests (Fetch ${audit.byApi.get('Fetch') ?? 0}), ${audit.denied} denied, ${audit.authentications} SASL authentications; ` +
    `masked ${audit.maskedRecords} records (values: ${[...audit.maskedValues].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}), ` +
    `${audit.maskingFailedPartitions} partitions failed, ${audit.maskingDroppedPartialBatches} partial batches dropped (re-fetched whole)`);
  if (audit.maskedRecords < maskedRunRecords) problems.push(`tollgate's audit counts ${audit.maskedRecords} masked records, fewer than the ${maskedRunRecords} the masked runs consumed`);
  if (audit.maskingFailedPartitions > 0) problems.push(`tollgate answered ${audit.maskingFailedPartitions} partitions with a masking error`);
  if (audit.denied > 0) problems.push(`tollgate denied ${audit.denied} request(s): ${audit.denials.join('; ')}`);
  const unexpected = [...audit.byEvent].filter(([e]) => !['kafka.request', AUTO_CREATE_OFF, 'kafka.sasl.authenticated', 'kafka.sasl.reauthenticated'].includes(e));
  if (unexpected.length > 0) problems.push(`unexpected audit events: ${unexpected.map(([e, n]) => `${e} ${n}`).join(', ')}`);
}
if (errors.length > 0) problems.push(`${errors.length} run(s) failed`);
if ((summary.get(key(CODECS[0]!, 'tollgate+mask'))?.n ?? 0) === 0) problems.push('no masked run completed');
if (verified.length !== CODECS.length) problems.push(`masking verified for ${verified.length} of ${CODECS.length} codecs`);
if (!SKIP_ENGINE && engine === undefined) problems.push(`engine bench failed: ${engineError ?? 'unknown'}`);
console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s (limit ${TIME_LIMIT_MS / 1000} s for the Kafka part's runs); logs in ${workDir}`);
if (problems.length > 0) {
  console.error(`kafka masking bench: FAILED\n  ${problems.join('\n  ')}`);
  process.exitCode = 1;
}
