/**
 * TokenReview mode against a local HTTPS server that answers like kube-apiserver (token-review-server.ts): what the
 * reviewer sends, how answers become principals, what is cached and for how long, and that every way the API server
 * can fail denies (token_review_failed) and is asked again next time.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TokenReviewer, type TokenReviewerOptions } from '../../src/identity/token-review.ts';
import { Authenticator } from '../../src/identity/authenticator.ts';
import { IdentityError, type IdentityErrorCode } from '../../src/identity/errors.ts';
import { compileGroupMappings } from '../../src/identity/group-mappings.ts';
import { startDevIssuer, type DevIssuer } from '../../src/dev/oidc-issuer.ts';
import { createMtlsTestCertificates, type MtlsTestCertificates } from '../../scripts/lib/certs.ts';
import { RUN_DIR } from '../../scripts/lib/paths.ts';
import { API_SERVER_AUDIENCE, startTokenReviewServer, type TokenReviewServer } from './token-review-server.ts';

const CLUSTER = 'https://kubernetes.default.svc.cluster.local';
const REVIEWER = 'reviewer-secret';
const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** A JWT-shaped token; the API server (here: the stand-in) is what vouches for it, not its signature. */
const jwt = (claims: Record<string, unknown>) => `${b64({ alg: 'RS256', kid: 'sa-key' })}.${b64(claims)}.c2lnbmF0dXJl`;

const ORDERS = jwt({ iss: CLUSTER, sub: 'system:serviceaccount:shop:orders', aud: ['tollgate'], exp: now() + 3600, 'kubernetes.io': { namespace: 'shop' } });
const FOR_API_SERVER = jwt({ iss: CLUSTER, sub: 'system:serviceaccount:shop:orders', aud: [API_SERVER_AUDIENCE], exp: now() + 3600 });
const UNKNOWN = jwt({ iss: CLUSTER, sub: 'system:serviceaccount:shop:deleted', aud: ['tollgate'], exp: now() + 3600 });
const EXPIRED = jwt({ iss: CLUSTER, sub: 'system:serviceaccount:shop:orders', aud: ['tollgate'], exp: now() - 60 });

let pki: MtlsTestCertificates;
let dir: string;
let api: TokenReviewServer;
let ca: string;

before(async () => {
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  dir = await fs.promises.mkdtemp(path.join(RUN_DIR, 'token-review-'));
  pki = await createMtlsTestCertificates(dir, {});
  ca = fs.readFileSync(pki.ca.cert, 'utf8');
  api = await startTokenReviewServer({
    cert: fs.readFileSync(pki.server.cert, 'utf8'), key: fs.readFileSync(pki.server.key, 'utf8'), reviewerToken: REVIEWER,
    tokens: {
      [ORDERS]: { username: 'system:serviceaccount:shop:orders', uid: '6d5f1c1e-0000-4000-8000-000000000001', groups: ['system:serviceaccounts', 'system:serviceaccounts:shop'], audiences: ['tollgate'] },
      [FOR_API_SERVER]: { username: 'system:serviceaccount:shop:orders', audiences: [API_SERVER_AUDIENCE] },
      [EXPIRED]: { username: 'system:serviceaccount:shop:orders', audiences: ['tollgate'] },
    },
  });
});
after(async () => {
  await api?.close();
  if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
});

function reviewer(overrides: Partial<TokenReviewerOptions> = {}): TokenReviewer {
  return new TokenReviewer({ url: api.url, audiences: ['tollgate'], credential: () => REVIEWER, ca, ...overrides });
}

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>;

