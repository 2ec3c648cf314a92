/**
 * @module kafka/client/cluster
 * What tollgate's own client knows of a cluster: one connection per broker (opened on first use, opened again after
 * it failed), and a topic's partitions with their leaders, from Metadata, kept until a caller says they went stale
 * (a NOT_LEADER answer, a lost connection).
 */
import { API_KEY } from '../protocol/api-keys.ts';
import { KafkaError, kafkaErrorName } from '../protocol/error-codes.ts';
import { BrokerConnection, KafkaClientError, type KafkaClientOptions } from './connection.ts';

export interface TopicLayout {
  readonly name: string;
  /** Partition index → leader node id (-1 while it has none). */
  readonly leaders: readonly number[];
}

/** `host:port` → its parts; IPv6 hosts in brackets. */
export function parseHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const port = Number(address.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`expected "host:port", got ${JSON.stringify(address)}`);
  return { host: address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port };
}

export class KafkaCluster {
  readonly bootstrap: readonly string[];
  readonly #options: KafkaClientOptions;
  readonly #nodes = new Map<number, { host: string; port: number }>();
  readonly #connections = new Map<string, Promise<BrokerConnection>>();
  readonly #topics = new Map<string, TopicLayout>();
  #nextBootstrap = 0;
  #closed = false;

  constructor(bootstrap: readonly string[], options: KafkaClientOptions) {
    if (bootstrap.length === 0) throw new Error('expected at least one bootstrap broker');
    for (const address of bootstrap) parseHostPort(address);
    this.bootstrap = bootstrap;
    this.#options = options;
  }

  /** A connection to any broker: the bootstrap brokers in turn, then those Metadata named. */
  async anyConnection(): Promise<BrokerConnection> {
    const candidates = [...this.bootstrap, ...[...this.#nodes.values()].map((n) => `${n.host}:${n.port}`)];
    const errors: string[] = [];
    for (let i = 0; i < candidates.length; i++) {
      const address = candidates[(this.#nextBootstrap + i) % candidates.length]!;
      try {
        const connection = await this.#connect(address);
        this.#nextBootstrap = (this.#nextBootstrap + i) % candidates.length;
        return connection;
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    throw new KafkaClientError(`no broker reachable: ${errors.join('; ')}`);
  }

  /** The connection to node `nodeId` (as Metadata named it). */
  async node(nodeId: number): Promise<BrokerConnection> {
    const node = this.#nodes.get(nodeId);
    if (node === undefined) throw new KafkaClientError(`node ${nodeId} is not in the metadata tollgate has`);
    return this.#connect(`${node.host}:${node.port}`);
  }

  /** The partitions of `topic` and their leaders; fetched when not known or after `invalidate`. */
  async topic(name: string): Promise<TopicLayout> {
    const known = this.#topics.get(name);
    if (known !== undefined) return known;
    const connection = await this.anyConnection();
    const version = connection.version(API_KEY.Metadata, 1, 12);
    const response = await connection.request(API_KEY.Metadata, version, {
      topics: [{ name }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false,
    });
    this.#nodes.clear();
    for (const b of response.brokers) this.#nodes.set(b.nodeId, { host: b.host, port: b.port });
    const topic = response.topics.find((t) => t.name === name);
    if (topic === undefined) throw new KafkaClientError(`broker ${connection.address} said nothing of topic ${name}`);
    if (topic.errorCode !== KafkaError.NONE) {
      const message = `topic ${name}: ${kafkaErrorName(topic.errorCode)}`;
      if (topic.errorCode === KafkaError.UNKNOWN_TOPIC_OR_PARTITION) throw new KafkaClientError(`${message} (tollgate does not create it: create it first)`);
      if (topic.errorCode === KafkaError.TOPIC_AUTHORIZATION_FAILED) throw new Error(`${message}: tollgate's audit credentials may not use it`);
      throw new KafkaClientError(message);
    }
    const leaders: number[] = [];
    for (const p of topic.partitions) leaders[p.partitionIndex] = p.errorCode === KafkaError.NONE ? p.leaderId : -1;
    for (let i = 0; i < leaders.length; i++) leaders[i] ??= -1;
    const layout: TopicLayout = { name, leaders };
    this.#topics.set(name, layout);
    return layout;
  }

  /** Forget what Metadata said: leaders moved, a broker went away. */
  invalidate(): void {
    this.#topics.clear();
  }

  close(): void {
    this.#closed = true;
    for (const pending of this.#connections.values()) pending.then((c) => c.close(), () => {});
    this.#connections.clear();
  }

  async #connect(address: string): Promise<BrokerConnection> {
    if (this.#closed) throw new KafkaClientError('the Kafka client is closed');
    const existing = this.#connections.get(address);
    if (existing !== undefined) {
      try {
        const connection = await existing;
        if (!connection.closed) return connection;
      } catch { /* a failed attempt is retried below */ }
      if (this.#connections.get(address) === existing) this.#connections.delete(address);
    }
    const { host, port } = parseHostPort(address);
    const attempt = BrokerConnection.connect(host, port, this.#options);
    this.#connections.set(address, attempt);
    try {
      return await attempt;
    } catch (err) {
      if (this.#connections.get(address) === attempt) this.#connections.delete(address);
      throw err;
    }
  }
}
