import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportSPKI, generateKeyPair, importJWK } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { startDevIssuer } from '../../src/dev/oidc-issuer.ts';
import type { DevIssuer } from '../../src/dev/oidc-issuer.ts';
import { IdentityError, OidcVerifier } from '../../src/identity/oidc.ts';
import type { IdentityErrorCode, OidcVerifierOptions } from '../../src/identity/oidc.ts';

const AUDIENCE = 'tollgate';

function options(issuer: DevIssuer, overrides: Partial<OidcVerifierOptions> = {}): OidcVerifierOptions {
  return { issuer: issuer.issuer, audiences: [AUDIENCE], groupsClaim: 'groups', algorithms: ['RS256'], ...overrides };
}

async function started(issuer: DevIssuer, overrides: Partial<OidcVerifierOptions> = {}): Promise<OidcVerifier> {
  const verifier = new OidcVerifier(options(issuer, overrides));
  await verifier.start();
  return verifier;
}

/** Asserts that `promise` rejects with an IdentityError of `code` whose message does not contain the token. */
async function rejectsWith(promise: Promise<unknown>, code: IdentityErrorCode, token?: string): Promise<IdentityError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof IdentityError, `expected an IdentityError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (token) {
    assert.ok(!caught.message.includes(token), 'the message must not contain the token');
    const signature = token.split('.')[2] ?? '';
    if (signature) assert.ok(!caught.message.includes(signature), 'the message must not contain the signature');
  }
  return caught;
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A token with the right iss/aud, signed by a fresh RSA key the issuer never published. */
async function tokenWithUnpublishedKey(issuer: DevIssuer, kid: string): Promise<string> {
  const { privateKey } = await generateKeyPair('RS256');
  return new SignJWT({ sub: 'mallory', groups: ['admins'] })
    .setProtectedHeader({ alg: 'RS256', kid })
    .setIssuer(issuer.issuer)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey);
}

describe('OidcVerifier against the dev issuer', () => {
  let idp: DevIssuer;
  let other: DevIssuer;

  before(async () => {
    idp = await startDevIssuer({ clients: [], audience: AUDIENCE, kid: 'dev-key-1' });
    // A second issuer at a different URL whose key has the same kid.
    other = await startDevIssuer({ clients: [], audience: AUDIENCE, kid: 'dev-key-1' });
  });

  after(async () => {
    await idp.close();
    await other.close();
  });

  it('verifies a valid token into a Principal with groups', async () => {
    const verifier = await started(idp);
    const token = await idp.mint({ sub: 'alice', groups: ['analysts', 'sre', 'analysts'] });
    const principal = await verifier.verify(token);
    assert.deepEqual(principal, {
      subject: 'alice',
      groups: ['analysts', 'sre'],
      issuer: idp.issuer,
      authenticatedBy: 'oidc',
      expiresAt: decodeJwt(token).exp,
    });
    const health = verifier.health();
    assert.equal(health.ready, true);
    assert.equal(health.issuer, idp.issuer);
    assert.equal(health.jwksFetches, 1);
    assert.equal(typeof health.lastJwksFetchAt, 'string');
    assert.deepEqual(health.kids, ['dev-key-1']);
    assert.equal(health.lastError, undefined);
  });

  it('reads groups from a nested claim, a single string, or nothing', async () => {
    const nested = await startDevIssuer({ clients: [], audience: AUDIENCE, groupsClaim: 'realm_access.roles' });
    try {
      const verifier = await started(nested, { groupsClaim: 'realm_access.roles' });
      const token = await nested.mint({ sub: 'bob', groups: ['platform-admins'] });
      assert.deepEqual(decodeJwt(token).realm_access, { roles: ['platform-admins'] });
      assert.deepEqual((await verifier.verify(token)).groups, ['platform-admins']);

      const single = await nested.mint({ sub: 'bob', groups: [], extraClaims: { realm_access: { roles: 'solo' } } });
      assert.deepEqual((await verifier.verify(single)).groups, ['solo']);

      const odd = await nested.mint({ sub: 'bob', groups: [], extraClaims: { realm_access: { roles: { a: 1 } } } });
      assert.deepEqual((await verifier.verify(odd)).groups, []);
    } finally {
      await nested.close();
    }
  });

  it('uses a configured subject claim and requires a subject', async () => {
    const verifier = await started(idp, { subjectClaim: 'preferred_username' });
    const token = await idp.mint({ sub: 'uuid-1', groups: [], extraClaims: { preferred_username: 'carol' } });
    assert.equal((await verifier.verify(token)).subject, 'carol');
    const without = await idp.mint({ sub: 'uuid-2', groups: [] });
    await rejectsWith(verifier.verify(without), 'subject_missing', without);
    const plain = await started(idp);
    const emptySub = await idp.mint({ sub: 'x', groups: [], extraClaims: { sub: '' } });
    await rejectsWith(plain.verify(emptySub), 'subject_missing', emptySub);
  });

  it('rejects an expired token', async () => {
    const verifier = await started(idp);
    const now = nowSeconds();
    const token = await idp.mint({ sub: 'alice', groups: [], extraClaims: { iat: now - 120, exp: now - 60 } });
    const error = await rejectsWith(verifier.verify(token), 'token_expired', token);
    assert.match(error.message, /expected exp after .* found exp/);
  });

  it('accepts an expired token within the configured clock tolerance', async () => {
    const verifier = await started(idp, { clockToleranceSeconds: 120 });
    const now = nowSeconds();
    const token = await idp.mint({ sub: 'alice', groups: [], extraClaims: { iat: now - 120, exp: now - 60 } });
    assert.equal((await verifier.verify(token)).subject, 'alice');
  });

  it('rejects a token that is not yet valid', async () => {
    const verifier = await started(idp);
    const token = await idp.mint({ sub: 'alice', groups: [], extraClaims: { nbf: nowSeconds() + 3600 } });
    await rejectsWith(verifier.verify(token), 'token_not_yet_valid', token);
  });

  it('rejects a token for another audience, and accepts any configured audience', async () => {
    const verifier = await started(idp, { audiences: [AUDIENCE, 'kafka'] });
    const wrong = await idp.mint({ sub: 'alice', groups: [], audience: 'billing' });
    const error = await rejectsWith(verifier.verify(wrong), 'audience_mismatch', wrong);
    assert.match(error.message, /expected aud to contain one of \["tollgate","kafka"\], found "billing"/);
    const ok = await idp.mint({ sub: 'alice', groups: [], audience: ['other', 'kafka'] });
    assert.equal((await verifier.verify(ok)).subject, 'alice');
  });

  it('rejects tokens of another issuer, even with the same kid', async () => {
    const verifier = await started(idp);
    const foreign = await other.mint({ sub: 'alice', groups: ['admins'] });
    assert.equal(decodeProtectedHeader(foreign).kid, 'dev-key-1');
    // Signed by the other issuer's key under a kid our JWKS also has: the signature does not verify.
    await rejectsWith(verifier.verify(foreign), 'signature_invalid', foreign);
    // The other issuer forging our iss: same outcome.
    const forged = await other.mint({ sub: 'alice', groups: ['admins'], extraClaims: { iss: idp.issuer } });
    await rejectsWith(verifier.verify(forged), 'signature_invalid', forged);
    // Our key but another iss: the signature verifies, the issuer does not match.
    const misissued = await idp.mint({ sub: 'alice', groups: [], extraClaims: { iss: other.issuer } });
    const error = await rejectsWith(verifier.verify(misissued), 'issuer_mismatch', misissued);
    assert.ok(error.message.includes(idp.issuer) && error.message.includes(other.issuer));
  });

  it('rejects alg none without touching the JWKS', async () => {
    const verifier = await started(idp);
    const now = nowSeconds();
    const claims = { iss: idp.issuer, sub: 'alice', aud: AUDIENCE, iat: now, exp: now + 300, groups: ['admins'] };
    for (const header of [{ alg: 'none', kid: 'dev-key-1' }, { alg: 'none' }, { alg: 'NONE', typ: 'JWT' }]) {
      const token = `${b64url(header)}.${b64url(claims)}.`;
      await rejectsWith(verifier.verify(token), 'algorithm_not_allowed', token);
    }
    assert.equal(verifier.health().jwksFetches, 1);
  });

  it('rejects HS256 signed with the RSA public key as the HMAC secret (algorithm confusion)', async () => {
    const verifier = await started(idp, { jwksRefreshCooldownMs: 0 });
    const response = await fetch(`${idp.issuer}/jwks`);
    const { keys } = (await response.json()) as { keys: JWK[] };
    const publicKey = await importJWK(keys[0] as JWK, 'RS256', { extractable: true });
    const pem = await exportSPKI(publicKey as CryptoKey);
    for (const secret of [pem, pem.trim(), JSON.stringify(keys[0])]) {
      const token = await new SignJWT({ sub: 'mallory', groups: ['platform-admins'] })
        .setProtectedHeader({ alg: 'HS256', kid: 'dev-key-1' })
        .setIssuer(idp.issuer)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(secret));
      const error = await rejectsWith(verifier.verify(token), 'algorithm_not_allowed', token);
      assert.match(error.message, /expected alg one of \["RS256"\], found "HS256"/);
    }
    // Even with no refresh cooldown, a disallowed alg never causes a JWKS fetch.
    assert.equal(verifier.health().jwksFetches, 1);
  });

  it('rejects a token signed with a key that is not in the JWKS, after exactly one refresh', async () => {
    const verifier = await started(idp, { jwksRefreshCooldownMs: 0 });
    const servedBefore = idp.jwksRequests;
    const token = await tokenWithUnpublishedKey(idp, 'not-published');
    const error = await rejectsWith(verifier.verify(token), 'key_not_found', token);
    assert.match(error.message, /kid "not-published"/);
    assert.match(error.message, /after a refresh/);
    assert.equal(verifier.health().jwksFetches, 2);
    assert.equal(idp.jwksRequests, servedBefore + 1);
  });

  it('rejects garbage and empty tokens', async () => {
    const verifier = await started(idp);
    await rejectsWith(verifier.verify(''), 'token_missing');
    await rejectsWith(verifier.verify('not-a-jwt'), 'token_malformed');
    await rejectsWith(verifier.verify('a.b.c'), 'token_malformed');
    await rejectsWith(verifier.verify('x'.repeat(20_000)), 'token_malformed');
    const token = await idp.mint({ sub: 'alice', groups: [] });
    const [header, payload] = token.split('.');
    const tampered = `${header}.${payload}.${Buffer.from('nope').toString('base64url')}`;
    await rejectsWith(verifier.verify(tampered), 'signature_invalid', tampered);
  });

  it('caches verified tokens: 1000 verifications, one verification of crypto, no more JWKS fetches', async () => {
    const verifier = await started(idp);
    const servedBefore = idp.jwksRequests;
    const token = await idp.mint({ sub: 'alice', groups: ['analysts'] });
    const first = await verifier.verify(token);
    for (let i = 0; i < 999; i += 1) assert.equal(await verifier.verify(token), first);
    const health = verifier.health();
    assert.equal(health.tokenCacheHits, 999);
    assert.equal(health.tokenCacheSize, 1);
    assert.equal(health.jwksFetches, 1);
    assert.equal(idp.jwksRequests, servedBefore);
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first.groups));
  });

  it('rejects a cached token once it is past its exp', async () => {
    const verifier = await started(idp);
    // A one-second token (exp may be fractional: NumericDate allows it and the verifier honours it exactly).
    const exp = Date.now() / 1000 + 1;
    const token = await idp.mint({ sub: 'alice', groups: [], extraClaims: { exp } });
    await verifier.verify(token);
    await verifier.verify(token);
    assert.equal(verifier.health().tokenCacheHits, 1);
    await sleep(Math.max(0, exp * 1000 - Date.now()) + 50);
    await rejectsWith(verifier.verify(token), 'token_expired', token);
    assert.equal(verifier.health().tokenCacheHits, 1);
  });

  it('fails start() with discovery_failed when the discovery document names another issuer', async () => {
    const verifier = new OidcVerifier({
      issuer: 'https://idp.example.test',
      discoveryUrl: `${idp.issuer}/.well-known/openid-configuration`,
      audiences: [AUDIENCE],
      groupsClaim: 'groups',
      algorithms: ['RS256'],
    });
    const error = await rejectsWith(verifier.start(), 'discovery_failed');
    assert.ok(error.message.includes('"https://idp.example.test"') && error.message.includes(idp.issuer));
    const health = verifier.health();
    assert.equal(health.ready, false);
    assert.equal(health.jwksFetches, 0);
    assert.match(health.lastError ?? '', /expected issuer/);
    // Not ready: tokens are refused (fail closed), without another attempt within the cooldown.
    const token = await idp.mint({ sub: 'alice', groups: [], extraClaims: { iss: 'https://idp.example.test' } });
    await rejectsWith(verifier.verify(token), 'discovery_failed', token);
  });

  it('fails start() with discovery_failed when the issuer is unreachable', async () => {
    const gone = await startDevIssuer({ clients: [], audience: AUDIENCE });
    await gone.close();
    const verifier = new OidcVerifier(options(gone, { fetchTimeoutMs: 2000 }));
    await rejectsWith(verifier.start(), 'discovery_failed');
    assert.equal(verifier.health().ready, false);
  });

  it('picks up a rotated key after the cooldown, and rate-limits unknown kids', async () => {
    const rotating = await startDevIssuer({ clients: [], audience: AUDIENCE });
    try {
      const cooldown = 400;
      const verifier = await started(rotating, { jwksRefreshCooldownMs: cooldown });
      const oldToken = await rotating.mint({ sub: 'alice', groups: [] });
      await rotating.rotateKey();
      const newToken = await rotating.mint({ sub: 'alice', groups: [] });
      assert.notEqual(decodeProtectedHeader(newToken).kid, decodeProtectedHeader(oldToken).kid);

      // Within the cooldown of the start-up fetch: no refresh, the new kid is unknown.
      const early = await rejectsWith(verifier.verify(newToken), 'key_not_found', newToken);
      assert.match(early.message, /cooldown/);
      assert.equal(verifier.health().jwksFetches, 1);

      await sleep(cooldown + 50);
      assert.equal((await verifier.verify(newToken)).subject, 'alice');
      assert.equal((await verifier.verify(oldToken)).subject, 'alice');
      assert.equal(verifier.health().jwksFetches, 2);
      assert.equal(verifier.health().kids.length, 2);

      // A burst of 20 unknown kids once the cooldown has passed: one shared refresh at most.
      await sleep(cooldown + 50);
      const burst = await Promise.all(
        Array.from({ length: 20 }, (_, i) => tokenWithUnpublishedKey(rotating, `unknown-${i}`)),
      );
      const before = verifier.health().jwksFetches;
      const served = rotating.jwksRequests;
      await Promise.all(burst.map((token) => rejectsWith(verifier.verify(token), 'key_not_found', token)));
      assert.ok(verifier.health().jwksFetches - before <= 1, 'at most one fetch for the burst');
      assert.ok(rotating.jwksRequests - served <= 1);
      // And right after it, nothing more.
      const afterBurst = verifier.health().jwksFetches;
      for (const token of burst) await rejectsWith(verifier.verify(token), 'key_not_found', token);
      assert.equal(verifier.health().jwksFetches, afterBurst);
    } finally {
      await rotating.close();
    }
  });

  it('fails closed when the JWKS is older than jwksMaxAgeMs and cannot be refreshed', async () => {
    const flaky = await startDevIssuer({ clients: [], audience: AUDIENCE });
    const maxAge = 500;
    const verifier = await started(flaky, { jwksMaxAgeMs: maxAge, jwksRefreshCooldownMs: 0, fetchTimeoutMs: 1000 });
    const token = await flaky.mint({ sub: 'alice', groups: [] });
    assert.equal((await verifier.verify(token)).subject, 'alice');
    await flaky.close();
    await sleep(maxAge + 50);
    // The token is still cached: verified tokens do not depend on the JWKS any more.
    assert.equal((await verifier.verify(token)).subject, 'alice');
    const fresh = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'RS256' }).sign(
      (await generateKeyPair('RS256')).privateKey,
    );
    // A token not seen before needs keys: the refresh fails and keys past their age are not used.
    await rejectsWith(verifier.verify(fresh), 'jwks_unavailable', fresh);
    const health = verifier.health();
    assert.equal(health.ready, false);
    assert.ok(health.lastError);
  });

  it('refuses HMAC and none algorithms when constructed, saying it is asymmetric-only', () => {
    const base = { issuer: 'https://idp.example.test', audiences: [AUDIENCE], groupsClaim: 'groups' };
    assert.throws(() => new OidcVerifier({ ...base, algorithms: ['none'] }), /"none" is refused.*asymmetric/);
    assert.throws(() => new OidcVerifier({ ...base, algorithms: ['HS256'] }), /HS256.*asymmetric/);
    assert.throws(() => new OidcVerifier({ ...base, algorithms: ['RS256', 'HS512'] }), /HS512.*asymmetric/);
    assert.throws(() => new OidcVerifier({ ...base, algorithms: [] }), /at least one allowed algorithm/);
    assert.throws(() => new OidcVerifier({ ...base, algorithms: ['RS257'] }), /not supported/);
    assert.throws(() => new OidcVerifier({ ...base, audiences: [], algorithms: ['RS256'] }), /audience/);
    assert.doesNotThrow(() => new OidcVerifier({ ...base, algorithms: ['RS256', 'ES256', 'EdDSA'] }));
  });
});
