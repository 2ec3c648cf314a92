/**
 * Just-in-time approval end to end, through the real Envoy and tollgate with the quickstart's rules: Kafka clients
 * (kafkajs, Kafka's own TopicCommand) against a real broker, a `kubectl exec`-shaped request against a real
 * kube-apiserver, and approvers using `tollgate approvals` as a separate process against tollgate's admin listener.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import { javaOAuthClientProperties, runKafkaTool } from '../../scripts/lib/kafka.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { runCommand } from '../../scripts/lib/process.ts';
import type { AuditRecord } from '../../src/audit/record.ts';

let stack: Stack;
let platformAdmin: string;

before(async () => {
  stack = await startStack({
    kubernetes: true,
    editConfig: (doc) => {
      // Topics named short-* get two-second grants: long enough to see one, short enough to outlive.
      (doc['rules'] as unknown[]).unshift({
        name: 'short-grants-for-short-topics', match: { kafka: { api: 'DeleteTopics', topic: 'short-*' } }, unless: { group: 'platform-admins' },
        effect: 'approve', approval: { approvers: { group: 'platform-admins' }, grant: '2s' },
      });
    },
  });
  platformAdmin = await stack.mintToken('platform-admin', ['platform-admins']);
});
after(async () => { await stack?.stop(); });

const CLI = path.join(REPO_ROOT, 'src', 'cli.ts');

/** `tollgate approvals …` as its own process, as an approver runs it. */
const approvals = (token: string, ...args: string[]) => runCommand(process.execPath, [CLI, 'approvals', ...args], {
  env: { ...process.env, TOLLGATE_TOKEN: token, TOLLGATE_ADMIN_URL: stack.adminUrl }, timeoutMs: 60_000,
});

interface Listed { id: string; state: string; request: string; requester: { subject: string }; context: Record<string, string>; grant?: { createdAt: string; expiresAt: string } }

/** The id of the pending approval request for `request` (as `approvals list` shows it), once it is there. */
async function pendingApproval(request: string): Promise<Listed> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const listed = await approvals(platformAdmin, 'list', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    const found = (JSON.parse(listed.stdout) as { approvals: Listed[] }).approvals.find((a) => a.request === request);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no pending approval for ${request}: ${listed.stdout}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function auditRecord(what: string, matches: (r: AuditRecord) => boolean): Promise<AuditRecord> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = stack.auditRecords().find(matches);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no audit record ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function topicExists(topic: string): Promise<boolean> {
  const direct = stack.directKafka().admin();
  await direct.connect();
  try {
    return (await direct.listTopics()).includes(topic);
  } finally {
    await direct.disconnect();
  }
}

const ALICE = { sub: 'alice', groups: ['analysts'] } as const;

test('Kafka DeleteTopics: POLICY_VIOLATION with an approval the requester cannot approve; a platform admin approves from the CLI and the retry deletes the topic; revoking the grant closes the connection', async () => {
  await stack.kafka.createTopics(['scratch-approved']);
  const client = stack.kafkaClient({ clientId: 'e2e-approvals', ...ALICE, kafkajs: { retry: { retries: 0 } } });
  const admin = client.admin();
  await admin.connect();
  try {
    await assert.rejects(admin.deleteTopics({ topics: ['scratch-approved'], timeout: 10_000 }), { type: 'POLICY_VIOLATION' });
    const request = await pendingApproval('kafka DeleteTopics admin topic=scratch-approved');
    assert.equal(request.requester.subject, 'alice');
    assert.equal(request.context['clientId'], 'e2e-approvals');
    const denied = await auditRecord('of the refused DeleteTopics', (r) => r.event === 'kafka.request.denied' && r.details?.['api'] === 'DeleteTopics' && r.principal?.subject === 'alice');
    assert.deepEqual(denied.details?.['approval'], { id: request.id, state: 'pending' });
    assert.equal(await topicExists('scratch-approved'), true, 'nothing reached the broker');

    const pendingMetrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
    assert.match(pendingMetrics, /^tollgate_approvals_pending [1-9]/m, 'the pending request is counted');
    assert.match(pendingMetrics, /^tollgate_approval_events_total\{event="requested"\} [1-9]/m);
    assert.match(pendingMetrics, /^tollgate_kafka_bytes_total\{direction="request"\} [1-9]/m);
    const own = await approvals(await stack.mintToken('alice', ['analysts']), 'approve', request.id);
    assert.equal(own.code, 1);
    assert.match(own.stderr, new RegExp(`403 self_approval\\): alice asked for approval ${request.id} and cannot approve it`));

    const approved = await approvals(platformAdmin, 'approve', request.id, '--reason', 'scratch topic, cleanup');
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, new RegExp(`^${request.id}: approved$`, 'm'));
    assert.match(await (await fetch(`${stack.adminUrl}/metrics`)).text(), /^tollgate_approval_events_total\{event="approved"\} [1-9]/m);

    await admin.deleteTopics({ topics: ['scratch-approved'], timeout: 10_000 });
    assert.equal(await topicExists('scratch-approved'), false, 'the retry went through to the broker');
    const allowed = await auditRecord('of the allowed DeleteTopics', (r) => r.event === 'kafka.request' && r.details?.['api'] === 'DeleteTopics' && r.principal?.subject === 'alice');
    assert.equal((allowed.details?.['approval'] as { id: string; state: string }).id, request.id);
    assert.equal((allowed.details?.['approval'] as { id: string; state: string }).state, 'approved');

    const revoked = await approvals(platformAdmin, 'revoke', request.id, '--reason', 'done; no more deletions');
    assert.equal(revoked.code, 0, revoked.stderr);
    const closed = await auditRecord('of the connection closed by the revocation', (r) => r.event === 'kafka.approval.grant_revoked');
    assert.deepEqual((closed.details as { approval: unknown }).approval, { id: request.id, state: 'revoked' });
    assert.equal(closed.principal?.subject, 'alice');
  } finally {
    await admin.disconnect();
  }
  // A new connection, the same request: the revoked grant no longer counts.
  const again = stack.kafkaClient({ clientId: 'e2e-approvals-again', ...ALICE, kafkajs: { retry: { retries: 0 } } }).admin();
  await again.connect();
  try {
    await assert.rejects(again.deleteTopics({ topics: ['scratch-approved'], timeout: 10_000 }), { type: 'POLICY_VIOLATION' });
  } finally {
    await again.disconnect();
  }
});

