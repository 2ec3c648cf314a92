/**
 * @module kafka/authorize/plan
 * The vocabulary of per-request Kafka authorization: what `decide` is asked (`KafkaAction`), what the connection
 * is told to do (`RequestPlan`), and the shared machinery the per-API handlers use to build it: `Judge` asks and
 * records decisions for one request, `planEntries` splits a request whose entries (topics, groups, resources) are
 * judged one by one and merges the broker's answer with error entries for the denied part.
 *
 * Everything here is pure: frames in, frames out. Responses built here carry the request's correlation id, the
 * response header version of the request's API version, and defaults from the generated schemas for every field the
 * denial does not set.
 */
import type { KafkaAction, KafkaOperation } from '../../core/action.ts';
import type { Decision } from '../../core/decision.ts';
import { ZERO_UUID, defaultStruct, inRange } from '../protocol/codec/schema.ts';
import type { MessageSchema, StructSchema } from '../protocol/codec/schema.ts';
import { KafkaError } from '../protocol/error-codes.ts';
import { API_SPECS } from '../protocol/generated/index.ts';
import type { KnownApiKey, RequestBodies, ResponseBodies } from '../protocol/generated/index.ts';
import { decodeResponse, encodeRequest, encodeResponse } from '../protocol/messages.ts';
import type { DecodedRequest } from '../protocol/messages.ts';

/** One question asked of the policy for a request, and its answer (for audit records). */
export interface ResourceDecision {
  readonly action: KafkaAction;
  readonly decision: Decision;
}

/** The policy, bound to the connection's principal. */
export type Decide = (action: KafkaAction) => Decision;

/**
 * What the connection does with one client request.
 *
 * `decisions` lists every question asked of `decide`, in order, each resource once. Functions in a plan
 * (`filterResponse`, `completeResponse`) may ask `decide` about resources the broker's response names (topics of
 * an all-topics Metadata, groups of ListGroups); those decisions are appended to the same array when they run.
 * They throw `FrameError`/`EncodeError` on a broker response that does not decode: the caller closes the
 * connection then, as for any unparseable frame.
 */
export type RequestPlan =
  /**
   * Every resource allowed: forward the client's frame unchanged. `filterResponse`, when set, must be applied to
   * the broker's response frame before it goes to the client (it returns the same frame when it removes nothing).
   */
  | { readonly kind: 'forward'; readonly decisions: ResourceDecision[]; readonly filterResponse?: (responseFrame: Buffer) => Buffer }
  /**
   * Mixed: forward `request` (same header and correlation id, only the allowed part) and answer the client with
   * `completeResponse(brokerResponseFrame)`: the broker's results plus error entries for the denied part, in the
   * client's order.
   */
  | { readonly kind: 'split'; readonly decisions: ResourceDecision[]; readonly request: Buffer; readonly completeResponse: (responseFrame: Buffer) => Buffer }
  /** Everything denied: answer the client with this whole response frame, nothing goes to the broker. */
  | { readonly kind: 'answer'; readonly decisions: ResourceDecision[]; readonly response: Buffer }
  /** Denied, and no response of the right shape exists (or the request cannot be judged): close the connection. */
  | { readonly kind: 'refuse'; readonly decisions: ResourceDecision[]; readonly reason: string };

/** The resource an action names; none for cluster-level questions. */
export interface Resource {
  readonly topic?: string;
  readonly group?: string;
  readonly transactionalId?: string;
}

/** A denial: the decision and the Kafka error code that reports it. Undefined stands for "allowed". */
export interface Denial {
  readonly decision: Decision;
  readonly code: number;
}
export type Verdict = Denial | undefined;

/** Kafka's error code for a denial on this kind of resource. */
export function denialCode(resource: Resource): number {
  if (resource.transactionalId !== undefined) return KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
  if (resource.group !== undefined) return KafkaError.GROUP_AUTHORIZATION_FAILED;
  if (resource.topic !== undefined) return KafkaError.TOPIC_AUTHORIZATION_FAILED;
  return KafkaError.CLUSTER_AUTHORIZATION_FAILED;
}

