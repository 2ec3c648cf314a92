/**
 * `tollgate serve` and `tollgate validate` as an operator runs them: exit codes and messages, a Unix socket
 * listener, health, and the SIGTERM drain (open streams may finish; past the deadline they are cut; exit 0).
 */
import YAML from 'yaml';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { freePorts } from '../../scripts/lib/ports.ts';
import { spawnManaged, runCommand, type ManagedProcess } from '../../scripts/lib/process.ts';
import { healthService, networkExternalProcessorService } from '../../src/grpc/protos.ts';
import { requestFrame } from '../kafka/frames.ts';

const CLI = path.join(REPO_ROOT, 'src', 'cli.ts');
const tollgate = (...args: string[]) => runCommand(process.execPath, [CLI, ...args], { timeoutMs: 30_000 });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-serve-'));

test('validate: 0 for the quickstart config, 2 with file, line and path for a bad one, 2 without --config', async () => {
  const ok = await tollgate('validate', '--config', path.join(REPO_ROOT, 'examples', 'quickstart.yaml'), '--no-secrets');
  assert.equal(ok.code, 0, ok.stderr);
  const rules = (YAML.parse(fs.readFileSync(path.join(REPO_ROOT, 'examples', 'quickstart.yaml'), 'utf8')) as { rules: unknown[] }).rules.length;
  assert.match(ok.stdout, new RegExp(`quickstart\\.yaml: valid \\(${rules} rules, 1 OIDC issuers\\)`));

  const dir = tmp();
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'server:\n  grpc:\n    address: nowhere\nrules:\n  - { name: x, effect: maybe }\n');
  const res = await tollgate('validate', '--config', bad);
  assert.equal(res.code, 2);
  assert.match(res.stderr, new RegExp(`${bad.replace(/[.]/g, '\\.')}:3:14: server\\.grpc\\.address: expected "host:port"`));
  assert.match(res.stderr, /:5:\d+: rules\[0\]\.effect: .*expected one of "allow"\|"deny"\|"approve", got "maybe"/);

  const usage = await tollgate('validate');
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--config FILE is required/);
});

test('validate checks that the secrets a config names can be read', async () => {
  const dir = tmp();
  const file = path.join(dir, 'secrets.yaml');
  fs.writeFileSync(file, `http:\n  upstreamCredentials:\n    - { name: api, secret: { file: ${path.join(dir, 'missing-token')} } }\n`);
  const res = await tollgate('validate', '--config', file);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /upstream credential "api": cannot read secret file .*missing-token: ENOENT/);
  assert.equal((await tollgate('validate', '--config', file, '--no-secrets')).code, 0);
});

test('serve refuses a bad config with exit 2 before listening', async () => {
  const dir = tmp();
  const file = path.join(dir, 'bad.yaml');
  fs.writeFileSync(file, 'kafka: { maxFrameBytes: -1 }\n');
  const res = await tollgate('serve', '--config', file);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /kafka\.maxFrameBytes/);
});

interface Served { proc: ManagedProcess; socket: string; admin: string; dir: string }

async function serve(drainTimeout: string): Promise<Served> {
  const dir = tmp();
  const socket = path.join(dir, 'tollgate.sock');
  const [adminPort] = await freePorts(1);
  const config = path.join(dir, 'tollgate.yaml');
  fs.writeFileSync(config, `server:\n  grpc: { address: "unix:${socket}" }\n  admin: { address: "127.0.0.1:${adminPort}" }\n  drainTimeout: ${drainTimeout}\n`);
  const proc = await spawnManaged({ name: 'tollgate', command: process.execPath, args: [CLI, 'serve', '--config', config], logFile: path.join(dir, 'tollgate.log') });
  await proc.waitForLog(/tollgate listening/, 20_000);
  return { proc, socket, admin: `http://127.0.0.1:${adminPort}`, dir };
}

const NetworkClient = grpc.makeGenericClientConstructor(networkExternalProcessorService, 'NetworkExternalProcessor');
const HealthClient = grpc.makeGenericClientConstructor(healthService, 'Health');

