/**
 * @module http/rest-proxy
 * Requests to a Confluent Kafka REST Proxy, as the Kafka requests they amount to: a client producing, reading or
 * administering through the REST API is asked the same questions (`KafkaAction`s, same API names and operations) as a
 * wire client doing the same, so one rule file governs both. Pure: method, path and (where the request names its
 * resources in its body) the body in, actions out.
 *
 * Paths are those of the REST Proxy API v3 (under `/v3`, or `/kafka/v3` on Confluent Server and Confluent Cloud)
 * and of the v2 API (at the root: `/topics`, `/consumers`, `/brokers`). A path or method the table does not know is
 * `unknown`, for the caller to deny: the proxy can do more than this table knows (Confluent Server's cluster links,
 * balancer, broker removal), and none of it may pass unjudged.
 *
 * How requests map (each question as the wire asks it, src/kafka/authorize):
 * - produce (v3 `records`, `records:batch`; v2 `POST /topics/{t}[/partitions/{p}]`): Produce, produce on the topic;
 * - reading topics, partitions, replicas: Metadata, describe on the topic; partition offsets: ListOffsets, consume;
 * - topic create/delete/partition count: CreateTopics/DeleteTopics/CreatePartitions, admin on the topic (the created
 *   topic is named in the body: `bodyActions`); topic configs: DescribeConfigs describe, IncrementalAlterConfigs admin;
 * - broker and cluster configs: the same APIs on the cluster (no resource), as broker config resources are on the wire;
 * - clusters, brokers: DescribeCluster, describe; ACLs: DescribeAcls describe, CreateAcls/DeleteAcls admin;
 * - reassignments: ListPartitionReassignments, admin on the topic (on the cluster for all topics);
 * - consumer groups: DescribeGroups, describe on the group; lags: also OffsetFetch, consume on the group (and on the
 *   topic of one partition's lag), as committed offsets are what OffsetFetch reveals;
 * - listings (topics, groups, all topics' configs, a broker's replicas, a group's lags) ask nothing up front: as for
 *   an all-topics Metadata on the wire, each entry of the response is judged and those denied are left out
 *   (`filterListing`);
 * - v2 consumer instances belong to a group: every instance request is consume on the group (JoinGroup to create,
 *   LeaveGroup to delete or unsubscribe, SyncGroup for the subscription and assignments, Fetch to read and seek,
 *   OffsetCommit/OffsetFetch for offsets); the topics a body names are consume on each topic. Records read are judged
 *   per topic in the response (a pattern subscription names no topic up front): see `maskConsumedRecords`.
 */
import type { KafkaAction, KafkaOperation } from '../core/action.ts';
import { arrayElements, objectMembers, skipValue, skipWhitespace, type Span } from './json-spans.ts';

export class RestProxyBodyError extends Error {
  override name = 'RestProxyBodyError';
}

/**
 * Where a body names topics: a string member of the body (`{"topic_name": …}`), or a list member holding names
 * (`{"topics": [names]}`) or objects naming one each (`{"offsets": [{"topic": …}]}`).
 */
export type TopicsAt = { readonly member: string } | { readonly list: string; readonly member?: string };

/** Topics a request body names, and what each is judged as. */
export interface BodyTopics {
  readonly api: string;
  readonly operation: KafkaOperation;
  readonly at: readonly TopicsAt[];
  /** The body must name at least one topic (an empty or topic-less body is an error). */
  readonly required: boolean;
}

/** A list response whose entries are each judged: those not allowed are left out. */
export interface Listing {
  readonly api: string;
  readonly operation: KafkaOperation;
  readonly resource: 'topic' | 'group';
  /**
   * v3: the entries are the objects of the document's `data` array, named by this field. Absent (v2 `GET /topics`):
   * the document is an array of names.
   */
  readonly field?: string;
}

