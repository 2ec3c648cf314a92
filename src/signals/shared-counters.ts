/**
 * @module signals/shared-counters
 * Volume counts shared by tollgate replicas. Every replica keeps deciding synchronously from its own counters; a
 * sync, every `syncInterval`, writes the slice sums this replica counted since the last sync (per rule and key) to
 * a shared store and reads the other replicas' sums for the keys it holds, which replace the remote part of those
 * counters (signals/sliding-counter.ts). A threshold then applies to the traffic of all replicas, overshot by at
 * most what the replicas count between two syncs (one interval of traffic, plus the time a sync takes).
 *
 * Bounded: at most `maxKeysPerSync` keys per rule are written and as many read per sync, the most recently counted
 * first (keys left over are written by the next sync; keys not read keep the remote part they had, which ages out
 * of the window like any slice); never more than one sync at a time (a tick finding one in flight is skipped). A
 * store that fails is logged (once, then at most once a minute) and counted; what was not written is written by the
 * next sync that succeeds, and meanwhile the replica counts on: the other replicas' part it holds ages out, so it
 * falls back to its own counts, a threshold per replica.
 *
 * Only volume counts are shared. Baselines learn from each replica's own traffic; holds (deny/approve until),
 * throttles and escalations are decided by each replica from the shared sum; authFailures flags and replay digests
 * stay per replica.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import type { VolumeRuleState } from './engine.ts';
import type { SliceAmount } from './sliding-counter.ts';
import type { ChangedKey, VolumeTracker } from './volume.ts';

/** One slice sum of this replica, to write. */
export interface SliceWrite {
  readonly rule: string;
  readonly shape: string;
  /** The engine's key id. */
  readonly key: string;
  readonly slice: number;
  readonly amount: number;
  /** Epoch ms at which the slice has left its window: the row may go then. */
  readonly expiresAt: number;
}

/** Which key's slices to read: those numbered `since` and after. */
export interface SliceQuery {
  readonly rule: string;
  readonly shape: string;
  readonly key: string;
  readonly since: number;
}

/** The other replicas' sum of one slice of a key. */
export interface SliceRead {
  readonly rule: string;
  readonly shape: string;
  readonly key: string;
  readonly slice: number;
  readonly amount: number;
}

/** Where replicas share their slice sums (PostgreSQL: signals/shared-postgres.ts). */
export interface SharedCounterStore {
  /** Writes `replica`'s slice sums, replacing what it wrote before for the same slices. */
  push(replica: string, rows: readonly SliceWrite[]): Promise<void>;
  /** The sums of every replica but `replica` for these keys, per slice. */
  pull(replica: string, wanted: readonly SliceQuery[]): Promise<SliceRead[]>;
  /** Deletes the slices that left their window before `before` (epoch ms); resolves to how many. */
  prune(before: number): Promise<number>;
  close(): Promise<void>;
}

export interface SyncResult {
  readonly ok: boolean;
  /** Keys whose slices were written. */
  readonly pushed: number;
  /** Keys whose other replicas' sums were read. */
  readonly pulled: number;
  /** Keys (of all rules) the read found other replicas' counts for. */
  readonly remoteKeys: number;
  readonly error?: Error;
}

export interface SharedCounterSyncOptions {
  /** The engine's volume rules in force (`SignalEngine.volumeRules`), read at each sync. */
  readonly rules: () => readonly VolumeRuleState[];
  /** The engine's clock (epoch ms). */
  readonly now: () => number;
  readonly store: SharedCounterStore;
  /** This replica's name in the store: unique per running process. */
  readonly replica: string;
  readonly intervalMs: number;
  readonly maxKeysPerSync: number;
  readonly logger?: Pick<Logger, 'warn' | 'info'>;
  /** After each sync (metrics). */
  readonly onSync?: (result: SyncResult) => void;
}

/** Rows whose slices left their window this long ago are deleted: replicas' clocks may differ a little. */
export const PRUNE_GRACE_MS = 60_000;
/** How often a replica prunes. */
export const PRUNE_EVERY_MS = 60_000;
/** Failures are logged once, then at most this often (with how many there were). */
const LOG_FAILURES_EVERY_MS = 60_000;

/** `<hostname>-<pid>`: the default replica name, unique per running process on hosts with unique names. */
export function defaultReplicaName(): string {
  return `${os.hostname()}-${process.pid}`;
}

export class SharedCounterSync {
  readonly replica: string;
  readonly #options: SharedCounterSyncOptions;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<SyncResult> | undefined;
  #stopped = false;
  #lastPrune = -Infinity;
  #failing: { since: number; failures: number; loggedAt: number } | undefined;
  #remoteKeys = 0;

  constructor(options: SharedCounterSyncOptions) {
    if (!(options.intervalMs > 0) || !(options.maxKeysPerSync > 0)) throw new RangeError(`expected a positive sync interval and key budget, got ${options.intervalMs} ms, ${options.maxKeysPerSync} keys`);
    this.#options = options;
    this.replica = options.replica;
  }

