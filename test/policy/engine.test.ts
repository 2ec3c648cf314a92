import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../../src/policy/engine.ts';
import { compileGlob } from '../../src/policy/glob.ts';
import { configSchema } from '../../src/config/schema.ts';
import type { Principal } from '../../src/core/principal.ts';
import type { Action } from '../../src/core/action.ts';

const who = (subject: string, ...groups: string[]): Principal =>
  ({ subject, groups, issuer: 'https://idp.test', authenticatedBy: 'oidc' });
const get = (path: string, method = 'GET'): Action => ({ kind: 'http', method, host: 'api.test', path });

function policyOf(rules: unknown[]) {
  return compilePolicy(configSchema.parse({ rules }).rules);
}

test('globs: no wildcard is exact, a trailing * is a prefix, * and ? anywhere are wildcards', () => {
  const cases: Array<[string, string, boolean]> = [
    ['orders', 'orders', true], ['orders', 'orders2', false],
    ['/admin/*', '/admin/users/7', true], ['/admin/*', '/administrator', false],
    ['admin.*', 'admin.audit-config', true], ['admin.*', 'adminXaudit', false],
    ['*.audit', 'prod.audit', true], ['t?p', 'top', true], ['t?p', 'toop', false],
    ['a+b(c)', 'a+b(c)', true], ['a+b(c)*', 'aab(c)', false],
  ];
  for (const [pattern, value, expected] of cases) assert.equal(compileGlob(pattern)(value), expected, `${pattern} vs ${value}`);
});

test('the first matching rule wins and its name is the decision rule', () => {
  const policy = policyOf([
    { name: 'admins-everything', match: { group: 'admins' }, effect: 'allow' },
    { name: 'no-admin-routes', match: { http: { path: '/admin/*' } }, effect: 'deny' },
    { name: 'api-open', match: { http: { path: '/*' } }, effect: 'allow' },
  ]);
  assert.deepEqual(policy.decide(who('root', 'admins'), get('/admin/x')), { effect: 'allow', rule: 'admins-everything', reason: 'allowed by rule admins-everything' });
  assert.equal(policy.decide(who('bob'), get('/admin/x')).rule, 'no-admin-routes');
  assert.equal(policy.decide(who('bob'), get('/admin/x')).effect, 'deny');
  assert.equal(policy.decide(who('bob'), get('/api/customers')).rule, 'api-open');
});

test('nothing matching is a deny by no rule', () => {
  const policy = policyOf([{ name: 'only-api', match: { http: { path: '/api/*' } }, effect: 'allow' }]);
  const d = policy.decide(who('bob'), get('/other'));
  assert.equal(d.effect, 'deny');
  assert.equal(d.rule, null);
});

test('unless exempts the named principals from a rule, so a later rule decides for them', () => {
  const policy = policyOf([
    { name: 'admin-routes-are-admin-only', match: { http: { path: '/admin/*' } }, unless: { group: 'platform-admins' }, effect: 'deny' },
    { name: 'rest', match: {}, effect: 'allow' },
  ]);
  assert.equal(policy.decide(who('alice', 'analysts'), get('/admin/a')).effect, 'deny');
  assert.equal(policy.decide(who('pat', 'platform-admins'), get('/admin/a')).rule, 'rest');
});

test('method, host, subject and issuer conditions all have to hold', () => {
  const policy = policyOf([
    { name: 'ci-reads', match: { subject: 'ci-*', issuer: 'https://idp.test', http: { method: ['GET', 'HEAD'], host: 'api.*' } }, effect: 'allow' },
  ]);
  assert.equal(policy.decide(who('ci-bot'), get('/x')).effect, 'allow');
  assert.equal(policy.decide(who('ci-bot'), get('/x', 'DELETE')).effect, 'deny');
  assert.equal(policy.decide(who('alice'), get('/x')).effect, 'deny');
  assert.equal(policy.decide({ ...who('ci-bot'), issuer: 'https://other' }, get('/x')).effect, 'deny');
});

