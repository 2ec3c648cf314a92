/**
 * The approver's web page as HTML (its browser behaviour is test/e2e/approvals-page.test.ts): everything a requester
 * controls is escaped; the shell a browser navigates to carries no data and a policy allowing only its own nonce'd
 * script; the rendered body needs the same bearer token as the JSON API, which clients without `Accept: text/html`
 * keep getting.
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
import { escapeHtml, renderApproval, renderList } from '../../src/approvals/page.ts';
import type { ApprovalRequest } from '../../src/approvals/model.ts';
import type { Principal } from '../../src/core/principal.ts';
import { newRequest, T0 } from './store-contract.ts';

const HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>&';

function hostileRequest(): ApprovalRequest {
  const filed = newRequest({
    rule: `rule-${HOSTILE}`, reason: `because ${HOSTILE}`, summary: `kafka DeleteTopics admin topic=${HOSTILE}`,
    requester: { subject: `mallory${HOSTILE}`, issuer: 'https://idp.test', groups: [`g${HOSTILE}`] },
    context: { [`client${HOSTILE}`]: `id${HOSTILE}` }, approverGroups: [`admins${HOSTILE}`],
    scope: { path: 'kafka', operation: `DeleteTopics ${HOSTILE}`, resource: { topic: HOSTILE } },
  });
  return { ...filed, state: 'pending', decisions: [{ approver: { subject: `bob${HOSTILE}`, issuer: 'https://idp.test' }, verdict: 'reject', reason: `no ${HOSTILE}`, at: T0 }] };
}

test('every value a requester or approver controls is escaped in the request page and the list', () => {
  const request = hostileRequest();
  for (const html of [renderApproval(request, T0), renderList([request], 'pending', T0)]) {
    assert.doesNotMatch(html, /<img|<script|onerror=alert\(1\)>/);
    assert.match(html, /&quot;&gt;&lt;img src=x onerror=alert\(1\)&gt;&lt;script&gt;alert\(2\)&lt;\/script&gt;&amp;/);
  }
  assert.equal(escapeHtml(`<a href='x'>&"`), '&lt;a href=&#39;x&#39;&gt;&amp;&quot;');
});

test('a pending request offers Approve and Reject (with a required reason); a decided one with a live grant offers Revoke; an expired one nothing', () => {
  const pending: ApprovalRequest = { ...newRequest(), state: 'pending', decisions: [] };
  const html = renderApproval(pending, T0);
  assert.match(html, /<form data-action="approve">/);
  assert.match(html, /<form data-action="reject"><label>Reason <input name="reason" maxlength="2000" required/);
  assert.doesNotMatch(html, /data-action="revoke"/);
  const grant = { id: 'grt_x', approval: pending.id, requesterKey: pending.requesterKey, scopeKey: pending.scopeKey, oneTime: false, createdAt: T0, expiresAt: T0 + 60_000 };
  const approved: ApprovalRequest = { ...pending, state: 'approved', decisions: [{ approver: { subject: 'bob', issuer: 'x' }, verdict: 'approve', at: T0 }], grant };
  assert.match(renderApproval(approved, T0 + 1), /data-action="revoke"/);
  assert.doesNotMatch(renderApproval(approved, T0 + 60_000), /<form/, 'the grant is over');
  assert.doesNotMatch(renderApproval(pending, pending.expiresAt), /<form/, 'past its expiry nothing can be decided');
  assert.match(renderApproval(pending, pending.expiresAt), /data-state="expired"/);
});

let issuer: DevIssuer;
let server: RunningServer;
let admin: string;

before(async () => {
  issuer = await startDevIssuer({ audience: 'tollgate', clients: [] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-approvals-page-'));
  server = await startServer(configSchema.parse({
    server: { grpc: { address: '127.0.0.1:0' }, admin: { address: '127.0.0.1:0' } },
    identity: { oidc: [{ issuer: issuer.issuer, audiences: ['tollgate'] }] },
    approvals: { store: { sqlite: { path: path.join(dir, 'approvals.sqlite') } } },
    rules: [{ name: 'topic-deletion-needs-approval', match: { kafka: { api: 'DeleteTopics' } }, effect: 'approve', approval: { approvers: { group: 'platform-admins' } } }],
  }), { logger: pino({ level: 'silent' }), audit: { write: () => {} } });
  await server.identityReady;
  admin = `http://${server.adminAddress.host}:${server.adminAddress.port}`;
  for (let i = 0; i < 100 && server.approvals() === undefined; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(server.approvals());
});
after(async () => {
  await server?.drain();
  await issuer?.close();
});

const alice: Principal = { subject: 'alice', groups: ['analysts'], issuer: '', authenticatedBy: 'oidc' };
const html = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

test('a browser gets the page shell: no data, a policy that runs only its own nonce\'d script, no cookie', async () => {
  const request = await server.approvals()!.open({ ...alice, issuer: issuer.issuer }, {
    rule: 'topic-deletion-needs-approval',
    spec: { approverGroups: ['platform-admins'], min: 1, mode: 'ticket', waitMs: 3_600_000, grantMs: 1_800_000, oneTime: false },
    scope: { path: 'kafka', operation: 'DeleteTopics admin', resource: { topic: 'secret-plans' } },
  }, 'why not', {});
  const res = await fetch(`${admin}/approvals/${request.id}`, { headers: html });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(res.headers.get('set-cookie'), null);
  const csp = res.headers.get('content-security-policy') ?? '';
  const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
  assert.ok(nonce, csp);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /frame-ancestors 'none'/);
  const body = await res.text();
  assert.ok(body.includes(`<script nonce="${nonce}">`));
  assert.doesNotMatch(body, /secret-plans|alice/, 'nothing of the request before the token is shown');
});

test('the rendered body needs the approver API\'s token; with it, the list and the request; JSON clients still get JSON', async () => {
  const request = (await server.approvals()!.list({ ...alice, issuer: issuer.issuer }))[0]!;
  const anonymous = await fetch(`${admin}/approvals/${request.id}?part=main`, { headers: html });
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get('x-tollgate-message') ?? '', /./);
  assert.doesNotMatch(await anonymous.text(), /secret-plans/);

  const pat = await issuer.mint({ sub: 'pat', groups: ['platform-admins'] });
  const part = await fetch(`${admin}/approvals/${request.id}?part=main`, { headers: { ...html, authorization: `Bearer ${pat}` } });
  assert.equal(part.status, 200);
  assert.equal(part.headers.get('x-tollgate-viewer'), 'pat');
  assert.match(await part.text(), /<h1>kafka DeleteTopics admin topic=secret-plans<\/h1>/);
  const list = await fetch(`${admin}/approvals?part=main`, { headers: { ...html, authorization: `Bearer ${pat}` } });
  assert.match(await list.text(), new RegExp(`<a href="/approvals/${request.id}">kafka DeleteTopics admin topic=secret-plans</a>`));
  const outsider = await fetch(`${admin}/approvals/${request.id}?part=main`, { headers: { ...html, authorization: `Bearer ${await issuer.mint({ sub: 'eve', groups: ['analysts'] })}` } });
  assert.equal(outsider.status, 404);

  const json = await fetch(`${admin}/approvals/${request.id}`, { headers: { authorization: `Bearer ${pat}` } });
  assert.equal(json.headers.get('content-type'), 'application/json');
  assert.equal(((await json.json()) as { id: string }).id, request.id);
});
