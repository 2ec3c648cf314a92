/**
 * Every manifest in k8s/ parses, resolves through its kustomization, validates against the Kubernetes OpenAPI and
 * Istio CRD schemas (npm `kubernetes-models`, `@kubernetes-models/istio`), and agrees with the rest of its overlay:
 * selectors select the pods they are for, ports named by Services and probes exist, the tollgate config inside a
 * ConfigMap passes tollgate's own validation and matches the Envoy bootstrap beside it, NetworkPolicies leave the
 * broker and the API server reachable only through the gateway, Istio policies name providers the mesh config has.
 *
 * Not covered by a schema: IstioOperator (its package has no schema for `spec`), so mesh-config.yaml is checked
 * field by field here; unknown fields pass the OpenAPI schemas (they allow additional properties), which the
 * consistency checks below partly make up for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import YAML from 'yaml';
import { EnvoyFilter } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { parseConfig } from '../../src/config/load.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { CLUSTER_SCOPED, kustomize, readManifests, type Manifest, type Resolved } from './kustomize.ts';
import {
  EDGE_OVERLAYS, K8S_DIR, OVERLAYS, build, configMapFile, container, extensionProviders, find, mountedConfigMap,
  overlayDir, parseYaml, pods, readMeshConfig, selects, type Overlay,
} from './overlays.ts';

type Obj = Record<string, any>;

const built = new Map<Overlay, Resolved[]>(OVERLAYS.map((o) => [o, build(o)]));
const all = (o: Overlay) => built.get(o)!;
const version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

// ---------------------------------------------------------------------------------------------------------------
// Parsing and schemas

test('k8s/ holds the bases and the four overlays, and every YAML file in it parses', () => {
  assert.deepEqual(fs.readdirSync(path.join(K8S_DIR, 'overlays')).sort(), [...OVERLAYS].sort());
  assert.deepEqual(fs.readdirSync(path.join(K8S_DIR, 'base')).sort(), ['edge', 'tollgate']);
  const files = fs.readdirSync(K8S_DIR, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length > 20, `found only ${files.length} YAML files`);
  for (const f of files) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(K8S_DIR, f), 'utf8'))) assert.deepEqual(doc.errors, [], f);
  }
});

/** The model class of a kind: core and built-in groups from kubernetes-models, Istio's from @kubernetes-models/istio. */
async function modelOf(m: Manifest): Promise<new (data: unknown) => { validate(): void }> {
  const [groupOrVersion, maybeVersion] = m.apiVersion.split('/');
  const module = maybeVersion === undefined ? `kubernetes-models/${groupOrVersion}/${m.kind}`
    : groupOrVersion!.endsWith('istio.io') ? `@kubernetes-models/istio/${groupOrVersion}/${maybeVersion}/${m.kind}`
      : `kubernetes-models/${groupOrVersion}/${maybeVersion}/${m.kind}`;
  const loaded = await import(module) as Record<string, new (data: unknown) => { validate(): void }>;
  const model = loaded[m.kind];
  if (model === undefined) throw new Error(`${module} exports no ${m.kind}`);
  return model;
}

for (const overlay of OVERLAYS) {
  test(`${overlay}: every resource validates against its Kubernetes or Istio schema`, async () => {
    for (const { manifest, source } of all(overlay)) {
      const Model = await modelOf(manifest);
      assert.doesNotThrow(() => new Model(manifest).validate(), `${source}: ${manifest.kind} ${manifest.metadata.name}`);
    }
  });
}

test('the schema check is not a formality: a wrong enum and a missing selector are refused', async () => {
  const filter = structuredClone(all('istio').find((r) => r.manifest.kind === 'EnvoyFilter')!.manifest) as Obj;
  filter['spec'].configPatches[0].match.context = 'SIDECAR_INBOUNDS';
  assert.throws(() => new EnvoyFilter(filter).validate(), /context must be equal to one of the allowed values/);
  const deployment = structuredClone(find(all('edge-kafka'), 'Deployment', 'tollgate-edge')) as Obj;
  delete deployment['spec'].selector;
  const Model = await modelOf(deployment as Manifest);
  assert.throws(() => new Model(deployment).validate(), /must have required property selector/);
});