async function refused(promise: Promise<unknown>, code: IdentityErrorCode, message?: RegExp): Promise<IdentityError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof IdentityError, `expected an IdentityError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

function reset(): void {
  api.behaviour = 'answer';
  api.reviews.length = 0;
}

describe('TokenReviewer', () => {
  test('posts a v1 TokenReview with tollgate\'s audiences and credential, and takes the caller from its status', async () => {
    reset();
    const principal = await reviewer().review(ORDERS, claimsOf(ORDERS));
    assert.deepEqual(principal, {
      subject: 'system:serviceaccount:shop:orders',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
      issuer: CLUSTER,
      authenticatedBy: 'kubernetes',
      uid: '6d5f1c1e-0000-4000-8000-000000000001',
      expiresAt: claimsOf(ORDERS)['exp'],
    });
    assert.equal(api.reviews.length, 1);
    const [sent] = api.reviews;
    assert.equal(sent?.path, '/apis/authentication.k8s.io/v1/tokenreviews');
    assert.equal(sent?.authorization, `Bearer ${REVIEWER}`);
    assert.deepEqual(sent?.body, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: ORDERS, audiences: ['tollgate'] } });
  });

  test('a configured issuer names the principal\'s issuer; service-account groups are there even when the review omits them', async () => {
    reset();
    const bare = jwt({ iss: 'https://elsewhere.test', sub: 'x', aud: ['tollgate'], exp: now() + 600 });
    const server = await startTokenReviewServer({
      cert: fs.readFileSync(pki.server.cert, 'utf8'), key: fs.readFileSync(pki.server.key, 'utf8'), reviewerToken: REVIEWER,
      tokens: { [bare]: { username: 'system:serviceaccount:billing:batch', audiences: ['tollgate'] } },
    });
    try {
      const p = await reviewer({ url: server.url, issuer: CLUSTER }).review(bare, claimsOf(bare));
      assert.equal(p.issuer, CLUSTER);
      assert.deepEqual(p.groups, ['system:serviceaccounts', 'system:serviceaccounts:billing', 'system:authenticated']);
      assert.equal(p.uid, undefined);
    } finally {
      await server.close();
    }
  });

  test('an authentication is cached: the second review of a token does not ask; past cacheTtl it asks again', async () => {
    reset();
    const r = reviewer({ cacheTtlMs: 150 });
    const first = await r.review(ORDERS, claimsOf(ORDERS));
    assert.equal(await r.review(ORDERS, claimsOf(ORDERS)), first);
    assert.equal(api.reviews.length, 1);
    assert.equal(r.health().cacheHits, 1);
    await sleep(300);
    await r.review(ORDERS, claimsOf(ORDERS));
    assert.equal(api.reviews.length, 2, 'asked again once the cache TTL had passed');
  });

  test('concurrent reviews of one token share one request', async () => {
    reset();
    const r = reviewer();
    const all = await Promise.all(Array.from({ length: 8 }, () => r.review(ORDERS, claimsOf(ORDERS))));
    assert.equal(api.reviews.length, 1);
    assert.ok(all.every((p) => p === all[0]));
  });

  test('a token the API server does not authenticate: token_rejected with its reason, remembered for the negative TTL only', async () => {
    reset();
    const r = reviewer({ negativeCacheTtlMs: 150 });
    await refused(r.review(UNKNOWN, claimsOf(UNKNOWN)), 'token_rejected', /did not: "\[invalid bearer token, token lookup failed\]"/);
    await refused(r.review(UNKNOWN, claimsOf(UNKNOWN)), 'token_rejected');
    assert.equal(api.reviews.length, 1, 'the refusal was remembered');
    await sleep(300);
    await refused(r.review(UNKNOWN, claimsOf(UNKNOWN)), 'token_rejected');
    assert.equal(api.reviews.length, 2, 'and asked about again after the negative TTL');
  });

  test('a token meant for the API server (another audience) is refused by the review', async () => {
    reset();
    await refused(reviewer().review(FOR_API_SERVER, claimsOf(FOR_API_SERVER)), 'token_rejected', /audiences/);
  });

  test('an answer that confirms no audience (an API server that is not audience-aware) is refused', async () => {
    reset();
    api.behaviour = 'no-audiences';
    await refused(reviewer().review(ORDERS, claimsOf(ORDERS)), 'audience_mismatch', /valid for the API server itself/);
  });

  test('an expired token is refused without asking', async () => {
    reset();
    await refused(reviewer().review(EXPIRED, claimsOf(EXPIRED)), 'token_expired');
    assert.equal(api.reviews.length, 0);
  });

  for (const [behaviour, message] of [
    ['unauthorized', /refused tollgate's reviewer credential \(401\).*tokenReview\.credential/],
    ['forbidden', /\(403\).*cannot create resource \\"tokenreviews\\".*system:auth-delegator/],
    ['error', /could not review the token: .*expected 200 or 201, found 500: "Internal error occurred/],
    ['not-a-review', /expected a TokenReview .*found kind "ConfigMap"/],
  ] as const) {
    test(`API server ${behaviour}: token_review_failed, never cached, asked again next time`, async () => {
      reset();
      const r = reviewer();
      api.behaviour = behaviour;
      await refused(r.review(ORDERS, claimsOf(ORDERS)), 'token_review_failed', message);
      assert.equal(r.health().failures, 1);
      assert.match(r.health().lastError ?? '', message);
      api.behaviour = 'answer';
      assert.equal((await r.review(ORDERS, claimsOf(ORDERS))).subject, 'system:serviceaccount:shop:orders');
      assert.equal(api.reviews.length, 2);
      assert.equal(r.health().lastError, undefined);
    });
  }

  test('a wrong reviewer credential is a failure of tollgate, not a refusal of the caller', async () => {
    reset();
    await refused(reviewer({ credential: () => 'stale' }).review(ORDERS, claimsOf(ORDERS)), 'token_review_failed', /\(401\)/);
  });

  test('an unreachable API server: token_review_failed saying so', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    await refused(reviewer({ url: `https://127.0.0.1:${closed}` }).review(ORDERS, claimsOf(ORDERS)), 'token_review_failed', /ECONNREFUSED/);
  });

  test('an API server that does not answer in time: token_review_failed after the timeout', async () => {
    reset();
    api.behaviour = 'hang';
    await refused(reviewer({ timeoutMs: 200 }).review(ORDERS, claimsOf(ORDERS)), 'token_review_failed', /no response within 200 ms/);
    api.behaviour = 'answer';
  });

  test('beyond maxInFlight pending reviews, further tokens are refused without asking', async () => {
    reset();
    api.behaviour = 'hang';
    const r = reviewer({ maxInFlight: 1, timeoutMs: 300 });
    const first = r.review(ORDERS, claimsOf(ORDERS));
    await refused(r.review(UNKNOWN, claimsOf(UNKNOWN)), 'token_review_failed', /at most 1 TokenReviews pending/);
    await refused(first, 'token_review_failed', /no response within 300 ms/);
    assert.equal(api.reviews.length, 1);
    api.behaviour = 'answer';
    await refused(r.review(UNKNOWN, claimsOf(UNKNOWN)), 'token_rejected');
  });

  test('the API server\'s certificate must chain to the configured CA', async () => {
    reset();
    const noCa = new TokenReviewer({ url: api.url, audiences: ['tollgate'], credential: () => REVIEWER });
    await refused(noCa.review(ORDERS, claimsOf(ORDERS)), 'token_review_failed', /certificate/);
    assert.equal(api.reviews.length, 0, 'nothing was sent over the untrusted connection');
  });

  test('bad options are refused when built', () => {
    assert.throws(() => reviewer({ audiences: [] }), /at least one non-empty audience/);
    assert.throws(() => reviewer({ url: 'kubernetes.default.svc' }), /absolute/);
    assert.throws(() => reviewer({ ca: 'not pem' }), /PEM/);
    assert.throws(() => reviewer({ cacheTtlMs: 0 }), /cacheTtlMs/);
  });
});

