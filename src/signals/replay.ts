/**
 * @module signals/replay
 * One `replay` rule's state: what was produced recently, by payload digest per topic, to notice old events sent
 * again to fabricate activity; and the timestamp check (a record far older, or newer, than tollgate's clock).
 *
 * A digest is SHA-256 over the key and the value (length-prefixed, so key "ab" + value "c" differs from "a" + "bc").
 * It is remembered once the broker acknowledged the record (`remember`), so a client retrying a batch the broker
 * refused is not flagged; an idempotent producer re-sending the same batch (same producer id, epoch and sequence)
 * is a retry the broker deduplicates, not a replay, and is not flagged either.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { SignalEffect, SignalObservation } from './outcome.ts';

export interface ReplaySpec {
  readonly maxAgeMs?: number;
  readonly maxAheadMs?: number;
  readonly duplicatesMs?: number;
  readonly maxDigests: number;
  readonly effect: SignalEffect;
}

/** The identity of an idempotent producer's record: the broker deduplicates re-sends of it. */
export interface ProducerSequence {
  readonly id: bigint;
  readonly epoch: number;
  readonly sequence: number;
}

export interface ProducedRecord {
  /** CreateTime, epoch milliseconds. */
  readonly timestampMs: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** Set for idempotent producers (producer id ≥ 0). */
  readonly producer?: ProducerSequence;
}

interface Remembered {
  readonly at: number;
  readonly producer: ProducerSequence | undefined;
}

export interface ReplayCheck {
  /** Set when the record is flagged. */
  readonly observation?: SignalObservation;
  /** The record's digest (hex), to `remember` once the broker acknowledged it; undefined without `duplicates`. */
  readonly digest?: string;
}

const LENGTH = Buffer.alloc(4);

function digestOf(key: Buffer | null, value: Buffer | null): string {
  const hash = createHash('sha256');
  for (const part of [key, value]) {
    LENGTH.writeInt32BE(part === null ? -1 : part.length);
    hash.update(LENGTH);
    if (part !== null) hash.update(part);
  }
  return hash.digest('hex');
}

const sameProducer = (a: ProducerSequence | undefined, b: ProducerSequence | undefined) =>
  a !== undefined && b !== undefined && a.id === b.id && a.epoch === b.epoch && a.sequence === b.sequence;

/** What a reload may change without losing the digests (maxAge, maxAhead, effect, shadow may change). */
export function replayStateShape(spec: ReplaySpec): string {
  return JSON.stringify([spec.duplicatesMs ?? null, spec.maxDigests]);
}

export class ReplayTracker {
  readonly rule: string;
  /** Reassigned on reload when the state shape is unchanged. */
  shadow: boolean;
  spec: ReplaySpec;
  readonly #digests: LRUCache<string, Remembered>;

  constructor(rule: string, spec: ReplaySpec, options: { readonly shadow: boolean }) {
    this.rule = rule;
    this.spec = spec;
    this.shadow = options.shadow;
    this.#digests = new LRUCache({ max: spec.maxDigests });
  }

  get keyCount(): number {
    return this.#digests.size;
  }

  /**
   * Checks one record produced to `topic` by `subject`. `inRequest` collects the digests of the records before it in
   * the same request: a payload repeated within one request is a duplicate too.
   */
  check(topic: string, subject: string, record: ProducedRecord, now: number, inRequest: Map<string, ProducerSequence | undefined>): ReplayCheck {
    const { maxAgeMs, maxAheadMs, duplicatesMs } = this.spec;
    const base = { rule: this.rule, kind: 'replay' as const, effect: this.spec.effect, shadow: this.shadow, key: { subject, resource: `topic:${topic}` } };
    const verb = this.spec.effect === 'deny' ? 'refused' : 'flagged';
    const age = now - record.timestampMs;
    if (maxAgeMs !== undefined && age > maxAgeMs) {
      return {
        observation: {
          ...base, measure: 'recordAgeMs', observed: age, threshold: maxAgeMs,
          reason: `signal ${this.rule}: a record to ${topic} has the timestamp ${iso(record.timestampMs)}, ${seconds(age)} before tollgate's clock (more than ${seconds(maxAgeMs)}): ${verb} as a replay`,
        },
      };
    }
    if (maxAheadMs !== undefined && -age > maxAheadMs) {
      return {
        observation: {
          ...base, measure: 'recordAheadMs', observed: -age, threshold: maxAheadMs,
          reason: `signal ${this.rule}: a record to ${topic} has the timestamp ${iso(record.timestampMs)}, ${seconds(-age)} after tollgate's clock (more than ${seconds(maxAheadMs)}): ${verb}`,
        },
      };
    }
    if (duplicatesMs === undefined) return {};
    const digest = digestOf(record.key, record.value);
    const id = `${topic}\u0000${digest}`;
    const earlier = inRequest.has(id) ? { at: now, producer: inRequest.get(id) } : this.#digests.get(id);
    inRequest.set(id, record.producer);
    if (earlier === undefined || now - earlier.at > duplicatesMs || sameProducer(earlier.producer, record.producer)) return { digest };
    const ago = now - earlier.at;
    return {
      digest,
      observation: {
        ...base, measure: 'duplicatePayload', observed: ago, threshold: duplicatesMs,
        reason: `signal ${this.rule}: a record to ${topic} repeats the key and value (SHA-256 ${digest.slice(0, 16)}…) produced ${seconds(ago)} earlier (within ${seconds(duplicatesMs)}): ${verb} as a replay`,
      },
    };
  }

  /** Digests of records the broker acknowledged on `topic`. */
  remember(topic: string, digests: ReadonlyArray<{ readonly digest: string; readonly producer: ProducerSequence | undefined }>, now: number): void {
    for (const { digest, producer } of digests) this.#digests.set(`${topic}\u0000${digest}`, { at: now, producer });
  }
}

const iso = (ms: number) => (Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms));

function seconds(ms: number): string {
  if (ms >= 86_400_000) return `${Math.round(ms / 3_600_000) / 24}d`;
  if (ms >= 3_600_000) return `${Math.round(ms / 60_000) / 60}h`;
  if (ms >= 60_000) return `${Math.round(ms / 1000) / 60}m`;
  return `${Math.round(ms) / 1000}s`;
}
