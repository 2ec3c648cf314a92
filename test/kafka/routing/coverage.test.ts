/**
 * No broker address slips through: every generated response schema (Kafka 4.1.2) is scanned for fields named
 * `host` or `port`. Each API version that carries them must be rewritten (`carriesBrokerEndpoints`), or be one a
 * client can never use through tollgate (not in CLIENT_API_LIMITS), or carry something that is not an endpoint
 * (named below, with the reason). A future spec that adds an address to a client-facing response fails here.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_API_LIMITS, isClientApiVersionAllowed } from '../../../src/kafka/api-versions.ts';
import { API_SPECS } from '../../../src/kafka/protocol/generated/index.ts';
import { BROKER_ENDPOINT_API_KEYS, carriesBrokerEndpoints } from '../../../src/kafka/routing/index.ts';
import { addressFieldPaths } from './schema-walk.ts';

/** API key → the address fields it carries that are not broker endpoints, and why. */
const NOT_ENDPOINTS: ReadonlyMap<number, { readonly paths: readonly string[]; readonly why: string }> = new Map([
  [29, { paths: ['resources.acls.host'], why: 'DescribeAcls: the host pattern of an ACL binding (which clients it applies to)' }],
  [31, { paths: ['filterResults.matchingAcls.host'], why: 'DeleteAcls: the host pattern of a deleted ACL binding' }],
]);

function responseVersions(apiKey: number): number[] {
  const valid = API_SPECS.get(apiKey)?.response.validVersions;
  if (valid == null) return [];
  const versions: number[] = [];
  for (let v = valid.min; v <= valid.max; v++) versions.push(v);
  return versions;
}

describe('every response that carries an address is handled', () => {
  it('scans every API version of the specs', () => {
    const leaks: string[] = [];
    let scanned = 0;
    for (const [apiKey, spec] of API_SPECS) {
      if (spec.codecs === null) continue;
      for (const version of responseVersions(apiKey)) {
        scanned++;
        const paths = addressFieldPaths(spec.codecs.responseSchema, version);
        if (paths.length === 0) continue;
        if (carriesBrokerEndpoints(apiKey, version)) continue;
        const exempt = NOT_ENDPOINTS.get(apiKey);
        if (exempt !== undefined && paths.every((path) => exempt.paths.includes(path))) continue;
        if (!isClientApiVersionAllowed(apiKey, version)) continue;
        leaks.push(`${spec.name} v${version}: ${paths.join(', ')}`);
      }
    }
    assert.ok(scanned > 250, `scanned ${scanned} API versions`);
    assert.deepEqual(leaks, [], 'client-facing responses carrying addresses that nothing rewrites');
  });

  it('rewrites only API versions that do carry endpoints (no stale entries)', () => {
    for (const apiKey of BROKER_ENDPOINT_API_KEYS) {
      const schema = API_SPECS.get(apiKey)!.codecs!.responseSchema;
      for (const version of responseVersions(apiKey)) {
        const carries = addressFieldPaths(schema, version).length > 0;
        assert.equal(carriesBrokerEndpoints(apiKey, version), carries, `${schema.name} v${version}`);
      }
    }
  });

  it('the exemptions are real and stay client-facing only where they are not endpoints', () => {
    for (const [apiKey, exempt] of NOT_ENDPOINTS) {
      const schema = API_SPECS.get(apiKey)!.codecs!.responseSchema;
      const seen = new Set(responseVersions(apiKey).flatMap((v) => addressFieldPaths(schema, v)));
      assert.deepEqual([...seen].sort(), [...exempt.paths].sort(), `${schema.name}: ${exempt.why}`);
      assert.ok(CLIENT_API_LIMITS.has(apiKey));
    }
  });

  it('controller-only and inter-broker APIs with addresses are never offered to clients', () => {
    for (const [apiKey, spec] of API_SPECS) {
      if (spec.codecs === null || !spec.listeners.includes('controller') || spec.listeners.includes('broker')) continue;
      assert.equal(CLIENT_API_LIMITS.has(apiKey), false, spec.name);
    }
  });
});
