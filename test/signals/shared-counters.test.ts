/**
 * Volume counts shared by tollgate replicas through one real PostgreSQL database: each "replica" is a SignalEngine
 * of its own with its own store connection and replica name, on a clock the test moves, and syncs only when the
 * test says so (`syncNow`), never on a timer. A threshold then applies to the sum of all replicas; slices that leave
 * the window stop counting; a rule whose window changed starts over in the database too; a replica started later
 * sees the others' counts once it holds the key; a database that goes away is counted and logged while decisions
 * go on from local counts, and what was counted meanwhile is written once it is back; a sync is bounded in keys.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import pino from 'pino';
import { ensurePostgres } from '../../scripts/provision.ts';
import { startPostgres, type PostgresServer } from '../../scripts/lib/postgres.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { configSchema } from '../../src/config/schema.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { SignalEngine } from '../../src/signals/engine.ts';
import { PRUNE_EVERY_MS, PRUNE_GRACE_MS, SharedCounterSync, type SyncResult } from '../../src/signals/shared-counters.ts';
import { PostgresCounterStore } from '../../src/signals/shared-postgres.ts';
import { createSharedCountersRuntime } from '../../src/signals/shared-runtime.ts';
import { startServer } from '../../src/server.ts';
import type { PostgresConnection } from '../../src/approvals/postgres.ts';
import type { Principal } from '../../src/core/principal.ts';
import type { KafkaAction } from '../../src/core/action.ts';

let server: PostgresServer;
before(async () => {
  await ensurePostgres();
  server = await startPostgres();
});
after(async () => { await server?.stop(); });

const T0 = Date.parse('2026-11-23T10:00:00Z');
const alice: Principal = { subject: 'alice', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const fetchOf = (topic: string): KafkaAction => ({ kind: 'kafka', api: 'Fetch', operation: 'consume', topic });

const volumeRule = (window = '1m', limit = 50) => ({
  name: 'payments-fetch', match: { kafka: { operation: 'consume' } },
  signal: { volume: { measure: 'fetchedRecords', window, limit }, effect: 'deny' },
});

const connectionTo = (database: string, port = server.port): PostgresConnection => ({
  host: server.host, port, database, user: server.user, password: () => server.password, poolSize: 2,
});

/** One replica: its engine (rules as given), its store and sync; `clock` is shared by the test's replicas. */
function replica(name: string, connection: PostgresConnection, clock: { now: number }, options: { rules?: unknown[]; maxKeysPerSync?: number } = {}) {
  const engine = new SignalEngine({ now: () => clock.now });
  const load = (rules: unknown[]) => {
    const config = configSchema.parse({ rules });
    engine.update(compilePolicy(config.rules, { now: () => clock.now }).signals, { maxKeys: config.signals.maxKeys, maxThrottleMs: config.signals.maxThrottle });
  };
  load(options.rules ?? [volumeRule()]);
  const results: SyncResult[] = [];
  const warnings: unknown[] = [];
  const sync = new SharedCounterSync({
    rules: () => engine.volumeRules(), now: () => clock.now, store: new PostgresCounterStore(connection), replica: name,
    intervalMs: 1000, maxKeysPerSync: options.maxKeysPerSync ?? 1000,
    logger: { warn: (o: unknown) => warnings.push(o), info: () => {} },
    onSync: (r) => results.push(r),
  });
  const fetch = (records: number, topic = 'payments') => engine.measure(alice, [{ action: fetchOf(topic), amounts: { fetchedRecords: records } }]);
  return { name, engine, sync, load, fetch, results, warnings };
}

async function syncAll(...replicas: ReadonlyArray<ReturnType<typeof replica>>): Promise<void> {
  for (const r of replicas) {
    const result = await r.sync.syncNow();
    assert.equal(result.ok, true, `${r.name} synced: ${result.error?.message}`);
  }
}

async function freshDatabase() {
  const database = await server.createDatabase();
  return { database, connection: connectionTo(database), count: async (where = 'true') => Number(await server.psql(`SELECT count(*) FROM signal_slices WHERE ${where}`, database)) };
}

