/**
 * The approver interfaces of a running tollgate (in-process, admin listener on a free port, real OIDC tokens from the
 * dev issuer): the HTTP API under /approvals and `tollgate approvals list|show|approve|reject|revoke`. Approvers are
 * authenticated like every other caller; the requester never approves their own request; refusals say why.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { startServer, type RunningServer } from '../../src/server.ts';
import { configSchema } from '../../src/config/schema.ts';
import { startDevIssuer, type DevIssuer } from '../../src/dev/oidc-issuer.ts';
import { approvalsCommand, ApprovalsUsageError } from '../../src/approvals/cli.ts';
import type { ApprovalRequest } from '../../src/approvals/model.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import type { Principal } from '../../src/core/principal.ts';

let issuer: DevIssuer;
let server: RunningServer;
let admin: string;
const audit: AuditRecord[] = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-approvals-api-'));

before(async () => {
  issuer = await startDevIssuer({ audience: 'tollgate', clients: [] });
  const config = configSchema.parse({
    server: { grpc: { address: '127.0.0.1:0' }, admin: { address: '127.0.0.1:0' } },
    identity: { oidc: [{ issuer: issuer.issuer, audiences: ['tollgate'] }] },
    approvals: { store: { sqlite: { path: path.join(dir, 'approvals.sqlite') } } },
    rules: [
      { name: 'topic-deletion-needs-approval', match: { kafka: { api: 'DeleteTopics' } }, effect: 'approve', description: 'topics are deleted with a second pair of eyes', approval: { approvers: { group: 'platform-admins' } } },
    ],
  });
  server = await startServer(config, { logger: pino({ level: 'silent' }), audit: { write: (r) => audit.push(r) } });
  await server.identityReady;
  admin = `http://${server.adminAddress.host}:${server.adminAddress.port}`;
  for (let i = 0; i < 100 && server.approvals() === undefined; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(server.approvals(), 'the approvals store opens because a rule needs it');
});
after(async () => {
  await server?.drain();
  await issuer?.close();
});

const person = (subject: string, ...groups: string[]): Principal => ({ subject, groups, issuer: issuer.issuer, authenticatedBy: 'oidc' });
const token = (subject: string, ...groups: string[]) => issuer.mint({ sub: subject, groups });

/** What an adapter files: alice wants to delete `topic`. */
async function filed(topic: string, requester = person('alice', 'analysts')): Promise<ApprovalRequest> {
  const service = server.approvals()!;
  return service.open(requester, {
    rule: 'topic-deletion-needs-approval',
    spec: { approverGroups: ['platform-admins'], min: 1, mode: 'ticket', waitMs: 3_600_000, grantMs: 1_800_000, oneTime: false },
    scope: { path: 'kafka', operation: 'DeleteTopics admin', resource: { topic } },
  }, 'topics are deleted with a second pair of eyes', { clientId: 'ops-console', 'source.address': '10.1.2.3' });
}

async function cli(args: string[], env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  const code = await approvalsCommand(args, { env: { TOLLGATE_ADMIN_URL: admin, ...env }, cwd: dir, out: (t) => { out += t; }, err: (t) => { err += t; } });
  return { code, out, err };
}

test('the API answers 401 without a valid token, and lists only what the caller may see', async () => {
  const request = await filed('orders');
  const anonymous = await fetch(`${admin}/approvals`);
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer realm="tollgate"');
  assert.equal(((await anonymous.json()) as { error: string }).error, 'unauthenticated');
  const forged = await fetch(`${admin}/approvals`, { headers: { authorization: 'Bearer not.a.token' } });
  assert.equal(forged.status, 401);

  const asAdmin = await fetch(`${admin}/approvals`, { headers: { authorization: `Bearer ${await token('pat', 'platform-admins')}` } });
  assert.equal(asAdmin.status, 200);
  const listed = ((await asAdmin.json()) as { approvals: Array<{ id: string; requester: { subject: string }; request: string; context: Record<string, unknown>; url: string }> }).approvals;
  const mine = listed.find((a) => a.id === request.id);
  assert.equal(mine?.requester.subject, 'alice');
  assert.equal(mine?.request, 'kafka DeleteTopics admin topic=orders');
  assert.deepEqual(mine?.context, { clientId: 'ops-console', 'source.address': '10.1.2.3' });
  assert.equal(mine?.url, `${admin}/approvals/${request.id}`);

  const asStranger = await fetch(`${admin}/approvals`, { headers: { authorization: `Bearer ${await token('eve', 'analysts')}` } });
  assert.deepEqual(((await asStranger.json()) as { approvals: unknown[] }).approvals, []);
  const hidden = await fetch(`${admin}/approvals/${request.id}`, { headers: { authorization: `Bearer ${await token('eve', 'analysts')}` } });
  assert.equal(hidden.status, 404);
});