export interface RestProxyKafkaRequest {
  readonly kind: 'kafka';
  readonly version: 'v2' | 'v3';
  /**
   * Confluent's operation id where its API reference gives one, else a name in the same style (`v2.` for the v2 API):
   * for audit records and metrics.
   */
  readonly operation: string;
  /** The `{cluster_id}` of a v3 path. */
  readonly cluster?: string;
  /**
   * Asked before the request goes on; every one must be allowed. Empty only for a listing, whose entries are judged
   * in the response, and for requests whose resources are all in the body.
   */
  readonly actions: readonly KafkaAction[];
  /** The body names further resources: judge `bodyActions(request, body)` too. */
  readonly bodyTopics?: BodyTopics;
  /** The body carries records to produce: inspect them (src/http/rest-proxy-records.ts). */
  readonly produce?: 'v3-stream' | 'v3-batch' | 'v2';
  /** The response carries consumed records (v2): mask them and judge their topics. */
  readonly consume?: true;
  readonly listing?: Listing;
}

export interface RestProxyUnknown {
  readonly kind: 'unknown';
  readonly reason: string;
}

export type RestProxyRequest = RestProxyKafkaRequest | RestProxyUnknown;

type Params = Readonly<Record<string, string>>;
type Shape = Omit<RestProxyKafkaRequest, 'kind' | 'version' | 'operation' | 'cluster'>;

interface Route {
  readonly method: string;
  readonly segments: readonly string[];
  readonly operation: string;
  readonly shape: (p: Params) => Shape;
}

const kafka = (api: string, operation: KafkaOperation, resource: { topic?: string; group?: string } = {}): KafkaAction =>
  ({ kind: 'kafka', api, operation, ...resource });

const asks = (...actions: KafkaAction[]): Shape => ({ actions });
const listing = (api: string, operation: KafkaOperation, resource: 'topic' | 'group', field?: string): Shape =>
  ({ actions: [], listing: field === undefined ? { api, operation, resource } : { api, operation, resource, field } });
const body = (api: string, operation: KafkaOperation, at: readonly TopicsAt[], required = false): BodyTopics => ({ api, operation, at, required });

const ROUTES: Route[] = [];
function route(spec: string, operation: string, shape: (p: Params) => Shape): void {
  const [method, path] = spec.split(' ') as [string, string];
  ROUTES.push({ method, segments: path.split('/').filter((s) => s !== ''), operation, shape });
}

// v3. Literal `-` segments (all topics, all brokers) come before the `:name` they would otherwise match.
const C = 'v3/clusters/:cluster';
route('GET v3/clusters', 'listKafkaClusters', () => asks(kafka('DescribeCluster', 'describe')));
route(`GET ${C}`, 'getKafkaCluster', () => asks(kafka('DescribeCluster', 'describe')));
route(`GET ${C}/acls`, 'getKafkaAcls', () => asks(kafka('DescribeAcls', 'describe')));
route(`POST ${C}/acls`, 'createKafkaAcls', () => asks(kafka('CreateAcls', 'admin')));
route(`POST ${C}/acls:batch`, 'batchCreateKafkaAcls', () => asks(kafka('CreateAcls', 'admin')));
route(`DELETE ${C}/acls`, 'deleteKafkaAcls', () => asks(kafka('DeleteAcls', 'admin')));
for (const configs of [`${C}/broker-configs`, `${C}/brokers/-/configs`, `${C}/brokers/:broker/configs`]) {
  const all = configs.endsWith('broker-configs') ? 'listKafkaClusterConfigs' : configs.includes('/-/') ? 'listKafkaAllBrokerConfigs' : 'listKafkaBrokerConfigs';
  route(`GET ${configs}`, all, () => asks(kafka('DescribeConfigs', 'describe')));
  if (configs.includes('/-/')) continue;
  const one = configs.endsWith('broker-configs') ? 'KafkaClusterConfig' : 'KafkaBrokerConfig';
  route(`GET ${configs}/:name`, `get${one}`, () => asks(kafka('DescribeConfigs', 'describe')));
  route(`PUT ${configs}/:name`, `update${one}`, () => asks(kafka('IncrementalAlterConfigs', 'admin')));
  route(`DELETE ${configs}/:name`, `delete${one}`, () => asks(kafka('IncrementalAlterConfigs', 'admin')));
  route(`POST ${configs}:alter`, `update${one}s`, () => asks(kafka('IncrementalAlterConfigs', 'admin')));
}
route(`GET ${C}/brokers`, 'listKafkaBrokers', () => asks(kafka('DescribeCluster', 'describe')));
route(`GET ${C}/brokers/:broker`, 'getKafkaBroker', () => asks(kafka('DescribeCluster', 'describe')));
route(`GET ${C}/brokers/:broker/partition-replicas`, 'searchKafkaReplicasByBroker', () => listing('Metadata', 'describe', 'topic', 'topic_name'));

