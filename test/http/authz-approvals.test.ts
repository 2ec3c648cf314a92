/**
 * Just-in-time approval in the ext_authz Check, with the real approval service on an in-memory SQLite store: ticket
 * mode answers 403 with the approval's id and URL (JSON, or a Kubernetes Status), hold mode keeps the Check waiting
 * until an approver decides, grants let the retry through, and nothing the store cannot confirm is allowed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createAuthzHandler, type CheckRequestLike } from '../../src/http/authz.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import { createHttpClassifier } from '../../src/http/action.ts';
import { ApprovalService } from '../../src/approvals/service.ts';
import { openSqliteStore } from '../../src/approvals/sqlite.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import type { Principal } from '../../src/core/principal.ts';

const PRINCIPALS: Record<string, Principal> = {
  'Bearer ci': { subject: 'ci-bot', groups: ['ci'], issuer: 'https://idp.test', authenticatedBy: 'oidc' },
  'Bearer pat': { subject: 'pat', groups: ['sre'], issuer: 'https://idp.test', authenticatedBy: 'oidc' },
};
const pat = PRINCIPALS['Bearer pat']!;

const config = configSchema.parse({
  http: { kubernetes: { hosts: 'kube.test:6443' } },
  rules: [
    { name: 'exec-is-held', match: { group: 'ci', kubernetes: { verb: 'create', resource: 'pods/exec', namespace: 'demo' } }, effect: 'approve', approval: { approvers: { group: 'sre' }, mode: 'hold', wait: '2m' } },
    { name: 'quick-hold', match: { group: 'ci', kubernetes: { verb: 'create', resource: 'pods/exec', namespace: 'quick' } }, effect: 'approve', approval: { approvers: { group: 'sre' }, mode: 'hold', wait: '300ms' } },
    { name: 'logs-need-a-ticket', match: { group: 'ci', kubernetes: { verb: 'get', resource: 'pods/log' } }, effect: 'approve', approval: { approvers: { group: 'sre' } } },
    { name: 'reports-once', match: { http: { method: 'POST', path: '/reports/*' } }, effect: 'approve', description: 'report runs cost money', approval: { approvers: { group: 'sre' }, oneTime: true } },
    { name: 'open', match: {}, effect: 'allow' },
  ],
}).rules;

async function setup(options: { approvals?: boolean } = {}) {
  const audit: AuditRecord[] = [];
  const service = new ApprovalService({
    store: await openSqliteStore(':memory:'), audit: { write: (r) => audit.push(r) }, logger: pino({ level: 'silent' }),
    baseUrl: 'https://tollgate.example', pollIntervalMs: 20,
  });
  const classify = createHttpClassifier({ hosts: 'kube.test:6443' });
  const policy = compilePolicy(config);
  const check = createAuthzHandler({
    authenticate: async ({ authorization }) => {
      const p = authorization === undefined ? undefined : PRINCIPALS[authorization];
      if (!p) throw Object.assign(new Error('the token is not valid'), { code: 'signature_invalid' });
      return p;
    },
    policy: () => policy,
    credentials: () => [],
    classify: () => classify,
    audit: { write: (r) => audit.push(r) },
    logger: pino({ level: 'silent' }),
    ...(options.approvals !== false && { approvals: () => ({ service, maxHoldMs: 300_000 }) }),
  });
  return { check, audit, service };
}

const request = (method: string, path: string, host: string, authorization = 'Bearer ci'): CheckRequestLike => ({
  attributes: {
    source: { address: { socket_address: { address: '10.0.0.7', port_value: 40000 } } },
    request: { http: { method, path, host, headers: { ':path': path, ':method': method, authorization } } },
  },
});
const EXEC = '/api/v1/namespaces/demo/pods/web/exec?command=sh&stdin=true&tty=true';
const kube = (method: string, path: string, authorization?: string) => request(method, path, 'kube.test:6443', authorization);

test('ticket mode: 403 with the approval\'s id, state and URL; the retry names the same approval; once approved, the retry passes', async () => {
  const { check, audit, service } = await setup();
  const res = await check(request('POST', '/reports/q3', 'api.test'));
  assert.equal(res.denied_response?.status.code, 403);
  const body = JSON.parse(res.denied_response!.body);
  assert.equal(body.error, 'approval_required');
  assert.equal(body.rule, 'reports-once');
  assert.match(body.approval.id, /^apr_/);
  assert.equal(body.approval.state, 'pending');
  assert.equal(body.approval.url, `https://tollgate.example/approvals/${body.approval.id}`);
  assert.match(body.approval.expiresAt, /^\d{4}-\d\d-\d\dT/);
  assert.equal(body.reason, `report runs cost money: approval ${body.approval.id} awaits an approver of sre (tollgate approvals approve ${body.approval.id})`);
  const denied = audit.find((r) => r.event === 'http.authz.deny');
  assert.deepEqual(denied?.details?.['approval'], { id: body.approval.id, state: 'pending' });
  const filed = await service.get(body.approval.id, pat);
  assert.deepEqual(filed.context, { method: 'POST', host: 'api.test', path: '/reports/q3', sourceAddress: '10.0.0.7' });

  const retry = JSON.parse((await check(request('POST', '/reports/q3', 'api.test'))).denied_response!.body);
  assert.equal(retry.approval.id, body.approval.id);

  await service.approve(body.approval.id, pat);
  const allowed = await check(request('POST', '/reports/q3', 'api.test'));
  assert.equal(allowed.status.code, 0);
  const record = audit.findLast((r) => r.event === 'http.authz.allow');
  assert.equal(record?.rule, 'reports-once');
  assert.match(record?.reason ?? '', new RegExp(`allowed by grant grt_\\w+ of approval ${body.approval.id}`));
  assert.deepEqual((record?.details?.['approval'] as { id: string; state: string }).state, 'approved');

  // One-time: used up by that request.
  const again = JSON.parse((await check(request('POST', '/reports/q3', 'api.test'))).denied_response!.body);
  assert.equal(again.error, 'approval_required');
  assert.notEqual(again.approval.id, body.approval.id);
  await service.close();
});

test('a ticket on the Kubernetes path is a Forbidden Status kubectl prints, with the id and URL in message and causes', async () => {
  const { check, service } = await setup();
  const res = await check(kube('GET', '/api/v1/namespaces/demo/pods/web/log'));
  const status = JSON.parse(res.denied_response!.body);
  assert.equal(status.kind, 'Status');
  assert.equal(status.reason, 'Forbidden');
  assert.equal(status.code, 403);
  const id = status.details.causes.find((c: { field: string }) => c.field === 'approval.id').message as string;
  assert.match(status.message, new RegExp(`^pods "web" is forbidden: User "ci-bot" cannot get resource "pods/log" in API group "" in the namespace "demo": approval required by rule logs-need-a-ticket: approval ${id} awaits an approver of sre \\(tollgate approvals approve ${id}\\); approve at https://tollgate\\.example/approvals/${id}$`));
  assert.deepEqual(status.details.causes, [
    { reason: 'TollgateApproval', field: 'approval.id', message: id },
    { reason: 'TollgateApproval', field: 'approval.state', message: 'pending' },
    { reason: 'TollgateApproval', field: 'approval.url', message: `https://tollgate.example/approvals/${id}` },
  ]);
  await service.close();
});

test('hold mode: the Check waits while the request is pending and lets it through once an approver approves', async () => {
  const { check, audit, service } = await setup();
  let answered = false;
  const held = check(kube('POST', EXEC)).finally(() => { answered = true; });
  let pending: Awaited<ReturnType<ApprovalService['list']>> = [];
  while (pending.length === 0) {
    await new Promise((r) => setTimeout(r, 10));
    pending = await service.list(pat);
  }
  assert.equal(answered, false, 'still held while pending');
  const [request] = pending;
  assert.equal(request?.mode, 'hold');
  assert.equal(request?.summary, 'kubernetes create apiGroup= resource=pods/exec namespace=demo name=web');
  assert.equal(request?.context['path'], EXEC, 'the approver sees the command');
  await service.approve(request!.id, pat);
  const res = await held;
  assert.equal(res.status.code, 0, JSON.stringify(res));
  const record = audit.findLast((r) => r.event === 'kubernetes.authz.allow');
  const note = record?.details?.['approval'] as { id: string; state: string; heldMs: number };
  assert.equal(note.id, request!.id);
  assert.equal(note.state, 'approved');
  assert.equal(typeof note.heldMs, 'number');
  await service.close();
});

test('hold mode: a rejection ends the hold with a Forbidden that says who rejected it and why', async () => {
  const { check, service } = await setup();
  const held = check(kube('POST', EXEC));
  let pending: Awaited<ReturnType<ApprovalService['list']>> = [];
  while (pending.length === 0) {
    await new Promise((r) => setTimeout(r, 10));
    pending = await service.list(pat);
  }
  await service.reject(pending[0]!.id, pat, 'no exec during the incident');
  const status = JSON.parse((await held).denied_response!.body);
  assert.match(status.message, new RegExp(`approval ${pending[0]!.id} was rejected by pat: no exec during the incident`));
  assert.equal(status.details.causes[1].message, 'rejected');
  await service.close();
});

test('hold mode: nobody decides within the rule\'s wait, the request is refused and its approval has expired', async () => {
  const { check, audit, service } = await setup();
  const res = await check(kube('POST', '/api/v1/namespaces/quick/pods/web/exec?command=ls'));
  const status = JSON.parse(res.denied_response!.body);
  assert.match(status.message, /approval apr_\w+ expired without enough approvals/);
  assert.equal(status.details.causes[1].message, 'expired');
  assert.equal((audit.findLast((r) => r.event === 'kubernetes.authz.deny')?.details?.['approval'] as { state: string }).state, 'expired');
  await service.close();
});

test('hold mode: Envoy cancelling the Check ends the wait; the approval stays pending for a retry', async () => {
  const { check, service } = await setup();
  const envoyGivesUp = new AbortController();
  const held = check(kube('POST', EXEC), envoyGivesUp.signal);
  while ((await service.list(pat)).length === 0) await new Promise((r) => setTimeout(r, 10));
  envoyGivesUp.abort();
  const res = await held;
  assert.equal(res.denied_response?.status.code, 403);
  assert.equal((await service.list(pat))[0]?.state, 'pending');
  await service.close();
});

test('without approvals, or with a store that fails, a request needing approval is refused, never allowed', async () => {
  const off = await setup({ approvals: false });
  const res = await off.check(request('POST', '/reports/q3', 'api.test'));
  assert.equal(JSON.parse(res.denied_response!.body).reason, 'report runs cost money');
  await off.service.close();

  const broken = await setup();
  await broken.service.close();
  const failed = JSON.parse((await broken.check(request('POST', '/reports/q3', 'api.test'))).denied_response!.body);
  assert.equal(failed.error, 'forbidden');
  assert.match(failed.reason, /^report runs cost money: approvals could not be checked \(/);
  assert.deepEqual(failed.approval, { state: 'unavailable' });
});