/**
 * One request being judged: asks `decide` (each distinct action once, recorded in `decisions`) and builds plans
 * answering in the request's API version and correlation id.
 */
export class Judge {
  readonly frame: Buffer;
  readonly request: DecodedRequest;
  readonly api: string;
  readonly version: number;
  readonly decisions: ResourceDecision[] = [];
  readonly #decide: Decide;
  readonly #cache = new Map<string, Decision>();

  constructor(frame: Buffer, request: DecodedRequest, decide: Decide) {
    this.frame = frame;
    this.request = request;
    this.#decide = decide;
    this.api = API_SPECS.get(request.header.apiKey)?.name ?? `Unknown(${request.header.apiKey})`;
    this.version = request.header.apiVersion;
  }

  /** The policy's decision on `operation` over `resource` (asked once per request, then cached). */
  ask(operation: KafkaOperation, resource: Resource = {}): Decision {
    const key = JSON.stringify([operation, resource.topic ?? null, resource.group ?? null, resource.transactionalId ?? null]);
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached;
    const action: KafkaAction = { kind: 'kafka', api: this.api, operation, ...resource };
    const decision = this.#decide(action);
    this.#cache.set(key, decision);
    this.decisions.push({ action, decision });
    return decision;
  }

  /**
   * Records a denial tollgate imposes without asking the policy (a request kind it does not support for anyone),
   * so that audit records name it like any other decision.
   */
  impose(operation: KafkaOperation, resource: Resource, reason: string): Denial {
    const action: KafkaAction = { kind: 'kafka', api: this.api, operation, ...resource };
    const decision: Decision = { effect: 'deny', rule: null, reason };
    this.decisions.push({ action, decision });
    return { decision, code: denialCode(resource) };
  }

  /** Undefined when allowed, else the denial with the error code for the resource's kind (POLICY_VIOLATION while awaiting approval). */
  check(operation: KafkaOperation, resource: Resource = {}): Verdict {
    const decision = this.ask(operation, resource);
    if (decision.effect === 'allow') return undefined;
    // Awaiting approval is no authorization failure: POLICY_VIOLATION, with the approval's id in the error message
    // where the response has one (the decision's reason), so clients do not read it as missing ACLs.
    return { decision, code: decision.approval !== undefined ? KafkaError.POLICY_VIOLATION : denialCode(resource) };
  }

  forward(filterResponse?: (responseFrame: Buffer) => Buffer): RequestPlan {
    return filterResponse === undefined
      ? { kind: 'forward', decisions: this.decisions }
      : { kind: 'forward', decisions: this.decisions, filterResponse };
  }

  /** Answers locally with `body`, a response of the request's API and version. */
  answer(body: unknown): RequestPlan {
    return { kind: 'answer', decisions: this.decisions, response: this.respond(body) };
  }

  refuse(reason: string): RequestPlan {
    return { kind: 'refuse', decisions: this.decisions, reason };
  }

  /** Forwards `body` in place of the client's request; `complete` turns the broker's response body into the client's. */
  split<R>(body: unknown, complete: (response: R) => R): RequestPlan {
    return {
      kind: 'split',
      decisions: this.decisions,
      request: encodeRequest(this.request.header, body),
      completeResponse: (responseFrame) => this.rewrite(responseFrame, complete, true),
    };
  }

  /** A whole response frame for this request. */
  respond(body: unknown): Buffer {
    const { apiKey, correlationId } = this.request.header;
    return encodeResponse({ correlationId, taggedFields: [] }, apiKey, this.version, body);
  }

