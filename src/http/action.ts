/**
 * @module http/action
 * An HTTP request as policy sees it: method, authority, path, and — when the authority is a Kubernetes API server
 * (config `http.kubernetes.hosts`) — the Kubernetes attributes the API server itself would derive. ext_authz and
 * ext_proc build it the same way, so both ask policy the same question.
 */
import type { HttpAction } from '../core/action.ts';
import type { Config } from '../config/schema.ts';
import { compilePatterns } from '../policy/glob.ts';
import { kubeRequest } from './kube.ts';

export type HttpClassifier = (method: string, host: string, pathWithQuery: string, headers: Readonly<Record<string, string | undefined>>) => HttpAction;

export function createHttpClassifier(kubernetes: Config['http']['kubernetes']): HttpClassifier {
  const isKube = compilePatterns(kubernetes?.hosts);
  return (method, host, pathWithQuery, headers) => {
    const q = pathWithQuery.indexOf('?');
    const base = { kind: 'http' as const, method: method.toUpperCase(), host, path: q === -1 ? pathWithQuery : pathWithQuery.slice(0, q) };
    if (isKube === undefined || !isKube(host)) return base;
    return { ...base, kubernetes: kubeRequest(method, pathWithQuery, headers) };
  };
}

/**
 * What a request's Impersonate-* headers ask, as the separate `impersonate` checks the API server makes: one per
 * user (a service account's username is checked as the serviceaccounts resource) and one per group.
 */
export function impersonationActions(action: HttpAction): HttpAction[] {
  const k = action.kubernetes;
  if (k?.kind !== 'resource' || k.impersonate === undefined) return [];
  const check = (resource: string, name: string, namespace?: string): HttpAction => ({
    ...action,
    kubernetes: { kind: 'resource', verb: 'impersonate', apiGroup: '', apiVersion: 'v1', resource, name, dryRun: false, ...(namespace !== undefined ? { namespace } : {}) },
  });
  const out: HttpAction[] = [];
  const user = k.impersonate.user;
  if (user !== undefined) {
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
    out.push(sa ? check('serviceaccounts', sa[2]!, sa[1]!) : check('users', user));
  }
  for (const group of k.impersonate.groups) out.push(check('groups', group));
  return out;
}
