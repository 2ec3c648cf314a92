/**
 * The Kafka audit sink against a real broker of its own (SASL SCRAM-SHA-512, a 3-partition topic), behind the whole
 * stack: HTTP and Kafka traffic flows through Envoy and tollgate while the sink's broker is killed (SIGKILL, mid-run),
 * stays down, and is restarted on the same data folder. Traffic never notices: every request is answered as
 * policy says. Records wait in the sink's spool and arrive once the broker is back: read with an independent client
 * (kafkajs), the topic holds every record of the file sink exactly once, each partition in the order tollgate wrote
 * them, each keyed by its session. Exactly once is the producer's doing (idempotent: the same producer id, epoch and
 * sequence numbers when a batch is sent again), not de-duplication on read.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import { harnessSasl, startKafka, type KafkaBroker } from '../../scripts/lib/kafka.ts';
import { runCommand } from '../../scripts/lib/process.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { recordsFromFile } from '../../src/audit/replay.ts';
import type { AuditRecord } from '../../src/audit/record.ts';

const TOPIC = 'tollgate-audit';
const PASSWORD_ENV = 'TOLLGATE_E2E_AUDIT_KAFKA_PASSWORD';
const sinkSasl = { users: [{ name: 'audit-writer', password: randomBytes(12).toString('hex') }], mechanisms: ['SCRAM-SHA-512' as const] };

let sinkBroker: KafkaBroker;
let stack: Stack;
let auditFile: string;

before(async () => {
  sinkBroker = await startKafka({ sasl: sinkSasl });
  await sinkBroker.createTopics([TOPIC], 3);
  process.env[PASSWORD_ENV] = sinkSasl.users[0]!.password;
  stack = await startStack({
    editConfig: (doc) => {
      doc['audit'] = {
        sinks: [
          { type: 'stdout' },
          { type: 'file', path: 'audit/audit.jsonl' },
          {
            type: 'kafka', bootstrap: sinkBroker.bootstrap, topic: TOPIC, timeout: '3s',
            sasl: { mechanism: 'SCRAM-SHA-512', username: 'audit-writer', password: { env: PASSWORD_ENV } },
            spool: { dir: 'audit/kafka-spool', maxBytes: 64 * 1024 * 1024, onFull: 'block' },
          },
        ],
      };
    },
  });
  auditFile = path.join(stack.workDir, 'audit', 'audit.jsonl');
});
after(async () => {
  await stack?.stop();
  await sinkBroker?.stop();
});

/** One sample of a metric with labels, from tollgate's /metrics. */
async function metric(name: string, labels: string): Promise<number | undefined> {
  const text = await (await fetch(`${stack.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(200);
  }
}

/** Every message of the topic, read by kafkajs (not tollgate's client): key, partition, offset and the record. */
async function readTopicWithKafkajs(): Promise<Array<{ key: string; partition: number; offset: number; record: AuditRecord }>> {
  const kafka = new Kafka({ clientId: 'e2e-audit-check', brokers: [sinkBroker.bootstrap], sasl: harnessSasl(sinkSasl), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(TOPIC);
  await admin.disconnect();
  const total = offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  const out: Array<{ key: string; partition: number; offset: number; record: AuditRecord }> = [];
  const consumer = kafka.consumer({ groupId: `e2e-audit-check-${randomBytes(4).toString('hex')}` });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      out.push({ key: message.key!.toString(), partition, offset: Number(message.offset), record: JSON.parse(message.value!.toString()) as AuditRecord });
    },
  });
  await until(`kafkajs read all ${total} messages`, async () => out.length >= total);
  await consumer.disconnect();
  return out;
}

test('the Kafka sink\'s broker killed mid-run and restarted: traffic is served throughout, and every record reaches the topic exactly once, in order', async (t) => {
  const analyst = await stack.mintToken('alice', ['analysts']);
  const statuses = new Map<number, number>();
  let requests = 0;
  let stopTraffic = false;
  // HTTP requests, one after another, for the whole test: allowed and denied ones.
  const traffic = (async () => {
    while (!stopTraffic) {
      const res = await fetch(`${stack.httpUrl}${requests % 5 === 4 ? '/admin/users' : '/api/customers'}`, { headers: { authorization: `Bearer ${analyst}` } });
      await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      requests++;
    }
  })();
  // And some Kafka traffic through Envoy: its connection is one session, keyed on one partition.
  const producer = stack.kafkaClient({ sub: 'ann', groups: ['analysts'] }).producer();
  await producer.connect();
  const produce = async (n: number) => { await producer.send({ topic: 'orders', messages: [{ value: `order ${n}` }] }); };

  await until('some records reached the topic', async () => ((await metric('tollgate_audit_records_total', 'sink="kafka",result="delivered"')) ?? 0) >= 30);
  await produce(1);
  await sinkBroker.kill();
  const killedAt = requests;
  await produce(2);
  await until('the sink is seen down and records wait in its spool', async () =>
    (await metric('tollgate_audit_sink_up', 'sink="kafka"')) === 0 && ((await metric('tollgate_audit_spool_records', 'sink="kafka"')) ?? 0) > 0);
  await until('traffic went on while the broker was down', async () => requests >= killedAt + 300);
  const waiting = await metric('tollgate_audit_spool_records', 'sink="kafka"');
  const ready = await fetch(`${stack.adminUrl}/readyz`);
  const readiness = (await ready.json()) as { checks: Array<{ name: string; ok: boolean; detail: string }> };
  assert.equal(ready.status, 200, 'a sink that is down does not make tollgate unready while its spool has room');
  const kafkaCheck = readiness.checks.find((c) => c.name === 'audit kafka')!;
  assert.match(kafkaCheck.detail, /^down since .*; \d+ records waiting/);
  assert.ok(((await metric('tollgate_audit_lag_seconds', 'sink="kafka"')) ?? 0) > 0, 'the lag grows');

  await sinkBroker.restart();
  await produce(3);
  await until('the sink is back', async () => (await metric('tollgate_audit_sink_up', 'sink="kafka"')) === 1, 120_000);
  stopTraffic = true;
  await traffic;
  await producer.disconnect();
  await until('both spooled sinks have everything', async () =>
    (await metric('tollgate_audit_spool_records', 'sink="kafka"')) === 0 && (await metric('tollgate_audit_spool_records', 'sink="file"')) === 0, 120_000);

  assert.deepEqual([...statuses.keys()].sort(), [200, 403], `every request answered as policy says, none failed: ${JSON.stringify([...statuses])}`);
  assert.ok(requests > 100, `${requests} requests`);

  const filed: AuditRecord[] = [];
  for await (const r of recordsFromFile(auditFile)) filed.push(r);
  const logged = stack.auditRecords();
  assert.deepEqual(filed.map((r) => r.id), logged.map((r) => r.id), 'the file sink holds every record of the log');

  const read = await readTopicWithKafkajs();
  t.diagnostic(`${requests} HTTP requests, ${filed.length} records; ${waiting} waited in the Kafka sink's spool while its broker was down; ${read.length} messages in the topic`);
  const ids = read.map((m) => m.record.id!);
  assert.equal(new Set(ids).size, ids.length, 'no record twice in the topic');
  assert.deepEqual([...ids].sort(), filed.map((r) => r.id!).sort(), 'every record once: the topic holds exactly the records of the file');
  const position = new Map(filed.map((r, i) => [r.id!, i]));
  for (let p = 0; p < 3; p++) {
    const order = read.filter((m) => m.partition === p).sort((a, b) => a.offset - b.offset).map((m) => position.get(m.record.id!)!);
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `partition ${p} holds its records in the order tollgate wrote them`);
  }
  for (const m of read) assert.equal(m.key, m.record.session, 'keyed by session');
  assert.deepEqual(read.map((m) => m.record).sort((a, b) => position.get(a.id!)! - position.get(b.id!)!), filed, 'the same content as the file');
  const kafkaSessions = new Set(filed.filter((r) => r.event === 'kafka.request' && r.details?.['api'] === 'Produce').map((r) => r.session));
  assert.equal(kafkaSessions.size >= 1, true, 'the Kafka producer\'s requests are there too');

  // The same session's timeline from the topic and from the file.
  const session = [...kafkaSessions][0]!;
  const cli = (...args: string[]) => runCommand(process.execPath, [path.join(REPO_ROOT, 'src', 'cli.ts'), 'audit', 'replay', '--session', session!, '--json', ...args], {
    timeoutMs: 60_000, env: { ...process.env, [PASSWORD_ENV]: sinkSasl.users[0]!.password },
  });
  const fromKafka = await cli('--from-kafka', `${sinkBroker.bootstrap}/${TOPIC}`, '--sasl-mechanism', 'SCRAM-SHA-512', '--sasl-username', 'audit-writer', '--sasl-password-env', PASSWORD_ENV);
  const fromFile = await cli('--from', auditFile);
  assert.equal(fromKafka.code, 0, fromKafka.stderr);
  assert.ok(fromKafka.stdout.split('\n').length > 3, 'the session has records');
  assert.equal(fromKafka.stdout, fromFile.stdout, 'replay from the topic and from the file tell the same');
});
