/**
 * Two tollgate replicas sharing approvals in one real PostgreSQL database, as two approval services in this process,
 * each with its own connection pool and listening connection. Their re-read interval is a minute, longer than any
 * test waits, so whatever one hears of the other's changes came through LISTEN/NOTIFY: a held request on one is
 * released by the approval the other records, a revocation on one closes the Kafka connection relying on the grant
 * on the other, and only the replica that acted audits and notifies. Last, the runtime of a running tollgate opening
 * the store `approvals.store.postgres` names, with the webhook plugged into its events.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ensurePostgres } from '../../scripts/provision.ts';
import { startPostgres, type PostgresServer } from '../../scripts/lib/postgres.ts';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openPostgresStore, type PostgresConnection } from '../../src/approvals/postgres.ts';
import { createApprovalsRuntime } from '../../src/approvals/runtime.ts';
import { ApprovalService, type ApprovalEvent } from '../../src/approvals/service.ts';
import { createKafkaApprovals } from '../../src/kafka/approval.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import type { Principal } from '../../src/core/principal.ts';
import type { KafkaAction } from '../../src/core/action.ts';

let server: PostgresServer;
before(async () => {
  await ensurePostgres();
  server = await startPostgres();
});
after(async () => { await server?.stop(); });

const who = (subject: string, ...groups: string[]): Principal => ({ subject, groups, issuer: 'https://idp.test', authenticatedBy: 'oidc' });
const alice = who('alice', 'analysts');
const pat = who('pat', 'platform-admins');
const deleteTopic = (topic: string): KafkaAction => ({ kind: 'kafka', api: 'DeleteTopics', operation: 'admin', topic });
const policy = compilePolicy(configSchema.parse({
  rules: [{ name: 'deletion-needs-approval', match: { kafka: { api: 'DeleteTopics' } }, effect: 'approve', approval: { approvers: { group: 'platform-admins' }, grant: '30m' } }],
}).rules);

/** Longer than any test here waits: a change seen sooner was pushed, not re-read. */
const NO_POLLING_MS = 60_000;

async function replica(connection: PostgresConnection) {
  const audit: AuditRecord[] = [];
  const notified: ApprovalEvent[] = [];
  const heard: ApprovalEvent[] = [];
  const service = new ApprovalService({
    store: await openPostgresStore(connection), audit: { write: (r) => audit.push(r) }, logger: pino({ level: 'silent' }),
    baseUrl: 'http://tollgate.test:9901', pollIntervalMs: NO_POLLING_MS, notify: (e) => notified.push(e),
  });
  service.subscribe((e) => heard.push(e));
  await service.start();
  return { service, audit, notified, heard };
}

async function twoReplicas() {
  const database = await server.createDatabase();
  const connection: PostgresConnection = { host: server.host, port: server.port, database, user: server.user, password: () => server.password, poolSize: 3 };
  return [await replica(connection), await replica(connection), database] as const;
}

async function ask(service: ApprovalService, topic: string) {
  const first = policy.decide(alice, deleteTopic(topic));
  assert.ok(first.approval);
  return service.open(alice, first.approval, first.reason, { clientId: 'admin-cli' });
}

/** Resolves once `events` has one matching, polling this process's memory (the events themselves were pushed). */
async function eventually<T>(what: string, find: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`never saw ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a request held on replica B is released when replica A records the approval', async () => {
  const [a, b] = await twoReplicas();
  try {
    const request = await ask(b.service, 'orders');
    const held = b.service.wait(request.id, Date.now() + 30_000);
    await a.service.approve(request.id, pat, 'change CHG-7');
    const released = await held;
    assert.equal(released?.state, 'approved');
    assert.equal(released?.decisions[0]?.reason, 'change CHG-7');
  } finally {
    await a.service.close();
    await b.service.close();
  }
});

test('replica B hears A\'s request, approval and rejection as peer events; only A audits and notifies them', async () => {
  const [a, b] = await twoReplicas();
  try {
    const approvedOne = await ask(a.service, 'orders');
    const rejectedOne = await ask(a.service, 'payments');
    await a.service.approve(approvedOne.id, pat);
    await a.service.reject(rejectedOne.id, pat, 'not during the freeze');
    const approved = await eventually('the approval on B', () => b.heard.find((e) => e.type === 'approved'));
    assert.equal(approved.request.id, approvedOne.id);
    assert.equal(approved.peer, true);
    assert.equal(approved.grant?.approval, approvedOne.id);
    assert.equal(approved.url, `http://tollgate.test:9901/approvals/${approvedOne.id}`);
    const rejected = await eventually('the rejection on B', () => b.heard.find((e) => e.type === 'rejected'));
    assert.equal(rejected.request.decisions[0]?.reason, 'not during the freeze');
    await eventually('both requests on B', () => (b.heard.filter((e) => e.type === 'requested').length === 2 ? true : undefined));

    assert.deepEqual(b.audit, [], 'B made none of these changes');
    assert.deepEqual(b.notified, [], 'the webhook is told once, by the replica that acted');
    assert.deepEqual(a.notified.map((e) => e.type).sort(), ['approved', 'rejected', 'requested', 'requested']);
    assert.equal(a.heard.some((e) => e.peer === true), false, 'A does not hear its own changes back');
  } finally {
    await a.service.close();
    await b.service.close();
  }
});

