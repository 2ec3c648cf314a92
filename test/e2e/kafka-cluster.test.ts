/**
 * Three brokers behind Envoy and tollgate: each broker has its own Envoy listener and advertises its own address;
 * tollgate rewrites every broker address in Metadata, FindCoordinator and DescribeCluster to that broker's Envoy
 * listener. A kafkajs client given only the first listener's address reaches every partition leader, and never a
 * broker directly.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Consumer, Producer } from 'kafkajs';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import { authenticate, connectTo, decodeMetadata, frameReader, metadataRequest } from '../harness/kafka-client.ts';

const TOPIC = 'spread';
const PARTITIONS = 3;
const RECORDS_PER_PARTITION = 10;
const ANALYST = { sub: 'carol', groups: ['analysts'] } as const;

let stack: Stack;

before(async () => {
  stack = await startStack({
    brokers: 3,
    editConfig: (config) => {
      (config['rules'] as unknown[]).push({
        name: 'analysts-may-use-spread',
        match: { group: 'analysts', kafka: { operation: ['produce', 'consume'], topic: TOPIC } },
        effect: 'allow',
      });
    },
  });
  await stack.kafka.createTopics([TOPIC], PARTITIONS);
});
after(async () => { await stack?.stop(); });

const envoyAddresses = () => new Set(stack.kafka.brokers.map((b) => b.envoyAddress));
const brokerAddresses = () => new Set(stack.kafka.brokers.map((b) => b.address));

test('three brokers, each behind its own Envoy listener; the tollgate config maps every node id to it', () => {
  assert.deepEqual(stack.kafka.brokers.map((b) => b.nodeId), [1, 2, 3]);
  assert.equal(stack.kafkaListeners.length, 3);
  assert.equal(stack.kafkaBootstrap, stack.kafka.brokers[0]!.envoyAddress);
  assert.deepEqual(stack.config.kafka.brokers, stack.kafka.brokers.map((b) => ({ nodeId: b.nodeId, advertise: b.envoyAddress })));
  assert.equal(stack.config.kafka.upstream.sasl?.mechanism, 'SCRAM-SHA-512');
  for (const b of stack.kafka.brokers) assert.notEqual(b.port, b.envoyPort);
});

test('Metadata through Envoy names every broker at its Envoy listener, never at its own address', async () => {
  const socket = await connectTo(stack.kafkaBootstrap);
  const reader = frameReader(socket);
  await authenticate(socket, reader, await stack.mintToken(ANALYST.sub, ANALYST.groups));
  socket.write(metadataRequest(10, [TOPIC]));
  const metadata = decodeMetadata(await reader.next());
  socket.destroy();
  const advertised = metadata.body.brokers.map((b) => ({ nodeId: b.nodeId, address: `${b.host}:${b.port}` })).sort((a, b) => a.nodeId - b.nodeId);
  assert.deepEqual(advertised, stack.kafka.brokers.map((b) => ({ nodeId: b.nodeId, address: b.envoyAddress })));
  const topic = metadata.body.topics[0]!;
  assert.equal(topic.errorCode, 0);
  assert.deepEqual(new Set(topic.partitions.map((p) => p.leaderId)), new Set([1, 2, 3]), 'a partition led by every broker');

  // The same through kafkajs: DescribeCluster.
  const admin = stack.kafkaClient({ clientId: 'e2e-cluster-admin', ...ANALYST }).admin();
  await admin.connect();
  try {
    const { brokers } = await admin.describeCluster();
    assert.deepEqual(new Set(brokers.map((b) => `${b.host}:${b.port}`)), envoyAddresses());
  } finally {
    await admin.disconnect();
  }
});

test('a client bootstrapping on one Envoy listener produces to and consumes from every partition, only through Envoy', async () => {
  const kafka = stack.kafkaClient({ clientId: 'e2e-cluster', ...ANALYST });
  const connectedTo = new Set<string>();
  const producer: Producer = kafka.producer({ allowAutoTopicCreation: false });
  producer.on(producer.events.REQUEST, (e) => connectedTo.add(e.payload.broker));
  await producer.connect();
  const sent: string[] = [];
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const messages = Array.from({ length: RECORDS_PER_PARTITION }, (_, i) => ({ key: `p${partition}-${i}`, value: `value ${partition}/${i}`, partition }));
    sent.push(...messages.map((m) => m.key));
    await producer.send({ topic: TOPIC, acks: -1, messages });
  }
  await producer.disconnect();

  const consumer: Consumer = kafka.consumer({ groupId: `analytics-cluster-${Date.now()}` });
  consumer.on(consumer.events.REQUEST, (e) => connectedTo.add(e.payload.broker));
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  const received: Array<{ key: string; partition: number }> = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${sent.length} records within 30 s`)), 30_000);
      consumer.run({
        eachMessage: async ({ message, partition }) => {
          received.push({ key: message.key!.toString(), partition });
          if (received.length === sent.length) { clearTimeout(timer); resolve(); }
        },
      }).catch((err: unknown) => { clearTimeout(timer); reject(err as Error); });
    });
  } finally {
    await consumer.disconnect();
  }
  assert.deepEqual(received.map((r) => r.key).sort(), [...sent].sort());
  for (const r of received) assert.ok(r.key.startsWith(`p${r.partition}-`), `${r.key} came from partition ${r.partition}`);

  // kafkajs only ever talked to Envoy listeners, all three of them; never to a broker's own port.
  assert.deepEqual(connectedTo, envoyAddresses(), `kafkajs connected to ${[...connectedTo].join(', ')}`);
  for (const address of connectedTo) assert.ok(!brokerAddresses().has(address), `${address} is a broker's own listener`);

  // Envoy agrees: every Kafka listener accepted connections.
  const stats = await (await fetch(`${stack.envoy.adminUrl}/stats?filter=downstream_cx_total`)).text();
  for (const b of stack.kafka.brokers) {
    const match = new RegExp(`listener\\.127\\.0\\.0\\.1_${b.envoyPort}\\.downstream_cx_total: (\\d+)`).exec(stats);
    assert.ok(match && Number(match[1]) > 0, `Envoy listener of broker ${b.nodeId} (:${b.envoyPort}) saw connections:\n${stats}`);
  }
  const requests = stack.auditRecords().filter((r) => r.event === 'kafka.request' && r.principal?.subject === 'carol' && r.details?.['api'] === 'Produce');
  assert.ok(requests.length >= PARTITIONS, `audited Produce requests: ${requests.length}`);
});
