/**
 * Masking in Fetch responses, end to end through the real Envoy, tollgate and a SASL broker: a payments record
 * (JSON with a card number and an email) is produced plainly; a consumer in group `analysts` sees it masked, one in
 * `payments-admin` sees exactly the produced bytes, and the broker (read directly) still holds the original. For
 * every compression codec: kafkajs produces uncompressed and gzip; Kafka's Java console producer produces snappy,
 * lz4 and zstd; kafkajs consumes (it checks CRCs) and so does Kafka's Java console consumer (check.crcs=true).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CompressionTypes, logLevel, type Consumer, type Kafka } from 'kafkajs';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import { javaOAuthClientProperties, runKafkaTool } from '../../scripts/lib/kafka.ts';

const ANALYST = { sub: 'ann', groups: ['analysts'] } as const;
const PAYMENTS = { sub: 'payments-app', groups: ['payments-admin'] } as const;

const MASK_RULES = [
  {
    name: 'e2e-payments-admin-owns-payments',
    match: { group: 'payments-admin', kafka: { operation: ['produce', 'consume'], topic: 'payments*' } },
    effect: 'allow',
  },
  {
    name: 'e2e-payments-admin-consumer-groups',
    match: { group: 'payments-admin', kafka: { operation: 'consume', group: 'payments-*' } },
    effect: 'allow',
  },
  {
    name: 'e2e-analysts-consume-payments-masked',
    match: { group: 'analysts', kafka: { operation: 'consume', topic: 'payments*' } },
    effect: 'allow',
  },
  {
    name: 'e2e-analysts-produce-analytics',
    match: { group: 'analysts', kafka: { operation: 'produce', topic: 'analytics*' } },
    effect: 'allow',
  },
  {
    name: 'e2e-no-card-numbers-into-analytics',
    match: { kafka: { topic: 'analytics*' } },
    reject: { detectors: ['card'] },
  },
  {
    name: 'e2e-mask-payments-for-analysts',
    match: { group: 'analysts', kafka: { topic: 'payments*' } },
    mask: { fields: { '$.card.number': 'keep-last-4', '$.customer.email': 'redact' }, detectors: ['card', 'email'], keys: true, headers: ['x-customer-email'] },
  },
];

let stack: Stack;

before(async () => {
  stack = await startStack({
    editConfig: (config) => {
      const rules = config['rules'] as unknown[];
      // Before the quickstart's own Kafka rules, so these decide for the payments topics.
      rules.splice(1, 0, ...MASK_RULES);
    },
  });
});

after(async () => {
  await stack?.stop();
});

function payment(i: number, codec: string) {
  return {
    id: `${codec}-${i}`,
    card: { number: '4111111111111111', expiry: '12/29' },
    customer: { name: 'Ann Example', email: `ann.${i}@example.com` },
    note: `call 4012888888881881 or mail billing+${i}@example.com`,
  };
}

async function createTopic(topic: string): Promise<void> {
  const admin = stack.directKafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

async function consume(kafka: Kafka, topic: string, groupId: string, count: number): Promise<Array<{ key: string | null; value: string; headers: Record<string, string> }>> {
  const consumer: Consumer = kafka.consumer({ groupId });
  await consumer.connect();
  const out: Array<{ key: string | null; value: string; headers: Record<string, string> }> = [];
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${out.length} of ${count} records from ${topic} within 30 s`)), 30_000);
      consumer.run({
        eachMessage: async ({ message }) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
          out.push({ key: message.key?.toString() ?? null, value: message.value!.toString(), headers });
          if (out.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

function assertMasked(value: string, label: string): void {
  const doc = JSON.parse(value) as ReturnType<typeof payment>;
  assert.match(doc.card.number, /^\*+1111$/, `${label}: card kept to its last 4`);
  assert.doesNotMatch(value, /4111111111111111|4012888888881881/, `${label}: no card number anywhere`);
  assert.doesNotMatch(value, /@example\.com/, `${label}: no email anywhere`);
  assert.equal(doc.customer.name, 'Ann Example', `${label}: what no rule names is untouched`);
}

const KAFKAJS_CODECS = [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]] as const;

for (const [codec, compression] of KAFKAJS_CODECS) {
  test(`${codec} (kafkajs producer): analysts see payments masked, payments-admin and the broker see the original bytes`, async () => {
    const topic = `payments-kafkajs-${codec}`;
    await createTopic(topic);
    const records = Array.from({ length: 20 }, (_, i) => payment(i, codec));
    const producer = stack.kafkaClient({ clientId: `e2e-mask-producer-${codec}`, ...PAYMENTS }).producer();
    await producer.connect();
    await producer.send({
      topic,
      compression,
      messages: records.map((r) => ({ key: JSON.stringify({ email: r.customer.email }), value: JSON.stringify(r), headers: { 'x-customer-email': r.customer.email, 'x-trace': 'keep-me' } })),
    });
    await producer.disconnect();

    const analyst = stack.kafkaClient({ clientId: `e2e-mask-analyst-${codec}`, ...ANALYST, kafkajs: { logLevel: logLevel.NOTHING } });
    const masked = await consume(analyst, topic, `analytics-mask-${codec}`, records.length);
    for (const m of masked) {
      assertMasked(m.value, `${codec} value`);
      assert.doesNotMatch(m.key ?? '', /@example\.com/, `${codec}: keys masked (keys: true)`);
      assert.doesNotMatch(m.headers['x-customer-email'] ?? '', /@example\.com/, `${codec}: named header masked`);
      assert.equal(m.headers['x-trace'], 'keep-me', `${codec}: other headers untouched`);
    }

    const owner = stack.kafkaClient({ clientId: `e2e-mask-owner-${codec}`, ...PAYMENTS, kafkajs: { logLevel: logLevel.NOTHING } });
    const plain = await consume(owner, topic, `payments-mask-${codec}`, records.length);
    assert.deepEqual(plain.map((m) => m.value), records.map((r) => JSON.stringify(r)), 'payments-admin sees exactly what was produced');

    const direct = await consume(stack.directKafka(`direct-${codec}`), topic, `direct-${codec}`, records.length);
    assert.deepEqual(direct.map((m) => m.value), records.map((r) => JSON.stringify(r)), 'the broker holds the original');

    const audited = stack.auditRecords().filter((r) => r.details?.['api'] === 'Fetch' && r.principal?.subject === ANALYST.sub && r.details?.['masking'] !== undefined);
    assert.ok(audited.length > 0, 'Fetch audit records say what was masked');
  });
}

const JAVA_CODECS = ['snappy', 'lz4', 'zstd'] as const;

for (const codec of JAVA_CODECS) {
  test(`${codec} (Java console producer and consumer with check.crcs): analysts see payments masked`, async () => {
    const topic = `payments-java-${codec}`;
    await createTopic(topic);
    const records = Array.from({ length: 10 }, (_, i) => payment(i, codec));
    const tokenEndpoint = `${stack.issuer.issuer}/token`;
    const jvmOptions = [`-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=${tokenEndpoint}`];
    const configFor = (clientId: string) => {
      const file = path.join(stack.workDir, `${clientId}-${codec}.properties`);
      fs.writeFileSync(file, javaOAuthClientProperties(tokenEndpoint, clientId, `${clientId}-secret`));
      return file;
    };
    const produced = await runKafkaTool('org.apache.kafka.tools.ConsoleProducer', [
      '--bootstrap-server', stack.kafkaBootstrap, '--topic', topic, '--producer.config', configFor('payments-app'),
      // The console producer's own --compression-codec wins over a compression.type property.
      '--compression-codec', codec, '--producer-property', `compression.type=${codec}`, '--producer-property', 'linger.ms=50',
    ], { input: records.map((r) => JSON.stringify(r)).join('\n') + '\n', jvmOptions });
    assert.equal(produced.code, 0, produced.stderr);

    const consumed = await runKafkaTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
      '--bootstrap-server', stack.kafkaBootstrap, '--topic', topic, '--from-beginning', '--max-messages', String(records.length),
      '--timeout-ms', '30000', '--group', `analytics-java-${codec}`, '--consumer.config', configFor('analyst-app'),
      '--consumer-property', 'check.crcs=true',
    ], { jvmOptions });
    const lines = consumed.stdout.split('\n').filter((l) => l.startsWith('{'));
    assert.equal(lines.length, records.length, consumed.stderr);
    for (const line of lines) assertMasked(line, `${codec} via Java`);

    // kafkajs has no snappy/lz4/zstd codec: the original is read back with Java consumers, through tollgate as
    // payments-admin (an unmasked consumer) and straight from the broker with the harness's own credential.
    const expected = records.map((r) => JSON.stringify(r)).sort();
    const plain = await runKafkaTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
      '--bootstrap-server', stack.kafkaBootstrap, '--topic', topic, '--from-beginning', '--max-messages', String(records.length),
      '--timeout-ms', '30000', '--group', `payments-java-${codec}`, '--consumer.config', configFor('payments-app'),
      '--consumer-property', 'check.crcs=true',
    ], { jvmOptions });
    assert.deepEqual(plain.stdout.split('\n').filter((l) => l.startsWith('{')).sort(), expected, 'payments-admin sees exactly what was produced');

    const sasl = stack.kafka.direct.sasl as { mechanism: string; username: string; password: string };
    const directConfig = path.join(stack.workDir, `direct-${codec}.properties`);
    fs.writeFileSync(directConfig, [
      'security.protocol=SASL_PLAINTEXT',
      `sasl.mechanism=${sasl.mechanism.toUpperCase()}`,
      `sasl.jaas.config=org.apache.kafka.common.security.${sasl.mechanism.toLowerCase() === 'plain' ? 'plain.PlainLoginModule' : 'scram.ScramLoginModule'} required username="${sasl.username}" password="${sasl.password}";`,
      '',
    ].join('\n'));
    const direct = await runKafkaTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
      '--bootstrap-server', stack.kafka.direct.brokers[0]!, '--topic', topic, '--from-beginning', '--max-messages', String(records.length),
      '--timeout-ms', '30000', '--consumer.config', directConfig,
    ]);
    assert.deepEqual(direct.stdout.split('\n').filter((l) => l.startsWith('{')).sort(), expected, 'the broker holds the original');
  });
}

test('a card number produced into analytics is refused and never written; clean records in the same session are', async () => {
  const topic = 'analytics-events';
  await createTopic(topic);
  const producer = stack.kafkaClient({ clientId: 'e2e-reject', ...ANALYST, kafkajs: { logLevel: logLevel.NOTHING, retry: { retries: 0 } } }).producer();
  await producer.connect();
  try {
    await assert.rejects(producer.send({ topic, messages: [{ value: JSON.stringify({ event: 'checkout', pay: '4111 1111 1111 1111' }) }] }), (err: Error & { type?: string }) => {
      // kafkajs speaks Produce v7, which has no record errors: POLICY_VIOLATION (v8+ clients get INVALID_RECORD).
      assert.equal(err.type, 'POLICY_VIOLATION', `${err.name}: ${err.message}`);
      return true;
    });
    const [ok] = await producer.send({ topic, messages: [{ value: JSON.stringify({ event: 'view' }) }] });
    assert.equal(ok!.errorCode, 0, 'the same producer still publishes clean records');
  } finally {
    await producer.disconnect();
  }
  const direct = await consume(stack.directKafka('direct-analytics'), topic, 'direct-analytics', 1);
  assert.deepEqual(direct.map((m) => m.value), [JSON.stringify({ event: 'view' })], 'only the clean record reached the broker');
  const [record] = stack.auditRecords().filter((r) => r.details?.['api'] === 'Produce' && r.details?.['rejected'] !== undefined);
  assert.ok(record, 'the refusal is audited');
  assert.match(String(record.reason), /e2e-no-card-numbers-into-analytics/);
  assert.doesNotMatch(JSON.stringify(record), /4111/, 'the audit record never holds the card number');
});
