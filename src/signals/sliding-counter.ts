/**
 * @module signals/sliding-counter
 * A sum over a sliding window in constant memory: the window is cut into `buckets` equal slices; the slice that is
 * partly out of the window counts in proportion to the part still in (the sliding-window-counter approximation, as
 * rate limiters commonly use it). Error: at most one slice's amount, spread evenly.
 *
 * Shared across replicas (signals/shared-counters.ts), a counter has two parts with the same ring of slices: the
 * local one, what this process added, whose changed slices a sync takes (`takeChanged`) to write them out; and the
 * remote one, the other replicas' sums per slice, replaced whole at each sync (`setRemote`). `sum` and `drainTime`
 * add both up, slice by slice, with the same weighting. Slices are numbered from the epoch (`floor(time / slice
 * length)`), so every replica numbers them alike.
 *
 * Times are epoch milliseconds from the caller's clock; nothing here reads the wall clock.
 */

/** Slices per window unless told otherwise. */
export const DEFAULT_SLICES = 10;

/** One slice's sum: its number (`floor(time / slice length)`) and amount. */
export interface SliceAmount {
  readonly slice: number;
  readonly amount: number;
}

export class SlidingCounter {
  readonly windowMs: number;
  /** Length of one slice. */
  readonly sliceMs: number;
  /** Slices per window. */
  readonly slices: number;
  /** One slot per slice number modulo the ring size: the slice's number and its sum. */
  readonly #index: Float64Array;
  readonly #sum: Float64Array;
  /** Local slots added to since the last `takeChanged`. */
  readonly #changed: Uint8Array;
  /** The other replicas' part, in a ring of its own (its slots may hold other slice numbers than the local ones). */
  readonly #remoteIndex: Float64Array;
  readonly #remoteSum: Float64Array;

  constructor(windowMs: number, buckets = DEFAULT_SLICES) {
    if (!(windowMs > 0) || !Number.isInteger(buckets) || buckets < 1) throw new RangeError(`expected a positive window and bucket count, got ${windowMs} ms, ${buckets}`);
    this.windowMs = windowMs;
    this.sliceMs = windowMs / buckets;
    this.slices = buckets;
    // One more slot than slices: the oldest slice, partly in the window, is still needed.
    this.#index = new Float64Array(buckets + 1).fill(-1);
    this.#sum = new Float64Array(buckets + 1);
    this.#changed = new Uint8Array(buckets + 1);
    this.#remoteIndex = new Float64Array(buckets + 1).fill(-1);
    this.#remoteSum = new Float64Array(buckets + 1);
  }

  /** The number of the slice `now` falls in. */
  sliceOf(now: number): number {
    return Math.floor(now / this.sliceMs);
  }

  /** The oldest slice still (partly) inside the window ending at `now`. */
  oldestSlice(now: number): number {
    return this.sliceOf(now) - this.slices;
  }

  add(now: number, amount: number): void {
    const index = this.sliceOf(now);
    const slot = index % this.#index.length;
    if (this.#index[slot] !== index) {
      this.#index[slot] = index;
      this.#sum[slot] = 0;
    }
    this.#sum[slot]! += amount;
    this.#changed[slot] = 1;
  }

  /** The sum over the window ending at `now`: this process's part and the other replicas'. */
  sum(now: number): number {
    const current = this.sliceOf(now);
    const oldest = current - this.slices;
    // The oldest slice lies partly before the window: weigh it by the part still inside.
    const inside = 1 - (now - current * this.sliceMs) / this.sliceMs;
    let total = 0;
    for (let slot = 0; slot < this.#index.length; slot++) {
      total += weighed(this.#index[slot]!, this.#sum[slot]!, current, oldest, inside);
      total += weighed(this.#remoteIndex[slot]!, this.#remoteSum[slot]!, current, oldest, inside);
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
      const boundary = (this.sliceOf(now) + step) * this.sliceMs;
      // Just before the boundary the oldest slice has weight ~0; at it, the next slice becomes the oldest.
      const before = this.sum(boundary - 1e-6);
      if (before <= target) {
        const fraction = previousSum === before ? 1 : (previousSum - target) / (previousSum - before);
        return Math.max(0, previous - now + fraction * (boundary - previous));
      }
      previous = boundary;
      previousSum = this.sum(boundary);
      // Within a rounding error of the target just before the boundary, at it once the slice is out.
      if (previousSum <= target) return boundary - now;
    }
    return this.windowMs;
  }

  /** True when nothing was added within the last window, here or (as far as the last sync knew) elsewhere. */
  idle(now: number): boolean {
    return this.sum(now) === 0;
  }

  /** True when local slices changed since the last `takeChanged`. */
  get changed(): boolean {
    return this.#changed.includes(1);
  }

  /**
   * This process's sums of the slices added to since the last call and still inside the window at `now` (whole
   * sums, not increments: writing one twice is harmless). Clears the marks; `markChanged` puts them back when the
   * write failed.
   */
  takeChanged(now: number): SliceAmount[] {
    const oldest = this.oldestSlice(now);
    const current = this.sliceOf(now);
    const out: SliceAmount[] = [];
    for (let slot = 0; slot < this.#index.length; slot++) {
      if (this.#changed[slot] === 0) continue;
      this.#changed[slot] = 0;
      const index = this.#index[slot]!;
      if (index >= oldest && index <= current) out.push({ slice: index, amount: this.#sum[slot]! });
    }
    return out;
  }

  /** Marks these slices changed again (a write that failed), those still in the ring. */
  markChanged(slices: readonly SliceAmount[]): void {
    for (const { slice } of slices) {
      const slot = slice % this.#index.length;
      if (this.#index[slot] === slice) this.#changed[slot] = 1;
    }
  }

  /** Replaces the other replicas' part with these slice sums (the newest slice per slot kept). */
  setRemote(slices: Iterable<SliceAmount>): void {
    this.#remoteIndex.fill(-1);
    this.#remoteSum.fill(0);
    for (const { slice, amount } of slices) {
      const slot = slice % this.#remoteIndex.length;
      if (this.#remoteIndex[slot]! > slice) continue;
      this.#remoteIndex[slot] = slice;
      this.#remoteSum[slot] = amount;
    }
  }

  /** The other replicas' part of the sum at `now`. */
  remoteSum(now: number): number {
    const current = this.sliceOf(now);
    const oldest = current - this.slices;
    const inside = 1 - (now - current * this.sliceMs) / this.sliceMs;
    let total = 0;
    for (let slot = 0; slot < this.#remoteIndex.length; slot++) total += weighed(this.#remoteIndex[slot]!, this.#remoteSum[slot]!, current, oldest, inside);
    return total;
  }
}

/** A slice's part of the sum: nothing outside the window, its share of the oldest slice, the rest whole. */
function weighed(index: number, amount: number, current: number, oldest: number, inside: number): number {
  if (index < 0 || index > current || index < oldest) return 0;
  return index === oldest ? amount * inside : amount;
}