describe('Authenticator in TokenReview mode', () => {
  let idp: DevIssuer;
  before(async () => { idp = await startDevIssuer({ clients: [], audience: 'tollgate' }); });
  after(async () => { await idp?.close(); });

  const authenticator = (issuer?: string) => new Authenticator({
    oidc: [{ issuer: idp.issuer, audiences: ['tollgate'], groupsClaim: 'groups', algorithms: ['RS256'] }],
    kubernetes: { mode: 'tokenReview', url: api.url, audiences: ['tollgate'], credential: () => REVIEWER, ca, ...(issuer && { issuer }) },
    mapGroups: compileGroupMappings([{ claim: 'kubernetes.io.namespace', equals: 'shop', authenticatedBy: 'kubernetes', groups: ['shop-workloads'] }]),
    retry: false,
  });

  test('an OIDC issuer\'s token is verified locally; any other JWT goes to the API server; group mappings see its claims', async () => {
    reset();
    const a = authenticator();
    await a.start();
    const user = await a.authenticateBearer(await idp.mint({ sub: 'alice', groups: ['analysts'] }));
    assert.equal(user.authenticatedBy, 'oidc');
    assert.equal(api.reviews.length, 0);
    const sa = await a.authenticateBearer(ORDERS);
    assert.equal(sa.authenticatedBy, 'kubernetes');
    assert.deepEqual(sa.groups, ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated', 'shop-workloads']);
    assert.equal(api.reviews.length, 1);
    a.close();
  });

  test('a token that is no JWT is never sent for review', async () => {
    reset();
    await refused(authenticator().authenticateBearer('opaque-bootstrap-token'), 'token_malformed');
    assert.equal(api.reviews.length, 0);
  });

  test('with a cluster issuer configured, only tokens of that issuer are reviewed', async () => {
    reset();
    const a = authenticator(CLUSTER);
    assert.equal((await a.authenticateBearer(ORDERS)).issuer, CLUSTER);
    const stranger = jwt({ iss: 'https://stranger.test', sub: 'mallory', aud: ['tollgate'], exp: now() + 600 });
    await refused(a.authenticateBearer(stranger), 'issuer_unknown', /stranger\.test/);
    assert.equal(api.reviews.length, 1);
  });

  test('the cluster issuer cannot also be an OIDC issuer', () => {
    assert.throws(() => authenticator(idp.issuer), /both as an OIDC issuer and for TokenReview/);
  });
});
