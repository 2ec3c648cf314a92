/**
 * Every bootstrap in envoy/ is accepted by the pinned Envoy binary (`envoy --mode validate`) once its placeholders
 * are filled, and so is the merged bootstrap the quickstart runs.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ensureEnvoy } from '../../scripts/provision.ts';
import { renderTemplate, validateEnvoyConfig } from '../../scripts/lib/envoy.ts';
import { REPO_ROOT, RUN_DIR } from '../../scripts/lib/paths.ts';
import { createMtlsTestCertificates } from '../../scripts/lib/certs.ts';
import { renderStackEnvoy } from '../../scripts/lib/stack.ts';
import { configSchema } from '../../src/config/schema.ts';

const ENVOY_DIR = path.join(REPO_ROOT, 'envoy');
const configs = fs.readdirSync(ENVOY_DIR).filter((f) => f.endsWith('.yaml'));

/** Test values for every placeholder a bundled config may use; a new placeholder must be added here. */
const VALUES: Record<string, string | number> = {
  ENVOY_ADMIN_PORT: 19000, HTTP_LISTENER_PORT: 10000, KAFKA_LISTENER_PORT: 19092,
  TOLLGATE_HOST: '127.0.0.1', TOLLGATE_PORT: 19001, UPSTREAM_HOST: '127.0.0.1', UPSTREAM_PORT: 18081,
  BROKER_HOST: '127.0.0.1', BROKER_PORT: 19093,
  KUBE_LISTENER_PORT: 16443, KUBE_API_HOST: '127.0.0.1', KUBE_API_PORT: 16444,
};

before(async () => {
  await ensureEnvoy();
  // Envoy's validate mode loads the TLS files the mTLS listener names: they must exist.
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  const pki = await createMtlsTestCertificates(await fs.promises.mkdtemp(path.join(RUN_DIR, 'envoy-certs-')));
  Object.assign(VALUES, { TLS_SERVER_CERT: pki.server.cert, TLS_SERVER_KEY: pki.server.key, TLS_CLIENT_CA: pki.ca.cert, KUBE_API_CA: pki.ca.cert });
});

test('envoy/ holds the HTTP edge, the Kubernetes API gateway and the Kafka bootstraps (SASL and mTLS)', () => {
  assert.deepEqual(configs.sort(), ['http-edge.yaml', 'kafka-mtls.yaml', 'kafka.yaml', 'kubernetes-edge.yaml']);
});

for (const file of configs) {
  test(`envoy/${file} passes envoy --mode validate`, async () => {
    const rendered = renderTemplate(fs.readFileSync(path.join(ENVOY_DIR, file), 'utf8'), VALUES);
    const output = await validateEnvoyConfig(rendered);
    assert.match(output, /OK/);
  });
}

test('the HTTP edge runs ext_authz, then ext_proc, then the router, all fail-closed', () => {
  const doc = YAML.parse(renderTemplate(fs.readFileSync(path.join(ENVOY_DIR, 'http-edge.yaml'), 'utf8'), VALUES));
  const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  assert.deepEqual(hcm.http_filters.map((f: { name: string }) => f.name),
    ['envoy.filters.http.ext_authz', 'envoy.filters.http.ext_proc', 'envoy.filters.http.router']);
  for (const f of hcm.http_filters.slice(0, 2)) assert.equal(f.typed_config.failure_mode_allow, false, f.name);
  assert.equal(hcm.http_filters[1].typed_config.processing_mode.response_body_mode, 'FULL_DUPLEX_STREAMED');
  assert.equal(doc.layered_runtime.layers[0].static_layer['envoy.reloadable_features.ext_proc_graceful_grpc_close'], true);
});

