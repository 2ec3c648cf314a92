/**
 * @module bench/lib/kafka-envoy
 * One Envoy bootstrap with a Kafka listener per proxied bench case, each derived from the bundled envoy/kafka.yaml so
 * the bench measures the configuration tollgate ships (same ext_proc settings: fail-closed, STREAMED both ways,
 * message timeout, connection attributes):
 * - `tcp`: kafka.yaml without the network ext_proc filter, so tcp_proxy alone;
 * - an ext_proc case: kafka.yaml as is, its gRPC cluster pointed at that case's processor.
 * Every case gets its own listener, broker cluster and processor cluster (names suffixed with the case), so one
 * Envoy process serves them all; the bench drives one case at a time.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { renderTemplate } from '../../scripts/lib/envoy.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { LOOPBACK } from '../../scripts/lib/ports.ts';

export const KAFKA_TEMPLATE = path.join(REPO_ROOT, 'envoy', 'kafka.yaml');
const EXT_PROC_FILTER = 'envoy.filters.network.ext_proc';
const TCP_PROXY_FILTER = 'envoy.filters.network.tcp_proxy';

export interface ProxiedCase {
  /** Lower-case letters, digits and '_': suffix of listener, cluster and stat names. */
  readonly name: string;
  /** Envoy listener on 127.0.0.1 (what the broker advertises for this case). */
  readonly listenerPort: number;
  /** The broker listener this case forwards to (127.0.0.1). */
  readonly brokerPort: number;
  /** Network ext_proc server on 127.0.0.1; absent: tcp_proxy alone. */
  readonly processorPort?: number;
}

interface Filter {
  name: string;
  typed_config: Record<string, any>;
}
interface Listener {
  name: string;
  filter_chains: Array<{ filters: Filter[] }>;
}
interface Cluster {
  name: string;
  load_assignment: { cluster_name: string };
}
interface Bootstrap {
  admin: unknown;
  static_resources: { listeners: Listener[]; clusters: Cluster[] };
}

function derive(template: string, adminPort: number, c: ProxiedCase): Bootstrap {
  if (!/^[a-z0-9_]+$/.test(c.name)) throw new Error(`kafka-envoy: case name ${JSON.stringify(c.name)}: expected [a-z0-9_]+`);
  const doc = YAML.parse(renderTemplate(template, {
    ENVOY_ADMIN_PORT: adminPort,
    KAFKA_LISTENER_PORT: c.listenerPort,
    TOLLGATE_HOST: LOOPBACK,
    // The tcp case drops the processor cluster; any port renders.
    TOLLGATE_PORT: c.processorPort ?? 1,
    BROKER_HOST: LOOPBACK,
    BROKER_PORT: c.brokerPort,
  })) as Bootstrap;
  const { listeners, clusters } = doc.static_resources;
  if (listeners.length !== 1 || listeners[0]!.filter_chains.length !== 1) {
    throw new Error(`kafka-envoy: expected ${KAFKA_TEMPLATE} to have one listener with one filter chain`);
  }
  const listener = listeners[0]!;
  const chain = listener.filter_chains[0]!;
  const extProc = chain.filters.find((f) => f.name === EXT_PROC_FILTER);
  const tcpProxy = chain.filters.find((f) => f.name === TCP_PROXY_FILTER);
  if (extProc === undefined || tcpProxy === undefined) {
    throw new Error(`kafka-envoy: expected ${KAFKA_TEMPLATE}'s listener to have the ${EXT_PROC_FILTER} and ${TCP_PROXY_FILTER} filters`);
  }
  const renamed = new Map<string, string>();
  const rename = (cluster: string): string => {
    const name = `${cluster}_${c.name}`;
    renamed.set(cluster, name);
    return name;
  };

  listener.name = `${listener.name}_${c.name}`;
  tcpProxy.typed_config['cluster'] = rename(tcpProxy.typed_config['cluster'] as string);
  tcpProxy.typed_config['stat_prefix'] = `${tcpProxy.typed_config['stat_prefix']}_${c.name}`;
  const processorCluster = extProc.typed_config['grpc_service']?.envoy_grpc?.cluster_name as string | undefined;
  if (processorCluster === undefined) throw new Error('kafka-envoy: expected the ext_proc filter to name an envoy_grpc cluster');
  if (c.processorPort === undefined) {
    chain.filters = chain.filters.filter((f) => f !== extProc);
  } else {
    extProc.typed_config['grpc_service'].envoy_grpc.cluster_name = rename(processorCluster);
    extProc.typed_config['stat_prefix'] = `${extProc.typed_config['stat_prefix']}_${c.name}`;
  }
  doc.static_resources.clusters = clusters
    .filter((cluster) => renamed.has(cluster.name))
    .map((cluster) => {
      const name = renamed.get(cluster.name)!;
      return { ...cluster, name, load_assignment: { ...cluster.load_assignment, cluster_name: name } };
    });
  return doc;
}

/** The bootstrap for `cases`, admin on 127.0.0.1:`adminPort`. */
export function renderKafkaBenchEnvoy(adminPort: number, cases: readonly ProxiedCase[]): string {
  const template = fs.readFileSync(KAFKA_TEMPLATE, 'utf8');
  const docs = cases.map((c) => derive(template, adminPort, c));
  return YAML.stringify({
    admin: docs[0]?.admin,
    static_resources: {
      listeners: docs.flatMap((d) => d.static_resources.listeners),
      clusters: docs.flatMap((d) => d.static_resources.clusters),
    },
  });
}
