/**
 * @module test/deploy/kustomize
 * The part of kustomize that k8s/ uses, so the tests read exactly what `kubectl apply -k` would apply without the
 * kustomize binary (which no registry package ships): `resources` (files and directories holding a
 * kustomization.yaml), `namespace`, and `patches` by path as strategic merge patches matched on kind and name. A
 * kustomization using anything else fails the build with the field's name: a feature the tests cannot resolve is a
 * feature they cannot check. Where `kubectl kustomize` exists, test/deploy/manifests.test.ts compares the two.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface Manifest extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject & { name: string; namespace?: string; labels?: Record<string, string> };
}

export interface Resolved {
  readonly manifest: Manifest;
  /** The file the resource came from, relative to the repository (patches do not change it). */
  readonly source: string;
}

const SUPPORTED_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'patches']);

/** Kinds without a namespace: the namespace transformer leaves them alone. */
export const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass', 'PriorityClass']);

/** Every YAML document of a file, each a mapping with apiVersion, kind and metadata.name. */
export function readManifests(file: string, root: string): Manifest[] {
  const text = fs.readFileSync(file, 'utf8');
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true });
  const out: Manifest[] = [];
  docs.forEach((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`${path.relative(root, file)}: document ${i + 1}: YAML: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${path.relative(root, file)}: document ${i + 1}: expected a mapping, got ${Array.isArray(value) ? 'a list' : typeof value}`);
    const m = value as Partial<Manifest>;
    for (const field of ['apiVersion', 'kind'] as const) {
      if (typeof m[field] !== 'string' || m[field] === '') throw new Error(`${path.relative(root, file)}: document ${i + 1}: expected a string ${field}`);
    }
    if (typeof m.metadata?.name !== 'string' || m.metadata.name === '') throw new Error(`${path.relative(root, file)}: document ${i + 1} (${m.kind}): expected metadata.name`);
    out.push(m as Manifest);
  });
  return out;
}

/** Strategic-merge keys of the lists k8s/ patches; any other list is replaced whole, as kustomize does for lists without a merge key. */
function mergeKey(field: string, items: readonly Json[]): string | undefined {
  switch (field) {
    case 'containers': case 'initContainers': case 'volumes': case 'env': case 'imagePullSecrets': return 'name';
    case 'volumeMounts': return 'mountPath';
    // Container ports merge on containerPort, Service ports on port.
    case 'ports': return items.some((i) => typeof i === 'object' && i !== null && !Array.isArray(i) && 'containerPort' in i) ? 'containerPort' : 'port';
    default: return undefined;
  }
}

const isObject = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export function strategicMerge(target: Json, patch: Json, where: string, field = ''): Json {
  if (isObject(patch)) {
    if ('$patch' in patch) throw new Error(`${where}: $patch directives are not supported by the test resolver`);
    const out: JsonObject = isObject(target) ? { ...target } : {};
    for (const [key, value] of Object.entries(patch)) {
      if (key.startsWith('$')) throw new Error(`${where}: directive ${key} is not supported by the test resolver`);
      if (value === null) delete out[key];
      else out[key] = strategicMerge(out[key] ?? null, value, where, key);
    }
    return out;
  }
  if (Array.isArray(patch) && Array.isArray(target)) {
    const key = mergeKey(field, [...target, ...patch]);
    if (key === undefined) return patch;
    // kustomize's order: the patch's items first (merged with the target's item of the same key), then the
    // target's items the patch does not name.
    const out: Json[] = [];
    const named = new Set<Json>();
    for (const item of patch) {
      const id = isObject(item) ? item[key] : undefined;
      if (id === undefined) throw new Error(`${where}: an item of ${field} has no merge key ${key}`);
      named.add(id);
      const original = target.find((t) => isObject(t) && t[key] === id);
      out.push(original === undefined ? item : strategicMerge(original, item, where, field));
    }
    for (const t of target) if (!(isObject(t) && named.has(t[key] ?? null))) out.push(t);
    return out;
  }
  return patch;
}

const group = (apiVersion: string) => (apiVersion.includes('/') ? apiVersion.split('/')[0]! : '');

/** Resolves the kustomization in `dir`; `root` only shortens file names in errors and sources. */
export function kustomize(dir: string, root: string): Resolved[] {
  const file = path.join(dir, 'kustomization.yaml');
  const rel = path.relative(root, file);
  if (!fs.existsSync(file)) throw new Error(`${path.relative(root, dir)}: expected a kustomization.yaml`);
  const k = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  for (const field of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(field)) throw new Error(`${rel}: field "${field}" is not supported by the test resolver (supported: ${[...SUPPORTED_FIELDS].join(', ')})`);
  }
  if (k['kind'] !== 'Kustomization' || k['apiVersion'] !== 'kustomize.config.k8s.io/v1beta1') {
    throw new Error(`${rel}: expected apiVersion kustomize.config.k8s.io/v1beta1 and kind Kustomization`);
  }
  let out: Resolved[] = [];
  for (const entry of (k['resources'] ?? []) as string[]) {
    const target = path.resolve(dir, entry);
    if (!fs.existsSync(target)) throw new Error(`${rel}: resource ${entry} does not exist`);
    if (fs.statSync(target).isDirectory()) out.push(...kustomize(target, root));
    else out.push(...readManifests(target, root).map((manifest) => ({ manifest, source: path.relative(root, target) })));
  }
  for (const p of (k['patches'] ?? []) as Array<Record<string, unknown>>) {
    const keys = Object.keys(p);
    if (keys.length !== 1 || typeof p['path'] !== 'string') throw new Error(`${rel}: patches entries must be {path: FILE} only, got ${JSON.stringify(p)}`);
    const patchFile = path.resolve(dir, p['path']);
    for (const patch of readManifests(patchFile, root)) {
      const where = `${path.relative(root, patchFile)} (${patch.kind} ${patch.metadata.name})`;
      const matches = out.filter((r) => r.manifest.kind === patch.kind && r.manifest.metadata.name === patch.metadata.name
        && group(r.manifest.apiVersion) === group(patch.apiVersion));
      if (matches.length !== 1) throw new Error(`${where}: expected exactly one resource to patch, found ${matches.length}`);
      const hit = matches[0]!;
      out = out.map((r) => (r === hit ? { manifest: strategicMerge(r.manifest, patch, where) as Manifest, source: r.source } : r));
    }
  }
  const namespace = k['namespace'];
  if (typeof namespace === 'string') {
    out = out.map((r) => (CLUSTER_SCOPED.has(r.manifest.kind) ? r
      : { ...r, manifest: { ...r.manifest, metadata: { ...r.manifest.metadata, namespace } } }));
  }
  return out;
}
