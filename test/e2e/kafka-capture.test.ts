/**
 * Session capture, end to end through the real Envoy, tollgate and a SASL broker, with kafkajs clients: under a
 * digest capture rule, the audit records of Produce carry SHA-256 digests equal to those of the records the broker
 * holds, at the offsets it holds them; the audit records of Fetch carry the digests of what each consumer received
 * at the offsets it read (an analyst, whose records are masked, gets digests of the masked bytes). Uncompressed and
 * gzip topics. Under a masked capture rule, produced payment records are audited masked: tollgate's whole audit log
 * never holds a card number or an email, although payments-admin consumed the original records. The quickstart's
 * own capture rule (digests of what is produced to `payments`) runs in the same stack.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { CompressionTypes, logLevel, type Kafka } from 'kafkajs';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import type { CaptureDetail, CapturedRecord } from '../../src/kafka/capture/collector.ts';

const ANALYST = { sub: 'ann', groups: ['analysts'] } as const;
const PAYMENTS = { sub: 'payments-app', groups: ['payments-admin'] } as const;

const RULES = [
  {
    name: 'e2e-capture-payments-admin-owns',
    match: { group: 'payments-admin', kafka: { operation: ['produce', 'consume'], topic: 'captured-*' } },
    effect: 'allow',
  },
  {
    name: 'e2e-capture-payments-admin-groups',
    match: { group: 'payments-admin', kafka: { operation: 'consume', group: 'captured-*' } },
    effect: 'allow',
  },
  {
    name: 'e2e-capture-analysts-read',
    match: { group: 'analysts', kafka: { operation: 'consume', topic: 'captured-*' } },
    effect: 'allow',
  },
  {
    name: 'e2e-capture-analysts-groups',
    match: { group: 'analysts', kafka: { operation: 'consume', group: 'captured-*' } },
    effect: 'allow',
  },
  {
    name: 'e2e-capture-mask-for-analysts',
    match: { group: 'analysts', kafka: { topic: 'captured-*' } },
    mask: { fields: { '$.card.number': 'keep-last-4' }, detectors: ['card', 'email'] },
  },
  {
    name: 'e2e-capture-digests',
    match: { kafka: { topic: 'captured-*' } },
    capture: { payload: 'digest', keys: true },
  },
  {
    name: 'e2e-capture-masked-payments-writes',
    match: { group: 'payments-admin', kafka: { operation: 'produce', topic: 'captured-masked*' } },
    capture: { payload: 'masked' },
  },
];

let stack: Stack;

before(async () => {
  stack = await startStack({
    editConfig: (config) => {
      const rules = config['rules'] as unknown[];
      rules.splice(1, 0, ...RULES);
    },
  });
});

after(async () => {
  await stack?.stop();
});

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function payment(i: number, label: string) {
  return JSON.stringify({
    id: `${label}-${i}`,
    card: { number: '4111111111111111', expiry: '12/29' },
    customer: { name: 'Ann Example', email: `ann.${i}@example.com` },
    note: `call 4012888888881881 or mail billing+${i}@example.com`,
  });
}
const PLANTED = /4111111111111111|4012888888881881|@example\.com/;

async function createTopic(topic: string): Promise<void> {
  const admin = stack.directKafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

interface Consumed { readonly offset: number; readonly key: Buffer | null; readonly value: Buffer }

async function consume(kafka: Kafka, topic: string, groupId: string, count: number): Promise<Consumed[]> {
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  const out: Consumed[] = [];
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${out.length} of ${count} records from ${topic} within 30 s`)), 30_000);
      consumer.run({
        eachMessage: async ({ message }) => {
          out.push({ offset: Number(message.offset), key: message.key, value: message.value! });
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

/** Captured records of `api` audit records of `subject` for `topic`, once they cover every offset in `offsets`. */
async function captured(api: 'Produce' | 'Fetch', subject: string, topic: string, offsets: readonly number[]): Promise<{ records: CapturedRecord[]; audits: AuditRecord[] }> {
  let records: CapturedRecord[] = [];
  let audits: AuditRecord[] = [];
  for (let i = 0; i < 100; i++) {
    audits = stack.auditRecords().filter((r) => r.details?.['api'] === api && r.principal?.subject === subject && r.details['capture'] !== undefined);
    records = audits.flatMap((r) => (r.details!['capture'] as CaptureDetail).records).filter((c) => c.topic === topic);
    const seen = new Set(records.map((r) => r.offset));
    if (offsets.every((o) => seen.has(o))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { records, audits };
}

/** Offset → the one digest captured for it (a record fetched twice must have the same digest both times). */
function digestsByOffset(records: readonly CapturedRecord[]): Map<number, { value: string | null | undefined; key: string | null | undefined }> {
  const out = new Map<number, { value: string | null | undefined; key: string | null | undefined }>();
  for (const r of records) {
    assert.equal(typeof r.offset, 'number', `captured offset ${String(r.offset)} (${r.error ?? 'no error'})`);
    const entry = { value: r.valueSha256, key: r.keySha256 };
    const before = out.get(r.offset as number);
    if (before !== undefined) assert.deepEqual(entry, before, `offset ${String(r.offset)} captured twice with different digests`);
    out.set(r.offset as number, entry);
  }
  return out;
}

const expected = (records: readonly Consumed[]) => new Map(records.map((r) => [r.offset, { value: sha256(r.value), key: r.key === null ? null : sha256(r.key) }]));

const CODECS = [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]] as const;

for (const [codec, compression] of CODECS) {
  test(`${codec}: Produce and Fetch audit records carry the digests and offsets of the records the broker holds and each consumer saw`, async () => {
    const topic = `captured-${codec}`;
    await createTopic(topic);
    const values = Array.from({ length: 15 }, (_, i) => payment(i, codec));
    const producer = stack.kafkaClient({ clientId: `e2e-capture-producer-${codec}`, ...PAYMENTS }).producer();
    await producer.connect();
    // Two sends: two Produce requests, the second's offsets continue from the first's.
    await producer.send({ topic, compression, messages: values.slice(0, 10).map((value, i) => ({ key: `key-${i}`, value })) });
    await producer.send({ topic, compression, messages: values.slice(10).map((value) => ({ key: null, value })) });
    await producer.disconnect();

    const broker = await consume(stack.directKafka(`direct-capture-${codec}`), topic, `direct-capture-${codec}`, values.length);
    assert.deepEqual(broker.map((r) => r.value.toString()), values, 'the broker holds what was produced');
    const offsets = broker.map((r) => r.offset);

    const produced = await captured('Produce', PAYMENTS.sub, topic, offsets);
    assert.ok(produced.audits.length >= 2, `one audit record per Produce, got ${produced.audits.length}`);
    for (const audit of produced.audits) assert.deepEqual((audit.details!['capture'] as CaptureDetail).rules, ['e2e-capture-digests']);
    assert.deepEqual(digestsByOffset(produced.records), expected(broker), 'Produce digests: the records the broker holds, at its offsets');

    const owner = await consume(stack.kafkaClient({ clientId: `e2e-capture-owner-${codec}`, ...PAYMENTS }), topic, `captured-owner-${codec}`, values.length);
    const ownerFetched = await captured('Fetch', PAYMENTS.sub, topic, owner.map((r) => r.offset));
    assert.deepEqual(digestsByOffset(ownerFetched.records), expected(owner), 'Fetch digests: what payments-admin received, at the offsets it read');
    assert.deepEqual(expected(owner), expected(broker), 'payments-admin received the original records');

    const analyst = await consume(stack.kafkaClient({ clientId: `e2e-capture-analyst-${codec}`, ...ANALYST, kafkajs: { logLevel: logLevel.NOTHING } }), topic, `captured-analyst-${codec}`, values.length);
    for (const r of analyst) assert.doesNotMatch(r.value.toString(), PLANTED, 'the analyst reads masked records');
    const analystFetched = await captured('Fetch', ANALYST.sub, topic, analyst.map((r) => r.offset));
    const analystDigests = digestsByOffset(analystFetched.records);
    assert.deepEqual(analystDigests, expected(analyst), 'Fetch digests: the masked bytes the analyst received');
    for (const offset of offsets) assert.notEqual(analystDigests.get(offset)?.value, expected(broker).get(offset)?.value, `offset ${offset}: not the broker's bytes`);
  });
}

test('masked capture: produced payments are audited masked at the broker\'s offsets; the audit log never holds a card number or an email', async () => {
  const topic = 'captured-masked-payments';
  await createTopic(topic);
  const values = Array.from({ length: 5 }, (_, i) => payment(i, 'masked'));
  const producer = stack.kafkaClient({ clientId: 'e2e-capture-masked', ...PAYMENTS }).producer();
  await producer.connect();
  await producer.send({ topic, compression: CompressionTypes.GZIP, messages: values.map((value) => ({ value })) });
  await producer.disconnect();
  const broker = await consume(stack.directKafka('direct-capture-masked'), topic, 'direct-capture-masked', values.length);

  const { records, audits } = await captured('Produce', PAYMENTS.sub, topic, broker.map((r) => r.offset));
  const detail = audits.map((a) => a.details!['capture'] as CaptureDetail).find((d) => d.records.some((r) => r.topic === topic))!;
  assert.deepEqual(detail.rules, ['e2e-capture-digests', 'e2e-capture-masked-payments-writes']);
  assert.equal(detail.payload, 'masked', 'masked wins over digest');
  assert.deepEqual(records.map((r) => r.offset), broker.map((r) => r.offset));
  records.forEach((r, i) => {
    const doc = JSON.parse(r.value!) as { id: string; card: { number: string } };
    assert.equal(doc.id, `masked-${i}`, 'the record is there, masked');
    assert.equal(doc.card.number, '[REDACTED]');
  });

  // payments-admin reads the originals through tollgate: its Fetch capture is digests only.
  await consume(stack.kafkaClient({ clientId: 'e2e-capture-masked-owner', ...PAYMENTS }), topic, 'captured-masked-owner', values.length);
  await captured('Fetch', PAYMENTS.sub, topic, broker.map((r) => r.offset));
  const log = JSON.stringify(stack.auditRecords());
  assert.doesNotMatch(log, PLANTED, 'no card number or email anywhere in the audit log');
});

test('acks=0: the Produce audit record holds the records without offsets, saying why', async () => {
  const topic = 'captured-acks0';
  await createTopic(topic);
  const producer = stack.kafkaClient({ clientId: 'e2e-capture-acks0', ...PAYMENTS }).producer();
  await producer.connect();
  await producer.send({ topic, acks: 0, messages: [{ value: 'fire-and-forget' }] });
  await producer.disconnect();
  let records: CapturedRecord[] = [];
  for (let i = 0; i < 50 && records.length === 0; i++) {
    records = stack.auditRecords().filter((r) => r.details?.['api'] === 'Produce' && r.details['capture'] !== undefined)
      .flatMap((r) => (r.details!['capture'] as CaptureDetail).records).filter((r) => r.topic === topic);
    if (records.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(records.map((r) => [r.offset, r.error, r.valueSha256]), [[null, 'acks=0: the broker sends no response, so no offsets', sha256(Buffer.from('fire-and-forget'))]]);
});

test('the quickstart\'s own capture rule: a payment produced to `payments` leaves its digest and offset, no payload', async () => {
  const value = payment(0, `quickstart-${Date.now()}`);
  const producer = stack.kafkaClient({ clientId: 'e2e-capture-quickstart', ...PAYMENTS }).producer();
  await producer.connect();
  const [sent] = await producer.send({ topic: 'payments', messages: [{ key: 'q', value }] });
  await producer.disconnect();
  const offset = Number(sent!.baseOffset);
  const { records, audits } = await captured('Produce', PAYMENTS.sub, 'payments', [offset]);
  const record = records.find((r) => r.offset === offset);
  assert.ok(record, `the Produce audit record captures offset ${offset}`);
  assert.equal(record.valueSha256, sha256(Buffer.from(value)));
  assert.equal(record.keySha256, undefined, 'keys are not captured unless the rule says so');
  assert.deepEqual((audits.find((a) => (a.details!['capture'] as CaptureDetail).records.includes(record))!.details!['capture'] as CaptureDetail).rules, ['capture-payments-writes']);
  assert.doesNotMatch(JSON.stringify(stack.auditRecords()), PLANTED);
});