test('a revocation on replica A closes the Kafka connection relying on the grant on replica B', async () => {
  const [a, b] = await twoReplicas();
  try {
    const request = await ask(a.service, 'orders');
    await a.service.approve(request.id, pat);
    // What a Kafka connection on B does: its retry goes through on the grant, and it watches for revocations.
    const kafkaOnB = createKafkaApprovals(b.service);
    const prepared = await kafkaOnB.prepare(alice, [{ action: deleteTopic('orders'), decision: policy.decide(alice, deleteTopic('orders')) }], {});
    const grant = prepared.grant(request.scopeKey);
    assert.ok(grant, 'B sees the grant A\'s approval made');
    const closed: string[] = [];
    kafkaOnB.watchRevocations((grantId) => closed.push(grantId));

    await a.service.revoke(request.id, pat, 'wrong cluster');
    await eventually('the revocation on B', () => (closed.length > 0 ? true : undefined));
    assert.deepEqual(closed, [grant.id]);
    const view = await b.service.view(alice);
    assert.equal(view.grant(request.scopeKey), undefined, 'and B\'s next request finds no grant');
  } finally {
    await a.service.close();
    await b.service.close();
  }
});

test('an expiry swept by replica A wakes a hold on replica B, and B hears it as an expired event', async () => {
  const [a, b, database] = await twoReplicas();
  try {
    const request = await ask(b.service, 'orders');
    const held = b.service.wait(request.id, Date.now() + 30_000);
    // Its expiry brought forward to now: A's next sweep finds it due.
    await server.psql(`UPDATE approval_requests SET expires_at = ${Date.now()} WHERE id = '${request.id}'`, database);
    await a.service.sweep();
    assert.equal((await held)?.state, 'expired');
    const expired = await eventually('the expiry on B', () => b.heard.find((e) => e.type === 'expired'));
    assert.equal(expired.request.id, request.id);
    assert.equal(expired.request.state, 'expired');
    assert.equal(expired.peer, true, 'A swept it, B heard of it');
    assert.deepEqual(b.audit.filter((r) => r.event === 'approval.expired'), []);
  } finally {
    await a.service.close();
    await b.service.close();
  }
});

test('the runtime opens the PostgreSQL store the config names (password from a secret file) and POSTs its events to the webhook', async () => {
  const database = await server.createDatabase();
  const posted: string[] = [];
  const hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => { posted.push(body); res.writeHead(204).end(); });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const passwordFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-pg-')), 'password');
  fs.writeFileSync(passwordFile, `${server.password}\n`);
  const config = configSchema.parse({
    approvals: {
      store: { postgres: { host: server.host, port: server.port, user: server.user, database, password: { file: passwordFile } } },
      webhook: { url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/approvals`, format: 'json' },
    },
    rules: [{ name: 'deletion-needs-approval', match: { kafka: { api: 'DeleteTopics' } }, effect: 'approve', approval: { approvers: { group: 'platform-admins' } } }],
  });
  const runtime = createApprovalsRuntime({ audit: { write: () => {} }, logger: pino({ level: 'silent' }), defaultBaseUrl: () => 'http://127.0.0.1:9901' });
  try {
    runtime.ensure(config);
    await runtime.settled();
    assert.deepEqual(runtime.health(), { ok: true, detail: 'store open' });
    const request = await ask(runtime.current()!, 'orders');
    assert.equal((await server.psql(`SELECT state FROM approval_requests WHERE id = '${request.id}'`, database)).trim(), 'pending', 'filed in PostgreSQL');
    await eventually('the webhook POST', () => posted[0]);
    assert.equal((JSON.parse(posted[0]!) as { event: string; approval: { id: string } }).approval.id, request.id);
  } finally {
    await runtime.close();
    hook.close();
  }
});
