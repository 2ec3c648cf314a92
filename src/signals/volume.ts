/**
 * @module signals/volume
 * One volume signal rule's state: per key (principal × resource, as its `per` says) a sliding-window sum of the
 * measure, a learned baseline when the rule has one, and the breach in progress.
 *
 * A breach starts when the window's sum exceeds the threshold and lasts while it keeps exceeding it again within a
 * window of the previous excess; a key quiet for a whole window starts over. `escalate.after` into a breach, the
 * escalated effect replaces the rule's. `deny` and `approve` hold the key back for one window length from the
 * excess that triggered them (requests held back are not counted, so the sum falls meanwhile). `throttle` asks the
 * client to wait until the sum is back at the threshold (at most `maxThrottleMs`).
 *
 * Memory is bounded: at most `maxKeys` keys per rule, least recently used dropped first (its history with it).
 *
 * Shared by replicas (signals/shared-counters.ts), a key's sum also holds the other replicas' slices as the last
 * sync read them: thresholds, throttling and holds are decided here, synchronously, from that sum; the baseline
 * learns from this process's traffic only.
 */
import { LRUCache } from 'lru-cache';
import { Baseline } from './baseline.ts';
import { DEFAULT_SLICES, SlidingCounter, type SliceAmount } from './sliding-counter.ts';
import { formatAmount } from './amount.ts';
import type { ApprovalSpec } from '../core/approval.ts';
import type { SignalEffect, SignalKey, SignalObservation } from './outcome.ts';

export type VolumeMeasure = 'requests' | 'changes' | 'producedRecords' | 'producedBytes' | 'fetchedRecords' | 'fetchedBytes';

export interface VolumeSpec {
  readonly measure: VolumeMeasure;
  readonly windowMs: number;
  readonly limit?: number;
  readonly baseline?: { readonly deviations: number; readonly warmupMs: number; readonly halfLifeMs: number; readonly floor: number };
  readonly effect: SignalEffect;
  readonly escalate?: { readonly afterMs: number; readonly effect: SignalEffect };
  /** Who approves when the effect in force is `approve`. */
  readonly approval?: ApprovalSpec;
}

/** A breach observed, and whether it is news: the first excess of a breach, or its escalation. */
export interface VolumeResult {
  readonly observation: SignalObservation;
  readonly event: 'breach' | 'escalation' | undefined;
}

interface KeyState {
  readonly key: SignalKey;
  readonly counter: SlidingCounter;
  readonly baseline: Baseline | undefined;
  breachStart: number | undefined;
  lastExcess: number;
  escalated: boolean;
  /** Held back (deny/approve) until then; its observation is what a held request is told. */
  heldUntil: number;
  held: SignalObservation | undefined;
}

const BYTES: ReadonlySet<VolumeMeasure> = new Set(['producedBytes', 'fetchedBytes']);

function describeWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function describeKey(key: SignalKey): string {
  const parts = [key.subject !== undefined ? `of ${key.subject}` : undefined, key.resource !== undefined ? `on ${key.resource}` : undefined].filter((p) => p !== undefined);
  return parts.join(' ');
}

/** One key's slices counted here since the last sync. */
export interface ChangedKey {
  readonly id: string;
  readonly slices: readonly SliceAmount[];
}

/** What a reload may change without losing a rule's state: the rest starts it over (`volumeStateShape`). */
export function volumeStateShape(spec: VolumeSpec, per: readonly string[]): string {
  return JSON.stringify([spec.measure, spec.windowMs, [...per].sort(), spec.baseline === undefined ? null : [spec.baseline.warmupMs, spec.baseline.halfLifeMs]]);
}

export class VolumeTracker {
  readonly rule: string;
  /** Reassigned on reload when the state shape is unchanged (thresholds, effects, shadow). */
  shadow: boolean;
  spec: VolumeSpec;
  #maxThrottleMs: number;
  readonly #keys: LRUCache<string, KeyState>;
  /**
   * Keys counted since the last `takeChanged`, least recently counted first (a key counted again moves last). Kept
   * from the first `takeChanged` on: a process that shares no counters does not pay for it on every request.
   */
  readonly #changed = new Set<string>();
  #tracking = false;

