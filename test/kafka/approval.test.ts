/**
 * Just-in-time approval on a Kafka connection, with the real policy engine and approval service (in-memory SQLite):
 * a request an `approve` rule covers is answered at once with POLICY_VIOLATION and the approval's id in the error
 * message where the version has one; once approved, the grant lets the retry through to the broker; grants expire
 * on the service's clock; revoking a grant closes the connections that went through with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { BrokerRoutes, KafkaConnection, type ConnectionOutput } from '../../src/kafka/connection.ts';
import { createKafkaApprovals } from '../../src/kafka/approval.ts';
import { ApprovalService } from '../../src/approvals/service.ts';
import { openSqliteStore } from '../../src/approvals/sqlite.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import { API_KEY } from '../../src/kafka/protocol/api-keys.ts';
import { KafkaError } from '../../src/kafka/protocol/error-codes.ts';
import { decodeRequest, decodeResponse, encodeResponse } from '../../src/kafka/protocol/messages.ts';
import type { Principal } from '../../src/core/principal.ts';
import type { Decision } from '../../src/core/decision.ts';
import { MemoryAudit } from './fakes.ts';
import { authenticate, fakeAuthenticate, goodToken, handshake, produce, request, settle } from './requests.ts';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const DELETE_TOPICS = 20;
const pat: Principal = { subject: 'pat', groups: ['platform-admins'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };

const policy = compilePolicy(configSchema.parse({
  rules: [
    { name: 'topic-deletion-needs-approval', match: { kafka: { api: 'DeleteTopics' } }, unless: { group: 'platform-admins' }, effect: 'approve', approval: { approvers: { group: 'platform-admins' }, grant: '30m' } },
    { name: 'orders-are-open', match: { kafka: { topic: 'orders' } }, effect: 'allow' },
  ],
}).rules);

async function setup() {
  const clock = { now: T0 };
  const service = new ApprovalService({
    store: await openSqliteStore(':memory:', T0), audit: { write: () => {} }, logger: pino({ level: 'silent' }),
    baseUrl: 'http://127.0.0.1:9901', pollIntervalMs: 1000, clock: () => clock.now,
  });
  const open = async (subject: string) => {
    const delivered: ConnectionOutput[] = [];
    const audit = new MemoryAudit();
    const decisions: Decision[] = [];
    const connection = new KafkaConnection({
      maxFrameBytes: 1024 * 1024, maxInFlight: 100, maxSessionLifetimeMs: 3_600_000, routes: new BrokerRoutes([]),
      authenticate: fakeAuthenticate,
      decide: (principal, action, approvals) => policy.decide(principal, action, approvals),
      approvals: createKafkaApprovals(service),
      audit, logger: pino({ level: 'silent' }), deliver: (output) => delivered.push(output),
      clock: () => clock.now, onDecision: (d) => decisions.push(d),
    });
    connection.onClientData(Buffer.concat([handshake(1), authenticate(2, goodToken(subject, T0 / 1000 + 86_400))]));
    await settle();
    delivered.splice(0);
    return { connection, delivered, audit, decisions };
  };
  return { service, clock, open };
}

const deleteTopics = (id: number, version: number, topic = 'orders') => request(DELETE_TOPICS, version, id, { topics: [], topicNames: [topic], timeoutMs: 1000 });

/** Sends a frame and waits for the connection's asynchronous work (reading and filing approvals). */
async function send(c: Awaited<ReturnType<Awaited<ReturnType<typeof setup>>['open']>>, frame: Buffer): Promise<ConnectionOutput> {
  const out = c.connection.onClientData(frame);
  for (let i = 0; i < 20 && c.delivered.length === 0 && out.toBroker.length === 0 && out.toClient.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  const later = c.delivered.splice(0);
  return {
    toBroker: [...out.toBroker, ...later.flatMap((d) => d.toBroker)],
    toClient: [...out.toClient, ...later.flatMap((d) => d.toClient)],
    ...((out.close ?? later.find((d) => d.close)?.close) !== undefined && { close: out.close ?? later.find((d) => d.close)!.close! }),
  };
}

test('DeleteTopics needing approval: POLICY_VIOLATION with the approval id in the message, nothing reaches the broker; approved, the retry goes through', async () => {
  const { service, open } = await setup();
  const alice = await open('alice');
  const first = await send(alice, deleteTopics(10, 5));
  assert.deepEqual(first.toBroker, []);
  const answer = decodeResponse(first.toClient[0]!, DELETE_TOPICS, 5).body;
  assert.equal(answer.responses[0]?.errorCode, KafkaError.POLICY_VIOLATION);
  const id = /approval (apr_\w+) awaits/.exec(answer.responses[0]?.errorMessage ?? '')?.[1];
  assert.ok(id, answer.responses[0]?.errorMessage ?? 'no message');
  assert.equal(answer.responses[0]?.errorMessage, `approval required by rule topic-deletion-needs-approval: approval ${id} awaits an approver of platform-admins (tollgate approvals approve ${id})`);
  const denied = alice.audit.records.find((r) => r.event === 'kafka.request.denied');
  assert.deepEqual(denied?.details?.['approval'], { id, state: 'pending' });
  assert.deepEqual(alice.decisions.map((d) => d.effect), ['deny'], 'the decision is counted once, not once per pass');

  const filed = await service.get(id, pat);
  assert.equal(filed.summary, 'kafka DeleteTopics admin topic=orders');
  assert.equal(filed.context['clientId'], 'test-client');
  assert.equal(filed.context['api'], 'DeleteTopics');

  // A retry before approval names the same approval.
  const retry = await send(alice, deleteTopics(11, 5));
  assert.match(decodeResponse(retry.toClient[0]!, DELETE_TOPICS, 5).body.responses[0]?.errorMessage ?? '', new RegExp(`approval ${id} awaits`));

  await service.approve(id, pat);
  const allowed = await send(alice, deleteTopics(12, 5));
  assert.equal(allowed.toClient.length, 0);
  assert.equal(allowed.toBroker.length, 1, 'the retry goes to the broker');
  assert.deepEqual((decodeRequest(allowed.toBroker[0]!).body as { topicNames: string[] }).topicNames, ['orders']);
  const brokerAnswer = encodeResponse({ correlationId: 12, taggedFields: [] }, DELETE_TOPICS, 5, {
    throttleTimeMs: 0, responses: [{ name: 'orders', topicId: '', errorCode: 0, errorMessage: null }],
  });
  assert.equal(alice.connection.onBrokerData(brokerAnswer).toClient.length, 1);
  const forwarded = alice.audit.records.findLast((r) => r.details?.['correlationId'] === 12);
  const note = forwarded?.details?.['approval'] as { id: string; state: string; grant: string } | undefined;
  assert.equal(note?.id, id);
  assert.equal(note?.state, 'approved');
  assert.match(note?.grant ?? '', /^grt_/);
  await service.close();
});

test('a DeleteTopics version without an error message still gets POLICY_VIOLATION; the id is in the audit record', async () => {
  const { service, open } = await setup();
  const alice = await open('alice');
  const out = await send(alice, deleteTopics(10, 1));
  const answer = decodeResponse(out.toClient[0]!, DELETE_TOPICS, 1).body;
  assert.equal(answer.responses[0]?.errorCode, KafkaError.POLICY_VIOLATION);
  assert.equal(answer.responses[0]?.errorMessage, null);
  const id = (alice.audit.records.find((r) => r.event === 'kafka.request.denied')?.details?.['approval'] as { id: string }).id;
  assert.equal((await service.get(id, pat)).state, 'pending');
  await service.close();
});

test('requests behind one whose approvals are being read wait, and all answers keep the client\'s order', async () => {
  const { service, open } = await setup();
  const alice = await open('alice');
  const out = alice.connection.onClientData(Buffer.concat([deleteTopics(20, 5), produce(21, ['orders'])]));
  assert.deepEqual(out.toBroker, [], 'the produce waits behind the DeleteTopics being readied');
  await new Promise((r) => setTimeout(r, 20));
  const delivered = alice.delivered.splice(0);
  assert.equal(delivered.flatMap((d) => d.toBroker).length, 1, 'then the produce goes to the broker');
  assert.equal(delivered.flatMap((d) => d.toClient)[0]?.readInt32BE(4), 20, 'the DeleteTopics answer is released first');
  await service.close();
});

test('a grant expires on the service\'s clock: the retry after it needs a new approval', async () => {
  const { service, clock, open } = await setup();
  const alice = await open('alice');
  const first = decodeResponse((await send(alice, deleteTopics(10, 5))).toClient[0]!, DELETE_TOPICS, 5).body;
  const id = /approval (apr_\w+)/.exec(first.responses[0]!.errorMessage!)![1]!;
  await service.approve(id, pat);
  clock.now += 30 * 60_000;
  const late = await send(alice, deleteTopics(11, 5));
  assert.deepEqual(late.toBroker, []);
  const message = decodeResponse(late.toClient[0]!, DELETE_TOPICS, 5).body.responses[0]!.errorMessage!;
  const again = /approval (apr_\w+)/.exec(message)![1];
  assert.notEqual(again, id, 'a new approval request');
  await service.close();
});

test('revoking a grant closes the connections that went through with it; others stay open', async () => {
  const { service, open } = await setup();
  const alice = await open('alice');
  const bystander = await open('bob');
  const first = decodeResponse((await send(alice, deleteTopics(10, 5))).toClient[0]!, DELETE_TOPICS, 5).body;
  const id = /approval (apr_\w+)/.exec(first.responses[0]!.errorMessage!)![1]!;
  await service.approve(id, pat);
  assert.equal((await send(alice, deleteTopics(11, 5))).toBroker.length, 1);
  await send(bystander, produce(5, ['orders']));
  await service.revoke(id, pat, 'deleted the wrong topic');
  const closed = alice.delivered.find((d) => d.close !== undefined)?.close;
  assert.equal(closed?.event, 'kafka.approval.grant_revoked');
  assert.match(closed?.reason ?? '', new RegExp(`grant grt_\\w+ of approval ${id}, which requests on this connection relied on, was revoked`));
  assert.deepEqual((closed?.details as { approval: unknown }).approval, { id, state: 'revoked' });
  assert.equal(bystander.delivered.find((d) => d.close !== undefined), undefined);
  alice.connection.dispose();
  bystander.connection.dispose();
  await service.close();
});

test('a store that cannot be read refuses with POLICY_VIOLATION and says so; the connection goes on', async () => {
  const { service, open } = await setup();
  const alice = await open('alice');
  await service.close();
  const out = await send(alice, deleteTopics(10, 5));
  assert.equal(out.close, undefined);
  const answer = decodeResponse(out.toClient[0]!, DELETE_TOPICS, 5).body.responses[0]!;
  assert.equal(answer.errorCode, KafkaError.POLICY_VIOLATION);
  assert.match(answer.errorMessage ?? '', /^approval required by rule topic-deletion-needs-approval: approvals could not be checked \(/);
});
