import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createAuthzHandler, type CheckRequestLike, type CheckResponseLike } from '../../src/http/authz.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import { createHttpClassifier } from '../../src/http/action.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import type { Principal } from '../../src/core/principal.ts';
import type { UpstreamCredential } from '../../src/http/credentials.ts';

const PRINCIPALS: Record<string, Principal> = {
  'Bearer ci': { subject: 'system:serviceaccount:ci:deployer', groups: ['system:serviceaccounts', 'ci'], issuer: 'https://kubernetes.default.svc', authenticatedBy: 'kubernetes' },
  'Bearer sam': { subject: 'sam', groups: ['sre'], issuer: 'https://idp.test', authenticatedBy: 'oidc' },
};

const config = configSchema.parse({
  http: { kubernetes: { hosts: 'kube.test:6443' } },
  rules: [
    { name: 'no-cluster-wide-secrets', match: { kubernetes: { verb: ['list', 'watch'], resource: 'secrets', scope: 'cluster' } }, effect: 'deny', description: 'secrets are listed one namespace at a time' },
    { name: 'sre-may-impersonate-ci', match: { group: 'sre', kubernetes: { verb: 'impersonate', resource: 'serviceaccounts', namespace: 'ci' } }, effect: 'allow' },
    { name: 'nobody-else-impersonates', match: { kubernetes: { verb: 'impersonate' } }, effect: 'deny' },
    { name: 'kube-open', match: { kubernetes: {} }, effect: 'allow' },
    { name: 'http-open', match: { http: {} }, effect: 'allow' },
  ],
});

function setup(credential?: Partial<UpstreamCredential>) {
  const audit: AuditRecord[] = [];
  const credentials: UpstreamCredential[] = credential === undefined ? [] : [{
    name: 'kube-gateway', header: 'authorization', value: 'Bearer gateway-token', impersonate: false, matches: () => true, ...credential,
  }];
  const classify = createHttpClassifier(config.http.kubernetes);
  const check = createAuthzHandler({
    authenticate: async ({ authorization }) => {
      const p = authorization === undefined ? undefined : PRINCIPALS[authorization];
      if (!p) throw Object.assign(new Error('the token is not valid'), { code: 'signature_invalid' });
      return p;
    },
    policy: () => compilePolicy(config.rules),
    credentials: () => credentials,
    classify: () => classify,
    audit: { write: (r) => audit.push(r) },
    logger: pino({ level: 'silent' }),
  });
  return { check, audit };
}

const kubeRequest = (method: string, path: string, headers: Record<string, string> = {}, host = 'kube.test:6443'): CheckRequestLike => ({
  attributes: { request: { http: { method, path, host, headers: { ':path': path, ':method': method, ...headers } } } },
});
const headerValues = (res: CheckResponseLike, name: string) =>
  (res.ok_response?.headers ?? []).filter((h) => h.header.key === name).map((h) => h.header.value);

test('a denied Kubernetes request gets a Status object kubectl prints as a normal Forbidden error', async () => {
  const { check, audit } = setup();
  const res = await check(kubeRequest('GET', '/api/v1/secrets?limit=500', { authorization: 'Bearer ci' }));
  assert.equal(res.denied_response?.status.code, 403);
  const status = JSON.parse(res.denied_response!.body);
  assert.deepEqual(status, {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'Forbidden', code: 403,
    message: 'secrets is forbidden: User "system:serviceaccount:ci:deployer" cannot list resource "secrets" in API group "" at the cluster scope: secrets are listed one namespace at a time (tollgate rule no-cluster-wide-secrets)',
    details: { group: '', kind: 'secrets' },
  });
  assert.equal(audit[0]?.path, 'kubernetes');
  assert.equal(audit[0]?.event, 'kubernetes.authz.deny');
  assert.deepEqual((audit[0]?.details as any).kubernetes.verb, 'list');
});

