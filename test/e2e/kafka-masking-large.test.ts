/**
 * A large Fetch, end to end through the real Envoy, tollgate and a SASL broker: payments-admin produces more than
 * 12 MiB of JSON payments records (card numbers and emails, many batches, some gzip) with kafkajs; an analyst
 * consumes them with kafkajs set up so that one Fetch response carries more than 10 MiB. Every record arrives
 * masked and in order, and tollgate's audit shows the Fetch whose response held over 10 MiB of records.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CompressionTypes, logLevel } from 'kafkajs';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import type { PartitionSummary, ResponseSummary } from '../../src/kafka/summary.ts';

const ANALYST = { sub: 'ann', groups: ['analysts'] } as const;
const PAYMENTS = { sub: 'payments-app', groups: ['payments-admin'] } as const;
const TOPIC = 'payments-large';
const MiB = 1024 * 1024;
const RECORDS = 16_000;
const PER_SEND = 500;

const RULES = [
  {
    name: 'large-payments-admin-owns-payments',
    match: { group: 'payments-admin', kafka: { operation: ['produce', 'consume'], topic: 'payments*' } },
    effect: 'allow',
  },
  {
    name: 'large-analysts-consume-payments',
    match: { group: 'analysts', kafka: { operation: 'consume', topic: 'payments*' } },
    effect: 'allow',
  },
  {
    name: 'large-mask-payments-for-analysts',
    match: { group: 'analysts', kafka: { topic: 'payments*' } },
    mask: { detectors: ['card', 'email'] },
  },
];

/** Luhn-valid test card numbers, as digits. */
const CARDS = ['4111111111111111', '5555555555554444', '378282246310005', '6011111111111117', '4012888888881881', '3530111333300000'];
const spaced = (card: string) => card.match(/.{1,4}/g)!.join(' ');

/** Lowercase letters only (no digits, no '@'): padding no detector finds, compressible but not trivially. */
function padding(i: number, length: number): string {
  let state = (i * 2654435761) >>> 0;
  let out = '';
  while (out.length < length) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    out += String.fromCharCode(97 + ((state >>> 16) % 26));
    if ((state & 7) === 0) out += ' ';
  }
  return out.slice(0, length);
}

function payment(i: number): string {
  const card = CARDS[i % CARDS.length]!;
  const doc = {
    id: i,
    card: { number: card, expiry: '12/29' },
    customer: { name: 'Ann Example', email: `customer.${i}@example.com` },
    note: `card ${spaced(CARDS[(i + 1) % CARDS.length]!)}, receipts to billing+${i}@example.com`,
    padding: '',
  };
  const size = JSON.stringify(doc).length;
  doc.padding = padding(i, Math.max(0, 1024 - size));
  return JSON.stringify(doc);
}

let stack: Stack;

before(async () => {
  stack = await startStack({
    editConfig: (config) => {
      const rules = config['rules'] as unknown[];
      // Before the quickstart's own Kafka rules, so these decide for the payments topics.
      rules.splice(1, 0, ...RULES);
    },
  });
});

after(async () => {
  await stack?.stop();
});