test('two replicas each count 30 against a limit of 50: after a sync each sees 60, and the next request breaches on both', async () => {
  const { connection, count } = await freshDatabase();
  const clock = { now: T0 };
  const a = replica('replica-a', connection, clock);
  const b = replica('replica-b', connection, clock);
  try {
    assert.deepEqual(a.fetch(30), [], 'A alone: 30 of 50');
    assert.deepEqual(b.fetch(30), [], 'B alone: 30 of 50');
    clock.now += 200;
    // A writes before B has: it reads nothing yet; B then reads A's 30; A's second sync reads B's.
    await syncAll(a, b, a);
    assert.equal(await count(), 2, 'one row per replica: the key\'s one slice');
    assert.equal(await count("replica = 'replica-a' AND amount = 30"), 1);
    const [onA] = a.fetch(1);
    const [onB] = b.fetch(1);
    assert.equal(onA?.observed, 61);
    assert.equal(onA?.effect, 'deny');
    assert.equal(onB?.observed, 61);
    assert.equal(b.results.at(-1)?.remoteKeys, 1);
    // A replica's rows hold its whole sum per slice, rewritten (not added) at each sync.
    await syncAll(a);
    assert.equal(await count("replica = 'replica-a' AND amount = 31"), 1);
    assert.equal(await count(), 2);
  } finally {
    await a.sync.stop();
    await b.sync.stop();
  }
});

test('slices that leave the window stop counting, remote ones as local ones; old rows are pruned', async () => {
  const { connection, count } = await freshDatabase();
  const clock = { now: T0 };
  const a = replica('replica-a', connection, clock);
  const b = replica('replica-b', connection, clock);
  try {
    a.fetch(30);
    b.fetch(30);
    await syncAll(a, b, a);
    assert.equal(a.engine.volumeRules()[0]!.tracker.remoteSum(a.engine.volumeRules()[0]!.tracker.recentKeys(1)[0]!, clock.now), 30);
    // 30 s later B counts 10 more; a minute after the first counts, only those 10 are in the window.
    clock.now += 30_000;
    b.fetch(10);
    await syncAll(b, a);
    clock.now += 36_000;
    assert.deepEqual(a.fetch(1), [], 'A: its own 1 and B\'s 10; the 30 + 30 left the window');
    const [tracker] = a.engine.volumeRules();
    const [key] = tracker!.tracker.recentKeys(1);
    assert.equal(tracker!.tracker.remoteSum(key!, clock.now), 10);
    await syncAll(a);
    assert.equal(tracker!.tracker.remoteSum(key!, clock.now), 10, 'read again: still only B\'s 10');
    // Long after: every slice expired; the next sync that prunes deletes the rows.
    clock.now += 60_000 + PRUNE_GRACE_MS + PRUNE_EVERY_MS;
    assert.equal(await count(), 4, 'A\'s 30 and 1, B\'s 30 and 10');
    await syncAll(a);
    assert.equal(await count(), 0, 'expired rows pruned');
    assert.equal(tracker!.tracker.remoteSum(key!, clock.now), 0);
  } finally {
    await a.sync.stop();
    await b.sync.stop();
  }
});

test('a rule whose window changed does not read the rows of its old shape (nor do replicas still on the old one read its rows)', async () => {
  const { connection, count } = await freshDatabase();
  const clock = { now: T0 };
  const a = replica('replica-a', connection, clock);
  const b = replica('replica-b', connection, clock);
  try {
    a.fetch(40);
    await syncAll(a);
    b.load([volumeRule('2m')]);
    b.fetch(20);
    await syncAll(b, a);
    assert.deepEqual(b.fetch(1), [], 'B, 2m window: 21 of its own; A\'s 40 were counted under the 1m window');
    assert.equal(b.results.at(-1)?.remoteKeys, 0);
    assert.deepEqual(a.fetch(1), [], 'A, 1m window: 41 of its own; B\'s 20 are under another shape');
    assert.equal(await count(), 2, 'both shapes\' rows are there, apart');
    // B back on the 1m window: a new tracker, which reads A's rows.
    b.load([volumeRule('1m')]);
    b.fetch(1);
    await syncAll(a, b);
    const [o] = b.fetch(9);
    assert.equal(o?.observed, 41 + 1 + 9, 'A\'s 41, B\'s 10 counted since (its 20 under the 2m window are not carried over)');
  } finally {
    await a.sync.stop();
    await b.sync.stop();
  }
});

