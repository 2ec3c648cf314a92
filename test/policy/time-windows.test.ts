/**
 * Time windows as a rule condition: recurring periods in an IANA zone (daylight saving included), periods across
 * midnight, one-off periods, and `match.time` in the policy with an injected clock, so no test waits for wall time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileTimeWindow } from '../../src/policy/time-windows.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Principal } from '../../src/core/principal.ts';
import type { KafkaAction } from '../../src/core/action.ts';

const at = (iso: string) => Date.parse(iso);

test('weekdays 08:00–18:00 UTC: start inclusive, end exclusive, weekends outside', () => {
  const business = compileTimeWindow({ timeZone: 'UTC', periods: [{ days: 'weekdays', from: '08:00', to: '18:00' }] });
  // 2026-11-23 is a Monday.
  assert.equal(business(at('2026-11-23T07:59:59Z')), false);
  assert.equal(business(at('2026-11-23T08:00:00Z')), true);
  assert.equal(business(at('2026-11-23T17:59:59Z')), true);
  assert.equal(business(at('2026-11-23T18:00:00Z')), false);
  assert.equal(business(at('2026-11-27T12:00:00Z')), true, 'Friday');
  assert.equal(business(at('2026-11-28T12:00:00Z')), false, 'Saturday');
  assert.equal(business(at('2026-11-29T12:00:00Z')), false, 'Sunday');
});

test('a zone with daylight saving: 08:00–18:00 in Europe/Berlin is 07:00 UTC in winter and 06:00 UTC in summer', () => {
  const berlin = compileTimeWindow({ timeZone: 'Europe/Berlin', periods: [{ days: 'weekdays', from: '08:00', to: '18:00' }] });
  assert.equal(berlin(at('2026-01-12T06:59:00Z')), false, 'winter, 07:59 local');
  assert.equal(berlin(at('2026-01-12T07:00:00Z')), true, 'winter, 08:00 local');
  assert.equal(berlin(at('2026-07-13T05:59:00Z')), false, 'summer, 07:59 local');
  assert.equal(berlin(at('2026-07-13T06:00:00Z')), true, 'summer, 08:00 local');
  assert.equal(berlin(at('2026-07-13T16:00:00Z')), false, 'summer, 18:00 local');
});

test('a period across midnight belongs to the day it starts: Saturday 22:00 to Sunday 06:00', () => {
  const maintenance = compileTimeWindow({ timeZone: 'UTC', periods: [{ days: ['sat'], from: '22:00', to: '06:00' }] });
  assert.equal(maintenance(at('2026-11-28T21:59:00Z')), false, 'Saturday before');
  assert.equal(maintenance(at('2026-11-28T22:00:00Z')), true, 'Saturday 22:00');
  assert.equal(maintenance(at('2026-11-29T05:59:00Z')), true, 'Sunday early morning');
  assert.equal(maintenance(at('2026-11-29T06:00:00Z')), false, 'Sunday 06:00');
  assert.equal(maintenance(at('2026-11-30T01:00:00Z')), false, 'Monday early morning: Sunday night is not in it');
});

test('one-off periods and several periods: any holds', () => {
  const window = compileTimeWindow({
    timeZone: 'America/New_York',
    periods: [{ start: '2026-12-01T22:00:00Z', end: '2026-12-02T02:00:00Z' }, { days: ['sun'], from: '01:00', to: '03:00' }],
  });
  assert.equal(window(at('2026-12-01T21:59:59Z')), false);
  assert.equal(window(at('2026-12-01T23:00:00Z')), true);
  assert.equal(window(at('2026-12-02T02:00:00Z')), false, 'the end is exclusive');
  // Sunday 2026-11-29 02:00 in New York is 07:00 UTC.
  assert.equal(window(at('2026-11-29T07:00:00Z')), true);
});

test('the config refuses an unknown zone, an unknown window name, an empty period and a time of day out of range', () => {
  const problems = (yaml: string) => {
    try {
      parseConfig(yaml, 'tollgate.yaml');
      return '';
    } catch (error) {
      return (error as Error).message;
    }
  };
  assert.match(problems('timeWindows:\n  w: { timeZone: Mars/Olympus, periods: [{ from: "08:00", to: "18:00" }] }\n'), /timeWindows\.w\.timeZone: expected an IANA time zone/);
  assert.match(problems('timeWindows:\n  w: { periods: [{ from: "08:00", to: "08:00" }] }\n'), /expected `to` to differ from `from`/);
  assert.match(problems('timeWindows:\n  w: { periods: [{ from: "25:00", to: "08:00" }] }\n'), /expected a time of day/);
  assert.match(problems('rules:\n  - { name: r, match: { time: { outside: maintenance } }, effect: deny }\n'),
    /tollgate\.yaml:2:\d+: rules\[0\]\.match\.time\.outside: expected the name of a time window in timeWindows; "maintenance" is not one/);
  assert.match(problems('rules:\n  - { name: r, match: { time: {} }, effect: deny }\n'), /expected `within` or `outside`/);
});

const admin: Principal = { subject: 'root', groups: ['platform-admins'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const alterConfigs: KafkaAction = { kind: 'kafka', api: 'IncrementalAlterConfigs', operation: 'admin', topic: 'payments' };

test('match.time: admin operations outside the maintenance window are caught by the rule, inside they fall through', () => {
  const config = configSchema.parse({
    timeWindows: { maintenance: { timeZone: 'UTC', periods: [{ days: 'weekdays', from: '08:00', to: '18:00' }] } },
    rules: [
      { name: 'config-changes-outside-the-window', match: { kafka: { api: ['AlterConfigs', 'IncrementalAlterConfigs', 'CreateAcls', 'DeleteAcls'] }, time: { outside: 'maintenance' } }, effect: 'deny' },
      { name: 'admins', match: { group: 'platform-admins' }, effect: 'allow' },
    ],
  });
  const clock = { now: at('2026-11-23T07:30:00Z') };
  const policy = compilePolicy(config.rules, { timeWindows: config.timeWindows, now: () => clock.now });
  assert.equal(policy.decide(admin, alterConfigs).rule, 'config-changes-outside-the-window');
  clock.now = at('2026-11-23T09:00:00Z');
  assert.equal(policy.decide(admin, alterConfigs).rule, 'admins', 'inside the window the next rule decides');
  assert.equal(policy.decide(admin, { kind: 'kafka', api: 'Fetch', operation: 'consume', topic: 'payments' }).rule, 'admins');
  clock.now = at('2026-11-28T09:00:00Z');
  assert.equal(policy.decide(admin, alterConfigs).rule, 'config-changes-outside-the-window', 'Saturday');
});

test('match.time within: kubectl exec in prod only during business hours; the window is read in its own zone', () => {
  const config = configSchema.parse({
    timeWindows: { 'business-hours': { timeZone: 'Europe/Berlin', periods: [{ days: 'weekdays', from: '08:00', to: '18:00' }] } },
    rules: [
      { name: 'exec-in-prod-in-business-hours', match: { kubernetes: { verb: 'create', resource: 'pods/exec', namespace: 'prod' }, time: { within: 'business-hours' } }, effect: 'allow' },
    ],
  });
  const clock = { now: at('2026-11-23T16:59:00Z') };
  const policy = compilePolicy(config.rules, { timeWindows: config.timeWindows, now: () => clock.now });
  const exec = {
    kind: 'http', method: 'POST', host: 'kube', path: '/api/v1/namespaces/prod/pods/web/exec',
    kubernetes: { kind: 'resource', verb: 'create', apiGroup: '', apiVersion: 'v1', resource: 'pods', subresource: 'exec', namespace: 'prod', name: 'web', dryRun: false },
  } as const;
  assert.equal(policy.decide(admin, exec).effect, 'allow', '17:59 in Berlin');
  clock.now = at('2026-11-23T17:00:00Z');
  assert.equal(policy.decide(admin, exec).effect, 'deny', '18:00 in Berlin: no rule allows it');
});
