import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import { createHttpClassifier } from '../../src/http/action.ts';
import type { Principal } from '../../src/core/principal.ts';

const ci: Principal = { subject: 'system:serviceaccount:ci:deployer', groups: ['ci'], issuer: 'https://kubernetes.default.svc', authenticatedBy: 'kubernetes' };
const sre: Principal = { subject: 'sam', groups: ['sre'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const classify = createHttpClassifier({ hosts: 'kube.test' });
const kube = (method: string, path: string, headers: Record<string, string> = {}) => classify(method, 'kube.test', path, headers);

function policyOf(rules: unknown[]) {
  return compilePolicy(configSchema.parse({ http: { kubernetes: { hosts: 'kube.test' } }, rules }).rules);
}

// The rules the issue names, in the order an operator would write them.
const policy = policyOf([
  { name: 'no-cluster-wide-secrets-for-ci', match: { group: 'ci', kubernetes: { verb: ['list', 'watch'], resource: 'secrets', scope: 'cluster' } }, effect: 'deny' },
  { name: 'namespaces-are-never-deleted', match: { kubernetes: { verb: ['delete', 'deletecollection'], resource: 'namespaces' } }, effect: 'deny' },
  { name: 'no-exec-in-prod', match: { kubernetes: { resource: ['pods/exec', 'pods/attach'], namespace: 'prod' } }, effect: 'deny' },
  { name: 'ci-reads-its-namespaces', match: { group: 'ci', kubernetes: { verb: ['get', 'list', 'watch'], resource: ['pods', 'configmaps', 'secrets'], namespace: ['ci', 'demo'] } }, effect: 'allow' },
  { name: 'discovery', match: { kubernetes: { path: ['/api', '/apis', '/apis/*', '/version', '/openapi/*'] } }, effect: 'allow' },
  { name: 'sre-everything-else', match: { group: 'sre', kubernetes: {} }, effect: 'allow' },
]);

test('kubernetes rules match the attributes the API server derives, not raw paths', () => {
  const cases: Array<[Principal, string, string, string | null, 'allow' | 'deny']> = [
    [ci, 'GET', '/api/v1/secrets', 'no-cluster-wide-secrets-for-ci', 'deny'],
    [ci, 'GET', '/api/v1/secrets?watch=true', 'no-cluster-wide-secrets-for-ci', 'deny'],
    [ci, 'GET', '/api/v1/namespaces/demo/secrets', 'ci-reads-its-namespaces', 'allow'],
    [ci, 'GET', '/api/v1/namespaces/demo/secrets/db-credentials', 'ci-reads-its-namespaces', 'allow'],
    [ci, 'GET', '/api/v1/namespaces/kube-system/secrets', null, 'deny'],
    [ci, 'DELETE', '/api/v1/namespaces/demo', 'namespaces-are-never-deleted', 'deny'],
    [sre, 'DELETE', '/api/v1/namespaces/demo', 'namespaces-are-never-deleted', 'deny'],
    [sre, 'POST', '/api/v1/namespaces/prod/pods/web/exec?command=sh', 'no-exec-in-prod', 'deny'],
    [sre, 'POST', '/api/v1/namespaces/stage/pods/web/exec?command=sh', 'sre-everything-else', 'allow'],
    [ci, 'GET', '/api/v1/namespaces/demo/pods/web/log', null, 'deny'],
    [ci, 'GET', '/apis/apps/v1', 'discovery', 'allow'],
    [ci, 'GET', '/version', 'discovery', 'allow'],
  ];
  for (const [who, method, path, rule, effect] of cases) {
    const d = policy.decide(who, kube(method, path));
    assert.deepEqual([d.rule, d.effect], [rule, effect], `${who.subject} ${method} ${path}`);
  }
});

test('`pods` does not match a subresource of pods; `pods/*` matches every one', () => {
  const p = policyOf([
    { name: 'pods-only', match: { kubernetes: { resource: 'pods' } }, effect: 'allow' },
    { name: 'pod-subresources', match: { kubernetes: { resource: 'pods/*' } }, effect: 'deny' },
  ]);
  assert.equal(p.decide(sre, kube('GET', '/api/v1/namespaces/a/pods/web')).rule, 'pods-only');
  assert.equal(p.decide(sre, kube('GET', '/api/v1/namespaces/a/pods/web/log')).rule, 'pod-subresources');
});

test('api group "" is the core group and only the core group', () => {
  const p = policyOf([{ name: 'core-only', match: { kubernetes: { apiGroup: '' } }, effect: 'allow' }]);
  assert.equal(p.decide(sre, kube('GET', '/api/v1/namespaces/a/configmaps')).effect, 'allow');
  assert.equal(p.decide(sre, kube('GET', '/apis/apps/v1/namespaces/a/deployments')).effect, 'deny');
});

test('a kubernetes rule never matches plain HTTP, and requests to other hosts are plain HTTP', () => {
  const p = policyOf([{ name: 'kube', match: { kubernetes: {} }, effect: 'allow' }]);
  assert.equal(p.decide(sre, classify('GET', 'api.test', '/api/v1/pods', {})).effect, 'deny');
  assert.equal(p.decide(sre, kube('GET', '/api/v1/pods')).effect, 'allow');
});

test('dry-run requests can be told apart', () => {
  const p = policyOf([{ name: 'dry-runs-only', match: { kubernetes: { verb: 'create', dryRun: true } }, effect: 'allow' }]);
  assert.equal(p.decide(sre, kube('POST', '/api/v1/namespaces/a/pods?dryRun=All')).effect, 'allow');
  assert.equal(p.decide(sre, kube('POST', '/api/v1/namespaces/a/pods')).effect, 'deny');
});

test('a shadow rule is reported, does not decide, and the next rule decides', () => {
  const p = policyOf([
    { name: 'would-deny-secrets', match: { kubernetes: { resource: 'secrets' } }, effect: 'deny', shadow: true },
    { name: 'allow-all', match: {}, effect: 'allow' },
  ]);
  const d = p.decide(sre, kube('GET', '/api/v1/namespaces/a/secrets'));
  assert.equal(d.rule, 'allow-all');
  assert.equal(d.effect, 'allow');
  assert.deepEqual(d.shadow, [{ rule: 'would-deny-secrets', effect: 'deny', reason: 'denied by rule would-deny-secrets' }]);
  assert.equal(p.decide(sre, kube('GET', '/api/v1/namespaces/a/pods')).shadow, undefined);
});

test('shadow masking rules do not mask; they are listed by shadowMasks', () => {
  const p = policyOf([
    { name: 'mask-secrets', match: { kubernetes: { resource: 'secrets' } }, mask: { fields: { '$.data.*': 'redact' } }, shadow: true },
  ]);
  const action = kube('GET', '/api/v1/namespaces/a/secrets/s');
  assert.deepEqual(p.masks(sre, action), []);
  assert.deepEqual(p.shadowMasks(sre, action), ['mask-secrets']);
});

test('body rules are pending while an allow follows them, and not when the request is denied anyway', () => {
  const p = policyOf([
    { name: 'no-privileged-pods', match: { kubernetes: { verb: ['create', 'update', 'patch'], resource: 'pods' }, body: { '$..securityContext.privileged': { equals: true } } }, effect: 'deny' },
    { name: 'no-host-path', match: { kubernetes: { resource: 'pods' }, body: { '$.spec.volumes[*].hostPath': { exists: true } } }, effect: 'deny', shadow: true },
    { name: 'ci-denied', match: { group: 'ci' }, effect: 'deny' },
    { name: 'sre-all', match: { group: 'sre' }, effect: 'allow' },
  ]);
  const create = kube('POST', '/api/v1/namespaces/a/pods');
  assert.equal(p.decide(sre, create).rule, 'sre-all', 'a body rule never decides before its body is read');
  const pending = p.bodyRules(sre, create);
  assert.deepEqual(pending.map((r) => [r.rule, r.shadow]), [['no-privileged-pods', false], ['no-host-path', true]]);
  const privileged = { spec: { containers: [{ name: 'x', securityContext: { privileged: true } }] } };
  assert.equal(pending[0]!.match(privileged), '$..securityContext.privileged');
  assert.equal(pending[0]!.match({ spec: { containers: [{ securityContext: { privileged: false } }] } }), undefined);
  assert.equal(pending[1]!.match({ spec: { volumes: [{ name: 'h', hostPath: { path: '/' } }] } }), '$.spec.volumes[*].hostPath');
  assert.deepEqual(p.bodyRules(ci, create), [], 'denied anyway: nothing to read');
  assert.deepEqual(p.bodyRules(sre, kube('POST', '/api/v1/namespaces/a/configmaps')), []);
});

test('the schema refuses body conditions on anything but an HTTP deny rule', () => {
  const bad = [
    { name: 'x', match: { body: { '$.a': { equals: 1 } } }, effect: 'allow' },
    { name: 'x', match: { kafka: { topic: 't' }, body: { '$.a': { equals: 1 } } }, effect: 'deny' },
    { name: 'x', match: { kafka: {}, kubernetes: {} }, effect: 'deny' },
  ];
  for (const rule of bad) assert.equal(configSchema.safeParse({ rules: [rule] }).success, false, JSON.stringify(rule));
});

test('an http rule never matches a request to a Kubernetes API server: a path rule for a web API does not open /api', () => {
  const p = policyOf([{ name: 'web-api-open', match: { http: { path: '/api/*' } }, effect: 'allow' }]);
  assert.equal(p.decide(sre, kube('GET', '/api/v1/secrets')).effect, 'deny');
  assert.equal(p.decide(sre, classify('GET', 'web.test', '/api/v1/secrets', {})).effect, 'allow');
});
