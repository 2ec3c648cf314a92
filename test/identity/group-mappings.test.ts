import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from '../../src/core/principal.ts';
import { compileGroupMappings, type GroupMappingOptions } from '../../src/identity/group-mappings.ts';

const alice: Principal = { subject: 'alice', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const orders: Principal = {
  subject: 'system:serviceaccount:shop:orders', groups: ['system:serviceaccounts', 'system:serviceaccounts:shop'],
  issuer: 'https://kubernetes.default.svc', authenticatedBy: 'kubernetes',
};
const peer: Principal = { subject: 'spiffe://cluster.local/ns/shop/sa/orders', groups: [], issuer: 'spiffe://cluster.local', authenticatedBy: 'mtls' };
const legacy: Principal = { subject: 'billing-batch', groups: [], issuer: 'api-key', authenticatedBy: 'api-key' };

const MAPPINGS: GroupMappingOptions[] = [
  { subject: 'system:serviceaccount:shop:*', issuer: 'https://kubernetes.default.svc', groups: ['shop'] },
  { subject: 'spiffe://cluster.local/ns/shop/*', groups: ['shop', 'mesh'] },
  { claim: 'realm_access.roles', equals: 'admin', groups: ['platform-admins'] },
  { claim: 'email', matches: '[a-z]+@example\\.com', groups: ['staff'] },
  { claim: 'email_verified', equals: true, authenticatedBy: 'oidc', groups: ['verified'] },
  { subject: 'billing-*', authenticatedBy: ['api-key'], groups: ['billing'] },
  { subject: 'alice', claim: 'department', equals: 'sre', groups: ['sre'] },
];

// Given the mappings above, each row: a principal, its token's claims (none for API keys and mTLS), the groups after.
const TABLE: Array<[string, Principal, Record<string, unknown> | undefined, string[]]> = [
  ['a service account of the namespace, from the cluster issuer', orders, {}, ['system:serviceaccounts', 'system:serviceaccounts:shop', 'shop']],
  ['the same subject from another issuer borrows nothing', { ...orders, issuer: 'https://idp.test', authenticatedBy: 'oidc' }, {}, ['system:serviceaccounts', 'system:serviceaccounts:shop']],
  ['a SPIFFE id by pattern, groups de-duplicated in config order', peer, undefined, ['shop', 'mesh']],
  ['a claim in a nested list', alice, { realm_access: { roles: ['viewer', 'admin'] } }, ['analysts', 'platform-admins']],
  ['a claim that only contains the value as a substring', alice, { realm_access: { roles: ['administrator'] } }, ['analysts']],
  ['matches is anchored: the whole value must match', alice, { email: 'alice@example.com' }, ['analysts', 'staff']],
  ['matches does not fire on a longer value', alice, { email: 'alice@example.com.evil.test' }, ['analysts']],
  ['matches ignores values that are not strings', alice, { email: 42 }, ['analysts']],
  ['equals compares types exactly (true, not "true")', alice, { email_verified: 'true' }, ['analysts']],
  ['equals true', alice, { email_verified: true }, ['analysts', 'verified']],
  ['an API key by name and method', legacy, undefined, ['billing']],
  ['the same name by another method gets nothing', { ...legacy, authenticatedBy: 'oidc', issuer: 'https://idp.test' }, {}, []],
  ['subject and claim together must both hold', alice, { department: 'sre' }, ['analysts', 'sre']],
  ['subject and claim: the claim alone is not enough', { ...alice, subject: 'bob' }, { department: 'sre' }, ['analysts']],
  ['no claims at all never match a claim mapping', alice, undefined, ['analysts']],
];

for (const [name, principal, claims, groups] of TABLE) {
  test(`group mapping: ${name}`, () => {
    const map = compileGroupMappings(MAPPINGS);
    assert.ok(map);
    const mapped = map(principal, claims);
    assert.deepEqual(mapped.groups, groups);
    assert.equal(mapped.subject, principal.subject);
    assert.equal(mapped.issuer, principal.issuer);
    assert.equal(mapped.authenticatedBy, principal.authenticatedBy);
  });
}

test('a principal nothing adds to is returned as it is, and the input is never changed', () => {
  const map = compileGroupMappings(MAPPINGS)!;
  const unchanged = { ...alice };
  assert.equal(map(unchanged, {}), unchanged);
  const already = { ...peer, groups: ['mesh', 'shop'] };
  assert.equal(map(already), already, 'groups it already has are no change');
  const before = [...orders.groups];
  map(orders, {});
  assert.deepEqual(orders.groups, before);
});

test('no mappings: nothing to apply', () => {
  assert.equal(compileGroupMappings([]), undefined);
});

test('bad entries are refused when compiled, naming the entry', () => {
  assert.throws(() => compileGroupMappings([{ groups: ['x'] }]), /groupMappings\[0\]: expected `subject` or `claim`/);
  assert.throws(() => compileGroupMappings([{ subject: 'a', groups: ['x'] }, { claim: 'c', groups: ['x'] }]), /groupMappings\[1\]: expected exactly one of `equals` or `matches`/);
  assert.throws(() => compileGroupMappings([{ claim: 'c', equals: 1, matches: 'x', groups: ['x'] }]), /exactly one/);
  assert.throws(() => compileGroupMappings([{ subject: 'a', equals: 'x', groups: ['x'] }]), /apply to a `claim`/);
  assert.throws(() => compileGroupMappings([{ claim: 'c', matches: '(', groups: ['x'] }]), /regular expression/);
  assert.throws(() => compileGroupMappings([{ subject: 'a', groups: [] }]), /at least one non-empty group/);
});