test('Kafka\'s own admin client (DeleteTopics v6) is told the approval id in the error message', async () => {
  const tokenEndpoint = `${stack.issuer.issuer}/token`;
  const config = path.join(stack.workDir, 'analyst-app-approvals.properties');
  fs.writeFileSync(config, javaOAuthClientProperties(tokenEndpoint, 'analyst-app', 'analyst-app-secret'));
  const deleted = await runKafkaTool('org.apache.kafka.tools.TopicCommand', [
    '--bootstrap-server', stack.kafkaBootstrap, '--command-config', config, '--delete', '--topic', 'analytics',
  ], { jvmOptions: [`-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=${tokenEndpoint}`], timeoutMs: 120_000 });
  assert.notEqual(deleted.code, 0);
  const output = deleted.stdout + deleted.stderr;
  const match = /PolicyViolationException: approval required by rule topic-deletion-needs-approval: approval (apr_[a-z2-7]+) awaits an approver of platform-admins \(tollgate approvals approve (apr_[a-z2-7]+)\)/.exec(output);
  assert.ok(match, output);
  assert.equal(match[1], match[2]);
  const shown = await approvals(platformAdmin, 'show', match[1]!, '--json');
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal((JSON.parse(shown.stdout) as Listed).request, 'kafka DeleteTopics admin topic=analytics');
  assert.equal(await topicExists('analytics'), true);
});

test('a grant expires: once past it, the same deletion needs a new approval', async () => {
  await stack.kafka.createTopics(['short-lived']);
  const admin = stack.kafkaClient({ clientId: 'e2e-approvals-short', ...ALICE, kafkajs: { retry: { retries: 0 } } }).admin();
  await admin.connect();
  try {
    await assert.rejects(admin.deleteTopics({ topics: ['short-lived'], timeout: 10_000 }), { type: 'POLICY_VIOLATION' });
    const request = await pendingApproval('kafka DeleteTopics admin topic=short-lived');
    const approved = await approvals(platformAdmin, 'approve', request.id, '--json');
    assert.equal(approved.code, 0, approved.stderr);
    const grant = (JSON.parse(approved.stdout) as Listed).grant!;
    assert.equal(Date.parse(grant.expiresAt) - Date.parse(grant.createdAt), 2_000);
    // Wait until the grant is over by tollgate's clock, then ask again.
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(grant.expiresAt) - Date.now()) + 500));
    await assert.rejects(admin.deleteTopics({ topics: ['short-lived'], timeout: 10_000 }), { type: 'POLICY_VIOLATION' });
    const renewed = await pendingApproval('kafka DeleteTopics admin topic=short-lived');
    assert.notEqual(renewed.id, request.id, 'a new approval request');
    assert.equal(await topicExists('short-lived'), true);
  } finally {
    await admin.disconnect();
  }
});

