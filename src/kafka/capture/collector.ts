/**
 * @module kafka/capture/collector
 * What one audit record keeps of the records of one Produce or Fetch under capture rules (`details.capture`):
 * per record its place (topic, partition, offset), timestamp and size, and either digests (SHA-256 of the exact
 * bytes) or the masked payload as text. Bounded: past the rules' maxRecords records are only counted.
 *
 * A masked payload has always been through a mask here, even when it was served masked already: an audit record
 * must never hold personal data no mask has seen (src/audit/record.ts), and a consumer no masking rule applies to is
 * served the original bytes.
 */
import { createHash } from 'node:crypto';
import type { TopicCapture } from '../../policy/capture.ts';
import type { MaskContext } from '../../masking/strategies.ts';
import { REDACTED } from '../../masking/strategies.ts';
import { maskJsonUnit, type MaskTally, type RuleMaskPlan } from '../../masking/units.ts';
import { jsonInt64 } from '../summary.ts';

/** One captured record. `offset` is null when it is not known; `error` then says why. */
export interface CapturedRecord {
  readonly topic: string;
  readonly partition: number;
  /** int64 as JSON carries it: a number when safe, a decimal string otherwise. */
  readonly offset: number | string | null;
  readonly error?: string;
  /** Epoch milliseconds: the record's create time, or the broker's append time when the topic uses that. */
  readonly timestamp: number | string;
  /** Bytes of the value (0 for a null value). */
  readonly size: number;
  /** `digest`: SHA-256 (hex) of the value bytes; null for a null value. */
  readonly valueSha256?: string | null;
  /** `digest` with `keys`: SHA-256 (hex) of the key bytes; null for a null key. */
  readonly keySha256?: string | null;
  /** `masked`: the masked value as text; null for a null value. */
  readonly value?: string | null;
  /** `masked`: set when `value` is base64 (bytes that are not UTF-8, let through by `onUndecodable: pass`). */
  readonly valueEncoding?: 'base64';
  /** `masked` with `keys`: the masked key. */
  readonly key?: string | null;
  readonly keyEncoding?: 'base64';
}

export interface UnreadablePartition {
  readonly topic: string;
  readonly partition: number;
  readonly reason: string;
}

/** `details.capture` of an audit record. */
export interface CaptureDetail {
  /** The capture rules of the topics whose records are here, in the order first met. */
  readonly rules: readonly string[];
  /** `mixed` when topics of one request are captured differently (each record's fields say which). */
  readonly payload: 'digest' | 'masked' | 'mixed';
  readonly records: readonly CapturedRecord[];
  /** Records past maxRecords: counted, not captured. */
  readonly truncated?: number;
  /** Partitions whose records could not be read for capture, with why. */
  readonly unreadable?: readonly UnreadablePartition[];
}

/** Where a record is, as far as known when it is captured. */
export interface RecordPlace {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint | null;
  readonly timestamp: bigint;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Keys are often plain strings (an id, an address): for them `onUndecodable` does not apply to text. */
const asText = (masks: readonly RuleMaskPlan[]): RuleMaskPlan[] => masks.map((m) => (m.onUndecodable === 'pass' ? m : { ...m, onUndecodable: 'pass' }));

/**
 * One payload masked for the record: JSON by field paths and detectors, other text by detectors (or redacted whole,
 * per `onUndecodable`); bytes that are not UTF-8 are redacted unless every mask says `pass`, then base64. Text goes
 * through `textMasks` (keys: `masks` with `pass`, so a plain string key is read as text, detectors and all).
 */
export function maskedText(bytes: Buffer, masks: readonly RuleMaskPlan[], ctx: MaskContext, textMasks: readonly RuleMaskPlan[] = masks): { readonly text: string; readonly base64: boolean } {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return masks.every((m) => m.onUndecodable === 'pass') ? { text: bytes.toString('base64'), base64: true } : { text: REDACTED, base64: false };
  }
  const tally: MaskTally = {};
  return { text: maskJsonUnit(text, textMasks, ctx, tally), base64: false };
}

