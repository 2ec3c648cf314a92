import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';

function problemsOf(text: string) {
  try {
    parseConfig(text, 'tollgate.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the config to be refused');
}

test('an empty file is a valid config with every default filled in', () => {
  const config = parseConfig('', 'empty.yaml');
  assert.equal(config.server.grpc.address, '127.0.0.1:9001');
  assert.equal(config.server.drainTimeout, 15_000);
  assert.equal(config.kafka.maxFrameBytes, 100 * 1024 * 1024);
  assert.deepEqual(config.rules, []);
});

test('durations are written as operators write them and read as milliseconds', () => {
  const config = parseConfig(`
identity:
  oidc: [{ issuer: "https://idp.test", audiences: [tollgate], clockTolerance: 250ms, jwksMaxAge: 5m }]
server: { drainTimeout: 1h }
`, 'd.yaml');
  assert.equal(config.identity.oidc[0]?.clockTolerance, 250);
  assert.equal(config.identity.oidc[0]?.jwksMaxAge, 300_000);
  assert.equal(config.identity.oidc[0]?.jwksRefreshCooldown, 30_000);
  assert.equal(config.server.drainTimeout, 3_600_000);
});

test('a bad value is reported with file, line, column, path and what was expected', () => {
  const err = problemsOf(`rules:
  - name: ok-rule
    effect: alow
`);
  assert.equal(err.problems.length, 1);
  assert.deepEqual(err.problems[0], {
    path: 'rules[0].effect', line: 3, column: 13,
    message: 'Invalid option: expected one of "allow"|"deny"|"approve", got "alow"',
  });
  assert.match(err.message, /^invalid config tollgate\.yaml:\n {2}tollgate\.yaml:3:13: rules\[0\]\.effect: /);
});

test('unknown keys are refused by name, at their own line', () => {
  const err = problemsOf(`server:
  grpc:
    adress: 127.0.0.1:1
`);
  assert.deepEqual(err.problems.map((p) => [p.path, p.line]), [['server.grpc.adress', 3]]);
  assert.match(err.problems[0]!.message, /unknown key "adress"/);
});

test('a missing required field names the path that lacks it', () => {
  const err = problemsOf(`rules:
  - name: no-effect
`);
  assert.equal(err.problems[0]?.path, 'rules[0].effect');
  assert.match(err.problems[0]!.message, /expected/);
});

test('symmetric and "none" signature algorithms cannot be allowed', () => {
  for (const alg of ['HS256', 'none']) {
    const err = problemsOf(`identity: { oidc: [{ issuer: "https://idp.test", audiences: [a], algorithms: [${alg}] }] }`);
    assert.equal(err.problems[0]?.path, 'identity.oidc[0].algorithms[0]');
  }
});

test('rule names are unique and an empty unless is refused', () => {
  const err = problemsOf(`rules:
  - { name: twice, effect: allow }
  - { name: twice, effect: deny, unless: {} }
`);
  const paths = err.problems.map((p) => p.path).sort();
  assert.deepEqual(paths, ['rules[1].name', 'rules[1].unless']);
});

test('YAML syntax errors carry their position', () => {
  const err = problemsOf('rules: [ { name: x\n');
  assert.equal(err.problems[0]?.path, '');
  assert.match(err.problems[0]!.message, /^YAML: /);
  assert.ok(err.problems[0]?.line !== undefined);
});

test('an unreadable file is a ConfigError naming the file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-config-'));
  assert.throws(() => loadConfigFile(path.join(dir, 'missing.yaml')), (err: unknown) =>
    err instanceof ConfigError && /missing\.yaml/.test(err.message) && /cannot read/.test(err.message));
  const file = path.join(dir, 'ok.yaml');
  writeFileSync(file, 'rules: []\n');
  assert.deepEqual(loadConfigFile(file).rules, []);
});

test('the bundled quickstart config is valid', () => {
  const config = loadConfigFile(path.join(REPO_ROOT, 'examples', 'quickstart.yaml'));
  assert.equal(config.identity.oidc[0]?.issuer, 'http://127.0.0.1:18080');
  assert.ok(config.rules.some((r) => r.name === 'admin-topics-are-admin-only'));
});
