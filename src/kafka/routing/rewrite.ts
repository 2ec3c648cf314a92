/**
 * @module kafka/routing/rewrite
 * Broker endpoint rewriting: clients only ever learn Envoy listener addresses, one per broker. Every response
 * that names a broker's host and port gets the address of that broker's route (`BrokerRoutes`) instead; node ids
 * and racks stay as the broker sent them.
 *
 * Responses that carry endpoints (Kafka 4.1.2 specs; test/kafka/routing/coverage.test.ts scans every generated
 * response schema for `host`/`port` fields and fails on one this table does not handle and clients may reach):
 * - Metadata `brokers` (every version);
 * - FindCoordinator: v0-3 the top-level `nodeId`/`host`/`port`, v4+ each of `coordinators`; an entry with node id
 *   -1, an error code and an empty host is Kafka's "no coordinator" and is left as it is;
 * - DescribeCluster `brokers`; when the response describes controllers (`endpointType` 2) the list is emptied:
 *   controllers are never exposed through tollgate;
 * - Produce v10+ and Fetch v16+ `nodeEndpoints` (tagged: present only when a partition moved leader), ShareFetch
 *   and ShareAcknowledge `nodeEndpoints`;
 * - DescribeQuorum v2+ `nodes[].listeners`: controller endpoints. Chosen: every node keeps its id and loses its
 *   listeners (an empty list), so `kafka-metadata-quorum describe` still works and no controller address leaks;
 *   closing the connection instead would break a read-only admin call for no gain.
 *
 * Fail closed: an endpoint whose node id has no route gives `unknown_broker` (the caller closes the connection
 * and audits it) — a broker the config does not know must not reach a client by its own address. An empty route
 * table means rewriting is off: every response is `unchanged`.
 *
 * Pure: decode → modify → encode, and only when an address actually changes; every other byte stays as the broker
 * sent it (the codecs keep unknown tagged fields). A frame that does not decode throws `FrameError`.
 */
import type { MessageSchema } from '../protocol/codec/schema.ts';
import {
  DescribeQuorumResponseSchema,
  FetchResponseSchema,
  FindCoordinatorResponseSchema,
  ProduceResponseSchema,
} from '../protocol/generated/index.ts';
import type { KnownApiKey, ResponseBodies } from '../protocol/generated/index.ts';
import { decodeResponse, encodeResponse } from '../protocol/messages.ts';
import type { BrokerRoutes } from './broker-routes.ts';

export type RewriteResult =
  /** Nothing to change: forward the broker's frame as it is. */
  | { readonly kind: 'unchanged' }
  /** Forward this frame instead: same header, same body but for the addresses. */
  | { readonly kind: 'rewritten'; readonly frame: Buffer }
  /** The response names a broker the routes do not know (the first one met): close the connection and audit. */
  | { readonly kind: 'unknown_broker'; readonly nodeId: number; readonly host: string; readonly port: number };

const UNCHANGED: RewriteResult = Object.freeze({ kind: 'unchanged' });

/** API keys by name, for this module's table (the values are Kafka's). */
const KEY = {
  Produce: 0,
  Fetch: 1,
  Metadata: 3,
  FindCoordinator: 10,
  DescribeQuorum: 55,
  DescribeCluster: 60,
  ShareFetch: 78,
  ShareAcknowledge: 79,
} as const;

/** DescribeCluster `endpointType` for controllers. */
const ENDPOINT_TYPE_CONTROLLERS = 2;
/** Kafka's `Node.noNode()` id. */
const NO_NODE = -1;

/** The endpoint a response names: the shape every endpoint struct of the specs shares (plus its node id). */
interface Endpoint {
  host: string;
  port: number;
}

/** One response being rewritten. */
class Rewriting {
  readonly routes: BrokerRoutes;
  changed = false;
  unknown: { nodeId: number; host: string; port: number } | undefined;

  constructor(routes: BrokerRoutes) {
    this.routes = routes;
  }

  /** Points `endpoint` at the route of `nodeId`; records the first node id without a route. */
  route(nodeId: number, endpoint: Endpoint): void {
    if (this.unknown !== undefined) return;
    const route = this.routes.get(nodeId);
    if (route === undefined) {
      this.unknown = { nodeId, host: endpoint.host, port: endpoint.port };
      return;
    }
    if (endpoint.host !== route.host || endpoint.port !== route.port) {
      endpoint.host = route.host;
      endpoint.port = route.port;
      this.changed = true;
    }
  }

  /** FindCoordinator's "no coordinator" (`Node.noNode()` with an error) is left alone; anything else is routed. */
  routeCoordinator(errorCode: number, nodeId: number, endpoint: Endpoint): void {
    if (errorCode !== 0 && nodeId === NO_NODE && endpoint.host === '') return;
    this.route(nodeId, endpoint);
  }

  /** Empties a list of endpoints that must never reach a client (controllers). */
  strip<T>(list: T[]): T[] {
    if (list.length === 0) return list;
    this.changed = true;
    return [];
  }
}

