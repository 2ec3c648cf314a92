/**
 * The HTTP bench's configs stay loadable as envoy/http-edge.yaml and the config schema change: the derived Envoy
 * bootstrap passes `envoy --mode validate` with the filters each variant is meant to have, and the tollgate config
 * it runs against passes tollgate's own validation. (The bench itself checks, against the running processes, that
 * both sides answer alike.)
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { ensureEnvoy } from '../../scripts/provision.ts';
import { validateEnvoyConfig } from '../../scripts/lib/envoy.ts';
import { parseConfig } from '../../src/config/load.ts';
import { renderHttpBenchEnvoy } from '../../bench/lib/http-envoy.ts';
import { BENCH_POLICY, tollgateHttpBenchConfig } from '../../bench/lib/http-policy.ts';

before(async () => {
  await ensureEnvoy();
});

const ISSUER = 'http://127.0.0.1:18080';
const render = () => renderHttpBenchEnvoy({
  adminPort: 19000,
  listeners: { direct: 10001, jwt_rbac: 10002, authz: 10003, edge: 10004 },
  upstreamPort: 18081,
  tollgatePort: 19001,
  issuer: ISSUER,
  issuerPort: 18080,
  audience: 'tollgate-bench',
  groupsClaim: 'groups',
  policy: BENCH_POLICY,
});

interface Doc {
  static_resources: {
    listeners: Array<{ name: string; address: { socket_address: { port_value: number } }; filter_chains: Array<{ filters: Array<{ typed_config: { http_filters: Array<{ name: string; typed_config: Record<string, any> }> } }> }> }>;
    clusters: Array<{ name: string }>;
  };
}

test('each variant listener has exactly its filters in front of the router', () => {
  const doc = YAML.parse(render()) as Doc;
  const filters = Object.fromEntries(doc.static_resources.listeners.map((l) => [
    `${l.name}:${l.address.socket_address.port_value}`,
    l.filter_chains[0]!.filters[0]!.typed_config.http_filters.map((f) => f.name.replace('envoy.filters.http.', '')),
  ]));
  assert.deepEqual(filters, {
    'http_edge_direct:10001': ['router'],
    'http_edge_jwt_rbac:10002': ['jwt_authn', 'rbac', 'router'],
    'http_edge_authz:10003': ['ext_authz', 'router'],
    'http_edge_edge:10004': ['ext_authz', 'ext_proc', 'router'],
  });
  assert.deepEqual(doc.static_resources.clusters.map((c) => c.name).sort(), ['dev_issuer', 'tollgate', 'upstream']);
});

test('RBAC allows each policy rule\'s group its methods and path prefixes, read from the verified token', () => {
  const doc = YAML.parse(render()) as Doc;
  const chain = doc.static_resources.listeners.find((l) => l.name === 'http_edge_jwt_rbac')!.filter_chains[0]!.filters[0]!.typed_config.http_filters;
  const rbac = chain.find((f) => f.name === 'envoy.filters.http.rbac')!.typed_config;
  assert.equal(rbac['rules'].action, 'ALLOW');
  const analysts = rbac['rules'].policies['analysts-read-api'];
  assert.deepEqual(analysts.principals[0].metadata.path, [{ key: 'jwt_payload' }, { key: 'groups' }]);
  assert.deepEqual(analysts.principals[0].metadata.value, { list_match: { one_of: { string_match: { exact: 'analysts' } } } });
  assert.deepEqual(analysts.permissions[0].and_rules.rules[1].or_rules.rules.map((r: any) => r.url_path.path.prefix), ['/api/', '/bulk/']);
});

test('the derived bootstrap passes envoy --mode validate', async () => {
  assert.match(await validateEnvoyConfig(render()), /OK/);
});

test('the bench\'s tollgate config passes tollgate\'s validation, with the same access rules as the RBAC policies', () => {
  const config = parseConfig(tollgateHttpBenchConfig({
    grpc: '127.0.0.1:19001', admin: '127.0.0.1:19901', issuer: ISSUER, audience: 'tollgate-bench',
    policy: BENCH_POLICY, maskedGroup: 'analysts', maxBufferBytes: 32 * 1024 * 1024,
  }), 'bench.yaml');
  const access = config.rules.filter((r) => r.effect === 'allow');
  assert.deepEqual(access.map((r) => [r.name, r.match.group, r.match.http?.method, r.match.http?.path]), [
    ['analysts-read-api', 'analysts', ['GET'], ['/api/*', '/bulk/*']],
    ['auditors-read-bulk', 'auditors', ['GET'], ['/bulk/*']],
  ]);
  assert.deepEqual(config.rules.filter((r) => r.mask !== undefined).map((r) => r.name), ['mask-bulk-json', 'mask-bulk-ndjson']);
  assert.equal(config.masking.maxBufferBytes, 32 * 1024 * 1024);
});
