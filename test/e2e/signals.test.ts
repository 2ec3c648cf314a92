/**
 * Insider-threat signals end to end: real clients → the real Envoy → tollgate (its own process) → a real Kafka
 * broker and a real kube-apiserver, with the quickstart's rules plus signal rules and time windows:
 * - a consumer over its fetch volume is throttled (Fetch responses carry throttle_time_ms, kafkajs waits them out,
 *   its measured rate falls to the limit, nothing breaks), and once the breach lasts its Fetches need an approval: a
 *   ticket (POLICY_VIOLATION); approved through the approver API, the grant lets a new consumer read on;
 * - an admin API call outside the change window (the quickstart's rule; the window set to hold no part of today)
 *   gets a ticket; approved by another platform admin, the retry goes through; once a reload puts now inside the
 *   window, changes need no approval (signal state survives that reload);
 * - five failed SASL logins claiming a subject, then its success: the session is flagged, its DeleteTopics needs an
 *   approval, and goes through once a security officer approves it;
 * - a third retention change within the hour (kafkajs admin) and a third RBAC change within ten minutes (the
 *   Kubernetes API through the gateway) are alerted as bursts, the changes going through;
 * - a replayed record (old timestamp, payload already produced) is refused;
 * - a Kubernetes list storm gets 429 with Retry-After.
 * Every signal decision is an audit record with the observed value and the threshold, and goes to the webhook.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import YAML from 'yaml';
import kafkajs, { type Consumer } from 'kafkajs';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import { connectTo, frameReader, authenticate, tamperSignature } from '../harness/kafka-client.ts';

const ANALYST = { sub: 'alice', groups: ['analysts'] } as const;
const ADMIN = { sub: 'root-admin', groups: ['platform-admins'] } as const;
const VOLUME_TOPIC = 'signals-volume';
const REPLAY_TOPIC = 'signals-replay';
const DOOMED_TOPIC = 'signals-doomed';
// A key held back for approval stays held for one window: long enough for the test to approve and read again.
const LIMIT = 600_000;
const WINDOW_MS = 10_000;
/** What kafkajs says of POLICY_VIOLATION, the answer to a request awaiting approval. */
const AWAITS_APPROVAL = /do not satisfy the configured policy|approval apr_/;

const { ConfigResourceTypes } = kafkajs;
let stack: Stack;
const alerts: AuditRecord[] = [];
let alertServer: http.Server;

const PAST_WINDOW = { timeZone: 'UTC', periods: [{ start: '2001-01-01T00:00:00Z', end: '2001-01-02T00:00:00Z' }] };

const SIGNAL_RULES = [
  {
    name: 'analysts-fetch-volume', match: { group: 'analysts', kafka: { operation: 'consume', topic: VOLUME_TOPIC } },
    signal: { volume: { measure: 'fetchedBytes', window: '10s', limit: LIMIT }, effect: 'throttle', escalate: { after: '12s', effect: 'approve' } },
    approval: { approvers: { group: 'platform-admins' }, grant: '10m' },
  },
  { name: 'kafka-brute-force', signal: { authFailures: { threshold: 5, window: '10m', per: ['subject'] } } },
  { name: 'no-replayed-records', match: { kafka: { topic: REPLAY_TOPIC } }, signal: { replay: { maxAge: '1h', duplicates: '10m' }, effect: 'deny' } },
  { name: 'produce-bursts-shadow', match: { kafka: { operation: 'produce', topic: REPLAY_TOPIC } }, signal: { volume: { measure: 'producedRecords', window: '1m', limit: 0, per: ['subject'] }, effect: 'deny' }, shadow: true },
  { name: 'retention-change-bursts', match: { kafka: { api: ['AlterConfigs', 'IncrementalAlterConfigs'] } }, signal: { volume: { measure: 'changes', configs: 'retention.*', per: ['subject'], window: '1h', limit: 2 } } },
  { name: 'rbac-change-bursts', match: { kubernetes: { apiGroup: 'rbac.authorization.k8s.io', verb: ['create', 'update', 'patch', 'delete'] } }, signal: { volume: { measure: 'changes', per: ['subject'], window: '10m', limit: 2 } } },
  { name: 'kube-list-storm', match: { kubernetes: { verb: 'list' } }, signal: { volume: { measure: 'requests', window: '30s', limit: 10, per: ['subject'] }, effect: 'throttle' } },
  {
    name: 'flagged-sessions-need-approval-to-delete', match: { kafka: { api: 'DeleteTopics' }, flagged: true },
    effect: 'approve', approval: { approvers: { group: 'security' }, grant: '5m' }, description: 'a session after failed logins may not delete topics alone',
  },
  { name: 'analysts-signal-topics', match: { group: 'analysts', kafka: { operation: ['consume', 'produce'], topic: 'signals-*' } }, effect: 'allow' },
];

