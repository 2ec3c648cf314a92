/**
 * @module signals/shared-postgres
 * The store of shared signal counters in PostgreSQL: one row per volume rule, key, slice and replica,
 *
 *   signal_slices(rule, shape, key, slice, replica, amount, expires_at)
 *
 * `rule` is the rule's name and `shape` its state shape (signals/volume.ts `volumeStateShape`): a rule whose window
 * or key parts changed reads none of the rows its old shape wrote. `key` is the engine's key id (issuer and subject
 * of the principal, the resource) as JSON text, the same in every process (PostgreSQL text holds no NUL, which the
 * id uses as a separator). `slice` is the slice's number from the epoch; `expires_at` (epoch ms) is when the slice
 * has left its window, which is what pruning reads, whatever the rule (removed, reshaped) that wrote it.
 *
 * Each replica writes only its own rows and replaces their amount (`ON CONFLICT … DO UPDATE`): writing a slice twice
 * is harmless, and no replica's write waits on another's. The table is created if missing, under the same
 * transaction-scoped advisory lock as the approvals migrations (two sessions creating one table at once collide on
 * its catalog entry even with IF NOT EXISTS). Batches go as one JSON parameter (`jsonb_to_recordset`): one statement
 * per write or read, whatever the number of rows, and far from the 65535-parameter limit.
 */
import type { Logger } from 'pino';
import { PostgresDriver, describeConnection, type PostgresConnection } from '../approvals/postgres.ts';
import type { SharedCounterStore, SliceQuery, SliceRead, SliceWrite } from './shared-counters.ts';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS signal_slices (
    rule TEXT NOT NULL,
    shape TEXT NOT NULL,
    key TEXT NOT NULL,
    slice BIGINT NOT NULL,
    replica TEXT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (rule, shape, key, slice, replica)
  )`,
  'CREATE INDEX IF NOT EXISTS signal_slices_by_expiry ON signal_slices (expires_at)',
];

const PUSH = `INSERT INTO signal_slices (rule, shape, key, slice, replica, amount, expires_at)
  SELECT r.rule, r.shape, r.key, r.slice, ?, r.amount, r.expires_at
  FROM jsonb_to_recordset(?::jsonb) AS r(rule TEXT, shape TEXT, key TEXT, slice BIGINT, amount DOUBLE PRECISION, expires_at BIGINT)
  ON CONFLICT (rule, shape, key, slice, replica) DO UPDATE SET amount = EXCLUDED.amount, expires_at = EXCLUDED.expires_at`;

const PULL = `SELECT s.rule, s.shape, s.key, s.slice, SUM(s.amount) AS amount
  FROM jsonb_to_recordset(?::jsonb) AS w(rule TEXT, shape TEXT, key TEXT, since BIGINT)
  JOIN signal_slices s ON s.rule = w.rule AND s.shape = w.shape AND s.key = w.key AND s.slice >= w.since
  WHERE s.replica <> ?
  GROUP BY s.rule, s.shape, s.key, s.slice`;

/** The engine's key id as stored: JSON text (no NUL; one id, one text). */
export const storedKey = (id: string): string => JSON.stringify(id);

export class PostgresCounterStore implements SharedCounterStore {
  readonly where: string;
  readonly #driver: PostgresDriver;
  /** The table exists (this process made sure of it); retried at the next call after a failure. */
  #ready: Promise<void> | undefined;

  constructor(connection: PostgresConnection, options: { readonly logger?: Pick<Logger, 'warn' | 'info'> } = {}) {
    this.where = describeConnection(connection);
    this.#driver = new PostgresDriver(connection, { ...options, purpose: 'shared signal counters' });
  }

  #ensureTable(): Promise<void> {
    this.#ready ??= this.#driver.transaction(async (tx) => {
      await tx.lockForMigration();
      for (const statement of SCHEMA) await tx.run(statement, []);
    }).catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  async push(replica: string, rows: readonly SliceWrite[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#ensureTable();
    const batch = rows.map((r) => ({ rule: r.rule, shape: r.shape, key: storedKey(r.key), slice: r.slice, amount: r.amount, expires_at: r.expiresAt }));
    await this.#driver.run(PUSH, [replica, JSON.stringify(batch)]);
  }

  async pull(replica: string, wanted: readonly SliceQuery[]): Promise<SliceRead[]> {
    if (wanted.length === 0) return [];
    await this.#ensureTable();
    const keys = new Map(wanted.map((w) => [storedKey(w.key), w.key]));
    const batch = wanted.map((w) => ({ rule: w.rule, shape: w.shape, key: storedKey(w.key), since: w.since }));
    const rows = await this.#driver.query<{ rule: string; shape: string; key: string; slice: string | number; amount: string | number }>(PULL, [JSON.stringify(batch), replica]);
    return rows.map((r) => ({ rule: r.rule, shape: r.shape, key: keys.get(r.key) ?? JSON.parse(r.key) as string, slice: Number(r.slice), amount: Number(r.amount) }));
  }

  async prune(before: number): Promise<number> {
    await this.#ensureTable();
    return this.#driver.run('DELETE FROM signal_slices WHERE expires_at < ?', [before]);
  }

  close(): Promise<void> {
    return this.#driver.close();
  }
}
