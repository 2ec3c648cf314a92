import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { configReference, readmeSection } from '../../scripts/config-reference.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';

test('the README configuration reference is the one generated from the schema', () => {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readmeSection(readme);
  assert.ok(section !== undefined, 'README.md lacks the config-reference markers');
  assert.equal(section, configReference(), 'README.md is stale: run `node scripts/config-reference.ts --write`');
});

test('every key of the schema appears in the reference, nested ones by their full path', () => {
  const reference = configReference();
  for (const key of ['server.grpc.address', 'identity.oidc[].jwksRefreshCooldown', 'http.upstreamCredentials[].secret.env',
    'kafka.maxFrameBytes', 'rules[].match.kafka.topic', 'rules[].unless.group', 'rules[].effect']) {
    assert.ok(reference.includes(`\`${key}\``), `missing ${key}`);
  }
});
