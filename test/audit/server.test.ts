/**
 * The audit pipeline as `startServer` runs it: sinks from the config, their state in /readyz and /metrics, a
 * reload that changes the `audit` section keeps them (and says a restart is needed), and a real ext_authz Check over
 * gRPC refused with 503 while a `block` spool is full. Drain closes the sinks (the file's lock goes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { startServer } from '../../src/server.ts';
import { authorizationService } from '../../src/grpc/protos.ts';
import type { CheckResponseLike } from '../../src/http/authz.ts';
import { verifyChain } from '../../src/audit/chain.ts';

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

test('sinks from the config: readiness and metrics per sink, a block spool that fills refuses Checks with 503, a reload keeps the sinks', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-server-audit-'));
  let failing = true;
  const received: unknown[] = [];
  const hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      if (failing) return void res.writeHead(503).end();
      received.push(...(JSON.parse(body) as { records: unknown[] }).records);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/audit`;
  const text = (audit: string) => `
server: { grpc: { address: "127.0.0.1:0" }, admin: { address: "127.0.0.1:0" } }
identity: { apiKeys: [{ name: ci, sha256: "${'a'.repeat(64)}" }] }
${audit}
rules: [{ name: open, effect: allow }]
`;
  const auditSection = `audit:
  sinks:
    - { type: file, path: audit.jsonl }
    - { type: webhook, name: siem, url: "${hookUrl}", batch: { maxWait: 10ms }, spool: { dir: siem-spool, maxBytes: 6000, onFull: block } }`;
  const file = path.join(dir, 'tollgate.yaml');
  fs.writeFileSync(file, text(auditSection));
  const server = await startServer(parseConfig(fs.readFileSync(file, 'utf8'), file), { logger: pino({ level: 'silent' }) });
  const admin = `http://${server.adminAddress.host}:${server.adminAddress.port}`;
  const client = new (grpc.makeGenericClientConstructor({ Check: authorizationService.Check }, 'Authorization'))(server.grpcAddress, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Check(req: unknown, cb: (err: grpc.ServiceError | null, res: CheckResponseLike) => void): void;
  };
  const check = () => new Promise<CheckResponseLike>((resolve, reject) => client.Check({
    attributes: {
      source: { address: { socket_address: { address: '127.0.0.1', port_value: 4000 } } },
      request: { http: { method: 'GET', path: '/x', host: 'api.test', headers: { ':path': '/x', 'x-api-key': 'not-a-known-key', 'x-request-id': 'r-1' } } },
    },
  }, (err, res) => (err ? reject(err) : resolve(res))));
  // Over gRPC, the HTTP status is Envoy's enum by name.
  const status = (r: CheckResponseLike) => r.denied_response?.status.code as unknown as string | undefined;
  try {
    // Every Check writes a record; the webhook refuses them, so the siem spool fills.
    let res = await check();
    assert.equal(status(res), 'Unauthorized', 'an unknown API key, as policy says');
    const readyz = async () => (await fetch(`${admin}/readyz`)).json() as Promise<{ ready: boolean; checks: Array<{ name: string; ok: boolean; detail: string }> }>;
    await until('the siem sink is seen down', async () => (await readyz()).checks.find((c) => c.name === 'audit siem')?.detail.startsWith('down since') === true);
    assert.equal((await readyz()).ready, true, 'down is not unready');
    for (let i = 0; i < 100 && status(res) !== 'ServiceUnavailable'; i++) res = await check();
    assert.equal(status(res), 'ServiceUnavailable', 'the full spool refuses traffic (503)');
    assert.match(JSON.parse(res.denied_response!.body).reason, /^audit sink siem \(.*\/audit\) cannot keep up: its spool is full/);
    const blocked = await readyz();
    assert.equal(blocked.ready, false);
    assert.match(blocked.checks.find((c) => c.name === 'audit siem')!.detail, /^spool full, traffic refused/);
    assert.equal(blocked.checks.find((c) => c.name === 'audit file')!.ok, true);
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    assert.match(metrics, /tollgate_audit_sink_up\{sink="siem"\} 0/);
    assert.match(metrics, /tollgate_audit_sink_up\{sink="file"\} 1/);
    assert.match(metrics, /tollgate_audit_records_total\{sink="siem",result="accepted"\} \d+/);
    assert.match(metrics, /tollgate_audit_spool_bytes\{sink="siem"\} \d{4}/);

    // A reload that changes the audit section keeps the running sinks and says so.
    fs.writeFileSync(file, text('audit: { sinks: [{ type: stdout }] }'));
    assert.deepEqual(server.reload(parseConfig(fs.readFileSync(file, 'utf8'), file), 'h2').restartNeeded, ['audit']);
    assert.match(await (await fetch(`${admin}/metrics`)).text(), /tollgate_audit_sink_up\{sink="siem"\}/, 'the sinks still run');

    failing = false;
    await until('the siem spool drained and traffic passes again', async () => status(await check()) === 'Unauthorized');
    assert.equal((await readyz()).ready, true);
  } finally {
    client.close();
    await server.drain();
    await new Promise<void>((resolve) => hook.close(() => resolve()));
  }
  assert.equal(fs.existsSync(path.join(dir, 'audit.jsonl.lock')), false, 'drain closed the file sink');
  const chain = await verifyChain(path.join(dir, 'audit.jsonl'));
  assert.ok(chain.ok && chain.records > 5, 'the file holds every Check, refused ones included');
  assert.ok(received.length > 0);
});
