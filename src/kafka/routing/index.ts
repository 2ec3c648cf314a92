/**
 * @module kafka/routing
 * Broker endpoint rewriting: the route table (broker node id → Envoy listener) and the response rewriter.
 */
export { BrokerRoutes } from './broker-routes.ts';
export type { BrokerRoute } from './broker-routes.ts';
export { BROKER_ENDPOINT_API_KEYS, carriesBrokerEndpoints, rewriteBrokerEndpoints } from './rewrite.ts';
export type { RewriteResult } from './rewrite.ts';
