import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startDevIssuer } from '../../src/dev/oidc-issuer.ts';
import type { DevIssuer } from '../../src/dev/oidc-issuer.ts';
import { OidcVerifier } from '../../src/identity/oidc.ts';

const AUDIENCE = 'tollgate';

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

describe('dev OIDC issuer', () => {
  let idp: DevIssuer;
  let verifier: OidcVerifier;

  before(async () => {
    idp = await startDevIssuer({
      clients: [
        { id: 'kafka-producer', secret: 's3cret: with spaces & symbols', groups: ['producers', 'analysts'] },
        { id: 'ci', secret: 'ci-secret', groups: ['deployers'], subject: 'service:ci' },
      ],
      audience: AUDIENCE,
      tokenTtlSeconds: 600,
    });
    verifier = new OidcVerifier({
      issuer: idp.issuer,
      audiences: [AUDIENCE],
      groupsClaim: 'groups',
      algorithms: ['RS256'],
      jwksRefreshCooldownMs: 0,
    });
    await verifier.start();
  });

  after(async () => {
    await idp.close();
  });

  it('listens on 127.0.0.1 and serves discovery', async () => {
    assert.equal(idp.issuer, `http://127.0.0.1:${idp.port}`);
    assert.equal(idp.tokenEndpoint, `${idp.issuer}/token`);
    const response = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      issuer: idp.issuer,
      jwks_uri: `${idp.issuer}/jwks`,
      token_endpoint: `${idp.issuer}/token`,
      grant_types_supported: ['client_credentials'],
      response_types_supported: ['token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    });
  });

  it('serves public keys only and counts JWKS requests', async () => {
    const before = idp.jwksRequests;
    const response = await fetch(`${idp.issuer}/jwks`);
    const { keys } = (await response.json()) as { keys: Array<Record<string, unknown>> };
    assert.equal(idp.jwksRequests, before + 1);
    assert.equal(keys.length >= 1, true);
    for (const key of keys) {
      assert.equal(key.kty, 'RSA');
      assert.equal(key.alg, 'RS256');
      assert.equal(key.use, 'sig');
      assert.equal(typeof key.kid, 'string');
      assert.equal(key.d, undefined, 'no private parts');
    }
  });

  it('issues client_credentials tokens with HTTP Basic client authentication', async () => {
    const { status, headers, body } = await postForm(
      idp.tokenEndpoint,
      { grant_type: 'client_credentials', scope: 'kafka:produce' },
      { authorization: basic('kafka-producer', 's3cret: with spaces & symbols') },
    );
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(headers.get('cache-control'), 'no-store');
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 600);
    assert.equal(body.scope, 'kafka:produce');
    const token = body.access_token as string;
    const claims = decodeJwt(token);
    assert.equal(claims.iss, idp.issuer);
    assert.equal(claims.sub, 'kafka-producer');
    assert.equal(claims.aud, AUDIENCE);
    assert.equal(claims.client_id, 'kafka-producer');
    assert.equal(typeof claims.jti, 'string');
    assert.equal((claims.exp as number) - (claims.iat as number), 600);
    assert.equal(decodeProtectedHeader(token).alg, 'RS256');
    const principal = await verifier.verify(token);
    assert.deepEqual(principal.groups, ['producers', 'analysts']);
  });

  it('issues client_credentials tokens with form client authentication', async () => {
    const { status, body } = await postForm(idp.tokenEndpoint, {
      grant_type: 'client_credentials',
      client_id: 'ci',
      client_secret: 'ci-secret',
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.scope, undefined);
    const principal = await verifier.verify(body.access_token as string);
    assert.equal(principal.subject, 'service:ci');
    assert.deepEqual(principal.groups, ['deployers']);
  });

  it('answers RFC 6749 errors', async () => {
    const wrongBasic = await postForm(
      idp.tokenEndpoint,
      { grant_type: 'client_credentials' },
      { authorization: basic('ci', 'wrong') },
    );
    assert.equal(wrongBasic.status, 401);
    assert.deepEqual(wrongBasic.body.error, 'invalid_client');
    assert.match(wrongBasic.headers.get('www-authenticate') ?? '', /^Basic/);

    const wrongForm = await postForm(idp.tokenEndpoint, {
      grant_type: 'client_credentials',
      client_id: 'ci',
      client_secret: 'ci-secret-but-longer',
    });
    assert.equal(wrongForm.status, 401);
    assert.equal(wrongForm.body.error, 'invalid_client');

    const unknownClient = await postForm(idp.tokenEndpoint, {
      grant_type: 'client_credentials',
      client_id: 'nobody',
      client_secret: 'x',
    });
    assert.equal(unknownClient.status, 401);
    assert.equal(unknownClient.body.error, 'invalid_client');

    const noCredentials = await postForm(idp.tokenEndpoint, { grant_type: 'client_credentials' });
    assert.equal(noCredentials.status, 401);
    assert.equal(noCredentials.body.error, 'invalid_client');

    const password = await postForm(idp.tokenEndpoint, {
      grant_type: 'password',
      client_id: 'ci',
      client_secret: 'ci-secret',
    });
    assert.equal(password.status, 400);
    assert.equal(password.body.error, 'unsupported_grant_type');

    const noGrant = await postForm(idp.tokenEndpoint, { client_id: 'ci', client_secret: 'ci-secret' });
    assert.equal(noGrant.status, 400);
    assert.equal(noGrant.body.error, 'invalid_request');

    const json = await fetch(idp.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials' }),
    });
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { error: string }).error, 'invalid_request');

    const get = await fetch(idp.tokenEndpoint);
    assert.equal(get.status, 405);
    await get.body?.cancel();
    const missing = await fetch(`${idp.issuer}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });

  it('mints tokens on POST /dev/mint', async () => {
    const response = await fetch(`${idp.issuer}/dev/mint`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sub: 'dave', groups: ['sre'], ttlSeconds: 120 }),
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { access_token: string; expires_in: number };
    assert.equal(body.expires_in, 120);
    const claims = decodeJwt(body.access_token);
    assert.equal((claims.exp as number) - (claims.iat as number), 120);
    const principal = await verifier.verify(body.access_token);
    assert.equal(principal.subject, 'dave');
    assert.deepEqual(principal.groups, ['sre']);

    for (const bad of [{ groups: [] }, { sub: 'x', groups: 'sre' }, { sub: 'x', groups: [], ttlSeconds: -1 }]) {
      const rejected = await fetch(`${idp.issuer}/dev/mint`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(bad),
      });
      assert.equal(rejected.status, 400);
      assert.equal(((await rejected.json()) as { error: string }).error, 'invalid_request');
    }
  });

  it('rotates keys: a new kid signs, the JWKS serves old and new', async () => {
    const oldToken = await idp.mint({ sub: 'erin', groups: [] });
    await idp.rotateKey();
    const newToken = await idp.mint({ sub: 'erin', groups: [] });
    const oldKid = decodeProtectedHeader(oldToken).kid;
    const newKid = decodeProtectedHeader(newToken).kid;
    assert.notEqual(oldKid, newKid);
    const { keys } = (await (await fetch(`${idp.issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> };
    assert.deepEqual(
      keys.map((key) => key.kid),
      [oldKid, newKid],
    );
    // The verifier (cooldown 0 here) refreshes on the unknown kid and accepts both.
    assert.equal((await verifier.verify(newToken)).subject, 'erin');
    assert.equal((await verifier.verify(oldToken)).subject, 'erin');
  });

  it('honours an issuer URL with a path', async () => {
    const probe = await startDevIssuer({ clients: [], audience: AUDIENCE });
    const port = probe.port;
    await probe.close();
    const realm = await startDevIssuer({
      port,
      clients: [],
      audience: AUDIENCE,
      issuerUrl: `http://127.0.0.1:${port}/realms/dev/`,
    });
    try {
      assert.equal(realm.issuer, `http://127.0.0.1:${port}/realms/dev`);
      const realmVerifier = new OidcVerifier({
        issuer: realm.issuer,
        audiences: [AUDIENCE],
        groupsClaim: 'groups',
        algorithms: ['RS256'],
      });
      await realmVerifier.start();
      const token = await realm.mint({ sub: 'frank', groups: ['g'] });
      assert.equal((await realmVerifier.verify(token)).subject, 'frank');
    } finally {
      await realm.close();
    }
  });
});
