/**
 * @module test/deploy/istio
 * Turns the Istio resources of k8s/ into something the pinned Envoy can judge: a minimal bootstrap shaped like the
 * one istiod generates for a workload (the inbound listener `virtualInbound` with one filter chain per port for a
 * sidecar, a `0.0.0.0_<port>` listener for a gateway, `outbound|port||host` clusters, Istio's filter names), the
 * ext_authz filter istiod inserts for an AuthorizationPolicy with action CUSTOM and its extension provider, and then
 * the EnvoyFilter patches applied onto it. `envoy --mode validate` then checks every fragment in place.
 *
 * Only the patch forms k8s/ uses are applied (HTTP_FILTER and NETWORK_FILTER INSERT_BEFORE, CLUSTER ADD, BOOTSTRAP
 * MERGE); anything else throws, and so does a patch that matches nothing, since istiod would silently skip it.
 */
import type { Json, JsonObject, Manifest } from './kustomize.ts';

type Obj = Record<string, any>;

export type Context = 'SIDECAR_INBOUND' | 'SIDECAR_OUTBOUND' | 'GATEWAY';

export interface Workload {
  readonly name: string;
  readonly kind: 'sidecar' | 'gateway';
  readonly labels: Readonly<Record<string, string>>;
  /** Ports the workload serves: HTTP ones get an HCM, TCP ones a tcp_proxy. */
  readonly ports: ReadonlyArray<{ port: number; protocol: 'http' | 'tcp' }>;
}

export interface ExtAuthzProvider {
  readonly name: string;
  readonly service: string;
  readonly port: number;
  readonly timeout?: string;
  readonly failOpen?: boolean;
}

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

const h2 = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: { http2_protocol_options: {} },
  },
};

function staticCluster(name: string, port: number, http2: boolean): Obj {
  return {
    name, type: 'STATIC', connect_timeout: '1s',
    ...(http2 && { typed_extension_protocol_options: h2 }),
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
  };
}

function hcm(statPrefix: string, cluster: string): Obj {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: statPrefix,
      route_config: { name: statPrefix, virtual_hosts: [{ name: statPrefix, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] },
      http_filters: [structuredClone(ROUTER)],
    },
  };
}

function tcpProxy(statPrefix: string, cluster: string): Obj {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: statPrefix, cluster } };
}

/** `outbound|9001||tollgate.tollgate.svc.cluster.local`, as istiod names the cluster of a service port. */
export const outboundCluster = (host: string, port: number) => `outbound|${port}||${host}`;

/**
 * The skeleton istiod would generate for `workload`, with an `outbound|…` cluster (HTTP/2) for each of
 * `grpcServices` (host:port of gRPC services in the mesh it may call).
 */
export function skeleton(workload: Workload, grpcServices: ReadonlyArray<{ host: string; port: number }>, adminPort: number): Obj {
  const clusters: Obj[] = grpcServices.map((s) => staticCluster(outboundCluster(s.host, s.port), s.port, true));
  const listeners: Obj[] = [];
  if (workload.kind === 'sidecar') {
    listeners.push({
      name: 'virtualInbound',
      address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
      listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst' } }],
      filter_chains: workload.ports.map(({ port, protocol }) => {
        const cluster = `inbound|${port}||`;
        clusters.push(staticCluster(cluster, port, false));
        return {
          name: `0.0.0.0_${port}`,
          filter_chain_match: { destination_port: port },
          filters: [protocol === 'http' ? hcm(`inbound_0.0.0.0_${port}`, cluster) : tcpProxy(cluster, cluster)],
        };
      }),
    });
  } else {
    for (const { port, protocol } of workload.ports) {
      const cluster = `outbound|${port}||upstream.example.svc.cluster.local`;
      clusters.push(staticCluster(cluster, port, false));
      listeners.push({
        name: `0.0.0.0_${port}`,
        address: { socket_address: { address: '0.0.0.0', port_value: port } },
        filter_chains: [{ filters: [protocol === 'http' ? hcm(`outbound_0.0.0.0_${port}`, cluster) : tcpProxy(cluster, cluster)] }],
      });
    }
  }
  return {
    node: { id: `${workload.kind}~10.0.0.1~${workload.name}.test~test.svc.cluster.local`, cluster: workload.name },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
    layered_runtime: { layers: [{ name: 'global config', static_layer: {} }, { name: 'admin', admin_layer: {} }] },
    static_resources: { listeners, clusters },
  };
}

/** The ext_authz filter istiod inserts (first in the HTTP filter chain) for a CUSTOM policy naming `provider`. */
export function istioExtAuthzFilter(provider: ExtAuthzProvider): Obj {
  return {
    name: 'envoy.filters.http.ext_authz',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
      transport_api_version: 'V3',
      grpc_service: { envoy_grpc: { cluster_name: outboundCluster(provider.service, provider.port) }, timeout: provider.timeout ?? '600s' },
      failure_mode_allow: provider.failOpen ?? false,
      status_on_error: { code: 'Forbidden' },
    },
  };
}

/** Inserts ext_authz first in every HTTP filter chain of the listeners `context` covers, as istiod does for CUSTOM. */
export function insertExtAuthz(bootstrap: Obj, provider: ExtAuthzProvider): void {
  let inserted = 0;
  for (const chain of chains(bootstrap, undefined)) {
    for (const f of chain.filters as Obj[]) {
      if (f['name'] !== 'envoy.filters.network.http_connection_manager') continue;
      f['typed_config'].http_filters.unshift(istioExtAuthzFilter(provider));
      inserted++;
    }
  }
  if (inserted === 0) throw new Error(`CUSTOM provider ${provider.name}: the workload has no HTTP listener to insert ext_authz into`);
}

