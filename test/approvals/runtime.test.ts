/**
 * The approvals runtime of a running tollgate: no store (and no file) without an `approve` rule; the store opened in
 * the background once a config (or a reload) has one; a store that cannot be opened keeps readiness down and every
 * Kafka request needing approval refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { createApprovalsRuntime } from '../../src/approvals/runtime.ts';
import { configSchema } from '../../src/config/schema.ts';
import type { Principal } from '../../src/core/principal.ts';

const alice: Principal = { subject: 'alice', groups: [], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const approveRule = { name: 'needs-approval', match: { kafka: { api: 'DeleteTopics' } }, effect: 'approve', approval: { approvers: { group: 'sre' } } };
const configWith = (file: string, rules: unknown[]) => configSchema.parse({ approvals: { store: { sqlite: { path: file } } }, rules });
const runtime = () => createApprovalsRuntime({ audit: { write: () => {} }, logger: pino({ level: 'silent' }), defaultBaseUrl: () => 'http://127.0.0.1:9901' });

test('no approve rule: no store, no file, no readiness check; a reload that adds one opens the store', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-runtime-')), 'approvals.sqlite');
  const r = runtime();
  r.ensure(configWith(file, [{ name: 'open', effect: 'allow' }]));
  await r.settled();
  assert.equal(r.current(), undefined);
  assert.equal(r.health(), undefined);
  assert.equal(fs.existsSync(file), false);
  r.ensure(configWith(file, [approveRule]));
  assert.deepEqual(r.health(), { ok: false, detail: 'opening the store' });
  await r.settled();
  assert.ok(r.current());
  assert.deepEqual(r.health(), { ok: true, detail: 'store open' });
  assert.equal(r.current()?.urlOf('apr_x'), 'http://127.0.0.1:9901/approvals/apr_x');
  assert.ok(fs.existsSync(file));
  await r.close();
});

test('a store that cannot be opened keeps readiness down, says why, and Kafka requests needing approval are refused', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-runtime-'));
  const r = runtime();
  r.ensure(configWith(dir, [approveRule]));
  await r.settled();
  assert.equal(r.current(), undefined);
  assert.equal(r.health()?.ok, false);
  assert.match(r.health()?.detail ?? '', new RegExp(`the approvals store ${dir.replace(/[.]/g, '\\.')} could not be opened: approvals\\.store\\.sqlite\\.path: cannot open`));
  await assert.rejects(r.kafka.prepare(alice, [], {}), /could not be opened/);
  await r.close();
});
