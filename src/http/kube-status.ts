/**
 * @module http/kube-status
 * Denials a Kubernetes client understands: a `Status` object (kind Status, apiVersion v1) with the reason and code
 * the API server itself would use, and a message in the API server's own shape, so kubectl prints
 * `Error from server (Forbidden): secrets is forbidden: User "…" cannot list resource "secrets" …` and client-go
 * maps it to the usual errors (IsForbidden, IsUnauthorized).
 */
import { qualifiedResource, type KubernetesRequest } from '../core/action.ts';

export type StatusReason = 'Forbidden' | 'Unauthorized' | 'BadRequest' | 'RequestEntityTooLarge' | 'InternalError' | 'ServiceUnavailable' | 'TooManyRequests';

export interface KubeStatus {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Failure';
  readonly message: string;
  readonly reason: StatusReason;
  readonly details?: {
    readonly name?: string;
    readonly group?: string;
    readonly kind?: string;
    /** StatusCause entries: machine-readable parts of the failure (tollgate: the approval's id and URL). */
    readonly causes?: ReadonlyArray<{ readonly reason?: string; readonly message?: string; readonly field?: string }>;
    /** TooManyRequests: when to try again (also in Retry-After). */
    readonly retryAfterSeconds?: number;
  };
  readonly code: number;
}

export function kubeStatus(code: number, reason: StatusReason, message: string, details?: KubeStatus['details']): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

/** The API server's Forbidden message for `request` by `user`, with tollgate's reason appended. */
export function forbidden(request: KubernetesRequest, user: string, reason: string): KubeStatus {
  if (request.kind === 'non-resource') {
    return kubeStatus(403, 'Forbidden', `forbidden: User ${JSON.stringify(user)} cannot ${request.verb} path ${JSON.stringify(request.path)}: ${reason}`);
  }
  const resource = qualifiedResource(request);
  const subject = request.name === undefined ? request.resource : `${request.resource} ${JSON.stringify(request.name)}`;
  const scope = request.namespace === undefined ? 'at the cluster scope' : `in the namespace ${JSON.stringify(request.namespace)}`;
  const message = `${subject} is forbidden: User ${JSON.stringify(user)} cannot ${request.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(request.apiGroup)} ${scope}: ${reason}`;
  return kubeStatus(403, 'Forbidden', message, {
    ...(request.name !== undefined ? { name: request.name } : {}), group: request.apiGroup, kind: request.resource,
  });
}
