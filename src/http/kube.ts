/**
 * @module http/kube
 * Kubernetes request attributes from an HTTP request, derived the way the API server derives them (its request-info
 * rules): verb, API group and version, resource, subresource, namespace, name, selectors and dry-run, plus the
 * impersonation a request asks for. Rules match on these instead of raw paths, so "exec into pods in prod" is one
 * condition whatever URL shape kubectl used.
 */

import type { KubeNonResourceRequest, KubeResourceRequest, KubeVerb, KubernetesRequest } from '../core/action.ts';

export type { KubeNonResourceRequest, KubeResourceRequest, KubeVerb };
export type KubeRequest = KubernetesRequest;

/** Pod subresources that open a stream into a container. */
const STREAMING_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);

/** Subresources of a namespace object itself: /api/v1/namespaces/<ns>/status is the namespace's status. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

function isTrue(value: string | null): boolean {
  return value !== null && (value === '1' || value.toLowerCase() === 'true');
}

/**
 * `pathWithQuery` as Envoy reports `:path`; `headers` lower-cased. Returns undefined for a path that is neither an
 * API path nor anything else the API server serves (it never throws: malformed paths are simply non-resource).
 */
export function kubeRequest(method: string, pathWithQuery: string, headers: Readonly<Record<string, string | undefined>> = {}): KubeRequest {
  const url = new URL(pathWithQuery, 'http://kube.invalid');
  const segments = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  const m = method.toUpperCase();

  let rest: string[];
  let apiGroup: string;
  let apiVersion: string;
  if (segments[0] === 'api' && segments.length >= 2) {
    apiGroup = '';
    apiVersion = segments[1]!;
    rest = segments.slice(2);
  } else if (segments[0] === 'apis' && segments.length >= 3) {
    apiGroup = segments[1]!;
    apiVersion = segments[2]!;
    rest = segments.slice(3);
  } else {
    return { kind: 'non-resource', verb: m.toLowerCase() as KubeVerb, path: url.pathname };
  }
  if (rest.length === 0) return { kind: 'non-resource', verb: m.toLowerCase() as KubeVerb, path: url.pathname };

  // The deprecated /watch/ prefix makes any GET a watch.
  let watchPrefix = false;
  if (rest[0] === 'watch') {
    watchPrefix = true;
    rest = rest.slice(1);
  }

  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 2) {
    namespace = rest[1]!;
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2]!)) rest = rest.slice(2);
  }
  const resource = rest[0] ?? '';
  let name = rest[1];
  const subresource = rest[2];

  const params = url.searchParams;
  const labelSelector = params.get('labelSelector') ?? undefined;
  const fieldSelector = params.get('fieldSelector') ?? undefined;

  let verb: KubeVerb;
  switch (m) {
    case 'POST': verb = 'create'; break;
    case 'PUT': verb = 'update'; break;
    case 'PATCH': verb = 'patch'; break;
    case 'DELETE': verb = name === undefined ? 'deletecollection' : 'delete'; break;
    case 'GET': case 'HEAD':
      verb = name === undefined ? 'list' : 'get';
      if (watchPrefix || isTrue(params.get('watch'))) verb = 'watch';
      break;
    default: verb = m.toLowerCase() as KubeVerb;
  }
  // A WebSocket exec/attach/port-forward is a GET, and the API server authorizes it as `create` as well (KEP-4006,
  // AuthorizePodWebsocketUpgradeCreatePermission): read it as create so a rule cannot be walked around by protocol.
  if (verb === 'get' && resource === 'pods' && subresource !== undefined && STREAMING_SUBRESOURCES.has(subresource)) verb = 'create';
  // A list or watch narrowed to one object by metadata.name is, for authorization, about that object.
  if ((verb === 'list' || verb === 'watch') && name === undefined && fieldSelector) {
    const byName = fieldSelector.split(',').map((s) => s.trim()).find((s) => s.startsWith('metadata.name='));
    if (byName) name = byName.slice('metadata.name='.length);
  }

  const impersonateUser = headers['impersonate-user'];
  const impersonateGroups = (headers['impersonate-group'] ?? '').split(',').map((g) => g.trim()).filter((g) => g !== '');
  return {
    kind: 'resource', verb, apiGroup, apiVersion, resource,
    ...(subresource !== undefined ? { subresource } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(labelSelector !== undefined ? { labelSelector } : {}),
    ...(fieldSelector !== undefined ? { fieldSelector } : {}),
    dryRun: params.getAll('dryRun').includes('All'),
    ...(impersonateUser !== undefined || impersonateGroups.length > 0
      ? { impersonate: { ...(impersonateUser !== undefined ? { user: impersonateUser } : {}), groups: impersonateGroups } }
      : {}),
  };
}
