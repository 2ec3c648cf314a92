/**
 * The approver's web page in a real browser (Debian's Chromium, headless, driven by playwright-core), against the
 * real stack: a Kafka DeleteTopics through Envoy and tollgate files an approval; the requester opening its page sees
 * it but is refused when pressing Approve; a platform admin signs in on the list page, opens the request, sees who,
 * what, where and why, approves it, and the client's retry deletes the topic.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { ensureChromium } from '../../scripts/provision.ts';
import { launchChromium } from '../../scripts/lib/chromium.ts';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';

let stack: Stack;
let browser: Browser;

before(async () => {
  await ensureChromium();
  stack = await startStack();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

const ALICE = { sub: 'alice', groups: ['analysts'] } as const;

async function topicExists(topic: string): Promise<boolean> {
  const direct = stack.directKafka().admin();
  await direct.connect();
  try {
    return (await direct.listTopics()).includes(topic);
  } finally {
    await direct.disconnect();
  }
}

/** A fresh browser context (its own sessionStorage), signed in with `token` on `path`. */
async function signedIn(path: string, token: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${stack.adminUrl}${path}`);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  return page;
}

const field = (page: Page, name: string) => page.locator(`[data-field="${name}"]`);

test('the requester cannot approve their own request from the page; an approver sees who/what/where/why, approves, and the retry deletes the topic', async () => {
  await stack.kafka.createTopics(['page-approved']);
  const admin = stack.kafkaClient({ clientId: 'e2e-approvals-page', ...ALICE, kafkajs: { retry: { retries: 0 } } }).admin();
  await admin.connect();
  try {
    await assert.rejects(admin.deleteTopics({ topics: ['page-approved'], timeout: 10_000 }), { type: 'POLICY_VIOLATION' });
    const platformAdmin = await stack.mintToken('platform-admin', ['platform-admins']);
    const listed = await (await fetch(`${stack.adminUrl}/approvals`, { headers: { authorization: `Bearer ${platformAdmin}` } })).json() as { approvals: { id: string; request: string }[] };
    const id = listed.approvals.find((a) => a.request === 'kafka DeleteTopics admin topic=page-approved')?.id;
    assert.ok(id, JSON.stringify(listed));

    // The requester: the page shows the request, and Approve answers with the refusal.
    const own = await signedIn(`/approvals/${id}`, await stack.mintToken('alice', ['analysts']));
    await field(own, 'state').getByText('pending').waitFor();
    await own.getByRole('button', { name: 'Approve' }).click();
    await own.locator('.result').getByText(`403 self_approval: alice asked for approval ${id} and cannot approve it`).waitFor();
    assert.equal(await field(own, 'state').textContent(), 'pending');

    // The approver: the list, then the request's page.
    const approver = await signedIn('/approvals', platformAdmin);
    await approver.getByText('signed in as platform-admin').waitFor();
    await approver.getByRole('link', { name: 'kafka DeleteTopics admin topic=page-approved' }).click();
    await approver.waitForURL(`**/approvals/${id}`);
    await field(approver, 'state').getByText('pending').waitFor();
    assert.equal(await approver.locator('h1').textContent(), 'kafka DeleteTopics admin topic=page-approved');
    assert.match(await field(approver, 'requester').textContent() ?? '', /^alice \(http:\/\/127\.0\.0\.1:\d+.*\)$/);
    assert.equal(await field(approver, 'groups').textContent(), 'analysts');
    assert.equal(await field(approver, 'operation').textContent(), 'kafka DeleteTopics admin');
    assert.equal(await field(approver, 'resource').textContent(), 'topic page-approved');
    assert.match(await field(approver, 'context').textContent() ?? '', /clientId: e2e-approvals-page/);
    assert.equal(await field(approver, 'rule').textContent(), 'topic-deletion-needs-approval');
    assert.notEqual((await field(approver, 'reason').textContent())?.trim(), '');
    assert.equal(await field(approver, 'decisions').textContent(), 'none yet');

    await approver.getByLabel('Reason (optional)').fill('scratch topic, cleanup');
    await approver.getByRole('button', { name: 'Approve' }).click();
    await approver.getByText('Approval recorded: approved.').waitFor();
    // The page re-reads the request after the answer: wait for that rendering rather than race it.
    await field(approver, 'state').getByText('approved', { exact: true }).waitFor();
    assert.equal(await field(approver, 'state').textContent(), 'approved');
    assert.match(await field(approver, 'decisions').textContent() ?? '', /approved by platform-admin at .*: scratch topic, cleanup/);
    assert.equal(await approver.getByRole('button', { name: 'Revoke grant' }).count(), 1, 'a live grant can be revoked from the page');

    const shown = await (await fetch(`${stack.adminUrl}/approvals/${id}`, { headers: { authorization: `Bearer ${platformAdmin}` } })).json() as { state: string };
    assert.equal(shown.state, 'approved');
    await admin.deleteTopics({ topics: ['page-approved'], timeout: 10_000 });
    assert.equal(await topicExists('page-approved'), false, 'the retry went through to the broker');
  } finally {
    await admin.disconnect();
  }
});