const G = `${C}/consumer-groups/:group`;
const describeGroup = (p: Params) => kafka('DescribeGroups', 'describe', { group: p['group']! });
const groupOffsets = (p: Params) => kafka('OffsetFetch', 'consume', { group: p['group']! });
route(`GET ${C}/consumer-groups`, 'listKafkaConsumerGroups', () => listing('ListGroups', 'describe', 'group', 'consumer_group_id'));
route(`GET ${G}`, 'getKafkaConsumerGroup', (p) => asks(describeGroup(p)));
route(`GET ${G}/consumers`, 'listKafkaConsumers', (p) => asks(describeGroup(p)));
route(`GET ${G}/consumers/:consumer`, 'getKafkaConsumer', (p) => asks(describeGroup(p)));
route(`GET ${G}/consumers/:consumer/assignments`, 'listKafkaConsumerAssignment', (p) => asks(describeGroup(p)));
route(`GET ${G}/consumers/:consumer/assignments/:topic/partitions/:partition`, 'getKafkaConsumerAssignment', (p) => asks(describeGroup(p)));
route(`GET ${G}/lag-summary`, 'getKafkaConsumerGroupLagSummary', (p) => asks(describeGroup(p), groupOffsets(p)));
route(`GET ${G}/lags`, 'listKafkaConsumerLags', (p) => ({ ...asks(describeGroup(p), groupOffsets(p)), listing: { api: 'OffsetFetch', operation: 'consume', resource: 'topic', field: 'topic_name' } }));
route(`GET ${G}/lags/:topic/partitions/:partition`, 'getKafkaConsumerLag', (p) =>
  asks(describeGroup(p), groupOffsets(p), kafka('OffsetFetch', 'consume', { topic: p['topic']! })));

const T = `${C}/topics/:topic`;
const topic = (api: string, operation: KafkaOperation) => (p: Params) => asks(kafka(api, operation, { topic: p['topic']! }));
route(`GET ${C}/topics`, 'listKafkaTopics', () => listing('Metadata', 'describe', 'topic', 'topic_name'));
route(`POST ${C}/topics`, 'createKafkaTopic', () => ({ actions: [], bodyTopics: body('CreateTopics', 'admin', [{ member: 'topic_name' }], true) }));
route(`GET ${C}/topics/-/configs`, 'listKafkaAllTopicConfigs', () => listing('DescribeConfigs', 'describe', 'topic', 'topic_name'));
route(`POST ${C}/topics/-/configs:alter`, 'updateKafkaTopicConfigsBatch', () =>
  ({ actions: [], bodyTopics: body('IncrementalAlterConfigs', 'admin', [{ list: 'data', member: 'topic_name' }], true) }));
