/**
 * Batches as a real Kafka 4.1 broker stores and returns them: produced by Kafka's Java console producer (each
 * codec) and by kafkajs (gzip), fetched back raw with a Fetch v12 request over a socket.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { startKafka, runKafkaTool } from '../../../scripts/lib/kafka.ts';
import type { KafkaBroker } from '../../../scripts/lib/kafka.ts';
import { API_KEY } from '../../../src/kafka/protocol/api-keys.ts';
import { ZERO_UUID } from '../../../src/kafka/protocol/codec/schema.ts';
import { decodeResponse, encodeRequest } from '../../../src/kafka/protocol/messages.ts';
import { decodeBatch, encodeBatch, readBatchHeader, splitBatches } from '../../../src/kafka/protocol/records/index.ts';
import type { Compression } from '../../../src/kafka/protocol/records/index.ts';

const CODECS: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** Sends one request frame, resolves with the response frame (size prefix included). */
function roundTrip(host: string, port: number, frame: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let received = Buffer.alloc(0);
    socket.on('connect', () => socket.write(frame));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 4 && received.length >= 4 + received.readInt32BE(0)) {
        socket.destroy();
        resolve(received.subarray(0, 4 + received.readInt32BE(0)));
      }
    });
    socket.on('error', reject);
  });
}

async function fetchRecords(broker: KafkaBroker, topic: string, maxBytes = 50 * 1024 * 1024): Promise<Buffer> {
  const frame = encodeRequest({ apiKey: API_KEY.Fetch, apiVersion: 12, correlationId: 1, clientId: 'records-test', taggedFields: [] }, {
    replicaId: -1, maxWaitMs: 500, minBytes: 1, maxBytes, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
    topics: [{ topic, topicId: ZERO_UUID, partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0n, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: maxBytes }] }],
    forgottenTopicsData: [], rackId: '',
  });
  const response = decodeResponse(await roundTrip(broker.host, broker.port, frame), API_KEY.Fetch, 12);
  const partition = response.body.responses[0]!.partitions[0]!;
  assert.equal(partition.errorCode, 0);
  return partition.records ?? Buffer.alloc(0);
}

describe('record batches from a real broker', { timeout: 300_000 }, () => {
  let broker: KafkaBroker;
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`);

  before(async () => {
    broker = await startKafka();
    await broker.createTopics([...CODECS.map((c) => `java-${c}`), 'kafkajs-gzip']);
  });
  after(async () => { await broker?.stop(); });

  for (const codec of CODECS) {
    it(`reads, re-encodes and decodes again what the Java producer wrote with ${codec}`, async () => {
      const topic = `java-${codec}`;
      const result = await runKafkaTool('org.apache.kafka.tools.ConsoleProducer', [
        '--bootstrap-server', broker.bootstrap, '--topic', topic,
        '--compression-codec', codec, '--producer-property', `compression.type=${codec}`, '--producer-property', 'linger.ms=50',
      ], { input: lines.join('\n') + '\n', timeoutMs: 120_000 });
      assert.equal(result.code, 0, result.stderr);
      const records = await fetchRecords(broker, topic);
      const { batches, partial } = splitBatches(records);
      assert.equal(partial, null);
      const values: string[] = [];
      for (const batch of batches) {
        const decoded = decodeBatch(batch);
        assert.equal(decoded.header.compression, codec);
        values.push(...decoded.records.map((r) => r.value!.toString()));
        const again = decodeBatch(encodeBatch(decoded.header, decoded.records));
        assert.deepEqual(again.records, decoded.records);
        assert.equal(again.header.compression, codec);
        if (codec === 'none') assert.ok(encodeBatch(decoded.header, decoded.records).equals(batch), 'uncompressed re-encode is byte-identical');
      }
      assert.deepEqual(values, lines);

      // Cut the fetched bytes at random points: whole batches intact, the rest apart.
      for (let i = 0; i < 50; i++) {
        const cut = Math.floor(Math.random() * records.length);
        const split = splitBatches(records.subarray(0, cut));
        const kept = split.batches.reduce((n, b) => n + b.length, 0);
        assert.equal(kept + (split.partial?.length ?? 0), cut);
        for (const b of split.batches) assert.doesNotThrow(() => decodeBatch(b));
        if (split.partial !== null) assert.throws(() => readBatchHeader(split.partial!));
      }
    });
  }

  it('reads what kafkajs wrote with gzip, and a Fetch cut by its byte limit', async () => {
    const kafka = new Kafka({ clientId: 'records-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    for (let b = 0; b < 5; b++) {
      await producer.send({ topic: 'kafkajs-gzip', compression: CompressionTypes.GZIP, messages: Array.from({ length: 20 }, (_, i) => ({ key: `k${b}-${i}`, value: `v${b}-${i}`, headers: { h: `x${i}` } })) });
    }
    await producer.disconnect();
    const records = await fetchRecords(broker, 'kafkajs-gzip');
    const { batches } = splitBatches(records);
    assert.equal(batches.length, 5);
    const decoded = batches.map((b) => decodeBatch(b));
    assert.deepEqual(decoded.flatMap((d) => d.records.map((r) => [r.key!.toString(), r.value!.toString(), r.headers[0]!.value!.toString()])),
      Array.from({ length: 100 }, (_, n) => [`k${Math.floor(n / 20)}-${n % 20}`, `v${Math.floor(n / 20)}-${n % 20}`, `x${n % 20}`]));
    for (const d of decoded) assert.equal(d.header.compression, 'gzip');

    const limited = await fetchRecords(broker, 'kafkajs-gzip', batches[0]!.length + 10);
    const split = splitBatches(limited);
    assert.ok(split.batches.length >= 1);
    if (limited.length > split.batches.reduce((n, b) => n + b.length, 0)) assert.notEqual(split.partial, null);
  });
});
