/**
 * @module bench/lib/http-envoy
 * One Envoy bootstrap for the HTTP bench, every listener derived from the bundled envoy/http-edge.yaml (same
 * connection manager, routes, timeouts, tollgate cluster, ext_authz and ext_proc settings, runtime flag), differing
 * only in the HTTP filters in front of the router:
 *
 *   direct     router alone
 *   jwt_rbac   Envoy's own envoy.filters.http.jwt_authn (remote JWKS of the dev issuer, its cache of verified
 *              tokens on) + envoy.filters.http.rbac, expressing the access rules of the bench's tollgate config
 *              (bench/lib/http-policy.ts)
 *   authz      the template's ext_authz (tollgate) alone
 *   edge       the template as shipped: ext_authz + ext_proc (FULL_DUPLEX_STREAMED responses) → tollgate
 *
 * Listener, stat prefix and route names are suffixed with the variant, so one Envoy serves them all.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { renderTemplate } from '../../scripts/lib/envoy.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { LOOPBACK } from '../../scripts/lib/ports.ts';
import type { AccessPolicy } from './http-policy.ts';

export const HTTP_EDGE_TEMPLATE = path.join(REPO_ROOT, 'envoy', 'http-edge.yaml');

export type EnvoyVariant = 'direct' | 'jwt_rbac' | 'authz' | 'edge';

const EXT_AUTHZ = 'envoy.filters.http.ext_authz';
const EXT_PROC = 'envoy.filters.http.ext_proc';
const ROUTER = 'envoy.filters.http.router';
const JWT_AUTHN = 'envoy.filters.http.jwt_authn';
const RBAC = 'envoy.filters.http.rbac';
const JWT_PROVIDER = 'dev_issuer';
/** Where jwt_authn puts the verified payload in dynamic metadata, for RBAC to read the groups claim from. */
const JWT_PAYLOAD_KEY = 'jwt_payload';
/** jwt_authn's cache of verified tokens (per worker thread; Envoy's default size when the cache is on). */
export const JWT_CACHE_SIZE = 100;

export interface HttpBenchEnvoyOptions {
  readonly adminPort: number;
  /** Listener port per variant; variants not given are left out. */
  readonly listeners: Partial<Record<EnvoyVariant, number>>;
  readonly upstreamPort: number;
  readonly tollgatePort: number;
  /** The dev issuer: jwt_authn fetches its JWKS from `<issuer>/jwks` through a cluster to 127.0.0.1:`issuerPort`. */
  readonly issuer: string;
  readonly issuerPort: number;
  readonly audience: string;
  /** The claim holding the groups (a top-level claim). */
  readonly groupsClaim: string;
  readonly policy: AccessPolicy;
}

interface HttpFilter {
  name: string;
  typed_config: Record<string, unknown>;
}
interface Hcm {
  stat_prefix: string;
  route_config: { name: string };
  http_filters: HttpFilter[];
}
interface Listener {
  name: string;
  address: { socket_address: { port_value: number } };
  filter_chains: Array<{ filters: Array<{ name: string; typed_config: Hcm }> }>;
}
interface Bootstrap {
  admin: unknown;
  layered_runtime?: unknown;
  static_resources: { listeners: Listener[]; clusters: unknown[] };
}

/** jwt_authn: every request needs a valid token of the dev issuer for the audience; the token is not forwarded. */
function jwtAuthn(o: HttpBenchEnvoyOptions): HttpFilter {
  return {
    name: JWT_AUTHN,
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
      providers: {
        [JWT_PROVIDER]: {
          issuer: o.issuer,
          audiences: [o.audience],
          remote_jwks: {
            http_uri: { uri: `${o.issuer}/jwks`, cluster: JWT_PROVIDER, timeout: '5s' },
            cache_duration: '600s',
            // Fetched when the listener starts, not by the first request.
            async_fetch: {},
          },
          // As tollgate removes it: the caller's token is no credential upstream.
          forward: false,
          // Verified tokens are kept, as tollgate keeps them (without it every request's signature is checked).
          jwt_cache_config: { jwt_cache_size: JWT_CACHE_SIZE },
          payload_in_metadata: JWT_PAYLOAD_KEY,
        },
      },
      rules: [{ match: { prefix: '/' }, requires: { provider_name: JWT_PROVIDER } }],
    },
  };
}

