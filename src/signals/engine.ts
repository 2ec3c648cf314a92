/**
 * @module signals/engine
 * The signal rules of the config in force, with their state. Adapters call it with what they saw (amounts per
 * action, failed and successful authentications, produced records) and act on what it returns; it never sees a
 * protocol.
 *
 * State lives in this process (volume counts may be shared with other replicas: `volumeRules` is what
 * signals/shared-counters.ts syncs) and outlives config reloads: `update` keeps the state of every rule whose name
 * is unchanged and whose state shape is unchanged (a volume rule's measure, window, key parts and baseline history
 * settings; an authFailures rule's window and key parts; a replay rule's duplicate window and digest bound).
 * Thresholds, effects, escalation and shadow may change without losing anything; a rule removed loses its state, a
 * rule whose shape changed starts over.
 *
 * Every observation goes to `onObservation` (metrics); news — a breach starting, an escalation, a flagged session,
 * failures reaching a threshold, a replayed record — goes to `onEvent` (an audit record and the alert webhook).
 */
import type { Action } from '../core/action.ts';
import type { Principal } from '../core/principal.ts';
import type { SignalRule } from '../policy/engine.ts';
import { AuthFailureTracker, authStateShape, type AuthAttempt, type AuthFailuresSpec } from './auth-failures.ts';
import type { SignalObservation } from './outcome.ts';
import { ReplayTracker, replayStateShape, type ReplaySpec } from './replay.ts';
import { pathOf, resourceOf } from './resource.ts';
import { compilePatterns, type Matcher } from '../policy/glob.ts';
import { VolumeTracker, volumeStateShape, type VolumeMeasure, type VolumeSpec } from './volume.ts';

export type SignalPath = 'kafka' | 'http' | 'kubernetes';

/** News worth a record of its own. */
export interface SignalEvent {
  readonly event: 'breach' | 'escalation' | 'flagged' | 'failures' | 'replay';
  readonly path: SignalPath;
  readonly observation: SignalObservation;
  readonly principal?: Principal;
  /** Connection facts (source address, connection id) of the traffic that caused it. */
  readonly connection?: Readonly<Record<string, string | number>>;
  /** For `failures`: the counts per key kind. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface SignalSettings {
  readonly maxKeys: number;
  readonly maxThrottleMs: number;
}

export interface SignalEngineOptions {
  /** Epoch milliseconds; `Date.now` by default. Tests inject a clock. */
  readonly now?: () => number;
  readonly onEvent?: (event: SignalEvent) => void;
  readonly onObservation?: (observation: SignalObservation) => void;
}

/** What one action of a request amounted to. */
export interface Measured {
  readonly action: Action;
  readonly amounts: Readonly<Partial<Record<VolumeMeasure, number>>>;
  /** Config entries the action alters (Kafka AlterConfigs, IncrementalAlterConfigs): `changes` rules with `configs` count these. */
  readonly configNames?: readonly string[];
}

interface Volume {
  readonly rule: SignalRule;
  readonly tracker: VolumeTracker;
  readonly shape: string;
  readonly bySubject: boolean;
  readonly byResource: boolean;
  /** `changes` counting only config entries with these names. */
  readonly configs: Matcher | undefined;
}

interface Auth {
  readonly rule: SignalRule;
  readonly tracker: AuthFailureTracker;
  readonly shape: string;
}

interface Replay {
  readonly rule: SignalRule;
  readonly tracker: ReplayTracker;
  readonly shape: string;
}

/**
 * A volume rule as the sync across replicas sees it: its name and state shape say which shared rows are its own (a
 * rule whose window or key parts changed starts over there too), the tracker holds its keys.
 */
export interface VolumeRuleState {
  readonly rule: string;
  readonly shape: string;
  readonly tracker: VolumeTracker;
}

/** The replay rules that apply to one principal producing to one topic. */
export interface ReplayRules {
  readonly trackers: readonly ReplayTracker[];
}

/**
 * Which requests a held key (deny, approve) holds back: those of the kind the measure counts. A consumer over its
 * fetched bytes is held back from fetching, not from committing or reading its offsets (an OffsetFetch refused
 * would only make it start over, and an approval of a Fetch would not cover it); `requests` and `changes` hold back
 * every request the rule matches.
 */
