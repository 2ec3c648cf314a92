/**
 * Insider-threat signals at HTTP ext_authz, with a clock the test moves: a Kubernetes list storm gets 429 with
 * Retry-After (a TooManyRequests Status client-go waits out), a route over its deny threshold gets 403 for the rest
 * of the window, a caller over an `approve` threshold needs an approval (a ticket with the real approval service on
 * in-memory SQLite; the grant lets the retry through), failed logins then a success flag the caller, and every
 * decision is audited with its numbers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createAuthzHandler, type CheckRequestLike } from '../../src/http/authz.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import { createHttpClassifier } from '../../src/http/action.ts';
import { createHttpSignals } from '../../src/http/signals.ts';
import { SignalEngine, type SignalEvent } from '../../src/signals/engine.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import type { Principal } from '../../src/core/principal.ts';
import { ApprovalService } from '../../src/approvals/service.ts';
import { openSqliteStore } from '../../src/approvals/sqlite.ts';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const jwt = (sub: string) => `e30.${Buffer.from(JSON.stringify({ sub })).toString('base64url')}.sig`;
const PRINCIPALS: Record<string, Principal> = {
  [`Bearer ${jwt('ci-bot')}`]: { subject: 'ci-bot', groups: ['ci'], issuer: 'https://idp.test', authenticatedBy: 'oidc' },
  [`Bearer ${jwt('sam')}`]: { subject: 'sam', groups: ['sre'], issuer: 'https://idp.test', authenticatedBy: 'oidc' },
};

const config = configSchema.parse({
  http: { kubernetes: { hosts: 'kube.test:6443' } },
  rules: [
    { name: 'list-storm', match: { kubernetes: { verb: 'list' } }, signal: { volume: { measure: 'requests', window: '10s', limit: 5, per: ['subject'] }, effect: 'throttle' } },
    { name: 'exports-per-caller', match: { http: { path: '/api/export/*' } }, signal: { volume: { measure: 'requests', window: '1m', limit: 2 }, effect: 'deny' } },
    {
      name: 'secret-reads', match: { kubernetes: { verb: 'get', resource: 'secrets' } },
      signal: { volume: { measure: 'requests', window: '1m', limit: 2, per: ['subject'] }, effect: 'approve' },
      approval: { approvers: { group: 'sre' }, grant: '10m' },
    },
    { name: 'logins', signal: { authFailures: { threshold: 3, window: '5m' } } },
    { name: 'flagged-callers-may-not-delete', match: { http: { method: 'DELETE' }, flagged: true }, effect: 'deny' },
    { name: 'kube-open', match: { kubernetes: {} }, effect: 'allow' },
    { name: 'http-open', match: { http: {} }, effect: 'allow' },
  ],
});

function setup(approvals?: ApprovalService) {
  const clock = { now: T0 };
  const audit: AuditRecord[] = [];
  const events: SignalEvent[] = [];
  const engine = new SignalEngine({ now: () => clock.now, onEvent: (e) => events.push(e) });
  const policy = compilePolicy(config.rules, { now: () => clock.now, flaggedBy: (p) => engine.flaggedBy(p) });
  engine.update(policy.signals, { maxKeys: 1000, maxThrottleMs: 30_000 });
  const signals = createHttpSignals(engine);
  const classify = createHttpClassifier(config.http.kubernetes);
  const check = createAuthzHandler({
    authenticate: async ({ authorization }) => {
      if (authorization === undefined) throw Object.assign(new Error('no credential'), { code: 'token_missing' });
      const p = PRINCIPALS[authorization];
      if (!p) throw Object.assign(new Error('the token signature is not valid'), { code: 'signature_invalid' });
      return p;
    },
    policy: () => policy,
    credentials: () => [],
    classify: () => classify,
    signals: () => signals,
    ...(approvals !== undefined && { approvals: () => ({ service: approvals, maxHoldMs: 300_000 }) }),
    audit: { write: (r) => audit.push(r) },
    logger: pino({ level: 'silent' }),
  });
  return { check, audit, events, clock };
}

const call = (method: string, path: string, authorization: string, host = 'api.test', source = '10.0.0.5'): CheckRequestLike => ({
  attributes: {
    source: { address: { socket_address: { address: source, port_value: 40000 } } },
    request: { http: { method, path, host, headers: { ':path': path, ':method': method, authorization } } },
  },
});
const signalsOf = (r: AuditRecord | undefined) => r?.details?.['signals'] as Array<Record<string, unknown>> | undefined;

test('a Kubernetes list storm gets 429 TooManyRequests with Retry-After until the window has room again', async () => {
  const { check, audit, events, clock } = setup();
  const ci = `Bearer ${jwt('ci-bot')}`;
  for (let i = 0; i < 5; i++) {
    const res = await check(call('GET', `/api/v1/namespaces/ns-${i}/pods`, ci, 'kube.test:6443'));
    assert.equal(res.status.code, 0, `list ${i + 1} passes`);
  }
  clock.now += 2000;
  const res = await check(call('GET', '/api/v1/namespaces/ns-9/configmaps', ci, 'kube.test:6443'));
  assert.equal(res.denied_response?.status.code, 429);
  const retryAfter = Number(res.denied_response!.headers.find((h) => h.header.key === 'retry-after')?.header.value);
  assert.ok(retryAfter >= 1 && retryAfter <= 10, `Retry-After ${retryAfter}`);
  const status = JSON.parse(res.denied_response!.body);
  assert.equal(status.kind, 'Status');
  assert.equal(status.code, 429);
  assert.equal(status.reason, 'TooManyRequests');
  assert.equal(status.details.retryAfterSeconds, retryAfter);
  assert.match(status.message, /requests of ci-bot in the last 10s is 6, over the limit 5/);
  const record = audit.at(-1)!;
  assert.equal(record.event, 'kubernetes.authz.throttle');
  assert.equal(record.rule, 'list-storm');
  assert.deepEqual(signalsOf(record)?.map((s) => [s['signal'], s['effect'], s['observed'], s['threshold']]), [['list-storm', 'throttle', 6, 5]]);
  assert.deepEqual(events.map((e) => [e.event, e.path]), [['breach', 'kubernetes']]);
  // A get is no list: it passes.
  assert.equal((await check(call('GET', '/api/v1/namespaces/ns-1/pods/web', ci, 'kube.test:6443'))).status.code, 0);
  clock.now += 10_000;
  assert.equal((await check(call('GET', '/api/v1/namespaces/ns-1/pods', ci, 'kube.test:6443'))).status.code, 0, 'after the window');
});

test('deny: over the limit on a route, the caller is refused for the rest of the window, per route and caller', async () => {
  const { check, audit, clock } = setup();
  const sam = `Bearer ${jwt('sam')}`;
  assert.equal((await check(call('GET', '/api/export/customers', sam))).status.code, 0);
  assert.equal((await check(call('GET', '/api/export/customers', sam))).status.code, 0);
  const third = await check(call('GET', '/api/export/customers', sam));
  assert.equal(third.denied_response?.status.code, 403);
  assert.deepEqual(JSON.parse(third.denied_response!.body).rule, 'exports-per-caller');
  assert.match(audit.at(-1)!.reason!, /requests of sam on http:api\.test\/api\/export\/customers in the last 1m is 3, over the limit 2; denied until 2026-11-23T10:01:00\.000Z/);
  clock.now += 30_000;
  assert.equal((await check(call('GET', '/api/export/customers', sam))).denied_response?.status.code, 403, 'held back, not counted');
  assert.equal((await check(call('GET', '/api/export/orders', sam))).status.code, 0, 'another route has its own counter');
  // The first requests fade out of the sliding window over its oldest slice (a tenth of it): gone at 66 s.
  clock.now += 36_000;
  assert.equal((await check(call('GET', '/api/export/customers', sam))).status.code, 0);
});

test('approve: over the limit, the caller needs an approval (a ticket under the signal rule); the grant lets the retry through', async () => {
  const service = new ApprovalService({
    store: await openSqliteStore(':memory:'), audit: { write: () => {} }, logger: pino({ level: 'silent' }),
    baseUrl: 'https://tollgate.example', pollIntervalMs: 20,
  });
  const { check, audit, clock } = setup(service);
  const ci = `Bearer ${jwt('ci-bot')}`;
  const get = (name: string) => check(call('GET', `/api/v1/namespaces/demo/secrets/${name}`, ci, 'kube.test:6443'));
  assert.equal((await get('a')).status.code, 0);
  assert.equal((await get('b')).status.code, 0);
  const third = await get('c');
  assert.equal(third.denied_response?.status.code, 403);
  const status = JSON.parse(third.denied_response!.body) as { kind: string; message: string; details: { causes: Array<{ field: string; message: string }> } };
  assert.equal(status.kind, 'Status');
  const id = status.details.causes.find((c) => c.field === 'approval.id')?.message;
  assert.match(id ?? '', /^apr_/);
  assert.match(status.message, /signal secret-reads: requests of ci-bot in the last 1m is 3, over the limit 2; needs an approval until .*: approval apr_\w+ awaits an approver of sre .*approve at https:\/\/tollgate\.example\/approvals\/apr_/);
  const filed = await service.get(id!, PRINCIPALS[`Bearer ${jwt('sam')}`]!);
  assert.equal(filed.rule, 'secret-reads');
  assert.equal(filed.summary, 'kubernetes get apiGroup= resource=secrets namespace=demo name=c', 'the grant will cover this request');
  assert.deepEqual(audit.at(-1)?.details?.['approval'], { id, state: 'pending' });
  assert.equal(signalsOf(audit.at(-1))?.[0]?.['effect'], 'approve');
  // Held back for the window: the retry names the same ticket, and is not counted.
  clock.now += 1000;
  const retry = await get('c');
  assert.equal(JSON.parse(retry.denied_response!.body).details.causes.find((c: { field: string }) => c.field === 'approval.id')?.message, id);
  await service.approve(id!, PRINCIPALS[`Bearer ${jwt('sam')}`]!);
  const granted = await get('c');
  assert.equal(granted.status.code, 0, 'the grant lets the retry through while the caller is still held back');
  assert.equal((audit.at(-1)?.details?.['approval'] as { state: string }).state, 'approved');
  assert.equal((await get('d')).denied_response?.status.code, 403, 'a grant covers the request approved, not every secret');
  await service.close();
});

test('failed logins claiming a subject, then its success: flagged (audited with the numbers), and its DELETE refused', async () => {
  const { check, audit, events } = setup();
  for (let i = 0; i < 3; i++) {
    const res = await check(call('GET', '/api/x', `Bearer e30.${Buffer.from(JSON.stringify({ sub: 'sam' })).toString('base64url')}.forged${i}`));
    assert.equal(res.denied_response?.status.code, 401);
    assert.deepEqual(audit.at(-1)?.details?.['failedAuthentications'], { logins: { subject: i + 1, source: i + 1 } });
  }
  assert.equal(events.at(-1)?.event, 'failures');
  const sam = `Bearer ${jwt('sam')}`;
  const ok = await check(call('GET', '/api/x', sam));
  assert.equal(ok.status.code, 0);
  assert.deepEqual(signalsOf(audit.at(-1))?.map((s) => [s['signal'], s['kind'], s['observed'], s['threshold']]), [['logins', 'authFailures', 3, 3]]);
  assert.equal(events.at(-1)?.event, 'flagged');
  const del = await check(call('DELETE', '/api/x', sam));
  assert.equal(del.denied_response?.status.code, 403);
  assert.equal(JSON.parse(del.denied_response!.body).rule, 'flagged-callers-may-not-delete');
  // No credential at all is not a failed login.
  await check({ attributes: { request: { http: { method: 'GET', path: '/api/x', host: 'api.test', headers: {} } } } });
  assert.equal(audit.at(-1)?.details?.['failedAuthentications'], undefined);
});
