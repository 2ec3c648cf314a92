/**
 * @module kafka/signals
 * Insider-threat signals on the Kafka wire: what a request or a response amounts to for the signal engine
 * (src/signals/), and the engine's answers in Kafka's terms.
 *
 * - Held back (`deny`, `approve`): the action's decision becomes a denial, so the request is answered with the
 *   authorization error of its API (TOPIC_AUTHORIZATION_FAILED for a topic, …), as for any denied request; under
 *   `approve` a ticket is filed as for an `approve` access rule, and a grant of it lets the principal through.
 * - Throttled: the response carries `throttle_time_ms` (the longest asked), as the broker's own quotas do since
 *   KIP-219: clients wait that long before their next request to this broker. kafkajs honours it
 *   (src/network/connection.js passes each response's `clientSideThrottleTime` to its request queue, which holds
 *   requests until then); so does the Java client (NetworkClient.maybeThrottle, for response versions from the
 *   KIP-219 bump on, e.g. Produce v6+, Fetch v8+). Older versions expected the broker to delay the response itself;
 *   tollgate does not delay, so their clients are not slowed (escalate to `deny` or `approve` for those).
 * - Counted: requests and changes when a request is forwarded; records and bytes produced when a Produce is
 *   forwarded; records and bytes fetched when a Fetch response is served (per topic, whole batches, control
 *   batches left out).
 * - Replay: the records of a Produce to a topic with a replay rule are read; flagged ones are refused like publish
 *   inspection's (INVALID_RECORD with the reason) or only alerted.
 */
import type { KafkaAction } from '../core/action.ts';
import type { Decision } from '../core/decision.ts';
import type { Principal } from '../core/principal.ts';
import type { SignalEngine, Measured } from '../signals/engine.ts';
import { claimedSubject } from '../identity/unverified.ts';
import { signalDecision, strongest, type SignalObservation } from '../signals/outcome.ts';
import type { ApprovalView } from '../policy/approval-decision.ts';
import type { ProducerSequence, ReplayTracker } from '../signals/replay.ts';
import { API_KEY, apiKeyName } from './protocol/api-keys.ts';
import { KafkaError } from './protocol/error-codes.ts';
import { decodeResponse, encodeResponse, responseHeaderVersionFor, type DecodedRequest } from './protocol/messages.ts';
import { API_SPECS } from './protocol/generated/index.ts';
import type { ProduceRequest } from './protocol/generated/index.ts';
import { inRange } from './protocol/codec/schema.ts';
import { decodeBatch, readBatchHeader, RecordError, splitBatches } from './protocol/records/index.ts';
import type { ProduceRecords } from './capture/produce.ts';
import type { Rejection } from './inspect/produce.ts';
import type { ResourceDecision } from './authorize/index.ts';

type Facts = Readonly<Record<string, string | number>>;

/** What the connection asks of the signals (one instance serves every connection). */
export interface KafkaSignals {
  /**
   * The decision on an action the policy allowed, when a signal holds it back; undefined lets the policy's stand.
   * Every observation (shadow ones too) is pushed to `seen`, for the request's audit record. An `approve` signal
   * answers with a grant from `approvals` or an approval demand, which the connection files as a ticket.
   */
  gate(principal: Principal, action: KafkaAction, seen: SignalObservation[], approvals?: ApprovalView): Decision | undefined;
  /** Counts a forwarded request (`forwarded`: the frame sent to the broker); the observations it caused. */
  forwarded(principal: Principal, forwarded: Forwarded, facts: Facts | undefined): SignalObservation[];
  /** Whether Fetch responses of this principal must be read for a fetched-volume signal. */
  countsFetches(principal: Principal): boolean;
  /** Counts a Fetch response as served; the observations it caused. */
  fetched(principal: Principal, response: Buffer, apiVersion: number, facts: Facts | undefined): SignalObservation[];
  /** Whether Produce records of this principal must be read for a replay signal. */
  checksReplay(principal: Principal): boolean;
  /** Reads the records of a Produce about to be forwarded for replay rules. */
  replay(principal: Principal, body: ProduceRequest, facts: Facts | undefined): ReplayResult;
  /** A failed SASL authentication: `token` (when one was sent) names the subject it claims, unverified. */
  authenticationFailed(token: string | undefined, facts: Facts | undefined): Record<string, { subject?: number; source?: number }>;
  /** A successful one: observations of the rules that flag the session. */
  authenticated(principal: Principal, facts: Facts | undefined): SignalObservation[];
}

