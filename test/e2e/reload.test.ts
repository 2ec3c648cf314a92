/**
 * Config hot reload of a real `tollgate serve` process: an edited file changes the next decision, a broken one is
 * refused (error with file:line:col, failure counted, the running config kept), SIGHUP reloads too and does not end
 * the process, and a Kafka connection (network ext_proc stream) opened before the reloads keeps being served.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { freePorts } from '../../scripts/lib/ports.ts';
import { spawnManaged, type ManagedProcess } from '../../scripts/lib/process.ts';
import { configHash } from '../../src/config/load.ts';
import { startDevIssuer, type DevIssuer } from '../../src/dev/oidc-issuer.ts';
import { authorizationService, networkExternalProcessorService } from '../../src/grpc/protos.ts';
import { requestFrame } from '../kafka/frames.ts';

const CLI = path.join(REPO_ROOT, 'src', 'cli.ts');

let issuer: DevIssuer;
let dir: string;
let socket: string;
let admin: string;
let configFile: string;
let proc: ManagedProcess;

function configText(rules: string): string {
  return [
    'server:',
    `  grpc: { address: "unix:${socket}" }`,
    `  admin: { address: "${admin.replace('http://', '')}" }`,
    '  drainTimeout: 2s',
    'identity:',
    `  oidc: [{ issuer: "${issuer.issuer}", audiences: [tollgate] }]`,
    'rules:',
    rules,
  ].join('\n') + '\n';
}

const OPEN = '  - { name: reports-for-analysts, match: { http: { path: "/reports*" }, group: analysts }, effect: allow }';
const CLOSED = '  - { name: reports-closed-for-audit, match: { http: { path: "/reports*" } }, effect: deny }';

/** Replaces the file the way editors save: write beside it, rename over it. */
function saveAsEditorDoes(text: string): void {
  const tmp = `${configFile}.swp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, configFile);
}

const logLines = (pattern: RegExp) => fs.readFileSync(proc.logFile, 'utf8').split('\n').filter((l) => pattern.test(l));

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n--- log ---\n${fs.readFileSync(proc.logFile, 'utf8').slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const AuthClient = grpc.makeGenericClientConstructor(authorizationService, 'Authorization');
const NetworkClient = grpc.makeGenericClientConstructor(networkExternalProcessorService, 'NetworkExternalProcessor');

async function check(token: string): Promise<{ code: number; body: string }> {
  const client = new AuthClient(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    const res = await new Promise<{ status: { code: number }; denied_response?: { body: string } }>((resolve, reject) => {
      client['Check']!({
        attributes: { request: { http: { method: 'GET', path: '/reports/q3', host: 'reports.example', headers: { authorization: `Bearer ${token}` } } } },
      }, (err: grpc.ServiceError | null, r: { status: { code: number }; denied_response?: { body: string } }) => (err ? reject(err) : resolve(r)));
    });
    return { code: res.status.code, body: res.denied_response?.body ?? '' };
  } finally {
    client.close();
  }
}

async function metric(name: string): Promise<string[]> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name));
}

before(async () => {
  issuer = await startDevIssuer({ audience: 'tollgate', clients: [] });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-reload-'));
  socket = path.join(dir, 'tollgate.sock');
  const [adminPort] = await freePorts(1);
  admin = `http://127.0.0.1:${adminPort}`;
  configFile = path.join(dir, 'tollgate.yaml');
  fs.writeFileSync(configFile, configText(OPEN));
  proc = await spawnManaged({ name: 'tollgate', command: process.execPath, args: [CLI, 'serve', '--config', configFile], logFile: path.join(dir, 'tollgate.log') });
  await proc.waitForLog(/tollgate listening/, 30_000);
  await until('readiness (the issuer\'s keys loaded)', async () => (await fetch(`${admin}/readyz`)).status === 200);
});

after(async () => {
  await proc?.stop();
  await issuer?.close();
});