test('a replica started later sees the others\' current sums for a key once it holds that key', async () => {
  const { connection } = await freshDatabase();
  const clock = { now: T0 };
  const a = replica('replica-a', connection, clock);
  const b = replica('replica-b', connection, clock);
  const c = replica('replica-c', connection, clock);
  try {
    a.fetch(30);
    b.fetch(15);
    await syncAll(a, b);
    clock.now += 5_000;
    await syncAll(c);
    assert.equal(c.results.at(-1)?.pulled, 0, 'C holds no key yet: nothing to read');
    assert.deepEqual(c.fetch(1), [], 'C\'s first request is decided on what C knows: 1');
    await syncAll(c);
    const [o] = c.fetch(5);
    assert.equal(o?.observed, 30 + 15 + 1 + 5);
  } finally {
    await a.sync.stop();
    await b.sync.stop();
    await c.sync.stop();
  }
});

test('the database going away: syncs fail (counted, logged once), decisions go on from local counts; once back, what was counted meanwhile is written', async () => {
  const { database, connection, count } = await freshDatabase();
  const clock = { now: T0 };
  const a = replica('replica-a', connection, clock);
  const b = replica('replica-b', connection, clock);
  try {
    a.fetch(20);
    b.fetch(20);
    await syncAll(a, b, a);
    await server.psql(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS false`);
    await server.psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database}'`);
    clock.now += 1_000;
    assert.deepEqual(a.fetch(5), [], 'A: 45, B\'s 20 as last read included');
    for (let i = 0; i < 3; i++) {
      const failed = await a.sync.syncNow();
      assert.equal(failed.ok, false);
      assert.ok(failed.error instanceof Error);
      clock.now += 100;
    }
    assert.equal(a.results.filter((r) => !r.ok).length, 3, 'every failure counted');
    assert.equal(a.warnings.length, 1, 'logged once, not once per sync');
    const [held] = a.fetch(10);
    assert.equal(held?.observed, 20 + 5 + 10 + 20, 'the local decision goes on, with the last known remote part');
    await server.psql(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS true`);
    await syncAll(a, b);
    assert.equal(await count("replica = 'replica-a' AND amount = 35"), 1, 'the 15 counted while the database was away were written');
    const [tracker] = b.engine.volumeRules();
    assert.equal(tracker!.tracker.remoteSum(tracker!.tracker.recentKeys(1)[0]!, clock.now), 35);
  } finally {
    await server.psql(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS true`);
    await a.sync.stop();
    await b.sync.stop();
  }
});

test('a database never reachable (nothing listens on its port): every sync fails, counting goes on, stop does not hang', async () => {
  const clock = { now: T0 };
  const a = replica('replica-a', connectionTo('nowhere', await freePort()), clock);
  a.fetch(30);
  const result = await a.sync.syncNow();
  assert.equal(result.ok, false);
  assert.match(result.error!.message, /ECONNREFUSED|connect/);
  const [o] = a.fetch(30);
  assert.equal(o?.observed, 60, 'decided from local counts');
  await a.sync.stop();
  assert.equal(a.results.filter((r) => !r.ok).length, 2, 'the last write at stop failed too, counted');
});

test('a sync is bounded: at most maxKeysPerSync keys written and read per rule, the most recently counted first', async () => {
  const { connection, count } = await freshDatabase();
  const clock = { now: T0 };
  const a = replica('replica-a', connection, clock, { rules: [{ ...volumeRule(), signal: { ...volumeRule().signal, volume: { measure: 'fetchedRecords', window: '1m', limit: 50, per: ['resource'] } } }], maxKeysPerSync: 3 });
  const b = replica('replica-b', connection, clock, { rules: [{ ...volumeRule(), signal: { ...volumeRule().signal, volume: { measure: 'fetchedRecords', window: '1m', limit: 50, per: ['resource'] } } }], maxKeysPerSync: 3 });
  try {
    const topics = Array.from({ length: 10 }, (_, i) => `topic-${i}`);
    for (const t of topics) a.fetch(1, t);
    const first = await a.sync.syncNow();
    assert.equal(first.pushed, 3);
    assert.equal(first.pulled, 3);
    assert.equal(await count(), 3);
    assert.equal(await count(`key IN ('"\\u0001topic:topic-9"', '"\\u0001topic:topic-8"', '"\\u0001topic:topic-7"')`), 3, 'the three counted last');
    await syncAll(a, a, a);
    assert.equal(await count(), 10, 'the rest followed, three at a time');
    for (const t of topics) b.fetch(1, t);
    await syncAll(b);
    assert.equal(b.results.at(-1)?.remoteKeys, 3, 'B read three keys');
  } finally {
    await a.sync.stop();
    await b.sync.stop();
  }
});

