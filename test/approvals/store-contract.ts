/**
 * What every approval store must do, as one suite run against each store (SQLite here; PostgreSQL runs the same):
 * one pending request per requester, rule and scope; decisions applied atomically; grants that are live only while
 * unexpired, unused and unrevoked; a one-time grant used once even when two requests race for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grantScope, requesterKey, scopeKey, describeScope } from '../../src/core/approval.ts';
import type { KafkaAction } from '../../src/core/action.ts';
import { newId, type NewApprovalRequest } from '../../src/approvals/model.ts';
import type { ApprovalStore } from '../../src/approvals/store.ts';

export const T0 = Date.parse('2026-11-23T10:00:00Z');
export const ALICE = { subject: 'alice', issuer: 'https://idp.test', groups: ['analysts'] };
export const BOB = { subject: 'bob', issuer: 'https://idp.test' };
export const CAROL = { subject: 'carol', issuer: 'https://idp.test' };

const deleteTopic = (topic: string): KafkaAction => ({ kind: 'kafka', api: 'DeleteTopics', operation: 'admin', topic });

export function newRequest(overrides: Partial<NewApprovalRequest> = {}, topic = 'orders'): NewApprovalRequest {
  const scope = grantScope(deleteTopic(topic));
  return {
    id: newId('apr'), rule: 'topic-deletion-needs-approval', mode: 'ticket',
    requester: ALICE, requesterKey: requesterKey(ALICE), scope, scopeKey: scopeKey(scope), summary: describeScope(scope),
    reason: 'approval required by rule topic-deletion-needs-approval', context: { clientId: 'admin-cli' },
    approverGroups: ['platform-admins'], min: 1, grantMs: 30 * 60_000, oneTime: false,
    createdAt: T0, expiresAt: T0 + 3_600_000,
    ...overrides,
  };
}

export function storeContract(name: string, openStore: () => Promise<ApprovalStore>): void {
  const withStore = (title: string, body: (store: ApprovalStore) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const store = await openStore();
      try {
        await body(store);
      } finally {
        await store.close();
      }
    });

  withStore('a request is filed pending with what the approver needs to see, and read back as filed', async (store) => {
    const filed = newRequest();
    const { request, created } = await store.open(filed, T0);
    assert.equal(created, true);
    const read = await store.get(filed.id);
    assert.deepEqual(read, { ...filed, state: 'pending', decisions: [] });
    assert.deepEqual(request, read);
  });

  withStore('a retry finds the pending request instead of filing another; another scope or rule is another request', async (store) => {
    const first = await store.open(newRequest(), T0);
    const retry = await store.open(newRequest(), T0 + 1000);
    assert.equal(retry.created, false);
    assert.equal(retry.request.id, first.request.id);
    const other = await store.open(newRequest({}, 'payments'), T0);
    assert.equal(other.created, true);
    const otherRule = await store.open(newRequest({ rule: 'another-rule' }), T0);
    assert.equal(otherRule.created, true);
    assert.equal((await store.list({ state: 'pending' })).length, 3);
  });

  withStore('a pending request past its expiry gives way: the retry files a new one and the old one reads expired', async (store) => {
    const first = await store.open(newRequest({ expiresAt: T0 + 1000 }), T0);
    const later = await store.open(newRequest(), T0 + 2000);
    assert.equal(later.created, true);
    assert.notEqual(later.request.id, first.request.id);
    assert.equal((await store.get(first.request.id))?.state, 'expired');
  });

  withStore('one approval of an approver reaching min approves and creates the grant for the requester and scope', async (store) => {
    const filed = newRequest();
    await store.open(filed, T0);
    const result = await store.decide(filed.id, { approver: BOB, verdict: 'approve', at: T0 + 5000 }, 'grt_first');
    assert.equal(result.ok, true);
    assert.ok(result.ok);
    assert.equal(result.request.state, 'approved');
    assert.deepEqual(result.grant, {
      id: 'grt_first', approval: filed.id, requesterKey: filed.requesterKey, scopeKey: filed.scopeKey,
      oneTime: false, createdAt: T0 + 5000, expiresAt: T0 + 5000 + filed.grantMs,
    });
    const read = await store.get(filed.id);
    assert.equal(read?.state, 'approved');
    assert.equal(read?.decidedAt, T0 + 5000);
    assert.deepEqual(read?.decisions, [{ approver: BOB, verdict: 'approve', at: T0 + 5000 }]);
    assert.deepEqual(read?.grant, result.grant);
    const mine = await store.forRequester(filed.requesterKey, T0 + 6000);
    assert.deepEqual(mine.grants, [result.grant]);
    assert.deepEqual(mine.pending, []);
  });

  withStore('min 2 needs two distinct approvers: the same approver twice is refused, the second approves', async (store) => {
    const filed = newRequest({ min: 2 });
    await store.open(filed, T0);
    const first = await store.decide(filed.id, { approver: BOB, verdict: 'approve', at: T0 + 1 }, 'grt_a');
    assert.ok(first.ok);
    assert.equal(first.request.state, 'pending');
    assert.equal(first.grant, undefined);
    const again = await store.decide(filed.id, { approver: BOB, verdict: 'approve', at: T0 + 2 }, 'grt_b');
    assert.deepEqual(again.ok ? 'ok' : again.refusal, 'already_decided');
    const second = await store.decide(filed.id, { approver: CAROL, verdict: 'approve', at: T0 + 3 }, 'grt_c');
    assert.ok(second.ok);
    assert.equal(second.request.state, 'approved');
    assert.equal(second.grant?.id, 'grt_c');
    assert.equal((await store.get(filed.id))?.decisions.length, 2);
  });

  withStore('a rejection rejects with its reason; nothing can be decided after, and no grant exists', async (store) => {
    const filed = newRequest({ min: 2 });
    await store.open(filed, T0);
    const rejected = await store.decide(filed.id, { approver: BOB, verdict: 'reject', reason: 'not during the freeze', at: T0 + 1 }, 'grt_x');
    assert.ok(rejected.ok);
    assert.equal(rejected.request.state, 'rejected');
    const late = await store.decide(filed.id, { approver: CAROL, verdict: 'approve', at: T0 + 2 }, 'grt_y');
    assert.deepEqual(late.ok ? 'ok' : late.refusal, 'not_pending');
    const read = await store.get(filed.id);
    assert.equal(read?.decisions[0]?.reason, 'not during the freeze');
    assert.equal(read?.grant, undefined);
    assert.deepEqual((await store.forRequester(filed.requesterKey, T0 + 3)).grants, []);
  });

  withStore('an expired request cannot be approved, and an unknown one is not found', async (store) => {
    const filed = newRequest({ expiresAt: T0 + 1000 });
    await store.open(filed, T0);
    const late = await store.decide(filed.id, { approver: BOB, verdict: 'approve', at: T0 + 1000 }, 'grt_z');
    assert.deepEqual(late.ok ? 'ok' : late.refusal, 'expired');
    const unknown = await store.decide('apr_nothing', { approver: BOB, verdict: 'approve', at: T0 }, 'grt_q');
    assert.deepEqual(unknown.ok ? 'ok' : unknown.refusal, 'not_found');
  });

  withStore('a grant is live until it expires; then the requester has none', async (store) => {
    const filed = newRequest({ grantMs: 60_000 });
    await store.open(filed, T0);
    await store.decide(filed.id, { approver: BOB, verdict: 'approve', at: T0 }, 'grt_t');
    assert.equal((await store.forRequester(filed.requesterKey, T0 + 59_999)).grants.length, 1);
    assert.equal((await store.forRequester(filed.requesterKey, T0 + 60_000)).grants.length, 0);
    assert.equal(await store.useGrant('grt_t', T0 + 60_000), false, 'an expired grant cannot be used');
  });

  withStore('a one-time grant is used once, even by two requests at the same moment', async (store) => {
    const filed = newRequest({ oneTime: true });
    await store.open(filed, T0);
    await store.decide(filed.id, { approver: BOB, verdict: 'approve', at: T0 }, 'grt_once');
    const [a, b] = await Promise.all([store.useGrant('grt_once', T0 + 1), store.useGrant('grt_once', T0 + 1)]);
    assert.deepEqual([a, b].sort(), [false, true]);
    assert.deepEqual((await store.forRequester(filed.requesterKey, T0 + 2)).grants, []);
    assert.equal((await store.get(filed.id))?.grant?.usedAt, T0 + 1);
  });

  withStore('revoking a live grant ends it with who and why; there is nothing left to revoke after', async (store) => {
    const filed = newRequest();
    await store.open(filed, T0);
    await store.decide(filed.id, { approver: BOB, verdict: 'approve', at: T0 }, 'grt_r');
    const revoked = await store.revoke(filed.id, CAROL, 'wrong cluster', T0 + 10);
    assert.equal(revoked?.id, 'grt_r');
    assert.equal(revoked?.revokedAt, T0 + 10);
    assert.deepEqual(revoked?.revokedBy, CAROL);
    assert.equal(revoked?.revokeReason, 'wrong cluster');
    assert.deepEqual((await store.forRequester(filed.requesterKey, T0 + 11)).grants, []);
    assert.equal(await store.revoke(filed.id, CAROL, 'again', T0 + 12), undefined);
    assert.equal(await store.useGrant('grt_r', T0 + 13), false);
  });

  withStore('expire marks pending requests past their expiry, once, and leaves the others', async (store) => {
    const due = newRequest({ expiresAt: T0 + 1000 });
    const later = newRequest({ expiresAt: T0 + 5000 }, 'payments');
    await store.open(due, T0);
    await store.open(later, T0);
    const expired = await store.expire(T0 + 1000);
    assert.deepEqual(expired.map((r) => [r.id, r.state]), [[due.id, 'expired']]);
    assert.deepEqual(await store.expire(T0 + 1000), []);
    assert.equal((await store.get(later.id))?.state, 'pending');
    assert.deepEqual((await store.forRequester(due.requesterKey, T0 + 1000)).pending.map((r) => r.id), [later.id]);
  });

  withStore('list is newest first and filters by state', async (store) => {
    const a = newRequest({ createdAt: T0 });
    const b = newRequest({ createdAt: T0 + 10 }, 'payments');
    await store.open(a, T0);
    await store.open(b, T0 + 10);
    await store.decide(a.id, { approver: BOB, verdict: 'approve', at: T0 + 20 }, 'grt_l');
    assert.deepEqual((await store.list()).map((r) => r.id), [b.id, a.id]);
    assert.deepEqual((await store.list({ state: 'approved' })).map((r) => r.id), [a.id]);
    assert.deepEqual((await store.list({ state: 'pending' })).map((r) => r.id), [b.id]);
  });
}