test('reload: an edited file changes the next decision; a broken one is refused and the old decision stays; SIGHUP reloads; an open Kafka stream is served throughout', async () => {
  const token = await issuer.mint({ sub: 'ana', groups: ['analysts'] });
  assert.equal((await check(token)).code, grpc.status.OK, 'allowed by the first config');
  assert.deepEqual(await metric(`tollgate_config_info{hash="${configHash(configText(OPEN))}"}`), [`tollgate_config_info{hash="${configHash(configText(OPEN))}"} 1`]);

  // A Kafka connection opened now: its stream must outlive every reload below.
  const network = new NetworkClient(`unix:${socket}`, grpc.credentials.createInsecure());
  const stream = network['Process']!() as grpc.ClientDuplexStream<unknown, { read_data: { data: Buffer } | null }>;
  const replies: Buffer[] = [];
  stream.on('data', (r: { read_data: { data: Buffer } | null }) => { if (r.read_data) replies.push(r.read_data.data); });
  const frame = (id: number) => requestFrame({ apiKey: 18, apiVersion: 0, correlationId: id });
  stream.write({ read_data: { data: frame(1), end_of_stream: false } });
  await until('the first Kafka frame back', () => replies.length === 1);

  // 1. An editor saves a new rule set.
  saveAsEditorDoes(configText(CLOSED));
  await until('the reload of the edited file', () => logLines(/"msg":"config reloaded"/).length === 1);
  const denied = await check(token);
  assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
  assert.equal(JSON.parse(denied.body).rule, 'reports-closed-for-audit');
  assert.deepEqual(await metric('tollgate_config_reloads_total'), ['tollgate_config_reloads_total{result="success"} 1', 'tollgate_config_reloads_total{result="failure"} 0']);
  assert.deepEqual(await metric('tollgate_config_info{'), [`tollgate_config_info{hash="${configHash(configText(CLOSED))}"} 1`]);
  stream.write({ read_data: { data: frame(2), end_of_stream: false } });
  await until('a Kafka frame after the reload', () => replies.length === 2);

  // 2. A broken file: refused, named by file, line and column; the running config stays.
  const broken = configText(CLOSED.replace('effect: deny', 'effect: dny'));
  fs.writeFileSync(configFile, broken);
  const [refusal] = await until('the refusal', () => { const l = logLines(/config reload refused/); return l.length > 0 ? l : undefined; });
  const line = broken.split('\n').findIndex((l) => l.includes('effect: dny')) + 1;
  assert.match(refusal!, new RegExp(`${configFile.replace(/[.]/g, '\\.')}:${line}:\\d+: rules\\[0\\]\\.effect: .*got \\\\"dny\\\\"`));
  assert.match(refusal!, /"level":50/, 'logged as an error');
  assert.equal((await check(token)).code, grpc.status.PERMISSION_DENIED, 'the last good config still decides');
  assert.deepEqual(await metric('tollgate_config_reloads_total'), ['tollgate_config_reloads_total{result="success"} 1', 'tollgate_config_reloads_total{result="failure"} 1']);
  assert.deepEqual(await metric('tollgate_config_info{'), [`tollgate_config_info{hash="${configHash(configText(CLOSED))}"} 1`]);

  // 3. Fixed again, then SIGHUP: reloads (even unchanged) and the process lives on.
  saveAsEditorDoes(configText(OPEN));
  await until('the reload of the fixed file', () => logLines(/"msg":"config reloaded"/).length === 2);
  assert.equal((await check(token)).code, grpc.status.OK);
  proc.signal('SIGHUP');
  await until('the SIGHUP reload', () => logLines(/"trigger":"SIGHUP".*"msg":"config reloaded"/).length === 1);
  assert.equal(proc.exitInfo, undefined, 'SIGHUP does not end the process');
  assert.deepEqual(await metric('tollgate_config_reloads_total'), ['tollgate_config_reloads_total{result="success"} 3', 'tollgate_config_reloads_total{result="failure"} 1']);

  stream.write({ read_data: { data: frame(3), end_of_stream: false } });
  await until('a Kafka frame after three reloads', () => replies.length === 3);
  assert.deepEqual(replies, [frame(1), frame(2), frame(3)], 'the stream passed its frames through unchanged');
  stream.end();
  network.close();
});
