/**
 * `npm start` is the main job: the quickstart comes up on its fixed ports with the bundled config, a token minted by
 * `tollgate token` works with curl-like HTTP through Envoy, kafkajs (SASL OAUTHBEARER with a client_credentials token
 * of the dev issuer) and Kafka's own console clients work through Envoy's Kafka listener under the quickstart's rules,
 * and Ctrl-C stops everything it started.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { runKafkaTool } from '../../scripts/lib/kafka.ts';
import { REPO_ROOT, RUN_DIR } from '../../scripts/lib/paths.ts';
import { isProcessAlive, runCommand, spawnManaged, type ManagedProcess } from '../../scripts/lib/process.ts';

const STATE = path.join(REPO_ROOT, '.tollgate', 'quickstart.json');
const FIXED_PORTS = [10000, 19092, 18080, 19001, 19901, 19000];

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

let quickstart: ManagedProcess;

/** A token for one of the quickstart's clients, from the dev issuer's token endpoint (client_credentials). */
async function clientToken(id: string): Promise<string> {
  const res = await fetch('http://127.0.0.1:18080/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: `${id}-secret` }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { access_token: string }).access_token;
}

function kafkaAs(id: string): Kafka {
  return new Kafka({
    clientId: `quickstart-test-${id}`, brokers: ['127.0.0.1:19092'], logLevel: logLevel.NOTHING, retry: { retries: 1 },
    sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: await clientToken(id) }) },
  });
}

before(async () => {
  for (const port of FIXED_PORTS) {
    if (await portInUse(port)) throw new Error(`127.0.0.1:${port} is in use: the quickstart needs its fixed ports (is \`npm start\` already running?)`);
  }
  quickstart = await spawnManaged({
    name: 'quickstart', command: process.execPath, args: [path.join(REPO_ROOT, 'scripts', 'quickstart.ts')],
    cwd: REPO_ROOT, logFile: path.join(RUN_DIR, `quickstart-test-${process.pid}.log`),
  });
  await quickstart.waitForLog(/tollgate quickstart is up/, 120_000);
});
after(async () => { await quickstart?.stop(); });

test('the state file names every address and process, on the documented ports', () => {
  const state = JSON.parse(fs.readFileSync(STATE, 'utf8'));
  assert.equal(state.issuer, 'http://127.0.0.1:18080');
  assert.equal(state.http, 'http://127.0.0.1:10000');
  assert.equal(state.kafka, '127.0.0.1:19092');
  for (const name of ['quickstart', 'tollgate', 'envoy', 'kafka']) assert.ok(isProcessAlive(state.pids[name]), `${name} runs`);
  const printed = fs.readFileSync(quickstart.logFile, 'utf8');
  assert.match(printed, /TOKEN=\$\(npm run -s tollgate -- token --sub alice --groups analysts\)/);
  assert.match(printed, /approver page\s+http:\/\/127\.0\.0\.1:19901\/approvals/);
});

test('the issuer\'s discovery document names its token endpoint', async () => {
  const doc = await (await fetch('http://127.0.0.1:18080/.well-known/openid-configuration')).json() as Record<string, unknown>;
  assert.equal(doc['issuer'], 'http://127.0.0.1:18080');
  assert.equal(doc['token_endpoint'], 'http://127.0.0.1:18080/token');
});

test('a token from `tollgate token` passes Envoy on the HTTP listener; the admin route stays closed to analysts', async () => {
  const minted = await runCommand(process.execPath, [path.join(REPO_ROOT, 'src', 'cli.ts'), 'token', '--sub', 'alice', '--groups', 'analysts'], { cwd: REPO_ROOT });
  assert.equal(minted.code, 0, minted.stderr);
  const token = minted.stdout.trim();
  const ok = await fetch('http://127.0.0.1:10000/api/customers', { headers: { authorization: `Bearer ${token}` } });
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as { caller: { subject: string } }).caller.subject, 'alice');
  assert.equal((await fetch('http://127.0.0.1:10000/admin/users', { headers: { authorization: `Bearer ${token}` } })).status, 403);
  assert.equal((await fetch('http://127.0.0.1:10000/api/customers')).status, 401);
});

