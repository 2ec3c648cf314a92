/**
 * @module signals/sliding-counter
 * A sum over a sliding window in constant memory: the window is cut into `buckets` equal slices; the slice that is
 * partly out of the window counts in proportion to the part still in (the sliding-window-counter approximation, as
 * rate limiters commonly use it). Error: at most one slice's amount, spread evenly.
 *
 * Times are epoch milliseconds from the caller's clock; nothing here reads the wall clock.
 */

export class SlidingCounter {
  readonly windowMs: number;
  readonly #width: number;
  /** One slot per slice index modulo the ring size: the slice's index and its sum. */
  readonly #index: Float64Array;
  readonly #sum: Float64Array;

  constructor(windowMs: number, buckets = 10) {
    if (!(windowMs > 0) || !Number.isInteger(buckets) || buckets < 1) throw new RangeError(`expected a positive window and bucket count, got ${windowMs} ms, ${buckets}`);
    this.windowMs = windowMs;
    this.#width = windowMs / buckets;
    // One more slot than slices: the oldest slice, partly in the window, is still needed.
    this.#index = new Float64Array(buckets + 1).fill(-1);
    this.#sum = new Float64Array(buckets + 1);
  }

  add(now: number, amount: number): void {
    const index = Math.floor(now / this.#width);
    const slot = index % this.#index.length;
    if (this.#index[slot] !== index) {
      this.#index[slot] = index;
      this.#sum[slot] = 0;
    }
    this.#sum[slot]! += amount;
  }

  /** The sum over the window ending at `now`. */
  sum(now: number): number {
    const current = Math.floor(now / this.#width);
    const slices = this.#index.length - 1;
    // The oldest slice (current - slices) lies partly before the window: weigh it by the part still inside.
    const inside = 1 - (now - current * this.#width) / this.#width;
    let total = 0;
    for (let slot = 0; slot < this.#index.length; slot++) {
      const index = this.#index[slot]!;
      if (index < 0 || index > current || index < current - slices) continue;
      total += index === current - slices ? this.#sum[slot]! * inside : this.#sum[slot]!;
    }
    return total;
  }

  /**
   * How long from `now` until the sum falls to `target` or below if nothing more is added (0 when it already is):
   * how long a client over its threshold must back off.
   */
  drainTime(now: number, target: number): number {
    if (this.sum(now) <= target) return 0;
    // The sum only falls as slices age out; it is linear between slice boundaries. Walk the boundaries.
    let previous = now;
    let previousSum = this.sum(now);
    for (let step = 1; step <= this.#index.length; step++) {
      const boundary = (Math.floor(now / this.#width) + step) * this.#width;
      // Just before the boundary the oldest slice has weight ~0; at it, the next slice becomes the oldest.
      const before = this.sum(boundary - 1e-6);
      if (before <= target) {
        const fraction = previousSum === before ? 1 : (previousSum - target) / (previousSum - before);
        return Math.max(0, previous - now + fraction * (boundary - previous));
      }
      previous = boundary;
      previousSum = this.sum(boundary);
    }
    return this.windowMs;
  }

  /** True when nothing was added within the last window (the counter can be forgotten). */
  idle(now: number): boolean {
    return this.sum(now) === 0;
  }
}
