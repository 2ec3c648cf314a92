/**
 * The three-node KRaft cluster harness against real brokers: one cluster for the whole file, every broker advertising
 * its client listener through a small TCP forwarder of this test (standing in for the per-broker Envoy listeners the
 * Kafka end-to-end tests will use), a topic with 3 partitions and replication factor 3 whose leaders are spread over
 * all brokers, every partition produced to and read back with kafkajs, and a clean stop.
 *
 * Replication factor 3, not 1: creating the topic and acks=all produce cost well under a second more on loopback, and
 * RF 3 is what shows the inter-broker listener replicating (ISR of three) while clients use the advertised addresses.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import type { Consumer, Producer } from 'kafkajs';
import { ensureKafka } from '../../scripts/provision.ts';
import { startKafkaCluster } from '../../scripts/lib/kafka-cluster.ts';
import type { KafkaCluster } from '../../scripts/lib/kafka-cluster.ts';
import { freePorts, LOOPBACK } from '../../scripts/lib/ports.ts';
import { isProcessAlive } from '../../scripts/lib/process.ts';

const BROKERS = 3;
const TOPIC = 'cluster-spread';
const PARTITIONS = 3;
const RECORDS_PER_PARTITION = 20;

let cluster: KafkaCluster;
let kafka: Kafka;
let startMs = 0;
const clients: (Producer | Consumer)[] = [];

/** A TCP forwarder per node: accepts on its own port, connects to the node's client listener (known only later). */
interface Forwarder {
  readonly port: number;
  connections: number;
  readonly server: net.Server;
  readonly sockets: Set<net.Socket>;
}
const forwarders = new Map<number, Forwarder>();

async function startForwarder(nodeId: number, port: number): Promise<Forwarder> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    forwarder.connections++;
    const node = cluster?.nodes.find((n) => n.nodeId === nodeId);
    if (node === undefined) {
      client.destroy();
      return;
    }
    const upstream = net.connect(node.port, LOOPBACK);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const forwarder: Forwarder = { port, connections: 0, server, sockets };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: LOOPBACK, port, exclusive: true }, resolve);
  });
  return forwarder;
}

before(async () => {
  await ensureKafka();
  const ports = await freePorts(BROKERS);
  for (let nodeId = 1; nodeId <= BROKERS; nodeId++) forwarders.set(nodeId, await startForwarder(nodeId, ports[nodeId - 1]!));
  const started = Date.now();
  cluster = await startKafkaCluster({
    brokers: BROKERS,
    extraListeners: ['SIDE'],
    advertised: (nodeId, listener) => (listener === 'PLAINTEXT' ? `${LOOPBACK}:${forwarders.get(nodeId)!.port}` : undefined),
  });
  startMs = Date.now() - started;
  kafka = new Kafka({ clientId: 'harness-cluster-test', brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING });
});

after(async () => {
  for (const client of clients) await client.disconnect().catch(() => {});
  for (const f of forwarders.values()) {
    for (const socket of f.sockets) socket.destroy();
    await new Promise<void>((resolve) => f.server.close(() => resolve()));
  }
  if (cluster === undefined) return;
  const pids = cluster.nodes.map((n) => n.pid);
  await cluster.stop();
  for (const pid of pids) assert.equal(isProcessAlive(pid), false, `broker pid ${pid} still running after stop()`);
  await cluster.stop();
});

test('three nodes, each its own JVM on its own 127.0.0.1 ports, one cluster id', (t) => {
  t.diagnostic(`cluster ready in ${startMs} ms`);
  assert.equal(cluster.nodes.length, BROKERS);
  assert.deepEqual(cluster.nodes.map((n) => n.nodeId), [1, 2, 3]);
  assert.equal(new Set(cluster.nodes.map((n) => n.pid)).size, BROKERS);
  const ports = cluster.nodes.flatMap((n) => [n.port, n.internalPort, n.controllerPort, n.extraListeners['SIDE']!.port]);
  assert.equal(new Set(ports).size, 4 * BROKERS, 'every listener has its own port');
  assert.equal(cluster.bootstrap, cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(','));
  assert.match(cluster.clusterId, /^[A-Za-z0-9_-]{22}$/);
  for (const node of cluster.nodes) {
    assert.equal(node.host, LOOPBACK);
    assert.equal(node.advertisedAddress, `${LOOPBACK}:${forwarders.get(node.nodeId)!.port}`);
    assert.ok(isProcessAlive(node.pid));
  }
});

