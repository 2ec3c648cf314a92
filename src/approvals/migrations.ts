/**
 * @module approvals/migrations
 * The approvals schema, as numbered migrations applied in order and recorded in `schema_migrations`, so a store
 * opened by a newer tollgate is upgraded in place and one opened by an older tollgate is refused rather than misread.
 *
 * The SQL is portable between SQLite and PostgreSQL: TEXT, INTEGER and BIGINT columns only (times are epoch
 * milliseconds, booleans 0/1, structured values JSON text), `?` placeholders (a PostgreSQL driver numbers them),
 * partial unique indexes (both support `CREATE UNIQUE INDEX … WHERE`). A migration is never edited once released:
 * changes are new migrations.
 */
import { ApprovalStoreError } from './store.ts';
import type { SqlDriver } from './sql.ts';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'approval requests, approver decisions, grants',
    statements: [
      `CREATE TABLE approval_requests (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        rule TEXT NOT NULL,
        mode TEXT NOT NULL,
        requester_key TEXT NOT NULL,
        requester TEXT NOT NULL,
        scope_key TEXT NOT NULL,
        scope TEXT NOT NULL,
        summary TEXT NOT NULL,
        reason TEXT NOT NULL,
        context TEXT NOT NULL,
        approver_groups TEXT NOT NULL,
        min_approvals INTEGER NOT NULL,
        grant_ms BIGINT NOT NULL,
        one_time INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        decided_at BIGINT
      )`,
      // One pending request per requester, rule and scope: retries find it instead of filing another.
      `CREATE UNIQUE INDEX approval_requests_one_pending ON approval_requests (requester_key, rule, scope_key) WHERE state = 'pending'`,
      'CREATE INDEX approval_requests_by_state ON approval_requests (state, expires_at)',
      `CREATE TABLE approval_decisions (
        request_id TEXT NOT NULL REFERENCES approval_requests (id),
        approver_key TEXT NOT NULL,
        approver TEXT NOT NULL,
        verdict TEXT NOT NULL,
        reason TEXT,
        decided_at BIGINT NOT NULL,
        PRIMARY KEY (request_id, approver_key)
      )`,
      `CREATE TABLE approval_grants (
        id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL UNIQUE REFERENCES approval_requests (id),
        requester_key TEXT NOT NULL,
        scope_key TEXT NOT NULL,
        one_time INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT,
        revoked_at BIGINT,
        revoked_by TEXT,
        revoke_reason TEXT
      )`,
      'CREATE INDEX approval_grants_by_requester ON approval_grants (requester_key, expires_at)',
    ],
  },
];

/** The newest schema version this tollgate knows. */
export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/**
 * Brings the store to `SCHEMA_VERSION`, one transaction per migration (its row recorded with it). Refuses a store
 * whose schema is newer than this tollgate's. Returns the versions applied.
 */
export async function migrate(driver: SqlDriver, now: number, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  // Under the migration lock too: two PostgreSQL sessions creating the same table at once collide on its catalog
  // entry (a unique violation) even with IF NOT EXISTS.
  await driver.transaction(async (tx) => {
    await tx.lockForMigration();
    await tx.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)', []);
  });
  const applied: number[] = [];
  for (const migration of migrations) {
    const done = await driver.transaction(async (tx) => {
      await tx.lockForMigration();
      const rows = await tx.query<{ version: number | string }>('SELECT version FROM schema_migrations', []);
      const versions = new Set(rows.map((r) => Number(r.version)));
      const newest = Math.max(0, ...versions);
      const known = migrations.at(-1)?.version ?? 0;
      if (newest > known) {
        throw new ApprovalStoreError(`the approvals store is at schema version ${newest}, newer than this tollgate knows (${known}): run a tollgate at least as new as the one that upgraded it`);
      }
      if (versions.has(migration.version)) return false;
      for (const statement of migration.statements) await tx.run(statement, []);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [migration.version, migration.name, now]);
      return true;
    });
    if (done) applied.push(migration.version);
  }
  return applied;
}