test('replicas starting at once on an empty database both create the table without colliding', async () => {
  const { connection, count } = await freshDatabase();
  const clock = { now: T0 };
  const replicas = ['one', 'two', 'three'].map((name) => replica(name, connection, clock));
  try {
    for (const r of replicas) r.fetch(1);
    const results = await Promise.all(replicas.map((r) => r.sync.syncNow()));
    assert.deepEqual(results.map((r) => r.error?.message), [undefined, undefined, undefined]);
    assert.equal(await count(), 3);
  } finally {
    for (const r of replicas) await r.sync.stop();
  }
});

test('one sync at a time: a second call while one is in flight gets the same one', async () => {
  const { connection } = await freshDatabase();
  const a = replica('replica-a', connection, { now: T0 });
  try {
    a.fetch(1);
    const [x, y] = [a.sync.syncNow(), a.sync.syncNow()];
    assert.equal(x, y);
    assert.equal((await x).ok, true);
    assert.equal(a.results.length, 1);
  } finally {
    await a.sync.stop();
  }
});

test('the runtime: signals.shared starts the sync, the same config keeps it, a change restarts it, removing it stops it', async () => {
  const { database } = await freshDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-shared-'));
  const passwordFile = path.join(dir, 'password');
  fs.writeFileSync(passwordFile, `${server.password}\n`);
  const shared = (replica: string) => configSchema.parse({
    signals: { shared: { postgres: { url: server.url(database), password: { file: passwordFile } }, replica } },
  }).signals.shared;
  const engine = new SignalEngine({ now: () => T0 });
  const runtime = createSharedCountersRuntime({ rules: () => engine.volumeRules(), now: () => T0 });
  try {
    runtime.ensure(shared('r1'));
    const first = runtime.current();
    assert.equal(first?.replica, 'r1');
    runtime.ensure(shared('r1'));
    assert.equal(runtime.current(), first, 'unchanged: the same sync');
    assert.equal((await first!.syncNow()).ok, true);
    runtime.ensure(shared('r2'));
    assert.notEqual(runtime.current(), first);
    assert.equal(runtime.current()?.replica, 'r2');
    assert.throws(() => runtime.ensure(configSchema.parse({ signals: { shared: { postgres: { url: server.url(database), password: { file: path.join(dir, 'missing') } } } } }).signals.shared), /signals\.shared\.postgres\.password/);
    assert.equal(runtime.current()?.replica, 'r2', 'a config that cannot be built changes nothing');
    runtime.ensure(undefined);
    assert.equal(runtime.current(), undefined);
  } finally {
    await runtime.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a running tollgate with signals.shared syncs on its own and shows it in /metrics', async () => {
  const { database, count } = await freshDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-shared-'));
  const passwordFile = path.join(dir, 'password');
  fs.writeFileSync(passwordFile, `${server.password}\n`);
  const config = configSchema.parse({
    server: { grpc: { address: '127.0.0.1:0' }, admin: { address: '127.0.0.1:0' } },
    audit: { sinks: [{ type: 'stdout' }] },
    signals: { shared: { postgres: { url: server.url(database), password: { file: passwordFile } }, syncInterval: '100ms', replica: 'served' } },
    rules: [volumeRule()],
  });
  const running = await startServer(config, { logger: pino({ level: 'silent' }), audit: { write: () => {} } });
  const scrape = () => new Promise<string>((resolve, reject) => {
    http.get(`http://${running.adminAddress.host}:${running.adminAddress.port}/metrics`, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  try {
    const deadline = Date.now() + 30_000;
    while (!/tollgate_signal_sync_total\{result="ok"\} [1-9]/.test(await scrape())) {
      if (Date.now() > deadline) throw new Error(`no successful sync in /metrics:\n${(await scrape()).split('\n').filter((l) => l.includes('signal_sync')).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await count(), 0, 'nothing counted, nothing written');
    assert.equal(Number(await server.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'signal_slices'", database)), 1, 'the table was created');
  } finally {
    await running.drain();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
