/**
 * @module signals/auth-failures
 * One `authFailures` rule's state: failed authentications counted per claimed subject and per source address over a
 * sliding window; a success whose subject or address reached the threshold flags the subject's sessions for
 * `flagFor`, and the counters of that success start over.
 *
 * The subject of a failure is what the refused credential claims (a token's unverified `sub`): anyone can claim
 * any subject, so a flood of failures in someone's name can flag that person's next session (which then needs
 * what `match.flagged` rules ask, and raises an alert) but never opens anything.
 */
import { LRUCache } from 'lru-cache';
import { SlidingCounter } from './sliding-counter.ts';
import type { SignalObservation } from './outcome.ts';

export interface AuthFailuresSpec {
  readonly threshold: number;
  readonly windowMs: number;
  readonly bySubject: boolean;
  readonly bySource: boolean;
  readonly flagForMs: number;
}

/** Who failed (or succeeded): the subject claimed or proven, the client address. */
export interface AuthAttempt {
  readonly subject?: string;
  readonly source?: string;
}

export interface FailureCount {
  /** Failures within the window, per key kind counted. */
  readonly subject?: number;
  readonly source?: number;
  /** This failure brought a key to the threshold (news: alert once). */
  readonly reached: boolean;
}

/** What a reload may change without losing a rule's counters and flags (threshold, flagFor, shadow may change). */
export function authStateShape(spec: AuthFailuresSpec): string {
  return JSON.stringify([spec.windowMs, spec.bySubject, spec.bySource]);
}

export class AuthFailureTracker {
  readonly rule: string;
  /** Reassigned on reload when the state shape is unchanged. */
  shadow: boolean;
  spec: AuthFailuresSpec;
  readonly #counters: LRUCache<string, SlidingCounter>;
  /** Flagged subjects → until when. */
  readonly #flags: LRUCache<string, number>;

  constructor(rule: string, spec: AuthFailuresSpec, options: { readonly shadow: boolean; readonly maxKeys: number }) {
    this.rule = rule;
    this.spec = spec;
    this.shadow = options.shadow;
    this.#counters = new LRUCache({ max: options.maxKeys });
    this.#flags = new LRUCache({ max: options.maxKeys });
  }

  get keyCount(): number {
    return this.#counters.size + this.#flags.size;
  }

  #keys(attempt: AuthAttempt): Array<['subject' | 'source', string]> {
    const out: Array<['subject' | 'source', string]> = [];
    if (this.spec.bySubject && attempt.subject !== undefined && attempt.subject !== '') out.push(['subject', `subject\u0000${attempt.subject}`]);
    if (this.spec.bySource && attempt.source !== undefined && attempt.source !== '') out.push(['source', `source\u0000${attempt.source}`]);
    return out;
  }

  failure(attempt: AuthAttempt, now: number): FailureCount {
    const counts: { subject?: number; source?: number } = {};
    let reached = false;
    for (const [kind, id] of this.#keys(attempt)) {
      let counter = this.#counters.get(id);
      if (counter === undefined) {
        counter = new SlidingCounter(this.spec.windowMs);
        this.#counters.set(id, counter);
      }
      const before = counter.sum(now);
      counter.add(now, 1);
      const after = counter.sum(now);
      counts[kind] = Math.round(after);
      if (before < this.spec.threshold && after >= this.spec.threshold) reached = true;
    }
    return { ...counts, reached };
  }

  /**
   * A successful authentication of `subject` from `source`: the observation flagging it when enough failures
   * preceded it (by subject or by source), else undefined. Shadow rules observe without flagging.
   */
  success(attempt: AuthAttempt & { readonly subject: string }, now: number): SignalObservation | undefined {
    let worst: { kind: 'subject' | 'source'; value: string; count: number } | undefined;
    const seen: string[] = [];
    for (const [kind, id] of this.#keys(attempt)) {
      const count = this.#counters.get(id)?.sum(now) ?? 0;
      seen.push(id);
      if (count >= this.spec.threshold && (worst === undefined || count > worst.count)) worst = { kind, value: kind === 'subject' ? attempt.subject : attempt.source!, count: Math.round(count) };
    }
    if (worst === undefined) return undefined;
    for (const id of seen) this.#counters.delete(id);
    const until = now + this.spec.flagForMs;
    if (!this.shadow) this.#flags.set(attempt.subject, until);
    const window = `${Math.round(this.spec.windowMs / 1000)}s`;
    return {
      rule: this.rule, kind: 'authFailures', effect: 'alert', shadow: this.shadow, measure: 'failedAuthentications',
      observed: worst.count, threshold: this.spec.threshold, windowMs: this.spec.windowMs,
      key: { subject: attempt.subject, ...(attempt.source !== undefined && { source: attempt.source }) },
      until,
      reason: `signal ${this.rule}: ${worst.count} failed authentications ${worst.kind === 'subject' ? `claiming ${worst.value}` : `from ${worst.value}`} within ${window} (threshold ${this.spec.threshold}), then ${attempt.subject} authenticated: its sessions are flagged until ${new Date(until).toISOString()}`,
    };
  }

  /** Whether `subject`'s sessions are flagged by this rule at `now`. */
  flagged(subject: string, now: number): boolean {
    const until = this.#flags.peek(subject);
    if (until === undefined) return false;
    if (now < until) return true;
    this.#flags.delete(subject);
    return false;
  }
}
