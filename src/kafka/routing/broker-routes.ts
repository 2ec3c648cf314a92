/**
 * @module kafka/routing/broker-routes
 * Where clients must connect to reach each broker: for every broker node id, the Envoy listener (host and port)
 * that forwards to that broker, and only to it. Built once from the config; looked up per broker endpoint a
 * response carries.
 *
 * An empty table means "no rewriting configured": responses go out with the brokers' own addresses.
 */

/** The Envoy listener in front of one broker. */
export interface BrokerRoute {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

const INT32_MAX = 0x7fffffff;
const PORT_MAX = 0xffff;

export class BrokerRoutes {
  readonly #byNode: ReadonlyMap<number, BrokerRoute>;

  /**
   * Checks every route when the table is built: a node id is a non-negative int32 named once, a host a non-empty
   * string without whitespace, a port an integer from 1 to 65535 (it must fit every wire type Kafka uses for
   * ports, uint16 included). Throws `Error` naming the bad route.
   */
  constructor(routes: readonly BrokerRoute[]) {
    const byNode = new Map<number, BrokerRoute>();
    for (const route of routes) {
      const { nodeId, host, port } = route;
      const where = `broker route ${JSON.stringify(route)}`;
      if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > INT32_MAX) throw new Error(`${where}: nodeId must be an integer from 0 to ${INT32_MAX}`);
      if (typeof host !== 'string' || host === '' || /\s/.test(host)) throw new Error(`${where}: host must be a non-empty name or address without whitespace`);
      if (!Number.isInteger(port) || port < 1 || port > PORT_MAX) throw new Error(`${where}: port must be an integer from 1 to ${PORT_MAX}`);
      if (byNode.has(nodeId)) throw new Error(`${where}: node ${nodeId} has more than one route`);
      byNode.set(nodeId, Object.freeze({ nodeId, host, port }));
    }
    this.#byNode = byNode;
  }

  /** The route of a broker, or undefined for a node id the config does not name. */
  get(nodeId: number): BrokerRoute | undefined {
    return this.#byNode.get(nodeId);
  }

  /** Number of routes; 0 means rewriting is off. */
  get size(): number {
    return this.#byNode.size;
  }

  /** Every route, by ascending node id (for logs and the admin listener). */
  list(): BrokerRoute[] {
    return [...this.#byNode.values()].sort((a, b) => a.nodeId - b.nodeId);
  }
}