route(`GET ${C}/topics/-/partitions/-/reassignment`, 'listKafkaAllReassignments', () => asks(kafka('ListPartitionReassignments', 'admin')));
route(`GET ${T}`, 'getKafkaTopic', topic('Metadata', 'describe'));
route(`PATCH ${T}`, 'updatePartitionCountKafkaTopic', topic('CreatePartitions', 'admin'));
route(`DELETE ${T}`, 'deleteKafkaTopic', topic('DeleteTopics', 'admin'));
route(`GET ${T}/configs`, 'listKafkaTopicConfigs', topic('DescribeConfigs', 'describe'));
route(`POST ${T}/configs:alter`, 'updateKafkaTopicConfigBatch', topic('IncrementalAlterConfigs', 'admin'));
route(`GET ${T}/configs/:name`, 'getKafkaTopicConfig', topic('DescribeConfigs', 'describe'));
route(`PUT ${T}/configs/:name`, 'updateKafkaTopicConfig', topic('IncrementalAlterConfigs', 'admin'));
route(`DELETE ${T}/configs/:name`, 'deleteKafkaTopicConfig', topic('IncrementalAlterConfigs', 'admin'));
route(`GET ${T}/partitions`, 'listKafkaPartitions', topic('Metadata', 'describe'));
route(`GET ${T}/partitions/-/reassignment`, 'searchKafkaReassignmentsByTopic', topic('ListPartitionReassignments', 'admin'));
route(`GET ${T}/partitions/:partition`, 'getKafkaPartition', topic('Metadata', 'describe'));
route(`GET ${T}/partitions/:partition/offset`, 'listKafkaPartitionOffsets', topic('ListOffsets', 'consume'));
route(`GET ${T}/partitions/:partition/reassignment`, 'getKafkaReassignment', topic('ListPartitionReassignments', 'admin'));
route(`GET ${T}/partitions/:partition/replicas`, 'listKafkaReplicas', topic('Metadata', 'describe'));
route(`GET ${T}/partitions/:partition/replicas/:broker`, 'getKafkaReplica', topic('Metadata', 'describe'));
route(`POST ${T}/records`, 'produceRecord', (p) => ({ ...topic('Produce', 'produce')(p), produce: 'v3-stream' }));
route(`POST ${T}/records:batch`, 'produceRecordsBatch', (p) => ({ ...topic('Produce', 'produce')(p), produce: 'v3-batch' }));

// v2
route('GET brokers', 'v2.listBrokers', () => asks(kafka('DescribeCluster', 'describe')));
route('GET topics', 'v2.listTopics', () => listing('Metadata', 'describe', 'topic'));
route('GET topics/:topic', 'v2.getTopic', topic('Metadata', 'describe'));
route('POST topics/:topic', 'v2.produceToTopic', (p) => ({ ...topic('Produce', 'produce')(p), produce: 'v2' }));
route('GET topics/:topic/partitions', 'v2.listPartitions', topic('Metadata', 'describe'));
route('GET topics/:topic/partitions/:partition', 'v2.getPartition', topic('Metadata', 'describe'));
route('POST topics/:topic/partitions/:partition', 'v2.produceToPartition', (p) => ({ ...topic('Produce', 'produce')(p), produce: 'v2' }));
route('GET topics/:topic/partitions/:partition/offsets', 'v2.getPartitionOffsets', topic('ListOffsets', 'consume'));

const I = 'consumers/:group/instances/:instance';
const member = (api: string) => (p: Params) => kafka(api, 'consume', { group: p['group']! });
route('POST consumers/:group', 'v2.createConsumer', (p) => asks(member('JoinGroup')(p)));
route(`DELETE ${I}`, 'v2.deleteConsumer', (p) => asks(member('LeaveGroup')(p)));
route(`POST ${I}/subscription`, 'v2.subscribe', (p) => ({ ...asks(member('JoinGroup')(p)), bodyTopics: body('Fetch', 'consume', [{ list: 'topics' }]) }));
route(`GET ${I}/subscription`, 'v2.getSubscription', (p) => asks(member('SyncGroup')(p)));
route(`DELETE ${I}/subscription`, 'v2.unsubscribe', (p) => asks(member('LeaveGroup')(p)));
route(`POST ${I}/assignments`, 'v2.assign', (p) => ({ ...asks(member('SyncGroup')(p)), bodyTopics: body('Fetch', 'consume', [{ list: 'partitions', member: 'topic' }]) }));
route(`GET ${I}/assignments`, 'v2.getAssignments', (p) => asks(member('SyncGroup')(p)));
route(`GET ${I}/records`, 'v2.readRecords', (p) => ({ ...asks(member('Fetch')(p)), consume: true }));
route(`POST ${I}/offsets`, 'v2.commitOffsets', (p) => ({ ...asks(member('OffsetCommit')(p)), bodyTopics: body('OffsetCommit', 'consume', [{ list: 'offsets', member: 'topic' }]) }));
route(`GET ${I}/offsets`, 'v2.getCommittedOffsets', (p) => ({ ...asks(member('OffsetFetch')(p)), bodyTopics: body('OffsetFetch', 'consume', [{ list: 'partitions', member: 'topic' }]) }));
route(`POST ${I}/positions`, 'v2.seek', (p) => ({ ...asks(member('Fetch')(p)), bodyTopics: body('ListOffsets', 'consume', [{ list: 'offsets', member: 'topic' }, { list: 'timestamps', member: 'topic' }]) }));
route(`POST ${I}/positions/beginning`, 'v2.seekToBeginning', (p) => ({ ...asks(member('Fetch')(p)), bodyTopics: body('ListOffsets', 'consume', [{ list: 'partitions', member: 'topic' }]) }));
route(`POST ${I}/positions/end`, 'v2.seekToEnd', (p) => ({ ...asks(member('Fetch')(p)), bodyTopics: body('ListOffsets', 'consume', [{ list: 'partitions', member: 'topic' }]) }));

