/**
 * The signal engine as the adapters use it, with a clock the test moves: volume per principal × resource against a
 * fixed limit or a learned baseline, escalation (throttle, then approve), deny for a window, shadow rules, failed
 * authentications then a success, replayed records, and state that survives a reload of the rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../src/config/schema.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { SignalEngine, type SignalEvent } from '../../src/signals/engine.ts';
import { signalDecision, strongest, type SignalObservation } from '../../src/signals/outcome.ts';
import { grantScope, scopeKey } from '../../src/core/approval.ts';
import type { ApprovalView } from '../../src/policy/approval-decision.ts';
import type { Principal } from '../../src/core/principal.ts';
import type { Action, KafkaAction } from '../../src/core/action.ts';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const alice: Principal = { subject: 'alice', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const bob: Principal = { subject: 'bob', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const fetchOf = (topic: string): KafkaAction => ({ kind: 'kafka', api: 'Fetch', operation: 'consume', topic });
const MB = 1_000_000;

function setup(rules: unknown[], extra: Record<string, unknown> = {}) {
  const clock = { now: T0 };
  const events: SignalEvent[] = [];
  const observations: SignalObservation[] = [];
  const engine = new SignalEngine({ now: () => clock.now, onEvent: (e) => events.push(e), onObservation: (o) => observations.push(o) });
  const load = (r: unknown[]) => {
    const config = configSchema.parse({ ...extra, rules: r });
    const policy = compilePolicy(config.rules, { now: () => clock.now, flaggedBy: (p) => engine.flaggedBy(p) });
    engine.update(policy.signals, { maxKeys: config.signals.maxKeys, maxThrottleMs: config.signals.maxThrottle });
    return policy;
  };
  const policy = load(rules);
  return { clock, engine, events, observations, policy, load };
}

const fetched = (engine: SignalEngine, who: Principal, topic: string, bytes: number) =>
  engine.measure(who, [{ action: fetchOf(topic), amounts: { fetchedBytes: bytes, fetchedRecords: 1 } }]);

const PAYMENTS_VOLUME = {
  name: 'payments-fetch-volume',
  match: { group: 'analysts', kafka: { operation: 'consume', topic: 'payments' } },
  signal: { volume: { measure: 'fetchedBytes', window: '1m', limit: '50MB' }, effect: 'throttle', escalate: { after: '2m', effect: 'approve' } },
  approval: { approvers: { group: 'payments-owners' }, grant: '1h' },
};

test('under the limit nothing is observed; over it the key is throttled until its sum is back at the limit', () => {
  const { engine, events, clock } = setup([PAYMENTS_VOLUME], { signals: { maxThrottle: '2m' } });
  assert.deepEqual(fetched(engine, alice, 'payments', 30 * MB), []);
  clock.now += 10_000;
  const [o] = fetched(engine, alice, 'payments', 30 * MB);
  assert.ok(o, 'an observation');
  assert.equal(o.effect, 'throttle');
  assert.equal(o.measure, 'fetchedBytes');
  assert.equal(o.observed, 60 * MB);
  assert.equal(o.threshold, 50 * MB);
  assert.equal(o.thresholdSource, 'limit');
  assert.deepEqual(o.key, { subject: 'alice', resource: 'topic:payments' });
  // The first 30 MB (slice [0 s, 6 s)) fade out of the 1 minute window from 60 s on: 10 MB are gone after 2 s of it.
  assert.ok(o.throttleMs! > 50_000 && o.throttleMs! <= 52_000, `throttle ${o.throttleMs}`);
  assert.match(o.reason, /fetchedBytes of alice on topic:payments in the last 1m is 60 MB, over the limit 50 MB; throttled for \d+ ms/);
  assert.deepEqual(events.map((e) => [e.event, e.path, e.principal?.subject]), [['breach', 'kafka', 'alice']]);
  assert.deepEqual(fetched(engine, bob, 'payments', 30 * MB), [], 'bob has his own counter');
  const capped = setup([PAYMENTS_VOLUME]);
  assert.equal(fetched(capped.engine, alice, 'payments', 60 * MB)[0]?.throttleMs, 30_000, 'at most signals.maxThrottle (30 s by default)');
  assert.deepEqual(fetched(engine, alice, 'orders', 60 * MB), [], 'and so has another topic (the rule does not match it)');
});

test('a breach that lasts escalates: throttled, then every request needs an approval, which a grant gives', () => {
  const { engine, events, clock } = setup([PAYMENTS_VOLUME]);
  fetched(engine, alice, 'payments', 60 * MB);
  // The client keeps reading at the limit: every excess comes within a window of the last one.
  for (let s = 20; s < 120; s += 20) {
    clock.now = T0 + s * 1000;
    assert.equal(fetched(engine, alice, 'payments', 20 * MB)[0]?.effect, 'throttle', `${s} s: throttled`);
  }
  clock.now = T0 + 120_000;
  const [escalated] = fetched(engine, alice, 'payments', 20 * MB);
  assert.equal(escalated?.effect, 'approve');
  assert.equal(escalated?.escalated, true);
  assert.deepEqual(escalated?.approval?.approverGroups, ['payments-owners'], 'the rule\'s approval spec travels with the observation');
  assert.deepEqual(events.map((e) => e.event), ['breach', 'escalation']);
  // From now on the key is held back: the next Fetch is not counted but needs an approval.
  clock.now += 1000;
  const held = engine.held(alice, fetchOf('payments'));
  assert.equal(held.length, 1);
  assert.equal(held[0]!.effect, 'approve');
  const demand = signalDecision(fetchOf('payments'), strongest(held))!;
  assert.equal(demand.effect, 'deny', 'before any approval is known: refused');
  assert.equal(demand.rule, 'payments-fetch-volume');
  assert.match(demand.reason, /^signal payments-fetch-volume: fetchedBytes of alice on topic:payments .* needs an approval until/);
  assert.deepEqual(demand.approval?.scope, { path: 'kafka', operation: 'Fetch consume', resource: { topic: 'payments' } }, 'what a grant will cover');
  assert.equal(demand.approval?.rule, 'payments-fetch-volume', 'asked under the signal rule\'s name');
  assert.equal(demand.approval?.spec.grantMs, 3_600_000);
  const scope = scopeKey(grantScope(fetchOf('payments')));
  const pending: ApprovalView = { grant: () => undefined, pending: (s, rule) => (s === scope && rule === 'payments-fetch-volume' ? 'A-7' : undefined) };
  const waiting = signalDecision(fetchOf('payments'), strongest(held), pending)!;
  assert.equal(waiting.effect, 'deny');
  assert.equal(waiting.approval?.pending, 'A-7');
  assert.match(waiting.reason, /approval A-7 awaits an approver of payments-owners/);
  const grant = { id: 'G-1', approval: 'A-7', oneTime: false, expiresAt: T0 + 3_600_000 };
  const granted = signalDecision(fetchOf('payments'), strongest(held), { grant: (s) => (s === scope ? grant : undefined), pending: () => undefined })!;
  assert.equal(granted.effect, 'allow', 'a grant for this principal, operation and topic lets the request through');
  assert.deepEqual(granted.grant, grant);
  const other = signalDecision(fetchOf('orders'), strongest(held), { grant: (s) => (s === scope ? grant : undefined), pending: () => undefined })!;
  assert.equal(other.effect, 'deny', 'a grant covers its own scope only');
  // What the measure counts is held back, not the consumer's group calls on the same topic.
  const offsetFetch: KafkaAction = { kind: 'kafka', api: 'OffsetFetch', operation: 'consume', topic: 'payments', group: 'analytics-1' };
  assert.deepEqual(engine.held(alice, offsetFetch), [], 'an OffsetFetch of payments is not held back by a fetchedBytes rule');
  // One window after the escalation, the key is no longer held.
  clock.now = T0 + 120_000 + 60_001;
  assert.deepEqual(engine.held(alice, fetchOf('payments')), []);
});

test('a signal rule that may ask for approval must say who approves; approval is refused on one that never asks', () => {
  const { approval: _approval, ...withoutApproval } = PAYMENTS_VOLUME;
  assert.throws(() => configSchema.parse({ rules: [withoutApproval] }), /expected `approval` \(approvers, min, mode, wait, grant\) on a signal rule whose effect or escalation is `approve`/);
  assert.throws(() => configSchema.parse({ rules: [{ ...PAYMENTS_VOLUME, signal: { ...PAYMENTS_VOLUME.signal, escalate: { after: '2m', effect: 'deny' } } }] }),
    /expected `approval` only on a rule with `effect: approve`, or a signal rule whose effect or escalation is `approve`/);
  assert.throws(() => configSchema.parse({ rules: [{ ...PAYMENTS_VOLUME, approval: { ...PAYMENTS_VOLUME.approval, mode: 'hold' } }] }),
    /expected `mode: ticket` on a Kafka rule/);
  assert.throws(() => configSchema.parse({ approvals: { maxGrant: '30m' }, rules: [PAYMENTS_VOLUME] }), /expected a grant of at most approvals.maxGrant/);
});

test('deny holds the key back for one window from the excess; held requests are not counted', () => {
  const { engine, clock } = setup([{
    name: 'ci-list-storm', match: { kubernetes: { verb: 'list' } },
    signal: { volume: { measure: 'requests', window: '10s', limit: 3, per: ['subject'] }, effect: 'deny' },
  }]);
  const list: Action = {
    kind: 'http', method: 'GET', host: 'kube', path: '/api/v1/pods',
    kubernetes: { kind: 'resource', verb: 'list', apiGroup: '', apiVersion: 'v1', resource: 'pods', dryRun: false },
  };
  for (let i = 0; i < 3; i++) assert.deepEqual(engine.measure(alice, [{ action: list, amounts: { requests: 1 } }]), []);
  const [o] = engine.measure(alice, [{ action: list, amounts: { requests: 1 } }]);
  assert.equal(o?.effect, 'deny');
  assert.equal(o?.until, T0 + 10_000);
  assert.equal(engine.held(alice, list)[0]?.effect, 'deny');
  assert.equal(engine.held(alice, { ...list, path: '/api/v1/secrets', kubernetes: { ...list.kubernetes!, resource: 'secrets' } } as Action)[0]?.effect, 'deny', 'per subject: every list of alice');
  clock.now = T0 + 10_000;
  assert.deepEqual(engine.held(alice, list), []);
});

test('requests count once per request and key, whatever the number of actions; other measures add up', () => {
  const { engine } = setup([
    { name: 'requests-per-subject', match: { kafka: {} }, signal: { volume: { measure: 'requests', window: '1m', limit: 1, per: ['subject'] } } },
    { name: 'bytes-per-subject', match: { kafka: {} }, signal: { volume: { measure: 'fetchedBytes', window: '1m', limit: 100, per: ['subject'] } } },
  ]);
  const one = engine.measure(alice, [
    { action: fetchOf('a'), amounts: { requests: 1, fetchedBytes: 60 } },
    { action: fetchOf('b'), amounts: { requests: 1, fetchedBytes: 60 } },
  ]);
  assert.deepEqual(one.map((o) => [o.rule, o.observed]), [['bytes-per-subject', 120]], 'one request (not two); 120 bytes');
  const two = engine.measure(alice, [{ action: fetchOf('a'), amounts: { requests: 1 } }]);
  assert.deepEqual(two.map((o) => [o.rule, o.observed, o.effect]), [['requests-per-subject', 2, 'alert']]);
});

test('a learned baseline: quiet while warming up, then what is far above the usual fires', () => {
  const { engine, clock } = setup([{
    name: 'unusual-reads', match: { kafka: { operation: 'consume' } },
    signal: { volume: { measure: 'fetchedRecords', window: '1m', baseline: { deviations: 3, warmup: '10m', halfLife: '1h', floor: 10 } } },
  }]);
  const read = (n: number) => engine.measure(alice, [{ action: fetchOf('orders'), amounts: { fetchedRecords: n } }]);
  // Ten minutes of 100 records a minute (give or take 10).
  for (let m = 0; m < 10; m++) {
    clock.now = T0 + m * 60_000 + 1;
    assert.deepEqual(read(95 + (m % 3) * 5), [], `minute ${m}: warming up`);
  }
  clock.now = T0 + 10 * 60_000 + 30_000;
  assert.deepEqual(read(110), [], 'a little more than usual');
  const [o] = read(2000);
  assert.ok(o);
  assert.equal(o.thresholdSource, 'baseline');
  assert.ok(o.threshold > 100 && o.threshold < 200, `threshold ${o.threshold}`);
  assert.equal(o.baseline?.periods, 10);
  assert.match(o.reason, /over the learned baseline/);
});

test('a shadow rule observes and records, but holds nothing back', () => {
  const { engine, events } = setup([{ ...PAYMENTS_VOLUME, signal: { ...PAYMENTS_VOLUME.signal, effect: 'deny', escalate: undefined }, shadow: true, approval: undefined }]);
  const [o] = fetched(engine, alice, 'payments', 60 * MB);
  assert.equal(o?.shadow, true);
  assert.equal(o?.effect, 'deny');
  assert.equal(events[0]?.observation.shadow, true);
  const held = engine.held(alice, fetchOf('payments'));
  assert.equal(held[0]?.shadow, true, 'what it would hold back is still said');
  assert.equal(strongest(held), undefined, 'but nothing acts on it');
  assert.equal(signalDecision(fetchOf('payments'), strongest(held)), undefined);
});

test('state survives a reload that keeps the rule\'s name and shape; a new shape starts over; thresholds may change', () => {
  const { engine, load } = setup([PAYMENTS_VOLUME]);
  fetched(engine, alice, 'payments', 40 * MB);
  load([{ ...PAYMENTS_VOLUME, signal: { ...PAYMENTS_VOLUME.signal, volume: { ...PAYMENTS_VOLUME.signal.volume, limit: '45MB' } } }]);
  const [o] = fetched(engine, alice, 'payments', 10 * MB);
  assert.equal(o?.observed, 50 * MB, 'the 40 MB before the reload still count');
  assert.equal(o?.threshold, 45 * MB, 'against the new limit');
  load([{ ...PAYMENTS_VOLUME, signal: { ...PAYMENTS_VOLUME.signal, volume: { ...PAYMENTS_VOLUME.signal.volume, window: '2m' } } }]);
  assert.deepEqual(fetched(engine, alice, 'payments', 10 * MB), [], 'a new window: counted from zero');
  assert.deepEqual(engine.keyCounts(), [{ rule: 'payments-fetch-volume', keys: 1 }]);
  load([]);
  assert.deepEqual(engine.keyCounts(), []);
});

test('memory is bounded: at most maxKeys keys per rule, the least recently used dropped', () => {
  const { engine } = setup([{ name: 'per-topic', match: { kafka: {} }, signal: { volume: { measure: 'fetchedBytes', window: '1m', limit: 100 } } }], { signals: { maxKeys: 3 } });
  for (const topic of ['a', 'b', 'c', 'd', 'e']) fetched(engine, alice, topic, 60);
  assert.deepEqual(engine.keyCounts(), [{ rule: 'per-topic', keys: 3 }]);
  assert.deepEqual(fetched(engine, alice, 'a', 60), [], 'a was dropped: its 60 bytes are forgotten');
  assert.equal(fetched(engine, alice, 'e', 60)[0]?.observed, 120, 'e was kept');
});

test('for a sync across replicas: keys counted since the last sync, most recent first, within a budget; the rest wait', () => {
  const { engine, clock } = setup([{ name: 'per-topic', match: { kafka: {} }, signal: { volume: { measure: 'fetchedBytes', window: '1m', limit: 100 } } }], { signals: { maxKeys: 4 } });
  const topics = (keys: ReadonlyArray<{ readonly id: string } | string>) => keys.map((k) => (typeof k === 'string' ? k : k.id).split('\u0001topic:')[1]);
  const [rule] = engine.volumeRules();
  assert.ok(rule);
  assert.equal(rule.rule, 'per-topic');
  for (const topic of ['a', 'b', 'c']) fetched(engine, alice, topic, 10);
  fetched(engine, alice, 'a', 5);
  const first = rule.tracker.takeChanged(clock.now, 2);
  assert.deepEqual(topics(first), ['a', 'c'], 'a counted last, then c');
  assert.deepEqual(first[0]?.slices.map((s) => s.amount), [15]);
  assert.deepEqual(topics(rule.tracker.takeChanged(clock.now, 10)), ['b'], 'b waited for the next one');
  assert.deepEqual(rule.tracker.takeChanged(clock.now, 10), []);
  // A failed write puts its keys back.
  fetched(engine, alice, 'd', 1);
  const failed = rule.tracker.takeChanged(clock.now, 10);
  rule.tracker.restoreChanged(failed);
  assert.deepEqual(rule.tracker.takeChanged(clock.now, 10), failed);
  // Keys dropped from memory take their pending changes along: nothing outgrows maxKeys.
  for (const topic of ['e', 'f', 'g', 'h', 'i']) fetched(engine, alice, topic, 1);
  assert.deepEqual(topics(rule.tracker.takeChanged(clock.now, 10)), ['i', 'h', 'g', 'f']);
  assert.deepEqual(topics(rule.tracker.recentKeys(2)), ['i', 'h']);
});

test('the other replicas\' part of a key counts toward its threshold; the baseline learns from this replica alone', () => {
  const { engine, clock } = setup([PAYMENTS_VOLUME]);
  fetched(engine, alice, 'payments', 30 * MB);
  const [rule] = engine.volumeRules();
  const [key] = rule!.tracker.recentKeys(1);
  const slice = Math.floor(clock.now / rule!.tracker.slicing.sliceMs);
  assert.equal(rule!.tracker.setRemote(key!, [{ slice, amount: 30 * MB }]), true);
  assert.equal(rule!.tracker.setRemote('someone else', [{ slice, amount: 1 }]), false, 'a key not held is not created');
  const [o] = fetched(engine, alice, 'payments', 1);
  assert.equal(o?.observed, 60 * MB + 1);
  assert.equal(o?.effect, 'throttle');
  assert.equal(rule!.tracker.remoteSum(key!, clock.now), 30 * MB);
});

const AUTH = { name: 'brute-force-then-success', signal: { authFailures: { threshold: 5, window: '10m', flagFor: '1h' } } };

test('failed authentications, then a success: the session is flagged, rules see it, the counters start over', () => {
  const { engine, events, policy, clock, load } = setup([
    AUTH,
    { name: 'flagged-sessions-may-not-delete-topics', match: { kafka: { api: 'DeleteTopics' }, flagged: true }, effect: 'deny' },
    { name: 'admins', match: { group: 'platform-admins' }, effect: 'allow' },
  ]);
  void load;
  const root: Principal = { subject: 'root', groups: ['platform-admins'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
  const deleteTopics: KafkaAction = { kind: 'kafka', api: 'DeleteTopics', operation: 'admin', topic: 'payments' };
  for (let i = 1; i <= 4; i++) {
    const counts = engine.authFailure('kafka', { subject: 'root', source: '10.0.0.9' });
    assert.deepEqual(counts, { 'brute-force-then-success': { subject: i, source: i } });
  }
  assert.equal(events.length, 0, 'below the threshold: no news');
  engine.authFailure('kafka', { subject: 'someone-else', source: '10.0.0.9' });
  assert.deepEqual(events.map((e) => [e.event, e.observation.observed, e.observation.threshold]), [['failures', 5, 5]], 'the address reached 5');
  assert.equal(policy.decide(root, deleteTopics).rule, 'admins', 'not flagged before the success');
  const flagged = engine.authSuccess('kafka', root, '10.0.0.9');
  assert.equal(flagged.length, 1);
  assert.equal(flagged[0]!.rule, 'brute-force-then-success');
  assert.equal(flagged[0]!.observed, 5);
  assert.equal(flagged[0]!.until, T0 + 3_600_000);
  assert.equal(events.at(-1)?.event, 'flagged');
  assert.deepEqual([...engine.flaggedBy(root)!], ['brute-force-then-success']);
  assert.equal(policy.decide(root, deleteTopics).rule, 'flagged-sessions-may-not-delete-topics');
  assert.equal(policy.decide(root, { ...deleteTopics, api: 'CreateTopics' }).rule, 'admins', 'other operations as usual');
  assert.deepEqual(engine.authSuccess('kafka', root, '10.0.0.9'), [], 'the counters started over');
  clock.now += 3_600_000;
  assert.equal(engine.flaggedBy(root), undefined, 'the flag lasts flagFor');
  assert.equal(policy.decide(root, deleteTopics).rule, 'admins');
});

test('failures per subject alone: another address, same claimed subject; a success of someone else is not flagged', () => {
  const { engine } = setup([{ ...AUTH, signal: { authFailures: { threshold: 3, window: '1m', per: ['subject'] } } }]);
  for (const source of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) engine.authFailure('http', { subject: 'alice', source });
  assert.deepEqual(engine.authSuccess('http', bob, '10.0.0.1'), []);
  assert.equal(engine.authSuccess('http', alice, '192.168.1.1').length, 1);
});

test('a shadow authFailures rule records the flag it would set, and sets none', () => {
  const { engine } = setup([{ ...AUTH, shadow: true }]);
  for (let i = 0; i < 5; i++) engine.authFailure('kafka', { source: '10.0.0.9' });
  const [o] = engine.authSuccess('kafka', alice, '10.0.0.9');
  assert.equal(o?.shadow, true);
  assert.equal(engine.flaggedBy(alice), undefined);
});

test('replay: old timestamps and payloads already produced to the topic are flagged; an idempotent retry is not', () => {
  const { engine, clock } = setup([{
    name: 'no-replayed-payments', match: { kafka: { topic: 'payments' } },
    signal: { replay: { maxAge: '1h', duplicates: '10m' }, effect: 'deny' },
  }]);
  const [tracker] = engine.replayTrackers(alice, 'payments');
  assert.ok(tracker);
  assert.deepEqual(engine.replayTrackers(alice, 'orders'), []);
  const record = (value: string, timestampMs = clock.now, producer?: { id: bigint; epoch: number; sequence: number }) =>
    ({ timestampMs, key: Buffer.from('k'), value: Buffer.from(value), ...(producer !== undefined && { producer }) });
  const stale = tracker.check('payments', 'alice', record('x', T0 - 2 * 3_600_000), clock.now, new Map());
  assert.equal(stale.observation?.measure, 'recordAgeMs');
  assert.equal(stale.observation?.observed, 2 * 3_600_000);
  assert.equal(stale.observation?.threshold, 3_600_000);
  const first = tracker.check('payments', 'alice', record('pay 10 EUR', clock.now, { id: 7n, epoch: 0, sequence: 3 }), clock.now, new Map());
  assert.equal(first.observation, undefined);
  // Nothing is remembered until the broker acknowledged it.
  assert.equal(tracker.check('payments', 'alice', record('pay 10 EUR'), clock.now, new Map()).observation, undefined);
  tracker.remember('payments', [{ digest: first.digest!, producer: { id: 7n, epoch: 0, sequence: 3 } }], clock.now);
  clock.now += 60_000;
  const again = tracker.check('payments', 'alice', record('pay 10 EUR'), clock.now, new Map());
  assert.equal(again.observation?.measure, 'duplicatePayload');
  assert.equal(again.observation?.observed, 60_000);
  assert.match(again.observation!.reason, /repeats the key and value .* produced 1m earlier/);
  const retry = tracker.check('payments', 'alice', record('pay 10 EUR', clock.now, { id: 7n, epoch: 0, sequence: 3 }), clock.now, new Map());
  assert.equal(retry.observation, undefined, 'the same producer sequence is a retry the broker deduplicates');
  const inOne = new Map();
  assert.equal(tracker.check('payments', 'alice', record('twice'), clock.now, inOne).observation, undefined);
  assert.equal(tracker.check('payments', 'alice', record('twice'), clock.now, inOne).observation?.measure, 'duplicatePayload', 'within one request');
  clock.now += 10 * 60_000 + 1;
  assert.equal(tracker.check('payments', 'alice', record('pay 10 EUR'), clock.now, new Map()).observation, undefined, 'outside the window');
});

test('signal rules are checked at load: kinds, effects, and what their match may say', () => {
  const problem = (rule: unknown) => {
    const result = configSchema.safeParse({ rules: [rule] });
    return result.success ? '' : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  };
  assert.match(problem({ name: 'r', signal: { volume: { measure: 'requests' } } }), /expected `limit` \(a fixed threshold\), `baseline`/);
  // A baseline given nothing but itself takes every default (a default that did not parse once refused it).
  const defaults = configSchema.parse({ rules: [{ name: 'r', signal: { volume: { measure: 'requests', baseline: {} } } }] }).rules[0]!.signal!.volume!.baseline;
  assert.deepEqual(defaults, { deviations: 3, warmup: 3_600_000, halfLife: 86_400_000, floor: 0 });
  assert.match(problem({ name: 'r', signal: { authFailures: { threshold: 3 }, effect: 'deny' } }), /expected `effect: alert` for authFailures/);
  assert.match(problem({ name: 'r', signal: { replay: { maxAge: '1h' }, effect: 'throttle' } }), /expected `alert` or `deny` for replay/);
  assert.match(problem({ name: 'r', signal: { replay: {} } }), /expected at least one of maxAge, maxAhead, duplicates/);
  assert.match(problem({ name: 'r', match: { http: {} }, signal: { volume: { measure: 'fetchedBytes', limit: 1 } } }), /expected a Kafka-only match for fetchedBytes/);
  assert.match(problem({ name: 'r', match: { kafka: {} }, signal: { authFailures: { threshold: 3 } } }), /expected only principal conditions/);
  assert.match(problem({ name: 'r', signal: { volume: { measure: 'requests', limit: 1 }, authFailures: { threshold: 1 } } }), /expected exactly one of `volume`, `authFailures` or `replay`/);
  assert.match(problem({ name: 'r', signal: { volume: { measure: 'requests', limit: 1, configs: 'retention.*' } } }), /expected `configs` only with `measure: changes`/);
  assert.match(problem({ name: 'r', match: { flagged: true }, effect: 'deny' }), /expected an `authFailures` signal rule somewhere/);
  assert.match(problem({ name: 'r', effect: 'deny', signal: { volume: { measure: 'requests', limit: 1 } } }), /expected exactly one of `effect`/);
  assert.equal(problem({ name: 'r', signal: { volume: { measure: 'changes', limit: 5, configs: ['retention.*'] } } }), '');
});
