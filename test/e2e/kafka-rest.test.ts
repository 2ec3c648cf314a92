/**
 * Kafka REST Proxy clients through the real Envoy and tollgate get the same policy as wire clients: the quickstart's
 * rules, the HTTP edge listener routing `kafka-rest.test` to a REST v3/v2-shaped proxy (scripts/lib/
 * rest-proxy-upstream.ts) that writes to and reads from the stack's real Kafka broker. What landed is read back from
 * the broker directly, behind tollgate's back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import { startRestProxyUpstream, type RestProxyUpstream } from '../../scripts/lib/rest-proxy-upstream.ts';
import { LOOPBACK } from '../../scripts/lib/ports.ts';
import type { AuditRecord } from '../../src/audit/record.ts';

const REST_HOST = 'kafka-rest.test';
const ANALYST = { sub: 'ann', groups: ['analysts'] } as const;
const PAYMENTS = { sub: 'payments-app', groups: ['payments-admin'] } as const;

let stack: Stack;
let proxy: RestProxyUpstream;
let cluster: string;
const tokens: Record<string, string> = {};

before(async () => {
  proxy = await startRestProxyUpstream();
  stack = await startStack({
    httpUpstreams: [{ name: 'kafka_rest', domains: [REST_HOST, `${REST_HOST}:*`], port: proxy.port }],
    editConfig: (config) => {
      (config['http'] as Record<string, unknown>)['kafkaRest'] = { hosts: [REST_HOST, `${REST_HOST}:*`] };
      // REST clients start by asking for the cluster id (GET /v3/clusters, a DescribeCluster).
      (config['rules'] as unknown[]).splice(1, 0, {
        name: 'e2e-rest-clients-may-describe-the-cluster',
        match: { group: ['analysts', 'payments-admin'], kafka: { api: 'DescribeCluster' } },
        effect: 'allow',
      });
    },
  });
  await proxy.attach(stack.directKafka('e2e-rest-proxy'));
  tokens['ann'] = await stack.mintToken(ANALYST.sub, ANALYST.groups, 3600);
  tokens['payments-app'] = await stack.mintToken(PAYMENTS.sub, PAYMENTS.groups, 3600);
  const clusters = await rest('GET', '/v3/clusters', 'ann');
  assert.equal(clusters.status, 200, clusters.text);
  cluster = (clusters.json() as { data: Array<{ cluster_id: string }> }).data[0]!.cluster_id;
});

after(async () => {
  await proxy?.close();
  await stack?.stop();
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): unknown;
}

/** One request to the REST Proxy host through Envoy's edge listener. */
function rest(method: string, path: string, who: string, body?: unknown, contentType = 'application/json'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request({
      host: LOOPBACK, port: stack.ports.httpListener, method, path,
      headers: {
        host: REST_HOST, authorization: `Bearer ${tokens[who]}`,
        ...(payload !== undefined && { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) }),
      },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Every record value in `topic`, read on the harness's direct path up to the partition's end. */
async function topicValues(topic: string): Promise<string[]> {
  const admin = stack.directKafka('e2e-rest-check').admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const end = offsets.reduce((n, p) => n + Number(p.high), 0);
  if (end === 0) return [];
  const consumer = stack.directKafka('e2e-rest-check').consumer({ groupId: `e2e-rest-check-${randomUUID()}` });
  await consumer.connect();
  const values: string[] = [];
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${values.length} of ${end} records of ${topic} within 30 s`)), 30_000);
      consumer.run({
        eachMessage: async ({ message }) => {
          values.push(message.value?.toString() ?? '');
          if (values.length >= end) { clearTimeout(timer); resolve(); }
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return values;
}

async function auditRecord(what: string, filter: (r: AuditRecord) => boolean): Promise<AuditRecord> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = stack.auditRecords().find(filter);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no audit record ${what} within 10 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const CARD = '4111 1111 1111 1111';
const v3Record = (data: unknown) => ({ value: { type: 'JSON', data } });

test('an analyst produces to analytics through REST: a clean record lands, one carrying a card number is refused and does not', async () => {
  const run = randomUUID();
  const records = `/v3/clusters/${cluster}/topics/analytics/records`;
  const clean = await rest('POST', records, 'ann', v3Record({ run, n: 'clean' }));
  assert.equal(clean.status, 200, clean.text);
  assert.equal((clean.json() as { error_code: number }).error_code, 200);

  const refused = await rest('POST', records, 'ann', v3Record({ run, n: 'card', card: CARD }));
  assert.equal(refused.status, 422);
  assert.deepEqual(refused.json(), {
    error_code: 422,
    message: 'record 0 of the stream to topic "analytics" is refused, and the stream stops there (the records before it went on): rule no-card-numbers-in-analytics: the record carries a card value',
  });

  // v3 batch and v2: the request is refused whole, its clean records included.
  const batch = await rest('POST', `${records}:batch`, 'ann', { entries: [{ id: '1', ...v3Record({ run, n: 'batch-clean' }) }, { id: '2', ...v3Record({ run, n: 'batch-card', note: `pay with ${CARD}` }) }] });
  assert.equal(batch.status, 422);
  assert.match((batch.json() as { message: string }).message, /^record 1 of 2 to topic "analytics" is refused, so none of them is written: rule no-card-numbers-in-analytics/);
  const v2 = await rest('POST', '/topics/analytics', 'ann', { records: [{ value: { run, n: 'v2-clean' } }, { value: { run, n: 'v2-card', card: CARD } }] }, 'application/vnd.kafka.json.v2+json');
  assert.equal(v2.status, 422);
  const v2Clean = await rest('POST', '/topics/analytics', 'ann', { records: [{ value: { run, n: 'v2-only-clean' } }] }, 'application/vnd.kafka.json.v2+json');
  assert.equal(v2Clean.status, 200, v2Clean.text);

  const landed = (await topicValues('analytics')).filter((v) => v.includes(run)).map((v) => (JSON.parse(v) as { n: string }).n);
  assert.deepEqual(landed, ['clean', 'v2-only-clean'], 'only the clean requests landed on the broker');

  const audit = await auditRecord('of the refused record', (r) => r.event === 'kafka.rest.produce.rejected' && r.principal?.subject === 'ann');
  assert.equal(audit.path, 'kafka');
  assert.equal(audit.rule, 'no-card-numbers-in-analytics');
  assert.equal((audit.details as { kafkaRest: { operation: string } }).kafkaRest.operation, 'produceRecord');
  assert.ok(!JSON.stringify(stack.auditRecords()).includes('4111'), 'no audit record holds the card number');
});

test('a v3 streaming produce: records before a refused one land, the stream stops at it, nothing after it lands', async () => {
  const run = randomUUID();
  const req = http.request({
    host: LOOPBACK, port: stack.ports.httpListener, method: 'POST', path: `/v3/clusters/${cluster}/topics/analytics/records`,
    headers: { host: REST_HOST, authorization: `Bearer ${tokens['ann']}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
  });
  const acks: Array<{ error_code: number; offset?: number; message?: string }> = [];
  let ackWaiter: (() => void) | undefined;
  const outcome = new Promise<{ status: number; ended: 'cleanly' | 'in an error' }>((resolve) => {
    req.on('response', (res) => {
      let pending = '';
      res.on('data', (chunk: Buffer) => {
        pending += chunk.toString();
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const line of lines) if (line.trim() !== '') acks.push(JSON.parse(line));
        ackWaiter?.();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ended: 'cleanly' }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, ended: 'in an error' }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, ended: 'in an error' }));
    });
    req.on('error', () => resolve({ status: 0, ended: 'in an error' }));
  });
  const ackFor = (count: number) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${acks.length} of ${count} acknowledgements within 20 s`)), 20_000);
    const check = () => { if (acks.length >= count) { clearTimeout(timer); ackWaiter = undefined; resolve(); } };
    ackWaiter = check;
    check();
  });
  // Record by record, each acknowledged before the next is sent: a producer streaming as events happen.
  req.write(JSON.stringify(v3Record({ run, n: 1 })));
  await ackFor(1);
  req.write(`\n${JSON.stringify(v3Record({ run, n: 2 }))}\n`);
  await ackFor(2);
  req.write(JSON.stringify(v3Record({ run, n: 3, card: CARD })));
  req.write(JSON.stringify(v3Record({ run, n: 4 })));
  const result = await outcome;
  req.destroy();

  assert.deepEqual(acks.map((a) => a.error_code), [200, 200], 'the two records before the refused one were acknowledged');
  assert.equal(result.status, 200, 'the proxy had started its streamed answer');
  assert.equal(result.ended, 'in an error', 'the stream does not end cleanly: no record after the refused one passes as sent');
  const landed = (await topicValues('analytics')).filter((v) => v.includes(run)).map((v) => (JSON.parse(v) as { n: number }).n);
  assert.deepEqual(landed, [1, 2]);
  const audit = await auditRecord('of the stopped stream', (r) => r.event === 'kafka.rest.produce.rejected' && (r.details as { record?: number }).record === 2);
  assert.equal((audit.details as { passedRecords: number }).passedRecords, 2);
});

/** A v2 consumer instance of `group` reading `subscription` until `enough` says it has what it needs. */
async function consumeV2(who: string, group: string, subscription: object, enough: (records: Array<{ topic: string; value: any }>) => boolean) {
  const instance = `${who}-${randomUUID().slice(0, 8)}`;
  const created = await rest('POST', `/consumers/${group}`, who, { name: instance, format: 'json', 'auto.offset.reset': 'earliest' }, 'application/vnd.kafka.v2+json');
  assert.equal(created.status, 200, created.text);
  const base = `/consumers/${group}/instances/${instance}`;
  try {
    const subscribed = await rest('POST', `${base}/subscription`, who, subscription, 'application/vnd.kafka.v2+json');
    assert.equal(subscribed.status, 204, subscribed.text);
    const records: Array<{ topic: string; value: any }> = [];
    const deadline = Date.now() + 60_000;
    while (!enough(records)) {
      if (Date.now() > deadline) throw new Error(`${who}: not enough records within 60 s (${records.length} read)`);
      const read = await rest('GET', `${base}/records?timeout=2000`, who);
      assert.equal(read.status, 200, read.text);
      records.push(...(read.json() as typeof records));
    }
    return records;
  } finally {
    await rest('DELETE', base, who);
  }
}

test('a REST consumer in analysts reads payments with card numbers and emails masked; payments-admin reads them plain', async () => {
  const run = randomUUID();
  const payments = [0, 1].map((i) => ({ run, id: i, card: { number: '4111111111111111', expiry: '12/29' }, customer: { name: 'Ann Example', email: `ann.${i}@example.com` } }));
  const produced = await rest('POST', '/topics/payments', 'payments-app', { records: payments.map((value) => ({ value })) }, 'application/vnd.kafka.json.v2+json');
  assert.equal(produced.status, 200, produced.text);

  const ours = (records: Array<{ value: any }>) => records.filter((r) => r.value?.run === run);
  const masked = ours(await consumeV2('ann', 'analytics-rest', { topics: ['payments'] }, (r) => ours(r).length >= 2));
  assert.deepEqual(masked.map((r) => [r.value.card.number, r.value.customer.email, r.value.customer.name]), [
    ['************1111', '[REDACTED]', 'Ann Example'], ['************1111', '[REDACTED]', 'Ann Example'],
  ]);
  const plain = ours(await consumeV2('payments-app', 'payments-rest', { topics: ['payments'] }, (r) => ours(r).length >= 2));
  assert.deepEqual(plain.map((r) => r.value), payments);
  assert.deepEqual((await topicValues('payments')).filter((v) => v.includes(run)).map((v) => JSON.parse(v)), payments, 'the broker holds the original');
});

test('records of topics an analyst may not read are left out of a pattern subscription; naming such a topic is refused', async () => {
  const run = randomUUID();
  await rest('POST', '/topics/payments', 'payments-app', { records: [{ value: { run, id: 'p' } }] }, 'application/vnd.kafka.json.v2+json');
  const landed = await rest('POST', `/v3/clusters/${cluster}/topics/analytics/records`, 'ann', v3Record({ run, id: 'a' }));
  assert.equal(landed.status, 200, landed.text);
  // Read until our payments record is in and tollgate has left out analytics records (analytics has records since
  // the tests above; which read they come in is up to the consumer).
  const droppedAnalytics = (r: AuditRecord) => r.event === 'kafka.rest.consume' && r.principal?.subject === 'ann'
    && ((r.details as { droppedTopics?: string[] }).droppedTopics ?? []).includes('analytics');
  const records = await consumeV2('ann', 'analytics-pattern', { topic_pattern: '^(payments|analytics)$' },
    (r) => r.some((x) => x.value?.run === run) && stack.auditRecords().some(droppedAnalytics));
  assert.deepEqual([...new Set(records.map((r) => r.topic))], ['payments'], 'analytics records (analysts may only write there) are left out');
  const audit = await auditRecord('of dropped records', droppedAnalytics);
  assert.ok((audit.details as { droppedRecords: number }).droppedRecords > 0);

  const instance = await rest('POST', '/consumers/analytics-named', 'ann', { name: 'named', format: 'json' }, 'application/vnd.kafka.v2+json');
  assert.equal(instance.status, 200);
  const named = await rest('POST', '/consumers/analytics-named/instances/named/subscription', 'ann', { topics: ['payments', 'analytics'] }, 'application/vnd.kafka.v2+json');
  assert.equal(named.status, 403);
  assert.deepEqual(named.json(), { error_code: 40301, message: 'Fetch (consume) on topic "analytics", named in the request body: no rule allows this request' });
  await rest('DELETE', '/consumers/analytics-named/instances/named', 'ann');
});

test('the topic listing holds only the topics the caller may describe, as wire Metadata does', async () => {
  const direct = await fetch(`http://${LOOPBACK}:${proxy.port}/v3/clusters/${cluster}/topics`);
  const all = ((await direct.json()) as { data: Array<{ topic_name: string }> }).data.map((t) => t.topic_name);
  assert.ok(all.includes('admin.audit-config'), `the proxy itself lists every topic: ${all.join(', ')}`);

  const names = async (who: string) => {
    const res = await rest('GET', `/v3/clusters/${cluster}/topics`, who);
    assert.equal(res.status, 200, res.text);
    return (res.json() as { data: Array<{ topic_name: string }> }).data.map((t) => t.topic_name);
  };
  assert.deepEqual(await names('ann'), ['analytics', 'orders', 'payments']);
  assert.deepEqual(await names('payments-app'), ['payments']);
});

