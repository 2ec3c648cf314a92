/**
 * ext_authz for Kafka REST Proxy hosts (config `http.kafkaRest`): a request is allowed only when every Kafka action it
 * amounts to is, by the same rules as a wire client's; unknown requests and paths outside the API are denied; denials
 * are the proxy's error objects and audit records sit on the `kafka` path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createAuthzHandler, type CheckRequestLike } from '../../src/http/authz.ts';
import { createHttpClassifier, kafkaRestRequest } from '../../src/http/action.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import type { Principal } from '../../src/core/principal.ts';

const PRINCIPALS: Record<string, Principal> = {
  'Bearer ann': { subject: 'ann', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' },
};

const config = configSchema.parse({
  http: { kafkaRest: { hosts: ['rest.test', 'rest.test:*'] }, kubernetes: { hosts: 'kube.test' } },
  rules: [
    { name: 'analysts-produce-analytics', match: { group: 'analysts', kafka: { operation: 'produce', topic: 'analytics' } }, effect: 'allow' },
    { name: 'analysts-read-payments', match: { group: 'analysts', kafka: { operation: 'consume', topic: 'payments' } }, effect: 'allow' },
    { name: 'analysts-describe-their-groups', match: { group: 'analysts', kafka: { operation: 'describe', group: 'analytics-*' } }, effect: 'allow' },
    { name: 'watch-deletes', match: { kafka: { api: 'DeleteTopics' } }, effect: 'deny', shadow: true },
    { name: 'everything-else-over-http', match: { http: { path: '/*' } }, effect: 'allow' },
  ],
});

function setup(cfg = config) {
  const audit: AuditRecord[] = [];
  const policy = compilePolicy(cfg.rules);
  const classify = createHttpClassifier(cfg.http.kubernetes, cfg.http.kafkaRest);
  const check = createAuthzHandler({
    authenticate: async ({ authorization }) => {
      const p = authorization === undefined ? undefined : PRINCIPALS[authorization];
      if (!p) throw Object.assign(new Error('no bearer token in the Authorization header'), { code: 'token_missing' });
      return p;
    },
    policy: () => policy,
    credentials: () => [],
    classify: () => classify,
    audit: { write: (r) => audit.push(r) },
    logger: pino({ level: 'silent' }),
  });
  return { check, audit };
}

const request = (method: string, path: string, host = 'rest.test', token: string | null = 'Bearer ann'): CheckRequestLike => ({
  attributes: { request: { http: { method, path, host, headers: { ':path': path, ...(token !== null && { authorization: token }) } } } },
});

const C = '/v3/clusters/lkc-1';

test('a REST produce to a topic the analyst may write is allowed by the Kafka rule, audited on the kafka path', async () => {
  const { check, audit } = setup();
  const res = await check(request('POST', `${C}/topics/analytics/records`));
  assert.equal(res.status.code, 0);
  assert.equal(res.dynamic_metadata?.fields['rule']?.stringValue, 'analysts-produce-analytics');
  assert.equal(audit[0]?.path, 'kafka');
  assert.equal(audit[0]?.event, 'kafka.rest.authz.allow');
  assert.equal(audit[0]?.rule, 'analysts-produce-analytics');
  assert.deepEqual((audit[0]?.details as any).kafkaRest, {
    version: 'v3', operation: 'produceRecord', cluster: 'lkc-1', topics: ['analytics'], actions: ['Produce produce topic=analytics'],
  });
});

test('a REST produce to a topic the analyst may only read is denied in the proxy\'s error shape, naming the action', async () => {
  const { check, audit } = setup();
  const res = await check(request('POST', `${C}/topics/payments/records`));
  assert.equal(res.status.code, 7);
  assert.equal(res.denied_response?.status.code, 403);
  assert.deepEqual(JSON.parse(res.denied_response!.body), {
    error_code: 40301, message: 'Produce (produce) on topic "payments": no rule allows this request',
  });
  assert.equal(audit[0]?.event, 'kafka.rest.authz.deny');
  assert.equal(audit[0]?.rule, 'default');
});

test('HTTP rules do not reach REST Proxy hosts: the Kafka rules alone decide there', async () => {
  const { check } = setup();
  // `everything-else-over-http` allows any path as HTTP; on the REST host the same path is a DeleteTopics.
  const res = await check(request('DELETE', `${C}/topics/analytics`));
  assert.equal(res.denied_response?.status.code, 403);
  assert.match(JSON.parse(res.denied_response!.body).message, /^DeleteTopics \(admin\) on topic "analytics": no rule allows this request$/);
  // The same path on another host is plain HTTP.
  assert.equal((await check(request('DELETE', `${C}/topics/analytics`, 'api.test'))).status.code, 0);
});

test('a rule that denies is named in the message; every action must be allowed, the first denied one decides', async () => {
  const cfg = configSchema.parse({
    http: { kafkaRest: { hosts: 'rest.test' } },
    rules: [
      { name: 'analysts-describe-their-groups', match: { group: 'analysts', kafka: { operation: 'describe', group: 'analytics-*' } }, effect: 'allow' },
      { name: 'offsets-are-private', match: { kafka: { api: 'OffsetFetch' } }, effect: 'deny', description: 'committed offsets are private' },
    ],
  });
  const { check, audit } = setup(cfg);
  const res = await check(request('GET', `${C}/consumer-groups/analytics-1/lag-summary`));
  assert.deepEqual(JSON.parse(res.denied_response!.body), {
    error_code: 40301, message: 'OffsetFetch (consume) on group "analytics-1": committed offsets are private (tollgate rule offsets-are-private)',
  });
  assert.equal(audit[0]?.rule, 'offsets-are-private');
  assert.deepEqual((audit[0]?.details as any).kafkaRest.groups, ['analytics-1']);
  assert.equal((await check(request('GET', `${C}/consumer-groups/analytics-1`))).status.code, 0);
});

test('unknown REST paths and methods, and paths outside the proxy API, are denied (fail closed)', async () => {
  const { check, audit } = setup();
  for (const [method, path, message] of [
    ['GET', `${C}/links`, /^not a Kafka REST Proxy request tollgate knows: \/v3\/clusters\/lkc-1\/links is not a Kafka REST Proxy path tollgate knows$/],
    ['PUT', `${C}/topics/analytics/records`, /PUT is not a Kafka REST Proxy operation/],
    ['GET', `${C}/topics/a%2Fb`, /is not a path segment tollgate judges/],
    ['GET', '/metrics', /"\/metrics" is outside the Kafka REST Proxy API/],
    ['GET', '/', /"\/" is outside the Kafka REST Proxy API/],
  ] as const) {
    const res = await check(request(method, path));
    assert.equal(res.denied_response?.status.code, 403, `${method} ${path}`);
    const body = JSON.parse(res.denied_response!.body);
    assert.equal(body.error_code, 40301);
    assert.match(body.message, message);
  }
  assert.ok(audit.every((r) => r.event === 'kafka.rest.authz.deny' && r.rule === 'default'));
  assert.equal((audit[0]?.details as any).kafkaRest.unknown, '/v3/clusters/lkc-1/links is not a Kafka REST Proxy path tollgate knows');
});

test('a listing asks nothing up front: allowed without a rule (its entries are judged in the response)', async () => {
  const { check, audit } = setup();
  const res = await check(request('GET', `${C}/topics`));
  assert.equal(res.status.code, 0);
  assert.equal(audit[0]?.event, 'kafka.rest.authz.allow');
  assert.equal(audit[0]?.rule, undefined, 'no rule decided: none is claimed');
  assert.equal(audit[0]?.reason, 'a listing: each entry is judged in the response');
});

test('shadow rules met by any of the request\'s actions are audited', async () => {
  const { check, audit } = setup();
  await check(request('DELETE', `${C}/topics/analytics`));
  assert.deepEqual((audit[0]?.details as any).shadow, [{ rule: 'watch-deletes', effect: 'deny', reason: 'denied by rule watch-deletes' }]);
});

test('no token on a REST host: 401 in the proxy\'s error shape', async () => {
  const { check, audit } = setup();
  const res = await check(request('GET', `${C}/topics`, 'rest.test:8082', null));
  assert.equal(res.denied_response?.status.code, 401);
  assert.deepEqual(JSON.parse(res.denied_response!.body), { error_code: 40101, message: 'no bearer token in the Authorization header' });
  assert.equal(audit[0]?.event, 'kafka.rest.authz.unauthenticated');
  assert.equal(audit[0]?.path, 'kafka');
});

test('a path prefix is stripped before the path is read; outside it nothing on the host is the API', () => {
  const prefix = '/kafka-rest';
  assert.deepEqual(kafkaRestRequest('POST', '/kafka-rest/v3/clusters/c/topics/t/records?x=1', prefix), kafkaRestRequest('POST', '/v3/clusters/c/topics/t/records', undefined));
  assert.equal(kafkaRestRequest('GET', '/kafka-rest/topics', prefix).kind, 'kafka');
  for (const path of ['/v3/clusters/c/topics', '/kafka-restv3/clusters', '/kafka-rest', '/kafka-rest?x=/v3', '/other/kafka-rest/topics']) {
    const r = kafkaRestRequest('GET', path, prefix);
    assert.equal(r.kind, 'unknown', path);
  }
  assert.match((kafkaRestRequest('GET', '/v3/clusters', prefix) as { reason: string }).reason, /outside the Kafka REST Proxy's path prefix \/kafka-rest/);
  // Dot segments after the prefix are unknown too: the proxy could resolve them out of what was judged.
  assert.equal(kafkaRestRequest('GET', '/kafka-rest/../v3/clusters', prefix).kind, 'unknown');
});

test('config: a path prefix must start with "/" and not end with one', () => {
  for (const pathPrefix of ['kafka', '/kafka/', '/', '/a?b']) {
    assert.throws(() => configSchema.parse({ http: { kafkaRest: { hosts: 'r', pathPrefix } } }), /expected a path prefix/, pathPrefix);
  }
  assert.equal(configSchema.parse({ http: { kafkaRest: { hosts: 'r', pathPrefix: '/a/b' } } }).http.kafkaRest?.pathPrefix, '/a/b');
});
