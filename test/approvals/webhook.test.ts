/**
 * The approvals webhook against a local HTTP server: every event of a request's life POSTed as JSON (signed when a
 * secret is set) or as a Slack message with who, what, where, why and the approval URL, escaped; failed POSTs retried
 * (429, 5xx, no answer) but a refusal not; a slow receiver never holds up a decision, and a full queue drops events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { Logger } from 'pino';
import { ApprovalService } from '../../src/approvals/service.ts';
import { openSqliteStore } from '../../src/approvals/sqlite.ts';
import { createWebhookNotifier } from '../../src/approvals/webhook.ts';
import { configSchema } from '../../src/config/schema.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import type { Principal } from '../../src/core/principal.ts';

interface Received { headers: http.IncomingHttpHeaders; body: string }

/** A receiver answering each POST with the next status of `statuses` (then 200), or never when `hang`. */
async function receiver(statuses: number[] = [], hang = false) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      if (hang) return;
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/approvals`;
  return { url, received, close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

function logs() {
  const lines: { level: string; msg: string }[] = [];
  const logger = {
    warn: (_o: unknown, msg: string) => lines.push({ level: 'warn', msg }),
    error: (_o: unknown, msg: string) => lines.push({ level: 'error', msg }),
    debug: () => {},
  } as unknown as Logger;
  return { logger, lines };
}

const who = (subject: string, ...groups: string[]): Principal => ({ subject, groups, issuer: 'https://idp.test', authenticatedBy: 'oidc' });
const alice = who('alice', 'analysts');
const pat = who('pat', 'platform-admins');
const policy = compilePolicy(configSchema.parse({
  rules: [{ name: 'deletion-needs-approval', description: 'deleting <prod> topics & data needs a second pair of eyes', match: { kafka: { api: 'DeleteTopics' } }, effect: 'approve', approval: { approvers: { group: 'platform-admins' } } }],
}).rules);

const webhookConfig = (webhook: Record<string, unknown>) => configSchema.parse({ approvals: { webhook } }).approvals.webhook!;

async function serviceWith(notify: (e: import('../../src/approvals/service.ts').ApprovalEvent) => void) {
  return new ApprovalService({
    store: await openSqliteStore(':memory:'), audit: { write: () => {} }, logger: pino({ level: 'silent' }),
    baseUrl: 'https://tollgate.example.com', pollIntervalMs: 60_000, notify,
  });
}

async function fileRequest(service: ApprovalService, topic = 'orders') {
  const first = policy.decide(alice, { kind: 'kafka', api: 'DeleteTopics', operation: 'admin', topic });
  assert.ok(first.approval);
  return service.open(alice, first.approval, first.reason, { clientId: 'admin-cli', source: '10.0.0.7:51234' });
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('json: requested, approved and revoked are POSTed in order with the request, the actor and the grant, signed with the secret', async () => {
  const hook = await receiver();
  process.env['TEST_WEBHOOK_SECRET'] = 'hook-secret';
  const notifier = createWebhookNotifier(webhookConfig({ url: hook.url, headers: { 'x-team': 'platform' }, secret: { env: 'TEST_WEBHOOK_SECRET' } }), { logger: logs().logger });
  const service = await serviceWith((e) => notifier.notify(e));
  try {
    const request = await fileRequest(service);
    await service.approve(request.id, pat, 'CHG-9');
    await service.revoke(request.id, pat, 'done');
    await until('three POSTs', () => hook.received.length === 3);
    const bodies = hook.received.map((r) => JSON.parse(r.body) as Record<string, any>);
    assert.deepEqual(bodies.map((b) => b['event']), ['approval.requested', 'approval.approved', 'approval.revoked']);
    const [requested, approved, revoked] = bodies;
    assert.equal(requested!['approval'].id, request.id);
    assert.equal(requested!['approval'].url, `https://tollgate.example.com/approvals/${request.id}`);
    assert.deepEqual(requested!['approval'].requester, { subject: 'alice', issuer: 'https://idp.test', groups: ['analysts'] });
    assert.equal(requested!['approval'].request, 'kafka DeleteTopics admin topic=orders');
    assert.deepEqual(requested!['approval'].context, { clientId: 'admin-cli', source: '10.0.0.7:51234' });
    assert.deepEqual(requested!['actor'], { subject: 'alice', issuer: 'https://idp.test' });
    assert.equal(approved!['approval'].state, 'approved');
    assert.deepEqual(approved!['actor'], { subject: 'pat', issuer: 'https://idp.test' });
    assert.equal(approved!['grant'].id, approved!['approval'].grant.id);
    assert.equal(revoked!['grant'].revokeReason, 'done');
    for (const r of hook.received) {
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['x-team'], 'platform');
      const expected = createHmac('sha256', 'hook-secret').update(`${String(r.headers['x-tollgate-timestamp'])}.${r.body}`).digest('hex');
      assert.equal(r.headers['x-tollgate-signature'], `sha256=${expected}`);
    }
  } finally {
    await service.close();
    await notifier.close();
    await hook.close();
  }
});

