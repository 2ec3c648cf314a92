/**
 * @module http/action
 * An HTTP request as policy sees it: method, authority, path, and — when the authority is a Kubernetes API server
 * (config `http.kubernetes.hosts`) — the Kubernetes attributes the API server itself would derive, or — when it is a
 * Kafka REST Proxy (config `http.kafkaRest`) — the Kafka requests it amounts to. ext_authz and ext_proc build it the
 * same way, so both ask policy the same question.
 */
import type { HttpAction } from '../core/action.ts';
import type { Config } from '../config/schema.ts';
import { compilePatterns } from '../policy/glob.ts';
import { kubeRequest } from './kube.ts';
import { restProxyActions, type RestProxyRequest } from './rest-proxy.ts';

/**
 * An HTTP request as the HTTP adapters see it. `kafkaRest` stays out of core's HttpAction: policy never reads it;
 * the adapters judge its Kafka actions instead of the HTTP request (src/http/rest-proxy-policy.ts).
 */
export interface HttpRequestAction extends HttpAction {
  /** Set when the request goes to a Kafka REST Proxy: the Kafka requests it amounts to, or why it is unknown. */
  readonly kafkaRest?: RestProxyRequest;
}

export type HttpClassifier = (method: string, host: string, pathWithQuery: string, headers: Readonly<Record<string, string | undefined>>) => HttpRequestAction;

export function createHttpClassifier(kubernetes: Config['http']['kubernetes'], kafkaRest?: Config['http']['kafkaRest']): HttpClassifier {
  const isKube = compilePatterns(kubernetes?.hosts);
  const isRest = compilePatterns(kafkaRest?.hosts);
  const prefix = kafkaRest?.pathPrefix;
  return (method, host, pathWithQuery, headers) => {
    const q = pathWithQuery.indexOf('?');
    const base = { kind: 'http' as const, method: method.toUpperCase(), host, path: q === -1 ? pathWithQuery : pathWithQuery.slice(0, q) };
    if (isKube !== undefined && isKube(host)) return { ...base, kubernetes: kubeRequest(method, pathWithQuery, headers) };
    if (isRest !== undefined && isRest(host)) return { ...base, kafkaRest: kafkaRestRequest(method, pathWithQuery, prefix) };
    return base;
  };
}

/** Every request as plain HTTP: what the handlers use when no Kubernetes or REST Proxy hosts are configured. */
export const PLAIN_HTTP: HttpClassifier = createHttpClassifier(undefined);

/**
 * A request to a REST Proxy host as the Kafka requests it amounts to. Everything on such a host is the proxy's: a path
 * outside its API (or outside `pathPrefix`) is unknown too, so it is denied rather than judged as plain HTTP.
 */
export function kafkaRestRequest(method: string, pathWithQuery: string, pathPrefix?: string): RestProxyRequest {
  let path = pathWithQuery;
  if (pathPrefix !== undefined) {
    const rest = pathWithQuery.slice(pathPrefix.length);
    if (!pathWithQuery.startsWith(pathPrefix) || !(rest === '' || rest.startsWith('/') || rest.startsWith('?'))) {
      return { kind: 'unknown', reason: `${JSON.stringify(base(pathWithQuery))} is outside the Kafka REST Proxy's path prefix ${pathPrefix}` };
    }
    path = rest.startsWith('/') ? rest : `/${rest}`;
  }
  return restProxyActions(method, path)
    ?? { kind: 'unknown', reason: `${JSON.stringify(base(path))} is outside the Kafka REST Proxy API (/v3, /kafka/v3, /topics, /consumers, /brokers)` };
}

const base = (pathWithQuery: string) => pathWithQuery.split('?', 1)[0]!;

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
