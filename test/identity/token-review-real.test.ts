/**
 * TokenReview against a real kube-apiserver 1.36: the facts identity/token-review.ts relies on (the reviewer's
 * credential needs system:auth-delegator; status.audiences echoes the requested audience; groups carry
 * system:serviceaccounts and system:serviceaccounts:<ns>), and what a refusal looks like.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startKubeApiServer, type KubeApiServer } from '../../scripts/lib/kube.ts';
import { ensureEtcd, ensureKubernetes } from '../../scripts/provision.ts';
import { TokenReviewer } from '../../src/identity/token-review.ts';

let kube: KubeApiServer;
let reviewerToken: string;

async function ok(args: string[]): Promise<string> {
  const r = await kube.kubectl(args);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

before(async () => {
  await ensureKubernetes();
  await ensureEtcd();
  kube = await startKubeApiServer();
  await ok(['create', 'namespace', 'tollgate']);
  await ok(['create', 'namespace', 'ci']);
  await ok(['create', 'serviceaccount', 'reviewer', '-n', 'tollgate']);
  await ok(['create', 'serviceaccount', 'deployer', '-n', 'ci']);
  await ok(['create', 'clusterrolebinding', 'tollgate-reviewer', '--clusterrole=system:auth-delegator', '--serviceaccount=tollgate:reviewer']);
  reviewerToken = await ok(['create', 'token', 'reviewer', '-n', 'tollgate']);
});
after(async () => { await kube?.stop(); });

const reviewer = (credential = () => reviewerToken) =>
  new TokenReviewer({ url: kube.url, audiences: ['tollgate'], credential, ca: kube.caPem, cacheTtlMs: 1_000, negativeCacheTtlMs: 1_000 });

test('a service-account token for tollgate\'s audience is reviewed into the service account\'s principal', async () => {
  const token = await ok(['create', 'token', 'deployer', '-n', 'ci', '--audience', 'tollgate']);
  const principal = await reviewer().review(token, decodeJwt(token));
  assert.equal(principal.subject, 'system:serviceaccount:ci:deployer');
  assert.equal(principal.authenticatedBy, 'kubernetes');
  for (const group of ['system:serviceaccounts', 'system:serviceaccounts:ci']) assert.ok(principal.groups.includes(group), `${group} in ${principal.groups.join(', ')}`);
  assert.ok(principal.expiresAt !== undefined && principal.expiresAt > Date.now() / 1000);
});

test('a token for another audience is refused by the API server', async () => {
  const token = await ok(['create', 'token', 'deployer', '-n', 'ci']);
  await assert.rejects(reviewer().review(token, decodeJwt(token)), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'token_rejected', err.message);
    return true;
  });
});

test('a deleted service account\'s token is refused: revocation that local verification cannot see', async () => {
  await ok(['create', 'serviceaccount', 'short-lived', '-n', 'ci']);
  const token = await ok(['create', 'token', 'short-lived', '-n', 'ci', '--audience', 'tollgate']);
  const r = reviewer();
  assert.equal((await r.review(token, decodeJwt(token))).subject, 'system:serviceaccount:ci:short-lived');
  await ok(['delete', 'serviceaccount', 'short-lived', '-n', 'ci']);
  // The API server itself caches a successful authentication for 10 s; tollgate's own cache here lasts 1 s.
  const deadline = Date.now() + 30_000;
  let refused: Error | undefined;
  while (refused === undefined && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    refused = await r.review(token, decodeJwt(token)).then(() => undefined, (err: Error) => err);
  }
  assert.ok(refused, 'the token of a deleted service account is refused within 30 s');
  assert.equal((refused as Error & { code?: string }).code, 'token_rejected', refused.message);
});

test('a reviewer without system:auth-delegator cannot review: fail closed with the API server\'s reason', async () => {
  await ok(['create', 'serviceaccount', 'no-rights', '-n', 'tollgate']);
  const weak = await ok(['create', 'token', 'no-rights', '-n', 'tollgate']);
  const token = await ok(['create', 'token', 'deployer', '-n', 'ci', '--audience', 'tollgate']);
  await assert.rejects(reviewer(() => weak).review(token, decodeJwt(token)), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'token_review_failed', err.message);
    assert.match(err.message, /403|forbidden/i);
    return true;
  });
});