test('slack: {text, blocks} with who, what, where, why and a button to the approval, user text escaped', async () => {
  const hook = await receiver();
  const notifier = createWebhookNotifier(webhookConfig({ url: hook.url, format: 'slack' }), { logger: logs().logger });
  const service = await serviceWith((e) => notifier.notify(e));
  try {
    const request = await fileRequest(service);
    await service.reject(request.id, pat, 'not during the <freeze> & not by a bot');
    await until('two POSTs', () => hook.received.length === 2);
    const [requested, rejected] = hook.received.map((r) => JSON.parse(r.body) as { text: string; blocks: any[] });
    const url = `https://tollgate.example.com/approvals/${request.id}`;
    assert.equal(requested!.text, `Approval requested: alice asks for kafka DeleteTopics admin topic=orders (rule deletion-needs-approval) ${url}`);
    assert.equal(requested!.blocks[0].text.text, 'Approval requested');
    const fields = (requested!.blocks[1].fields as { text: string }[]).map((f) => f.text);
    assert.deepEqual(fields, [
      '*Who*\nalice (analysts)',
      '*What*\nkafka DeleteTopics admin topic=orders',
      '*Where*\nclientId: admin-cli\nsource: 10.0.0.7:51234',
      '*Why*\ndeleting &lt;prod&gt; topics &amp; data needs a second pair of eyes',
    ]);
    assert.equal(requested!.blocks.at(-1).elements[0].url, url);
    assert.equal(rejected!.blocks[0].text.text, 'Rejected by pat');
    assert.ok(rejected!.blocks.some((b) => b.text?.text === '*Reason*\nnot during the &lt;freeze&gt; &amp; not by a bot'), JSON.stringify(rejected!.blocks));
  } finally {
    await service.close();
    await notifier.close();
    await hook.close();
  }
});

test('a POST answered 503 then 429 is retried until it lands; a 400 is logged and not retried', async () => {
  const hook = await receiver([503, 429, 200, 400]);
  const { logger, lines } = logs();
  const notifier = createWebhookNotifier(webhookConfig({ url: hook.url, retries: 3 }), { logger, firstRetryMs: 5 });
  const service = await serviceWith((e) => notifier.notify(e));
  try {
    await fileRequest(service, 'orders');
    await until('the third attempt', () => hook.received.length === 3);
    assert.equal(new Set(hook.received.map((r) => r.body)).size, 1, 'the same event each time');
    await fileRequest(service, 'payments');
    await until('the refused event', () => lines.some((l) => l.level === 'error'));
    assert.equal(hook.received.length, 4);
    assert.deepEqual(lines.map((l) => l.msg), [
      'approvals webhook: POST failed (HTTP 503); retrying',
      'approvals webhook: POST failed (HTTP 429); retrying',
      'approvals webhook refused the event (HTTP 400); not retried',
    ]);
  } finally {
    await service.close();
    await notifier.close();
    await hook.close();
  }
});

test('a receiver that never answers holds up no decision; it times out, and past the queue events are dropped', async () => {
  const hook = await receiver([], true);
  const { logger, lines } = logs();
  const notifier = createWebhookNotifier(webhookConfig({ url: hook.url, retries: 0, timeout: '1s', queue: 2 }), { logger });
  const service = await serviceWith((e) => notifier.notify(e));
  try {
    const first = await fileRequest(service, 't1');
    await until('the first POST to arrive', () => hook.received.length === 1);
    // The first is in flight; two wait; the fourth finds the queue full. Each decision returned meanwhile.
    await fileRequest(service, 't2');
    await fileRequest(service, 't3');
    await fileRequest(service, 't4');
    const approved = await service.approve(first.id, pat);
    assert.equal(approved.state, 'approved');
    assert.equal(lines.filter((l) => l.msg === 'approvals webhook: queue full, event dropped').length, 2, 't4 and the approval');
    await until('the first POST to time out', () => lines.some((l) => l.msg.startsWith('approvals webhook: giving up on the event (no answer within 1000 ms)')));
  } finally {
    await service.close();
    await notifier.close(100);
    await hook.close();
  }
});
