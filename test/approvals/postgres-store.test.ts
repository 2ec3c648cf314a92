/**
 * The PostgreSQL approval store against a real PostgreSQL 15 server (Debian's, from the provisioning cache): the same
 * store contract the SQLite store passes, each test on a database of its own; then what only a shared server shows:
 * password authentication from a secret source, the schema migrated once and versioned, two tollgate processes
 * migrating one database at the same moment, a newer schema refused, placeholders numbered outside literals.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ensurePostgres } from '../../scripts/provision.ts';
import { startPostgres, type PostgresServer } from '../../scripts/lib/postgres.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { runCommand } from '../../scripts/lib/process.ts';
import { numberPlaceholders, openPostgresStore, postgresConnection, PostgresDriver, type PostgresConnection } from '../../src/approvals/postgres.ts';
import { migrate, MIGRATIONS, SCHEMA_VERSION } from '../../src/approvals/migrations.ts';
import { ApprovalStoreError } from '../../src/approvals/store.ts';
import { configSchema } from '../../src/config/schema.ts';
import { newRequest, storeContract, T0 } from './store-contract.ts';

let server: PostgresServer;

before(async () => {
  await ensurePostgres();
  server = await startPostgres();
});
after(async () => { await server?.stop(); });

/** A connection to a fresh database, as `approvals.store.postgres` with the password in an environment variable. */
async function freshDatabase(): Promise<PostgresConnection> {
  const database = await server.createDatabase();
  process.env['TEST_APPROVALS_PG_PASSWORD'] = server.password;
  const config = configSchema.parse({ approvals: { store: { postgres: { url: server.url(database), password: { env: 'TEST_APPROVALS_PG_PASSWORD' }, poolSize: 4 } } } });
  return postgresConnection(config.approvals.store.postgres!);
}

storeContract('postgres', async () => openPostgresStore(await freshDatabase(), {}, T0));

test('postgres: the schema is migrated once and its version recorded; opening again applies nothing', async () => {
  const connection = await freshDatabase();
  await (await openPostgresStore(connection, {}, T0)).close();
  const driver = new PostgresDriver(connection);
  try {
    const rows = await driver.query('SELECT version, name, applied_at FROM schema_migrations ORDER BY version', []);
    assert.deepEqual(rows.map((r) => ({ version: Number(r['version']), name: r['name'], applied_at: Number(r['applied_at']) })),
      MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_at: T0 })));
    assert.deepEqual(await migrate(driver, T0 + 1), []);
  } finally {
    await driver.close();
  }
});

test('postgres: two tollgate processes opening a new database at the same moment migrate it once, both open', async () => {
  const connection = await freshDatabase();
  const startAt = Date.now() + 3_000;
  // Each child waits for the same instant, then opens the store (and so migrates) and files one request.
  const child = (n: number) => runCommand(process.execPath, ['--input-type=module', '-e', `
    import { openPostgresStore } from ${JSON.stringify(`${REPO_ROOT}/src/approvals/postgres.ts`)};
    import { newRequest } from ${JSON.stringify(`${REPO_ROOT}/test/approvals/store-contract.ts`)};
    const connection = JSON.parse(process.env.CONNECTION);
    connection.password = () => process.env.TEST_APPROVALS_PG_PASSWORD;
    while (Date.now() < ${startAt}) await new Promise((r) => setTimeout(r, 5));
    const store = await openPostgresStore(connection, {}, ${T0 + n});
    await store.open(newRequest({}, 'topic-${n}'), ${T0});
    await store.close();
    console.log('opened ${n}');
  `], { env: { ...process.env, CONNECTION: JSON.stringify({ ...connection, password: undefined }) }, timeoutMs: 60_000 });
  const results = await Promise.all([child(1), child(2)]);
  for (const [i, r] of results.entries()) assert.equal(r.code, 0, `child ${i + 1}: ${r.stderr}`);
  assert.deepEqual(results.map((r) => r.stdout.trim()).sort(), ['opened 1', 'opened 2']);
  const versions = (await server.psql('SELECT version FROM schema_migrations ORDER BY version', connection.database)).trim().split('\n');
  assert.deepEqual(versions, MIGRATIONS.map((m) => String(m.version)), 'each migration recorded once');
  assert.equal((await server.psql('SELECT count(*) FROM approval_requests', connection.database)).trim(), '2');
});

test('postgres: a database at a schema version newer than this tollgate knows is refused, not misread', async () => {
  const connection = await freshDatabase();
  await (await openPostgresStore(connection, {}, T0)).close();
  await server.psql(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${SCHEMA_VERSION + 1}, 'from the future', ${T0})`, connection.database);
  await assert.rejects(openPostgresStore(connection, {}, T0), (error: unknown) => {
    assert.ok(error instanceof ApprovalStoreError);
    assert.match(error.message, new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this tollgate knows \\(${SCHEMA_VERSION}\\)`));
    return true;
  });
});

test('postgres: a wrong password fails the open with the server\'s words; the request filed with the right one reads back', async () => {
  const connection = await freshDatabase();
  await assert.rejects(openPostgresStore({ ...connection, password: () => 'not-the-password' }, {}, T0), /password authentication failed for user "tollgate"/);
  const store = await openPostgresStore(connection, {}, T0);
  try {
    const filed = newRequest();
    await store.open(filed, T0);
    assert.equal((await store.get(filed.id))?.rule, filed.rule);
  } finally {
    await store.close();
  }
});

test('postgres: the connection comes from the URL, the fields override it, and a password never sits in the URL', () => {
  const parse = (postgres: unknown) => postgresConnection(configSchema.parse({ approvals: { store: { postgres } } }).approvals.store.postgres!);
  const fromUrl = parse({ url: 'postgresql://svc-tollgate@db.internal:6432/approvals' });
  assert.deepEqual({ ...fromUrl }, { host: 'db.internal', port: 6432, database: 'approvals', user: 'svc-tollgate', poolSize: 10 });
  assert.deepEqual({ ...parse({ url: 'postgres://a@h/d', host: '/var/run/postgresql', database: 'other' }) }, { host: '/var/run/postgresql', port: 5432, database: 'other', user: 'a', poolSize: 10 });
  assert.equal(parse({ host: 'h', user: 'tollgate' }).database, 'tollgate', 'the database defaults to the user name');
  const refused = configSchema.safeParse({ approvals: { store: { postgres: { url: 'postgres://a:secret@h/d' } } } });
  assert.equal(refused.success, false);
  assert.match(JSON.stringify(refused.error?.issues), /expected no password in the URL/);
  assert.doesNotMatch(JSON.stringify(refused.error?.issues), /secret/, 'the error does not repeat it');
});

test('postgres: ? placeholders are numbered in order, and a ? inside a literal or identifier is left alone', () => {
  assert.equal(numberPlaceholders(`SELECT a FROM t WHERE b = ? AND c = '?' AND "d?" IN (?, ?)`), `SELECT a FROM t WHERE b = $1 AND c = '?' AND "d?" IN ($2, $3)`);
});
