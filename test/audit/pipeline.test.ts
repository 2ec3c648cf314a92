/**
 * The audit pipeline with its file and webhook sinks (the Kafka sink against a real broker is in
 * test/e2e/audit-kafka.test.ts): records stamped once and fanned out, a file chain that survives restarts and torn
 * tails, a webhook that fails and recovers, and both spool policies as traffic sees them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { configSchema, type AuditConfig } from '../../src/config/schema.ts';
import { resolveAuditPaths } from '../../src/config/load.ts';
import { openAuditPipeline, sinkNames, type AuditPipeline } from '../../src/audit/pipeline.ts';
import { verifyChain } from '../../src/audit/chain.ts';
import { recordsFromFile } from '../../src/audit/replay.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import { createStamper } from '../../src/audit/stamp.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-pipeline-'));
let dirs = 0;
const freshDir = () => {
  const dir = path.join(root, `case-${++dirs}`);
  fs.mkdirSync(dir);
  return dir;
};

/** The audit section as a config file in `dir` would give it (relative paths resolved against `dir`). */
const auditConfig = (dir: string, sinks: unknown[]): AuditConfig =>
  resolveAuditPaths(configSchema.parse({ audit: { sinks } }), dir).audit;

/** A logger whose lines are kept, to check what operators are told. */
function memoryLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } });
  return { logger, lines };
}

const record = (n: number, extra: Partial<AuditRecord> = {}): AuditRecord => ({
  time: new Date().toISOString(), path: 'http', event: 'http.authz.allow', session: `req-${n}`,
  principal: { subject: 'alice', groups: [], issuer: 'https://idp.test', authenticatedBy: 'oidc' }, rule: 'api-open',
  connection: { sourceAddress: '10.0.0.7', sourcePort: 4242 }, details: { n }, ...extra,
});

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function fileRecords(file: string): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of recordsFromFile(file)) out.push(r);
  return out;
}

const delivered = (pipeline: AuditPipeline, sink: string) => pipeline.reports().find((r) => r.name === sink)!.counts.delivered;

test('a record is stamped once: a unique id, its session, the client and the decision, the same in every sink', async () => {
  const stamp = createStamper('p1');
  const a = stamp(record(1));
  const b = stamp({ time: new Date().toISOString(), path: 'kafka', event: 'kafka.request.denied', connection: { 'source.address': '::1', 'source.port': 9 } });
  assert.equal(a.id, 'p1-1');
  assert.equal(b.id, 'p1-2');
  assert.equal(a.session, 'req-1', 'an adapter\'s session is kept');
  assert.equal(b.session, 'anonymous@[::1]:9', 'no session: the principal (none) at the client');
  assert.equal(stamp({ ...record(2), connection: { 'source.address': '127.0.0.1:43132', 'source.port': 43132 } }).client, '127.0.0.1:43132', 'Envoy\'s network source.address has the port already');
  assert.equal(a.client, '10.0.0.7:4242');
  assert.equal(a.decision, 'allow');
  assert.equal(b.decision, 'deny');

  const dir = freshDir();
  const { logger, lines } = memoryLogger();
  const pipeline = openAuditPipeline(auditConfig(dir, [{ type: 'stdout' }, { type: 'file', path: 'audit.jsonl' }]), { logger });
  pipeline.write(record(7));
  await until('the file sink has it', () => delivered(pipeline, 'file') === 1);
  await pipeline.close();
  const logged = lines.find((l) => l['channel'] === 'audit')!['audit'] as AuditRecord;
  const [filed] = await fileRecords(path.join(dir, 'audit.jsonl'));
  assert.deepEqual(filed, logged, 'the file holds the record the log shows (id included), its chain fields aside');
  assert.ok(logged.id !== undefined);
});

test('sink names: given, the type, or type-index when types repeat', () => {
  const config = configSchema.parse({ audit: { sinks: [{ type: 'stdout' }, { type: 'file', path: 'a' }, { type: 'file', path: 'b', name: 'archive' }, { type: 'webhook', url: 'http://x.test', spool: { dir: 's' } }, { type: 'webhook', url: 'http://y.test', spool: { dir: 't' } }] } });
  assert.deepEqual(sinkNames(config.audit.sinks), ['stdout', 'file-1', 'archive', 'webhook-3', 'webhook-4']);
});

