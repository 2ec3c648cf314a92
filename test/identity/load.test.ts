/**
 * From the config's identity section to working sources: secrets and CA files read at load (a missing one fails
 * the load, not a request), one set of group mappings shared by every source, the caller precedence on top.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import { SecretError, rereadingSecret } from '../../src/config/secrets.ts';
import { apiKeyDigest } from '../../src/identity/api-keys.ts';
import { kubernetesOptions, loadIdentities } from '../../src/identity/load.ts';
import { createMtlsTestCertificates, type MtlsTestCertificates } from '../../scripts/lib/certs.ts';
import { RUN_DIR } from '../../scripts/lib/paths.ts';

const KEY = 'Hv3Nq8Tz1Lc6Wp4Rk9Xb2Md7Jf5Gs0Ya';
let dir: string;
let pki: MtlsTestCertificates;
let tokenFile: string;

before(async () => {
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  dir = await fs.promises.mkdtemp(path.join(RUN_DIR, 'identity-load-'));
  pki = await createMtlsTestCertificates(dir, {});
  tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'reviewer-token-1\n');
});
after(async () => { if (dir) await fs.promises.rm(dir, { recursive: true, force: true }); });

const config = (kubernetes: string) => parseConfig(`
identity:
  kubernetes: ${kubernetes}
  apiKeys: [{ name: legacy-batch, sha256: "${apiKeyDigest(KEY)}", groups: [batch] }]
  mtls: { trustDomains: [cluster.local] }
  groupMappings:
    - { subject: legacy-*, authenticatedBy: api-key, groups: [legacy] }
    - { subject: "spiffe://cluster.local/ns/shop/*", groups: [shop] }
`, 'identity.yaml').identity;

test('every source is built, and the group mappings reach API keys and mTLS peers alike', async () => {
  const identities = loadIdentities(config(`{ audiences: [tollgate], tokenReview: { url: "https://127.0.0.1:6443", credential: { file: ${tokenFile} }, caFile: ${pki.ca.cert} } }`));
  assert.deepEqual((await identities.authenticateCaller({ apiKey: KEY })).groups, ['batch', 'legacy']);
  const peer = await identities.authenticateCaller({ peer: { principal: 'spiffe://cluster.local/ns/shop/sa/frontend' } });
  assert.deepEqual([peer.authenticatedBy, peer.groups], ['mtls', ['shop']]);
  assert.deepEqual(identities.mtls?.authenticatePeer({ principal: 'spiffe://cluster.local/ns/shop/sa/x' }).groups, ['shop'], 'network checks get the mappings too');
  identities.bearer.close();
});

test('TokenReview options: durations in milliseconds, the credential read from its file', () => {
  const options = kubernetesOptions(config(`{ audiences: [tollgate], tokenReview: { url: "https://127.0.0.1:6443", credential: { file: ${tokenFile} }, caFile: ${pki.ca.cert}, cacheTtl: 2m } }`).kubernetes!);
  assert.equal(options.mode, 'tokenReview');
  if (options.mode !== 'tokenReview') return;
  assert.equal(options.credential(), 'reviewer-token-1');
  assert.equal(options.cacheTtlMs, 120_000);
  assert.equal(options.negativeCacheTtlMs, 10_000);
  assert.equal(options.clockToleranceSeconds, 30);
  assert.match(options.ca ?? '', /BEGIN CERTIFICATE/);
});

test('issuer options: keys, CA and reader credential', () => {
  const options = kubernetesOptions(config(`{ issuer: "https://kubernetes.default.svc.cluster.local", audiences: [tollgate], jwksUri: "https://127.0.0.1:6443/openid/v1/jwks", caFile: ${pki.ca.cert}, credential: { file: ${tokenFile} } }`).kubernetes!);
  assert.equal(options.mode, 'issuer');
  if (options.mode !== 'issuer') return;
  assert.equal(options.jwksUri, 'https://127.0.0.1:6443/openid/v1/jwks');
  assert.equal(options.bearerToken?.(), 'reviewer-token-1');
  assert.deepEqual(options.algorithms, ['RS256', 'ES256']);
});

test('a missing credential file or a CA file without certificates fails the load, naming the key', () => {
  assert.throws(() => loadIdentities(config(`{ audiences: [t], tokenReview: { url: "https://k8s.test", credential: { file: ${dir}/absent } } }`)),
    (err: unknown) => err instanceof SecretError && /identity\.kubernetes\.tokenReview\.credential: cannot read secret file .*absent: ENOENT/.test(err.message));
  assert.throws(() => loadIdentities(config(`{ audiences: [t], tokenReview: { url: "https://k8s.test", credential: { file: ${tokenFile} }, caFile: ${tokenFile} } }`)),
    (err: unknown) => err instanceof SecretError && /identity\.kubernetes\.tokenReview\.caFile: expected PEM certificates/.test(err.message));
  assert.throws(() => loadIdentities(config(`{ issuer: "https://k8s.test", audiences: [t], caFile: ${dir}/nope.crt }`)),
    (err: unknown) => err instanceof SecretError && /identity\.kubernetes\.caFile: cannot read CA file/.test(err.message));
});

test('a file secret is read again once it is older than the re-read interval (a rotated projected token)', async () => {
  const file = path.join(dir, 'rotating');
  fs.writeFileSync(file, 'first\n');
  const read = rereadingSecret({ file }, 'test', 50);
  assert.equal(read(), 'first');
  fs.writeFileSync(file, 'second\n');
  assert.equal(read(), 'first', 'not before the interval');
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.equal(read(), 'second');
  fs.rmSync(file);
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.equal(read(), 'second', 'a failed re-read keeps the last good value');
  assert.throws(() => rereadingSecret({ file }, 'test'), SecretError, 'but a secret missing at load fails the load');
});