before(async () => {
  alertServer = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => { text += c.toString('utf8'); });
    req.on('end', () => { alerts.push(JSON.parse(text) as AuditRecord); res.writeHead(204).end(); });
  });
  await new Promise<void>((resolve) => alertServer.listen(0, '127.0.0.1', resolve));
  const webhook = `http://127.0.0.1:${(alertServer.address() as AddressInfo).port}/alerts`;
  stack = await startStack({
    kubernetes: true,
    editConfig: (doc) => {
      const d = doc as { rules: unknown[]; timeWindows: Record<string, unknown>; signals?: unknown };
      // The quickstart's own change window and rule, with a window that holds no part of today: the test does not
      // depend on the hour it runs at.
      d.timeWindows['change-window'] = PAST_WINDOW;
      d.signals = { alerts: { webhook: { url: webhook, timeout: '2s' } } };
      d.rules = [...SIGNAL_RULES, ...d.rules];
    },
  });
  await stack.kafka.createTopics([VOLUME_TOPIC, REPLAY_TOPIC, DOOMED_TOPIC]);
});
after(async () => {
  await stack?.stop();
  await new Promise<void>((resolve) => alertServer?.close(() => resolve()));
});

async function auditWhere(filter: (r: AuditRecord) => boolean, atLeast = 1, timeoutMs = 10_000): Promise<AuditRecord[]> {
  const deadline = Date.now() + timeoutMs;
  let found: AuditRecord[] = [];
  while (Date.now() < deadline) {
    found = stack.auditRecords().filter(filter);
    if (found.length >= atLeast) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  return found;
}

/** Whether the webhook received a record matching `filter` (within 10 s: it is sent after the audit record). */
async function alerted(filter: (r: AuditRecord) => boolean): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (alerts.some(filter)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

const signalsOf = (r: AuditRecord) => (r.details?.['signals'] ?? []) as Array<Record<string, unknown>>;

/** Approves `id` through the approver API on the admin listener, as `tollgate approvals approve` does. */
async function approve(id: string, approver: { sub: string; groups: readonly string[] }): Promise<void> {
  const token = await stack.mintToken(approver.sub, [...approver.groups]);
  const res = await fetch(`${stack.adminUrl}/approvals/${id}/approve`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'e2e' }),
  });
  assert.equal(res.status, 200, await res.text());
}

const approvalOf = (r: AuditRecord | undefined) => r?.details?.['approval'] as { id?: string; state: string; grant?: string } | undefined;

