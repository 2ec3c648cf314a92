/**
 * Which credential names the caller when a request carries several: a table over Authorization, x-api-key and the
 * mTLS peer. Bearer tokens have their own tests (oidc, kubernetes, token-review); here a token is a name in a table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from '../../src/core/principal.ts';
import { apiKeyDigest, createApiKeys } from '../../src/identity/api-keys.ts';
import { createCallerAuthenticator, type CallerSources, type Credentials } from '../../src/identity/caller.ts';
import { IdentityError } from '../../src/identity/errors.ts';
import { createMtlsIdentities, MtlsError } from '../../src/identity/mtls.ts';
import { compileGroupMappings } from '../../src/identity/group-mappings.ts';

const KEY = 'Zt4Wq9Lx2Rp7Nc5Vb8Md1Kf6Hj3Gs0Ya';
const MESH_PEER = 'spiffe://cluster.local/ns/shop/sa/frontend';

const bearer: CallerSources['bearer'] = {
  async authenticateBearer(token) {
    if (token === 'alice-token') return { subject: 'alice', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
    throw new IdentityError('signature_invalid', 'expected a signature that verifies, found one that does not');
  },
};
const mapGroups = compileGroupMappings([{ subject: 'spiffe://cluster.local/ns/shop/*', authenticatedBy: 'mtls', groups: ['shop'] }]);
const everything = createCallerAuthenticator({
  bearer,
  apiKeys: createApiKeys([{ name: 'legacy-batch', sha256: apiKeyDigest(KEY), groups: ['batch'] }]),
  mtls: createMtlsIdentities({ trustDomains: ['cluster.local'], ...(mapGroups && { mapGroups }) }),
});
const tokensOnly = createCallerAuthenticator({ bearer });

async function outcome(authenticate: typeof everything, credentials: Credentials): Promise<string> {
  try {
    const p: Principal = await authenticate(credentials);
    return `${p.authenticatedBy}:${p.subject}:${p.groups.join('+')}`;
  } catch (err) {
    assert.ok(err instanceof IdentityError || err instanceof MtlsError, String(err));
    return `refused:${err.code}`;
  }
}

const peer = { principal: MESH_PEER };

// Given every source configured: credentials → who the caller is (or why not).
const TABLE: Array<[string, Credentials, string]> = [
  ['a bearer token', { authorization: 'Bearer alice-token' }, 'oidc:alice:analysts'],
  ['a bearer token forwarded by a mesh peer: the token is the caller', { authorization: 'Bearer alice-token', peer }, 'oidc:alice:analysts'],
  ['a bad token from a mesh peer: refused, no fallback to the peer', { authorization: 'Bearer forged', peer }, 'refused:signature_invalid'],
  ['a malformed Authorization from a mesh peer: refused', { authorization: 'Basic YTpi', peer }, 'refused:token_malformed'],
  ['x-api-key', { apiKey: KEY }, 'api-key:legacy-batch:batch'],
  ['x-api-key with surrounding blanks', { apiKey: `  ${KEY} ` }, 'api-key:legacy-batch:batch'],
  ['Authorization: ApiKey (scheme case-insensitive)', { authorization: `apikey ${KEY}` }, 'api-key:legacy-batch:batch'],
  ['an API key forwarded by a mesh peer: the key is the caller', { apiKey: KEY, peer }, 'api-key:legacy-batch:batch'],
  ['an unknown API key', { apiKey: 'not-the-key-not-the-key-not-the' }, 'refused:api_key_unknown'],
  ['ApiKey without a key', { authorization: 'ApiKey' }, 'refused:token_missing'],
  ['ApiKey with two values', { authorization: `ApiKey ${KEY} ${KEY}` }, 'refused:api_key_malformed'],
  ['both Authorization and x-api-key', { authorization: 'Bearer alice-token', apiKey: KEY }, 'refused:credentials_ambiguous'],
  ['only a mesh peer', { peer }, 'mtls:spiffe://cluster.local/ns/shop/sa/frontend:shop'],
  ['a blank Authorization and a mesh peer: the peer', { authorization: '  ', peer }, 'mtls:spiffe://cluster.local/ns/shop/sa/frontend:shop'],
  ['a peer of an untrusted trust domain', { peer: { principal: 'spiffe://evil.test/ns/x/sa/y' } }, 'refused:trust_domain_unknown'],
  ['a peer whose principal is no SPIFFE id', { peer: { principal: 'frontend.shop.svc' } }, 'refused:spiffe_id_malformed'],
  ['nothing', {}, 'refused:token_missing'],
  ['an empty peer', { peer: { principal: '' } }, 'refused:token_missing'],
];

for (const [name, credentials, expected] of TABLE) {
  test(`caller: ${name}`, async () => assert.equal(await outcome(everything, credentials), expected));
}

// Given only bearer tokens configured: API keys and peers are no credentials.
const TOKENS_ONLY: Array<[string, Credentials, string]> = [
  ['ApiKey is an unknown scheme', { authorization: `ApiKey ${KEY}` }, 'refused:token_malformed'],
  ['x-api-key is ignored', { apiKey: KEY }, 'refused:token_missing'],
  ['x-api-key beside a token is no ambiguity', { authorization: 'Bearer alice-token', apiKey: KEY }, 'oidc:alice:analysts'],
  ['a peer is ignored', { peer }, 'refused:token_missing'],
];

for (const [name, credentials, expected] of TOKENS_ONLY) {
  test(`caller (tokens only): ${name}`, async () => assert.equal(await outcome(tokensOnly, credentials), expected));
}

test('the missing-credential message names what is accepted here', async () => {
  await assert.rejects(everything({}), /expected an Authorization header "Bearer <token>", an API key \(x-api-key, or Authorization "ApiKey <key>"\) or an mTLS client certificate with a SPIFFE id, found none/);
  await assert.rejects(tokensOnly({}), /^IdentityError: expected an Authorization header "Bearer <token>", found none$/);
});