test('names are DNS labels and no two resources of an overlay share kind, namespace and name', () => {
  for (const overlay of OVERLAYS) {
    const seen = new Set<string>();
    for (const { manifest: m, source } of all(overlay)) {
      assert.match(m.metadata.name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, `${source}: ${m.kind} name`);
      const key = `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`;
      assert.ok(!seen.has(key), `${overlay}: ${key} twice`);
      seen.add(key);
      if (!CLUSTER_SCOPED.has(m.kind)) assert.ok(m.metadata.namespace, `${overlay}: ${source}: ${m.kind} ${m.metadata.name} has no namespace`);
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Selectors, ports, volumes

for (const overlay of OVERLAYS) {
  test(`${overlay}: selectors select their pods, Service and probe ports exist, volumes and secrets are accounted for`, () => {
    const resources = all(overlay);
    const podsHere = pods(resources);
    const kustomizationText = fs.readdirSync(overlayDir(overlay), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('kustomization.yaml')).map((f) => fs.readFileSync(path.join(overlayDir(overlay), f), 'utf8')).join('\n');
    for (const pod of podsHere) {
      const name = `${pod.owner.kind} ${pod.owner.metadata.name}`;
      const selector = (pod.owner['spec'] as Obj)['selector'].matchLabels as Record<string, string>;
      assert.ok(selects(selector, pod.labels), `${name}: selector ${JSON.stringify(selector)} does not match its template labels`);
      const volumes = new Map<string, Obj>(((pod.spec['volumes'] ?? []) as Obj[]).map((v) => [v['name'], v]));
      for (const c of pod.spec['containers'] as Obj[]) {
        const portNames = new Set(((c['ports'] ?? []) as Obj[]).map((p) => p['name']));
        for (const probe of ['readinessProbe', 'livenessProbe'] as const) {
          const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
          if (port !== undefined) assert.ok(typeof port === 'number' || portNames.has(port), `${name}/${c['name']}: ${probe} names port ${port}, which the container does not declare`);
        }
        for (const m of (c['volumeMounts'] ?? []) as Obj[]) assert.ok(volumes.has(m['name']), `${name}/${c['name']}: mounts undeclared volume ${m['name']}`);
      }
      for (const v of volumes.values()) {
        const cm = v['configMap']?.name;
        // kube-root-ca.crt is published into every namespace by the API server.
        if (cm !== undefined && cm !== 'kube-root-ca.crt') {
          assert.ok(resources.some((r) => r.manifest.kind === 'ConfigMap' && r.manifest.metadata.name === cm && r.manifest.metadata.namespace === pod.namespace), `${name}: ConfigMap ${cm} is not in the overlay`);
        }
        const secret = v['secret']?.secretName;
        if (secret !== undefined && !resources.some((r) => r.manifest.kind === 'Secret' && r.manifest.metadata.name === secret)) {
          // Secrets the operator creates must be named in the kustomization's instructions.
          assert.match(kustomizationText, new RegExp(`create secret \\S+ ${secret} `), `${name}: Secret ${secret} is neither in the overlay nor in its kubectl create instructions`);
        }
      }
    }
    for (const { manifest: svc } of resources.filter((r) => r.manifest.kind === 'Service')) {
      const selected = podsHere.filter((p) => p.namespace === svc.metadata.namespace && selects((svc['spec'] as Obj)['selector'], p.labels));
      assert.ok(selected.length > 0, `Service ${svc.metadata.name} selects no pod of the overlay`);
      for (const port of (svc['spec'] as Obj)['ports'] as Obj[]) {
        if (typeof port['targetPort'] !== 'string') continue;
        for (const p of selected) {
          const declared = (p.spec['containers'] as Obj[]).flatMap((c) => (c['ports'] ?? []) as Obj[]).some((cp) => cp['name'] === port['targetPort']);
          assert.ok(declared, `Service ${svc.metadata.name} port ${port['name']}: no container of ${p.owner.metadata.name} declares port ${port['targetPort']}`);
        }
      }
    }
    for (const { manifest: pdb } of resources.filter((r) => r.manifest.kind === 'PodDisruptionBudget')) {
      assert.ok(podsHere.some((p) => p.namespace === pdb.metadata.namespace && selects((pdb['spec'] as Obj)['selector'].matchLabels, p.labels)), `PodDisruptionBudget ${pdb.metadata.name} selects no pod`);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The containers

const dockerCmd = (() => {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const cmd = /^CMD (\[.*\])$/m.exec(text);
  return JSON.parse(cmd![1]!) as string[];
})();

test('every tollgate container runs this version\'s image with the image\'s own command, non-root on a read-only root', () => {
  let seen = 0;
  for (const overlay of OVERLAYS) {
    for (const pod of pods(all(overlay))) {
      for (const c of pod.spec['containers'] as Obj[]) {
        if (c['name'] !== 'tollgate') continue;
        seen++;
        const where = `${overlay}: ${pod.owner.metadata.name}/tollgate`;
        assert.equal(c['image'], `tollgate:${version}`, where);
        assert.deepEqual(c['args'], dockerCmd, `${where}: args differ from the Dockerfile's CMD`);
        assert.equal(c['command'], undefined, `${where}: command would replace the image's ENTRYPOINT`);
        assert.equal(c['securityContext']?.readOnlyRootFilesystem, true, where);
        assert.equal(c['securityContext']?.allowPrivilegeEscalation, false, where);
        assert.ok((c['securityContext']?.runAsUser ?? 0) > 0, `${where}: runs as root`);
        assert.equal(pod.spec['securityContext']?.runAsNonRoot, true, where);
        assert.equal(c['readinessProbe']?.httpGet?.path, '/readyz', where);
        assert.equal(c['livenessProbe']?.httpGet?.path, '/healthz', where);
        assert.equal(mountedConfigMap(pod, 'tollgate', '/etc/tollgate'), 'tollgate-config', where);
      }
    }
  }
  assert.equal(seen, 4, 'one tollgate container per overlay');
});

test('the edge pods run the pinned Envoy, non-root on a read-only root', async () => {
  const { ENVOY_VERSION } = await import('../../scripts/lib/paths.ts');
  for (const overlay of EDGE_OVERLAYS) {
    const [pod] = pods(all(overlay));
    const envoy = container(pod!, 'envoy');
    assert.equal(envoy['image'], `envoyproxy/envoy:v${ENVOY_VERSION}`);
    assert.deepEqual(envoy['args'].slice(0, 2), ['-c', '/etc/envoy/envoy.yaml']);
    assert.equal(mountedConfigMap(pod!, 'envoy', '/etc/envoy'), 'tollgate-edge-envoy');
    assert.equal(envoy['securityContext'].readOnlyRootFilesystem, true);
    assert.ok(envoy['securityContext'].runAsUser > 0);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// tollgate's config inside the ConfigMaps

/** tollgate's own validation, as `tollgate validate --no-secrets` runs it: schema, then rules. */
function tollgateConfig(resources: readonly Resolved[]) {
  const { text, source } = configMapFile(resources, 'tollgate-config', 'tollgate.yaml');
  const config = parseConfig(text, source);
  compilePolicy(config.rules);
  return config;
}

for (const overlay of OVERLAYS) {
  test(`${overlay}: the tollgate config in its ConfigMap passes tollgate's own validation; its secrets are mounted`, () => {
    const resources = all(overlay);
    const config = tollgateConfig(resources);
    assert.ok(config.rules.length >= 3, 'an example worth reading');
    const admin = config.server.admin.address;
    assert.match(admin, /^0\.0\.0\.0:/, 'the kubelet probes the admin listener on the pod IP');
    const [pod] = pods(resources).filter((p) => (p.spec['containers'] as Obj[]).some((c) => c['name'] === 'tollgate'));
    const tollgate = container(pod!, 'tollgate');
    const adminPort = Number(admin.split(':')[1]);
    assert.ok((tollgate['ports'] as Obj[]).some((p) => p['containerPort'] === adminPort && p['name'] === tollgate['readinessProbe'].httpGet.port), 'the probes name the admin port');
    const files = [
      ...config.http.upstreamCredentials.map((c) => ('file' in c.secret ? c.secret.file : undefined)),
      config.kafka.upstream.sasl && 'file' in config.kafka.upstream.sasl.password ? config.kafka.upstream.sasl.password.file : undefined,
    ].filter((f): f is string => f !== undefined);
    for (const file of files) {
      assert.ok((tollgate['volumeMounts'] as Obj[]).some((m) => file.startsWith(`${m['mountPath']}/`)), `secret file ${file} is under no mount of the tollgate container`);
    }
  });

  test(`${overlay}: the same config with a broken rule is refused with the file and line`, () => {
    const { text, source } = configMapFile(all(overlay), 'tollgate-config', 'tollgate.yaml');
    assert.throws(() => parseConfig(text.replace(/effect: (allow|deny)/, 'effect: alow'), source), new RegExp(`${source.replace(/[.#]/g, '\\$&')}:\\d+:\\d+: rules\\[\\d+\\]\\.effect`));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Edge pods: Envoy, tollgate, Service and NetworkPolicy agree

type Listener = { name: string; address: string; port: number; filters: string[]; cluster?: string };

function envoyListeners(bootstrap: Obj): Listener[] {
  return (bootstrap['static_resources'].listeners as Obj[]).map((l) => {
    const filters = (l['filter_chains'][0].filters as Obj[]);
    return {
      name: l['name'], address: l['address'].socket_address.address, port: l['address'].socket_address.port_value,
      filters: filters.map((f) => f['name']), cluster: filters.find((f) => f['name'] === 'envoy.filters.network.tcp_proxy')?.['typed_config'].cluster,
    };
  });
}

function clusterEndpoint(bootstrap: Obj, name: string): { address: string; port: number } {
  const c = (bootstrap['static_resources'].clusters as Obj[]).find((x) => x['name'] === name);
  assert.ok(c, `the bootstrap has no cluster ${name}`);
  const s = c['load_assignment'].endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  return { address: s.address, port: s.port_value };
}

for (const overlay of EDGE_OVERLAYS) {
  test(`${overlay}: Envoy's listeners are the envoy container's ports and the Service's; its tollgate cluster is tollgate's gRPC address`, () => {
    const resources = all(overlay);
    const [pod] = pods(resources);
    const bootstrap = parseYaml(configMapFile(resources, 'tollgate-edge-envoy', 'envoy.yaml').text);
    const config = tollgateConfig(resources);
    const listeners = envoyListeners(bootstrap);
    const envoyPorts = (container(pod!, 'envoy')['ports'] as Obj[]).map((p) => p['containerPort']).sort();
    assert.deepEqual(listeners.map((l) => l.port).sort(), envoyPorts);
    for (const l of listeners) assert.equal(l.address, '0.0.0.0', `listener ${l.name} must listen on the pod IP`);
    assert.equal(bootstrap['admin'].address.socket_address.address, '127.0.0.1', 'Envoy admin stays on loopback');
    const probe = listeners.find((l) => l.name === 'probe')!;
    assert.deepEqual(clusterEndpoint(bootstrap, 'envoy_admin'), { address: '127.0.0.1', port: bootstrap['admin'].address.socket_address.port_value });
    assert.equal(container(pod!, 'envoy')['readinessProbe'].httpGet.path, '/ready');

    const grpc = config.server.grpc.address;
    assert.match(grpc, /^127\.0\.0\.1:/, 'only the pod\'s Envoy reaches tollgate');
    assert.deepEqual(clusterEndpoint(bootstrap, 'tollgate'), { address: '127.0.0.1', port: Number(grpc.split(':')[1]) });

    const svc = find(resources, 'Service', 'tollgate-edge');
    const servicePorts = ((svc['spec'] as Obj)['ports'] as Obj[]);
    const envoyPortByName = new Map((container(pod!, 'envoy')['ports'] as Obj[]).map((p) => [p['name'], p['containerPort']]));
    const traffic = listeners.filter((l) => l !== probe).map((l) => l.port).sort();
    assert.deepEqual(servicePorts.filter((p) => envoyPortByName.has(p['targetPort'])).map((p) => envoyPortByName.get(p['targetPort'])).sort(), traffic,
      'the Service exposes every traffic listener (and not the probe listener)');

    // The edge pod's own policy admits clients on each traffic listener.
    const own = find(resources, 'NetworkPolicy', 'tollgate-edge');
    const admitted = ((own['spec'] as Obj)['ingress'] as Obj[]).flatMap((rule) => (rule['ports'] ?? []).map((p: Obj) => p['port']));
    for (const port of traffic) assert.ok(admitted.includes(port), `NetworkPolicy tollgate-edge does not admit listener port ${port}`);
  });
}

test('edge-kafka: one listener per broker, each advertised by tollgate under the Service name, network ext_proc fail-closed before tcp_proxy', () => {
  const resources = all('edge-kafka');
  const bootstrap = parseYaml(configMapFile(resources, 'tollgate-edge-envoy', 'envoy.yaml').text);
  const config = tollgateConfig(resources);
  const svc = find(resources, 'Service', 'tollgate-edge');
  const host = `${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`;
  const kafka = envoyListeners(bootstrap).filter((l) => l.name !== 'probe');
  assert.equal(kafka.length, config.kafka.brokers.length);
  for (const broker of config.kafka.brokers) {
    const [advertisedHost, port] = broker.advertise.split(':');
    assert.equal(advertisedHost, host, `node ${broker.nodeId} is advertised under the Service's name`);
    const listener = kafka.find((l) => l.port === Number(port));
    assert.ok(listener, `node ${broker.nodeId}: no Envoy listener on ${port}`);
    assert.deepEqual(listener.filters, ['envoy.filters.network.ext_proc', 'envoy.filters.network.tcp_proxy']);
    const upstream = clusterEndpoint(bootstrap, listener.cluster!);
    assert.match(upstream.address, new RegExp(`^kafka-${broker.nodeId}\\.`), `listener ${port} leads to broker ${broker.nodeId}`);
  }
  for (const l of bootstrap['static_resources'].listeners as Obj[]) {
    for (const f of l['filter_chains'][0].filters as Obj[]) {
      if (f['name'] === 'envoy.filters.network.ext_proc') assert.equal(f['typed_config'].failure_mode_allow, false, l['name']);
    }
  }
});

test('edge-kafka: only the gateway reaches the brokers\' client port', () => {
  const resources = all('edge-kafka');
  const [gateway] = pods(resources);
  const policies = resources.filter((r) => r.manifest.kind === 'NetworkPolicy').map((r) => r.manifest);
  const broker = { 'app.kubernetes.io/name': 'kafka' };
  const forBrokers = policies.filter((p) => selects((p['spec'] as Obj)['podSelector'].matchLabels ?? {}, broker));
  assert.equal(forBrokers.length, 1, 'a NetworkPolicy selects the broker pods');
  const spec = forBrokers[0]!['spec'] as Obj;
  assert.deepEqual(spec['policyTypes'], ['Ingress']);
  const to9092 = (spec['ingress'] as Obj[]).filter((rule) => rule['ports'] === undefined || rule['ports'].some((p: Obj) => p['port'] === 9092));
  for (const rule of to9092) {
    for (const peer of rule['from'] as Obj[]) {
      const labels = peer['podSelector']?.matchLabels ?? {};
      assert.equal(peer['namespaceSelector'], undefined, 'no whole namespace may reach the brokers');
      assert.ok(selects(labels, gateway!.labels) || selects(labels, broker), `peer ${JSON.stringify(peer)} is neither the gateway nor a broker`);
    }
  }
  assert.ok(to9092.some((rule) => (rule['from'] as Obj[]).some((peer) => selects(peer['podSelector']?.matchLabels ?? {}, gateway!.labels))), 'the gateway is let in');
});

test('edge-kubernetes-api: CI pods reach only the gateway (and DNS); the gateway reaches the API server with its own credential, fail-closed', () => {
  const resources = all('edge-kubernetes-api');
  const [gateway] = pods(resources);
  const ci = resources.filter((r) => r.manifest.kind === 'NetworkPolicy' && r.manifest.metadata.namespace === 'ci').map((r) => r.manifest['spec'] as Obj);
  assert.equal(ci.length, 1);
  assert.deepEqual(ci[0]!['podSelector'], {}, 'every pod of the ci namespace');
  assert.deepEqual(ci[0]!['policyTypes'], ['Egress']);
  const bootstrap = parseYaml(configMapFile(resources, 'tollgate-edge-envoy', 'envoy.yaml').text);
  const https = envoyListeners(bootstrap).find((l) => l.name !== 'probe')!;
  for (const rule of ci[0]!['egress'] as Obj[]) {
    for (const peer of rule['to'] as Obj[]) {
      assert.equal(peer['ipBlock'], undefined, 'no address range (the API server\'s) is let through');
      const labels = peer['podSelector']?.matchLabels ?? {};
      const ports = (rule['ports'] as Obj[]).map((p) => p['port']);
      if (selects(labels, gateway!.labels)) {
        assert.equal(peer['namespaceSelector'].matchLabels['kubernetes.io/metadata.name'], gateway!.namespace);
        assert.deepEqual(ports, [https.port]);
      } else {
        assert.deepEqual(labels, { 'k8s-app': 'kube-dns' });
        assert.deepEqual([...new Set(ports)], [53]);
      }
    }
  }
  const hcm = (bootstrap['static_resources'].listeners as Obj[]).find((l) => l['name'] === https.name)!['filter_chains'][0].filters[0].typed_config;
  assert.deepEqual(hcm.http_filters.map((f: Obj) => f['name']), ['envoy.filters.http.ext_authz', 'envoy.filters.http.ext_proc', 'envoy.filters.http.router']);
  for (const f of hcm.http_filters.slice(0, 2)) assert.equal(f.typed_config.failure_mode_allow, false, f.name);
  assert.deepEqual(clusterEndpoint(bootstrap, 'kube_apiserver'), { address: 'kubernetes.default.svc.cluster.local', port: 443 });
  const config = tollgateConfig(resources);
  assert.equal(config.http.upstreamCredentials.length, 1);
  const token = find(resources, 'Secret', 'tollgate-ci-gateway-token');
  assert.equal(token['type'], 'kubernetes.io/service-account-token');
  const binding = find(resources, 'ClusterRoleBinding', 'tollgate-ci-deployer') as Obj;
  assert.deepEqual(binding['subjects'], [{ kind: 'ServiceAccount', name: (token.metadata['annotations'] as Obj)['kubernetes.io/service-account.name'], namespace: gateway!.namespace }]);
});

// ---------------------------------------------------------------------------------------------------------------
// Istio

test('mesh-config.yaml: extension providers are envoyExtAuthzGrpc entries with service, port and failOpen false', () => {
  const mesh = readMeshConfig();
  assert.equal(mesh['apiVersion'], 'install.istio.io/v1alpha1');
  assert.equal(mesh['kind'], 'IstioOperator');
  const providers = extensionProviders();
  assert.deepEqual(providers.map((p) => p.name).sort(), ['tollgate', 'tollgate-sidecar']);
  for (const p of providers) {
    assert.equal(typeof p.service, 'string');
    assert.ok(Number.isInteger(p.port), `${p.name}: port`);
    assert.equal(p.failOpen, false, `${p.name}: fail closed`);
    assert.deepEqual(Object.keys((mesh['spec'].meshConfig.extensionProviders as Obj[]).find((x) => x['name'] === p.name)!).sort(), ['envoyExtAuthzGrpc', 'name']);
  }
});

test('istio and sidecar: CUSTOM policies name a provider of the mesh config, and each provider leads to a tollgate gRPC port', () => {
  const providers = new Map(extensionProviders().map((p) => [p.name, p]));
  for (const overlay of ['istio', 'sidecar'] as const) {
    const resources = all(overlay);
    const custom = resources.filter((r) => r.manifest.kind === 'AuthorizationPolicy').map((r) => r.manifest['spec'] as Obj);
    assert.ok(custom.length > 0, overlay);
    for (const spec of custom) {
      assert.equal(spec['action'], 'CUSTOM');
      const provider = providers.get(spec['provider'].name);
      assert.ok(provider, `${overlay}: provider ${spec['provider'].name} is not in mesh-config.yaml`);
      const grpcPort = Number(tollgateConfig(resources).server.grpc.address.split(':')[1]);
      assert.equal(provider.port, grpcPort, `${overlay}: provider ${provider.name} port is tollgate's gRPC port`);
      if (overlay === 'istio') {
        const svc = find(resources, 'Service', 'tollgate');
        assert.equal(provider.service, `${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`);
        assert.ok(((svc['spec'] as Obj)['ports'] as Obj[]).some((p) => p['port'] === provider.port && p['name'] === 'grpc'));
      } else {
        const entry = find(resources, 'ServiceEntry', 'tollgate-local')['spec'] as Obj;
        assert.deepEqual(entry['hosts'], [provider.service]);
        assert.deepEqual(entry['endpoints'], [{ address: '127.0.0.1' }]);
        assert.ok((entry['ports'] as Obj[]).some((p) => p['number'] === provider.port && p['protocol'] === 'GRPC'));
      }
    }
  }
});

test('istio and sidecar: EnvoyFilters use Istio\'s contexts and filter names, Envoy\'s ext_proc type URLs, and fail closed', () => {
  const typeUrls: Record<string, string> = {
    'envoy.filters.http.ext_proc': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
    'envoy.filters.network.ext_proc': 'type.googleapis.com/envoy.extensions.filters.network.ext_proc.v3.NetworkExternalProcessor',
  };
  const inserted: string[] = [];
  for (const overlay of ['istio', 'sidecar'] as const) {
    for (const { manifest, source } of all(overlay).filter((r) => r.manifest.kind === 'EnvoyFilter')) {
      for (const cp of (manifest['spec'] as Obj)['configPatches'] as Obj[]) {
        if (cp['patch'].operation !== 'INSERT_BEFORE') continue;
        const value = cp['patch'].value;
        inserted.push(`${cp['match'].context} ${cp['applyTo']} ${value.name} before ${cp['match'].listener.filterChain.filter.subFilter?.name ?? cp['match'].listener.filterChain.filter.name}`);
        assert.equal(value.typed_config['@type'], typeUrls[value.name], `${source}: ${value.name}`);
        assert.equal(value.typed_config.failure_mode_allow, false, `${source}: ${value.name}`);
        if (cp['applyTo'] === 'HTTP_FILTER') assert.equal(cp['match'].listener.filterChain.filter.name, 'envoy.filters.network.http_connection_manager');
      }
    }
  }
  assert.deepEqual(inserted.sort(), [
    'GATEWAY HTTP_FILTER envoy.filters.http.ext_proc before envoy.filters.http.router',
    'SIDECAR_INBOUND HTTP_FILTER envoy.filters.http.ext_proc before envoy.filters.http.router',
    'SIDECAR_INBOUND NETWORK_FILTER envoy.filters.network.ext_proc before envoy.filters.network.tcp_proxy',
  ]);
});

// ---------------------------------------------------------------------------------------------------------------
// The resolver itself, against the real kustomize where there is one

function kubectlKustomize(dir: string): Manifest[] | string {
  const probe = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  if (probe.error !== undefined) return `kubectl is not installed (${(probe.error as NodeJS.ErrnoException).code})`;
  if (probe.status !== 0) return `kubectl kustomize failed: ${probe.stderr.trim()}`;
  return YAML.parseAllDocuments(probe.stdout).map((d) => d.toJS() as Manifest);
}

const key = (m: Manifest) => `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`;

for (const overlay of OVERLAYS) {
  const real = kubectlKustomize(overlayDir(overlay));
  test(`${overlay}: the test resolver builds what kubectl kustomize builds`, { skip: typeof real === 'string' ? `no kustomize to compare with: ${real}` : false }, () => {
    const ours = all(overlay).map((r) => r.manifest);
    const theirs = real as Manifest[];
    assert.deepEqual(ours.map(key).sort(), theirs.map(key).sort());
    for (const m of theirs) assert.deepEqual(ours.find((o) => key(o) === key(m)), m, key(m));
  });
}

test('the resolver refuses kustomize features it does not implement, and patches that match nothing', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-kustomize-'));
  try {
    fs.writeFileSync(path.join(dir, 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\ndata: { x: "1" }\n');
    fs.writeFileSync(path.join(dir, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [cm.yaml]\ncommonLabels: { a: b }\n');
    assert.throws(() => kustomize(dir, REPO_ROOT), /field "commonLabels" is not supported/);
    fs.writeFileSync(path.join(dir, 'patch.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: b }\ndata: { x: "2" }\n');
    fs.writeFileSync(path.join(dir, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [cm.yaml]\npatches: [{ path: patch.yaml }]\n');
    assert.throws(() => kustomize(dir, REPO_ROOT), /expected exactly one resource to patch, found 0/);
    fs.writeFileSync(path.join(dir, 'patch.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\ndata: { y: "2" }\n');
    const [cm] = kustomize(dir, REPO_ROOT);
    assert.deepEqual(cm!.manifest['data'], { x: '1', y: '2' });
    assert.throws(() => readManifests(path.join(dir, 'kustomization.yaml'), REPO_ROOT), /expected metadata.name/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});


test('docs/deployment.md covers every overlay, and every k8s/ path it names exists', () => {
  const guide = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'deployment.md'), 'utf8');
  for (const overlay of OVERLAYS) assert.match(guide, new RegExp(`k8s/overlays/${overlay}`), overlay);
  const named = new Set([...guide.matchAll(/k8s\/[\w./-]*[\w]/g)].map((m) => m[0]));
  assert.ok(named.size >= 7, `only ${named.size} k8s/ paths named`);
  for (const p of named) assert.ok(fs.existsSync(path.join(REPO_ROOT, p)), `${p} is named in the guide but does not exist`);
  // Files named by their place inside an overlay (`gateway/rbac.yaml`) exist there.
  const files = fs.readdirSync(K8S_DIR, { recursive: true, encoding: 'utf8' });
  const short = [...guide.matchAll(/`([\w/-]+\.yaml)`/g)].map((m) => m[1]!).filter((f) => f !== 'tollgate.yaml' && f !== 'envoy.yaml');
  assert.ok(short.length >= 8, `only ${short.length} manifest files named`);
  for (const f of short) assert.ok(files.some((x) => x === f || x.endsWith(`/${f}`)), `${f} is named in the guide but no file in k8s/ is`);
  assert.match(fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8'), /\]\(docs\/deployment\.md\)/, 'README links the guide');
});