test('clients bootstrap on the client listeners and are sent to the advertised addresses', async () => {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const { brokers } = await admin.describeCluster();
    assert.deepEqual(
      brokers.map((b) => ({ nodeId: b.nodeId, address: `${b.host}:${b.port}` })).sort((a, b) => a.nodeId - b.nodeId),
      cluster.nodes.map((n) => ({ nodeId: n.nodeId, address: n.advertisedAddress })),
    );
  } finally {
    await admin.disconnect();
  }
});

test('a client bootstrapping on an extra listener stays on it (its own address unless told otherwise)', async () => {
  const side = cluster.nodes.map((n) => n.extraListeners['SIDE']!);
  for (const l of side) assert.equal(l.advertisedAddress, `${LOOPBACK}:${l.port}`);
  const admin = new Kafka({ clientId: 'harness-cluster-side', brokers: side.map((l) => l.advertisedAddress), logLevel: logLevel.NOTHING }).admin();
  try {
    await admin.connect();
    const { brokers } = await admin.describeCluster();
    assert.deepEqual(brokers.map((b) => `${b.host}:${b.port}`).sort(), side.map((l) => l.advertisedAddress).sort());
  } finally {
    await admin.disconnect();
  }
});

test('a 3-partition topic with replication factor 3 has its leaders on all three brokers; every record comes back', async () => {
  await cluster.createTopics([TOPIC], PARTITIONS, 3);
  const admin = kafka.admin();
  let partitions: Array<{ partitionId: number; leader: number; replicas: number[]; isr: number[] }>;
  try {
    await admin.connect();
    const metadata = await admin.fetchTopicMetadata({ topics: [TOPIC] });
    partitions = metadata.topics[0]!.partitions;
  } finally {
    await admin.disconnect();
  }
  assert.equal(partitions.length, PARTITIONS);
  assert.deepEqual(new Set(partitions.map((p) => p.leader)), new Set([1, 2, 3]), `leaders: ${JSON.stringify(partitions)}`);
  for (const p of partitions) {
    assert.deepEqual([...p.replicas].sort(), [1, 2, 3]);
    assert.deepEqual([...p.isr].sort(), [1, 2, 3]);
  }

  const producer = kafka.producer({ allowAutoTopicCreation: false });
  clients.push(producer);
  await producer.connect();
  const sent: string[] = [];
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const messages = Array.from({ length: RECORDS_PER_PARTITION }, (_, i) => ({ key: `p${partition}-${i}`, value: `value ${partition}/${i}` }));
    sent.push(...messages.map((m) => m.key));
    await producer.send({ topic: TOPIC, acks: -1, messages: messages.map((m) => ({ ...m, partition })) });
  }

  const consumer = kafka.consumer({ groupId: 'cluster-spread-group' });
  clients.push(consumer);
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  const received: Array<{ key: string; value: string; partition: number }> = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${sent.length} records consumed within 30 s`)), 30_000);
    consumer
      .run({
        eachMessage: async ({ message, partition }) => {
          received.push({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? '', partition });
          if (received.length === sent.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch((err: unknown) => {
        clearTimeout(timer);
        reject(err as Error);
      });
  });

  assert.deepEqual(received.map((r) => r.key).sort(), [...sent].sort());
  for (const r of received) {
    assert.equal(r.key.slice(0, r.key.indexOf('-')), `p${r.partition}`, 'each record came from the partition it was sent to');
    assert.equal(r.value, `value ${r.partition}/${r.key.slice(r.key.indexOf('-') + 1)}`);
  }
  for (const [nodeId, f] of forwarders) assert.ok(f.connections > 0, `no client connection went through node ${nodeId}'s advertised address`);
});