test('the Kubernetes gateway streams request and response bodies through tollgate, fail-closed, and lets exec upgrade', () => {
  const doc = YAML.parse(renderTemplate(fs.readFileSync(path.join(ENVOY_DIR, 'kubernetes-edge.yaml'), 'utf8'), VALUES));
  const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  assert.deepEqual(hcm.http_filters.map((f: { name: string }) => f.name),
    ['envoy.filters.http.ext_authz', 'envoy.filters.http.ext_proc', 'envoy.filters.http.router']);
  for (const f of hcm.http_filters.slice(0, 2)) assert.equal(f.typed_config.failure_mode_allow, false, f.name);
  const mode = hcm.http_filters[1].typed_config.processing_mode;
  assert.deepEqual([mode.request_body_mode, mode.response_body_mode], ['FULL_DUPLEX_STREAMED', 'FULL_DUPLEX_STREAMED']);
  assert.deepEqual(hcm.upgrade_configs.map((u: { upgrade_type: string }) => u.upgrade_type), ['websocket', 'SPDY/3.1']);
});

test('a Check held for approval fits: ext_authz waits longer than approvals.maxHold, the idle timer longer still', () => {
  const maxHold = configSchema.parse({}).approvals.maxHold;
  const ms = (duration: string) => {
    const m = /^(\d+)s$/.exec(duration);
    assert.ok(m, `expected a duration in seconds, got ${duration}`);
    return Number(m[1]) * 1000;
  };
  for (const file of ['http-edge.yaml', 'kubernetes-edge.yaml']) {
    const doc = YAML.parse(renderTemplate(fs.readFileSync(path.join(ENVOY_DIR, file), 'utf8'), VALUES));
    const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    const authz = hcm.http_filters[0].typed_config.grpc_service.timeout as string;
    assert.ok(ms(authz) > maxHold, `${file}: ext_authz timeout ${authz} must exceed approvals.maxHold (${maxHold} ms)`);
    assert.ok(ms(hcm.stream_idle_timeout) > ms(authz), `${file}: stream_idle_timeout ${hcm.stream_idle_timeout} must exceed the ext_authz timeout ${authz}`);
  }
});

test('the Kafka listener runs network ext_proc fail-closed before tcp_proxy', () => {
  const doc = YAML.parse(renderTemplate(fs.readFileSync(path.join(ENVOY_DIR, 'kafka.yaml'), 'utf8'), VALUES));
  const filters = doc.static_resources.listeners[0].filter_chains[0].filters;
  assert.deepEqual(filters.map((f: { name: string }) => f.name), ['envoy.filters.network.ext_proc', 'envoy.filters.network.tcp_proxy']);
  assert.equal(filters[0].typed_config.failure_mode_allow, false);
});

test('the quickstart\'s merged bootstrap (both listeners, one tollgate cluster) passes envoy --mode validate', async () => {
  const merged = renderStackEnvoy(
    { httpListener: 10000, kafkaListener: 19092, issuer: 18080, grpc: 19001, admin: 19901, envoyAdmin: 19000, kubernetesListener: 16443 },
    { host: '127.0.0.1', port: 19093 }, 18081);
  const doc = YAML.parse(merged);
  assert.deepEqual(doc.static_resources.listeners.map((l: { name: string }) => l.name), ['http_edge', 'kafka']);
  assert.deepEqual(doc.static_resources.clusters.map((c: { name: string }) => c.name), ['tollgate', 'upstream', 'kafka_broker']);
  assert.match(await validateEnvoyConfig(merged), /OK/);
});

test('a stack with another HTTP upstream (the REST Proxy of the e2e tests) routes its hosts there and still validates', async () => {
  const merged = renderStackEnvoy(
    { httpListener: 10000, kafkaListener: 19092, issuer: 18080, grpc: 19001, admin: 19901, envoyAdmin: 19000, kubernetesListener: 16443 },
    { host: '127.0.0.1', port: 19093 }, 18081, [{ name: 'kafka_rest', domains: ['kafka-rest.test', 'kafka-rest.test:*'], port: 18082 }]);
  const doc = YAML.parse(merged);
  const hosts = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts;
  assert.deepEqual(hosts.map((h: { name: string; domains: string[] }) => [h.name, h.domains]), [['kafka_rest', ['kafka-rest.test', 'kafka-rest.test:*']], ['upstream', ['*']]]);
  assert.deepEqual(doc.static_resources.clusters.map((c: { name: string }) => c.name), ['tollgate', 'upstream', 'kafka_rest', 'kafka_broker']);
  assert.match(await validateEnvoyConfig(merged), /OK/);
});