test('a consumer over its fetch volume is throttled (kafkajs backs off, its rate falls to the limit, nothing breaks), then needs an approval', async (t) => {
  const direct = stack.directKafka().producer();
  await direct.connect();
  const messages = Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: randomBytes(10_000) }));
  // Batches of 50 KB: a broker always serves at least one whole batch, whatever the consumer's maxBytes.
  for (let i = 0; i < messages.length; i += 5) await direct.send({ topic: VOLUME_TOPIC, messages: messages.slice(i, i + 5) });
  await direct.disconnect();

  const consumer: Consumer = stack.kafkaClient({ ...ANALYST, clientId: 'e2e-volume' }).consumer({
    groupId: `analytics-signals-${Date.now()}`, maxBytesPerPartition: 50_000, maxBytes: 50_000, maxWaitTimeInMs: 500, retry: { retries: 0 },
  });
  const received: Array<{ at: number; bytes: number; offset: number }> = [];
  const crashes: Error[] = [];
  consumer.on(consumer.events.CRASH, (e) => { crashes.push(e.payload.error); });
  await consumer.connect();
  await consumer.subscribe({ topic: VOLUME_TOPIC, fromBeginning: true });
  let escalation: AuditRecord[];
  let ticketed: AuditRecord[];
  try {
    await consumer.run({ eachMessage: async ({ message }) => { received.push({ at: Date.now(), bytes: message.value!.length, offset: Number(message.offset) }); } });
    escalation = await auditWhere((r) => r.event === 'kafka.signal.escalation' && r.rule === 'analysts-fetch-volume', 1, 60_000);
    assert.equal(escalation.length, 1, 'the breach escalated');
    ticketed = await auditWhere((r) => r.event === 'kafka.request.denied' && r.rule === 'analysts-fetch-volume', 1, 30_000);
    assert.ok(ticketed.length >= 1, 'a Fetch after the escalation needed an approval');
  } finally {
    await consumer.disconnect();
  }

  // Nothing broke while throttled: the records arrived in order, none missing, until the approval was needed.
  assert.ok(received.length > 60 && received.length < messages.length, `${received.length} of ${messages.length} records before the approval was needed`);
  received.forEach((r, i) => assert.equal(r.offset, i, 'offsets contiguous'));
  const otherErrors = crashes.filter((e) => !AWAITS_APPROVAL.test(e.message));
  assert.deepEqual(otherErrors.map((e) => e.message), [], 'no error but the final POLICY_VIOLATION');

  // The rate falls to the limit: over any stretch, what arrived stays under LIMIT per window plus one window's
  // burst and one response (a slow machine only lowers it; an unthrottled consumer reads 3 MB within a few seconds).
  const t0 = received[0]!.at;
  let total = 0;
  for (const r of received) {
    total += r.bytes;
    const allowed = LIMIT * ((r.at - t0) / WINDOW_MS + 2) + 100_000;
    assert.ok(total <= allowed, `${total} bytes within ${r.at - t0} ms, more than the ceiling ${Math.round(allowed)}`);
  }
  const elapsed = received.at(-1)!.at - t0;
  t.diagnostic(`received ${total} bytes in ${elapsed} ms (${Math.round(total / (elapsed / 1000))} B/s; limit ${LIMIT / (WINDOW_MS / 1000)} B/s)`);

  // The Fetch responses carried the throttle, with the numbers; kafkajs waited it out before its next Fetch.
  const fetches = stack.auditRecords().filter((r) => r.event === 'kafka.request' && r.principal?.subject === 'alice' && r.details?.['api'] === 'Fetch');
  const throttled = fetches.filter((r) => signalsOf(r).some((s) => s['effect'] === 'throttle'));
  assert.ok(throttled.length >= 3, `${throttled.length} throttled Fetch responses`);
  for (const r of throttled) {
    const s = signalsOf(r).find((x) => x['effect'] === 'throttle')!;
    assert.equal(s['signal'], 'analysts-fetch-volume');
    assert.equal(s['threshold'], LIMIT);
    assert.ok((s['observed'] as number) > LIMIT);
    assert.ok((s['throttleMs'] as number) > 0);
  }
  let honoured = 0;
  for (let i = 0; i + 1 < fetches.length; i++) {
    const s = signalsOf(fetches[i]!).find((x) => x['effect'] === 'throttle');
    if (s === undefined) continue;
    const gap = Date.parse(fetches[i + 1]!.time) - Date.parse(fetches[i]!.time);
    // The next Fetch's record is written when its answer leaves: at least the throttle after this one's.
    assert.ok(gap >= (s['throttleMs'] as number) - 50, `the next Fetch came ${gap} ms after a ${s['throttleMs']} ms throttle`);
    honoured++;
  }
  assert.ok(honoured >= 2);
  // The signal records: breach then escalation, with the numbers, in the audit log and at the webhook.
  const breach = stack.auditRecords().find((r) => r.event === 'kafka.signal.breach' && r.rule === 'analysts-fetch-volume');
  assert.equal(breach?.details?.['effect'], 'throttle');
  assert.equal(escalation[0]!.details?.['effect'], 'approve');
  assert.equal(escalation[0]!.details?.['escalated'], true);
  const ticket = ticketed[0]!;
  assert.match(ticket.reason!, /fetchedBytes of alice on topic:signals-volume in the last 10s is .* over the limit 600 KB; needs an approval until .* \(escalated: in breach for .*\): approval apr_\w+ awaits an approver of platform-admins/);
  const id = approvalOf(ticket)?.id;
  assert.equal(approvalOf(ticket)?.state, 'pending');
  assert.match(id ?? '', /^apr_/);
  assert.ok(await alerted((a) => a.event === 'kafka.signal.escalation' && a.rule === 'analysts-fetch-volume'), 'the escalation reached the webhook');

  // A platform admin approves; while alice's key is still held back, the grant lets a new consumer read on.
  await approve(id!, { sub: 'platform-admin', groups: ['platform-admins'] });
  const approvedAt = new Date().toISOString();
  const again = stack.kafkaClient({ ...ANALYST, clientId: 'e2e-volume-approved' }).consumer({ groupId: `analytics-signals-approved-${Date.now()}`, maxBytes: 50_000, maxWaitTimeInMs: 500, retry: { retries: 0 } });
  const more: string[] = [];
  await again.connect();
  try {
    await again.subscribe({ topic: VOLUME_TOPIC, fromBeginning: true });
    await again.run({ eachMessage: async ({ message }) => { more.push(message.key!.toString()); } });
    const granted = await auditWhere((r) => r.event === 'kafka.request' && r.details?.['api'] === 'Fetch' && r.details?.['clientId'] === 'e2e-volume-approved' && approvalOf(r)?.state === 'approved', 1, 30_000);
    const seen = stack.auditRecords().filter((r) => r.details?.['clientId'] === 'e2e-volume-approved' || (r.time > approvedAt && r.principal?.subject === 'alice'))
      .map((r) => `${r.time} ${r.event} ${r.details?.['api']} ${r.reason} ${JSON.stringify(approvalOf(r))} ${JSON.stringify(signalsOf(r).map((x) => [x['effect'], x['until']]))}`);
    assert.ok(granted.length >= 1, `a Fetch went through with the grant; approved at ${approvedAt}, the new consumer's Fetches:\n${seen.join('\n')}`);
    assert.equal(approvalOf(granted[0])?.id, id);
    assert.match(approvalOf(granted[0])?.grant ?? '', /^grt_/);
    for (let i = 0; i < 100 && more.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(more.length > 0 && more[0] === 'k0', 'and its records were served');
  } finally {
    await again.disconnect();
  }
  const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
  assert.match(metrics, /tollgate_signal_observations_total\{signal="analysts-fetch-volume",effect="throttle",shadow="false"\} [1-9]/);
  assert.match(metrics, /tollgate_signal_events_total\{signal="analysts-fetch-volume",event="escalation",effect="approve",shadow="false"\} 1/);
  assert.match(metrics, /tollgate_signal_keys\{signal="analysts-fetch-volume"\} 1/);
});