test('the API refuses bad input with a clear error', async () => {
  const auth = { authorization: `Bearer ${await token('pat', 'platform-admins')}` };
  const request = await filed('bad-input');
  const cases: Array<[string, RequestInit, number, string]> = [
    [`/approvals?state=maybe`, { headers: auth }, 400, 'bad_state'],
    [`/approvals?limit=0`, { headers: auth }, 400, 'bad_limit'],
    [`/approvals/${request.id}/approve`, { method: 'POST', headers: auth, body: 'not json' }, 400, 'bad_json'],
    [`/approvals/${request.id}/approve`, { method: 'POST', headers: auth, body: '{"reason": 7}' }, 400, 'bad_reason'],
    [`/approvals/${request.id}/reject`, { method: 'POST', headers: auth, body: '{}' }, 400, 'reason_required'],
    [`/approvals/${request.id}/approve`, { method: 'GET', headers: auth }, 405, 'method_not_allowed'],
    [`/approvals/${request.id}/explode`, { method: 'POST', headers: auth }, 404, 'not_found'],
    [`/approvals/apr_nothing/approve`, { method: 'POST', headers: auth }, 404, 'not_found'],
  ];
  for (const [url, init, status, error] of cases) {
    const res = await fetch(`${admin}${url}`, init);
    const body = (await res.json()) as { error: string; message: string };
    assert.equal(res.status, status, `${url}: ${JSON.stringify(body)}`);
    assert.equal(body.error, error, url);
    assert.ok(body.message.length > 0);
  }
});

test('CLI: an approver lists, shows and approves; the requester\'s own approval is refused', async () => {
  const request = await filed('payments', person('root', 'platform-admins'));
  const patToken = await token('pat', 'platform-admins');

  const list = await cli(['list'], { TOLLGATE_TOKEN: patToken });
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /^ID\s+STATE\s+RULE\s+REQUESTER\s+REQUEST\s+EXPIRES$/m);
  assert.match(list.out, new RegExp(`^${request.id}\\s+pending\\s+topic-deletion-needs-approval\\s+root\\s+kafka DeleteTopics admin topic=payments\\s+`, 'm'));

  const show = await cli(['show', request.id, '--token', patToken]);
  assert.equal(show.code, 0, show.err);
  assert.match(show.out, /requested by root \(platform-admins\)/);
  assert.match(show.out, /clientId: ops-console/);
  assert.match(show.out, /rule {9}topic-deletion-needs-approval \(ticket\): topics are deleted with a second pair of eyes/);

  const own = await cli(['approve', request.id, '--token', await token('root', 'platform-admins')]);
  assert.equal(own.code, 1);
  assert.match(own.err, new RegExp(`refused by http://\\S+ \\(403 self_approval\\): root asked for approval ${request.id} and cannot approve it`));

  const notApprover = await cli(['approve', request.id, '--token', await token('eve', 'analysts')]);
  assert.equal(notApprover.code, 1);
  assert.match(notApprover.err, /refused by http:\/\/\S+ \(403 not_an_approver\): eve is not in an approver group/);

  const approved = await cli(['approve', request.id, '--reason', 'CHG-7'], { TOLLGATE_TOKEN: patToken });
  assert.equal(approved.code, 0, approved.err);
  assert.match(approved.out, new RegExp(`^${request.id}: approved$`, 'm'));
  assert.match(approved.out, /approved by pat at .*: CHG-7/);
  assert.match(approved.out, /grant {8}grt_\w+ until /);
  const record = audit.findLast((r) => r.event === 'approval.approved');
  assert.deepEqual(record?.details?.['approval'], { id: request.id, state: 'approved' });
  assert.equal(record?.principal?.subject, 'pat');

  const twice = await cli(['approve', request.id], { TOLLGATE_TOKEN: patToken });
  assert.equal(twice.code, 1);
  assert.match(twice.err, /refused by http:\/\/\S+ \(409 not_pending\): approval .* is already approved/);
});

