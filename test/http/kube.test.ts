import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kubeRequest } from '../../src/http/kube.ts';

// Given the URL shapes kubectl and client-go send, the attributes the API server itself would derive.
const cases: Array<[string, string, Record<string, unknown>]> = [
  ['GET', '/api/v1/namespaces/prod/pods', { verb: 'list', apiGroup: '', apiVersion: 'v1', resource: 'pods', namespace: 'prod' }],
  ['GET', '/api/v1/namespaces/prod/pods/web-1', { verb: 'get', resource: 'pods', namespace: 'prod', name: 'web-1' }],
  ['GET', '/api/v1/namespaces/prod/pods?watch=true&resourceVersion=10', { verb: 'watch', resource: 'pods', namespace: 'prod' }],
  ['GET', '/api/v1/watch/namespaces/prod/pods', { verb: 'watch', resource: 'pods', namespace: 'prod' }],
  ['POST', '/api/v1/namespaces/prod/pods/web-1/exec?command=sh&stdin=true', { verb: 'create', resource: 'pods', subresource: 'exec', name: 'web-1', namespace: 'prod' }],
  // WebSocket exec/attach/port-forward are GETs the API server also authorizes as create.
  ['GET', '/api/v1/namespaces/prod/pods/web-1/exec?command=sh', { verb: 'create', resource: 'pods', subresource: 'exec', name: 'web-1', namespace: 'prod' }],
  ['GET', '/api/v1/namespaces/prod/pods/web-1/portforward?ports=80', { verb: 'create', resource: 'pods', subresource: 'portforward', name: 'web-1', namespace: 'prod' }],
  ['GET', '/api/v1/namespaces/prod/pods/web-1/log', { verb: 'get', resource: 'pods', subresource: 'log', name: 'web-1', namespace: 'prod' }],
  ['GET', '/api/v1/namespaces/prod/pods/web-1/log?follow=true', { verb: 'get', resource: 'pods', subresource: 'log', name: 'web-1' }],
  ['POST', '/api/v1/namespaces/prod/pods/web-1/portforward', { verb: 'create', subresource: 'portforward' }],
  ['GET', '/api/v1/secrets', { verb: 'list', resource: 'secrets', namespace: undefined }],
  ['GET', '/api/v1/namespaces/kube-system/secrets?labelSelector=app%3Dx', { verb: 'list', resource: 'secrets', namespace: 'kube-system', labelSelector: 'app=x' }],
  ['GET', '/api/v1/namespaces/prod/secrets?fieldSelector=metadata.name%3Ddb', { verb: 'list', resource: 'secrets', name: 'db', fieldSelector: 'metadata.name=db' }],
  ['DELETE', '/api/v1/namespaces/prod', { verb: 'delete', resource: 'namespaces', name: 'prod', namespace: 'prod' }],
  ['PUT', '/api/v1/namespaces/prod/finalize', { verb: 'update', resource: 'namespaces', name: 'prod', subresource: 'finalize' }],
  ['DELETE', '/apis/apps/v1/namespaces/prod/deployments', { verb: 'deletecollection', apiGroup: 'apps', resource: 'deployments' }],
  ['PATCH', '/apis/apps/v1/namespaces/prod/deployments/web/scale?dryRun=All', { verb: 'patch', subresource: 'scale', dryRun: true }],
  ['POST', '/api/v1/namespaces/prod/serviceaccounts/ci/token', { verb: 'create', resource: 'serviceaccounts', subresource: 'token', name: 'ci' }],
  ['POST', '/api/v1/namespaces/prod/pods/web-1/eviction', { verb: 'create', subresource: 'eviction' }],
  ['PUT', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/admins', { verb: 'update', apiGroup: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings', name: 'admins' }],
];

for (const [method, path, expected] of cases) {
  test(`${method} ${path}`, () => {
    const got = kubeRequest(method, path);
    assert.equal(got.kind, 'resource');
    for (const [key, value] of Object.entries(expected)) {
      assert.deepEqual((got as unknown as Record<string, unknown>)[key], value, key);
    }
  });
}

test('paths outside /api and /apis are non-resource requests with the method as verb', () => {
  assert.deepEqual(kubeRequest('GET', '/healthz?verbose'), { kind: 'non-resource', verb: 'get', path: '/healthz' });
  assert.deepEqual(kubeRequest('GET', '/apis'), { kind: 'non-resource', verb: 'get', path: '/apis' });
  assert.deepEqual(kubeRequest('GET', '/api/v1'), { kind: 'non-resource', verb: 'get', path: '/api/v1' });
});

test('impersonation headers are surfaced', () => {
  const got = kubeRequest('GET', '/api/v1/namespaces/prod/pods', { 'impersonate-user': 'alice', 'impersonate-group': 'sre, ops' });
  assert.equal(got.kind, 'resource');
  assert.deepEqual(got.kind === 'resource' ? got.impersonate : undefined, { user: 'alice', groups: ['sre', 'ops'] });
});