test('a named object in a namespace is named in the message, as the API server does', async () => {
  const { check } = setup();
  const res = await check(kubeRequest('GET', '/api/v1/namespaces/demo/pods/web/exec?command=sh', { authorization: 'Bearer ci', 'impersonate-user': 'admin' }));
  assert.equal(JSON.parse(res.denied_response!.body).message,
    'pods "web" is forbidden: User "system:serviceaccount:ci:deployer" cannot create resource "pods/exec" in API group "" in the namespace "demo": impersonating users "admin": denied by rule nobody-else-impersonates');
});

test('an unauthenticated Kubernetes request gets a 401 Status with reason Unauthorized', async () => {
  const { check } = setup();
  const res = await check(kubeRequest('GET', '/api/v1/namespaces/demo/pods', { authorization: 'Bearer forged' }));
  assert.equal(res.denied_response?.status.code, 401);
  const status = JSON.parse(res.denied_response!.body);
  assert.equal(status.kind, 'Status');
  assert.equal(status.reason, 'Unauthorized');
  assert.equal(status.code, 401);
});

test('other hosts keep tollgate\'s plain JSON denials', async () => {
  const { check } = setup();
  const res = await check(kubeRequest('GET', '/api/v1/secrets', { authorization: 'Bearer forged' }, 'api.test'));
  assert.deepEqual(Object.keys(JSON.parse(res.denied_response!.body)), ['error', 'reason', 'rule']);
});

test('a caller\'s own impersonation is checked as the API server would: one impersonate check per user and group', async () => {
  const { check } = setup();
  const allowed = await check(kubeRequest('GET', '/api/v1/namespaces/ci/pods', { authorization: 'Bearer sam', 'impersonate-user': 'system:serviceaccount:ci:deployer' }));
  assert.equal(allowed.status.code, 0, 'sre may impersonate service accounts of namespace ci');
  const asUser = await check(kubeRequest('GET', '/api/v1/namespaces/ci/pods', { authorization: 'Bearer sam', 'impersonate-user': 'root' }));
  assert.equal(asUser.denied_response?.status.code, 403);
  assert.match(JSON.parse(asUser.denied_response!.body).message, /impersonating users "root": denied by rule nobody-else-impersonates/);
  const asGroup = await check(kubeRequest('GET', '/api/v1/namespaces/ci/pods', {
    authorization: 'Bearer sam', 'impersonate-user': 'system:serviceaccount:ci:deployer', 'impersonate-group': 'system:masters',
  }));
  assert.match(JSON.parse(asGroup.denied_response!.body).message, /impersonating groups "system:masters"/);
});

test('with an impersonating upstream credential, tollgate sends the caller as Impersonate-User and one Impersonate-Group per group', async () => {
  const { check } = setup({ impersonate: true });
  const res = await check(kubeRequest('GET', '/api/v1/namespaces/ci/pods', { authorization: 'Bearer ci' }));
  assert.equal(res.status.code, 0);
  assert.deepEqual(headerValues(res, 'authorization'), ['Bearer gateway-token']);
  assert.deepEqual(headerValues(res, 'impersonate-user'), ['system:serviceaccount:ci:deployer']);
  assert.deepEqual(headerValues(res, 'impersonate-group'), ['system:serviceaccounts', 'ci']);
  const groups = res.ok_response!.headers.filter((h) => h.header.key === 'impersonate-group');
  assert.ok(groups.every((h) => h.append_action === 'APPEND_IF_EXISTS_OR_ADD'), 'each group is a header of its own');
});

test('with an impersonating upstream credential, a caller\'s own Impersonate-* headers are refused', async () => {
  const { check } = setup({ impersonate: true });
  const res = await check(kubeRequest('GET', '/api/v1/namespaces/ci/pods', { authorization: 'Bearer sam', 'impersonate-user': 'system:serviceaccount:ci:deployer' }));
  assert.equal(res.denied_response?.status.code, 403);
  assert.match(JSON.parse(res.denied_response!.body).message, /tollgate already impersonates the caller/);
});

test('Impersonate-* headers to a plain HTTP upstream are refused: they mean nothing there but trouble', async () => {
  const { check } = setup();
  const res = await check(kubeRequest('GET', '/x', { authorization: 'Bearer sam', 'impersonate-user': 'root' }, 'api.test'));
  assert.equal(res.denied_response?.status.code, 403);
});