function match(route: Route, segments: readonly string[]): Params | undefined {
  if (route.segments.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const want = route.segments[i]!;
    const got = segments[i]!;
    if (want.startsWith(':')) params[want.slice(1)] = got;
    else if (want !== got) return undefined;
  }
  return params;
}

/** First path segments of the REST Proxy's APIs (v3 under `/v3` or `/kafka/v3`, v2 at the root). */
const API_ROOTS = new Set(['v3', 'topics', 'consumers', 'brokers']);

/**
 * The Kafka request a REST Proxy request amounts to. `pathWithQuery` as Envoy reports `:path`; the query does not
 * change what is asked. HEAD is judged as GET (the proxy answers it as GET without a body).
 *
 * Undefined for a path outside both APIs (`/`, `/metrics`, anything not under `/v3`, `/kafka/v3`, `/topics`,
 * `/consumers`, `/brokers`): not a Kafka request at all, for the caller to judge as plain HTTP or deny. Inside them,
 * a path or method this table does not know is `unknown`: deny it. So is any path with a dot segment, an encoded
 * slash or a `;` parameter in a segment, wherever it is: a server resolving those could land inside the APIs.
 */
export function restProxyActions(method: string, pathWithQuery: string): RestProxyRequest | undefined {
  const path = pathWithQuery.split('?', 1)[0]!;
  let segments: string[];
  try {
    segments = path.split('/').filter((s) => s !== '').map(decodeURIComponent);
  } catch {
    return { kind: 'unknown', reason: `malformed percent-encoding in ${JSON.stringify(path)}` };
  }
  // Segments the proxy's server would resolve or strip (dot segments, encoded slashes, `;` path parameters) could make
  // it act on another resource than the one judged here: none of them is a name in either API.
  const odd = segments.find((s) => s === '.' || s === '..' || s.includes('/') || s.includes(';'));
  if (odd !== undefined) return { kind: 'unknown', reason: `${JSON.stringify(odd)} is not a path segment tollgate judges (in ${JSON.stringify(path)})` };
  if (segments[0] === 'kafka' && segments[1] === 'v3') segments = segments.slice(1);
  if (!API_ROOTS.has(segments[0] ?? '')) return undefined;
  const m = method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase();
  let known = false;
  for (const r of ROUTES) {
    const params = match(r, segments);
    if (params === undefined) continue;
    known = true;
    if (r.method !== m) continue;
    const cluster = params['cluster'];
    return {
      kind: 'kafka',
      version: segments[0] === 'v3' ? 'v3' : 'v2',
      operation: r.operation,
      ...(cluster !== undefined ? { cluster } : {}),
      ...r.shape(params),
    };
  }
  return { kind: 'unknown', reason: known ? `${m} is not a Kafka REST Proxy operation on ${path}` : `${path} is not a Kafka REST Proxy path tollgate knows` };
}

const describe = (at: TopicsAt) => ('list' in at ? `${at.list}[]${at.member === undefined ? '' : `.${at.member}`}` : at.member);

/**
 * The actions for the topics a request body names (`request.bodyTopics`), each topic once. A single value where the
 * proxy expects a list counts as a list of one (a lenient reader may take it so: it is judged either way). Throws
 * RestProxyBodyError for a body that is not a JSON object, a name that is not a string, or no topic where one is
 * required: fail closed, the proxy would refuse such a body too.
 */
