/**
 * @module scripts/lib/rest-proxy-upstream
 * A small HTTP server shaped like a Confluent Kafka REST Proxy, for end-to-end tests of tollgate's REST Proxy
 * awareness (the real proxy is not available from our registries). It speaks the part of the API the tests use — v3
 * clusters, topic listing, records (streamed, one answer per record as each is written) and records:batch; v2 produce
 * and consumer instances (create, subscribe by names or pattern, read records, delete) in the json and binary embedded
 * formats — and it really writes to and reads from the stack's Kafka broker with kafkajs, on its own credential (the
 * harness's direct path), as a real proxy holds its own. It trusts whatever reaches it: tollgate and Envoy in front of
 * it are what the tests judge. Not for production; not part of tollgate.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import { LOOPBACK } from './ports.ts';

export interface RestProxyUpstream {
  readonly port: number;
  /** Requests that reached the proxy, newest last (tests check that denied ones never did). */
  readonly seen: ReadonlyArray<{ readonly method: string; readonly path: string }>;
  /** The Kafka cluster to serve; until it is attached every request is answered 503. */
  attach(kafka: Kafka): Promise<void>;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;
type Format = 'json' | 'binary';

interface Instance {
  readonly consumer: Consumer;
  readonly format: Format;
  readonly fromBeginning: boolean;
  readonly buffer: Json[];
  waiter: (() => void) | undefined;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const V2_TYPES: Record<Format, string> = { json: 'application/vnd.kafka.json.v2+json', binary: 'application/vnd.kafka.binary.v2+json' };

/** The bytes the real proxy writes for a v3 key or value (`{type, data}`). */
function v3Bytes(value: unknown): Buffer | null {
  if (value === undefined || value === null) return null;
  const { type, data } = value as { type?: string; data?: unknown };
  if (data === undefined || data === null) return null;
  switch ((type ?? 'JSON').toUpperCase()) {
    case 'BINARY': return Buffer.from(String(data), 'base64');
    case 'STRING': return Buffer.from(String(data), 'utf8');
    case 'JSON': return Buffer.from(JSON.stringify(data), 'utf8');
    default: throw new HttpError(400, `unsupported type ${String(type)}`);
  }
}

function v2Bytes(value: unknown, format: Format): Buffer | null {
  if (value === undefined || value === null) return null;
  return format === 'binary' ? Buffer.from(String(value), 'base64') : Buffer.from(JSON.stringify(value), 'utf8');
}

function v2Format(contentType: string | undefined): Format {
  const m = /^application\/vnd\.kafka\.(json|binary)\.v2\+json/.exec(contentType ?? '');
  if (m === null) throw new HttpError(415, `HTTP 415 Unsupported Media Type: ${contentType ?? 'none'}`);
  return m[1] as Format;
}

/**
 * Whole JSON objects at the start of `text` (whitespace between them), and what is left. Found by parsing candidate
 * prefixes rather than by scanning braces, so it shares nothing with the splitter tollgate uses.
 */
function takeObjects(text: string): { objects: unknown[]; rest: string } {
  const objects: unknown[] = [];
  let rest = text.trimStart();
  for (;;) {
    if (rest === '') return { objects, rest };
    let found = false;
    for (let end = rest.indexOf('}'); end !== -1; end = rest.indexOf('}', end + 1)) {
      try {
        objects.push(JSON.parse(rest.slice(0, end + 1)));
      } catch {
        continue;
      }
      rest = rest.slice(end + 1).trimStart();
      found = true;
      break;
    }
    if (!found) return { objects, rest };
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

async function readJson(req: http.IncomingMessage): Promise<Json> {
  const text = await readBody(req);
  try {
    return (text.trim() === '' ? {} : JSON.parse(text)) as Json;
  } catch (err) {
    throw new HttpError(400, `malformed JSON: ${(err as Error).message}`);
  }
}

export async function startRestProxyUpstream(): Promise<RestProxyUpstream> {
  const seen: Array<{ method: string; path: string }> = [];
  let kafka: { producer: Producer; admin: Admin; client: Kafka; clusterId: string } | undefined;
  const instances = new Map<string, Instance>();

  const send = (res: http.ServerResponse, status: number, body: unknown, type = 'application/json') => {
    res.writeHead(status, { 'content-type': type }).end(JSON.stringify(body));
  };

  async function produce(topic: string, messages: Array<{ key: Buffer | null; value: Buffer | null; partition?: number; headers?: Record<string, Buffer> }>) {
    const { producer } = kafka!;
    const results = await producer.send({ topic, messages, acks: -1 });
    // One batch per partition: the base offset plus the record's place among those of its partition. Records with no
    // partition go where kafkajs put them; with the stack's one-partition topics that is exact.
    const next = new Map(results.map((r) => [r.partition, Number(r.baseOffset)]));
    return messages.map((m) => {
      const partition = m.partition ?? results[0]!.partition;
      const offset = next.get(partition)!;
      next.set(partition, offset + 1);
      return { partition, offset };
    });
  }

  function v3Message(record: Json) {
    const headers: Record<string, Buffer> = {};
    for (const h of (record['headers'] ?? []) as Array<{ name: string; value?: string | null }>) headers[h.name] = Buffer.from(h.value ?? '', 'base64');
    return {
      key: v3Bytes(record['key']), value: v3Bytes(record['value']), headers,
      ...(typeof record['partition_id'] === 'number' && { partition: record['partition_id'] }),
    };
  }

  /** v3 `records`: every object of the (possibly streamed) body is written as it arrives and answered in order. */
  function produceStream(req: http.IncomingMessage, res: http.ServerResponse, cluster: string, topic: string) {
    res.writeHead(200, { 'content-type': 'application/json' });
    let pending = '';
    let chain = Promise.resolve();
    const answer = (body: unknown) => { if (!res.destroyed) res.write(`${JSON.stringify(body)}\n`); };
    req.on('data', (chunk: Buffer) => {
      const { objects, rest } = takeObjects(pending + chunk.toString('utf8'));
      pending = rest;
      for (const record of objects) {
        chain = chain.then(async () => {
          try {
            const [at] = await produce(topic, [v3Message(record as Json)]);
            answer({ error_code: 200, cluster_id: cluster, topic_name: topic, partition_id: at!.partition, offset: at!.offset, timestamp: new Date().toISOString() });
          } catch (err) {
            answer({ error_code: err instanceof HttpError ? err.status : 500, message: (err as Error).message });
          }
        });
      }
    });
    req.on('end', () => {
      void chain.then(() => {
        if (pending.trim() !== '') answer({ error_code: 400, message: 'the stream ends inside a record' });
        res.end();
      });
    });
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse, method: string, segments: string[], query: URLSearchParams) {
    const [a, b, c, d, e, f] = segments;
    const n = segments.length;
    if (a === 'v3') {
      const { clusterId, admin } = kafka!;
      if (method === 'GET' && n === 2 && b === 'clusters') {
        send(res, 200, { kind: 'KafkaClusterList', metadata: {}, data: [{ kind: 'KafkaCluster', cluster_id: clusterId }] });
        return;
      }
      if (b !== 'clusters' || c !== clusterId) throw new HttpError(404, `Cluster ${c ?? ''} cannot be found.`);
      if (method === 'GET' && n === 4 && d === 'topics') {
        const names = (await admin.listTopics()).filter((t) => !t.startsWith('__')).sort();
        const { topics } = await admin.fetchTopicMetadata({ topics: names });
        send(res, 200, {
          kind: 'KafkaTopicList', metadata: { self: `/v3/clusters/${clusterId}/topics`, next: null },
          data: topics.sort((x, y) => x.name.localeCompare(y.name)).map((t) => ({ kind: 'KafkaTopic', cluster_id: clusterId, topic_name: t.name, is_internal: false, partitions_count: t.partitions.length })),
        });
        return;
      }
      if (method === 'POST' && n === 6 && d === 'topics' && f === 'records') {
        produceStream(req, res, clusterId, e!);
        return;
      }
      if (method === 'POST' && n === 6 && d === 'topics' && f === 'records:batch') {
        const entries = ((await readJson(req))['entries'] ?? []) as Json[];
        const offsets = await produce(e!, entries.map(v3Message));
        send(res, 200, {
          successes: entries.map((entry, i) => ({ id: entry['id'], cluster_id: clusterId, topic_name: e, partition_id: offsets[i]!.partition, offset: offsets[i]!.offset })),
          failures: [],
        });
        return;
      }
      throw new HttpError(404, 'HTTP 404 Not Found');
    }
    if (a === 'topics' && method === 'POST' && n === 2) {
      const format = v2Format(req.headers['content-type']);
      const records = ((await readJson(req))['records'] ?? []) as Json[];
      const offsets = await produce(b!, records.map((r) => ({
        key: v2Bytes(r['key'], format), value: v2Bytes(r['value'], format), ...(typeof r['partition'] === 'number' && { partition: r['partition'] }),
      })));
      send(res, 200, { offsets: offsets.map((o) => ({ ...o, error_code: null, error: null })), key_schema_id: null, value_schema_id: null }, 'application/vnd.kafka.v2+json');
      return;
    }
    if (a === 'consumers' && n === 2 && method === 'POST') {
      const config = await readJson(req);
      const id = typeof config['name'] === 'string' ? config['name'] : randomUUID();
      const format = (config['format'] ?? 'binary') as Format;
      if (format !== 'json' && format !== 'binary') throw new HttpError(422, `unsupported format ${String(format)}`);
      instances.set(`${b}/${id}`, {
        consumer: kafka!.client.consumer({ groupId: b!, sessionTimeout: 10_000, heartbeatInterval: 1_000 }),
        format, fromBeginning: config['auto.offset.reset'] === 'earliest', buffer: [], waiter: undefined,
      });
      send(res, 200, { instance_id: id, base_uri: `http://${req.headers.host}/consumers/${b}/instances/${id}` }, 'application/vnd.kafka.v2+json');
      return;
    }
    if (a === 'consumers' && c === 'instances' && n >= 4) {
      const key = `${b}/${d}`;
      const instance = instances.get(key);
      if (instance === undefined) throw new HttpError(404, 'Consumer instance not found.');
      if (n === 4 && method === 'DELETE') {
        instances.delete(key);
        await instance.consumer.disconnect();
        res.writeHead(204).end();
        return;
      }
      if (n === 5 && e === 'subscription' && method === 'POST') {
        const body = await readJson(req);
        const topics = typeof body['topic_pattern'] === 'string' ? [new RegExp(body['topic_pattern'])] : (body['topics'] ?? []) as string[];
        await instance.consumer.connect();
        await instance.consumer.subscribe({ topics, fromBeginning: instance.fromBeginning });
        await instance.consumer.run({
          eachMessage: async ({ topic, partition, message }) => {
            const decode = (bytes: Buffer | null) => (bytes === null ? null : instance.format === 'binary' ? bytes.toString('base64') : JSON.parse(bytes.toString('utf8')));
            instance.buffer.push({ topic, key: decode(message.key), value: decode(message.value), partition, offset: Number(message.offset) });
            instance.waiter?.();
          },
        });
        res.writeHead(204).end();
        return;
      }
      if (n === 5 && e === 'records' && method === 'GET') {
        const timeout = Math.min(Number(query.get('timeout') ?? '1000') || 0, 30_000);
        if (instance.buffer.length === 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, timeout);
            instance.waiter = () => { clearTimeout(timer); resolve(); };
          });
          instance.waiter = undefined;
        }
        send(res, 200, instance.buffer.splice(0), V2_TYPES[instance.format]);
        return;
      }
    }
    throw new HttpError(404, 'HTTP 404 Not Found');
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const method = req.method ?? 'GET';
    seen.push({ method, path: url.pathname });
    if (seen.length > 1000) seen.shift();
    if (kafka === undefined) {
      send(res, 503, { error_code: 503, message: 'no Kafka cluster attached yet' });
      return;
    }
    const segments = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
    route(req, res, method, segments, url.searchParams).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (!res.headersSent) send(res, status, { error_code: status, message: (err as Error).message });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve());
  });

  return {
    port: (server.address() as AddressInfo).port,
    seen,
    async attach(client) {
      const producer = client.producer({ allowAutoTopicCreation: false });
      const admin = client.admin();
      await Promise.all([producer.connect(), admin.connect()]);
      const { clusterId } = await admin.describeCluster();
      kafka = { producer, admin, client, clusterId };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const instance of instances.values()) await instance.consumer.disconnect().catch(() => {});
      instances.clear();
      if (kafka !== undefined) await Promise.all([kafka.producer.disconnect(), kafka.admin.disconnect()]).catch(() => {});
    },
  };
}
