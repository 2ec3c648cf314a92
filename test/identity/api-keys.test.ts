import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { apiKeyDigest, createApiKeys, MAX_API_KEY_LENGTH } from '../../src/identity/api-keys.ts';
import { IdentityError, type IdentityErrorCode } from '../../src/identity/errors.ts';
import { compileGroupMappings } from '../../src/identity/group-mappings.ts';

const BATCH_KEY = 'k9Qx2T7vLrYp4ZsN8wEcB1mHjD6fGaU3';
const REPORTS_KEY = 'Vb5nR2xQ8tLw4Kp7Zc1mYs9Hd3Fg6Ja0';

const keys = () => createApiKeys([
  { name: 'billing-batch', sha256: apiKeyDigest(BATCH_KEY), groups: ['billing', 'batch', 'billing'] },
  // Upper-case hex is the same digest.
  { name: 'reports', sha256: apiKeyDigest(REPORTS_KEY).toUpperCase(), groups: [] },
]);

function refused(fn: () => unknown, code: IdentityErrorCode, key?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof IdentityError, String(err));
    assert.equal(err.code, code, err.message);
    if (key) assert.ok(!err.message.includes(key), 'the key is never in a message');
    return true;
  });
}

test('the digest is the hex SHA-256 of the key', () => {
  assert.equal(apiKeyDigest('abc'), createHash('sha256').update('abc').digest('hex'));
  assert.equal(apiKeyDigest('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('a configured key becomes the principal of its entry: subject = name, issuer api-key', () => {
  assert.deepEqual(keys().authenticate(BATCH_KEY), { subject: 'billing-batch', groups: ['billing', 'batch'], issuer: 'api-key', authenticatedBy: 'api-key' });
  assert.equal(keys().authenticate(REPORTS_KEY).subject, 'reports');
});

test('an unknown key, a near miss and an empty one are refused without echoing the key', () => {
  refused(() => keys().authenticate('not-a-configured-key-at-all-000'), 'api_key_unknown', 'not-a-configured-key-at-all-000');
  refused(() => keys().authenticate(`${BATCH_KEY}x`), 'api_key_unknown', BATCH_KEY);
  refused(() => keys().authenticate(BATCH_KEY.slice(0, -1)), 'api_key_unknown');
  refused(() => keys().authenticate(apiKeyDigest(BATCH_KEY)), 'api_key_unknown', 'the digest itself is no key');
  refused(() => keys().authenticate(''), 'token_missing');
});

test('keys with spaces, control or non-ASCII characters, or too long, are malformed', () => {
  refused(() => keys().authenticate('two words'), 'api_key_malformed', 'two words');
  refused(() => keys().authenticate('tab\there'), 'api_key_malformed');
  refused(() => keys().authenticate('schlüssel-schlüssel-schlüssel'), 'api_key_malformed');
  refused(() => keys().authenticate('x'.repeat(MAX_API_KEY_LENGTH + 1)), 'api_key_malformed');
});

test('group mappings apply to key principals once, when the keys are built', () => {
  const map = compileGroupMappings([{ subject: 'billing-*', authenticatedBy: 'api-key', groups: ['legacy'] }]);
  const mapped = createApiKeys([{ name: 'billing-batch', sha256: apiKeyDigest(BATCH_KEY), groups: ['billing'] }], map);
  assert.deepEqual(mapped.authenticate(BATCH_KEY).groups, ['billing', 'legacy']);
  assert.equal(mapped.authenticate(BATCH_KEY), mapped.authenticate(BATCH_KEY), 'one principal per key, not one per request');
});

test('bad configurations are refused when built', () => {
  const digest = apiKeyDigest(BATCH_KEY);
  assert.throws(() => createApiKeys([{ name: 'a', sha256: BATCH_KEY, groups: [] }]), /64 hex digits .*not the key/);
  assert.throws(() => createApiKeys([{ name: 'a', sha256: digest, groups: [] }, { name: 'a', sha256: apiKeyDigest(REPORTS_KEY), groups: [] }]), /used twice/);
  assert.throws(() => createApiKeys([{ name: 'a', sha256: digest, groups: [] }, { name: 'b', sha256: digest.toUpperCase(), groups: [] }]), /same key digest/);
});
