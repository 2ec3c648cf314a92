/**
 * The quickstart's signal and time-window rules do what the quickstart says, with a clock the test moves: analysts
 * fetching more than 50 MB a minute from payments are throttled and, the breach lasting 5 minutes, need an approval;
 * topic-config changes outside weekdays 08:00–18:00 UTC need an approval (a ticket), even by platform admins.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfigFile } from '../../src/config/load.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { SignalEngine } from '../../src/signals/engine.ts';
import { signalDecision, strongest } from '../../src/signals/outcome.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import type { Principal } from '../../src/core/principal.ts';
import type { KafkaAction } from '../../src/core/action.ts';

const config = loadConfigFile(path.join(REPO_ROOT, 'examples', 'quickstart.yaml'));
const analyst: Principal = { subject: 'analyst-app', groups: ['analysts'], issuer: 'http://127.0.0.1:18080', authenticatedBy: 'oidc' };
const paymentsApp: Principal = { subject: 'payments-app', groups: ['payments-admin'], issuer: 'http://127.0.0.1:18080', authenticatedBy: 'oidc' };
const admin: Principal = { subject: 'platform-admin', groups: ['platform-admins'], issuer: 'http://127.0.0.1:18080', authenticatedBy: 'oidc' };

function setup(start: string) {
  const clock = { now: Date.parse(start) };
  const engine = new SignalEngine({ now: () => clock.now });
  const policy = compilePolicy(config.rules, { timeWindows: config.timeWindows, now: () => clock.now, flaggedBy: (p) => engine.flaggedBy(p) });
  engine.update(policy.signals, { maxKeys: config.signals.maxKeys, maxThrottleMs: config.signals.maxThrottle });
  return { clock, engine, policy };
}

const fetchPayments: KafkaAction = { kind: 'kafka', api: 'Fetch', operation: 'consume', topic: 'payments' };

test('quickstart: analysts over 50 MB/min from payments are throttled, then (5 minutes on) need an approval; payments-admin is not counted', () => {
  const { clock, engine, policy } = setup('2026-11-23T10:00:00Z');
  const read = (who: Principal, bytes: number) => engine.measure(who, [{ action: fetchPayments, amounts: { fetchedBytes: bytes } }]);
  assert.equal(policy.decide(analyst, fetchPayments).effect, 'allow');
  assert.deepEqual(read(analyst, 50_000_000), [], 'exactly 50 MB: not more than');
  const [throttled] = read(analyst, 1_000_000);
  assert.equal(throttled?.effect, 'throttle');
  assert.equal(throttled?.threshold, 50_000_000);
  assert.deepEqual(read(paymentsApp, 500_000_000), []);
  // Kept at the limit for five minutes (the client backs off as told, and reads on).
  for (let s = 10; s < 300; s += 10) {
    clock.now += 10_000;
    assert.equal(read(analyst, 9_000_000)[0]?.effect, 'throttle', `${s} s`);
  }
  clock.now += 10_000;
  assert.equal(read(analyst, 9_000_000)[0]?.effect, 'approve');
  const held = strongest(engine.held(analyst, fetchPayments));
  assert.equal(held?.effect, 'approve');
  const decision = signalDecision(fetchPayments, held);
  assert.equal(decision?.effect, 'deny', 'refused until approved');
  assert.equal(decision?.rule, 'analysts-payments-fetch-volume');
  assert.deepEqual(decision?.approval?.spec.approverGroups, ['platform-admins']);
  assert.equal(decision?.approval?.spec.mode, 'ticket');
  assert.equal(decision?.approval?.spec.grantMs, 3_600_000);
  assert.deepEqual(decision?.approval?.scope, { path: 'kafka', operation: 'Fetch consume', resource: { topic: 'payments' } });
});

test('quickstart: topic-config changes outside weekdays 08:00–18:00 UTC need an approval, even by platform admins', () => {
  const { clock, policy } = setup('2026-11-23T17:59:00Z');
  const alter: KafkaAction = { kind: 'kafka', api: 'IncrementalAlterConfigs', operation: 'admin', topic: 'payments' };
  assert.equal(policy.decide(admin, alter).rule, 'platform-admins-may-do-everything', 'Monday 17:59 UTC');
  clock.now = Date.parse('2026-11-23T18:00:00Z');
  const outside = policy.decide(admin, alter);
  assert.equal(outside.rule, 'config-changes-outside-the-change-window');
  assert.equal(outside.effect, 'deny', 'refused until approved');
  assert.equal(outside.approval?.spec.mode, 'ticket');
  assert.deepEqual(outside.approval?.spec.approverGroups, ['platform-admins']);
  assert.equal(policy.decide(admin, { ...alter, api: 'CreateAcls', topic: undefined } as KafkaAction).rule, 'config-changes-outside-the-change-window');
  clock.now = Date.parse('2026-11-28T10:00:00Z');
  assert.equal(policy.decide(admin, alter).rule, 'config-changes-outside-the-change-window', 'Saturday');
  assert.equal(policy.decide(admin, { kind: 'kafka', api: 'CreateTopics', operation: 'admin', topic: 'x' }).rule, 'platform-admins-may-do-everything', 'other admin operations as usual');
});
