/**
 * `signals.shared`: the volume counts of signal rules shared by replicas through PostgreSQL. Absent, each process
 * counts alone; present, it needs a reachable description of the database (the same shape as
 * `approvals.store.postgres`, its messages naming `signals.shared.postgres`) and sensible sync settings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { postgresConnection } from '../../src/approvals/postgres.ts';

function problemsOf(text: string) {
  try {
    parseConfig(text, 'tollgate.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected the config to be refused');
}

test('absent: counters stay per process', () => {
  assert.equal(parseConfig('', 'empty.yaml').signals.shared, undefined);
});

test('a URL is enough: sync every second, 1000 keys per rule and sync, two connections, the replica named at start', () => {
  const shared = parseConfig('signals: { shared: { postgres: { url: "postgres://tollgate@db.internal:5432/signals" } } }', 's.yaml').signals.shared;
  assert.deepEqual(shared, { postgres: { url: 'postgres://tollgate@db.internal:5432/signals', poolSize: 2 }, syncInterval: 1000, maxKeysPerSync: 1000 });
  assert.deepEqual({ ...postgresConnection(shared!.postgres, 'signals.shared.postgres') }, { host: 'db.internal', port: 5432, database: 'signals', user: 'tollgate', poolSize: 2 });
});

test('every setting, as an operator writes it', () => {
  const shared = parseConfig(`signals:
  shared:
    postgres: { host: /var/run/postgresql, user: tollgate, database: tollgate, password: { env: PGPASSWORD_SIGNALS }, poolSize: 3 }
    syncInterval: 500ms
    replica: tollgate-0
    maxKeysPerSync: 200
`, 's.yaml').signals.shared;
  assert.equal(shared?.syncInterval, 500);
  assert.equal(shared?.replica, 'tollgate-0');
  assert.equal(shared?.maxKeysPerSync, 200);
  assert.deepEqual(shared?.postgres.password, { env: 'PGPASSWORD_SIGNALS' });
});

test('a password in the URL is refused, and the message names where it belongs', () => {
  const [problem, ...rest] = problemsOf('signals: { shared: { postgres: { url: "postgres://tollgate:hunter2@db/signals" } } }');
  assert.deepEqual(rest, []);
  assert.equal(problem?.path, 'signals.shared.postgres.url');
  assert.match(problem!.message, /no password in the URL: give it as signals\.shared\.postgres\.password/);
});

test('what else is refused: no host, no user, a foreign URL, a sync too often, a budget of zero, unknown keys', () => {
  const paths = (yaml: string) => problemsOf(yaml).map((p) => p.path);
  assert.deepEqual(paths('signals: { shared: { postgres: { user: tollgate } } }'), ['signals.shared.postgres.host']);
  assert.deepEqual(paths('signals: { shared: { postgres: { host: db } } }'), ['signals.shared.postgres.user']);
  assert.deepEqual(paths('signals: { shared: { postgres: { url: "mysql://u@db/x" } } }'), ['signals.shared.postgres.url']);
  assert.deepEqual(paths('signals: { shared: { postgres: { url: "postgres://u@db/x" }, syncInterval: 10ms } }'), ['signals.shared.syncInterval']);
  assert.deepEqual(paths('signals: { shared: { postgres: { url: "postgres://u@db/x" }, maxKeysPerSync: 0 } }'), ['signals.shared.maxKeysPerSync']);
  assert.deepEqual(paths('signals: { shared: { postgres: { url: "postgres://u@db/x" }, replica: "" } }'), ['signals.shared.replica']);
  assert.deepEqual(paths('signals: { shared: { postgres: { url: "postgres://u@db/x" }, interval: 1s } }'), ['signals.shared.interval']);
  assert.deepEqual(paths('signals: { shared: {} }'), ['signals.shared.postgres']);
});

test('the approvals store keeps its own messages', () => {
  const [problem] = problemsOf('approvals: { store: { postgres: { url: "postgres://a:secret@h/d" } } }');
  assert.match(problem!.message, /give it as approvals\.store\.postgres\.password/);
});