/** A POST through Envoy's Kubernetes gateway (its CA verified), resolving when the answer is complete. */
function postThroughGateway(urlPath: string, token: string): Promise<{ status: number; body: string }> {
  const kube = stack.kubernetes!;
  const ca = fs.readFileSync(kube.caFile);
  return new Promise((resolve, reject) => {
    const req = https.request(`${kube.url}${urlPath}`, { method: 'POST', ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('Kubernetes: ci-bot\'s exec into a demo pod is held until a platform admin approves it from the CLI, then reaches the API server', async () => {
  const kube = stack.kubernetes!;
  const pod = await kube.apiServer.kubectl(['apply', '-f', '-'], {
    input: 'apiVersion: v1\nkind: Pod\nmetadata: { name: shell, namespace: demo }\nspec: { containers: [{ name: shell, image: busybox, command: [sleep, "3600"] }] }\n',
  });
  assert.equal(pod.code, 0, pod.stderr);
  const ciBot = await stack.mintToken('ci-bot', ['ci']);
  const execPath = '/api/v1/namespaces/demo/pods/shell/exec?command=date&container=shell&stdout=true&stderr=true';
  let answered = false;
  const held = postThroughGateway(execPath, ciBot).finally(() => { answered = true; });

  const request = await pendingApproval('kubernetes create apiGroup= resource=pods/exec namespace=demo name=shell');
  assert.equal(request.requester.subject, 'ci-bot');
  assert.equal(request.context['path'], execPath, 'the approver sees the command');
  assert.equal(answered, false, 'the request is held while the approval is pending');
  const approved = await approvals(platformAdmin, 'approve', request.id);
  assert.equal(approved.code, 0, approved.stderr);

  const res = await held;
  // No kubelet runs in the test bed: the API server itself answers (the pod was never scheduled), not tollgate.
  const status = JSON.parse(res.body) as { kind: string; message: string; code: number };
  assert.equal(status.kind, 'Status');
  assert.match(status.message, /pod shell does not have a host assigned/);
  assert.doesNotMatch(status.message, /tollgate|approval/);
  const allowed = await auditRecord('of the released exec', (r) => r.event === 'kubernetes.authz.allow' && (r.details?.['approval'] as { id?: string } | undefined)?.id === request.id);
  const note = allowed.details?.['approval'] as { state: string; heldMs: number; grant: string };
  assert.equal(note.state, 'approved');
  assert.ok(note.heldMs > 0);
  assert.equal(allowed.rule, 'ci-bot-exec-in-demo-is-held');
});

test('Kubernetes: kubectl exec as ci-bot pauses until a platform admin approves, then gets the API server\'s own answer', async () => {
  const kube = stack.kubernetes!;
  const pod = await kube.apiServer.kubectl(['apply', '-f', '-'], {
    input: 'apiVersion: v1\nkind: Pod\nmetadata: { name: shell2, namespace: demo }\nspec: { containers: [{ name: shell, image: busybox, command: [sleep, "3600"] }] }\n',
  });
  assert.equal(pod.code, 0, pod.stderr);
  let exited = false;
  const exec = kube.kubectl(['exec', '-n', 'demo', 'shell2', '--', 'date'], await stack.mintToken('ci-bot', ['ci'])).finally(() => { exited = true; });
  const request = await pendingApproval('kubernetes create apiGroup= resource=pods/exec namespace=demo name=shell2');
  assert.equal(exited, false, 'kubectl waits while the approval is pending');
  const approved = await approvals(platformAdmin, 'approve', request.id);
  assert.equal(approved.code, 0, approved.stderr);
  const result = await exec;
  // Released, the exec reaches the API server, which has no node to run it on.
  assert.equal(result.code, 1);
  assert.match(result.stderr, /does not have a host assigned/);
  assert.doesNotMatch(result.stderr, /tollgate|Forbidden/);
});

test('Kubernetes: a held exec rejected from the CLI is a Forbidden Status naming who rejected it and why', async () => {
  const ciBot = await stack.mintToken('ci-bot', ['ci']);
  const held = postThroughGateway('/api/v1/namespaces/demo/pods/db/exec?command=sh&stdin=true', ciBot);
  const request = await pendingApproval('kubernetes create apiGroup= resource=pods/exec namespace=demo name=db');
  const rejected = await approvals(platformAdmin, 'reject', request.id, '--reason', 'no shells on the database');
  assert.equal(rejected.code, 0, rejected.stderr);
  const res = await held;
  assert.equal(res.status, 403);
  const status = JSON.parse(res.body) as { reason: string; message: string; details: { causes: Array<{ field: string; message: string }> } };
  assert.equal(status.reason, 'Forbidden');
  assert.match(status.message, new RegExp(`approval ${request.id} was rejected by platform-admin: no shells on the database`));
  assert.deepEqual(status.details.causes.map((c) => [c.field, c.message]).slice(0, 2), [['approval.id', request.id], ['approval.state', 'rejected']]);
});