function openStream(socket: string) {
  const client = new NetworkClient(`unix:${socket}`, grpc.credentials.createInsecure());
  const call = client['Process']!() as grpc.ClientDuplexStream<unknown, { read_data: { data: Buffer } | null }>;
  const replies: Array<{ read_data: { data: Buffer } | null }> = [];
  const waiters: Array<() => void> = [];
  call.on('data', (r) => { replies.push(r); waiters.shift()?.(); });
  const status = new Promise<grpc.StatusObject | Error>((resolve) => {
    call.on('status', resolve);
    call.on('error', resolve);
  });
  const reply = () => new Promise<{ read_data: { data: Buffer } | null }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no reply within 10 s')), 10_000);
    const take = () => { clearTimeout(timer); resolve(replies.shift()!); };
    if (replies.length > 0) take(); else waiters.push(take);
  });
  return { client, call, reply, status };
}

const frame = (correlationId: number) => requestFrame({ apiKey: 18, apiVersion: 0, correlationId });

test('serve on a Unix socket: health SERVING, /healthz, /readyz and /metrics on the admin port', async () => {
  const s = await serve('5s');
  try {
    const health = new HealthClient(`unix:${s.socket}`, grpc.credentials.createInsecure());
    const check = (service: string) => new Promise<unknown>((resolve) => {
      health['Check']!({ service }, (err: grpc.ServiceError | null, res: unknown) => resolve(err ? err.code : res));
    });
    assert.deepEqual(await check(''), { status: 'SERVING' });
    assert.deepEqual(await check('envoy.service.network_ext_proc.v3.NetworkExternalProcessor'), { status: 'SERVING' });
    assert.equal(await check('no.such.Service'), grpc.status.NOT_FOUND);
    health.close();

    assert.equal((await fetch(`${s.admin}/healthz`)).status, 200);
    const ready = await fetch(`${s.admin}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(((await ready.json()) as { checks: Array<{ name: string }> }).checks.map((c) => c.name), ['grpc']);
    const metrics = await (await fetch(`${s.admin}/metrics`)).text();
    assert.match(metrics, /# TYPE tollgate_decisions_total counter/);
    assert.match(metrics, /tollgate_process_resident_memory_bytes/);
  } finally {
    await s.proc.stop();
  }
});

test('SIGTERM drains: not ready, no new streams, the open stream keeps working and ends cleanly, exit 0', async () => {
  const s = await serve('60s');
  const stream = openStream(s.socket);
  stream.call.write({ read_data: { data: frame(1), end_of_stream: false } });
  assert.ok((await stream.reply()).read_data?.data.equals(frame(1)));

  s.proc.signal('SIGTERM');
  await s.proc.waitForLog(/draining/, 10_000);
  const ready = await fetch(`${s.admin}/readyz`);
  assert.equal(ready.status, 503);
  assert.deepEqual(((await ready.json()) as { checks: Array<{ name: string; ok: boolean }> }).checks[0], { name: 'drain', ok: false, detail: 'shutting down' });

  const late = openStream(s.socket);
  late.call.write({ read_data: { data: frame(9), end_of_stream: false } });
  const lateStatus = await late.status;
  assert.notEqual((lateStatus as grpc.StatusObject).code, grpc.status.OK, 'a stream opened while draining is refused');
  late.client.close();

  // The stream opened before SIGTERM still gets answers until its connection ends.
  stream.call.write({ read_data: { data: frame(2), end_of_stream: false } });
  assert.ok((await stream.reply()).read_data?.data.equals(frame(2)));
  stream.call.end();
  await stream.status;
  stream.client.close();

  const exit = await s.proc.exited;
  assert.deepEqual(exit, { code: 0, signal: null });
  const log = fs.readFileSync(s.proc.logFile, 'utf8');
  assert.match(log, /"forced":false.*"msg":"drained"/);
});

test('past the drain deadline the streams still open are cut, and the process still exits 0', async () => {
  const s = await serve('1s');
  const stream = openStream(s.socket);
  stream.call.write({ read_data: { data: frame(1), end_of_stream: false } });
  await stream.reply();
  s.proc.signal('SIGTERM');
  const status = await stream.status;
  assert.notEqual((status as grpc.StatusObject).code, grpc.status.OK);
  stream.client.close();
  assert.deepEqual(await s.proc.exited, { code: 0, signal: null });
  assert.match(fs.readFileSync(s.proc.logFile, 'utf8'), /"forced":true.*"msg":"drained"/);
});

