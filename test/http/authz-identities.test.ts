/**
 * The HTTP Check with every kind of caller: a token forwarded by a mesh peer, the peer alone, an API key in either
 * header, and the refusals. Identity is real here (API keys, mTLS, the caller precedence); bearer tokens come from
 * a table, as verifying them has its own tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createAuthzHandler, type CheckRequestLike, type CheckResponseLike } from '../../src/http/authz.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import type { UpstreamCredential } from '../../src/http/credentials.ts';
import { apiKeyDigest, createApiKeys } from '../../src/identity/api-keys.ts';
import { createCallerAuthenticator } from '../../src/identity/caller.ts';
import { createMtlsIdentities } from '../../src/identity/mtls.ts';
import { IdentityError } from '../../src/identity/errors.ts';

const KEY = 'Pq7Lm2Xr9Tz4Wv1Ns6Kb3Jd8Hf5Gc0Ye';
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';

function setup(credentials: UpstreamCredential[] = []) {
  const audit: AuditRecord[] = [];
  const policy = compilePolicy(configSchema.parse({
    rules: [
      { name: 'batch-may-export', match: { http: { path: '/export/*' }, group: 'batch' }, effect: 'allow' },
      { name: 'export-is-batch-only', match: { http: { path: '/export/*' } }, effect: 'deny' },
      { name: 'api-open', match: { http: { path: '/*' } }, effect: 'allow' },
    ],
  }).rules);
  const authenticate = createCallerAuthenticator({
    bearer: {
      async authenticateBearer(token) {
        if (token === 'alice-token') return { subject: 'alice', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
        throw new IdentityError('signature_invalid', 'expected a signature that verifies, found one that does not');
      },
    },
    apiKeys: createApiKeys([{ name: 'legacy-batch', sha256: apiKeyDigest(KEY), groups: ['batch'] }]),
    mtls: createMtlsIdentities({ trustDomains: ['cluster.local'], groups: [{ subject: 'spiffe://cluster.local/ns/shop/*', groups: ['shop'] }] }),
  });
  const check = createAuthzHandler({
    authenticate,
    policy: () => policy,
    credentials: () => credentials,
    audit: { write: (r) => audit.push(r) },
    logger: pino({ level: 'silent' }),
  });
  return { check, audit };
}

const request = (path: string, headers: Record<string, string> = {}, principal?: string): CheckRequestLike => ({
  attributes: {
    source: { address: { socket_address: { address: '10.0.0.7', port_value: 41000 } }, ...(principal !== undefined && { principal }) },
    request: { http: { method: 'GET', path, host: 'api.test', headers: { ':path': path, ...headers } } },
  },
});

const header = (res: CheckResponseLike, name: string) =>
  (res.ok_response?.headers ?? res.denied_response?.headers ?? []).find((h) => h.header.key === name)?.header.value;
const meta = (res: CheckResponseLike, key: string) => res.dynamic_metadata?.fields[key]?.stringValue;

test('a mesh peer forwarding a user\'s token: the token is the caller, the peer is recorded as the way it came', async () => {
  const { check, audit } = setup();
  const res = await check(request('/api/orders', { authorization: 'Bearer alice-token' }, FRONTEND));
  assert.equal(res.status.code, 0);
  assert.equal(header(res, 'x-tollgate-subject'), 'alice');
  assert.equal(meta(res, 'authenticated_by'), 'oidc');
  assert.equal(audit[0]?.principal?.subject, 'alice');
  assert.deepEqual(audit[0]?.details, { method: 'GET', host: 'api.test', path: '/api/orders', peer: FRONTEND });
});

test('a bad token from a mesh peer is a 401: no fallback to the peer\'s identity', async () => {
  const { check, audit } = setup();
  const res = await check(request('/api/orders', { authorization: 'Bearer forged' }, FRONTEND));
  assert.equal(res.denied_response?.status.code, 401);
  assert.match(header(res, 'www-authenticate') ?? '', /error="invalid_token"/);
  assert.equal((audit[0]?.details as { code?: string }).code, 'signature_invalid');
});

test('a mesh peer alone is authenticated by its SPIFFE id', async () => {
  const { check } = setup();
  const res = await check(request('/api/orders', {}, FRONTEND));
  assert.equal(res.status.code, 0);
  assert.equal(header(res, 'x-tollgate-subject'), FRONTEND);
  assert.equal(header(res, 'x-tollgate-groups'), 'shop');
  assert.equal(meta(res, 'authenticated_by'), 'mtls');
  assert.equal(meta(res, 'issuer'), 'spiffe://cluster.local');
});

test('a peer of an untrusted trust domain and no token: 401 with the mTLS reason, a plain challenge', async () => {
  const { check } = setup();
  const res = await check(request('/api/orders', {}, 'spiffe://evil.test/ns/x/sa/y'));
  assert.equal(res.denied_response?.status.code, 401);
  assert.match(JSON.parse(res.denied_response!.body).reason, /trust domain/);
  assert.equal(header(res, 'www-authenticate'), 'Bearer realm="tollgate"');
});

for (const [name, headers] of [
  ['x-api-key', { 'x-api-key': KEY }],
  ['Authorization: ApiKey', { authorization: `ApiKey ${KEY}` }],
] as const) {
  test(`an API key in ${name}: the key's principal, and the key does not go upstream`, async () => {
    const { check } = setup();
    const res = await check(request('/export/daily', headers));
    assert.equal(res.status.code, 0);
    assert.equal(header(res, 'x-tollgate-subject'), 'legacy-batch');
    assert.equal(meta(res, 'authenticated_by'), 'api-key');
    assert.equal(meta(res, 'rule'), 'batch-may-export');
    const removed = res.ok_response?.headers_to_remove ?? [];
    assert.ok(removed.includes('authorization'));
    assert.equal(removed.includes('x-api-key'), 'x-api-key' in headers);
  });
}

test('an x-api-key is removed upstream even when a token named the caller', async () => {
  const { check } = setup();
  // With API keys configured this is ambiguous; without (an upstream's own legacy header) it must still not leak.
  const withoutKeys = createAuthzHandler({
    authenticate: createCallerAuthenticator({ bearer: { authenticateBearer: async () => ({ subject: 'alice', groups: [], issuer: 'https://idp.test', authenticatedBy: 'oidc' }) } }),
    policy: () => compilePolicy(configSchema.parse({ rules: [{ name: 'open', effect: 'allow' }] }).rules),
    credentials: () => [],
    audit: { write: () => {} },
    logger: pino({ level: 'silent' }),
  });
  const res = await withoutKeys(request('/api/orders', { authorization: 'Bearer alice-token', 'x-api-key': 'the-callers-own' }));
  assert.equal(res.status.code, 0);
  assert.deepEqual(res.ok_response?.headers_to_remove.sort(), ['authorization', 'x-api-key']);
  const ambiguous = await check(request('/api/orders', { authorization: 'Bearer alice-token', 'x-api-key': KEY }));
  assert.equal(ambiguous.denied_response?.status.code, 401);
  assert.equal(JSON.parse(ambiguous.denied_response!.body).reason, 'expected one credential, found both an Authorization header and an x-api-key header');
  assert.equal(header(ambiguous, 'www-authenticate'), 'Bearer realm="tollgate"');
});

test('an unknown API key: 401 naming no rule, a challenge without invalid_token, the code in the audit record', async () => {
  const { check, audit } = setup();
  const attempts: Array<Record<string, string>> = [{ 'x-api-key': 'not-a-key-not-a-key-not-a-key' }, { authorization: 'ApiKey not-a-key-not-a-key-not-a-key' }];
  for (const headers of attempts) {
    audit.length = 0;
    const res = await check(request('/export/daily', headers));
    assert.equal(res.status.code, 16);
    assert.deepEqual(JSON.parse(res.denied_response!.body), { error: 'unauthenticated', reason: 'expected a configured API key, found one that is not', rule: null });
    assert.equal(header(res, 'www-authenticate'), 'Bearer realm="tollgate"');
    assert.equal((audit[0]?.details as { code?: string }).code, 'api_key_unknown');
    assert.ok(!JSON.stringify(audit).includes('not-a-key'), 'the presented key is not audited');
  }
});

test('an upstream credential in x-api-key replaces the caller\'s key instead of being removed', async () => {
  const cred: UpstreamCredential = { name: 'legacy-upstream', header: 'x-api-key', value: 'upstream-secret', impersonate: false, matches: () => true };
  const { check } = setup([cred]);
  const res = await check(request('/export/daily', { 'x-api-key': KEY }));
  assert.equal(header(res, 'x-api-key'), 'upstream-secret');
  assert.ok(!res.ok_response?.headers_to_remove.includes('x-api-key'));
});
