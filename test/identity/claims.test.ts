import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readClaim } from '../../src/identity/claims.ts';

const payload = {
  sub: 'system:serviceaccount:shop:orders',
  groups: ['a'],
  realm_access: { roles: ['admin'] },
  'https://example.com/roles': ['auditor'],
  'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'orders', uid: 'u-1' } },
  'a.b': { c: 'from a.b' },
  a: { b: { c: 'from a' } },
};

// Each row: a path, what it reads.
const TABLE: Array<[string, unknown]> = [
  ['groups', ['a']],
  ['realm_access.roles', ['admin']],
  ['https://example.com/roles', ['auditor']],
  ['kubernetes.io.namespace', 'shop'],
  ['kubernetes.io.serviceaccount.uid', 'u-1'],
  ['kubernetes.io', payload['kubernetes.io']],
  ['a.b.c', 'from a.b'], // the longest existing name wins at each level
  ['realm_access.missing', undefined],
  ['groups.length', undefined], // arrays are not walked into
  ['kubernetes', undefined],
];

for (const [path, expected] of TABLE) {
  test(`readClaim ${path}`, () => assert.deepEqual(readClaim(payload, path), expected));
}