test('config: a kafka or webhook sink without a spool folder, two sinks of one name, and an unknown type are refused', () => {
  const issues = (sinks: unknown[]) => configSchema.safeParse({ audit: { sinks } }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
  assert.deepEqual(issues([{ type: 'webhook', url: 'http://x.test' }]), ['audit.sinks.0.spool.dir: expected `dir`: the folder where records wait while the webhook is unreachable']);
  assert.deepEqual(issues([{ type: 'stdout', name: 'a' }, { type: 'file', path: 'x', name: 'a' }]), ['audit.sinks.1.name: expected a unique sink name; "a" is also sinks[0]']);
  assert.deepEqual(issues([{ type: 'syslog' }]), ['audit.sinks.0.type: expected a sink `type`: stdout, file, kafka or webhook']);
  assert.deepEqual(issues([{ type: 'file', path: 'a.jsonl' }, { type: 'file', path: 'a.jsonl' }]), ['audit.sinks.1.path: expected a place of its own; "a.jsonl" is also used by sinks[0]']);
  assert.deepEqual(configSchema.parse({}).audit.sinks, [{ type: 'stdout' }], 'default: stdout only, as before');
});

test('file sink: the chain continues across restarts, and the file verifies', async () => {
  const dir = freshDir();
  const config = auditConfig(dir, [{ type: 'file', path: 'logs/audit.jsonl' }]);
  const file = path.join(dir, 'logs', 'audit.jsonl');
  for (const run of [0, 1, 2]) {
    const pipeline = openAuditPipeline(config, { logger: pino({ level: 'silent' }) });
    for (let i = 0; i < 10; i++) pipeline.write(record(run * 10 + i));
    await until('ten records in the file', () => delivered(pipeline, 'file') === 10);
    await pipeline.close();
  }
  const result = await verifyChain(file);
  assert.deepEqual(result.ok && result.records, 30);
  assert.deepEqual((await fileRecords(file)).map((r) => r.details?.['n']), Array.from({ length: 30 }, (_, i) => i));
  assert.equal(fs.existsSync(`${file}.lock`), false, 'the lock is gone after close');
});

test('file sink: records written but not confirmed before a crash come from the spool again and are not written twice', async () => {
  const dir = freshDir();
  const config = auditConfig(dir, [{ type: 'file', path: 'audit.jsonl' }]);
  const file = path.join(dir, 'audit.jsonl');
  let pipeline = openAuditPipeline(config, { logger: pino({ level: 'silent' }) });
  for (let i = 0; i < 8; i++) pipeline.write(record(i));
  await until('eight records', () => delivered(pipeline, 'file') === 8);
  await pipeline.close();
  // The crash window: the file has the lines, the spool's confirmation did not reach the disk.
  fs.writeFileSync(path.join(dir, 'audit.jsonl.spool', 'acked'), '3\n');
  pipeline = openAuditPipeline(config, { logger: pino({ level: 'silent' }) });
  pipeline.write(record(8));
  await until('the redelivery and the new record', () => pipeline.reports()[0]!.status!.pendingRecords === 0);
  await pipeline.close();
  const result = await verifyChain(file);
  assert.equal(result.ok && result.records, 9);
  assert.deepEqual((await fileRecords(file)).map((r) => r.details?.['n']), [0, 1, 2, 3, 4, 5, 6, 7, 8], 'each once');
});

test('file sink: a torn last line is set aside and reported in the chain, not chained over', async () => {
  const dir = freshDir();
  const config = auditConfig(dir, [{ type: 'file', path: 'audit.jsonl' }]);
  const file = path.join(dir, 'audit.jsonl');
  const { logger, lines } = memoryLogger();
  let pipeline = openAuditPipeline(config, { logger });
  for (let i = 0; i < 3; i++) pipeline.write(record(i));
  await until('three records', () => delivered(pipeline, 'file') === 3);
  await pipeline.close();
  const cut = '{"details":{"n":3},"event":"http.authz.al';
  fs.appendFileSync(file, cut);
  assert.equal((await verifyChain(file)).ok, false, 'torn as the crash left it');

  pipeline = openAuditPipeline(config, { logger });
  pipeline.write(record(4));
  await until('the next record', () => delivered(pipeline, 'file') === 1);
  await pipeline.close();
  const result = await verifyChain(file);
  assert.equal(result.ok && result.records, 5, 'three, the torn-tail record, and the next one');
  const records = await fileRecords(file);
  const torn = records[3]!;
  assert.equal(torn.event, 'audit.file.torn_tail');
  assert.equal(torn.path, 'system');
  const savedTo = torn.details!['savedTo'] as string;
  assert.equal(fs.readFileSync(savedTo, 'utf8'), cut, 'the torn bytes are kept aside, as they were');
  assert.equal(torn.details!['bytes'], cut.length);
  assert.equal(records[4]!.details?.['n'], 4);
  assert.ok(lines.some((l) => l['level'] === 40 && String(l['msg']).includes('incomplete')), 'and the operator is told');
});

test('file sink: a last record that does not match its hash stops the start; a live writer\'s lock too', async () => {
  const dir = freshDir();
  const config = auditConfig(dir, [{ type: 'file', path: 'audit.jsonl' }]);
  const file = path.join(dir, 'audit.jsonl');
  const pipeline = openAuditPipeline(config, { logger: pino({ level: 'silent' }) });
  pipeline.write(record(1));
  await until('one record', () => delivered(pipeline, 'file') === 1);
  assert.throws(() => openAuditPipeline(config, { logger: pino({ level: 'silent' }) }), /already written by another sink of this process/);
  await pipeline.close();
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"rule":"api-open"', '"rule":"forged"'));
  assert.throws(() => openAuditPipeline(config, { logger: pino({ level: 'silent' }) }), /does not match its hash: the file was changed; `tollgate audit verify/);
  assert.equal(fs.existsSync(`${file}.lock`), false, 'a start that failed leaves no lock behind');
});

test('file sink: a lock left by a process that is gone is taken over; one held by a live process is not', async () => {
  const dir = freshDir();
  const lockFile = path.join(dir, 'audit.jsonl.lock');
  fs.writeFileSync(lockFile, `${process.ppid}\n`);
  assert.throws(() => openAuditPipeline(auditConfig(dir, [{ type: 'file', path: 'audit.jsonl' }]), { logger: pino({ level: 'silent' }) }),
    new RegExp(`is being written by process ${process.ppid}`));
  for (const stale of ['999999999', String(process.pid)]) {
    fs.writeFileSync(lockFile, `${stale}\n`);
    const pipeline = openAuditPipeline(auditConfig(dir, [{ type: 'file', path: 'audit.jsonl' }]), { logger: pino({ level: 'silent' }) });
    assert.equal(fs.readFileSync(lockFile, 'utf8'), `${process.pid}\n`, `a lock of ${stale === String(process.pid) ? 'this pid, in an earlier life,' : 'a dead pid'} is taken over`);
    await pipeline.close();
  }
});

/** A webhook receiver that answers 503 while `failing`, and keeps the records of the batches it took. */
async function receiver() {
  const received: AuditRecord[] = [];
  const batches: string[] = [];
  let attempts = 0;
  const state = { failing: true };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      attempts++;
      if (state.failing || req.headers['authorization'] !== 'Bearer hook-secret') {
        res.writeHead(state.failing ? 503 : 401).end('not now');
        return;
      }
      batches.push(String(req.headers['x-tollgate-batch']));
      received.push(...(JSON.parse(body) as { records: AuditRecord[] }).records);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/audit?token=not-shown`;
  return { url, received, batches, state, attempts: () => attempts, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('webhook sink: while the receiver fails, records wait and traffic is not held; when it recovers, every record arrives once, in order', async () => {
  const hook = await receiver();
  const dir = freshDir();
  process.env['TEST_HOOK_TOKEN'] = 'Bearer hook-secret';
  const { logger, lines } = memoryLogger();
  const pipeline = openAuditPipeline(auditConfig(dir, [{
    type: 'webhook', url: hook.url, headers: { authorization: { env: 'TEST_HOOK_TOKEN' } }, batch: { maxRecords: 7, maxWait: '50ms' }, spool: { dir: 'hook-spool' },
  }]), { logger, minBackoffMs: 20, maxBackoffMs: 100 });
  try {
    for (let i = 0; i < 20; i++) pipeline.write(record(i));
    await until('failed attempts', () => hook.attempts() >= 3);
    const down = pipeline.reports()[0]!.status!;
    assert.equal(down.up, false);
    assert.match(down.lastError ?? '', /answered 503: not now/);
    assert.equal(down.target, hook.url.replace('?token=not-shown', ''), 'the target shown never carries the query');
    assert.equal(down.pendingRecords, 20);
    assert.equal(pipeline.refusal(), undefined, 'a sink that is down does not stop traffic while its spool has room');
    for (let i = 20; i < 30; i++) pipeline.write(record(i));
    hook.state.failing = false;
    await until('all 30 records delivered', () => hook.received.length >= 30);
    await sleep(200);
    assert.deepEqual(hook.received.map((r) => r.details?.['n']), Array.from({ length: 30 }, (_, i) => i), 'each once, in order');
    assert.ok(hook.batches.every((b) => /^[0-9a-z]+-\d+\.\.[0-9a-z]+-\d+$/.test(b)), `batches name their records: ${hook.batches[0]}`);
    assert.ok(hook.batches.length >= 5, 'in batches of at most 7');
    const status = pipeline.reports()[0]!.status!;
    assert.equal(status.up, true);
    assert.equal(status.pendingRecords, 0);
    assert.equal(pipeline.reports()[0]!.counts.delivered, 30);
    assert.ok(lines.some((l) => String(l['msg']).includes('is down')) && lines.some((l) => String(l['msg']).includes('is back')), 'down and back are logged once each');
  } finally {
    await pipeline.close();
    await hook.close();
  }
});

test('webhook sink: records spooled before a restart are delivered after it', async () => {
  const hook = await receiver();
  const dir = freshDir();
  const sinks = [{ type: 'webhook', url: hook.url, headers: { authorization: 'Bearer hook-secret' }, batch: { maxWait: '10ms' }, spool: { dir: 'spool' } }];
  let pipeline = openAuditPipeline(auditConfig(dir, sinks), { logger: pino({ level: 'silent' }), minBackoffMs: 20, maxBackoffMs: 50 });
  for (let i = 0; i < 5; i++) pipeline.write(record(i));
  await until('an attempt', () => hook.attempts() >= 1);
  await pipeline.close();
  hook.state.failing = false;
  pipeline = openAuditPipeline(auditConfig(dir, sinks), { logger: pino({ level: 'silent' }), minBackoffMs: 20, maxBackoffMs: 50 });
  try {
    pipeline.write(record(5));
    await until('six records', () => hook.received.length >= 6);
    assert.deepEqual(hook.received.map((r) => r.details?.['n']), [0, 1, 2, 3, 4, 5]);
  } finally {
    await pipeline.close();
    await hook.close();
  }
});

test('onFull block: a full spool refuses traffic with the reason, and accepts it again once the sink drained it', async () => {
  const hook = await receiver();
  const dir = freshDir();
  const pipeline = openAuditPipeline(auditConfig(dir, [{ type: 'stdout' }, {
    type: 'webhook', name: 'siem', url: hook.url, headers: { authorization: 'Bearer hook-secret' }, batch: { maxWait: '10ms' },
    spool: { dir: 'spool', maxBytes: 8000, onFull: 'block' },
  }]), { logger: pino({ level: 'silent' }), minBackoffMs: 20, maxBackoffMs: 50 });
  try {
    let written = 0;
    while (pipeline.refusal() === undefined && written < 1000) pipeline.write(record(written++));
    const reason = pipeline.refusal();
    assert.match(reason ?? '', /^audit sink siem \(http:\/\/127\.0\.0\.1:\d+\/audit\) cannot keep up: its spool is full \(\d+ of 8000 bytes\) and spool\.onFull is block, so traffic is refused until it drains$/);
    assert.ok(written < 100, `refused after ${written} records of ~300 bytes in 8000 bytes`);
    hook.state.failing = false;
    await until('the spool drained', () => pipeline.refusal() === undefined);
    await until('every accepted record delivered', () => hook.received.length === pipeline.reports()[1]!.counts.accepted);
  } finally {
    await pipeline.close();
    await hook.close();
  }
});

test('onFull drop-oldest: traffic is never refused; dropped records are counted and an error line says so', async () => {
  const hook = await receiver();
  const dir = freshDir();
  const { logger, lines } = memoryLogger();
  const pipeline = openAuditPipeline(auditConfig(dir, [{
    type: 'webhook', name: 'siem', url: hook.url, headers: { authorization: 'Bearer hook-secret' }, batch: { maxWait: '10ms' },
    spool: { dir: 'spool', maxBytes: 8000, onFull: 'drop-oldest' },
  }]), { logger, minBackoffMs: 20, maxBackoffMs: 50 });
  try {
    for (let i = 0; i < 200; i++) {
      pipeline.write(record(i));
      assert.equal(pipeline.refusal(), undefined);
    }
    const counts = pipeline.reports()[0]!.counts;
    assert.ok(counts.dropped > 100, `${counts.dropped} dropped`);
    assert.equal(counts.accepted, 200);
    const alert = lines.find((l) => l['level'] === 50 && String(l['msg']).includes('the oldest records were dropped'));
    assert.ok(alert !== undefined, 'an error line for operators');
    hook.state.failing = false;
    await until('what was kept arrives', () => pipeline.reports()[0]!.status!.pendingRecords === 0);
    const ns = hook.received.map((r) => r.details?.['n'] as number);
    assert.equal(ns.at(-1), 199, 'the newest records are kept');
    assert.deepEqual(ns, [...ns].sort((a, b) => a - b), 'in order');
  } finally {
    await pipeline.close();
    await hook.close();
  }
});

test('the approval a request went through (details.approval.id) is stamped as the record\'s own approval field', () => {
  const stamp = createStamper('t');
  const record = stamp({ time: '2026-11-23T00:00:00Z', path: 'kafka', event: 'kafka.request.denied', details: { approval: { id: 'apr-42', state: 'pending' } } });
  assert.equal(record.approval, 'apr-42');
  assert.equal(stamp({ time: '2026-11-23T00:00:00Z', path: 'http', event: 'http.authz.allow' }).approval, undefined);
});