test('CLI: reject needs a reason; revoke ends a live grant; --json prints the API\'s object', async () => {
  const patToken = await token('pat', 'platform-admins');
  const rejectMe = await filed('analytics');
  await assert.rejects(cli(['reject', rejectMe.id], { TOLLGATE_TOKEN: patToken }), ApprovalsUsageError);
  const rejected = await cli(['reject', rejectMe.id, '--reason', 'analytics is shared'], { TOLLGATE_TOKEN: patToken });
  assert.equal(rejected.code, 0, rejected.err);
  assert.match(rejected.out, /rejected by pat at .*: analytics is shared/);

  const revokeMe = await filed('audit-log');
  await cli(['approve', revokeMe.id], { TOLLGATE_TOKEN: patToken });
  const revoked = await cli(['revoke', revokeMe.id, '--reason', 'wrong cluster', '--json'], { TOLLGATE_TOKEN: patToken });
  assert.equal(revoked.code, 0, revoked.err);
  const body = JSON.parse(revoked.out) as { grant: { revokedBy: string; revokeReason: string } };
  assert.equal(body.grant.revokedBy, 'pat');
  assert.equal(body.grant.revokeReason, 'wrong cluster');
  const again = await cli(['revoke', revokeMe.id, '--reason', 'again'], { TOLLGATE_TOKEN: patToken });
  assert.equal(again.code, 1);
  assert.match(again.err, /409 no_live_grant/);
});

test('CLI: usage errors name what is missing; an unreachable admin listener is a clear failure', async () => {
  await assert.rejects(cli(['approve', 'apr_x']), /expected the approver's token: --token TOKEN or TOLLGATE_TOKEN/);
  await assert.rejects(cli(['approve'], { TOLLGATE_TOKEN: 'x' }), /approve expects one approval id, got 0/);
  await assert.rejects(cli(['explode'], { TOLLGATE_TOKEN: 'x' }), /unknown approvals subcommand "explode"/);
  const down = await cli(['list', '--admin', 'http://127.0.0.1:1'], { TOLLGATE_TOKEN: 'x' });
  assert.equal(down.code, 1);
  assert.match(down.err, /cannot reach tollgate's admin listener at http:\/\/127\.0\.0\.1:1/);
});

test('CLI: without --admin or TOLLGATE_ADMIN_URL it uses the running quickstart\'s admin listener, else the quickstart\'s address', async () => {
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-approvals-cwd-'));
  fs.mkdirSync(path.join(elsewhere, '.tollgate'));
  fs.writeFileSync(path.join(elsewhere, '.tollgate', 'quickstart.json'), JSON.stringify({ tollgate: { admin } }));
  let out = '';
  const code = await approvalsCommand(['list'], { env: { TOLLGATE_TOKEN: await token('pat', 'platform-admins') }, cwd: elsewhere, out: (t) => { out += t; }, err: () => {} });
  assert.equal(code, 0);
  assert.match(out, /^ID\s+STATE/m);
  let err = '';
  await approvalsCommand(['list'], { env: { TOLLGATE_TOKEN: 'x' }, cwd: os.tmpdir(), out: () => {}, err: (t) => { err += t; } });
  // Nothing listens there in the test, or a quickstart that refuses the made-up token: either way, that address.
  assert.match(err, /(admin listener at|refused by) http:\/\/127\.0\.0\.1:19901/);
});
