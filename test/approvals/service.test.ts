/**
 * The approval service: who may decide (approver groups, never the requester, min distinct approvers, a rejection
 * needs a reason), what a requester's next request sees (grants that expire on the injected clock, one-time grants
 * used once, revocation), held requests released by a decision in this process or in another one sharing the store,
 * and every change as an event and an audit record carrying the approval's id and state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ApprovalError, ApprovalService, type ApprovalEvent } from '../../src/approvals/service.ts';
import { openSqliteStore } from '../../src/approvals/sqlite.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import type { KafkaAction } from '../../src/core/action.ts';
import type { Principal } from '../../src/core/principal.ts';
import type { AuditRecord } from '../../src/audit/record.ts';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const who = (subject: string, ...groups: string[]): Principal => ({ subject, groups, issuer: 'https://idp.test', authenticatedBy: 'oidc' });
const alice = who('alice', 'analysts');
const pat = who('pat', 'platform-admins');
const sam = who('sam', 'platform-admins');
const eve = who('eve', 'analysts');
const deleteTopic = (topic: string): KafkaAction => ({ kind: 'kafka', api: 'DeleteTopics', operation: 'admin', topic });

const policy = compilePolicy(configSchema.parse({
  rules: [
    { name: 'deletion-needs-approval', match: { kafka: { api: 'DeleteTopics', topic: 'orders' } }, effect: 'approve', approval: { approvers: { group: 'platform-admins' }, grant: '30m' } },
    { name: 'two-approvers', match: { kafka: { api: 'DeleteTopics', topic: 'payments' } }, effect: 'approve', approval: { approvers: { group: 'platform-admins' }, min: 2, oneTime: true } },
  ],
}).rules);

async function setup(file = ':memory:', pollIntervalMs = 50) {
  const clock = { now: T0 };
  const audit: AuditRecord[] = [];
  const events: ApprovalEvent[] = [];
  const service = new ApprovalService({
    store: await openSqliteStore(file, T0), audit: { write: (r) => audit.push(r) }, logger: pino({ level: 'silent' }),
    baseUrl: 'http://127.0.0.1:9901/', pollIntervalMs, clock: () => clock.now, notify: (e) => events.push(e),
  });
  return { service, clock, audit, events };
}

/** What an adapter does: decide, and file the request the decision demands. */
async function ask(service: ApprovalService, principal: Principal, topic: string) {
  const first = policy.decide(principal, deleteTopic(topic));
  assert.ok(first.approval, `expected ${topic} to need approval`);
  return service.open(principal, first.approval, first.reason, { clientId: 'admin-cli' });
}

const decideWithView = async (service: ApprovalService, principal: Principal, topic: string) =>
  policy.decide(principal, deleteTopic(topic), await service.view(principal));

const code = (c: string) => (error: unknown) => error instanceof ApprovalError && error.code === c;

test('a filed request is an event and an audit record with its id, state and URL; a retry is the same request', async () => {
  const { service, audit, events } = await setup();
  const request = await ask(service, alice, 'orders');
  assert.match(request.id, /^apr_[a-z2-7]{16}$/);
  assert.equal(request.summary, 'kafka DeleteTopics admin topic=orders');
  assert.deepEqual(request.context, { clientId: 'admin-cli' });
  assert.equal(request.expiresAt, T0 + 3_600_000, 'a ticket stays open an hour by default');
  assert.equal((await ask(service, alice, 'orders')).id, request.id);
  assert.deepEqual(events.map((e) => [e.type, e.request.id, e.url]), [['requested', request.id, `http://127.0.0.1:9901/approvals/${request.id}`]]);
  assert.equal(audit.length, 1);
  assert.equal(audit[0]?.event, 'approval.requested');
  assert.equal(audit[0]?.path, 'kafka');
  assert.equal(audit[0]?.principal?.subject, 'alice');
  assert.deepEqual(audit[0]?.details?.['approval'], { id: request.id, state: 'pending' });
  const pending = await decideWithView(service, alice, 'orders');
  assert.equal(pending.approval?.pending, request.id, 'the next decision names the pending request');
  await service.close();
});