interface Handler {
  /** First version whose response carries endpoints. */
  readonly from: number;
  rewrite(body: unknown, version: number, rewriting: Rewriting): void;
}

/** The first version in which the top-level field `name` (or the one inside it, `inner`) is present. */
function firstVersionOf(schema: MessageSchema<unknown>, name: string, inner?: string): number {
  const field = schema.struct.fields.find((candidate) => candidate.name === name);
  if (field?.versions == null) throw new Error(`${schema.name} has no field ${name}`);
  if (inner === undefined) return field.versions.min;
  const type = typeof field.type === 'object' && field.type.kind === 'array' ? field.type.element : field.type;
  const sub = typeof type === 'object' && type.kind === 'struct' ? type.fields.find((candidate) => candidate.name === inner) : undefined;
  if (sub?.versions == null) throw new Error(`${schema.name} has no field ${name}.${inner}`);
  return Math.max(field.versions.min, sub.versions.min);
}

function handler<K extends KnownApiKey>(
  apiKey: K,
  from: number,
  rewrite: (body: ResponseBodies[K], version: number, rewriting: Rewriting) => void,
): [number, Handler] {
  return [apiKey, { from, rewrite: rewrite as Handler['rewrite'] }];
}

const HANDLERS: ReadonlyMap<number, Handler> = new Map([
  handler(KEY.Metadata, 0, (body, _version, rewriting) => {
    for (const broker of body.brokers) rewriting.route(broker.nodeId, broker);
  }),
  handler(KEY.FindCoordinator, 0, (body, version, rewriting) => {
    if (version < firstVersionOf(FindCoordinatorResponseSchema, 'coordinators')) {
      rewriting.routeCoordinator(body.errorCode, body.nodeId, body);
    } else {
      for (const coordinator of body.coordinators) rewriting.routeCoordinator(coordinator.errorCode, coordinator.nodeId, coordinator);
    }
  }),
  handler(KEY.DescribeCluster, 0, (body, _version, rewriting) => {
    if (body.endpointType === ENDPOINT_TYPE_CONTROLLERS) body.brokers = rewriting.strip(body.brokers);
    else for (const broker of body.brokers) rewriting.route(broker.brokerId, broker);
  }),
  handler(KEY.Produce, firstVersionOf(ProduceResponseSchema, 'nodeEndpoints'), (body, _version, rewriting) => {
    for (const node of body.nodeEndpoints ?? []) rewriting.route(node.nodeId, node);
  }),
  handler(KEY.Fetch, firstVersionOf(FetchResponseSchema, 'nodeEndpoints'), (body, _version, rewriting) => {
    for (const node of body.nodeEndpoints ?? []) rewriting.route(node.nodeId, node);
  }),
  handler(KEY.ShareFetch, 0, (body, _version, rewriting) => {
    for (const node of body.nodeEndpoints) rewriting.route(node.nodeId, node);
  }),
  handler(KEY.ShareAcknowledge, 0, (body, _version, rewriting) => {
    for (const node of body.nodeEndpoints) rewriting.route(node.nodeId, node);
  }),
  handler(KEY.DescribeQuorum, firstVersionOf(DescribeQuorumResponseSchema, 'nodes', 'listeners'), (body, _version, rewriting) => {
    for (const node of body.nodes) node.listeners = rewriting.strip(node.listeners);
  }),
]);

/** The API keys whose responses may carry broker endpoints (some versions only: see `carriesBrokerEndpoints`). */
export const BROKER_ENDPOINT_API_KEYS: readonly number[] = Object.freeze([...HANDLERS.keys()].sort((a, b) => a - b));

/**
 * True when responses of this API version may carry broker endpoints: the caller hands only those to
 * `rewriteBrokerEndpoints` (any other response never needs decoding for routing).
 */
export function carriesBrokerEndpoints(apiKey: number, apiVersion: number): boolean {
  const entry = HANDLERS.get(apiKey);
  return entry !== undefined && apiVersion >= entry.from;
}

/**
 * Rewrites the broker endpoints of a response frame (size prefix included) to a request of `apiKey` and
 * `apiVersion`. Returns `unchanged` when rewriting is off, the API carries no endpoints or every address already
 * is its route's; `rewritten` with the new frame; `unknown_broker` when a node id has no route. Throws
 * `FrameError` when the frame does not decode as that response.
 */
export function rewriteBrokerEndpoints(responseFrame: Buffer, apiKey: number, apiVersion: number, routes: BrokerRoutes): RewriteResult {
  if (routes.size === 0) return UNCHANGED;
  const entry = HANDLERS.get(apiKey);
  if (entry === undefined || apiVersion < entry.from) return UNCHANGED;
  const response = decodeResponse(responseFrame, apiKey, apiVersion);
  const rewriting = new Rewriting(routes);
  entry.rewrite(response.body, apiVersion, rewriting);
  if (rewriting.unknown !== undefined) return { kind: 'unknown_broker', ...rewriting.unknown };
  if (!rewriting.changed) return UNCHANGED;
  return { kind: 'rewritten', frame: encodeResponse(response.header, apiKey, apiVersion, response.body) };
}
