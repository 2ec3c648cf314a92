/**
 * Callers other than a user's OIDC token, through the real Envoy: a legacy caller's API key (in either header) and
 * a Kubernetes service-account token verified against the cluster issuer's keys (a second dev issuer plays the
 * cluster, minting tokens shaped like `kubectl create token`), with a group mapping on top. The quickstart's rules
 * decide; the demo upstream shows what got through.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import { startDevIssuer, type DevIssuer } from '../../src/dev/oidc-issuer.ts';
import { apiKeyDigest } from '../../src/identity/api-keys.ts';

const KEY = 'Rt6Yp1Wm8Qx3Lv5Nz0Kc9Hb2Jd4Gf7Sa';
let stack: Stack;
let cluster: DevIssuer;

before(async () => {
  cluster = await startDevIssuer({ clients: [], audience: 'tollgate' });
  stack = await startStack({
    editConfig: (doc) => {
      const identity = doc['identity'] as Record<string, unknown>;
      identity['kubernetes'] = { issuer: cluster.issuer, audiences: ['tollgate'], algorithms: ['RS256'] };
      identity['apiKeys'] = [{ name: 'legacy-report', sha256: apiKeyDigest(KEY), groups: ['analysts'] }];
      identity['groupMappings'] = [{ subject: 'system:serviceaccount:ops:*', issuer: cluster.issuer, groups: ['platform-admins'] }];
    },
  });
});
after(async () => {
  await stack?.stop();
  await cluster?.close();
});

const get = (path: string, headers: Record<string, string>) => fetch(`${stack.httpUrl}${path}`, { headers });
const serviceAccountToken = (namespace: string, name: string, audience = 'tollgate') => cluster.mint({
  sub: `system:serviceaccount:${namespace}:${name}`, groups: [], audience,
  extraClaims: { groups: undefined, 'kubernetes.io': { namespace, serviceaccount: { name, uid: `uid-${name}` } } },
});

for (const [name, headers] of [
  ['x-api-key', { 'x-api-key': KEY }],
  ['Authorization: ApiKey', { authorization: `ApiKey ${KEY}` }],
] as const) {
  test(`an API key in ${name} reaches the upstream as its principal; the key itself does not`, async () => {
    const res = await get('/api/whoami', headers);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { subject: 'legacy-report', groups: 'analysts' });
    const seen = stack.upstream.seen.at(-1)!;
    assert.equal(seen.headers['x-api-key'], undefined);
    assert.ok(!JSON.stringify(seen.headers).includes(KEY), 'the key never reaches the upstream');
    assert.match(String(seen.headers.authorization), /^Bearer /, 'the upstream got the credential tollgate holds');
  });
}

test('an unknown API key is a 401 with a plain challenge', async () => {
  const res = await get('/api/whoami', { 'x-api-key': 'Xx0Xx0Xx0Xx0Xx0Xx0Xx0Xx0Xx0Xx0Xx' });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="tollgate"');
  assert.deepEqual(await res.json(), { error: 'unauthenticated', reason: 'expected a configured API key, found one that is not', rule: null });
});

test('a service-account token is a kubernetes principal with the service-account groups; rules apply to it', async () => {
  const token = await serviceAccountToken('shop', 'orders');
  const res = await get('/api/whoami', { authorization: `Bearer ${token}` });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { subject: 'system:serviceaccount:shop:orders', groups: 'system:serviceaccounts,system:serviceaccounts:shop' });
  assert.equal((await get('/admin/users', { authorization: `Bearer ${token}` })).status, 403);
  // The audit log is written asynchronously: wait for the record rather than expect it at once.
  let record = undefined as ReturnType<Stack['auditRecords']>[number] | undefined;
  for (let attempt = 0; attempt < 50 && record === undefined; attempt++) {
    record = stack.auditRecords().find((r) => r.event === 'http.authz.allow' && r.principal?.subject === 'system:serviceaccount:shop:orders');
    if (record === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(record?.principal?.authenticatedBy, 'kubernetes');
  assert.equal(record?.principal?.uid, 'uid-orders');
});

test('a group mapping on service accounts of a namespace lets them through the admin rule', async () => {
  const res = await get('/admin/users', { authorization: `Bearer ${await serviceAccountToken('ops', 'deployer')}` });
  assert.equal(res.status, 200);
  assert.deepEqual(((await res.json()) as { caller: unknown }).caller, {
    subject: 'system:serviceaccount:ops:deployer', groups: 'system:serviceaccounts,system:serviceaccounts:ops,platform-admins',
  });
});

test('a service-account token for the API server\'s audience is refused', async () => {
  const res = await get('/api/whoami', { authorization: `Bearer ${await serviceAccountToken('shop', 'orders', 'https://kubernetes.default.svc')}` });
  assert.equal(res.status, 401);
  assert.match(((await res.json()) as { reason: string }).reason, /expected aud to contain one of \["tollgate"\]/);
});