test('only an approver group member who is not the requester decides; the requester\'s own approval is refused', async () => {
  const { service } = await setup();
  const request = await ask(service, alice, 'orders');
  await assert.rejects(service.approve(request.id, eve), code('not_an_approver'));
  // Even a platform admin cannot approve what they asked for themselves.
  const own = await ask(service, who('root', 'platform-admins', 'analysts'), 'orders');
  await assert.rejects(service.approve(own.id, who('root', 'platform-admins')), (e: unknown) => {
    assert.ok(e instanceof ApprovalError);
    assert.equal(e.code, 'self_approval');
    assert.equal(e.httpStatus, 403);
    assert.match(e.message, /root asked for approval .* and cannot approve it: another approver must/);
    return true;
  });
  await assert.rejects(service.approve('apr_unknown', pat), code('not_found'));
  await service.close();
});

test('an approval creates a grant the requester\'s next request uses, for exactly that topic, until it expires', async () => {
  const { service, clock, events, audit } = await setup();
  const request = await ask(service, alice, 'orders');
  clock.now += 60_000;
  const approved = await service.approve(request.id, pat, 'CHG-42');
  assert.equal(approved.state, 'approved');
  assert.equal(approved.grant?.expiresAt, clock.now + 30 * 60_000);
  assert.deepEqual(events.map((e) => e.type), ['requested', 'approved']);
  assert.deepEqual(audit.at(-1)?.details?.['approval'], { id: request.id, state: 'approved' });
  assert.equal(audit.at(-1)?.principal?.subject, 'pat');

  const allowed = await decideWithView(service, alice, 'orders');
  assert.equal(allowed.effect, 'allow');
  assert.equal(allowed.grant?.approval, request.id);
  assert.equal((await decideWithView(service, alice, 'analytics')).effect, 'deny', 'no rule allows another topic');
  assert.equal((await decideWithView(service, eve, 'orders')).effect, 'deny', 'the grant is alice\'s, not everyone\'s');

  clock.now += 30 * 60_000 - 1;
  assert.equal((await decideWithView(service, alice, 'orders')).effect, 'allow', 'a millisecond before expiry');
  clock.now += 1;
  const expired = await decideWithView(service, alice, 'orders');
  assert.equal(expired.effect, 'deny');
  assert.ok(expired.approval, 'expired: approval is needed again');
  await assert.rejects(service.approve(request.id, sam), code('not_pending'));
  await service.close();
});

test('min 2: two distinct approvers; one rejection rejects, and it needs a reason', async () => {
  const { service, events } = await setup();
  const request = await ask(service, alice, 'payments');
  const half = await service.approve(request.id, pat);
  assert.equal(half.state, 'pending');
  await assert.rejects(service.approve(request.id, pat), code('already_decided'));
  assert.equal((await decideWithView(service, alice, 'payments')).effect, 'deny');
  const full = await service.approve(request.id, sam);
  assert.equal(full.state, 'approved');
  assert.deepEqual(events.map((e) => e.type), ['requested', 'decided', 'approved']);

  const other = await ask(service, eve, 'payments');
  await assert.rejects(service.reject(other.id, pat, '  '), code('reason_required'));
  const rejected = await service.reject(other.id, pat, 'payments is being migrated');
  assert.equal(rejected.state, 'rejected');
  await assert.rejects(service.approve(other.id, sam), code('not_pending'));
  await service.close();
});

test('a one-time grant lets one request through; the next needs approval again', async () => {
  const { service } = await setup();
  const request = await ask(service, alice, 'payments');
  await service.approve(request.id, pat);
  await service.approve(request.id, sam);
  const first = await decideWithView(service, alice, 'payments');
  assert.equal(first.grant?.oneTime, true);
  assert.equal(await service.use(first.grant!), true);
  assert.equal(await service.use(first.grant!), false, 'used up');
  assert.equal((await decideWithView(service, alice, 'payments')).effect, 'deny');
  await service.close();
});

