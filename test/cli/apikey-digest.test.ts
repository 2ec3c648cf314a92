import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { apiKeyDigest } from '../../src/identity/api-keys.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';

const CLI = path.join(REPO_ROOT, 'src', 'cli.ts');
const run = (args: string[], input = '') => spawnSync(process.execPath, [CLI, 'apikey-digest', ...args], { input, encoding: 'utf8' });

test('apikey-digest prints the SHA-256 of the key on stdin (one trailing newline ignored)', () => {
  const key = 'Hv3Nq8Tz1Lc6Wp4Rk9Xb2Md7Jf5Gs0Ya';
  const out = run([], `${key}\n`);
  assert.equal(out.status, 0, out.stderr);
  assert.equal(out.stdout, `${apiKeyDigest(key)}\n`);
  assert.ok(!out.stdout.includes(key) && !out.stderr.includes(key), 'the key itself is not printed');
});

test('apikey-digest --generate prints a new random key and its digest', () => {
  const first = run(['--generate']);
  const second = run(['--generate']);
  assert.equal(first.status, 0, first.stderr);
  const match = /^key: {4}([A-Za-z0-9_-]{43})\nsha256: ([0-9a-f]{64})\n$/.exec(first.stdout);
  assert.ok(match, first.stdout);
  assert.equal(match[2], apiKeyDigest(match[1] as string));
  assert.notEqual(first.stdout, second.stdout);
});

test('apikey-digest refuses what would not make a usable key (exit 2, saying why)', () => {
  for (const [input, why] of [
    ['', /found nothing/],
    ['short-key\n', /at least 24 random characters/],
    ['two words two words two words\n', /visible ASCII/],
    ['Hv3Nq8Tz1Lc6Wp4Rk9Xb2Md7Jf5Gs0Ya\nsecond-line-second-line\n', /several lines/],
  ] as const) {
    const out = run([], input);
    assert.equal(out.status, 2, input);
    assert.match(out.stderr, why);
    assert.equal(out.stdout, '');
  }
});
