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

/** Most slices per window: changed slots are marks in one 32-bit integer. */
export const MAX_SLICES = 30;

export class SlidingCounter {
  readonly windowMs: number;
  /** Length of one slice. */
  readonly sliceMs: number;
  /** Slices per window. */
  readonly slices: number;
  /**
   * One slot per slice number modulo the ring size (`slices + 1`: the oldest slice, partly in the window, is still
   * needed), as pairs: the slice's number at 2·slot, its sum at 2·slot+1. One array per counter, as a counter per
   * key is what a rule's memory is made of.
   */
  readonly #local: Float64Array;
  /** Local slots added to since the last `takeChanged`, one bit per slot. */
  #changed = 0;
  /**
   * The other replicas' part, in a ring of its own (its slots may hold other slice numbers than the local ones);
   * allocated by the first `setRemote`, so a process that shares nothing pays nothing for it.
   */
  #remote: Float64Array | undefined;

  constructor(windowMs: number, buckets = DEFAULT_SLICES) {
    if (!(windowMs > 0) || !Number.isInteger(buckets) || buckets < 1 || buckets > MAX_SLICES) {
      throw new RangeError(`expected a positive window and 1 to ${MAX_SLICES} buckets, got ${windowMs} ms, ${buckets}`);
    }
    this.windowMs = windowMs;
    this.sliceMs = windowMs / buckets;
    this.slices = buckets;
    this.#local = emptyRing(buckets + 1);
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
    const slot = index % (this.slices + 1);
    const ring = this.#local;
    if (ring[2 * slot] !== index) {
      ring[2 * slot] = index;
      ring[2 * slot + 1] = 0;
    }
    ring[2 * slot + 1]! += amount;
    this.#changed |= 1 << slot;
  }

  /** The sum over the window ending at `now`: this process's part and the other replicas'. */
  sum(now: number): number {
    const local = ringSum(this.#local, now, this.sliceMs, this.slices);
    return this.#remote === undefined ? local : local + ringSum(this.#remote, now, this.sliceMs, this.slices);
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
    for (let step = 1; step <= this.slices + 1; step++) {
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
    return this.#changed !== 0;
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
    const ring = this.#local;
    for (let slot = 0; slot <= this.slices; slot++) {
      if ((this.#changed & (1 << slot)) === 0) continue;
      const index = ring[2 * slot]!;
      if (index >= oldest && index <= current) out.push({ slice: index, amount: ring[2 * slot + 1]! });
    }
    this.#changed = 0;
    return out;
  }

  /** Marks these slices changed again (a write that failed), those still in the ring. */
  markChanged(slices: readonly SliceAmount[]): void {
    for (const { slice } of slices) {
      const slot = slice % (this.slices + 1);
      if (this.#local[2 * slot] === slice) this.#changed |= 1 << slot;
    }
  }

  /** Replaces the other replicas' part with these slice sums (the newest slice per slot kept). */
  setRemote(slices: Iterable<SliceAmount>): void {
    const ring = this.#remote ??= emptyRing(this.slices + 1);
    for (let slot = 0; slot <= this.slices; slot++) {
      ring[2 * slot] = -1;
      ring[2 * slot + 1] = 0;
    }
    for (const { slice, amount } of slices) {
      const slot = slice % (this.slices + 1);
      if (ring[2 * slot]! > slice) continue;
      ring[2 * slot] = slice;
      ring[2 * slot + 1] = amount;
    }
  }

  /** The other replicas' part of the sum at `now`. */
  remoteSum(now: number): number {
    return this.#remote === undefined ? 0 : ringSum(this.#remote, now, this.sliceMs, this.slices);
  }
}

/** A ring of `slots` (slice number, sum) pairs, every slot empty (slice number -1). */
function emptyRing(slots: number): Float64Array {
  const ring = new Float64Array(2 * slots);
  for (let slot = 0; slot < slots; slot++) ring[2 * slot] = -1;
  return ring;
}

/** A ring's sum over the window ending at `now`. */
function ringSum(ring: Float64Array, now: number, sliceMs: number, slices: number): number {
  const current = Math.floor(now / sliceMs);
  const oldest = current - slices;
  // The oldest slice lies partly before the window: weigh it by the part still inside.
  const inside = 1 - (now - current * sliceMs) / sliceMs;
  let total = 0;
  for (let i = 0; i < ring.length; i += 2) total += weighed(ring[i]!, ring[i + 1]!, current, oldest, inside);
  return total;
}

/** A slice's part of the sum: nothing outside the window, its share of the oldest slice, the rest whole. */
function weighed(index: number, amount: number, current: number, oldest: number, inside: number): number {
  if (index < 0 || index > current || index < oldest) return 0;
  return index === oldest ? amount * inside : amount;
}