function holdsBack(measure: VolumeMeasure, action: Action): boolean {
  if (action.kind !== 'kafka') return true;
  if (measure === 'fetchedBytes' || measure === 'fetchedRecords') return action.api === 'Fetch';
  if (measure === 'producedBytes' || measure === 'producedRecords') return action.api === 'Produce';
  return true;
}

const principalId = (p: Principal) => `${p.issuer}\u0000${p.subject}`;

function volumeSpec(rule: SignalRule): VolumeSpec {
  const v = rule.spec.volume!;
  return {
    measure: v.measure,
    windowMs: v.window,
    ...(v.limit !== undefined && { limit: v.limit }),
    ...(v.baseline !== undefined && { baseline: { deviations: v.baseline.deviations, warmupMs: v.baseline.warmup, halfLifeMs: v.baseline.halfLife, floor: v.baseline.floor } }),
    effect: rule.spec.effect,
    ...(rule.spec.escalate !== undefined && { escalate: { afterMs: rule.spec.escalate.after, effect: rule.spec.escalate.effect } }),
    ...(rule.approval !== undefined && { approval: rule.approval }),
  };
}

function authSpec(rule: SignalRule): AuthFailuresSpec {
  const a = rule.spec.authFailures!;
  return { threshold: a.threshold, windowMs: a.window, bySubject: a.per.includes('subject'), bySource: a.per.includes('source'), flagForMs: a.flagFor };
}

function replaySpec(rule: SignalRule): ReplaySpec {
  const r = rule.spec.replay!;
  return {
    ...(r.maxAge !== undefined && { maxAgeMs: r.maxAge }),
    ...(r.maxAhead !== undefined && { maxAheadMs: r.maxAhead }),
    ...(r.duplicates !== undefined && { duplicatesMs: r.duplicates }),
    maxDigests: r.maxDigests,
    effect: rule.spec.effect,
  };
}

export class SignalEngine {
  readonly now: () => number;
  readonly #onEvent: (event: SignalEvent) => void;
  readonly #onObservation: (observation: SignalObservation) => void;
  #volumes: Volume[] = [];
  #auths: Auth[] = [];
  #replays: Replay[] = [];
  /** Measures some volume rule counts: adapters skip work for the others. */
  #measures = new Set<VolumeMeasure>();

  constructor(options: SignalEngineOptions = {}) {
    this.now = options.now ?? Date.now;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#onObservation = options.onObservation ?? (() => {});
  }

