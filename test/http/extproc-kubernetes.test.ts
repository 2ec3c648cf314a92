import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { createExtProcHandler, type ExtProcRequestLike, type ExtProcResponseLike } from '../../src/http/extproc.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import { createHttpClassifier } from '../../src/http/action.ts';
import type { AuditRecord } from '../../src/audit/record.ts';

class FakeCall extends EventEmitter {
  written: ExtProcResponseLike[] = [];
  ended = false;
  write(msg: ExtProcResponseLike) { this.written.push(msg); return true; }
  end() { this.ended = true; }
  destroy() {}
}

const config = configSchema.parse({
  http: { kubernetes: { hosts: 'kube.test' } },
  rules: [
    { name: 'no-privileged-pods', match: { kubernetes: { verb: ['create', 'update', 'patch'], resource: 'pods' } , body: { '$..securityContext.privileged': { equals: true } } }, effect: 'deny', description: 'privileged containers are not allowed' },
    { name: 'host-path-watch', match: { kubernetes: { resource: 'pods' }, body: { '$..hostPath': { exists: true } } }, effect: 'deny', shadow: true },
    { name: 'everything', match: {}, effect: 'allow' },
    { name: 'secrets-masked', match: { kubernetes: { resource: 'secrets' } }, mask: { fields: { '$.data.*': 'redact', '$.items[*].data.*': 'redact', '$.object.data.*': 'redact' } } },
  ],
});
const policy = compilePolicy(config.rules);
const classify = createHttpClassifier(config.http.kubernetes);

function stream(maxBufferBytes = 1 << 20) {
  const call = new FakeCall();
  const audit: AuditRecord[] = [];
  createExtProcHandler({
    logger: pino({ level: 'silent' }), policy: () => policy, maskContext: () => ({}), maxBufferBytes,
    classify: () => classify, audit: { write: (r) => audit.push(r) },
  })(call);
  return { call, audit };
}

const FULL_DUPLEX = { request_body_mode: 'FULL_DUPLEX_STREAMED', response_body_mode: 'FULL_DUPLEX_STREAMED' } as const;
const metadata = {
  filter_metadata: { 'envoy.filters.http.ext_authz': { fields: { subject: { stringValue: 'sam' }, groups: { listValue: { values: [{ stringValue: 'sre' }] } } } } },
};
const headers = (pairs: Record<string, string>) => Object.entries(pairs).map(([key, v]) => ({ key, raw_value: Buffer.from(v) }));
const requestHeaders = (method: string, path: string, extra: Record<string, string> = {}, endOfStream = false, protocol: Record<string, string> = FULL_DUPLEX): ExtProcRequestLike => ({
  request: 'request_headers', protocol_config: protocol as never, metadata_context: metadata,
  request_headers: { headers: { headers: headers({ ':method': method, ':path': path, ':authority': 'kube.test', ...extra }) }, end_of_stream: endOfStream },
});
const requestChunk = (text: string, eos = false): ExtProcRequestLike => ({ request: 'request_body', request_body: { body: Buffer.from(text), end_of_stream: eos } });
const released = (call: FakeCall) => Buffer.concat(call.written
  .map((w) => (w as any).request_body?.response?.body_mutation?.streamed_response?.body as Buffer | undefined)
  .filter((b): b is Buffer => b !== undefined)).toString();
const immediate = (call: FakeCall) => call.written.map((w) => (w as any).immediate_response).find((r) => r !== undefined);

const pod = (securityContext: object, volumes: object[] = []) => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web' }, spec: { containers: [{ name: 'web', image: 'nginx', securityContext }], volumes } });

test('a privileged Pod spec is refused with a Kubernetes Status naming the rule and the field; nothing is released', () => {
  const { call, audit } = stream();
  call.emit('data', requestHeaders('POST', '/api/v1/namespaces/demo/pods', { 'content-type': 'application/json' }));
  const body = pod({ privileged: true });
  call.emit('data', requestChunk(body.slice(0, 30)));
  assert.equal(released(call), '', 'held until the whole body is read');
  call.emit('data', requestChunk(body.slice(30), true));
  const reply = immediate(call);
  assert.equal(reply.status.code, 403);
  const status = JSON.parse(reply.body.toString());
  assert.equal(status.kind, 'Status');
  assert.equal(status.reason, 'Forbidden');
  assert.match(status.message, /^pods is forbidden: User "sam" cannot create resource "pods" in API group "" in the namespace "demo": privileged containers are not allowed: field \$\.\.securityContext\.privileged \(tollgate rule no-privileged-pods\)$/);
  assert.equal(released(call), '');
  assert.equal(audit[0]?.event, 'kubernetes.body.deny');
  assert.equal(audit[0]?.rule, 'no-privileged-pods');
  assert.equal(call.ended, true);
});

test('an innocent Pod spec is released whole, byte for byte; a shadow rule that matches is only audited', () => {
  const { call, audit } = stream();
  call.emit('data', requestHeaders('POST', '/api/v1/namespaces/demo/pods', { 'content-type': 'application/json' }));
  const body = pod({ runAsNonRoot: true }, [{ name: 'h', hostPath: { path: '/var/log' } }]);
  call.emit('data', requestChunk(body.slice(0, 10)));
  call.emit('data', requestChunk(body.slice(10), true));
  assert.equal(immediate(call), undefined);
  assert.equal(released(call), body);
  assert.equal(audit[0]?.event, 'kubernetes.body.shadow');
  assert.deepEqual((audit[0]?.details as any).shadow, [{ rule: 'host-path-watch', field: '$..hostPath' }]);
});

