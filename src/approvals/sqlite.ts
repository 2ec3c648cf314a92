/**
 * @module approvals/sqlite
 * The embedded approval store: one SQLite file through Node's own `node:sqlite` (no native module to build).
 *
 * node:sqlite is synchronous and one connection serves the process, so work is queued: a transaction's statements
 * run between its BEGIN and COMMIT with nothing of another caller in between, even when the transaction awaits.
 * `BEGIN IMMEDIATE` takes the database's write lock at once, and `busy_timeout` waits for it, so several tollgate
 * processes on one host may share the file (WAL mode lets readers go on meanwhile).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ApprovalStoreError } from './store.ts';
import { SqlApprovalStore, type SqlDriver, type SqlRow, type SqlTransaction, type SqlValue } from './sql.ts';

/** How long a statement waits for another process's write lock before failing. */
const BUSY_TIMEOUT_MS = 5_000;

export class SqliteDriver implements SqlDriver {
  readonly #db: DatabaseSync;
  /** The tail of the queue: each operation starts when the previous one settled. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(file: string) {
    if (file !== ':memory:') {
      try {
        fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      } catch (error) {
        throw new ApprovalStoreError(`approvals.store.sqlite.path: cannot create the folder of ${file}: ${(error as Error).message}`);
      }
    }
    try {
      this.#db = new DatabaseSync(file);
      this.#db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      if (file !== ':memory:') this.#db.exec('PRAGMA journal_mode = WAL');
      this.#db.exec('PRAGMA foreign_keys = ON');
    } catch (error) {
      throw new ApprovalStoreError(`approvals.store.sqlite.path: cannot open ${file} as a SQLite database: ${(error as Error).message}`);
    }
  }

  #queued<T>(work: () => Promise<T> | T): Promise<T> {
    const result = this.#tail.then(work, work);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  #query<T extends SqlRow>(sql: string, params: readonly SqlValue[]): T[] {
    return this.#db.prepare(sql).all(...params) as T[];
  }

  #run(sql: string, params: readonly SqlValue[]): number {
    return Number(this.#db.prepare(sql).run(...params).changes);
  }

  query<T extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[]): Promise<T[]> {
    return this.#queued(() => this.#query<T>(sql, params));
  }

  run(sql: string, params: readonly SqlValue[]): Promise<number> {
    return this.#queued(() => this.#run(sql, params));
  }

  transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    return this.#queued(async () => {
      this.#db.exec('BEGIN IMMEDIATE');
      const tx: SqlTransaction = {
        lockRows: '',
        lockForMigration: async () => {},
        // One process's file: other processes sharing it find changes by re-reading (approvals.pollInterval).
        announce: async () => {},
        query: async <R extends SqlRow>(sql: string, params: readonly SqlValue[]) => this.#query<R>(sql, params),
        run: async (sql, params) => this.#run(sql, params),
      };
      try {
        const result = await work(tx);
        this.#db.exec('COMMIT');
        return result;
      } catch (error) {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  isUniqueViolation(error: unknown): boolean {
    const e = error as { code?: string; errcode?: number; message?: string };
    // SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
    return e?.code === 'ERR_SQLITE_ERROR' && (e.errcode === 2067 || e.errcode === 1555);
  }

  close(): Promise<void> {
    return this.#queued(() => {
      if (this.#db.isOpen) this.#db.close();
    });
  }
}

/** Opens (creating and migrating as needed) the SQLite approval store at `file` (`:memory:` for tests). */
export function openSqliteStore(file: string, now?: number): Promise<SqlApprovalStore> {
  return SqlApprovalStore.open(new SqliteDriver(file), now);
}
