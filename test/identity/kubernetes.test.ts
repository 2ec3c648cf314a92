/**
 * Kubernetes service-account tokens in issuer mode: verified like an OIDC token against the cluster issuer's
 * discovery document and JWKS (the dev issuer plays the cluster issuer, minting tokens shaped like the API
 * server's), told from users' OIDC tokens by `iss`. An HTTPS front in the test stands in for the API server's
 * authenticated `/openid/v1/jwks`, to check the cluster CA, the reader credential and where it is (not) sent.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { SignJWT, decodeJwt, generateKeyPair } from 'jose';
import { Authenticator, type KubernetesOptions } from '../../src/identity/authenticator.ts';
import { IdentityError, type IdentityErrorCode } from '../../src/identity/errors.ts';
import { compileGroupMappings } from '../../src/identity/group-mappings.ts';
import { parseServiceAccountUsername } from '../../src/identity/service-account.ts';
import { startDevIssuer, type DevIssuer } from '../../src/dev/oidc-issuer.ts';
import { createMtlsTestCertificates, type MtlsTestCertificates } from '../../scripts/lib/certs.ts';
import { RUN_DIR } from '../../scripts/lib/paths.ts';

const AUDIENCE = 'tollgate';
const READER = 'jwks-reader-secret';

let cluster: DevIssuer;
let users: DevIssuer;
let stranger: DevIssuer;
let pki: MtlsTestCertificates;
let dir: string;

before(async () => {
  cluster = await startDevIssuer({ clients: [], audience: AUDIENCE, kid: 'sa-key-1' });
  users = await startDevIssuer({ clients: [], audience: AUDIENCE });
  stranger = await startDevIssuer({ clients: [], audience: AUDIENCE, kid: 'sa-key-1' });
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  dir = await fs.promises.mkdtemp(path.join(RUN_DIR, 'k8s-issuer-'));
  pki = await createMtlsTestCertificates(dir, {});
});
after(async () => {
  await Promise.all([cluster?.close(), users?.close(), stranger?.close()]);
  if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
});

/** A token shaped like the API server's (`kubectl create token orders -n shop --audience tollgate`). */
function serviceAccountToken(issuer: DevIssuer, overrides: { sub?: string; audience?: string; ttlSeconds?: number; namespace?: string } = {}) {
  const namespace = overrides.namespace ?? 'shop';
  return issuer.mint({
    sub: overrides.sub ?? `system:serviceaccount:${namespace}:orders`,
    groups: [],
    audience: overrides.audience ?? AUDIENCE,
    ...(overrides.ttlSeconds !== undefined && { ttlSeconds: overrides.ttlSeconds }),
    extraClaims: {
      groups: undefined,
      'kubernetes.io': { namespace, serviceaccount: { name: 'orders', uid: 'b1c1d7f2-0000-4000-8000-00000000abcd' } },
    },
  });
}

function authenticator(kubernetes: Partial<Extract<KubernetesOptions, { mode: 'issuer' }>> = {}) {
  return new Authenticator({
    oidc: [{ issuer: users.issuer, audiences: [AUDIENCE], groupsClaim: 'groups', algorithms: ['RS256'] }],
    kubernetes: { mode: 'issuer', issuer: cluster.issuer, audiences: [AUDIENCE], algorithms: ['RS256'], fetchTimeoutMs: 2000, ...kubernetes },
    mapGroups: compileGroupMappings([
      { subject: 'system:serviceaccount:shop:*', authenticatedBy: 'kubernetes', groups: ['shop-workloads'] },
      { claim: 'kubernetes.io.namespace', equals: 'payments', groups: ['pci'] },
    ]),
    retry: false,
  });
}