/** The filter chains a listener match selects: for a sidecar's inbound listener, portNumber picks the chain by destination port. */
function chains(bootstrap: Obj, portNumber: number | undefined): Obj[] {
  const out: Obj[] = [];
  for (const listener of bootstrap['static_resources'].listeners as Obj[]) {
    for (const chain of listener['filter_chains'] as Obj[]) {
      const port = listener['name'] === 'virtualInbound' ? chain['filter_chain_match']?.destination_port : listener['address'].socket_address.port_value;
      if (portNumber === undefined || port === portNumber) out.push(chain);
    }
  }
  return out;
}

/** Proto merge as istiod applies BOOTSTRAP MERGE: messages merge field by field, repeated fields append. */
function protoMerge(target: Json | undefined, patch: Json): Json {
  if (Array.isArray(patch)) return [...(Array.isArray(target) ? target : []), ...structuredClone(patch)];
  if (typeof patch === 'object' && patch !== null) {
    const out: JsonObject = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...target } : {};
    for (const [k, v] of Object.entries(patch)) out[k] = protoMerge(out[k], v);
    return out;
  }
  return patch;
}

const CONTEXT_OF: Record<Workload['kind'], readonly string[]> = {
  sidecar: ['SIDECAR_INBOUND', 'SIDECAR_OUTBOUND', 'ANY'],
  gateway: ['GATEWAY', 'ANY'],
};

/** Applies `filter`'s patches to `bootstrap` (in place). Throws for unsupported forms and for patches that match nothing. */
export function applyEnvoyFilter(bootstrap: Obj, workload: Workload, filter: Manifest): void {
  const name = `EnvoyFilter ${filter.metadata.namespace ?? ''}/${filter.metadata.name}`;
  const patches = ((filter['spec'] as Obj | undefined)?.['configPatches'] ?? []) as Obj[];
  patches.forEach((cp, i) => {
    const where = `${name} configPatches[${i}] (${cp['applyTo']} ${cp['patch']?.operation})`;
    const context: string = cp['match']?.context ?? 'ANY';
    if (!CONTEXT_OF[workload.kind].includes(context)) throw new Error(`${where}: context ${context} does not apply to a ${workload.kind}`);
    const op = cp['patch']?.operation;
    const value = cp['patch']?.value as Obj;
    const listenerMatch = cp['match']?.listener as Obj | undefined;
    switch (`${cp['applyTo']} ${op}`) {
      case 'HTTP_FILTER INSERT_BEFORE': {
        const networkName = listenerMatch?.['filterChain']?.filter?.name;
        const sub = listenerMatch?.['filterChain']?.filter?.subFilter?.name;
        if (networkName !== 'envoy.filters.network.http_connection_manager' || typeof sub !== 'string') throw new Error(`${where}: expected match.listener.filterChain.filter {name: envoy.filters.network.http_connection_manager, subFilter.name}`);
        let applied = 0;
        for (const chain of chainsFor(bootstrap, workload, context, listenerMatch)) {
          for (const f of chain['filters'] as Obj[]) {
            if (f['name'] !== networkName) continue;
            const http: Obj[] = f['typed_config'].http_filters;
            const at = http.findIndex((h) => h['name'] === sub);
            if (at === -1) continue;
            http.splice(at, 0, structuredClone(value));
            applied++;
          }
        }
        if (applied === 0) throw new Error(`${where}: matches no HTTP filter ${sub} in the ${workload.kind} ${workload.name}`);
        break;
      }
      case 'NETWORK_FILTER INSERT_BEFORE': {
        const target = listenerMatch?.['filterChain']?.filter?.name;
        if (typeof target !== 'string') throw new Error(`${where}: expected match.listener.filterChain.filter.name`);
        let applied = 0;
        for (const chain of chainsFor(bootstrap, workload, context, listenerMatch)) {
          const filters = chain['filters'] as Obj[];
          const at = filters.findIndex((f) => f['name'] === target);
          if (at === -1) continue;
          filters.splice(at, 0, structuredClone(value));
          applied++;
        }
        if (applied === 0) throw new Error(`${where}: matches no network filter ${target} in the ${workload.kind} ${workload.name}`);
        break;
      }
      case 'CLUSTER ADD':
        if (workload.kind === 'sidecar' && context === 'SIDECAR_INBOUND') throw new Error(`${where}: istiod adds clusters in the outbound (or gateway) context`);
        bootstrap['static_resources'].clusters.push(structuredClone(value));
        break;
      case 'BOOTSTRAP MERGE':
        Object.assign(bootstrap, protoMerge(bootstrap as JsonObject, value as JsonObject));
        break;
      default:
        throw new Error(`${where}: not supported by the test assembler`);
    }
  });
}

function chainsFor(bootstrap: Obj, workload: Workload, context: string, listenerMatch: Obj | undefined): Obj[] {
  if (workload.kind === 'sidecar' && context !== 'SIDECAR_INBOUND') return [];
  const port = listenerMatch?.['portNumber'];
  return chains(bootstrap, typeof port === 'number' ? port : undefined);
}