export class CaptureCollector {
  readonly #ctx: MaskContext;
  readonly #records: Array<Mutable<CapturedRecord>> = [];
  readonly #rules: string[] = [];
  readonly #seen = new Set<TopicCapture>();
  readonly #keyMasks = new Map<TopicCapture, readonly RuleMaskPlan[]>();
  readonly #unreadable: UnreadablePartition[] = [];
  #digest = false;
  #masked = false;
  #truncated = 0;

  constructor(ctx: MaskContext) {
    this.#ctx = ctx;
  }

  /** Whether one more record captured under `capture` would be kept (not only counted). */
  hasRoom(capture: TopicCapture): boolean {
    return this.#records.length < capture.maxRecords;
  }

  /** Captures one record (or counts it, past maxRecords). Returns the index of the captured record, or -1. */
  add(capture: TopicCapture, place: RecordPlace, record: { readonly key: Buffer | null; readonly value: Buffer | null }): number {
    this.#note(capture);
    if (!this.hasRoom(capture)) {
      this.#truncated++;
      return -1;
    }
    const entry: Mutable<CapturedRecord> = {
      topic: place.topic,
      partition: place.partition,
      offset: place.offset === null ? null : jsonInt64(place.offset),
      timestamp: jsonInt64(place.timestamp),
      size: record.value?.length ?? 0,
    };
    if (capture.payload === 'digest') {
      entry.valueSha256 = record.value === null ? null : sha256Hex(record.value);
      if (capture.keys) entry.keySha256 = record.key === null ? null : sha256Hex(record.key);
    } else {
      if (record.value === null) entry.value = null;
      else {
        const { text, base64 } = maskedText(record.value, capture.masks, this.#ctx);
        entry.value = text;
        if (base64) entry.valueEncoding = 'base64';
      }
      if (capture.keys) {
        if (record.key === null) entry.key = null;
        else {
          const { text, base64 } = maskedText(record.key, capture.masks, this.#ctx, this.#keyMasksOf(capture));
          entry.key = text;
          if (base64) entry.keyEncoding = 'base64';
        }
      }
    }
    return this.#records.push(entry) - 1;
  }

  /** Counts `count` records of `capture` that are not captured (past maxRecords), without reading them. */
  skip(capture: TopicCapture, count: number): void {
    this.#note(capture);
    this.#truncated += count;
  }

  unreadable(capture: TopicCapture, topic: string, partition: number, reason: string): void {
    this.#note(capture);
    this.#unreadable.push({ topic, partition, reason });
  }

  /** Sets what became known after the record was captured: its offset (or why there is none), its timestamp. */
  settle(index: number, outcome: { readonly offset: bigint } | { readonly error: string }, timestamp?: bigint): void {
    const entry = this.#records[index];
    if (entry === undefined) throw new RangeError(`no captured record ${index} (${this.#records.length} captured)`);
    if ('offset' in outcome) {
      entry.offset = jsonInt64(outcome.offset);
      delete entry.error;
    } else {
      entry.offset = null;
      entry.error = outcome.error;
    }
    if (timestamp !== undefined) entry.timestamp = jsonInt64(timestamp);
  }

  get size(): number {
    return this.#records.length;
  }

  /** The audit detail; undefined when no record of a captured topic was met. */
  detail(): CaptureDetail | undefined {
    if (this.#seen.size === 0) return undefined;
    return {
      rules: this.#rules,
      payload: this.#digest && this.#masked ? 'mixed' : this.#masked ? 'masked' : 'digest',
      records: this.#records,
      ...(this.#truncated > 0 && { truncated: this.#truncated }),
      ...(this.#unreadable.length > 0 && { unreadable: this.#unreadable }),
    };
  }

  #note(capture: TopicCapture): void {
    if (this.#seen.has(capture)) return;
    this.#seen.add(capture);
    for (const rule of capture.rules) if (!this.#rules.includes(rule)) this.#rules.push(rule);
    if (capture.payload === 'digest') this.#digest = true;
    else this.#masked = true;
  }

  #keyMasksOf(capture: TopicCapture): readonly RuleMaskPlan[] {
    let masks = this.#keyMasks.get(capture);
    if (masks === undefined) {
      masks = asText(capture.masks);
      this.#keyMasks.set(capture, masks);
    }
    return masks;
  }
}