test('revocation ends a live grant at once, with who and why; there is nothing to revoke twice', async () => {
  const { service, events, audit } = await setup();
  const request = await ask(service, alice, 'orders');
  await service.approve(request.id, pat);
  await assert.rejects(service.revoke(request.id, eve, 'nosy'), code('not_found'), 'a stranger does not even see it');
  await assert.rejects(service.revoke(request.id, sam, ''), code('reason_required'));
  const grant = await service.revoke(request.id, sam, 'wrong topic');
  assert.equal(grant.revokeReason, 'wrong topic');
  assert.equal(events.at(-1)?.type, 'revoked');
  assert.equal(events.at(-1)?.grant?.id, grant.id);
  assert.deepEqual(audit.at(-1)?.details?.['approval'], { id: request.id, state: 'revoked' });
  assert.equal(audit.at(-1)?.reason, 'wrong topic');
  assert.equal((await decideWithView(service, alice, 'orders')).effect, 'deny');
  await assert.rejects(service.revoke(request.id, sam, 'again'), code('no_live_grant'));
  await service.close();
});

test('requesters and approvers see a request; others do not, and list shows pending ones by default', async () => {
  const { service } = await setup();
  const request = await ask(service, alice, 'orders');
  assert.equal((await service.get(request.id, alice)).id, request.id);
  assert.equal((await service.get(request.id, pat)).id, request.id);
  await assert.rejects(service.get(request.id, eve), code('not_found'));
  assert.deepEqual((await service.list(pat)).map((r) => r.id), [request.id]);
  assert.deepEqual(await service.list(eve), []);
  await service.approve(request.id, pat);
  assert.deepEqual(await service.list(pat), []);
  assert.deepEqual((await service.list(pat, 'approved')).map((r) => r.id), [request.id]);
  await service.close();
});

test('a held request wakes when approved, and reads expired when nobody decides in time', async () => {
  const { service, clock, events } = await setup(':memory:', 20);
  const request = await ask(service, alice, 'orders');
  const waiting = service.wait(request.id, T0 + 60_000);
  setTimeout(() => { service.approve(request.id, pat).catch(() => {}); }, 30);
  assert.equal((await waiting)?.state, 'approved');

  const other = await ask(service, alice, 'payments');
  clock.now = other.expiresAt;
  const late = await service.wait(other.id, clock.now + 60_000);
  assert.equal(late?.state, 'expired');
  assert.ok(events.some((e) => e.type === 'expired' && e.request.id === other.id));
  await service.close();
});

test('a held request is released by an approval another tollgate process records in the shared store', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-approvals-')), 'shared.sqlite');
  const holder = await setup(file, 20);
  const approver = await setup(file, 20);
  const request = await ask(holder.service, alice, 'orders');
  const waiting = holder.service.wait(request.id, T0 + 60_000);
  await approver.service.approve(request.id, pat);
  assert.equal((await waiting)?.state, 'approved');
  assert.deepEqual(holder.events.map((e) => e.type), ['requested'], 'no event reached the holder: it read the store');
  await holder.service.close();
  await approver.service.close();
});

test('a draining process ends its holds at once; the approval stays pending for a retry elsewhere', async () => {
  const { service } = await setup(':memory:', 10_000);
  const request = await ask(service, alice, 'orders');
  const waiting = service.wait(request.id, T0 + 60_000);
  await new Promise((r) => setTimeout(r, 10));
  service.stopHolding();
  assert.equal((await waiting)?.state, 'pending');
  assert.equal((await service.wait(request.id, T0 + 60_000))?.state, 'pending', 'no new hold starts');
  await service.close();
});

test('a wait ends when its caller goes away', async () => {
  const { service } = await setup(':memory:', 10_000);
  const request = await ask(service, alice, 'orders');
  const gone = new AbortController();
  const waiting = service.wait(request.id, T0 + 60_000, gone.signal);
  gone.abort();
  assert.equal((await waiting)?.state, 'pending');
  await service.close();
});