/** A request on its way to the broker, with what the policy allowed of it. */
export interface Forwarded {
  readonly apiKey: number;
  /** The policy's decisions on it so far (the allowed ones are counted). */
  readonly decisions: readonly ResourceDecision[];
  /** The client's request decoded, when it was (every request but the hot-path Produce). */
  readonly decoded: DecodedRequest | undefined;
  /** The records sent, for a Produce (read only when a rule counts them). */
  readonly produce: (() => ProduceRecords) | undefined;
}

export interface ReplayResult {
  /** Enforced refusals (deny) and shadow ones (`shadow: true`), as publish inspection reports them. */
  readonly rejections: readonly Rejection[];
  /** Every flagged record's observation (alerts, denials, shadow): for the request's audit record. */
  readonly observations: readonly SignalObservation[];
  /** To call with the broker's Produce response (undefined for acks=0): acknowledged payloads are remembered. */
  acknowledge(response: Buffer | undefined, apiVersion: number): void;
}

const NO_REPLAY: ReplayResult = { rejections: [], observations: [], acknowledge: () => {} };

/** Where Envoy reports the client's address in the connection facts (envoy/kafka.yaml `connection_attributes`). */
const SOURCE_ADDRESS = 'source.address';

/**
 * The client's IP from Envoy's `source.address` fact, which is `ip:port` (`[ip6]:port` for IPv6): failures are
 * counted per address, and each connection has a port of its own.
 */
export function sourceHost(facts: Facts | undefined): string | undefined {
  const address = facts?.[SOURCE_ADDRESS];
  if (address === undefined) return undefined;
  const text = String(address);
  const match = /^\[([^\]]+)\]:\d+$/.exec(text) ?? /^([^:]+):\d+$/.exec(text);
  return match?.[1] ?? text;
}

