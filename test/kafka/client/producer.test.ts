/**
 * tollgate's own Kafka client against a real broker: the idempotent producer and the topic reader, including a
 * broker killed while batches are in flight and restarted on its data.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startKafka, type KafkaBroker } from '../../../scripts/lib/kafka.ts';
import { KafkaCluster } from '../../../src/kafka/client/cluster.ts';
import { IdempotentProducer, type ProducerRecord } from '../../../src/kafka/client/producer.ts';
import { readTopic } from '../../../src/kafka/client/topic-reader.ts';
import { partitionForKey } from '../../../src/kafka/client/murmur2.ts';

const password = randomBytes(12).toString('hex');
let broker: KafkaBroker;

before(async () => {
  broker = await startKafka({ sasl: { users: [{ name: 'audit', password }], mechanisms: ['SCRAM-SHA-512'] } });
  await broker.createTopics(['audit-a', 'audit-b'], 3);
});
after(async () => { await broker?.stop(); });

const client = (timeoutMs = 5_000) => new KafkaCluster([broker.bootstrap], {
  clientId: 'tollgate-test', timeoutMs, sasl: { mechanism: 'SCRAM-SHA-512', username: 'audit', password },
});

const records = (from: number, count: number): ProducerRecord[] => Array.from({ length: count }, (_, i) => ({
  key: Buffer.from(`session-${(from + i) % 7}`), value: Buffer.from(JSON.stringify({ n: from + i })), timestamp: Date.now(),
}));

async function readAll(topic: string) {
  const cluster = client();
  try {
    const out: Array<{ partition: number; key: string; n: number }> = [];
    for await (const r of readTopic(cluster, topic)) out.push({ partition: r.partition, key: r.key!.toString(), n: (JSON.parse(r.value!.toString()) as { n: number }).n });
    return out;
  } finally {
    cluster.close();
  }
}

/** Every number once, each partition in increasing order, each key on the partition its murmur2 names. */
function assertExactlyOnceInOrder(read: ReadonlyArray<{ partition: number; key: string; n: number }>, total: number) {
  assert.deepEqual(read.map((r) => r.n).sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i), 'every record exactly once');
  for (let p = 0; p < 3; p++) {
    const ns = read.filter((r) => r.partition === p).map((r) => r.n);
    assert.deepEqual(ns, [...ns].sort((a, b) => a - b), `partition ${p} in the order sent`);
  }
  for (const r of read) assert.equal(r.partition, partitionForKey(Buffer.from(r.key), 3), `key ${r.key} on its partition`);
}

/** As the audit sink does: the same handle and records again until they are confirmed; returns the retries. */
async function sendUntilConfirmed(producer: IdempotentProducer, batch: readonly ProducerRecord[]): Promise<number> {
  const handle = {};
  for (let retries = 0; ; retries++) {
    try {
      assert.deepEqual(await producer.send(handle, batch), { rejected: 0 });
      return retries;
    } catch (err) {
      // A broker just started answers COORDINATOR_LOAD_IN_PROGRESS for a moment; a killed one does not answer.
      if (retries > 200) throw err;
      await sleep(200);
    }
  }
}

test('records are written once each, keyed to their partition, in order, and read back whole', async () => {
  const cluster = client();
  const producer = new IdempotentProducer({ cluster, topic: 'audit-a', timeoutMs: 5_000 });
  for (let i = 0; i < 5; i++) await sendUntilConfirmed(producer, records(i * 20, 20));
  assert.ok(producer.producer !== undefined && producer.producer.id >= 0n, 'a producer id from the broker');
  cluster.close();
  assertExactlyOnceInOrder(await readAll('audit-a'), 100);
});

test('the broker killed while batches are in flight and restarted on its data: every record once, in order', async () => {
  const cluster = client(3_000);
  const producer = new IdempotentProducer({ cluster, topic: 'audit-b', timeoutMs: 3_000 });
  const total = 600;
  let sent = 0;
  let retries = 0;
  let killed = false;
  const sending = (async () => {
    while (sent < total) {
      const batch = records(sent, 10);
      retries += await sendUntilConfirmed(producer, batch);
      sent += batch.length;
    }
  })();
  while (sent < 150) await sleep(10);
  await broker.kill();
  killed = true;
  const sentWhenKilled = sent;
  await sleep(1_000);
  assert.ok(sent - sentWhenKilled <= 10, 'nothing is confirmed while the broker is down (at most the batch it answered as it died)');
  await broker.restart();
  await sending;
  cluster.close();
  assert.ok(killed && retries > 0, `sends failed while the broker was down and were retried (${retries} retries)`);
  assertExactlyOnceInOrder(await readAll('audit-b'), total);
});