test('an admin API call outside the change window needs an approval; approved, the retry goes through; inside the window none is needed', async () => {
  const admin = stack.kafkaClient({ ...ADMIN, clientId: 'e2e-window' }).admin({ retry: { retries: 0 } });
  await admin.connect();
  try {
    const alter = (value: string) => admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'orders', configEntries: [{ name: 'retention.ms', value }] }] });
    const retention = async () => (await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'orders', configNames: ['retention.ms'] }] })).resources[0]!.configEntries[0]!.configValue;
    await assert.rejects(alter('86400000'), AWAITS_APPROVAL);
    const [record] = await auditWhere((r) => r.event === 'kafka.request.denied' && r.rule === 'config-changes-outside-the-change-window');
    assert.match(record!.reason!, /^topic-config and ACL changes outside weekdays 08:00-18:00 UTC need an approval: approval apr_\w+ awaits an approver of platform-admins/);
    const id = approvalOf(record)?.id;
    assert.match(id ?? '', /^apr_/);
    assert.notEqual(await retention(), '86400000', 'nothing changed');

    // The requester cannot approve it; another platform admin can.
    const self = await stack.mintToken(ADMIN.sub, [...ADMIN.groups]);
    const own = await fetch(`${stack.adminUrl}/approvals/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${self}` } });
    assert.equal(own.status, 403);
    await approve(id!, { sub: 'platform-admin', groups: ['platform-admins'] });
    await alter('86400000');
    assert.equal(await retention(), '86400000');
    const [through] = await auditWhere((r) => r.event === 'kafka.request' && r.details?.['api'] === 'AlterConfigs' && approvalOf(r)?.state === 'approved');
    assert.equal(approvalOf(through)?.id, id);

    const doc = YAML.parse(fs.readFileSync(stack.tollgateConfigFile, 'utf8')) as { timeWindows: Record<string, unknown> };
    const now = Date.now();
    doc.timeWindows['change-window'] = { timeZone: 'UTC', periods: [{ start: new Date(now - 3_600_000).toISOString(), end: new Date(now + 3_600_000).toISOString() }] };
    const tmp = `${stack.tollgateConfigFile}.swp`;
    fs.writeFileSync(tmp, YAML.stringify(doc));
    fs.renameSync(tmp, stack.tollgateConfigFile);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
      if (/tollgate_config_reloads_total\{result="success"\} [1-9]/.test(metrics)) {
        assert.match(metrics, /tollgate_signal_keys\{signal="analysts-fetch-volume"\} 1/, 'the reload kept what the signals learned');
        break;
      }
      assert.ok(Date.now() < deadline, 'the edited config was reloaded');
      await new Promise((r) => setTimeout(r, 200));
    }
    await alter('172800000');
    assert.equal(await retention(), '172800000');
    const last = stack.auditRecords().findLast((r) => r.event === 'kafka.request' && r.details?.['api'] === 'AlterConfigs');
    assert.equal(approvalOf(last), undefined, 'inside the window: allowed by the admins\' rule, no approval involved');

    // Change frequency: the third retention change within the hour is a burst, alerted (the change goes through).
    assert.equal(stack.auditRecords().some((r) => r.event === 'kafka.signal.breach' && r.rule === 'retention-change-bursts'), false, 'two changes are no burst');
    await alter('259200000');
    assert.equal(await retention(), '259200000');
    const [burst] = await auditWhere((r) => r.event === 'kafka.signal.breach' && r.rule === 'retention-change-bursts');
    assert.deepEqual([burst!.details?.['measure'], burst!.details?.['observed'], burst!.details?.['threshold'], burst!.details?.['effect']], ['changes', 3, 2, 'alert']);
    assert.equal(burst!.principal?.subject, ADMIN.sub);
    assert.ok(await alerted((a) => a.event === 'kafka.signal.breach' && a.rule === 'retention-change-bursts'), 'the burst reached the webhook');
  } finally {
    await admin.disconnect();
  }
});

