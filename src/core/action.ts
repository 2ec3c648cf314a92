/**
 * @module core/action
 * What a request asks to do, in protocol-neutral terms. Adapters translate wire traffic into an `Action`; the policy
 * engine sees nothing else.
 */

export interface HttpAction {
  readonly kind: 'http';
  /** Upper-case method as the client sent it. */
  readonly method: string;
  /** `:authority` without any port normalisation. */
  readonly host: string;
  /** Path without the query string. */
  readonly path: string;
  /** Set when the request goes to a Kubernetes API server (config `http.kubernetes.hosts`): what it asks for. */
  readonly kubernetes?: KubernetesRequest;
}

/** Kubernetes verbs as the API server's authorizer sees them. */
export type KubeVerb =
  | 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection' | 'impersonate'
  // Non-resource URLs (/healthz, /version, /openapi/...) keep the lower-case HTTP method as their verb.
  | 'head' | 'options' | 'post' | 'put';

/** A request on a Kubernetes resource, with the attributes the API server's request-info rules derive. */
export interface KubeResourceRequest {
  readonly kind: 'resource';
  readonly verb: KubeVerb;
  /** '' for the core group (/api/v1). */
  readonly apiGroup: string;
  readonly apiVersion: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly dryRun: boolean;
  /** Impersonate-User / Impersonate-Group headers, when the request carries them. */
  readonly impersonate?: { readonly user?: string; readonly groups: readonly string[] };
}

/** A request on a non-resource URL (/healthz, /version, /apis, /openapi/v3). */
export interface KubeNonResourceRequest {
  readonly kind: 'non-resource';
  readonly verb: KubeVerb;
  readonly path: string;
}

export type KubernetesRequest = KubeResourceRequest | KubeNonResourceRequest;

/** `pods/exec`, `secrets`: a resource as RBAC rules and the API server's messages name it. */
export function qualifiedResource(k: KubeResourceRequest): string {
  return k.subresource === undefined ? k.resource : `${k.resource}/${k.subresource}`;
}

export type KafkaOperation = 'produce' | 'consume' | 'describe' | 'admin';

export interface KafkaAction {
  readonly kind: 'kafka';
  /** Kafka API name, e.g. `Produce`, `DeleteTopics`. */
  readonly api: string;
  readonly operation: KafkaOperation;
  readonly topic?: string;
  /** Consumer group id (group coordinator APIs, offset commits). */
  readonly group?: string;
  /** Transactional id (transaction coordinator APIs). */
  readonly transactionalId?: string;
}

export type Action = HttpAction | KafkaAction;
