/**
 * How a full audit spool under `onFull: block` reaches traffic, path by path: HTTP requests are refused with 503
 * and the reason, an mTLS Kafka connection is refused at ext_authz, and a Kafka connection is closed before its
 * next request goes on. Plus the sessions adapters put on records.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createAuthzHandler, type CheckRequestLike } from '../../src/http/authz.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import { createNetworkExtProcHandler, type KafkaConnectionSettings } from '../../src/kafka/service.ts';
import { BrokerRoutes } from '../../src/kafka/connection.ts';
import type { AuditRecord, AuditSink } from '../../src/audit/record.ts';
import type { Principal } from '../../src/core/principal.ts';
import { connectionAttributes, FakeCall } from '../kafka/fakes.ts';
import { authenticate, fakeAuthenticate, fakeDecide, goodToken, handshake, heartbeat, settle } from '../kafka/requests.ts';

const REASON = 'audit sink siem (https://siem.test/audit) cannot keep up: its spool is full (7400 of 8000 bytes) and spool.onFull is block, so traffic is refused until it drains';

/** An audit sink whose refusal the test turns on and off. */
class SwitchableAudit implements AuditSink {
  readonly records: AuditRecord[] = [];
  refusing = false;
  write(record: AuditRecord): void { this.records.push(record); }
  refusal(): string | undefined { return this.refusing ? REASON : undefined; }
}

const alice: Principal = { subject: 'alice', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };

function authz(audit: AuditSink) {
  return createAuthzHandler({
    authenticate: async () => alice,
    policy: () => compilePolicy(configSchema.parse({ rules: [{ name: 'api-open', match: { http: { path: '/*' } }, effect: 'allow' }] }).rules),
    credentials: () => [],
    audit,
    logger: pino({ level: 'silent' }),
  });
}

const httpCheck = (requestId?: string): CheckRequestLike => ({
  attributes: {
    source: { address: { socket_address: { address: '127.0.0.7', port_value: 5555 } } },
    request: { http: { id: '1234', method: 'GET', path: '/api/customers', host: 'api.test', headers: { ':path': '/api/customers', authorization: 'Bearer x', ...(requestId !== undefined && { 'x-request-id': requestId }) } } },
  },
});

test('HTTP: while an audit sink refuses, requests get 503 with the reason, and the refusal is audited; then they pass again', async () => {
  const audit = new SwitchableAudit();
  const check = authz(audit);
  audit.refusing = true;
  const refused = await check(httpCheck('req-1'));
  assert.equal(refused.denied_response?.status.code, 503);
  assert.deepEqual(JSON.parse(refused.denied_response!.body), { error: 'audit_unavailable', reason: REASON, rule: null });
  assert.notEqual(refused.status.code, 0, 'Envoy sees a denial');
  assert.equal(audit.records.at(-1)?.event, 'http.authz.audit_unavailable');
  assert.equal(audit.records.at(-1)?.reason, REASON);
  audit.refusing = false;
  const allowed = await check(httpCheck('req-2'));
  assert.equal(allowed.status.code, 0);
});

test('HTTP: a request\'s records carry its x-request-id as their session, and the decision its latency', async () => {
  const audit = new SwitchableAudit();
  await authz(audit)(httpCheck('5f0c-request'));
  const [record] = audit.records;
  assert.equal(record?.session, '5f0c-request');
  assert.equal(typeof record?.latencyMs, 'number');
  await authz(audit)(httpCheck());
  assert.equal(audit.records[1]?.session, undefined, 'no x-request-id: the pipeline derives one from principal and client');
});

test('Kafka mTLS: while an audit sink refuses, the connection is refused at ext_authz with the reason', async () => {
  const audit = new SwitchableAudit();
  audit.refusing = true;
  const res = await authz(audit)({ attributes: { source: { address: { socket_address: { address: '127.0.0.9', port_value: 40123 } }, principal: 'spiffe://mesh.test/ns/shop/sa/w' } } });
  assert.equal(res.status.code, 14);
  assert.equal(res.status.message, REASON);
  assert.equal(audit.records.at(-1)?.event, 'kafka.mtls.audit_unavailable');
});

const settings: KafkaConnectionSettings = {
  maxFrameBytes: 100 * 1024 * 1024, maxInFlight: 1000, authenticate: fakeAuthenticate, decide: fakeDecide,
  maxSessionLifetimeMs: 3_600_000, routes: new BrokerRoutes([]),
};

test('Kafka: while an audit sink refuses, a connection is closed before its next request goes on, with the reason audited', async () => {
  const audit = new SwitchableAudit();
  const handler = createNetworkExtProcHandler({ logger: pino({ level: 'silent' }), audit, settings: () => settings });
  const call = new FakeCall();
  handler(call);
  call.send({ read_data: { data: Buffer.concat([handshake(-100), authenticate(-99, goodToken('alice', Math.floor(Date.now() / 1000) + 600))]), end_of_stream: false }, attributes: connectionAttributes({ 'source.address': '10.1.1.1', 'source.port': 5000, 'connection.id': 7 }) });
  await settle();
  const before = call.written.length;
  const forwarded = call.read(heartbeat(1));
  assert.ok(forwarded[0]?.read_data?.data.length, 'a request goes on while the audit trail takes records');
  audit.refusing = true;
  const replies = call.read(heartbeat(2));
  assert.deepEqual(replies, [{ connection_status: 'CLOSE' }], 'the request is not forwarded; the connection is closed');
  assert.equal(call.ended, true);
  const closed = audit.records.at(-1)!;
  assert.equal(closed.event, 'kafka.connection.audit_unavailable');
  assert.equal(closed.reason, REASON);
  assert.equal(closed.principal?.subject, 'alice');
  assert.ok(call.written.length > before);
});

test('Kafka: every record of one connection carries the same session, and another connection another one', async () => {
  const audit = new SwitchableAudit();
  const handler = createNetworkExtProcHandler({ logger: pino({ level: 'silent' }), audit, settings: () => settings });
  for (const port of [5001, 5002]) {
    const call = new FakeCall();
    handler(call);
    call.send({ read_data: { data: Buffer.concat([handshake(-100), authenticate(-99, goodToken('alice', Math.floor(Date.now() / 1000) + 600))]), end_of_stream: false }, attributes: connectionAttributes({ 'source.address': '10.1.1.1', 'source.port': port }) });
    await settle();
    call.read(heartbeat(1));
  }
  const sessions = audit.records.map((r) => r.session);
  assert.ok(sessions.every((s) => s !== undefined && /^kafka-[0-9a-f]{16}$/.test(s)), sessions.join(','));
  const ports = audit.records.map((r) => r.connection?.['source.port']);
  const byPort = new Map<unknown, Set<unknown>>();
  audit.records.forEach((r, i) => byPort.set(ports[i], (byPort.get(ports[i]) ?? new Set()).add(r.session)));
  assert.equal(byPort.get(5001)?.size, 1);
  assert.equal(byPort.get(5002)?.size, 1);
  assert.notDeepEqual([...byPort.get(5001)!], [...byPort.get(5002)!]);
});