test('five failed SASL logins claiming a subject, then its success: the session is flagged and its DeleteTopics needs an approval', async () => {
  const good = await stack.mintToken(ADMIN.sub, [...ADMIN.groups]);
  for (let i = 0; i < 5; i++) {
    const socket = await connectTo(stack.kafkaBootstrap);
    const reader = frameReader(socket);
    await assert.rejects(authenticate(socket, reader, tamperSignature(good)), /SaslAuthenticate: error 58/);
    socket.destroy();
  }
  const failures = await auditWhere((r) => r.event === 'kafka.sasl.authentication_failed' && (r.details?.['failedAuthentications'] as Record<string, { subject?: number }> | undefined)?.['kafka-brute-force']?.subject === 5);
  assert.equal(failures.length, 1, 'each failure is audited with the reason and the count');
  assert.match(failures[0]!.reason!, /SASL OAUTHBEARER authentication failed/);
  const admin = stack.kafkaClient({ ...ADMIN, clientId: 'e2e-flagged' }).admin({ retry: { retries: 0 } });
  await admin.connect();
  try {
    await assert.rejects(admin.deleteTopics({ topics: [DOOMED_TOPIC], timeout: 5000 }), AWAITS_APPROVAL);
    const [flagged] = await auditWhere((r) => r.event === 'kafka.signal.flagged' && r.principal?.subject === ADMIN.sub);
    assert.equal(flagged?.details?.['observed'], 5);
    assert.equal(flagged?.details?.['threshold'], 5);
    const [ticket] = await auditWhere((r) => r.event === 'kafka.request.denied' && r.rule === 'flagged-sessions-need-approval-to-delete');
    assert.match(ticket!.reason!, /^a session after failed logins may not delete topics alone: approval apr_\w+ awaits an approver of security/);
    const direct = stack.directKafka().admin();
    await direct.connect();
    try {
      assert.ok((await direct.listTopics()).includes(DOOMED_TOPIC), 'the topic is still there');
    } finally {
      await direct.disconnect();
    }
    // A security officer approves: the retry deletes the topic.
    await approve(approvalOf(ticket)!.id!, { sub: 'sec-officer', groups: ['security'] });
    await admin.deleteTopics({ topics: [DOOMED_TOPIC], timeout: 5000 });
    const [deleted] = await auditWhere((r) => r.event === 'kafka.request' && r.details?.['api'] === 'DeleteTopics' && approvalOf(r)?.state === 'approved');
    assert.equal(approvalOf(deleted)?.id, approvalOf(ticket)?.id);
  } finally {
    await admin.disconnect();
  }
  assert.ok(await alerted((a) => a.event === 'kafka.signal.flagged'), 'the flag reached the webhook');
});

