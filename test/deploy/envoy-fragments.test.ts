/**
 * Every piece of Envoy config in k8s/ passes `envoy --mode validate` with the pinned binary: the edge bootstraps in
 * their ConfigMaps as they stand (TLS file names pointed at test certificates, since validation loads them), and the
 * Istio fragments in place, i.e. the EnvoyFilter patches applied to a bootstrap shaped like istiod's for the workload
 * they select, with the ext_authz filter istiod inserts for each CUSTOM AuthorizationPolicy.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ensureEnvoy } from '../../scripts/provision.ts';
import { validateEnvoyConfig } from '../../scripts/lib/envoy.ts';
import { RUN_DIR } from '../../scripts/lib/paths.ts';
import { createMtlsTestCertificates } from '../../scripts/lib/certs.ts';
import type { Manifest, Resolved } from './kustomize.ts';
import { applyEnvoyFilter, insertExtAuthz, skeleton, type Workload } from './istio.ts';
import { EDGE_OVERLAYS, build, configMapFile, container, extensionProviders, parseYaml, pods, selects } from './overlays.ts';

type Obj = Record<string, any>;

let pki: Awaited<ReturnType<typeof createMtlsTestCertificates>>;

before(async () => {
  await ensureEnvoy();
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  pki = await createMtlsTestCertificates(await fs.promises.mkdtemp(path.join(RUN_DIR, 'deploy-certs-')));
});

/**
 * Points every file a bootstrap names at a test file of the same role, after checking the file lies under a mount
 * of the Envoy container (otherwise Envoy would fail at start in the pod, not here).
 */
function withTestFiles(node: unknown, mounts: readonly string[], parentKey = ''): unknown {
  if (Array.isArray(node)) return node.map((n) => withTestFiles(n, mounts, parentKey));
  if (typeof node !== 'object' || node === null) return node;
  const out: Obj = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'filename' && typeof value === 'string') {
      assert.ok(mounts.some((m) => value.startsWith(`${m}/`)), `${value} (${parentKey}) is under no volume mount of the envoy container`);
      const role: Record<string, string> = { certificate_chain: pki.server.cert, private_key: pki.server.key, trusted_ca: pki.ca.cert };
      assert.ok(role[parentKey], `no test file for a ${parentKey} file`);
      out[key] = role[parentKey];
    } else {
      out[key] = withTestFiles(value, mounts, key);
    }
  }
  return out;
}