export function createKafkaSignals(engine: SignalEngine): KafkaSignals {
  return {
    gate(principal, action, seen, approvals) {
      const held = engine.held(principal, action);
      if (held.length === 0) return undefined;
      seen.push(...held);
      return signalDecision(action, strongest(held), approvals);
    },

    forwarded(principal, request, facts) {
      const wantsProduced = request.apiKey === API_KEY.Produce && (engine.mayCount(principal, 'producedRecords') || engine.mayCount(principal, 'producedBytes'));
      const wantsChanges = engine.mayCount(principal, 'changes');
      if (!engine.mayCount(principal, 'requests') && !wantsProduced && !wantsChanges) return [];
      const produced = wantsProduced && request.produce !== undefined ? producedPerTopic(request.produce()) : undefined;
      const allowed = request.decisions.filter((d) => d.decision.effect === 'allow').map((d) => d.action);
      // A request that names nothing (Metadata for all topics, before its answer is judged) counts as one on the cluster.
      const actions = allowed.length > 0 ? allowed : [{ kind: 'kafka', api: apiKeyName(request.apiKey), operation: 'describe' } as const];
      const items: Measured[] = actions.map((action) => {
        const amounts: Record<string, number> = { requests: 1 };
        if (wantsChanges) {
          const changes = changesOf(request.decoded, action);
          if (changes > 0) amounts['changes'] = changes;
        }
        const p = action.topic === undefined ? undefined : produced?.get(action.topic);
        if (p !== undefined && action.operation === 'produce') {
          amounts['producedRecords'] = p.records;
          amounts['producedBytes'] = p.bytes;
        }
        const configNames = wantsChanges ? changedConfigNames(request.decoded, action) : undefined;
        return { action, amounts, ...(configNames !== undefined && { configNames }) };
      });
      return engine.measure(principal, items, facts);
    },

    countsFetches(principal) {
      return engine.mayCount(principal, 'fetchedRecords') || engine.mayCount(principal, 'fetchedBytes');
    },

    fetched(principal, response, apiVersion, facts) {
      const perTopic = fetchedPerTopic(response, apiVersion);
      const items: Measured[] = [...perTopic].map(([topic, amount]) => ({
        action: { kind: 'kafka', api: 'Fetch', operation: 'consume', topic },
        amounts: { fetchedRecords: amount.records, fetchedBytes: amount.bytes },
      }));
      return engine.measure(principal, items, facts);
    },

    checksReplay(principal) {
      return engine.mayCheckReplay(principal);
    },

    replay(principal, body, facts) {
      const byTopic = new Map<string, readonly ReplayTracker[]>();
      for (const topic of body.topicData) {
        const trackers = engine.replayTrackers(principal, topic.name);
        if (trackers.length > 0) byTopic.set(topic.name, trackers);
      }
      if (byTopic.size === 0) return NO_REPLAY;
      return checkReplay(engine, principal, body, byTopic, facts);
    },

    authenticationFailed(token, facts) {
      const subject = claimedSubject(token);
      const source = sourceHost(facts);
      return engine.authFailure('kafka', { ...(subject !== undefined && { subject }), ...(source !== undefined && { source }) }, facts);
    },

    authenticated(principal, facts) {
      return engine.authSuccess('kafka', principal, sourceHost(facts), facts);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Amounts
// ---------------------------------------------------------------------------------------------------------------

interface Amount { records: number; bytes: number }

/** Records (from batch headers, no decompression) and bytes of a Produce, per topic. */
export function producedPerTopic(request: ProduceRecords): Map<string, Amount> {
  const out = new Map<string, Amount>();
  for (const topic of request.topics) {
    if (topic.name === null) continue;
    let amount = out.get(topic.name);
    if (amount === undefined) out.set(topic.name, (amount = { records: 0, bytes: 0 }));
    for (const partition of topic.partitions) {
      if (partition.records === null) continue;
      amount.bytes += partition.records.length;
      amount.records += countRecords(partition.records);
    }
  }
  return out;
}

/** Data records in whole batches (control batches and a trailing partial batch left out); legacy messages count one each. */
function countRecords(records: Buffer): number {
  let n = 0;
  try {
    for (const batch of splitBatches(records).batches) {
      if (batch.readInt8(16) !== 2) {
        n++;
        continue;
      }
      const header = readBatchHeader(batch);
      if (!header.isControl) n += header.recordCount;
    }
  } catch (error) {
    if (!(error instanceof RecordError)) throw error;
  }
  return n;
}

/** Whole batches' bytes and data records of a Fetch response, per topic. */
export function fetchedPerTopic(frame: Buffer, apiVersion: number): Map<string, Amount> {
  const body = decodeResponse(frame, API_KEY.Fetch, apiVersion).body;
  const out = new Map<string, Amount>();
  for (const topic of body.responses) {
    const name = topic.topic;
    if (name === '') continue;
    let amount = out.get(name);
    if (amount === undefined) out.set(name, (amount = { records: 0, bytes: 0 }));
    for (const partition of topic.partitions) {
      const records = partition.records;
      if (records === null || records.length === 0) continue;
      let whole: Buffer[];
      try {
        whole = splitBatches(records).batches;
      } catch (error) {
        if (!(error instanceof RecordError)) throw error;
        continue;
      }
      for (const batch of whole) {
        amount.bytes += batch.length;
        if (batch.readInt8(16) !== 2) {
          amount.records++;
          continue;
        }
        try {
          const header = readBatchHeader(batch);
          if (!header.isControl) amount.records += header.recordCount;
        } catch (error) {
          if (!(error instanceof RecordError)) throw error;
        }
      }
    }
  }
  return out;
}

const CONFIG_TOPIC = 2;
const CONFIG_GROUP = 32;

/** Whether a config resource is the one the action names (a topic, a group, or the cluster for the rest). */
function sameConfigResource(resourceType: number, resourceName: string, action: KafkaAction): boolean {
  if (resourceType === CONFIG_TOPIC) return action.topic === resourceName;
  if (resourceType === CONFIG_GROUP) return action.group === resourceName;
  return action.topic === undefined && action.group === undefined;
}

/** The config names an AlterConfigs / IncrementalAlterConfigs action changes (undefined for other requests). */
export function changedConfigNames(decoded: DecodedRequest | undefined, action: KafkaAction): readonly string[] | undefined {
  if (decoded === undefined) return undefined;
  const api = apiKeyName(decoded.header.apiKey);
  if (api !== 'AlterConfigs' && api !== 'IncrementalAlterConfigs') return undefined;
  const body = decoded.body as { resources: Array<{ resourceType: number; resourceName: string; configs: Array<{ name: string }> }>; validateOnly: boolean };
  if (body.validateOnly) return [];
  return body.resources.filter((r) => sameConfigResource(r.resourceType, r.resourceName, action)).flatMap((r) => r.configs.map((c) => c.name));
}

/**
 * How many changes an allowed action of a request makes: ACL creations and deletion filters, config entries
 * altered, topics created or deleted, partitions added to, records deleted from (per partition). Validate-only
 * requests change nothing. Requests that change nothing count 0.
 */
export function changesOf(decoded: DecodedRequest | undefined, action: KafkaAction): number {
  if (decoded === undefined) return 0;
  const body = decoded.body as unknown as Record<string, unknown>;
  switch (apiKeyName(decoded.header.apiKey)) {
    case 'CreateAcls':
      return (body['creations'] as unknown[]).length;
    case 'DeleteAcls':
      return (body['filters'] as unknown[]).length;
    case 'AlterConfigs':
    case 'IncrementalAlterConfigs':
      return changedConfigNames(decoded, action)?.length ?? 0;
    case 'CreateTopics':
    case 'CreatePartitions':
      return body['validateOnly'] === true ? 0 : 1;
    case 'DeleteTopics':
      return 1;
    case 'DeleteRecords': {
      const topic = (body['topics'] as Array<{ name: string; partitions: unknown[] }>).find((t) => t.name === action.topic);
      return topic?.partitions.length ?? 0;
    }
    default:
      return 0;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------------------------------------------

interface PendingDigests {
  readonly tracker: ReplayTracker;
  readonly topic: string;
  readonly partition: number;
  readonly digests: Array<{ readonly digest: string; readonly producer: ProducerSequence | undefined }>;
}

function checkReplay(engine: SignalEngine, principal: Principal, body: ProduceRequest, byTopic: ReadonlyMap<string, readonly ReplayTracker[]>, facts: Facts | undefined): ReplayResult {
  const now = engine.now();
  const rejections: Rejection[] = [];
  const observations: SignalObservation[] = [];
  const pending: PendingDigests[] = [];
  const inRequest = new Map<ReplayTracker, Map<string, ProducerSequence | undefined>>();
  for (const topic of body.topicData) {
    const trackers = byTopic.get(topic.name);
    if (trackers === undefined) continue;
    for (const partition of topic.partitionData) {
      if (partition.records === null || partition.records.length === 0) continue;
      const slots = trackers.map((tracker) => ({ tracker, topic: topic.name, partition: partition.index, digests: [] as PendingDigests['digests'] }));
      let refused: Rejection | undefined;
      let shadowed: Rejection | undefined;
      try {
        const { batches } = splitBatches(partition.records);
        for (let b = 0; b < batches.length && refused === undefined; b++) {
          if (batches[b]!.readInt8(16) !== 2) continue;
          const batch = decodeBatch(batches[b]!);
          if (batch.header.isControl) continue;
          const { baseTimestamp, producerId, producerEpoch, baseSequence } = batch.header;
          for (const record of batch.records) {
            const produced = {
              timestampMs: Number(baseTimestamp + record.timestampDelta),
              key: record.key, value: record.value,
              ...(producerId >= 0n && baseSequence >= 0 && { producer: { id: producerId, epoch: producerEpoch, sequence: baseSequence + record.offsetDelta } }),
            };
            for (const slot of slots) {
              let seen = inRequest.get(slot.tracker);
              if (seen === undefined) inRequest.set(slot.tracker, (seen = new Map()));
              const checked = slot.tracker.check(topic.name, principal.subject, produced, now, seen);
              if (checked.digest !== undefined) slot.digests.push({ digest: checked.digest, producer: produced.producer });
              const o = checked.observation;
              if (o === undefined) continue;
              observations.push(o);
              engine.reportReplay(principal, o, facts);
              if (o.effect !== 'deny') continue;
              const rejection: Rejection = { topic: topic.name, partition: partition.index, batchIndex: b, reason: o.reason };
              if (!o.shadow) refused ??= rejection;
              else shadowed ??= { ...rejection, shadow: true };
            }
            if (refused !== undefined) break;
          }
        }
      } catch (error) {
        if (!(error instanceof RecordError)) throw error;
        // Unreadable records are publish inspection's to refuse (or the broker's): replay has nothing to say.
      }
      if (refused !== undefined) rejections.push(refused);
      else {
        if (shadowed !== undefined) rejections.push(shadowed);
        pending.push(...slots.filter((s) => s.digests.length > 0));
      }
    }
  }
  return {
    rejections,
    observations,
    acknowledge(response, apiVersion) {
      if (pending.length === 0) return;
      const at = engine.now();
      let failed: Set<string> | undefined;
      if (response !== undefined) {
        failed = new Set();
        try {
          for (const topic of decodeResponse(response, API_KEY.Produce, apiVersion).body.responses) {
            for (const p of topic.partitionResponses) if (p.errorCode !== KafkaError.NONE) failed.add(`${topic.name}\u0000${p.index}`);
          }
        } catch {
          return;
        }
      }
      for (const slot of pending) {
        if (failed?.has(`${slot.topic}\u0000${slot.partition}`) === true) continue;
        slot.tracker.remember(slot.topic, slot.digests, at);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Throttle
// ---------------------------------------------------------------------------------------------------------------

/** Bytes of a response header: the correlation id, then (header v1) tagged fields. */
function headerLength(frame: Buffer, apiKey: number, apiVersion: number): number | undefined {
  const version = responseHeaderVersionFor(apiKey, apiVersion);
  if (version === undefined) return undefined;
  let offset = 4 + 4;
  if (version === 1) {
    const [count, read] = uvarint(frame, offset);
    offset += read;
    for (let i = 0; i < count; i++) {
      const [, tagBytes] = uvarint(frame, offset);
      offset += tagBytes;
      const [size, sizeBytes] = uvarint(frame, offset);
      offset += sizeBytes + size;
    }
  }
  return offset <= frame.length ? offset : undefined;
}

function uvarint(buf: Buffer, offset: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    if (offset + i >= buf.length) throw new RangeError('varint past the end of the frame');
    const byte = buf[offset + i]!;
    value |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [value >>> 0, i + 1];
    shift += 7;
  }
  throw new RangeError('varint longer than 5 bytes');
}

/** Whether `throttle_time_ms` is the first field of this API's response in this version (written in place then). */
function throttleFirst(apiKey: number, apiVersion: number): boolean | undefined {
  const fields = API_SPECS.get(apiKey)?.codecs?.responseSchema.struct.fields;
  if (fields === undefined) return undefined;
  const present = fields.find((f) => f.tag === undefined && inRange(f.versions, apiVersion));
  const throttle = fields.find((f) => f.name === 'throttleTimeMs' && f.tag === undefined);
  if (throttle === undefined || !inRange(throttle.versions, apiVersion)) return undefined;
  return present === throttle;
}

/**
 * The response frame with `throttle_time_ms` at least `ms` (the broker's own throttle is kept when longer), or the
 * frame unchanged when this API version has no such field. Where the field comes first in the body (Fetch, most
 * APIs) only its 4 bytes are rewritten (a large Fetch response is not copied); elsewhere (Produce) the response is
 * decoded and re-encoded.
 */
export function withThrottle(frame: Buffer, apiKey: number, apiVersion: number, ms: number): Buffer {
  const first = throttleFirst(apiKey, apiVersion);
  if (first === undefined || ms <= 0) return frame;
  const value = Math.min(0x7fffffff, Math.ceil(ms));
  if (first) {
    const at = headerLength(frame, apiKey, apiVersion);
    if (at === undefined || at + 4 > frame.length) return frame;
    if (frame.readInt32BE(at) >= value) return frame;
    const head = Buffer.from(frame.subarray(0, at + 4));
    head.writeInt32BE(value, at);
    return Buffer.concat([head, frame.subarray(at + 4)]);
  }
  const decoded = decodeResponse(frame, apiKey as never, apiVersion);
  const body = decoded.body as unknown as { throttleTimeMs: number };
  if (body.throttleTimeMs >= value) return frame;
  return encodeResponse(decoded.header, apiKey, apiVersion, { ...body, throttleTimeMs: value });
}