test('an unknown /v3 path and a path outside the proxy API are denied in the proxy\'s error shape and never reach it', async () => {
  const before = proxy.seen.length;
  const links = await rest('GET', `/v3/clusters/${cluster}/links`, 'ann');
  assert.equal(links.status, 403);
  assert.deepEqual(links.json(), {
    error_code: 40301,
    message: `not a Kafka REST Proxy request tollgate knows: /v3/clusters/${cluster}/links is not a Kafka REST Proxy path tollgate knows`,
  });
  const metrics = await rest('GET', '/metrics', 'ann');
  assert.equal(metrics.status, 403);
  assert.equal((metrics.json() as { error_code: number }).error_code, 40301);
  const deleted = await rest('DELETE', `/v3/clusters/${cluster}/topics/payments`, 'ann');
  assert.equal(deleted.status, 403);
  assert.deepEqual(deleted.json(), { error_code: 40301, message: 'DeleteTopics (admin) on topic "payments": approval required by rule topic-deletion-needs-approval (approvals are not taken through the Kafka REST Proxy)' });
  assert.equal(proxy.seen.length, before, 'none of them reached the proxy');
  const audit = await auditRecord('of the unknown path', (r) => r.event === 'kafka.rest.authz.deny' && (r.details as { path?: string }).path === `/v3/clusters/${cluster}/links`);
  assert.equal(audit.path, 'kafka');
});