  constructor(rule: string, spec: VolumeSpec, options: { readonly shadow: boolean; readonly maxKeys: number; readonly maxThrottleMs: number }) {
    this.rule = rule;
    this.spec = spec;
    this.shadow = options.shadow;
    this.#maxThrottleMs = options.maxThrottleMs;
    // A key dropped takes its pending changes along: nothing here outgrows `maxKeys`.
    this.#keys = new LRUCache({ max: options.maxKeys, dispose: (_state, id) => this.#changed.delete(id) });
  }

  get keyCount(): number {
    return this.#keys.size;
  }

  reconfigure(spec: VolumeSpec, options: { readonly shadow: boolean; readonly maxThrottleMs: number }): void {
    this.spec = spec;
    this.shadow = options.shadow;
    this.#maxThrottleMs = options.maxThrottleMs;
  }

  /** Adds `amount` to the key's sum; a result when the key is over its threshold. */
  observe(id: string, key: SignalKey, amount: number, now: number): VolumeResult | undefined {
    let state = this.#keys.get(id);
    if (state === undefined) {
      const spec = this.spec.baseline;
      state = {
        key, counter: new SlidingCounter(this.spec.windowMs),
        baseline: spec === undefined ? undefined : new Baseline({ periodMs: this.spec.windowMs, warmupMs: spec.warmupMs, halfLifeMs: spec.halfLifeMs }, now),
        breachStart: undefined, lastExcess: 0, escalated: false, heldUntil: 0, held: undefined,
      };
      this.#keys.set(id, state);
    }
    if (amount > 0) {
      state.counter.add(now, amount);
      state.baseline?.add(now, amount);
      if (this.#tracking) {
        this.#changed.delete(id);
        this.#changed.add(id);
      }
    }
    const observed = state.counter.sum(now);
    const b = this.spec.baseline;
    const learned = b === undefined ? undefined : state.baseline?.view(now, b);
    const limit = this.spec.limit;
    const overLimit = limit !== undefined && observed > limit;
    const overBaseline = learned?.threshold !== undefined && observed > learned.threshold;
    if (!overLimit && !overBaseline) {
      if (state.breachStart !== undefined && now - state.lastExcess > this.spec.windowMs) state.breachStart = undefined;
      return undefined;
    }
    // The threshold crossed first: the lower of those exceeded.
    const useBaseline = overBaseline && (!overLimit || learned!.threshold! < limit!);
    const threshold = useBaseline ? learned!.threshold! : limit!;
    let event: VolumeResult['event'];
    if (state.breachStart === undefined || now - state.lastExcess > this.spec.windowMs) {
      state.breachStart = now;
      state.escalated = false;
      event = 'breach';
    }
    state.lastExcess = now;
    let effect = this.spec.effect;
    const escalate = this.spec.escalate;
    if (escalate !== undefined && now - state.breachStart >= escalate.afterMs) {
      if (!state.escalated) {
        state.escalated = true;
        event ??= 'escalation';
      }
      effect = escalate.effect;
    }
    const bytes = BYTES.has(this.spec.measure);
    const window = describeWindow(this.spec.windowMs);
    const against = useBaseline
      ? `the learned baseline ${formatAmount(threshold, bytes)} (mean ${formatAmount(learned!.mean, bytes)}, stddev ${formatAmount(learned!.stddev, bytes)})`
      : `the limit ${formatAmount(threshold, bytes)}`;
    let reason = `signal ${this.rule}: ${this.spec.measure} ${describeKey(state.key)} in the last ${window} is ${formatAmount(observed, bytes)}, over ${against}`;
    let throttleMs: number | undefined;
    let until: number | undefined;
    if (effect === 'throttle') {
      throttleMs = Math.min(this.#maxThrottleMs, Math.max(1, Math.ceil(state.counter.drainTime(now, threshold))));
      reason += `; throttled for ${throttleMs} ms`;
    } else if (effect === 'deny' || effect === 'approve') {
      until = now + this.spec.windowMs;
      reason += effect === 'deny' ? `; denied until ${new Date(until).toISOString()}` : `; needs an approval until ${new Date(until).toISOString()}`;
    }
    if (state.escalated) reason += ` (escalated: in breach for ${describeWindow(now - state.breachStart)})`;
    const observation: SignalObservation = {
      rule: this.rule, kind: 'volume', effect, shadow: this.shadow, measure: this.spec.measure,
      observed, threshold, thresholdSource: useBaseline ? 'baseline' : 'limit',
      ...(learned !== undefined && { baseline: { mean: learned.mean, stddev: learned.stddev, periods: learned.periods } }),
      windowMs: this.spec.windowMs, key: state.key,
      ...(throttleMs !== undefined && { throttleMs }),
      ...(until !== undefined && { until }),
      ...(state.escalated && { escalated: true }),
      ...(effect === 'approve' && this.spec.approval !== undefined && { approval: this.spec.approval }),
      reason,
    };
    if (until !== undefined) {
      state.heldUntil = until;
      state.held = observation;
    }
    return { observation, event };
  }

  /** The observation holding the key back (deny/approve in force), or undefined. Does not count anything. */
  held(id: string, now: number): SignalObservation | undefined {
    const state = this.#keys.peek(id);
    if (state === undefined || state.held === undefined || now >= state.heldUntil) return undefined;
    return { ...state.held, observed: state.counter.sum(now) };
  }

  /** Length of one slice of the window and slices per window, as every key's counter cuts it. */
  get slicing(): { readonly sliceMs: number; readonly slices: number } {
    return { sliceMs: this.spec.windowMs / DEFAULT_SLICES, slices: DEFAULT_SLICES };
  }

  /**
   * For a sync: up to `max` keys counted here since the last call, the most recently counted first, with their
   * slices changed and still in the window at `now`. Those left over stay for the next call.
   */
  takeChanged(now: number, max: number): ChangedKey[] {
    if (!this.#tracking) {
      // The first sync: the keys counted so far, in the order they were last used (their counters know what changed).
      this.#tracking = true;
      for (const id of this.#keys.rkeys()) if (this.#keys.peek(id)?.counter.changed === true) this.#changed.add(id);
    }
    const ids = [...this.#changed];
    const out: ChangedKey[] = [];
    for (let i = ids.length - 1; i >= 0 && out.length < max; i--) {
      const id = ids[i]!;
      this.#changed.delete(id);
      const slices = this.#keys.peek(id)?.counter.takeChanged(now);
      if (slices !== undefined && slices.length > 0) out.push({ id, slices });
    }
    return out;
  }

  /** Puts back what `takeChanged` returned when writing it failed: the next sync writes it again. */
  restoreChanged(changes: readonly ChangedKey[]): void {
    for (const { id, slices } of changes) {
      const state = this.#keys.peek(id);
      if (state === undefined) continue;
      state.counter.markChanged(slices);
      // Last in the order: written first by the next sync, having waited longest.
      if (!this.#changed.has(id)) this.#changed.add(id);
    }
  }

  /** The `max` most recently counted keys held: those a sync reads the other replicas' sums for. */
  recentKeys(max: number): string[] {
    const out: string[] = [];
    if (max <= 0) return out;
    for (const id of this.#keys.keys()) {
      out.push(id);
      if (out.length >= max) break;
    }
    return out;
  }

  /** Replaces the other replicas' slices of a key; false when the key is no longer held. Does not touch its recency. */
  setRemote(id: string, slices: Iterable<SliceAmount>): boolean {
    const state = this.#keys.peek(id);
    if (state === undefined) return false;
    state.counter.setRemote(slices);
    return true;
  }

  /** The other replicas' part of a key's sum at `now`, as the last sync read it (undefined: key not held). */
  remoteSum(id: string, now: number): number | undefined {
    return this.#keys.peek(id)?.counter.remoteSum(now);
  }
}
