import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createAuthzHandler, type CheckRequestLike, type CheckResponseLike } from '../../src/http/authz.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import type { Principal } from '../../src/core/principal.ts';
import type { UpstreamCredential } from '../../src/http/credentials.ts';

// Given a token → principal table standing in for identity (identity has its own tests against a real issuer).
const PRINCIPALS: Record<string, Principal> = {
  'Bearer alice': { subject: 'alice', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' },
  'Bearer pat': { subject: 'pat', groups: ['platform-admins', 'sre'], issuer: 'https://idp.test', authenticatedBy: 'oidc' },
};

function setup(credentials: UpstreamCredential[] = []) {
  const audit: AuditRecord[] = [];
  const policy = compilePolicy(configSchema.parse({
    rules: [
      { name: 'admin-routes-are-admin-only', match: { http: { path: '/admin/*' } }, unless: { group: 'platform-admins' }, effect: 'deny' },
      { name: 'api-open', match: { http: { path: '/*' } }, effect: 'allow' },
    ],
  }).rules);
  const check = createAuthzHandler({
    authenticate: async ({ authorization: header }) => {
      if (header === undefined) throw Object.assign(new Error('no bearer token in the Authorization header'), { code: 'token_missing' });
      const p = PRINCIPALS[header];
      if (!p) throw Object.assign(new Error('signature does not verify'), { code: 'signature_invalid' });
      return p;
    },
    policy: () => policy,
    credentials: () => credentials,
    audit: { write: (r) => audit.push(r) },
    logger: pino({ level: 'silent' }),
  });
  return { check, audit };
}

const request = (path: string, headers: Record<string, string> = {}): CheckRequestLike => ({
  attributes: {
    source: { address: { socket_address: { address: '127.0.0.7', port_value: 5555 } } },
    request: { http: { method: 'GET', path, host: 'api.test', headers: { ':path': path, ...headers } } },
  },
});

const header = (res: CheckResponseLike, name: string) =>
  (res.ok_response?.headers ?? res.denied_response?.headers ?? []).find((h) => h.header.key === name)?.header.value;

test('no token: 401 with a Bearer challenge and a JSON body naming no rule', async () => {
  const { check, audit } = setup();
  const res = await check(request('/api/customers'));
  assert.equal(res.status.code, 16);
  assert.equal(res.denied_response?.status.code, 401);
  assert.deepEqual(JSON.parse(res.denied_response!.body), { error: 'unauthenticated', reason: 'no bearer token in the Authorization header', rule: null });
  assert.equal(header(res, 'www-authenticate'), 'Bearer realm="tollgate"');
  assert.equal(audit[0]?.event, 'http.authz.unauthenticated');
  assert.deepEqual(audit[0]?.connection, { sourceAddress: '127.0.0.7', sourcePort: 5555 });
});

test('a bad token: 401 whose challenge says invalid_token', async () => {
  const { check } = setup();
  const res = await check(request('/api/customers', { authorization: 'Bearer forged' }));
  assert.equal(res.denied_response?.status.code, 401);
  assert.match(header(res, 'www-authenticate') ?? '', /error="invalid_token"/);
});

test('denied by rule: 403 with error, reason and the rule name', async () => {
  const { check, audit } = setup();
  const res = await check(request('/admin/users?x=1', { authorization: 'Bearer alice' }));
  assert.equal(res.status.code, 7);
  assert.equal(res.denied_response?.status.code, 403);
  assert.deepEqual(JSON.parse(res.denied_response!.body), {
    error: 'forbidden', reason: 'denied by rule admin-routes-are-admin-only', rule: 'admin-routes-are-admin-only',
  });
  assert.equal(audit[0]?.event, 'http.authz.deny');
  assert.equal(audit[0]?.principal?.subject, 'alice');
  assert.deepEqual(audit[0]?.details, { method: 'GET', host: 'api.test', path: '/admin/users' });
});

test('allowed: the caller token and forged identity headers are removed, identity headers added', async () => {
  const { check } = setup();
  const res = await check(request('/admin/users', { authorization: 'Bearer pat', 'x-tollgate-subject': 'root', 'x-tollgate-extra': '1' }));
  assert.equal(res.status.code, 0);
  assert.deepEqual(res.ok_response?.headers_to_remove.sort(), ['authorization', 'x-tollgate-extra']);
  assert.equal(header(res, 'x-tollgate-subject'), 'pat');
  assert.equal(header(res, 'x-tollgate-groups'), 'platform-admins,sre');
  assert.ok(res.ok_response?.headers.every((h) => h.append_action === 'OVERWRITE_IF_EXISTS_OR_ADD'));
  assert.equal(res.dynamic_metadata?.fields['subject']?.stringValue, 'pat');
  assert.equal(res.dynamic_metadata?.fields['rule']?.stringValue, 'api-open');
});

test('allowed with an upstream credential: tollgate\'s secret replaces the caller\'s Authorization', async () => {
  const cred: UpstreamCredential = { name: 'demo', header: 'authorization', value: 'Bearer upstream-secret', impersonate: false, matches: (_h, p) => p.startsWith('/api/') };
  const { check } = setup([cred]);
  const res = await check(request('/api/customers', { authorization: 'Bearer alice' }));
  assert.equal(header(res, 'authorization'), 'Bearer upstream-secret');
  assert.ok(!res.ok_response?.headers_to_remove.includes('authorization'), 'the injected header must not also be removed');
  assert.equal(res.dynamic_metadata?.fields['upstream_credential']?.stringValue, 'demo');
  const other = await check(request('/other', { authorization: 'Bearer alice' }));
  assert.equal(header(other, 'authorization'), undefined);
  assert.ok(other.ok_response?.headers_to_remove.includes('authorization'));
});
