/**
 * The identity section of the config: Kubernetes (one of two modes), API keys, group mappings. Mistakes are refused
 * at load with the path and what was expected, so they never reach a request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { apiKeyDigest } from '../../src/identity/api-keys.ts';

function problems(text: string): Array<[string, string]> {
  try {
    parseConfig(text, 'tollgate.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => [p.path, p.message]);
  }
  assert.fail('expected the config to be refused');
}

const DIGEST = apiKeyDigest('Pq7Lm2Xr9Tz4Wv1Ns6Kb3Jd8Hf5Gc0Ye');

test('issuer mode: the cluster issuer with its defaults', () => {
  const config = parseConfig(`
identity:
  kubernetes:
    issuer: https://kubernetes.default.svc.cluster.local
    audiences: [tollgate]
    jwksUri: https://10.96.0.1/openid/v1/jwks
    caFile: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
    credential: { file: /var/run/secrets/kubernetes.io/serviceaccount/token }
`, 'k.yaml');
  const k = config.identity.kubernetes;
  assert.equal(k?.issuer, 'https://kubernetes.default.svc.cluster.local');
  assert.deepEqual(k?.algorithms, ['RS256', 'ES256']);
  assert.equal(k?.clockTolerance, 30_000);
  assert.equal(k?.tokenReview, undefined);
});

test('TokenReview mode: durations in milliseconds, a 1m cache and a 10s negative cache by default', () => {
  const config = parseConfig(`
identity:
  kubernetes:
    audiences: [tollgate]
    tokenReview:
      url: https://kubernetes.default.svc
      credential: { file: /var/run/secrets/kubernetes.io/serviceaccount/token }
`, 'k.yaml');
  const review = config.identity.kubernetes?.tokenReview;
  assert.deepEqual([review?.cacheTtl, review?.negativeCacheTtl, review?.timeout, review?.cacheSize], [60_000, 10_000, 5_000, 10_000]);
});

const K8S_MISTAKES: Array<[string, string, Array<[string, RegExp]>]> = [
  ['neither mode', '{ audiences: [tollgate] }', [['identity.kubernetes.issuer', /expected `issuer` .* or `tokenReview`/]]],
  ['no audiences', '{ issuer: "https://k8s.test" }', [['identity.kubernetes.audiences', /expected array/]]],
  ['issuer-mode keys beside tokenReview', '{ audiences: [t], jwksUri: "https://k8s.test/jwks", caFile: /ca.crt, tokenReview: { url: "https://k8s.test", credential: { env: T } } }',
    [['identity.kubernetes.jwksUri', /applies to issuer mode/], ['identity.kubernetes.caFile', /applies to issuer mode/]]],
  ['a review cache beyond 10 minutes', '{ audiences: [t], tokenReview: { url: "https://k8s.test", credential: { env: T }, cacheTtl: 1h } }',
    [['identity.kubernetes.tokenReview.cacheTtl', /at most 10m/]]],
  ['a negative cache longer than the cache', '{ audiences: [t], tokenReview: { url: "https://k8s.test", credential: { env: T }, cacheTtl: 30s, negativeCacheTtl: 1m } }',
    [['identity.kubernetes.tokenReview.negativeCacheTtl', /at most cacheTtl/]]],
  ['a review without credential', '{ audiences: [t], tokenReview: { url: "https://k8s.test" } }', [['identity.kubernetes.tokenReview.credential', /expected a secret source: \{env: VARIABLE\} or \{file: \/path\}/]]],
];

for (const [name, yaml, expected] of K8S_MISTAKES) {
  test(`kubernetes: ${name} is refused`, () => {
    const found = problems(`identity: { kubernetes: ${yaml} }`);
    assert.equal(found.length, expected.length, JSON.stringify(found));
    for (const [path, message] of expected) {
      assert.ok(found.some(([p, m]) => p === path && message.test(m)), `expected ${path} ${message} in ${JSON.stringify(found)}`);
    }
  });
}

test('the cluster issuer cannot also be an OIDC issuer', () => {
  assert.deepEqual(problems(`
identity:
  oidc: [{ issuer: "https://idp.test", audiences: [tollgate] }]
  kubernetes: { issuer: "https://idp.test", audiences: [tollgate] }
`).map(([p]) => p), ['identity.kubernetes.issuer']);
});

test('API keys: names and digests once each, a digest and not a key', () => {
  const config = parseConfig(`identity: { apiKeys: [{ name: legacy-batch, sha256: "${DIGEST}" }] }`, 'k.yaml');
  assert.deepEqual(config.identity.apiKeys, [{ name: 'legacy-batch', sha256: DIGEST, groups: [] }]);
  const found = problems(`
identity:
  apiKeys:
    - { name: a, sha256: "${DIGEST}" }
    - { name: a, sha256: "${DIGEST.toUpperCase()}" }
    - { name: b, sha256: "Pq7Lm2Xr9Tz4Wv1Ns6Kb3Jd8Hf5Gc0Ye" }
    - { name: "has space", sha256: "${'0'.repeat(64)}" }
`);
  assert.deepEqual(found.map(([p]) => p).sort(), ['identity.apiKeys[1].name', 'identity.apiKeys[1].sha256', 'identity.apiKeys[2].sha256', 'identity.apiKeys[3].name']);
  assert.match(found.find(([p]) => p === 'identity.apiKeys[2].sha256')?.[1] ?? '', /not the key itself/);
});

test('group mappings: subject or claim; a claim with exactly one of equals or matches', () => {
  const config = parseConfig(`
identity:
  groupMappings:
    - { subject: "system:serviceaccount:shop:*", issuer: "https://kubernetes.default.svc", groups: [shop] }
    - { claim: realm_access.roles, equals: admin, authenticatedBy: [oidc], groups: [platform-admins] }
    - { claim: email, matches: ".*@example\\\\.com", groups: [staff] }
`, 'k.yaml');
  assert.equal(config.identity.groupMappings.length, 3);
  const found = problems(`
identity:
  groupMappings:
    - { groups: [x] }
    - { claim: c, groups: [x] }
    - { subject: s, equals: 1, groups: [x] }
    - { claim: c, matches: "(", groups: [x] }
    - { subject: s, authenticatedBy: password, groups: [x] }
    - { subject: s, groups: [] }
`);
  assert.deepEqual(found.map(([p]) => p), [
    'identity.groupMappings[0].subject', 'identity.groupMappings[1].claim', 'identity.groupMappings[2].equals',
    'identity.groupMappings[3].matches', 'identity.groupMappings[4].authenticatedBy', 'identity.groupMappings[5].groups',
  ]);
});
