/**
 * The embedded SQLite approval store (node:sqlite): the store contract, plus what only a file shows: the schema is
 * migrated once and versioned, approvals survive a restart, a store upgraded by a newer tollgate is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openSqliteStore, SqliteDriver } from '../../src/approvals/sqlite.ts';
import { migrate, MIGRATIONS, SCHEMA_VERSION } from '../../src/approvals/migrations.ts';
import { ApprovalStoreError } from '../../src/approvals/store.ts';
import { BOB, newRequest, storeContract, T0 } from './store-contract.ts';

storeContract('sqlite', () => openSqliteStore(':memory:', T0));

const tempFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-approvals-')), 'nested', 'approvals.sqlite');

test('sqlite: the file and its folder are created, the schema migrated and its version recorded once', async () => {
  const file = tempFile();
  const store = await openSqliteStore(file, T0);
  await store.close();
  const db = new DatabaseSync(file);
  const rows = db.prepare('SELECT version, name, applied_at FROM schema_migrations').all();
  db.close();
  assert.deepEqual(rows.map((r) => ({ ...r })), MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_at: T0 })));
  const driver = new SqliteDriver(file);
  assert.deepEqual(await migrate(driver, T0 + 1), [], 'nothing left to apply on a second open');
  await driver.close();
});

test('sqlite: requests, decisions and grants survive closing and reopening the file', async () => {
  const file = tempFile();
  const filed = newRequest();
  const first = await openSqliteStore(file, T0);
  await first.open(filed, T0);
  await first.decide(filed.id, { approver: BOB, verdict: 'approve', reason: 'change ticket CHG-1', at: T0 + 1 }, 'grt_kept');
  await first.close();
  const second = await openSqliteStore(file, T0 + 2);
  const read = await second.get(filed.id);
  await second.close();
  assert.equal(read?.state, 'approved');
  assert.equal(read?.grant?.id, 'grt_kept');
  assert.equal(read?.decisions[0]?.reason, 'change ticket CHG-1');
});

test('sqlite: a store at a schema version newer than this tollgate knows is refused, not misread', async () => {
  const file = tempFile();
  await (await openSqliteStore(file, T0)).close();
  const db = new DatabaseSync(file);
  db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(SCHEMA_VERSION + 1, 'from the future', T0);
  db.close();
  await assert.rejects(openSqliteStore(file, T0), (error: unknown) => {
    assert.ok(error instanceof ApprovalStoreError);
    assert.match(error.message, new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this tollgate knows \\(${SCHEMA_VERSION}\\)`));
    return true;
  });
});

test('sqlite: a later migration is applied on open, in order, to a store made by an older tollgate', async () => {
  const file = tempFile();
  const driver = new SqliteDriver(file);
  assert.deepEqual(await migrate(driver, T0, MIGRATIONS), MIGRATIONS.map((m) => m.version));
  const next = { version: SCHEMA_VERSION + 1, name: 'a note per request', statements: ['ALTER TABLE approval_requests ADD COLUMN note TEXT'] };
  assert.deepEqual(await migrate(driver, T0 + 1, [...MIGRATIONS, next]), [SCHEMA_VERSION + 1]);
  const columns = await driver.query<{ name: string }>('SELECT name FROM pragma_table_info(\'approval_requests\')', []);
  assert.ok(columns.some((c) => c.name === 'note'));
  await driver.close();
});

test('sqlite: a path that cannot be a database is a clear error naming the setting', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-approvals-'));
  assert.throws(() => new SqliteDriver(dir), /approvals\.store\.sqlite\.path: cannot open .* as a SQLite database/);
});