test('a JSON Patch setting privileged is read as the value it writes', () => {
  const { call } = stream();
  call.emit('data', requestHeaders('PATCH', '/api/v1/namespaces/demo/pods/web', { 'content-type': 'application/json-patch+json' }));
  call.emit('data', requestChunk(JSON.stringify([{ op: 'add', path: '/spec/containers/0/securityContext', value: { privileged: true } }]), true));
  assert.equal(immediate(call)?.status.code, 403);
});

test('a body a rule must read but cannot is refused (fail closed), and so is one over the buffer bound', () => {
  const { call } = stream();
  call.emit('data', requestHeaders('POST', '/api/v1/namespaces/demo/pods', { 'content-type': 'application/vnd.kubernetes.protobuf' }));
  call.emit('data', requestChunk('k8s\u0000\u0001', true));
  assert.equal(immediate(call)?.status.code, 403);
  assert.match(JSON.parse(immediate(call).body.toString()).message, /cannot be inspected/);

  const small = stream(16).call;
  small.emit('data', requestHeaders('POST', '/api/v1/namespaces/demo/pods', { 'content-type': 'application/json' }));
  small.emit('data', requestChunk(pod({})));
  assert.equal(immediate(small)?.status.code, 413);
  assert.equal(JSON.parse(immediate(small).body.toString()).reason, 'RequestEntityTooLarge');
});

test('request bodies no rule reads stream through chunk by chunk', () => {
  const { call } = stream();
  call.emit('data', requestHeaders('POST', '/api/v1/namespaces/demo/configmaps', { 'content-type': 'application/json' }));
  call.emit('data', requestChunk('{"data":'));
  assert.equal(released(call), '{"data":');
  call.emit('data', requestChunk('{}}', true));
  assert.equal(released(call), '{"data":{}}');
});

test('body rules without a streamed request body fail closed at the headers', () => {
  const { call } = stream();
  call.emit('data', requestHeaders('POST', '/api/v1/namespaces/demo/pods', { 'content-type': 'application/json' }, false, { request_body_mode: 'NONE', response_body_mode: 'FULL_DUPLEX_STREAMED' }));
  assert.equal(immediate(call)?.status.code, 403);
});

test('a bodiless request is not held for body rules', () => {
  const { call } = stream();
  call.emit('data', requestHeaders('DELETE', '/api/v1/namespaces/demo/pods/web', {}, true));
  assert.deepEqual(call.written[0], { request_headers: { response: {} } });
});

test('when a masking rule applies, protobuf and Table requests are asked as JSON, and an opaque answer is refused', () => {
  const { call } = stream();
  call.emit('data', requestHeaders('GET', '/api/v1/namespaces/demo/secrets', { accept: 'application/vnd.kubernetes.protobuf, application/json' }, true));
  const mutation = (call.written[0] as any).request_headers.response.header_mutation;
  assert.deepEqual(mutation.remove_headers, ['accept-encoding']);
  assert.equal(mutation.set_headers[0].header.key, 'accept');
  assert.equal(mutation.set_headers[0].header.raw_value.toString(), 'application/json');
  call.emit('data', { request: 'response_headers', response_headers: { headers: { headers: headers({ ':status': '200', 'content-type': 'application/vnd.kubernetes.protobuf' }) } } });
  const reply = immediate(call);
  assert.equal(reply.status.code, 502);
  assert.equal(JSON.parse(reply.body.toString()).kind, 'Status');

  const table = stream().call;
  table.emit('data', requestHeaders('GET', '/api/v1/namespaces/demo/secrets', { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' }, true));
  assert.equal((table.written[0] as any).request_headers.response.header_mutation.set_headers[0].header.raw_value.toString(), 'application/json');

  const cbor = stream().call;
  cbor.emit('data', requestHeaders('GET', '/api/v1/namespaces/demo/secrets', { accept: 'application/cbor' }, true));
  assert.equal((cbor.written[0] as any).request_headers.response.header_mutation.set_headers[0].header.raw_value.toString(), 'application/json');

  const plain = stream().call;
  plain.emit('data', requestHeaders('GET', '/api/v1/namespaces/demo/secrets', { accept: 'application/json' }, true));
  assert.equal((plain.written[0] as any).request_headers.response.header_mutation.set_headers, undefined, 'JSON already: left alone');
});

test('a watch answered as plain application/json is masked event by event as each object completes', () => {
  const { call } = stream();
  call.emit('data', requestHeaders('GET', '/api/v1/namespaces/demo/secrets?watch=true', { accept: 'application/json' }, true));
  call.emit('data', { request: 'response_headers', response_headers: { headers: { headers: headers({ ':status': '200', 'content-type': 'application/json' }) } } });
  const out = () => Buffer.concat(call.written
    .map((w) => (w as any).response_body?.response?.body_mutation?.streamed_response?.body as Buffer | undefined)
    .filter((b): b is Buffer => b !== undefined)).toString();
  const event = (name: string, value: string) => JSON.stringify({ type: 'ADDED', object: { kind: 'Secret', metadata: { name }, data: { password: value } } });
  call.emit('data', { request: 'response_body', response_body: { body: Buffer.from(event('a', 'czNjcjN0') + event('b', 'b3RoZXI=').slice(0, 40)), end_of_stream: false } });
  assert.equal(JSON.parse(out()).object.data.password, '[REDACTED]', 'the first event went out at once, masked');
  assert.doesNotMatch(out(), /b3RoZXI/);
});
