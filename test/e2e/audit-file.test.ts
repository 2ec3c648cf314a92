/**
 * The quickstart's audit trail, end to end on free ports: examples/quickstart.yaml as the stack runs it writes every
 * record both to tollgate's log and to `.tollgate/audit.jsonl` (relative to the config it runs with: here the
 * stack's run folder). HTTP requests (allowed, denied, unauthenticated), a Kafka producer and a consumer go through
 * Envoy; then `tollgate audit verify` (the CLI, as a process) passes on the file, the file holds exactly the records
 * of the log, and `tollgate audit replay` tells a Kafka session's story with the captured digests.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import { runCommand } from '../../scripts/lib/process.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { recordsFromFile } from '../../src/audit/replay.ts';
import type { AuditRecord } from '../../src/audit/record.ts';

let stack: Stack;
let auditFile: string;

before(async () => {
  stack = await startStack();
  const sink = stack.config.audit.sinks.find((s) => s.type === 'file');
  assert.ok(sink?.type === 'file', 'the quickstart config has a file sink');
  auditFile = sink.path;
});
after(async () => { await stack?.stop(); });

const cli = (...args: string[]) => runCommand(process.execPath, [path.join(REPO_ROOT, 'src', 'cli.ts'), ...args], { timeoutMs: 60_000 });

async function fileRecords(): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of recordsFromFile(auditFile)) out.push(r);
  return out;
}

test('the quickstart writes .tollgate/audit.jsonl next to the config it runs with; audit verify passes on it; it holds exactly the records of the log', async () => {
  assert.equal(auditFile, path.join(stack.workDir, '.tollgate', 'audit.jsonl'));
  const token = await stack.mintToken('alice', ['analysts']);
  const get = (p: string, auth = true) => fetch(`${stack.httpUrl}${p}`, auth ? { headers: { authorization: `Bearer ${token}` } } : {}).then(async (r) => { await r.text(); return r.status; });
  assert.equal(await get('/api/customers'), 200);
  assert.equal(await get('/admin/users'), 403);
  assert.equal(await get('/api/customers', false), 401);

  const producer = stack.kafkaClient({ sub: 'payments-app', groups: ['payments-admin'] }).producer();
  await producer.connect();
  await producer.send({ topic: 'payments', messages: [{ key: 'p1', value: JSON.stringify({ card: { number: '4111111111111111' }, customer: { email: 'ada@example.com' } }) }] });
  await producer.disconnect();

  // Every record of the log reaches the file (its sink delivers from its spool within moments).
  let logged: AuditRecord[] = [];
  let filed: AuditRecord[] = [];
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(200)) {
    logged = stack.auditRecords();
    filed = await fileRecords();
    if (filed.length >= logged.length && logged.some((r) => r.details?.['api'] === 'Produce')) break;
  }
  assert.deepEqual(filed.map((r) => r.id), logged.map((r) => r.id), 'the same records, in the same order, in both sinks');
  assert.deepEqual(filed, logged, 'and the same content');
  assert.ok(logged.every((r) => typeof r.id === 'string' && typeof r.session === 'string'), 'every record has an id and a session');
  const events = logged.map((r) => r.event);
  for (const event of ['http.authz.allow', 'http.authz.deny', 'http.authz.unauthenticated', 'kafka.sasl.authenticated', 'kafka.request']) {
    assert.ok(events.includes(event), `${event} is audited`);
  }
  const deny = logged.find((r) => r.event === 'http.authz.deny')!;
  assert.equal(deny.decision, 'deny');
  assert.equal(deny.rule, 'admin-routes-are-admin-only');
  assert.match(deny.session ?? '', /^[0-9a-f-]{36}$/, 'an HTTP request\'s session is Envoy\'s x-request-id');
  assert.match(deny.client ?? '', /^127\.0\.0\.1:\d+$/);

  const verify = await cli('audit', 'verify', auditFile);
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, new RegExp(`: ${filed.length} records, chain intact \\(last seq ${filed.length}, hash [0-9a-f]{64}\\)`));
  const lines = fs.readFileSync(auditFile, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number; prevHash: string; hash: string });
  assert.deepEqual(lines.map((l) => l.seq), filed.map((_, i) => i + 1));
});

test('audit replay tells the producer\'s Kafka session from the file: authentication, then its Produce with the captured digest', async () => {
  const produce = (await fileRecords()).find((r) => r.details?.['api'] === 'Produce' && r.event === 'kafka.request')!;
  assert.match(produce.session ?? '', /^kafka-[0-9a-f]{16}$/);
  assert.equal(typeof produce.latencyMs, 'number');
  assert.ok((produce.bytes?.request ?? 0) > 0 && (produce.bytes?.response ?? 0) > 0, 'request and response sizes');
  const replay = await cli('audit', 'replay', '--session', produce.session!, '--from', auditFile);
  assert.equal(replay.code, 0, replay.stderr);
  const out = replay.stdout;
  assert.match(out, new RegExp(`^session ${produce.session} \\(kafka\\)  principal payments-app \\(oidc, http://127\\.0\\.0\\.1:\\d+\\)  client 127\\.0\\.0\\.1:\\d+\\n`));
  assert.match(out, /kafka\.sasl\.authenticated {2}SASL OAUTHBEARER/);
  assert.match(out, /kafka\.request {2}allow {2}Produce payments\[0\] 1 records {2}rule payments-app-owns-payments {2}[\d.]+ ms {2}\d+ B→\d+ B\n {6}payments-0@\d+ \d+ B {2}sha256 [0-9a-f]{64}/);
  assert.ok(!out.includes('4111111111111111') && !out.includes('ada@example.com'), 'a digest capture holds no payload');
  assert.ok(out.indexOf('kafka.sasl.authenticated') < out.indexOf('Produce payments'), 'in time order');
});