  /**
   * Decodes the broker's response, applies `change`, re-encodes it with the broker's header. When `change` returns
   * the very body it was given and `always` is false, the broker's frame is returned untouched.
   */
  rewrite<R>(responseFrame: Buffer, change: (response: R) => R, always = false): Buffer {
    const { apiKey } = this.request.header;
    const decoded = decodeResponse(responseFrame, apiKey, this.version);
    const body = change(decoded.body as R);
    if (body === decoded.body && !always) return responseFrame;
    return encodeResponse(decoded.header, apiKey, this.version, body);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Response shapes from the schemas
// ---------------------------------------------------------------------------------------------------------------

/** The struct at a dotted path of property names (arrays are stepped through); '' is the message itself. */
export function structAt(schema: MessageSchema<unknown>, path: string): StructSchema {
  let struct = schema.struct;
  if (path === '') return struct;
  for (const name of path.split('.')) {
    const field = struct.fields.find((candidate) => candidate.name === name);
    let type = field?.type;
    if (typeof type === 'object' && type.kind === 'array') type = type.element;
    if (typeof type !== 'object' || type.kind !== 'struct') throw new Error(`${schema.name} has no struct at ${path}`);
    struct = type;
  }
  return struct;
}

/** A struct of `schema` at `path` with every regular field at its default. */
export function blank<T = Record<string, unknown>>(schema: MessageSchema<unknown>, path = ''): T {
  return defaultStruct(structAt(schema, path)) as T;
}

function hasField(struct: StructSchema, name: string, version: number): boolean {
  const field = struct.fields.find((candidate) => candidate.name === name);
  return field !== undefined && field.tag === undefined && inRange(field.versions, version);
}

/**
 * An error entry of `schema` at `path`: defaults, then `errorCode` (when the struct has one) and `errorMessage`
 * set to the decision's reason (when the struct has one in `version`), then `fields`.
 */
export function deniedEntry<T>(schema: MessageSchema<unknown>, path: string, version: number, denial: Denial, fields: NoInfer<Partial<T>>): T {
  const struct = structAt(schema, path);
  const entry = defaultStruct(struct);
  if (hasField(struct, 'errorCode', version)) entry['errorCode'] = denial.code;
  if (hasField(struct, 'errorMessage', version)) entry['errorMessage'] = denial.decision.reason;
  return Object.assign(entry, fields) as T;
}

// ---------------------------------------------------------------------------------------------------------------
// Entry-wise split
// ---------------------------------------------------------------------------------------------------------------

/** How a request made of independent entries is judged, split and merged back. */
export interface EntrySplit<Q, R, QE, RE> {
  readonly entries: readonly QE[];
  /**
   * A denial of the whole request (its group, its transactional id), checked before any entry: every entry is
   * answered with it, and a request with no entries is answered with `blankResponse` (refused without one).
   */
  readonly all?: Verdict;
  /** Undefined: the entry may go to the broker. */
  readonly verdict: (entry: QE) => Verdict;
  /** The request body with only these entries. */
  readonly withEntries: (allowed: QE[]) => Q;
  readonly requestKey: (entry: QE) => string;
  readonly results: (response: R) => readonly RE[];
  readonly resultKey: (result: RE) => string;
  readonly withResults: (response: R, results: RE[]) => R;
  /** The error entry answering a denied entry. */
  readonly denied: (entry: QE, denial: Denial) => RE;
  /**
   * The response to fill with error entries when every entry is denied; when absent, such a request is still
   * forwarded with no entries (for responses that carry more than the entries, e.g. Metadata's brokers).
   */
  readonly blankResponse?: () => R;
  /** A filter on the broker's results (defense in depth, all-resources requests); false drops the result. */
  readonly keep?: (result: RE) => boolean;
  /** Broker results that match no forwarded entry: kept (default, e.g. fetch sessions) or dropped. */
  readonly leftovers?: 'keep' | 'drop';
}

export function planEntries<Q, R, QE, RE>(judge: Judge, spec: EntrySplit<Q, R, QE, RE>): RequestPlan {
  const whole = spec.all;
  const verdicts = spec.entries.map((entry) => whole ?? spec.verdict(entry));
  const allowed = spec.entries.filter((_, i) => verdicts[i] === undefined);
  const keep = spec.keep;
  if (whole === undefined && allowed.length === spec.entries.length) {
    if (keep === undefined) return judge.forward();
    return judge.forward((frame) =>
      judge.rewrite<R>(frame, (response) => {
        const results = spec.results(response);
        const kept = results.filter((result) => keep(result));
        return kept.length === results.length ? response : spec.withResults(response, kept);
      }),
    );
  }
  if (allowed.length === 0 && spec.blankResponse !== undefined) {
    return judge.answer(spec.withResults(spec.blankResponse(), spec.entries.map((entry, i) => spec.denied(entry, verdicts[i]!))));
  }
  if (whole !== undefined && spec.entries.length === 0) return judge.refuse(`${judge.api} denied: ${whole.decision.reason}`);
  return judge.split<R>(spec.withEntries(allowed), (response) => {
    const results = keep === undefined ? spec.results(response) : spec.results(response).filter((result) => keep(result));
    return spec.withResults(response, mergeByKey(spec.entries, verdicts, results, spec.requestKey, spec.resultKey, spec.denied, spec.leftovers ?? 'keep'));
  });
}

/**
 * The client's results in its order: for each entry, its error entry when denied, else the broker's result with
 * the same key (none when the broker gave none). Broker results matching no entry follow, unless dropped.
 */
export function mergeByKey<QE, RE>(
  entries: readonly QE[],
  verdicts: readonly Verdict[],
  results: readonly RE[],
  requestKey: (entry: QE) => string,
  resultKey: (result: RE) => string,
  denied: (entry: QE, denial: Denial) => RE,
  leftovers: 'keep' | 'drop',
): RE[] {
  const queues = new Map<string, RE[]>();
  for (const result of results) {
    const key = resultKey(result);
    const queue = queues.get(key);
    if (queue === undefined) queues.set(key, [result]);
    else queue.push(result);
  }
  const merged: RE[] = [];
  entries.forEach((entry, i) => {
    const verdict = verdicts[i];
    if (verdict !== undefined) {
      merged.push(denied(entry, verdict));
      return;
    }
    const result = queues.get(requestKey(entry))?.shift();
    if (result !== undefined) merged.push(result);
  });
  if (leftovers === 'keep') for (const queue of queues.values()) merged.push(...queue);
  return merged;
}

/**
 * A `decide` that answers the questions already asked in `asked` (same operation and resource) with their recorded
 * decision, and passes anything else to `decide`: a request judged twice (hot path, then full path) asks the policy
 * each question once.
 */
export function replayDecisions(asked: readonly ResourceDecision[], decide: Decide): Decide {
  if (asked.length === 0) return decide;
  return (action) => {
    for (const { action: a, decision } of asked) {
      if (a.operation === action.operation && a.topic === action.topic && a.group === action.group && a.transactionalId === action.transactionalId) return decision;
    }
    return decide(action);
  };
}

/** A request about one resource set, answered whole: forward when every check passes, else `denied(denial)`. */
export function planWhole<R>(judge: Judge, verdict: Verdict, denied: (denial: Denial) => R): RequestPlan {
  return verdict === undefined ? judge.forward() : judge.answer(denied(verdict));
}

/** Response bodies by key, for handlers that name their response type. */
export type ResponseOf<K extends KnownApiKey> = ResponseBodies[K];

/** True for a topic named only by its id (name null or empty, id set): these cannot be judged by name. */
export function byIdOnly(name: string | null, topicId: string): boolean {
  return (name === null || name === '') && topicId !== ZERO_UUID;
}

/** How one API is authorized: for the dispatch table and for documentation. */
export interface ApiPolicy {
  readonly apiKey: number;
  readonly api: string;
  /** What `decide` is asked, in words. */
  readonly checks: string;
  readonly authorize: (judge: Judge) => RequestPlan;
}

export function apiPolicy<K extends KnownApiKey>(
  apiKey: K,
  checks: string,
  authorize: (judge: Judge, body: RequestBodies[K]) => RequestPlan,
): ApiPolicy {
  const api = API_SPECS.get(apiKey)?.name ?? `Unknown(${apiKey})`;
  return { apiKey, api, checks, authorize: (judge) => authorize(judge, judge.request.body as RequestBodies[K]) };
}
