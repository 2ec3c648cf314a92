/**
 * @module signals/resource
 * The resource part of a signal key, from the action: one name per thing a request acts on, prefixed by its kind so
 * a topic and a consumer group of the same name never share a counter.
 */
import { qualifiedResource, type Action } from '../core/action.ts';

/** `topic:payments`, `group:analytics-1`, `transactional-id:tx-1`, `cluster`; `kubernetes:prod/apps/deployments`; `http:api.example.com/api/customers`. */
export function resourceOf(action: Action): string {
  if (action.kind === 'kafka') {
    if (action.topic !== undefined) return `topic:${action.topic}`;
    if (action.group !== undefined) return `group:${action.group}`;
    if (action.transactionalId !== undefined) return `transactional-id:${action.transactionalId}`;
    return 'cluster';
  }
  const k = action.kubernetes;
  if (k === undefined) return `http:${action.host}${action.path}`;
  if (k.kind === 'non-resource') return `kubernetes:${k.path}`;
  const group = k.apiGroup === '' ? '' : `${k.apiGroup}/`;
  return `kubernetes:${k.namespace ?? '*'}/${group}${qualifiedResource(k)}`;
}

/** Where a request's signal records go: the audit path of the action. */
export function pathOf(action: Action): 'kafka' | 'http' | 'kubernetes' {
  if (action.kind === 'kafka') return 'kafka';
  return action.kubernetes === undefined ? 'http' : 'kubernetes';
}
