/**
 * Session capture rules: their syntax (one kind per rule, `mask` only for masked payloads, Kafka only), how the
 * engine selects them by principal, operation and topic, and how several combine for one topic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../src/config/schema.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { combineCaptures } from '../../src/policy/capture.ts';
import { DETECTOR_NAMES } from '../../src/masking/detectors.ts';
import type { Principal } from '../../src/core/principal.ts';
import type { KafkaAction } from '../../src/core/action.ts';

const who = (subject: string, ...groups: string[]): Principal => ({ subject, groups, issuer: 'https://idp.test', authenticatedBy: 'oidc' });
const produce = (topic: string): KafkaAction => ({ kind: 'kafka', api: 'Produce', operation: 'produce', topic });
const consume = (topic: string): KafkaAction => ({ kind: 'kafka', api: 'Fetch', operation: 'consume', topic });
const policyOf = (rules: unknown[]) => compilePolicy(configSchema.parse({ rules }).rules);

function refusal(rules: unknown[]): string {
  try {
    parseConfig(JSON.stringify({ rules }), 'capture.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  return assert.fail('expected the config to be refused');
}

test('a capture rule has defaults: keys off, 1000 records per audit record', () => {
  const [rule] = configSchema.parse({ rules: [{ name: 'c', match: { kafka: { topic: 'payments' } }, capture: { payload: 'digest' } }] }).rules;
  assert.deepEqual(rule!.capture, { payload: 'digest', keys: false, maxRecords: 1000 });
});

test('a rule is exactly one of effect, mask, reject, capture', () => {
  assert.match(refusal([{ name: 'c', effect: 'allow', capture: { payload: 'digest' } }]), /exactly one of `effect`.*`capture`/);
  assert.match(refusal([{ name: 'c', reject: { detectors: ['card'] }, capture: { payload: 'digest' } }]), /exactly one of/);
});

test('`mask` belongs to masked captures only; capture is Kafka only; the payload form is named', () => {
  assert.match(refusal([{ name: 'c', capture: { payload: 'digest', mask: { detectors: ['card'] } } }]), /rules\[0\]\.capture\.mask: expected `mask` only with `payload: masked`/);
  assert.match(refusal([{ name: 'c', match: { http: { path: '/x' } }, capture: { payload: 'digest' } }]), /rules\[0\]\.match\.http: expected no `http` condition in a capture rule/);
  assert.match(refusal([{ name: 'c', capture: { payload: 'plain' } }]), /rules\[0\]\.capture\.payload/);
  assert.match(refusal([{ name: 'c', capture: { payload: 'masked', mask: { onUndecodable: 'fail' , detectors: ['card'] } } }]), /rules\[0\]\.capture\.mask\.onUndecodable/);
  assert.match(refusal([{ name: 'c', capture: { payload: 'masked', mask: { detectorStrategy: 'redact' } } }]), /expected `fields`, `detectors` or both/);
  assert.match(refusal([{ name: 'c', capture: { payload: 'digest', maxRecords: 0 } }]), /rules\[0\]\.capture\.maxRecords/);
});

test('captures(): every capture rule matching the principal, operation and topic, in config order; access is unaffected', () => {
  const policy = policyOf([
    { name: 'all-payments-produced', match: { kafka: { operation: 'produce', topic: 'payments*' } }, capture: { payload: 'digest' } },
    { name: 'analysts-reads', match: { group: 'analysts', kafka: { operation: 'consume' } }, capture: { payload: 'masked', keys: true } },
    { name: 'everything', match: { kafka: { topic: 'payments' } }, unless: { group: 'auditors' }, capture: { payload: 'digest', maxRecords: 10 } },
  ]);
  const ann = who('ann', 'analysts');
  assert.deepEqual(policy.captures(ann, produce('payments')).map((p) => p.rule), ['all-payments-produced', 'everything']);
  assert.deepEqual(policy.captures(ann, consume('payments')).map((p) => p.rule), ['analysts-reads', 'everything']);
  assert.deepEqual(policy.captures(ann, consume('orders')).map((p) => p.rule), ['analysts-reads']);
  assert.deepEqual(policy.captures(who('aud', 'auditors'), consume('payments')).map((p) => p.rule), []);
  assert.deepEqual(policy.captures(ann, { kind: 'http', method: 'GET', host: 'h', path: '/payments' }), []);
  assert.equal(policy.decide(ann, produce('payments')).effect, 'deny', 'a capture rule allows nothing');
  assert.deepEqual(policy.masks(ann, consume('payments')), [], 'nor does it mask what is served');
});

test('mayCaptureKafka: from the principal alone, whether any capture rule can apply', () => {
  const policy = policyOf([{ name: 'c', match: { group: 'interns', kafka: { topic: 'x' } }, capture: { payload: 'digest' } }]);
  assert.equal(policy.mayCaptureKafka(who('ann', 'analysts')), false);
  assert.equal(policy.mayCaptureKafka(who('ivy', 'interns')), true);
  assert.equal(policyOf([]).mayCaptureKafka(who('ivy', 'interns')), false);
});

test('combined for one topic: masked wins over digest, keys if any rule says so, the largest maxRecords, every mask in order', () => {
  const policy = policyOf([
    { name: 'd', match: {}, capture: { payload: 'digest', keys: true, maxRecords: 5 } },
    { name: 'm1', match: {}, capture: { payload: 'masked', maxRecords: 50, mask: { fields: { '$.card': 'keep-last-4' } } } },
    { name: 'm2', match: {}, capture: { payload: 'masked', maxRecords: 20 } },
  ]);
  const combined = combineCaptures(policy.captures(who('ann'), produce('t')))!;
  assert.deepEqual(combined.rules, ['d', 'm1', 'm2']);
  assert.equal(combined.payload, 'masked');
  assert.equal(combined.keys, true);
  assert.equal(combined.maxRecords, 50);
  assert.deepEqual(combined.masks.map((m) => m.rule), ['m1', 'm2']);
  assert.equal(combined.masks[0]!.plan.fields.length, 1);
  assert.deepEqual(combined.masks[1]!.plan.detectors, DETECTOR_NAMES, 'no mask given: every detector');
  assert.equal(combined.masks[1]!.onUndecodable, 'redact');
  assert.equal(combineCaptures([]), undefined);
  assert.equal(combineCaptures(policy.captures(who('ann'), produce('t')).slice(0, 1))!.payload, 'digest');
});
