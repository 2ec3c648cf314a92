/**
 * @module test/deploy/overlays
 * The overlays of k8s/, resolved, and the lookups the deployment tests share: pods selected by labels, embedded
 * config files of ConfigMaps, the tollgate and Envoy configs inside them.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { kustomize, readManifests, type Manifest, type Resolved } from './kustomize.ts';

export const K8S_DIR = path.join(REPO_ROOT, 'k8s');
export const OVERLAYS = ['edge-kafka', 'edge-kubernetes-api', 'sidecar', 'istio'] as const;
export type Overlay = (typeof OVERLAYS)[number];
export const EDGE_OVERLAYS: readonly Overlay[] = ['edge-kafka', 'edge-kubernetes-api'];

/** Istio's mesh config (extension providers): not a kustomize resource, applied with istioctl or Helm values. */
export const MESH_CONFIG_FILE = path.join(K8S_DIR, 'overlays', 'istio', 'mesh-config.yaml');

export const overlayDir = (overlay: Overlay) => path.join(K8S_DIR, 'overlays', overlay);
export const build = (overlay: Overlay): Resolved[] => kustomize(overlayDir(overlay), REPO_ROOT);

type Obj = Record<string, any>;

export interface Pod {
  readonly owner: Manifest;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly spec: Obj;
}

export function pods(resources: readonly Resolved[]): Pod[] {
  return resources.filter((r) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(r.manifest.kind)).map(({ manifest }) => {
    const template = (manifest['spec'] as Obj)['template'];
    return { owner: manifest, namespace: manifest.metadata.namespace ?? 'default', labels: template.metadata?.labels ?? {}, spec: template.spec };
  });
}

export const selects = (selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

export function find(resources: readonly Resolved[], kind: string, name: string): Manifest {
  const hits = resources.filter((r) => r.manifest.kind === kind && r.manifest.metadata.name === name);
  if (hits.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${hits.length}`);
  return hits[0]!.manifest;
}

/** A file embedded in a ConfigMap, with the source it came from for error messages. */
export function configMapFile(resources: readonly Resolved[], name: string, key: string): { text: string; source: string } {
  const hit = resources.find((r) => r.manifest.kind === 'ConfigMap' && r.manifest.metadata.name === name);
  if (hit === undefined) throw new Error(`expected a ConfigMap ${name}`);
  const text = (hit.manifest['data'] as Obj | undefined)?.[key];
  if (typeof text !== 'string') throw new Error(`${hit.source}: ConfigMap ${name} has no data.${key}`);
  return { text, source: `${hit.source}#${key}` };
}

export function container(pod: Pod, name: string): Obj {
  const c = (pod.spec['containers'] as Obj[]).find((x) => x['name'] === name);
  if (c === undefined) throw new Error(`${pod.owner.kind} ${pod.owner.metadata.name}: expected a container ${name}`);
  return c;
}

/** The ConfigMap a container mounts at `mountPath`. */
export function mountedConfigMap(pod: Pod, containerName: string, mountPath: string): string {
  const mount = (container(pod, containerName)['volumeMounts'] as Obj[] ?? []).find((m) => m['mountPath'] === mountPath);
  if (mount === undefined) throw new Error(`container ${containerName} mounts nothing at ${mountPath}`);
  const volume = (pod.spec['volumes'] as Obj[]).find((v) => v['name'] === mount['name']);
  const name = volume?.['configMap']?.name;
  if (typeof name !== 'string') throw new Error(`container ${containerName}: the volume at ${mountPath} is not a ConfigMap`);
  return name;
}

export function readMeshConfig(): Obj {
  const [doc] = readManifests(MESH_CONFIG_FILE, REPO_ROOT);
  return doc as Obj;
}

export interface Provider { name: string; service: string; port: number; timeout?: string; failOpen?: boolean }

export function extensionProviders(): Provider[] {
  const providers = (readMeshConfig()['spec']?.meshConfig?.extensionProviders ?? []) as Obj[];
  return providers.map((p) => ({ name: p['name'], ...p['envoyExtAuthzGrpc'] }));
}

export const parseYaml = (text: string): Obj => YAML.parse(text) as Obj;

export const fileExists = (p: string) => fs.existsSync(p);
