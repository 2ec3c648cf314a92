/**
 * The generated codecs against real traffic: one real broker, a recording TCP proxy of this test's own between the
 * clients and the broker (the broker advertises the proxy, so every connection goes through it), kafkajs and Kafka's
 * own Java console clients driving it. Every captured frame must decode, re-encode to the same bytes, and carry an
 * API version the spec declares valid. Then a seeded fuzz over the captured frames: garbage gives FrameError only.
 */
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';
import { ensureKafka } from '../../../scripts/provision.ts';
import { runKafkaTool, startKafka } from '../../../scripts/lib/kafka.ts';
import type { KafkaBroker } from '../../../scripts/lib/kafka.ts';
import { freePorts, LOOPBACK } from '../../../scripts/lib/ports.ts';
import { FrameError, FrameReassembler } from '../../../src/kafka/protocol/framing.ts';
import { API_SPECS } from '../../../src/kafka/protocol/generated/index.ts';
import { seededRandom } from '../frames.ts';
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  fetchTopics,
  isRequestOf,
  produceTopics,
} from '../../../src/kafka/protocol/messages.ts';

interface Captured {
  readonly direction: 'request' | 'response';
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly frame: Buffer;
}

/** Forwards bytes unchanged both ways and records every whole frame, pairing responses with their requests. */
class RecordingProxy {
  readonly frames: Captured[] = [];
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  constructor(targetPort: number) {
    this.#server = net.createServer((client) => this.#connect(client, targetPort));
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: LOOPBACK, port }, () => resolve());
    });
  }

  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #connect(client: net.Socket, targetPort: number): void {
    const upstream = net.connect({ host: LOOPBACK, port: targetPort });
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => {});
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    const requests = new FrameReassembler({ maxFrameBytes: 100 * 1024 * 1024 });
    const responses = new FrameReassembler({ maxFrameBytes: 100 * 1024 * 1024 });
    const pending = new Map<number, { apiKey: number; apiVersion: number }>();
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      for (const frame of requests.push(chunk)) {
        const request = { apiKey: frame.readInt16BE(4), apiVersion: frame.readInt16BE(6) };
        pending.set(frame.readInt32BE(8), request);
        this.frames.push({ direction: 'request', ...request, frame: Buffer.from(frame) });
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      for (const frame of responses.push(chunk)) {
        const correlationId = frame.readInt32BE(4);
        const request = pending.get(correlationId);
        assert.ok(request !== undefined, `response with correlation id ${correlationId} matches no request`);
        pending.delete(correlationId);
        this.frames.push({ direction: 'response', ...request, frame: Buffer.from(frame) });
      }
    });
  }
}

// kafkajs 2.2.4 sets a timer with a negative delay (RequestQueue.scheduleCheckPendingRequests) and Node 24 warns
// on stderr each time; the timer still fires at once. Only that warning is silenced, to keep the test quiet.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const name = typeof warning === 'string' ? (typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type) : warning.name;
  if (name === 'TimeoutNegativeWarning') return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

let broker: KafkaBroker;
let proxy: RecordingProxy;
let bootstrap: string;

before(async () => {
  await ensureKafka();
  const [proxyPort] = (await freePorts(1)) as [number];
  broker = await startKafka({ extraServerProperties: { 'advertised.listeners': `PLAINTEXT://${LOOPBACK}:${proxyPort}` } });
  proxy = new RecordingProxy(broker.port);
  await proxy.listen(proxyPort);
  bootstrap = `${LOOPBACK}:${proxyPort}`;
  await driveKafkajs();
  await driveJavaClients();
});

after(async () => {
  await proxy?.close();
  await broker?.stop();
});

const TOPIC = 'codec-traffic';
const JAVA_TOPIC = 'codec-traffic-java';
const SCRATCH_TOPIC = 'codec-traffic-scratch';
const GROUP = 'codec-traffic-group';