  /** Keys the last successful read found other replicas' counts for. */
  get remoteKeys(): number {
    return this.#remoteKeys;
  }

  /** Syncs every `intervalMs` (the timer does not keep the process alive). */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setInterval(() => {
      if (this.#inFlight === undefined) void this.syncNow();
    }, this.#options.intervalMs);
    this.#timer.unref();
  }

  /** One sync now; the one in flight, if any, instead of a second. Never rejects: failures are in the result. */
  syncNow(): Promise<SyncResult> {
    if (this.#inFlight !== undefined) return this.#inFlight;
    const run = this.#sync(true).finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = run;
    return run;
  }

  /** Stops the timer, lets a sync in flight end, writes what is left once more (no read), closes the store. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
    await this.#sync(false);
    await this.#options.store.close().catch((err: unknown) => this.#options.logger?.warn({ err }, 'shared signal counters: closing the store failed'));
  }

  async #sync(read: boolean): Promise<SyncResult> {
    const { store, replica, maxKeysPerSync } = this.#options;
    const now = this.#options.now();
    const rules = this.#options.rules();
    const taken: Array<{ tracker: VolumeTracker; changes: ChangedKey[] }> = [];
    const rows: SliceWrite[] = [];
    let pushed = 0;
    let pulled = 0;
    let remoteKeys = 0;
    try {
      for (const { rule, shape, tracker } of rules) {
        const changes = tracker.takeChanged(now, maxKeysPerSync);
        taken.push({ tracker, changes });
        const { sliceMs, slices } = tracker.slicing;
        for (const { id, slices: changed } of changes) {
          // A slice counts until `slices` more have begun after it, then leaves the window whole.
          for (const { slice, amount } of changed) rows.push({ rule, shape, key: id, slice, amount, expiresAt: Math.ceil((slice + slices + 1) * sliceMs) });
        }
        pushed += changes.length;
      }
      await store.push(replica, rows);
      taken.length = 0;
      if (read) {
        const wanted: SliceQuery[] = [];
        const byRule = new Map<string, { tracker: VolumeTracker; found: Map<string, SliceAmount[]> }>();
        for (const { rule, shape, tracker } of rules) {
          const since = Math.floor(now / tracker.slicing.sliceMs) - tracker.slicing.slices;
          const keys = tracker.recentKeys(maxKeysPerSync);
          for (const key of keys) wanted.push({ rule, shape, key, since });
          byRule.set(`${rule}\u0000${shape}`, { tracker, found: new Map(keys.map((k) => [k, []])) });
        }
        const found = await store.pull(replica, wanted);
        for (const r of found) byRule.get(`${r.rule}\u0000${r.shape}`)?.found.get(r.key)?.push({ slice: r.slice, amount: r.amount });
        // Replaced whole, empty included: a key the others stopped counting loses their part.
        for (const { tracker, found: keys } of byRule.values()) {
          for (const [key, slices] of keys) {
            if (tracker.setRemote(key, slices) && slices.length > 0) remoteKeys++;
          }
          pulled += keys.size;
        }
        this.#remoteKeys = remoteKeys;
        if (now - this.#lastPrune >= PRUNE_EVERY_MS) {
          await store.prune(now - PRUNE_GRACE_MS);
          this.#lastPrune = now;
        }
      }
      this.#recovered(now);
      const result: SyncResult = { ok: true, pushed, pulled, remoteKeys };
      this.#options.onSync?.(result);
      return result;
    } catch (err) {
      // What was taken and not written is written by the next sync.
      for (const { tracker, changes } of taken) tracker.restoreChanged(changes);
      this.#failed(err as Error, now);
      const result: SyncResult = { ok: false, pushed: 0, pulled: 0, remoteKeys: this.#remoteKeys, error: err as Error };
      this.#options.onSync?.(result);
      return result;
    }
  }

  #failed(err: Error, now: number): void {
    const logger = this.#options.logger;
    if (this.#failing === undefined) {
      this.#failing = { since: now, failures: 1, loggedAt: now };
      logger?.warn({ err, replica: this.replica }, 'shared signal counters: sync failed; counting on locally (other replicas\' counts age out, thresholds fall back to this replica\'s traffic)');
      return;
    }
    this.#failing.failures++;
    if (now - this.#failing.loggedAt >= LOG_FAILURES_EVERY_MS) {
      this.#failing.loggedAt = now;
      logger?.warn({ err, replica: this.replica, failures: this.#failing.failures, since: new Date(this.#failing.since).toISOString() }, 'shared signal counters: sync still failing');
    }
  }

  #recovered(now: number): void {
    if (this.#failing === undefined) return;
    this.#options.logger?.info({ replica: this.replica, failures: this.#failing.failures, downForMs: now - this.#failing.since }, 'shared signal counters: sync works again');
    this.#failing = undefined;
  }
}