export function bodyActions(request: RestProxyKafkaRequest, bodyText: string): KafkaAction[] {
  const spec = request.bodyTopics;
  if (spec === undefined) return [];
  const fail = (what: string) => new RestProxyBodyError(`${request.operation}: ${what}`);
  let doc: unknown = undefined;
  if (bodyText.trim() !== '') {
    try {
      doc = JSON.parse(bodyText);
    } catch (err) {
      throw fail(`expected a JSON body: ${(err as Error).message}`);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw fail('expected a JSON object body');
  }
  const topics = new Set<string>();
  const name = (value: unknown, where: string) => {
    if (typeof value !== 'string') throw fail(`expected a topic name at ${where}, got ${JSON.stringify(value) ?? 'nothing'}`);
    topics.add(value);
  };
  const body = (doc ?? {}) as Record<string, unknown>;
  for (const at of spec.at) {
    if (!('list' in at)) {
      if (body[at.member] !== undefined && body[at.member] !== null) name(body[at.member], at.member);
      continue;
    }
    const list = body[at.list];
    if (list === undefined || list === null) continue;
    for (const [i, entry] of (Array.isArray(list) ? list : [list]).entries()) {
      const where = `${at.list}[${i}]`;
      if (at.member === undefined) name(entry, where);
      else name(entry !== null && typeof entry === 'object' ? (entry as Record<string, unknown>)[at.member] : undefined, `${where}.${at.member}`);
    }
  }
  if (spec.required && topics.size === 0) throw fail(`the body names no topic (${spec.at.map(describe).join(', ')})`);
  return [...topics].map((t) => kafka(spec.api, spec.operation, { topic: t }));
}

/** The action a listing entry named `name` is judged as. */
export function listingAction(listing: Listing, name: string): KafkaAction {
  return kafka(listing.api, listing.operation, listing.resource === 'topic' ? { topic: name } : { group: name });
}

/**
 * A listing response with the entries `allowed` refuses left out (entries without a name too). Returns `text` itself
 * when nothing is left out; otherwise only the removed entries' bytes change. Throws RestProxyBodyError for a body
 * that is not the listing's shape.
 */
export function filterListing(text: string, listing: Listing, allowed: (action: KafkaAction) => boolean): string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new RestProxyBodyError(`expected a JSON listing: ${(err as Error).message}`);
  }
  let array: Span;
  let entries: unknown[];
  if (listing.field === undefined) {
    if (!Array.isArray(doc)) throw new RestProxyBodyError('expected a JSON array of names');
    entries = doc;
    const start = skipWhitespace(text, 0);
    array = { start, end: skipValue(text, start) };
  } else {
    const data = (doc as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) throw new RestProxyBodyError('expected a JSON object with a data array');
    entries = data;
    array = objectMembers(text, skipWhitespace(text, 0)).get('data')!;
  }
  const keep = entries.map((entry) => {
    const name = listing.field === undefined ? entry : (entry as Record<string, unknown> | null)?.[listing.field];
    return typeof name === 'string' && allowed(listingAction(listing, name));
  });
  if (keep.every(Boolean)) return text;
  return text.slice(0, array.start) + withoutElements(text, array, keep) + text.slice(array.end);
}

/**
 * The text of `array` with only the elements `keep` marks. A kept element keeps the separator before it (a comma and
 * whatever whitespace the original had); the first kept one, none.
 */
export function withoutElements(text: string, array: Span, keep: readonly boolean[]): string {
  const spans = arrayElements(text, array.start);
  const first = spans[0];
  const last = spans[spans.length - 1];
  if (first === undefined || last === undefined) return text.slice(array.start, array.end);
  let out = text.slice(array.start, first.start);
  let any = false;
  spans.forEach((span, i) => {
    if (!keep[i]) return;
    if (any) out += text.slice(spans[i - 1]!.end, span.start);
    out += text.slice(span.start, span.end);
    any = true;
  });
  return out + text.slice(last.end, array.end);
}
