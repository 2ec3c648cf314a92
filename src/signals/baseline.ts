/**
 * @module signals/baseline
 * What is usual for one key: the sum per period (tumbling windows of the signal's window length, aligned to the
 * epoch) folded into an exponentially weighted mean and variance. Idle periods fold in as zeros, so a key that reads
 * once a day has a low mean and a wide deviation, and a key that reads steadily has a tight one.
 *
 * The learned threshold is `mean + deviations × stddev`, never below `floor`, and exists only once the key has
 * `warmup` worth of periods behind it: a key seen for the first time can only trip a fixed limit.
 */

/** What shapes the history (a change starts it over). */
export interface BaselineSpec {
  readonly periodMs: number;
  readonly warmupMs: number;
  readonly halfLifeMs: number;
}

/** How the threshold is read from the history (may change on reload without losing it). */
export interface BaselineThreshold {
  readonly deviations: number;
  readonly floor: number;
}

/** Idle periods folded in at most, after a long silence (beyond that the old history weighs nothing anyway). */
const MAX_IDLE_FOLDS = 10_000;

export interface BaselineView {
  readonly mean: number;
  readonly stddev: number;
  /** Periods folded in so far. */
  readonly periods: number;
  /** The learned threshold, undefined while warming up. */
  readonly threshold: number | undefined;
}

export class Baseline {
  readonly #spec: BaselineSpec;
  readonly #alpha: number;
  #periodStart: number;
  #periodSum = 0;
  #mean = 0;
  #variance = 0;
  #periods = 0;

  constructor(spec: BaselineSpec, now: number) {
    this.#spec = spec;
    // A period this many half-lives old weighs 1/2^n: alpha = 1 - 2^(-period/halfLife).
    this.#alpha = 1 - 2 ** (-spec.periodMs / spec.halfLifeMs);
    this.#periodStart = Math.floor(now / spec.periodMs) * spec.periodMs;
  }

  add(now: number, amount: number): void {
    this.#roll(now);
    this.#periodSum += amount;
  }

  view(now: number, threshold: BaselineThreshold): BaselineView {
    this.#roll(now);
    const stddev = Math.sqrt(this.#variance);
    const warm = this.#periods * this.#spec.periodMs >= this.#spec.warmupMs;
    return {
      mean: this.#mean,
      stddev,
      periods: this.#periods,
      threshold: warm ? Math.max(threshold.floor, this.#mean + threshold.deviations * stddev) : undefined,
    };
  }

  #roll(now: number): void {
    const { periodMs } = this.#spec;
    if (now < this.#periodStart + periodMs) return;
    this.#fold(this.#periodSum);
    this.#periodSum = 0;
    const elapsed = Math.floor((now - this.#periodStart) / periodMs);
    for (let i = 1; i < Math.min(elapsed, MAX_IDLE_FOLDS); i++) this.#fold(0);
    this.#periodStart += elapsed * periodMs;
  }

  /**
   * Exponentially weighted mean and variance (West's incremental form). Until there are 1/alpha periods, each weighs
   * 1/n (the plain mean and variance): an exponential average started at zero would understate the deviation for
   * its first half-lives and fire on ordinary traffic right after the warm-up.
   */
  #fold(x: number): void {
    const alpha = Math.max(this.#alpha, 1 / (this.#periods + 1));
    const diff = x - this.#mean;
    const increment = alpha * diff;
    this.#mean += increment;
    this.#variance = (1 - alpha) * (this.#variance + diff * increment);
    this.#periods++;
  }
}