test('a replayed record is refused: an old timestamp, and a payload already produced; shadow rules only say what they would do', async () => {
  const producer = stack.kafkaClient({ ...ANALYST, clientId: 'e2e-replay' }).producer({ retry: { retries: 0 } });
  await producer.connect();
  try {
    // kafkajs speaks Produce v7: a refused partition is POLICY_VIOLATION there (INVALID_RECORD with the reason from v8).
    const refusal = /do not satisfy the configured policy/;
    await assert.rejects(producer.send({ topic: REPLAY_TOPIC, messages: [{ key: 'old', value: '{"amount":5}', timestamp: String(Date.now() - 86_400_000) }] }), refusal);
    const event = `{"transfer":"${randomBytes(8).toString('hex')}","amount":10}`;
    await producer.send({ topic: REPLAY_TOPIC, messages: [{ key: 'tx', value: event }] });
    await assert.rejects(producer.send({ topic: REPLAY_TOPIC, messages: [{ key: 'tx', value: event }] }), refusal);
  } finally {
    await producer.disconnect();
  }
  const replays = await auditWhere((r) => r.event === 'kafka.signal.replay', 2);
  assert.deepEqual(replays.map((r) => r.details?.['measure']), ['recordAgeMs', 'duplicatePayload']);
  assert.ok((replays[0]!.details?.['observed'] as number) > 3_600_000);
  const refused = await auditWhere((r) => r.event === 'kafka.request.denied' && r.details?.['api'] === 'Produce' && r.principal?.subject === 'alice', 2);
  assert.equal(refused.length, 2);
  assert.match(JSON.stringify(refused[1]!.details?.['rejected']), /repeats the key and value/);
  // The shadow burst rule would have refused the second produce; it only said so.
  const shadowed = stack.auditRecords().filter((r) => r.details?.['api'] === 'Produce' && signalsOf(r).some((s) => s['signal'] === 'produce-bursts-shadow' && s['shadow'] === true));
  assert.ok(shadowed.length >= 1, 'a shadow observation in a Produce record');
  const direct = stack.directKafka().consumer({ groupId: `direct-${Date.now()}` });
  await direct.connect();
  const values: string[] = [];
  await direct.subscribe({ topic: REPLAY_TOPIC, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => resolve(), 5000);
    direct.run({ eachMessage: async ({ message }) => { values.push(message.value!.toString()); if (values.length >= 1) { clearTimeout(timer); setTimeout(resolve, 1000); } } }).catch(reject);
  });
  await direct.disconnect();
  assert.equal(values.length, 1, `only the first transfer landed: ${values.join(' | ')}`);
});

