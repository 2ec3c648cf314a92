/**
 * @module signals/shared-runtime
 * The sync of shared volume counts as a running tollgate holds it: `signals.shared` starts it, a reload that
 * changes it restarts it (the old sync writes once more and closes its connections), removing it stops it; the
 * drain stops it. The PostgreSQL store opens lazily: a database down at start does not keep tollgate from serving.
 */
import type { SignalsSettingsConfig } from '../config/signals-schema.ts';
import { postgresConnection } from '../approvals/postgres.ts';
import { defaultReplicaName, SharedCounterSync, type SharedCounterSyncOptions } from './shared-counters.ts';
import { PostgresCounterStore } from './shared-postgres.ts';

export interface SharedCountersRuntime {
  /**
   * Puts `signals.shared` in force: starts the sync when set, stops it when removed, restarts it when changed
   * (the old one writes once more and closes). Throws, changing nothing, when its connection cannot be built (an
   * unreadable password file).
   */
  ensure(shared: SignalsSettingsConfig['shared']): void;
  /** The running sync, if any (tests call `syncNow`). */
  current(): SharedCounterSync | undefined;
  /** Stops the sync: a last write, then the store closed. */
  close(): Promise<void>;
}

export function createSharedCountersRuntime(options: Pick<SharedCounterSyncOptions, 'rules' | 'now' | 'logger' | 'onSync'>): SharedCountersRuntime {
  let running: { readonly config: string; readonly sync: SharedCounterSync } | undefined;
  let stopping: Promise<void> = Promise.resolve();
  const stop = () => {
    const old = running?.sync;
    running = undefined;
    if (old !== undefined) stopping = Promise.all([stopping, old.stop()]).then(() => {});
  };
  return {
    ensure(shared) {
      const config = JSON.stringify(shared ?? null);
      if (running?.config === config) return;
      if (shared === undefined) {
        stop();
        return;
      }
      const connection = postgresConnection(shared.postgres, 'signals.shared.postgres');
      const store = new PostgresCounterStore(connection, options.logger === undefined ? {} : { logger: options.logger });
      const sync = new SharedCounterSync({
        ...options, store, replica: shared.replica ?? defaultReplicaName(), intervalMs: shared.syncInterval, maxKeysPerSync: shared.maxKeysPerSync,
      });
      stop();
      running = { config, sync };
      sync.start();
      options.logger?.info({ store: store.where, replica: sync.replica, intervalMs: shared.syncInterval }, 'shared signal counters: syncing volume counts with other replicas');
    },
    current: () => running?.sync,
    async close() {
      stop();
      await stopping;
    },
  };
}