test('an http rule never matches Kafka requests and a kafka rule never matches HTTP ones', () => {
  const policy = policyOf([
    { name: 'http-all', match: { http: {} }, effect: 'allow' },
    { name: 'analysts-consume', match: { group: 'analysts', kafka: { operation: 'consume', topic: ['orders', 'payments'] } }, effect: 'allow' },
    { name: 'no-topic-deletion', match: { kafka: { api: 'DeleteTopics' } }, unless: { group: 'platform-admins' }, effect: 'deny' },
  ]);
  const consume = (topic: string): Action => ({ kind: 'kafka', api: 'Fetch', operation: 'consume', topic });
  assert.equal(policy.decide(who('alice', 'analysts'), consume('payments')).rule, 'analysts-consume');
  assert.equal(policy.decide(who('alice', 'analysts'), consume('secrets')).rule, null);
  assert.equal(policy.decide(who('bob'), { kind: 'kafka', api: 'DeleteTopics', operation: 'admin', topic: 'orders' }).rule, 'no-topic-deletion');
  assert.equal(policy.decide(who('alice', 'analysts'), get('/anything')).rule, 'http-all');
});

test('allowing produce or consume on a topic also allows describing it; a deny widens nothing', () => {
  const policy = policyOf([
    { name: 'no-admin-writes', match: { kafka: { operation: 'produce', topic: 'admin.*' } }, effect: 'deny' },
    { name: 'writers', match: { group: 'writers', kafka: { operation: 'produce', topic: ['orders', 'admin.*'] } }, effect: 'allow' },
    { name: 'txn', match: { kafka: { operation: 'produce', transactionalId: 'billing-*' } }, effect: 'allow' },
  ]);
  const describe = (topic: string): Action => ({ kind: 'kafka', api: 'Metadata', operation: 'describe', topic });
  assert.equal(policy.decide(who('w', 'writers'), describe('orders')).rule, 'writers');
  // The deny of produce on admin.* does not hide the topic: the allow further down still grants describe.
  assert.equal(policy.decide(who('w', 'writers'), describe('admin.audit')).rule, 'writers');
  assert.equal(policy.decide(who('w', 'writers'), { kind: 'kafka', api: 'Produce', operation: 'produce', topic: 'admin.audit' }).rule, 'no-admin-writes');
  assert.equal(policy.decide(who('w', 'writers'), { kind: 'kafka', api: 'Fetch', operation: 'consume', topic: 'orders' }).effect, 'deny');
  assert.equal(policy.decide(who('x'), { kind: 'kafka', api: 'InitProducerId', operation: 'produce', transactionalId: 'billing-1' }).rule, 'txn');
  assert.equal(policy.decide(who('x'), { kind: 'kafka', api: 'InitProducerId', operation: 'produce', transactionalId: 'other' }).effect, 'deny');
});

test('mayMaskKafka: whether any masking rule can touch a principal\'s Kafka traffic, from the principal alone', () => {
  const policy = policyOf([
    { name: 'mask-payments', match: { group: 'analysts', kafka: { topic: 'payments' } }, unless: { subject: 'auditor' }, mask: { fields: { '$.card.number': 'keep-last-4' }, keys: true, headers: ['x-email'] } },
    { name: 'mask-http-only', match: { group: 'support', http: { path: '/api/*' } }, mask: { detectors: ['email'] } },
  ]);
  assert.equal(policy.mayMaskKafka(who('ann', 'analysts')), true);
  assert.equal(policy.mayMaskKafka(who('auditor', 'analysts')), false, 'exempted by unless');
  assert.equal(policy.mayMaskKafka(who('sam', 'support')), false, 'an HTTP-only rule never masks Kafka');
  const [plan] = policy.masks(who('ann', 'analysts'), { kind: 'kafka', api: 'Fetch', operation: 'consume', topic: 'payments' });
  assert.equal(plan?.keys, true);
  assert.deepEqual(plan?.headers, ['x-email']);
  assert.equal(configSchema.parse({ rules: [{ name: 'r', mask: { detectors: ['card'], onUndecodable: 'fail-fetch' } }] }).rules[0]!.mask!.onUndecodable, 'fail');
});