async function refused(promise: Promise<unknown>, code: IdentityErrorCode, message?: RegExp): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof IdentityError, `expected an IdentityError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return;
  }
  assert.fail(`expected ${code}`);
}

describe('service-account tokens verified against the cluster issuer', () => {
  test('a service-account token becomes a kubernetes principal with the service-account groups, its uid and expiry', async () => {
    const a = authenticator();
    await a.start();
    assert.equal(a.kubernetesIssuer, cluster.issuer);
    const token = await serviceAccountToken(cluster);
    assert.deepEqual(await a.authenticateBearer(token), {
      subject: 'system:serviceaccount:shop:orders',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'shop-workloads'],
      issuer: cluster.issuer,
      authenticatedBy: 'kubernetes',
      uid: 'b1c1d7f2-0000-4000-8000-00000000abcd',
      expiresAt: decodeJwt(token).exp,
    });
    a.close();
  });

  test('told from a user\'s OIDC token by iss: both kinds side by side', async () => {
    const a = authenticator();
    await a.start();
    const user = await a.authenticateBearer(await users.mint({ sub: 'alice', groups: ['analysts'] }));
    assert.deepEqual([user.subject, user.authenticatedBy, user.groups], ['alice', 'oidc', ['analysts']]);
    const sa = await a.authenticateBearer(await serviceAccountToken(cluster, { namespace: 'payments' }));
    assert.deepEqual([sa.authenticatedBy, sa.groups], ['kubernetes', ['system:serviceaccounts', 'system:serviceaccounts:payments', 'pci']]);
    a.close();
  });

  test('a token meant for another audience (the API server\'s own) is refused', async () => {
    const a = authenticator();
    await a.start();
    await refused(a.authenticateBearer(await serviceAccountToken(cluster, { audience: 'https://kubernetes.default.svc.cluster.local' })), 'audience_mismatch');
    a.close();
  });

  test('an expired token is refused', async () => {
    const a = authenticator();
    await a.start();
    await refused(a.authenticateBearer(await serviceAccountToken(cluster, { ttlSeconds: -120 })), 'token_expired');
    a.close();
  });

  test('a forged token (right iss and kid, a key the cluster never published) is refused', async () => {
    const a = authenticator();
    await a.start();
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ sub: 'system:serviceaccount:kube-system:admin', 'kubernetes.io': { namespace: 'kube-system' } })
      .setProtectedHeader({ alg: 'RS256', kid: 'sa-key-1' }).setIssuer(cluster.issuer).setAudience(AUDIENCE).setExpirationTime('5m').sign(privateKey);
    await refused(a.authenticateBearer(forged), 'signature_invalid');
    // Another cluster's key with the same kid, claiming this cluster's issuer.
    await refused(a.authenticateBearer(await stranger.mint({ sub: 'system:serviceaccount:shop:orders', groups: [], extraClaims: { iss: cluster.issuer } })), 'signature_invalid');
    a.close();
  });

  test('a token of an issuer nobody configured is refused', async () => {
    const a = authenticator();
    await a.start();
    await refused(a.authenticateBearer(await serviceAccountToken(stranger)), 'issuer_unknown');
    a.close();
  });

  test('a token of the cluster issuer whose subject is no service account is refused', async () => {
    const a = authenticator();
    await a.start();
    for (const sub of ['alice', 'system:serviceaccount:shop', 'system:serviceaccount:Shop:orders', 'system:serviceaccount:shop:orders:extra']) {
      await refused(a.authenticateBearer(await cluster.mint({ sub, groups: [] })), 'subject_malformed', /system:serviceaccount:<namespace>:<name>/);
    }
    a.close();
  });

  test('service-account usernames are parsed strictly', () => {
    assert.deepEqual(parseServiceAccountUsername('system:serviceaccount:kube-system:default'), { namespace: 'kube-system', name: 'default' });
    assert.deepEqual(parseServiceAccountUsername('system:serviceaccount:a:b.c-d'), { namespace: 'a', name: 'b.c-d' });
    for (const bad of ['system:serviceaccounts:shop', 'system:serviceaccount::x', 'system:serviceaccount:-x:y', 'system:serviceaccount:x:Y', `system:serviceaccount:${'n'.repeat(64)}:x`]) {
      assert.equal(parseServiceAccountUsername(bad), undefined, bad);
    }
  });
});

describe('the API server\'s keys behind its CA and authentication', () => {
  let front: https.Server;
  let base: string;
  const seen: Array<{ url: string | undefined; authorization: string | undefined }> = [];
  let jwksOrigin = '';

  before(async () => {
    // Like kube-apiserver: discovery and keys only for an authenticated caller; the discovery document names the
    // issuer and a jwks_uri (here, on purpose, possibly at another origin).
    front = https.createServer({ cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) }, (req, res) => {
      seen.push({ url: req.url, authorization: req.headers.authorization });
      const reply = (status: number, body: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
      if (req.headers.authorization !== `Bearer ${READER}`) return reply(401, { kind: 'Status', status: 'Failure', message: 'Unauthorized', code: 401 });
      if (req.url === '/.well-known/openid-configuration') return reply(200, { issuer: cluster.issuer, jwks_uri: `${jwksOrigin}/openid/v1/jwks` });
      if (req.url === '/openid/v1/jwks') {
        fetch(`${cluster.issuer}/jwks`).then((r) => r.json()).then((jwks) => reply(200, jwks), () => reply(500, {}));
        return;
      }
      reply(404, {});
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    base = `https://127.0.0.1:${(front.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => { front.closeAllConnections(); front.close(() => resolve()); }));

  const ca = () => fs.readFileSync(pki.ca.cert, 'utf8');

  test('jwksUri with the cluster CA and a reader credential: keys load, discovery is skipped, the credential is sent', async () => {
    seen.length = 0;
    const a = authenticator({ jwksUri: `${base}/openid/v1/jwks`, ca: ca(), bearerToken: () => READER });
    await a.start();
    assert.equal((await a.authenticateBearer(await serviceAccountToken(cluster))).authenticatedBy, 'kubernetes');
    assert.deepEqual(seen, [{ url: '/openid/v1/jwks', authorization: `Bearer ${READER}` }]);
    a.close();
  });

  test('discovery through the API server, keys at the same origin: the credential goes to both', async () => {
    seen.length = 0;
    jwksOrigin = base;
    const a = authenticator({ discoveryUrl: `${base}/.well-known/openid-configuration`, ca: ca(), bearerToken: () => READER });
    await a.start();
    assert.equal((await a.authenticateBearer(await serviceAccountToken(cluster))).subject, 'system:serviceaccount:shop:orders');
    assert.deepEqual(seen.map((s) => [s.url, s.authorization]), [
      ['/.well-known/openid-configuration', `Bearer ${READER}`],
      ['/openid/v1/jwks', `Bearer ${READER}`],
    ]);
    a.close();
  });

  test('a discovery document naming keys at another origin does not get the credential (keys unavailable, fail closed)', async () => {
    seen.length = 0;
    // Same server, but "localhost" is another origin than "127.0.0.1" (the certificate covers both).
    jwksOrigin = base.replace('127.0.0.1', 'localhost');
    const a = authenticator({ discoveryUrl: `${base}/.well-known/openid-configuration`, ca: ca(), bearerToken: () => READER });
    await a.start();
    assert.deepEqual(seen.map((s) => [s.url, s.authorization]), [
      ['/.well-known/openid-configuration', `Bearer ${READER}`],
      ['/openid/v1/jwks', undefined],
    ]);
    await refused(a.authenticateBearer(await serviceAccountToken(cluster)), 'jwks_unavailable', /401/);
    a.close();
  });

  test('without the cluster CA the keys cannot be fetched: tokens are refused, not trusted', async () => {
    const a = authenticator({ jwksUri: `${base}/openid/v1/jwks`, bearerToken: () => READER });
    await a.start();
    assert.equal(a.ready(), false);
    assert.match(a.health()[1]?.lastError ?? '', /certificate/);
    await refused(a.authenticateBearer(await serviceAccountToken(cluster)), 'jwks_unavailable');
    a.close();
  });

  test('without the reader credential the API server refuses the keys: tokens are refused', async () => {
    const a = authenticator({ jwksUri: `${base}/openid/v1/jwks`, ca: ca() });
    await a.start();
    assert.match(a.health()[1]?.lastError ?? '', /found 401: "Unauthorized"/);
    await refused(a.authenticateBearer(await serviceAccountToken(cluster)), 'jwks_unavailable');
    a.close();
  });
});
