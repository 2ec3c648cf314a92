/**
 * `effect: approve` rules in the policy engine and the config: what they demand, how a grant for exactly the same
 * principal, operation and resource turns the demand into an allow naming the grant, and what the config refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { compilePolicy, type ApprovalView } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import { parseConfig, ConfigError } from '../../src/config/load.ts';
import { grantScope, scopeKey } from '../../src/core/approval.ts';
import type { Action, KafkaAction } from '../../src/core/action.ts';
import type { GrantUse } from '../../src/core/decision.ts';
import type { Principal } from '../../src/core/principal.ts';

const who = (subject: string, ...groups: string[]): Principal => ({ subject, groups, issuer: 'https://idp.test', authenticatedBy: 'oidc' });
const deleteTopic = (topic: string): KafkaAction => ({ kind: 'kafka', api: 'DeleteTopics', operation: 'admin', topic });
const exec = (pod: string, namespace = 'demo'): Action => ({
  kind: 'http', method: 'POST', host: 'kube.test', path: `/api/v1/namespaces/${namespace}/pods/${pod}/exec`,
  kubernetes: { kind: 'resource', verb: 'create', apiGroup: '', apiVersion: 'v1', resource: 'pods', subresource: 'exec', namespace, name: pod, dryRun: false },
});

const RULES = [
  { name: 'platform-admins-may-do-everything', match: { group: 'platform-admins' }, effect: 'allow' },
  { name: 'topic-deletion-needs-approval', match: { kafka: { api: 'DeleteTopics' } }, effect: 'approve', approval: { approvers: { group: 'platform-admins' } } },
  { name: 'exec-is-held', match: { kubernetes: { resource: 'pods/exec', namespace: 'demo' } }, effect: 'approve', description: 'exec into demo pods needs an SRE', approval: { approvers: { group: ['sre', 'platform-admins'] }, min: 2, mode: 'hold', wait: '2m', grant: '10m', oneTime: true } },
];
const policy = compilePolicy(configSchema.parse({ rules: RULES }).rules);

function view(grants: Record<string, GrantUse> = {}, pending: Record<string, string> = {}): ApprovalView {
  return { grant: (scope) => grants[scope], pending: (scope, rule) => pending[`${rule} ${scope}`] };
}

test('an approve rule without a grant denies, saying what approval it needs and for which scope', () => {
  const d = policy.decide(who('alice', 'analysts'), deleteTopic('orders'));
  assert.deepEqual(d, {
    effect: 'deny', rule: 'topic-deletion-needs-approval', reason: 'approval required by rule topic-deletion-needs-approval',
    approval: {
      rule: 'topic-deletion-needs-approval',
      spec: { approverGroups: ['platform-admins'], min: 1, mode: 'ticket', waitMs: 3_600_000, grantMs: 1_800_000, oneTime: false },
      scope: { path: 'kafka', operation: 'DeleteTopics admin', resource: { topic: 'orders' } },
    },
  });
  const held = policy.decide(who('ci-bot', 'ci'), exec('web'));
  assert.deepEqual(held.approval?.spec, { approverGroups: ['sre', 'platform-admins'], min: 2, mode: 'hold', waitMs: 120_000, grantMs: 600_000, oneTime: true });
  assert.deepEqual(held.approval?.scope, { path: 'kubernetes', operation: 'create', resource: { apiGroup: '', resource: 'pods/exec', namespace: 'demo', name: 'web' } });
  assert.equal(held.reason, 'exec into demo pods needs an SRE');
});

test('a rule before the approve rule still decides first: platform admins need no approval', () => {
  assert.deepEqual(policy.decide(who('pat', 'platform-admins'), deleteTopic('orders')).effect, 'allow');
  assert.equal(policy.decide(who('pat', 'platform-admins'), deleteTopic('orders')).approval, undefined);
});

test('a grant for exactly this scope turns the demand into an allow naming the grant; another topic stays denied', () => {
  const grant: GrantUse = { id: 'grt_1', approval: 'apr_1', oneTime: false, expiresAt: 1 };
  const v = view({ [scopeKey(grantScope(deleteTopic('orders')))]: grant });
  assert.deepEqual(policy.decide(who('alice'), deleteTopic('orders'), v), {
    effect: 'allow', rule: 'topic-deletion-needs-approval', reason: 'allowed by grant grt_1 of approval apr_1 (rule topic-deletion-needs-approval)', grant,
  });
  const other = policy.decide(who('alice'), deleteTopic('payments'), v);
  assert.equal(other.effect, 'deny');
  assert.ok(other.approval);
  // The pod is part of the scope: a grant for exec into web is no grant for exec into db.
  const execGrant = view({ [scopeKey(grantScope(exec('web')))]: { ...grant, oneTime: true } });
  assert.equal(policy.decide(who('ci-bot'), exec('web'), execGrant).effect, 'allow');
  assert.equal(policy.decide(who('ci-bot'), exec('db'), execGrant).effect, 'deny');
});

test('a pending request is named in the reason with its id, who must approve and how', () => {
  const scope = scopeKey(grantScope(deleteTopic('orders')));
  const d = policy.decide(who('alice'), deleteTopic('orders'), view({}, { [`topic-deletion-needs-approval ${scope}`]: 'apr_abc' }));
  assert.equal(d.effect, 'deny');
  assert.equal(d.approval?.pending, 'apr_abc');
  assert.equal(d.reason, 'approval required by rule topic-deletion-needs-approval: approval apr_abc awaits an approver of platform-admins (tollgate approvals approve apr_abc)');
  const held = policy.decide(who('ci-bot'), exec('web'), view({}, { [`exec-is-held ${scopeKey(grantScope(exec('web')))}`]: 'apr_x' }));
  assert.match(held.reason, /awaits 2 approvers of sre, platform-admins/);
});

test('a shadow approve rule is reported as a would-be approve and the next rule decides', () => {
  const shadowed = compilePolicy(configSchema.parse({
    rules: [
      { name: 'would-need-approval', match: { kafka: { api: 'DeleteTopics' } }, effect: 'approve', shadow: true, approval: { approvers: { group: 'sre' } } },
      { name: 'open', match: {}, effect: 'allow' },
    ],
  }).rules);
  const d = shadowed.decide(who('alice'), deleteTopic('orders'));
  assert.equal(d.effect, 'allow');
  assert.deepEqual(d.shadow, [{ rule: 'would-need-approval', effect: 'approve', reason: 'approval required by rule would-need-approval' }]);
});

test('body rules ahead of an approve rule are still read: what a grant lets through must pass them', () => {
  const p = compilePolicy(configSchema.parse({
    rules: [
      { name: 'no-privileged-pods', match: { kubernetes: { resource: 'pods/exec' }, body: { '$.privileged': { equals: true } } }, effect: 'deny' },
      { name: 'exec-needs-approval', match: { kubernetes: { resource: 'pods/exec' } }, effect: 'approve', approval: { approvers: { group: 'sre' }, mode: 'hold' } },
    ],
  }).rules);
  assert.deepEqual(p.bodyRules(who('ci-bot'), exec('web')).map((r) => r.rule), ['no-privileged-pods']);
});

function configIssues(rules: unknown[], approvals?: unknown): string[] {
  try {
    parseConfig(YAML.stringify({ rules, ...(approvals !== undefined && { approvals }) }), 'test.yaml');
    return [];
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message.split('\n').slice(1).map((l) => l.trim());
  }
}

test('the config refuses approve rules that cannot work, naming the key', () => {
  const approvers = { approvers: { group: 'sre' } };
  const cases: Array<[string, unknown[], unknown, RegExp]> = [
    ['no approval', [{ name: 'r', effect: 'approve' }], undefined, /rules\[0\]\.approval.*expected `approval`/],
    ['approval on allow', [{ name: 'r', effect: 'allow', approval: approvers }], undefined, /rules\[0\]\.approval.*only on a rule with `effect: approve`/],
    ['hold on Kafka', [{ name: 'r', match: { kafka: { api: 'DeleteTopics' } }, effect: 'approve', approval: { ...approvers, mode: 'hold' } }], undefined, /rules\[0\]\.approval\.mode.*Kafka requests are answered at once/],
    ['hold over maxHold', [{ name: 'r', effect: 'approve', approval: { ...approvers, mode: 'hold', wait: '10m' } }], undefined, /rules\[0\]\.approval\.wait.*at most approvals\.maxHold \(300s\), got 600s/],
    ['default hold over a lower maxHold', [{ name: 'r', effect: 'approve', approval: { ...approvers, mode: 'hold' } }], { maxHold: '1m' }, /rules\[0\]\.approval\.wait.*at most approvals\.maxHold \(60s\), got 300s/],
    ['grant over maxGrant', [{ name: 'r', effect: 'approve', approval: { ...approvers, grant: '9h' } }], undefined, /rules\[0\]\.approval\.grant.*at most approvals\.maxGrant \(28800s\), got 32400s/],
    ['min 0', [{ name: 'r', effect: 'approve', approval: { ...approvers, min: 0 } }], undefined, /rules\[0\]\.approval\.min/],
    ['no approvers', [{ name: 'r', effect: 'approve', approval: {} }], undefined, /rules\[0\]\.approval\.approvers/],
  ];
  for (const [what, rules, approvals, expected] of cases) {
    const issues = configIssues(rules, approvals);
    assert.ok(issues.some((i) => expected.test(i)), `${what}: ${JSON.stringify(issues)}`);
  }
  assert.deepEqual(configIssues([{ name: 'r', effect: 'approve', approval: { ...approvers, mode: 'hold', wait: '5m' } }]), []);
});

test('approvals defaults: the SQLite file under .tollgate, a 5 minute hold limit, 8 hour grants at most', () => {
  const config = configSchema.parse({});
  assert.deepEqual(config.approvals, { store: { sqlite: { path: '.tollgate/approvals.sqlite' } }, maxHold: 300_000, maxGrant: 28_800_000, pollInterval: 2_000 });
});
