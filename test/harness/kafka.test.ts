/**
 * The Kafka harness against a real broker: one broker for the whole file, records through it with kafkajs (one of
 * them larger than Kafka's default 1 MiB limit), Kafka's own console tools through runKafkaTool, and a clean stop.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { Consumer, Producer } from 'kafkajs';
import { ensureKafka } from '../../scripts/provision.ts';
import { runKafkaTool, startKafka } from '../../scripts/lib/kafka.ts';
import type { KafkaBroker } from '../../scripts/lib/kafka.ts';
import { isProcessAlive } from '../../scripts/lib/process.ts';

let broker: KafkaBroker;
let kafka: Kafka;
const clients: (Producer | Consumer)[] = [];

before(async () => {
  await ensureKafka();
  broker = await startKafka();
  kafka = new Kafka({ clientId: 'harness-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
});

after(async () => {
  for (const client of clients) await client.disconnect();
  if (broker === undefined) return;
  const { pid } = broker;
  await broker.stop();
  assert.equal(isProcessAlive(pid), false, `broker pid ${pid} still running after stop()`);
  // Stopping again is harmless.
  await broker.stop();
});

test('the broker listens on 127.0.0.1 and logs at INFO to its log file', () => {
  assert.match(broker.bootstrap, /^127\.0\.0\.1:\d+$/);
  assert.equal(broker.bootstrap, `${broker.host}:${broker.port}`);
  assert.notEqual(broker.port, broker.controllerPort);
  const log = fs.readFileSync(broker.logFile, 'utf8');
  assert.match(log, /INFO .*Kafka Server started/);
});

test('records, including a 1.5 MiB one, go through the broker unchanged', async () => {
  const topic = 'harness-roundtrip';
  await broker.createTopics([topic]);

  const big = randomBytes(1.5 * 1024 * 1024);
  const sent = [
    { key: 'k1', value: Buffer.from('first') },
    { key: 'k2', value: Buffer.from('second, with ünïcödé') },
    { key: 'big', value: big },
    { key: 'k3', value: Buffer.from('last') },
  ];

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  clients.push(producer);
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: sent });

  const consumer = kafka.consumer({ groupId: 'harness-roundtrip-group' });
  clients.push(consumer);
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const received: { key: string; value: Buffer; partition: number }[] = [];
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachMessage: async ({ message, partition }) => {
          received.push({ key: message.key?.toString() ?? '', value: message.value ?? Buffer.alloc(0), partition });
          if (received.length === sent.length) resolve();
        },
      })
      .catch(reject);
  });

  assert.deepEqual(received.map((r) => r.key), sent.map((m) => m.key));
  assert.equal(received[0]!.value.toString(), 'first');
  assert.equal(received[1]!.value.toString('utf8'), 'second, with ünïcödé');
  assert.equal(received[2]!.value.length, big.length);
  assert.ok(received[2]!.value.equals(big), 'the large value came back byte for byte');
  assert.equal(received[3]!.value.toString(), 'last');
});

test('producing to a topic nobody created fails (auto-creation is off)', async () => {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, retry: { retries: 1 } });
  clients.push(producer);
  await producer.connect();
  await assert.rejects(producer.send({ topic: 'harness-never-created', messages: [{ value: 'x' }] }), /does not host this topic-partition/);
});

test("Kafka's console producer and consumer work through runKafkaTool", async () => {
  const topic = 'harness-console';
  await broker.createTopics([topic], 2);

  const produced = await runKafkaTool('org.apache.kafka.tools.ConsoleProducer', ['--bootstrap-server', broker.bootstrap, '--topic', topic], {
    input: 'alpha\nbeta\ngamma\n',
  });
  assert.equal(produced.code, 0, produced.stderr);

  const consumed = await runKafkaTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
    '--bootstrap-server', broker.bootstrap, '--topic', topic, '--from-beginning', '--max-messages', '3', '--timeout-ms', '30000',
  ]);
  assert.equal(consumed.code, 0, consumed.stderr);
  // Two partitions: the order across them is not defined.
  assert.deepEqual(consumed.stdout.trim().split('\n').sort(), ['alpha', 'beta', 'gamma']);
});
