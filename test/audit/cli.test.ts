/**
 * `tollgate audit verify` and `tollgate audit replay` on files: exit codes, what they print, and the timeline's
 * content (decisions, rules, captured records as they were kept).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { auditCommand } from '../../src/audit/cli.ts';
import { chainRecord, EMPTY_CHAIN, type ChainHead } from '../../src/audit/chain.ts';
import type { AuditRecord } from '../../src/audit/record.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-audit-cli-'));

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await auditCommand(args, { out: (t) => { out += t; }, err: (t) => { err += t; } });
  return { code, out, err };
}

const alice = { subject: 'alice', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' } as const;
const bob = { subject: 'bob', groups: [], issuer: 'https://idp.test', authenticatedBy: 'oidc' } as const;
const at = (s: number) => new Date(Date.UTC(2026, 4, 1, 12, 0, s)).toISOString();

const RECORDS: AuditRecord[] = [
  { id: 'p-1', time: at(0), path: 'kafka', event: 'kafka.sasl.authenticated', session: 'kafka-aaaa', principal: alice, client: '10.0.0.1:5000', details: { mechanism: 'OAUTHBEARER' } },
  { id: 'p-2', time: at(1), path: 'kafka', event: 'kafka.request', decision: 'allow', session: 'kafka-aaaa', principal: alice, client: '10.0.0.1:5000', rule: 'payments-app-owns-payments', latencyMs: 2.5, bytes: { request: 300, response: 80 },
    details: { api: 'Produce', topics: [{ topic: 'payments', partitions: [{ partition: 0, records: 1 }] }], capture: { rules: ['capture-payments-writes'], payload: 'digest', records: [{ topic: 'payments', partition: 0, offset: 42, timestamp: 1, size: 120, valueSha256: 'ab'.repeat(32) }] } } },
  { id: 'p-3', time: at(2), path: 'http', event: 'http.authz.deny', decision: 'deny', session: 'req-9', principal: bob, rule: 'admin-routes-are-admin-only', reason: 'admin routes are admin-only', details: { method: 'GET', host: 'api.test', path: '/admin/users' } },
  { id: 'p-4', time: at(3), path: 'kafka', event: 'kafka.request', decision: 'allow', session: 'kafka-aaaa', principal: alice, rule: 'analysts-may-consume', details: { api: 'Fetch', topics: [{ topic: 'payments', partitions: [{ partition: 0, fetchOffset: 42 }] }], capture: { rules: ['c'], payload: 'masked', records: [{ topic: 'payments', partition: 0, offset: 42, timestamp: 1, size: 120, value: '{"card":{"number":"************1111"}}' }] } } },
];

function chainedFile(name: string, records: readonly AuditRecord[]): string {
  let head: ChainHead = EMPTY_CHAIN;
  const file = path.join(dir, name);
  fs.writeFileSync(file, records.map((r) => {
    const next = chainRecord(r, head);
    head = next.head;
    return next.line;
  }).join(''));
  return file;
}

test('verify: 0 and the count for an intact file; 1 and the first bad line for a broken one; 2 for a missing file', async () => {
  const file = chainedFile('intact.jsonl', RECORDS);
  const ok = await run('verify', file);
  assert.equal(ok.code, 0);
  assert.match(ok.out, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 4 records, chain intact \\(last seq 4, hash [0-9a-f]{64}\\)\\n$`));
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const broken = path.join(dir, 'broken.jsonl');
  fs.writeFileSync(broken, [lines[0], lines[2], lines[3], ''].join('\n'));
  const bad = await run('verify', broken);
  assert.equal(bad.code, 1);
  assert.equal(bad.err, `${broken}:2: removed: 1 record missing before this line: expected seq 2, found 3 (1 records before it verified)\n`);
  assert.equal((await run('verify', path.join(dir, 'nope.jsonl'))).code, 2);
  assert.equal((await run('verify')).code, 2);
});

test('verify with a key: --key-env', async () => {
  let head: ChainHead = EMPTY_CHAIN;
  const key = Buffer.from('k3y');
  const file = path.join(dir, 'keyed.jsonl');
  fs.writeFileSync(file, RECORDS.map((r) => { const n = chainRecord(r, head, key); head = n.head; return n.line; }).join(''));
  process.env['TEST_AUDIT_KEY'] = 'k3y';
  assert.equal((await run('verify', file, '--key-env', 'TEST_AUDIT_KEY')).code, 0);
  assert.equal((await run('verify', file)).code, 1, 'without the key the hashes do not match');
});

test('replay --session: the session\'s timeline in time order, with decisions, rules, sizes and the captured records', async () => {
  const file = chainedFile('replay.jsonl', [RECORDS[3]!, RECORDS[0]!, RECORDS[2]!, RECORDS[1]!, RECORDS[1]!]);
  const { code, out } = await run('replay', '--session', 'kafka-aaaa', '--from', file);
  assert.equal(code, 0);
  const lines = out.split('\n');
  assert.equal(lines[0], 'session kafka-aaaa (kafka)  principal alice (oidc, https://idp.test)  client 10.0.0.1:5000');
  assert.equal(lines[1], `3 records, ${at(0)} to ${at(3)}`);
  assert.equal(lines[3], `${at(0)}  kafka.sasl.authenticated  SASL OAUTHBEARER`);
  assert.equal(lines[4], `${at(1)}  kafka.request  allow  Produce payments[0] 1 records  rule payments-app-owns-payments  2.5 ms  300 B→80 B`);
  assert.equal(lines[5], `      payments-0@42 120 B  sha256 ${'ab'.repeat(32)}`);
  assert.equal(lines[6], `${at(3)}  kafka.request  allow  Fetch payments[0]  rule analysts-may-consume`);
  assert.equal(lines[7], '      payments-0@42 120 B  value {"card":{"number":"************1111"}}', 'served records as they were masked');
  assert.equal(lines.length, 9, 'the record delivered twice is shown once');
});

test('replay --json: the records themselves, without the file\'s chain fields, so every sink gives the same', async () => {
  const file = chainedFile('json.jsonl', RECORDS);
  const { out } = await run('replay', '--session', 'req-9', '--from', file, '--json');
  assert.deepEqual(out.trim().split('\n').map((l) => JSON.parse(l)), [RECORDS[2]]);
});

test('replay --principal with a time range; and from tollgate\'s log (the stdout sink\'s lines)', async () => {
  const log = path.join(dir, 'tollgate.log');
  fs.writeFileSync(log, [
    '# a header line the harness writes',
    ...RECORDS.map((r) => JSON.stringify({ level: 30, channel: 'audit', audit: r, msg: r.event })),
    JSON.stringify({ level: 30, msg: 'tollgate listening' }),
    '{"level":30,"channel":"audit","audit":{"time":',
  ].join('\n'));
  const { code, out } = await run('replay', '--principal', 'alice', '--since', at(1), '--until', at(3), '--from', log, '--json');
  assert.equal(code, 0);
  assert.deepEqual(out.trim().split('\n').map((l) => (JSON.parse(l) as AuditRecord).id), ['p-2'], 'since is inclusive, until exclusive');
  const none = await run('replay', '--principal', 'carol', '--from', log);
  assert.match(none.out, /^no audit records match/);
});

test('replay: bad usage is exit 2 with the reason', async () => {
  for (const args of [['replay', '--from', 'x'], ['replay', '--session', 's'], ['replay', '--session', 's', '--principal', 'p', '--from', 'x'], ['replay', '--session', 's', '--since', 'yesterday', '--from', import.meta.filename], ['nope']]) {
    const { code, err } = await run(...args);
    assert.equal(code, 2, args.join(' '));
    assert.match(err, /^tollgate audit: /);
  }
});
