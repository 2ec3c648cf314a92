/**
 * The cluster harness with `sasl`: every client listener (main and extra) speaks SASL_PLAINTEXT with PLAIN and
 * SCRAM-SHA-512 users created at format time on every node, while the inter-broker listener stays PLAINTEXT (the
 * harness's own admin path). Two nodes: enough to show SCRAM credentials reach every node and replication works.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import type { SASLOptions } from 'kafkajs';
import { ensureKafka } from '../../scripts/provision.ts';
import { startKafkaCluster } from '../../scripts/lib/kafka-cluster.ts';
import type { KafkaCluster } from '../../scripts/lib/kafka-cluster.ts';

const USERS = [{ name: 'gateway', password: 'gateway-pw-1' }, { name: 'other', password: 'other-pw-2' }];
let cluster: KafkaCluster;

before(async () => {
  await ensureKafka();
  cluster = await startKafkaCluster({ brokers: 2, extraListeners: ['SIDE'], sasl: { users: USERS } });
});
after(async () => { await cluster?.stop(); });

/** `retries: 0` for the refusals (kafkajs would retry an authentication failure); kafkajs's defaults otherwise. */
function client(brokers: string[], sasl?: SASLOptions, retries?: number): Kafka {
  return new Kafka({
    clientId: 'harness-cluster-sasl', brokers, logLevel: logLevel.NOTHING,
    ...(retries !== undefined && { retry: { retries } }), ...(sasl !== undefined && { sasl }),
  });
}

test('client listeners are SASL_PLAINTEXT; the first user with the first mechanism is offered to the harness', () => {
  assert.equal(cluster.clientListener, 'SASL_PLAINTEXT');
  assert.equal(cluster.securityProtocol, 'SASL_PLAINTEXT');
  assert.deepEqual(cluster.clientSasl, { mechanism: 'plain', username: 'gateway', password: 'gateway-pw-1' });
});

test('SCRAM-SHA-512 and PLAIN users produce to partitions on every node, on the main and the extra listener', async () => {
  await cluster.createTopics(['sasl-spread'], 2, 2);
  for (const [brokers, sasl] of [
    [cluster.bootstrap.split(','), { mechanism: 'scram-sha-512', username: 'other', password: 'other-pw-2' }],
    [cluster.nodes.map((n) => `127.0.0.1:${n.extraListeners['SIDE']!.port}`), { mechanism: 'plain', username: 'gateway', password: 'gateway-pw-1' }],
  ] as const) {
    const kafka = client([...brokers], sasl);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'sasl-spread', acks: -1, messages: [{ partition: 0, value: 'a' }, { partition: 1, value: 'b' }] });
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    const { brokers: listed } = await admin.describeCluster();
    await admin.disconnect();
    assert.deepEqual(listed.map((b) => `${b.host}:${b.port}`).sort(), [...brokers].sort());
  }
  const offsets = await (async () => {
    const admin = client(cluster.internalBootstrap.split(',')).admin();
    await admin.connect();
    try { return await admin.fetchTopicOffsets('sasl-spread'); } finally { await admin.disconnect(); }
  })();
  assert.deepEqual(offsets.map((o) => o.high).sort(), ['2', '2']);
});

test('without credentials, or with a wrong password, the client listener refuses; the internal one needs none', async () => {
  const noSasl = client(cluster.bootstrap.split(','), undefined, 0).admin();
  await assert.rejects(noSasl.connect().then(() => noSasl.describeCluster()));
  await noSasl.disconnect().catch(() => {});
  const wrong = client(cluster.bootstrap.split(','), { mechanism: 'scram-sha-512', username: 'other', password: 'nope' }, 0).admin();
  await assert.rejects(wrong.connect(), /SASL SCRAM SHA512 authentication failed|authentication failed/i);
  await wrong.disconnect().catch(() => {});
  const internal = client(cluster.internalBootstrap.split(',')).admin();
  await internal.connect();
  assert.equal((await internal.describeCluster()).brokers.length, 2);
  await internal.disconnect();
});
