/**
 * HTTP through the real Envoy (ext_authz → ext_proc → router) with tollgate deciding: the quickstart scenario's
 * tokens from the dev issuer, rules from examples/quickstart.yaml, the demo upstream behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import { startDevIssuer } from '../../src/dev/oidc-issuer.ts';

let stack: Stack;

before(async () => { stack = await startStack(); });
after(async () => { await stack?.stop(); });

async function clientToken(id: string): Promise<string> {
  const res = await fetch(stack.issuer.tokenEndpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${id}:${id}-secret`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  assert.equal(res.status, 200, `token for ${id}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

const get = (path: string, token?: string) =>
  fetch(`${stack.httpUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

test('a client_credentials token reaches the upstream, which sees tollgate\'s credential and identity, not the token', async () => {
  const token = await clientToken('analyst-app');
  const res = await get('/api/customers', token);
  assert.equal(res.status, 200);
  const body = await res.json() as { customers: unknown[]; caller: { subject: string; groups: string } };
  assert.equal(body.customers.length, 2);
  assert.deepEqual(body.caller, { subject: 'analyst-app', groups: 'analysts' });
  const seen = stack.upstream.seen.at(-1)!;
  assert.notEqual(seen.headers.authorization, `Bearer ${token}`, 'the caller token never reaches the upstream');
  assert.match(String(seen.headers.authorization), /^Bearer /, 'the upstream got the credential tollgate holds');
});

test('no token: 401 with a Bearer challenge and a JSON reason', async () => {
  const res = await get('/api/customers');
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="tollgate"');
  assert.deepEqual(await res.json(), { error: 'unauthenticated', reason: 'expected an Authorization header "Bearer <token>", found none', rule: null });
});

test('a token from an issuer nobody trusts, a tampered token and an expired one are all 401', async () => {
  const good = await stack.issuer.mint({ sub: 'alice', groups: ['analysts'] });
  const realKid = JSON.parse(Buffer.from(good.split('.')[0]!, 'base64url').toString()).kid as string;
  // Same issuer URL, its own keys: once under a kid the real issuer does not have, once under the real kid.
  for (const [kid, reason] of [[undefined, /kid/], [realKid, /signature/]] as const) {
    const rogue = await startDevIssuer({ issuerUrl: stack.issuer.issuer, audience: 'tollgate', clients: [], ...(kid ? { kid } : {}) });
    try {
      const forged = await rogue.mint({ sub: 'mallory', groups: ['platform-admins'] });
      const res = await get('/admin/users', forged);
      assert.equal(res.status, 401);
      assert.match(((await res.json()) as { reason: string }).reason, reason);
    } finally {
      await rogue.close();
    }
  }
  const [h, p, s] = good.split('.');
  const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
  payload.groups = ['platform-admins'];
  const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
  assert.equal((await get('/admin/users', tampered)).status, 401);

  const expired = await stack.issuer.mint({ sub: 'alice', groups: ['analysts'], extraClaims: { exp: Math.floor(Date.now() / 1000) - 120 } });
  const res = await get('/api/customers', expired);
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /invalid_token/);
});

test('a rule denies with 403 and names itself; the group it exempts gets through', async () => {
  const analyst = await clientToken('analyst-app');
  const denied = await get('/admin/users', analyst);
  assert.equal(denied.status, 403);
  assert.deepEqual(await denied.json(), {
    error: 'forbidden', reason: 'denied by rule admin-routes-are-admin-only', rule: 'admin-routes-are-admin-only',
  });
  const admin = await clientToken('platform-admin');
  const allowed = await get('/admin/users', admin);
  assert.equal(allowed.status, 200);
  assert.equal(((await allowed.json()) as { caller: { subject: string } }).caller.subject, 'platform-admin');
});

test('a path no rule allows is denied by default', async () => {
  const res = await get('/elsewhere', await clientToken('ci-bot'));
  assert.equal(res.status, 403);
  assert.deepEqual(await res.json(), { error: 'forbidden', reason: 'no rule allows this request', rule: null });
});

test('a large NDJSON body streams through ext_proc complete, every line masked for analysts, unmasked for admins', async () => {
  const res = await get('/api/bulk?n=40000', await clientToken('analyst-app'));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-tollgate-masked'), 'mask-customer-data-for-analysts');
  const lines = (await res.text()).trimEnd().split('\n');
  assert.equal(lines.length, 40000);
  lines.forEach((line, i) => assert.deepEqual(JSON.parse(line), { seq: i, email: '[REDACTED]', card: '[REDACTED]' }));

  const admin = await get('/api/bulk?n=3', await clientToken('platform-admin'));
  assert.equal(admin.headers.get('x-tollgate-masked'), null);
  assert.deepEqual(JSON.parse((await admin.text()).split('\n')[2]!), { seq: 2, email: 'user2@example.com', card: '4111111111111111' });
});

test('customer JSON is masked for analysts: card numbers keep their last 4 digits, emails are redacted', async () => {
  const res = await get('/api/customers', await clientToken('analyst-app'));
  assert.equal(res.status, 200);
  const body = await res.json() as { customers: Array<{ email: string; card: { number: string; expiry: string } }> };
  assert.deepEqual(body.customers.map((c) => [c.email, c.card.number, c.card.expiry]), [
    ['[REDACTED]', '************1111', '12/29'],
    ['[REDACTED]', '************5559', '03/28'],
  ]);
  const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
  assert.match(metrics, /tollgate_masked_values_total\{path="http",detector="email"\} [1-9]/);
});

test('server-sent events stream through masked event by event for analysts, plain for payments-admin', async () => {
  const res = await get('/api/events?n=4&intervalMs=300', await clientToken('analyst-app'));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const reader = res.body!.getReader();
  const arrivals: Array<{ at: number; text: string }> = [];
  const started = Date.now();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    arrivals.push({ at: Date.now() - started, text: Buffer.from(value).toString() });
  }
  const events = arrivals.map((a) => a.text).join('').trim().split('\n\n');
  assert.equal(events.length, 4);
  const customers = events.map((e) => JSON.parse(e.split('\n').find((l) => l.startsWith('data: '))!.slice(6)));
  assert.deepEqual(customers.map((c) => [c.email, c.card.number]), [
    ['[REDACTED]', '************1111'], ['[REDACTED]', '************5559'], ['[REDACTED]', '************1111'], ['[REDACTED]', '************5559'],
  ]);
  assert.ok(arrivals.length >= 2, `events arrive as they are sent, not in one piece at the end (${arrivals.length} reads)`);

  const admin = await get('/api/events?n=1&intervalMs=0', await clientToken('payments-app'));
  assert.match(await admin.text(), /"email":"ada@example\.com".*"number":"4111111111111111"/);
});

test('a watch stream whose chunks end inside a card number is masked event by event, never half a number', async () => {
  const res = await get('/api/watch?n=4', await clientToken('analyst-app'));
  assert.equal(res.headers.get('content-type'), 'application/json;stream=watch');
  const text = await res.text();
  assert.doesNotMatch(text, /411111|555500/, 'no digits of a card number leave');
  const events = text.trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => [e.type, e.object.card.number, e.object.email]), [
    ['ADDED', '************1111', '[REDACTED]'], ['MODIFIED', '************5559', '[REDACTED]'],
    ['MODIFIED', '************1111', '[REDACTED]'], ['MODIFIED', '************5559', '[REDACTED]'],
  ]);
});

test('decisions are audited and counted', async () => {
  await get('/admin/users', await clientToken('ci-bot'));
  const records = stack.auditRecords();
  const deny = records.findLast((r) => r.event === 'http.authz.deny');
  assert.ok(deny, 'a deny record');
  assert.equal(deny.principal?.subject, 'ci-bot');
  assert.equal(deny.rule, 'admin-routes-are-admin-only');
  assert.ok(records.some((r) => r.event === 'http.authz.allow'));
  assert.ok(records.some((r) => r.event === 'http.authz.unauthenticated'));
  const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
  assert.match(metrics, /tollgate_decisions_total\{service="ext_authz",effect="deny",rule="admin-routes-are-admin-only"\} [1-9]/);
  assert.match(metrics, /tollgate_grpc_streams_total\{service="ext_proc"\} [1-9]/);
});