test('a Fetch response of more than 10 MiB (many batches, some gzip) reaches an analyst wholly masked and in order', async () => {
  await stack.kafka.createTopics([TOPIC], 1);

  const values = Array.from({ length: RECORDS }, (_, i) => payment(i));
  const producedBytes = values.reduce((sum, v) => sum + v.length, 0);
  assert.ok(producedBytes > 12 * MiB, `${producedBytes} bytes of values produced`);
  const producer = stack.kafkaClient({ clientId: 'e2e-large-producer', ...PAYMENTS }).producer();
  await producer.connect();
  try {
    for (let from = 0, send = 0; from < RECORDS; from += PER_SEND, send++) {
      // One batch per send; every fourth gzip, the rest uncompressed (those alone carry over 10 MiB on the wire).
      const [result] = await producer.send({
        topic: TOPIC,
        compression: send % 4 === 3 ? CompressionTypes.GZIP : CompressionTypes.None,
        messages: values.slice(from, from + PER_SEND).map((value, k) => ({ key: String(from + k), value })),
      });
      assert.equal(result!.errorCode, 0);
    }
  } finally {
    await producer.disconnect();
  }

  const analyst = stack.kafkaClient({ clientId: 'e2e-large-analyst', ...ANALYST, kafkajs: { logLevel: logLevel.NOTHING } });
  const consumer = analyst.consumer({
    groupId: 'analytics-large',
    // One Fetch may carry everything: no per-partition or per-response limit under the log, and the broker waits
    // for 12 MiB (already there) for at most half a second.
    maxBytes: 48 * MiB,
    maxBytesPerPartition: 48 * MiB,
    minBytes: 12 * MiB,
    maxWaitTimeInMs: 500,
  });
  const received: Array<{ offset: string; key: string; value: string }> = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${RECORDS} records within 120 s`)), 120_000);
      consumer.run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) received.push({ offset: m.offset, key: m.key!.toString(), value: m.value!.toString() });
          if (received.length >= RECORDS) {
            clearTimeout(timer);
            resolve();
          }
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }

  assert.equal(received.length, RECORDS, 'every record arrives, once');
  const cardForms = CARDS.flatMap((c) => [c, spaced(c)]);
  received.forEach((m, i) => {
    assert.equal(m.offset, String(i), `record ${i}: in offset order`);
    assert.equal(m.key, String(i), `record ${i}: its own key`);
    for (const form of cardForms) assert.ok(!m.value.includes(form), `record ${i}: card ${form} masked`);
    assert.ok(!m.value.includes('@example.com'), `record ${i}: emails masked`);
    const doc = JSON.parse(m.value) as { id: number; card: { number: string; expiry: string }; customer: { name: string; email: string }; padding: string };
    assert.equal(doc.id, i, `record ${i}: in order`);
    assert.equal(doc.card.number, '[REDACTED]');
    assert.equal(doc.customer.email, '[REDACTED]');
    assert.equal(doc.customer.name, 'Ann Example', `record ${i}: what no detector finds is untouched`);
    assert.equal(doc.card.expiry, '12/29');
    assert.equal(doc.padding, (JSON.parse(values[i]!) as { padding: string }).padding);
  });

  // The audit summarizes the broker's response: records and bytes per partition. One analyst Fetch carried over
  // 10 MiB of records of the topic, and what it carried was masked.
  const fetches = stack.auditRecords().filter((r) => r.details?.['api'] === 'Fetch' && r.principal?.subject === ANALYST.sub);
  const large = fetches.flatMap((r) => {
    const response = r.details?.['response'] as ResponseSummary | undefined;
    const partitions: PartitionSummary[] = response?.topics.filter((t) => t.topic === TOPIC).flatMap((t) => t.partitions ?? []) ?? [];
    return partitions.filter((p) => (p.bytes ?? 0) > 10 * MiB).map((p) => ({ record: r, partition: p }));
  });
  assert.ok(large.length > 0, `an audited Fetch response carried over 10 MiB (largest: ${Math.max(0, ...fetches.flatMap((r) => ((r.details?.['response'] as ResponseSummary | undefined)?.topics ?? []).flatMap((t) => (t.partitions ?? []).map((p) => p.bytes ?? 0))))} bytes)`);
  for (const { record, partition } of large) {
    const masking = record.details?.['masking'] as { records: number; values: Record<string, number> } | undefined;
    assert.ok(masking, 'the large Fetch was masked');
    assert.equal(masking.records, partition.records, 'every record of the large Fetch was masked');
    assert.ok((masking.values['card'] ?? 0) >= 2 * partition.records!, 'card numbers masked in each record (field and note)');
    assert.ok((masking.values['email'] ?? 0) >= 2 * partition.records!, 'emails masked in each record (field and note)');
  }
});