async function driveKafkajs(): Promise<void> {
  const kafka = new Kafka({ clientId: 'codec-traffic', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [
        { topic: TOPIC, numPartitions: 2, replicationFactor: 1 },
        { topic: JAVA_TOPIC, numPartitions: 1, replicationFactor: 1 },
        { topic: SCRATCH_TOPIC, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '60000' }] },
      ],
      waitForLeaders: true,
    });
    await admin.listTopics();
    await admin.fetchTopicMetadata({ topics: [TOPIC] });
    await admin.describeConfigs({ resources: [{ type: 2, name: TOPIC }], includeSynonyms: false });

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true });
    await producer.connect();
    await producer.send({
      topic: TOPIC,
      acks: -1,
      messages: [
        { key: 'k1', value: 'plain', headers: { trace: 'abc', 'ünï': Buffer.from([0, 1, 2]) } },
        { key: null, value: 'no key' },
      ],
    });
    await producer.send({
      topic: TOPIC,
      compression: CompressionTypes.GZIP,
      messages: Array.from({ length: 20 }, (_, i) => ({ key: `g${i}`, value: `compressed ${i} `.repeat(20), partition: i % 2 })),
    });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: GROUP, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumer saw ${seen} of 22 records in 20 s`)), 20_000);
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ topic, partition, message }) => {
            await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
            if (++seen === 22) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    await admin.describeGroups([GROUP]);
    await consumer.disconnect();
    await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
    await admin.fetchTopicOffsets(TOPIC);
    await admin.listGroups();
    await admin.deleteTopics({ topics: [SCRATCH_TOPIC] });
  } finally {
    await admin.disconnect();
  }
}

/** Kafka's own clients use the newest versions and flexible headers; the consumer runs the KIP-848 protocol. */
async function driveJavaClients(): Promise<void> {
  const produced = await runKafkaTool('org.apache.kafka.tools.ConsoleProducer', ['--bootstrap-server', bootstrap, '--topic', JAVA_TOPIC], {
    input: 'one\ntwo\nthree\n',
    timeoutMs: 30_000,
  });
  assert.equal(produced.code, 0, produced.stderr);
  const consumed = await runKafkaTool(
    'org.apache.kafka.tools.consumer.ConsoleConsumer',
    [
      '--bootstrap-server', bootstrap, '--topic', JAVA_TOPIC, '--from-beginning', '--max-messages', '3', '--timeout-ms', '20000',
      '--group', 'codec-traffic-java-group', '--consumer-property', 'group.protocol=consumer',
    ],
    { timeoutMs: 30_000 },
  );
  assert.equal(consumed.code, 0, consumed.stderr);
  assert.deepEqual(consumed.stdout.trim().split('\n'), ['one', 'two', 'three']);
}

function label(captured: Captured): string {
  return `${API_SPECS.get(captured.apiKey)?.name ?? `key ${captured.apiKey}`} v${captured.apiVersion} ${captured.direction}`;
}

test('every captured request and response re-encodes to the same bytes, at a version its spec declares valid', (t: TestContext) => {
  const frames = proxy.frames;
  assert.ok(frames.length > 50, `only ${frames.length} frames captured`);
  const covered = new Set<string>();
  for (const captured of frames) {
    const spec = API_SPECS.get(captured.apiKey);
    assert.ok(spec?.codecs, `${label(captured)}: no codecs for this API key`);
    const range = captured.direction === 'request' ? spec.request.validVersions : spec.response.validVersions;
    assert.ok(range !== null && captured.apiVersion >= range.min && captured.apiVersion <= range.max, `${label(captured)}: version outside the spec`);
    if (captured.direction === 'request') {
      const decoded = decodeRequest(captured.frame);
      assert.equal(decoded.header.apiKey, captured.apiKey);
      assert.equal(decoded.header.apiVersion, captured.apiVersion);
      assert.deepEqual(encodeRequest(decoded.header, decoded.body), captured.frame, `${label(captured)} re-encodes differently`);
    } else {
      const decoded = decodeResponse(captured.frame, captured.apiKey, captured.apiVersion);
      assert.deepEqual(encodeResponse(decoded.header, captured.apiKey, captured.apiVersion, decoded.body), captured.frame, `${label(captured)} re-encodes differently`);
    }
    covered.add(label(captured));
  }
  // What the traffic must have exercised: the two clients, flexible and non-flexible versions of the hot APIs.
  const apis = new Set([...covered].map((l) => l.split(' ')[0]));
  for (const name of ['ApiVersions', 'Metadata', 'CreateTopics', 'Produce', 'Fetch', 'FindCoordinator', 'JoinGroup', 'SyncGroup', 'OffsetCommit', 'OffsetFetch', 'DescribeGroups', 'ListOffsets', 'ConsumerGroupHeartbeat', 'InitProducerId', 'DeleteTopics']) {
    assert.ok(apis.has(name), `no ${name} traffic captured (saw ${[...apis].join(', ')})`);
  }
  // Tagged fields from a real broker: ApiVersions v3+ responses carry the supported and finalized features as tags.
  const apiVersions = frames.find((c) => c.direction === 'response' && c.apiKey === 18 && c.apiVersion >= 3);
  assert.ok(apiVersions, 'no flexible ApiVersions response captured');
  const features = decodeResponse(apiVersions.frame, 18, apiVersions.apiVersion).body;
  assert.ok(features.supportedFeatures !== undefined && features.supportedFeatures.length > 0, 'ApiVersions response without tagged SupportedFeatures');
  const flexibleRequests = frames.filter((c) => c.direction === 'request' && c.apiVersion >= (API_SPECS.get(c.apiKey)!.request.flexibleFrom ?? Infinity));
  assert.ok(flexibleRequests.length > 0 && flexibleRequests.length < frames.length / 2, 'expected both flexible and non-flexible requests');
  t.diagnostic(`${frames.length} frames, ${apis.size} APIs, ${covered.size} API/version/direction pairs: ${[...covered].sort().join('; ')}`);
});

test('produceTopics and fetchTopics agree with the full decode on every captured Produce and Fetch request', () => {
  let produce = 0;
  let fetch = 0;
  for (const captured of proxy.frames) {
    if (captured.direction !== 'request') continue;
    const decoded = decodeRequest(captured.frame);
    if (isRequestOf(decoded, 0)) {
      produce++;
      const byId = captured.apiVersion >= 13;
      assert.deepEqual(
        produceTopics(captured.frame),
        decoded.body.topicData.map((topic) => ({
          name: byId ? null : topic.name,
          topicId: byId ? topic.topicId : null,
          partitions: topic.partitionData.map((p) => p.index),
        })),
      );
    } else if (isRequestOf(decoded, 1)) {
      fetch++;
      const byId = captured.apiVersion >= 13;
      assert.deepEqual(
        fetchTopics(captured.frame),
        decoded.body.topics.map((topic) => ({
          name: byId ? null : topic.topic,
          topicId: byId ? topic.topicId : null,
          partitions: topic.partitions.map((p) => p.partition),
        })),
      );
    }
  }
  assert.ok(produce >= 3 && fetch >= 3, `expected Produce and Fetch requests, got ${produce} and ${fetch}`);
});

function withSizePrefix(body: Buffer): Buffer {
  const frame = Buffer.alloc(body.length + 4);
  frame.writeInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

function mutate(frame: Buffer, next: () => number): Buffer {
  const int = (n: number): number => Math.floor(next() * n);
  const body = Buffer.from(frame.subarray(4));
  switch (int(6)) {
    case 0: // truncated, size prefix fixed up
      return withSizePrefix(body.subarray(0, int(body.length)));
    case 1: // truncated, size prefix left as it was
      return frame.subarray(0, int(frame.length));
    case 2: // a few flipped bytes
      for (let i = 1 + int(4); i > 0; i--) {
        const at = int(body.length);
        body[at] = body[at]! ^ (1 << int(8));
      }
      return withSizePrefix(body);
    case 3: // a length or count overwritten with an extreme value
      if (body.length >= 4) body.writeInt32BE([0x7fffffff, -1, -2, 0x40000000, 0x00ffffff][int(5)]!, int(body.length - 3));
      return withSizePrefix(body);
    case 4: // varint-looking garbage (continuation bits everywhere) spliced in
      return withSizePrefix(Buffer.concat([body.subarray(0, int(body.length)), Buffer.alloc(1 + int(12), 0xff), body.subarray(int(body.length))]));
    default: // random bytes after a valid header prefix
      return withSizePrefix(Buffer.concat([body.subarray(0, 8 + int(16)), Buffer.from(Array.from({ length: int(64) }, () => int(256)))]));
  }
}

test('mutated and truncated frames give FrameError and nothing else, without looping (seeded fuzz)', () => {
  const seed = 20_261_123;
  const next = seededRandom(seed);
  // Small frames (most APIs) and a cap on large ones keep the run short; Fetch responses with records are big.
  const sources = proxy.frames.filter((c) => c.frame.length < 64 * 1024);
  const MUTATIONS = 5000;
  const started = performance.now();
  let rejected = 0;
  for (let i = 0; i < MUTATIONS; i++) {
    const source = sources[Math.floor(next() * sources.length)]!;
    const frame = mutate(source.frame, next);
    try {
      if (source.direction === 'request') {
        decodeRequest(frame);
        if (source.apiKey === 0) produceTopics(frame);
        if (source.apiKey === 1) fetchTopics(frame);
      } else {
        decodeResponse(frame, source.apiKey, source.apiVersion);
      }
    } catch (err) {
      if (!(err instanceof FrameError)) {
        assert.fail(`mutation ${i} (seed ${seed}) of ${label(source)} threw ${String(err)}; frame ${frame.toString('hex').slice(0, 400)}`);
      }
      rejected++;
    }
  }
  assert.ok(rejected > MUTATIONS / 2, `only ${rejected} of ${MUTATIONS} mutations were rejected`);
  assert.ok(performance.now() - started < 10_000, 'the fuzz took over 10 s: something loops');
});