function kubeRequest(method: string, path: string, token: string, body?: object): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const kube = stack.kubernetes!;
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined && { 'content-type': 'application/json' }) };
    const req = https.request(`${kube.url}${path}`, { method, ca: fs.readFileSync(kube.caFile), headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString('utf8'); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const kubeGet = (path: string, token: string) => kubeRequest('GET', path, token);

test('a burst of RBAC changes through the Kubernetes gateway is alerted, with the numbers', async () => {
  const token = await stack.mintToken('rbac-admin', ['platform-admins']);
  const suffix = Date.now().toString(36);
  for (let i = 0; i < 3; i++) {
    const res = await kubeRequest('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/demo/roles', token, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: `burst-${suffix}-${i}` }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
    });
    assert.equal(res.status, 201, `role ${i} created (an alert lets changes through): ${res.body}`);
  }
  const [burst] = await auditWhere((r) => r.event === 'kubernetes.signal.breach' && r.rule === 'rbac-change-bursts');
  assert.equal(burst!.principal?.subject, 'rbac-admin');
  assert.deepEqual([burst!.details?.['measure'], burst!.details?.['observed'], burst!.details?.['threshold']], ['changes', 3, 2]);
  assert.match(burst!.reason!, /signal rbac-change-bursts: changes of rbac-admin in the last 10m is 3, over the limit 2/);
  const [third] = await auditWhere((r) => r.event === 'kubernetes.authz.allow' && r.principal?.subject === 'rbac-admin' && signalsOf(r).some((x) => x['signal'] === 'rbac-change-bursts'));
  assert.equal(signalsOf(third!)[0]!['effect'], 'alert', 'the request that made the burst carries the observation');
  assert.ok(await alerted((a) => a.event === 'kubernetes.signal.breach' && a.rule === 'rbac-change-bursts'), 'the burst reached the webhook');
});

test('a Kubernetes list storm gets 429 TooManyRequests with Retry-After', async () => {
  const token = await stack.mintToken('ci-bot', ['ci']);
  const statuses: number[] = [];
  let throttled: { status: number; headers: http.IncomingHttpHeaders; body: string } | undefined;
  for (let i = 0; i < 12; i++) {
    const res = await kubeGet('/api/v1/namespaces/demo/configmaps', token);
    statuses.push(res.status);
    if (res.status === 429) throttled ??= res;
  }
  assert.deepEqual(statuses.slice(0, 10), Array(10).fill(200), 'the first ten lists pass');
  assert.deepEqual(statuses.slice(10), [429, 429]);
  const retryAfter = Number(throttled!.headers['retry-after']);
  assert.ok(retryAfter >= 1 && retryAfter <= 30, `Retry-After ${retryAfter}`);
  const status = JSON.parse(throttled!.body) as { kind: string; reason: string; code: number; details: { retryAfterSeconds: number } };
  assert.equal(status.kind, 'Status');
  assert.equal(status.reason, 'TooManyRequests');
  assert.equal(status.code, 429);
  assert.equal(status.details.retryAfterSeconds, retryAfter);
  assert.equal((await kubeGet('/api/v1/namespaces/demo/configmaps/app-settings', token)).status, 200, 'a get is no list');
  const [record] = await auditWhere((r) => r.event === 'kubernetes.authz.throttle' && r.rule === 'kube-list-storm');
  assert.deepEqual(signalsOf(record!).map((s) => [s['observed'], s['threshold']]), [[11, 10]]);
  assert.ok(await alerted((a) => a.event === 'kubernetes.signal.breach'));
});