  /** Puts the signal rules of a config in force, keeping the state of those unchanged in shape (see the module). */
  update(rules: readonly SignalRule[], settings: SignalSettings): void {
    const previous = {
      volumes: new Map(this.#volumes.map((v) => [v.rule.name, v])),
      auths: new Map(this.#auths.map((a) => [a.rule.name, a])),
      replays: new Map(this.#replays.map((r) => [r.rule.name, r])),
    };
    const volumes: Volume[] = [];
    const auths: Auth[] = [];
    const replays: Replay[] = [];
    for (const rule of rules) {
      const { volume, authFailures, replay } = rule.spec;
      if (volume !== undefined) {
        const spec = volumeSpec(rule);
        const shape = volumeStateShape(spec, volume.per);
        const old = previous.volumes.get(rule.name);
        let tracker: VolumeTracker;
        if (old !== undefined && old.shape === shape) {
          tracker = old.tracker;
          tracker.reconfigure(spec, { shadow: rule.shadow, maxThrottleMs: settings.maxThrottleMs });
        } else {
          tracker = new VolumeTracker(rule.name, spec, { shadow: rule.shadow, maxKeys: settings.maxKeys, maxThrottleMs: settings.maxThrottleMs });
        }
        volumes.push({ rule, tracker, shape, bySubject: volume.per.includes('subject'), byResource: volume.per.includes('resource'), configs: compilePatterns(volume.configs) });
      } else if (authFailures !== undefined) {
        const spec = authSpec(rule);
        const shape = authStateShape(spec);
        const old = previous.auths.get(rule.name);
        let tracker: AuthFailureTracker;
        if (old !== undefined && old.shape === shape) {
          tracker = old.tracker;
          tracker.spec = spec;
          tracker.shadow = rule.shadow;
        } else {
          tracker = new AuthFailureTracker(rule.name, spec, { shadow: rule.shadow, maxKeys: settings.maxKeys });
        }
        auths.push({ rule, tracker, shape });
      } else if (replay !== undefined) {
        const spec = replaySpec(rule);
        const shape = replayStateShape(spec);
        const old = previous.replays.get(rule.name);
        let tracker: ReplayTracker;
        if (old !== undefined && old.shape === shape) {
          tracker = old.tracker;
          tracker.spec = spec;
          tracker.shadow = rule.shadow;
        } else {
          tracker = new ReplayTracker(rule.name, spec, { shadow: rule.shadow });
        }
        replays.push({ rule, tracker, shape });
      }
    }
    this.#volumes = volumes;
    this.#auths = auths;
    this.#replays = replays;
    this.#measures = new Set(volumes.map((v) => v.tracker.spec.measure));
  }

  /** Keys (or digests) each rule keeps state for: for the `tollgate_signal_keys` gauge. */
  keyCounts(): Array<{ readonly rule: string; readonly keys: number }> {
    return [...this.#volumes, ...this.#auths, ...this.#replays].map((r) => ({ rule: r.rule.name, keys: r.tracker.keyCount }));
  }

  /** The volume rules in force, with their state (for the sync across replicas). */
  volumeRules(): VolumeRuleState[] {
    return this.#volumes.map((v) => ({ rule: v.rule.name, shape: v.shape, tracker: v.tracker }));
  }

  /** False when no volume rule counts `measure`: adapters need not read what it would take. */
  counts(measure: VolumeMeasure): boolean {
    return this.#measures.has(measure);
  }

  /** False when no volume rule counting `measure` can apply to this principal. */
  mayCount(principal: Principal, measure: VolumeMeasure): boolean {
    return this.#measures.has(measure) && this.#volumes.some((v) => v.tracker.spec.measure === measure && v.rule.appliesToPrincipal(principal));
  }

  #key(v: Volume, principal: Principal, action: Action): { id: string; key: { subject?: string; resource?: string } } {
    const resource = v.byResource ? resourceOf(action) : undefined;
    return {
      id: `${v.bySubject ? principalId(principal) : ''}\u0001${resource ?? ''}`,
      key: { ...(v.bySubject && { subject: principal.subject }), ...(resource !== undefined && { resource }) },
    };
  }

  /**
   * The observations of volume rules holding this request back (`deny`/`approve` in force for its key), shadow ones
   * included. Counts nothing: a request held back is not counted.
   */
  held(principal: Principal, action: Action): SignalObservation[] {
    const out: SignalObservation[] = [];
    if (this.#volumes.length === 0) return out;
    const now = this.now();
    for (const v of this.#volumes) {
      if (!holdsBack(v.tracker.spec.measure, action) || !v.rule.applies(principal, action)) continue;
      const held = v.tracker.held(this.#key(v, principal, action).id, now);
      if (held !== undefined) {
        out.push(held);
        this.#onObservation(held);
      }
    }
    return out;
  }

  /**
   * Counts what one request amounted to (one entry per action it was allowed) and returns the observations of the
   * rules it put over their threshold. `requests` counts once per request and key, whatever the number of actions;
   * other measures add up.
   */
  measure(principal: Principal, items: readonly Measured[], connection?: Readonly<Record<string, string | number>>): SignalObservation[] {
    if (this.#volumes.length === 0 || items.length === 0) return [];
    const now = this.now();
    const pending = new Map<string, { v: Volume; key: { subject?: string; resource?: string }; id: string; amount: number; action: Action }>();
    for (const v of this.#volumes) {
      const measure = v.tracker.spec.measure;
      for (const { action, amounts, configNames } of items) {
        const configs = v.configs;
        const amount = configs === undefined ? amounts[measure] : configNames?.filter((name) => configs(name)).length;
        if (amount === undefined || amount === 0 && measure !== 'requests' || !v.rule.applies(principal, action)) continue;
        const { id, key } = this.#key(v, principal, action);
        const slot = `${v.rule.name}\u0002${id}`;
        const entry = pending.get(slot);
        if (entry === undefined) pending.set(slot, { v, key, id, amount, action });
        else entry.amount = measure === 'requests' ? Math.max(entry.amount, amount) : entry.amount + amount;
      }
    }
    const out: SignalObservation[] = [];
    for (const { v, key, id, amount, action } of pending.values()) {
      const result = v.tracker.observe(id, key, amount, now);
      if (result === undefined) continue;
      out.push(result.observation);
      this.#onObservation(result.observation);
      if (result.event !== undefined) {
        this.#onEvent({ event: result.event, path: pathOf(action), observation: result.observation, principal, ...(connection !== undefined && { connection }) });
      }
    }
    return out;
  }

  /** A failed authentication on `path`: counted by every authFailures rule; an event when a threshold is reached. */
  authFailure(path: SignalPath, attempt: AuthAttempt, connection?: Readonly<Record<string, string | number>>): Record<string, { subject?: number; source?: number }> {
    const counts: Record<string, { subject?: number; source?: number }> = {};
    if (this.#auths.length === 0) return counts;
    const now = this.now();
    for (const { rule, tracker } of this.#auths) {
      const { reached, ...count } = tracker.failure(attempt, now);
      if (count.subject === undefined && count.source === undefined) continue;
      counts[rule.name] = count;
      if (!reached) continue;
      const observed = Math.max(count.subject ?? 0, count.source ?? 0);
      const observation: SignalObservation = {
        rule: rule.name, kind: 'authFailures', effect: 'alert', shadow: tracker.shadow, measure: 'failedAuthentications',
        observed, threshold: tracker.spec.threshold, windowMs: tracker.spec.windowMs,
        key: { ...(attempt.subject !== undefined && { subject: attempt.subject }), ...(attempt.source !== undefined && { source: attempt.source }) },
        reason: `signal ${rule.name}: ${observed} failed authentications within ${Math.round(tracker.spec.windowMs / 1000)}s (threshold ${tracker.spec.threshold})${attempt.subject !== undefined ? `, claiming ${attempt.subject}` : ''}${attempt.source !== undefined ? `, from ${attempt.source}` : ''}: the next success will be flagged`,
      };
      this.#onObservation(observation);
      this.#onEvent({ event: 'failures', path, observation, ...(connection !== undefined && { connection }), details: { counts: count } });
    }
    return counts;
  }

  /** A successful authentication: the observations of the rules that flag this session (empty when none does). */
  authSuccess(path: SignalPath, principal: Principal, source: string | undefined, connection?: Readonly<Record<string, string | number>>): SignalObservation[] {
    const out: SignalObservation[] = [];
    if (this.#auths.length === 0) return out;
    const now = this.now();
    for (const { rule, tracker } of this.#auths) {
      if (!rule.appliesToPrincipal(principal)) continue;
      const observation = tracker.success({ subject: principal.subject, ...(source !== undefined && { source }) }, now);
      if (observation === undefined) continue;
      out.push(observation);
      this.#onObservation(observation);
      this.#onEvent({ event: 'flagged', path, observation, principal, ...(connection !== undefined && { connection }) });
    }
    return out;
  }

  /** The authFailures rules that flagged this principal's sessions now (`match.flagged`), or undefined. */
  flaggedBy(principal: Principal): ReadonlySet<string> | undefined {
    if (this.#auths.length === 0) return undefined;
    const now = this.now();
    let out: Set<string> | undefined;
    for (const { rule, tracker } of this.#auths) if (tracker.flagged(principal.subject, now)) (out ??= new Set()).add(rule.name);
    return out;
  }

  /** False when no replay rule can apply to this principal: its records are not read for replay. */
  mayCheckReplay(principal: Principal): boolean {
    return this.#replays.some((r) => r.rule.appliesToPrincipal(principal));
  }

  /** The replay rules for `principal` producing to `topic`, in config order. */
  replayTrackers(principal: Principal, topic: string): readonly ReplayTracker[] {
    if (this.#replays.length === 0) return [];
    const action: Action = { kind: 'kafka', api: 'Produce', operation: 'produce', topic };
    return this.#replays.filter((r) => r.rule.applies(principal, action)).map((r) => r.tracker);
  }

  /** A replayed record found by an adapter: counted, recorded and alerted like any signal news. */
  reportReplay(principal: Principal, observation: SignalObservation, connection?: Readonly<Record<string, string | number>>): void {
    this.#onObservation(observation);
    this.#onEvent({ event: 'replay', path: 'kafka', observation, principal, ...(connection !== undefined && { connection }) });
  }
}
