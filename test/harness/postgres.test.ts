/**
 * The PostgreSQL harness: a server from the provisioning cache on a free 127.0.0.1 port, its password required over
 * TCP, run as an unprivileged user when the tests run as root, and gone with its folder after `stop()`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import pg from 'pg';
import { ensurePostgres } from '../../scripts/provision.ts';
import { startPostgres } from '../../scripts/lib/postgres.ts';
import { POSTGRES_MAJOR } from '../../scripts/lib/paths.ts';
import { isProcessAlive } from '../../scripts/lib/process.ts';

test('startPostgres: a PostgreSQL server of the pinned major version, password over TCP, stopped and removed by stop()', async () => {
  await ensurePostgres();
  const server = await startPostgres();
  try {
    assert.match(server.version, new RegExp(`^${POSTGRES_MAJOR}\\.\\d+$`));
    const client = new pg.Client({ host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres' });
    await client.connect();
    const { rows } = await client.query<{ version: string }>("SELECT current_setting('server_version') AS version");
    await client.end();
    assert.equal(rows[0]?.version.split(' ')[0], server.version);
    const wrong = new pg.Client({ host: server.host, port: server.port, user: server.user, password: 'wrong', database: 'postgres' });
    await assert.rejects(wrong.connect(), /password authentication failed/);
    const db = await server.createDatabase();
    assert.equal((await server.psql('SELECT current_database()', db)).trim(), db);
    if (process.getuid?.() === 0) {
      const uid = fs.readFileSync(`/proc/${server.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1];
      assert.equal(uid, '65534', 'as root, the server runs as nobody');
    }
  } finally {
    await server.stop();
  }
  assert.equal(isProcessAlive(server.pid), false);
  assert.equal(fs.existsSync(server.dir), false);
});