/** RBAC: allow exactly what the access policy allows (method and path prefix for a group); anything else 403. */
function rbac(o: HttpBenchEnvoyOptions): HttpFilter {
  const policies: Record<string, unknown> = {};
  for (const rule of o.policy) {
    policies[rule.name] = {
      permissions: [{
        and_rules: {
          rules: [
            { or_rules: { rules: rule.methods.map((m) => ({ header: { name: ':method', string_match: { exact: m } } })) } },
            { or_rules: { rules: rule.pathPrefixes.map((p) => ({ url_path: { path: { prefix: p } } })) } },
          ],
        },
      }],
      principals: [{
        metadata: {
          filter: JWT_AUTHN,
          path: [{ key: JWT_PAYLOAD_KEY }, { key: o.groupsClaim }],
          value: { list_match: { one_of: { string_match: { exact: rule.group } } } },
        },
      }],
    };
  }
  return {
    name: RBAC,
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
      rules: { action: 'ALLOW', policies },
    },
  };
}

/** The bootstrap: one listener per variant in `o.listeners`, admin on 127.0.0.1:`adminPort`. */
export function renderHttpBenchEnvoy(o: HttpBenchEnvoyOptions): string {
  const template = YAML.parse(renderTemplate(fs.readFileSync(HTTP_EDGE_TEMPLATE, 'utf8'), {
    ENVOY_ADMIN_PORT: o.adminPort,
    // Replaced per variant below.
    HTTP_LISTENER_PORT: 1,
    TOLLGATE_HOST: LOOPBACK,
    TOLLGATE_PORT: o.tollgatePort,
    UPSTREAM_HOST: LOOPBACK,
    UPSTREAM_PORT: o.upstreamPort,
  })) as Bootstrap;
  const { listeners, clusters } = template.static_resources;
  const hcmOf = (l: Listener): Hcm | undefined => l.filter_chains[0]?.filters.find((f) => f.name === 'envoy.filters.network.http_connection_manager')?.typed_config;
  const edge = listeners.length === 1 ? listeners[0]! : undefined;
  const edgeHcm = edge === undefined ? undefined : hcmOf(edge);
  const filter = (name: string): HttpFilter => {
    const found = edgeHcm?.http_filters.find((f) => f.name === name);
    if (found === undefined) throw new Error(`http-envoy: expected ${HTTP_EDGE_TEMPLATE} to have one listener whose connection manager has the ${name} filter`);
    return found;
  };
  const filters: Record<EnvoyVariant, () => HttpFilter[]> = {
    direct: () => [filter(ROUTER)],
    jwt_rbac: () => [jwtAuthn(o), rbac(o), filter(ROUTER)],
    authz: () => [filter(EXT_AUTHZ), filter(ROUTER)],
    edge: () => edgeHcm!.http_filters,
  };
  // Every filter the template has is one this derivation knows: a new one must be placed on purpose.
  const known = new Set([EXT_AUTHZ, EXT_PROC, ROUTER]);
  for (const f of edgeHcm?.http_filters ?? []) {
    if (!known.has(f.name)) throw new Error(`http-envoy: ${HTTP_EDGE_TEMPLATE} has the filter ${f.name}, which this bench does not place in its variants`);
  }

  const variants = (Object.entries(o.listeners) as Array<[EnvoyVariant, number | undefined]>).filter(([, port]) => port !== undefined);
  const derived = variants.map(([variant, port]) => {
    const listener = structuredClone(edge!);
    const hcm = hcmOf(listener)!;
    listener.name = `${listener.name}_${variant}`;
    listener.address.socket_address.port_value = port!;
    hcm.stat_prefix = `${hcm.stat_prefix}_${variant}`;
    hcm.route_config.name = `${hcm.route_config.name}_${variant}`;
    hcm.http_filters = structuredClone(filters[variant]());
    return listener;
  });
  const issuerCluster = {
    name: JWT_PROVIDER,
    type: 'STATIC',
    connect_timeout: '2s',
    load_assignment: {
      cluster_name: JWT_PROVIDER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: LOOPBACK, port_value: o.issuerPort } } } }] }],
    },
  };
  return YAML.stringify({
    admin: template.admin,
    ...(template.layered_runtime !== undefined && { layered_runtime: template.layered_runtime }),
    static_resources: { listeners: derived, clusters: [...clusters, ...(o.listeners.jwt_rbac !== undefined ? [issuerCluster] : [])] },
  });
}