test('kafkajs with OAUTHBEARER on 19092: the admin sees every topic; the analyst produces to orders and consumes it in an analytics-* group', async () => {
  const admin = kafkaAs('platform-admin').admin();
  await admin.connect();
  assert.deepEqual((await admin.listTopics()).filter((t) => !t.startsWith('__')).sort(), ['admin.audit-config', 'analytics', 'orders', 'payments']);
  await admin.disconnect();

  const analyst = kafkaAs('analyst-app');
  const value = JSON.stringify({ order: 42, card: { number: '4111111111111111' }, email: 'ada@example.com' });
  const producer = analyst.producer();
  await producer.connect();
  await producer.send({ topic: 'orders', messages: [{ key: 'o-42', value }] });
  await assert.rejects(producer.send({ topic: 'payments', messages: [{ value: 'analysts may not produce here' }] }), (err: Error & { type?: string }) => {
    assert.equal(err.type, 'TOPIC_AUTHORIZATION_FAILED', `${err.name}: ${err.message}`);
    return true;
  });
  await producer.disconnect();
  const consumer = analyst.consumer({ groupId: `analytics-quickstart-test-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: 'orders', fromBeginning: true });
  const got = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message within 30 s')), 30_000);
    consumer.run({ eachMessage: async ({ message }) => { clearTimeout(timer); resolve(message.value!.toString()); } })
      .catch((err: unknown) => { clearTimeout(timer); reject(err as Error); });
  });
  await consumer.disconnect();
  assert.equal(got, value);
});

test('payments: produced plainly by payments-app, read masked by analysts and plain by payments-admin; analytics refuses card numbers', async () => {
  const payment = { id: `p-${Date.now()}`, card: { number: '4111111111111111' }, customer: { name: 'Ada Lovelace', email: 'ada@example.com' } };
  const payments = kafkaAs('payments-app');
  const producer = payments.producer();
  await producer.connect();
  await producer.send({ topic: 'payments', messages: [{ key: payment.id, value: JSON.stringify(payment) }] });
  await producer.disconnect();

  const readAs = async (client: string, groupId: string): Promise<string> => {
    const consumer = kafkaAs(client).consumer({ groupId });
    await consumer.connect();
    await consumer.subscribe({ topic: 'payments', fromBeginning: true });
    const value = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${client}: payment ${payment.id} not seen within 30 s`)), 30_000);
      consumer.run({
        eachMessage: async ({ message }) => {
          if (message.key?.toString() !== payment.id) return;
          clearTimeout(timer);
          resolve(message.value!.toString());
        },
      }).catch((err: unknown) => { clearTimeout(timer); reject(err as Error); });
    });
    await consumer.disconnect();
    return value;
  };
  const masked = JSON.parse(await readAs('analyst-app', `analytics-quickstart-payments-${Date.now()}`)) as typeof payment;
  assert.equal(masked.card.number, '************1111');
  assert.equal(masked.customer.email, '[REDACTED]');
  assert.equal(masked.customer.name, 'Ada Lovelace');
  assert.equal(await readAs('payments-app', `payments-quickstart-${Date.now()}`), JSON.stringify(payment));

  const analyst = kafkaAs('analyst-app').producer();
  await analyst.connect();
  await assert.rejects(analyst.send({ topic: 'analytics', messages: [{ value: JSON.stringify({ event: 'pay', card: '4111 1111 1111 1111' }) }] }), (err: Error & { type?: string }) => {
    assert.equal(err.type, 'POLICY_VIOLATION', `${err.name}: ${err.message}`);
    return true;
  });
  await analyst.send({ topic: 'analytics', messages: [{ value: JSON.stringify({ event: 'view' }) }] });
  await analyst.disconnect();
});

test("Kafka's console producer and consumer (Java, OAUTHBEARER via the issuer's token endpoint) work with the printed client config", async () => {
  const state = JSON.parse(fs.readFileSync(STATE, 'utf8'));
  const config: string = state.kafkaClientProperties;
  assert.match(fs.readFileSync(config, 'utf8'), /sasl\.oauthbearer\.token\.endpoint\.url=http:\/\/127\.0\.0\.1:18080\/token/);
  const printed = fs.readFileSync(quickstart.logFile, 'utf8');
  assert.match(printed, /-Dorg\.apache\.kafka\.sasl\.oauthbearer\.allowed\.urls=http:\/\/127\.0\.0\.1:18080\/token/);
  const jvmOptions = ['-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=http://127.0.0.1:18080/token'];
  const line = `java-${Date.now()}`;
  const produced = await runKafkaTool('org.apache.kafka.tools.ConsoleProducer', [
    '--bootstrap-server', '127.0.0.1:19092', '--topic', 'orders', '--producer.config', config,
  ], { input: `${line}\n`, jvmOptions });
  assert.equal(produced.code, 0, produced.stderr + produced.stdout);
  const consumed = await runKafkaTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
    '--bootstrap-server', '127.0.0.1:19092', '--topic', 'orders', '--from-beginning', '--max-messages', '2', '--timeout-ms', '20000',
    '--group', `analytics-console-${Date.now()}`, '--consumer.config', config,
  ], { jvmOptions });
  assert.ok(consumed.stdout.split('\n').includes(line), `consumer output: ${consumed.stdout}\n${consumed.stderr}`);
});

test('Ctrl-C stops everything the quickstart started and removes its state file', async () => {
  const state = JSON.parse(fs.readFileSync(STATE, 'utf8'));
  quickstart.signal('SIGINT');
  assert.deepEqual(await quickstart.exited, { code: 0, signal: null });
  for (const name of ['tollgate', 'envoy', 'kafka']) assert.equal(isProcessAlive(state.pids[name]), false, `${name} stopped`);
  assert.equal(fs.existsSync(STATE), false);
  for (const port of FIXED_PORTS) assert.equal(await portInUse(port), false, `port ${port} released`);
});