for (const overlay of EDGE_OVERLAYS) {
  test(`${overlay}: the Envoy bootstrap in its ConfigMap passes envoy --mode validate`, async () => {
    const resources = build(overlay);
    const [pod] = pods(resources);
    const mounts = ((container(pod!, 'envoy')['volumeMounts'] ?? []) as Obj[]).map((m) => m['mountPath'] as string);
    const bootstrap = withTestFiles(parseYaml(configMapFile(resources, 'tollgate-edge-envoy', 'envoy.yaml').text), mounts);
    assert.match(await validateEnvoyConfig(YAML.stringify(bootstrap)), /OK/);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Istio

/** Workloads the Istio resources select that are not pods of the overlay: their labels and ports as documented. */
const EXTERNAL_WORKLOADS: readonly Workload[] = [
  // Istio's default ingress gateway: pods labelled istio=ingressgateway, HTTP on 8080 (Service port 80).
  { name: 'istio-ingressgateway', kind: 'gateway', labels: { istio: 'ingressgateway' }, ports: [{ port: 8080, protocol: 'http' }] },
  // The Kafka brokers of overlays/istio's documentation: client port 9092, named tcp-* in their Service.
  { name: 'kafka', kind: 'sidecar', labels: { 'app.kubernetes.io/name': 'kafka' }, ports: [{ port: 9092, protocol: 'tcp' }] },
];

/** The overlay's own pods as mesh workloads: the application containers' declared ports, as HTTP. */
function meshWorkloads(resources: readonly Resolved[]): Workload[] {
  return pods(resources).map((p) => ({
    name: p.owner.metadata.name, kind: 'sidecar' as const, labels: p.labels,
    ports: (p.spec['containers'] as Obj[]).filter((c) => c['name'] !== 'tollgate')
      .flatMap((c) => ((c['ports'] ?? []) as Obj[]).map((port) => ({ port: port['containerPort'] as number, protocol: 'http' as const }))),
  }));
}

const selectorOf = (m: Manifest): Record<string, string> =>
  ((m['spec'] as Obj)['workloadSelector']?.labels ?? (m['spec'] as Obj)['selector']?.matchLabels ?? {}) as Record<string, string>;

function grpcServices(resources: readonly Resolved[]) {
  const services = resources.filter((r) => r.manifest.kind === 'Service').flatMap(({ manifest }) =>
    ((manifest['spec'] as Obj)['ports'] as Obj[]).filter((p) => p['name'] === 'grpc').map((p) => ({ host: `${manifest.metadata.name}.${manifest.metadata.namespace}.svc.cluster.local`, port: p['port'] as number })));
  const entries = resources.filter((r) => r.manifest.kind === 'ServiceEntry').flatMap(({ manifest }) =>
    ((manifest['spec'] as Obj)['hosts'] as string[]).flatMap((host) => ((manifest['spec'] as Obj)['ports'] as Obj[]).map((p) => ({ host, port: p['number'] as number }))));
  return [...services, ...entries];
}

for (const overlay of ['sidecar', 'istio'] as const) {
  test(`${overlay}: every EnvoyFilter, applied with the CUSTOM ext_authz to an istiod-shaped bootstrap of the workload it selects, passes envoy --mode validate`, async () => {
    const resources = build(overlay);
    const filters = resources.filter((r) => r.manifest.kind === 'EnvoyFilter').map((r) => r.manifest);
    const policies = resources.filter((r) => r.manifest.kind === 'AuthorizationPolicy').map((r) => r.manifest);
    const providers = new Map(extensionProviders().map((p) => [p.name, p]));
    const workloads = [...meshWorkloads(resources), ...EXTERNAL_WORKLOADS];
    const covered = new Set<Manifest>();
    let adminPort = 19400;
    for (const workload of workloads) {
      const mine = filters.filter((f) => selects(selectorOf(f), workload.labels));
      const custom = policies.filter((p) => selects(selectorOf(p), workload.labels));
      if (mine.length === 0 && custom.length === 0) continue;
      const bootstrap = skeleton(workload, grpcServices(resources), adminPort++);
      for (const policy of custom) insertExtAuthz(bootstrap, providers.get((policy['spec'] as Obj)['provider'].name)!);
      for (const filter of mine) applyEnvoyFilter(bootstrap, workload, filter);
      [...mine, ...custom].forEach((m) => covered.add(m));
      const output = await validateEnvoyConfig(YAML.stringify(bootstrap)).catch((err: Error) => {
        throw new Error(`${overlay}: workload ${workload.name} with ${mine.map((f) => f.metadata.name).join(', ')}: ${err.message}`);
      });
      assert.match(output, /OK/);
      if (workload.kind === 'sidecar' && workload.ports.some((p) => p.protocol === 'http') || workload.kind === 'gateway') {
        const hcm = (bootstrap['static_resources'].listeners as Obj[])[0]!['filter_chains'][0].filters[0].typed_config;
        assert.deepEqual(hcm.http_filters.map((f: Obj) => f['name']), ['envoy.filters.http.ext_authz', 'envoy.filters.http.ext_proc', 'envoy.filters.http.router'],
          `${workload.name}: ext_authz (CUSTOM), then ext_proc, then the router`);
      } else {
        const chain = (bootstrap['static_resources'].listeners as Obj[])[0]!['filter_chains'][0];
        assert.deepEqual(chain.filters.map((f: Obj) => f['name']), ['envoy.filters.network.ext_proc', 'envoy.filters.network.tcp_proxy']);
      }
    }
    assert.deepEqual([...filters, ...policies].filter((m) => !covered.has(m)).map((m) => `${m.kind} ${m.metadata.name}`), [], 'every EnvoyFilter and AuthorizationPolicy selects a known workload');
  });
}

test('the assembler fails a patch istiod would skip: an EnvoyFilter for a port the workload does not serve', () => {
  const filter = build('istio').find((r) => r.manifest.kind === 'EnvoyFilter' && r.manifest.metadata.namespace === 'kafka')!.manifest;
  const wrongPort: Workload = { ...EXTERNAL_WORKLOADS[1]!, ports: [{ port: 9093, protocol: 'tcp' }] };
  assert.throws(() => applyEnvoyFilter(skeleton(wrongPort, [], 19499), wrongPort, filter), /matches no network filter envoy.filters.network.tcp_proxy/);
});

test('a fragment Envoy does not accept fails validation in place (a misspelt ext_proc field)', async () => {
  const resources = build('sidecar');
  const filter = structuredClone(resources.find((r) => r.manifest.kind === 'EnvoyFilter')!.manifest) as Obj;
  filter['spec'].configPatches[0].patch.value.typed_config.processing_mode.response_body_mode = 'FULL_DUPLEX_STREAM';
  const workload = meshWorkloads(resources)[0]!;
  const bootstrap = skeleton(workload, grpcServices(resources), 19498);
  applyEnvoyFilter(bootstrap, workload, filter as Manifest);
  await assert.rejects(validateEnvoyConfig(YAML.stringify(bootstrap)), /FULL_DUPLEX_STREAM/);
});
