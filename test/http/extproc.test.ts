import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { createExtProcHandler, type ExtProcRequestLike, type ExtProcResponseLike } from '../../src/http/extproc.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';

class FakeCall extends EventEmitter {
  written: ExtProcResponseLike[] = [];
  ended = false;
  destroyed: Error | undefined;
  write(msg: ExtProcResponseLike) { this.written.push(msg); return true; }
  end() { this.ended = true; }
  destroy(err?: Error) { this.destroyed = err; }
}

const policy = compilePolicy(configSchema.parse({
  rules: [
    { name: 'mask-customers', match: { http: { path: '/api/*' }, group: 'analysts' }, mask: { fields: { '$.customers[*].card.number': 'keep-last-4' }, detectors: ['email'] } },
    { name: 'strict-json', match: { http: { path: '/strict/*' } }, mask: { detectors: ['card'], onUndecodable: 'fail' } },
  ],
}).rules);

function stream(maxBufferBytes = 1 << 20) {
  const call = new FakeCall();
  createExtProcHandler({ logger: pino({ level: 'silent' }), policy: () => policy, maskContext: () => ({}), maxBufferBytes })(call);
  return call;
}

const FULL_DUPLEX = { request_body_mode: 'NONE', response_body_mode: 'FULL_DUPLEX_STREAMED' } as const;
const authzMetadata = (subject: string, ...groups: string[]) => ({
  filter_metadata: {
    'envoy.filters.http.ext_authz': {
      fields: { subject: { stringValue: subject }, groups: { listValue: { values: groups.map((g) => ({ stringValue: g })) } }, issuer: { stringValue: 'https://idp' } },
    },
  },
});
const headers = (pairs: Record<string, string>) => ({ headers: { headers: Object.entries(pairs).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) } });

function requestHeaders(path: string, metadata = authzMetadata('alice', 'analysts')): ExtProcRequestLike {
  return { request: 'request_headers', protocol_config: FULL_DUPLEX, metadata_context: metadata, request_headers: headers({ ':method': 'GET', ':path': path, ':authority': 'edge' }) };
}
const responseHeaders = (contentType: string, extra: Record<string, string> = {}): ExtProcRequestLike =>
  ({ request: 'response_headers', response_headers: headers({ ':status': '200', 'content-type': contentType, ...extra }) });
const chunk = (text: string, eos = false): ExtProcRequestLike => ({ request: 'response_body', response_body: { body: Buffer.from(text), end_of_stream: eos } });
const bodyOut = (call: FakeCall) => Buffer.concat(call.written
  .map((w) => (w as any).response_body?.response?.body_mutation?.streamed_response?.body as Buffer | undefined)
  .filter((b): b is Buffer => b !== undefined)).toString();

test('no masking rule applies: headers continue unchanged and body chunks are echoed as they come', () => {
  const call = stream();
  call.emit('data', requestHeaders('/other'));
  call.emit('data', responseHeaders('application/json'));
  call.emit('data', chunk('{"email":"ada@'));
  call.emit('data', chunk('example.com"}', true));
  assert.deepEqual(call.written.slice(0, 2), [{ request_headers: { response: {} } }, { response_headers: { response: {} } }]);
  assert.equal(bodyOut(call), '{"email":"ada@example.com"}');
});

test('a JSON document is masked whole even when a value is split across chunks', () => {
  const call = stream();
  call.emit('data', requestHeaders('/api/customers'));
  assert.deepEqual(call.written[0], { request_headers: { response: { header_mutation: { remove_headers: ['accept-encoding'] } } } });
  call.emit('data', responseHeaders('application/json', { 'content-length': '120' }));
  const mutation = (call.written[1] as any).response_headers.response.header_mutation;
  assert.deepEqual(mutation.remove_headers, ['content-length']);
  assert.equal(mutation.set_headers[0].header.key, 'x-tollgate-masked');
  assert.equal(mutation.set_headers[0].header.raw_value.toString(), 'mask-customers');
  const doc = JSON.stringify({ customers: [{ email: 'ada@example.com', card: { number: '4111111111111111' } }] });
  call.emit('data', chunk(doc.slice(0, 20)));
  assert.equal(bodyOut(call), '', 'nothing leaves before the document is complete');
  call.emit('data', chunk(doc.slice(20), true));
  assert.deepEqual(JSON.parse(bodyOut(call)), { customers: [{ email: '[REDACTED]', card: { number: '************1111' } }] });
});

test('NDJSON watch streams are masked line by line as lines complete', () => {
  const call = stream();
  call.emit('data', requestHeaders('/api/watch'));
  call.emit('data', responseHeaders('application/json;stream=watch'));
  call.emit('data', chunk('{"type":"ADDED","object":{"email":"a@example.com"}}\n{"type":"MOD'));
  assert.equal(bodyOut(call), '{"type":"ADDED","object":{"email":"[REDACTED]"}}\n');
  call.emit('data', chunk('IFIED","object":{"email":"b@example.com"}}\n', true));
  assert.equal(bodyOut(call).split('\n')[1], '{"type":"MODIFIED","object":{"email":"[REDACTED]"}}');
});

test('a caller the rule does not name, or no caller at all, gets the body unmasked', () => {
  for (const metadata of [authzMetadata('bob', 'payments-admin'), null]) {
    const call = stream();
    call.emit('data', requestHeaders('/api/customers', metadata as never));
    call.emit('data', responseHeaders('application/json'));
    call.emit('data', chunk('{"email":"ada@example.com"}', true));
    assert.equal(bodyOut(call), '{"email":"ada@example.com"}');
  }
});

test('an encoded body that should be masked is refused with 502, never passed on', () => {
  const call = stream();
  call.emit('data', requestHeaders('/api/customers'));
  call.emit('data', responseHeaders('application/json', { 'content-encoding': 'gzip' }));
  const immediate = (call.written[1] as any).immediate_response;
  assert.equal(immediate.status.code, 502);
  assert.match(immediate.body.toString(), /masking_unavailable/);
});

test('a unit over the buffer bound, or undecodable under onUndecodable: fail, resets the stream', () => {
  const small = stream(8);
  small.emit('data', requestHeaders('/api/customers'));
  small.emit('data', responseHeaders('application/json'));
  small.emit('data', chunk('{"email":"ada@example.com"'));
  assert.match(String(small.destroyed?.message), /exceeds the masking buffer limit of 8 bytes/);

  const strict = stream();
  strict.emit('data', requestHeaders('/strict/x'));
  strict.emit('data', responseHeaders('application/json'));
  strict.emit('data', chunk('not json', true));
  assert.match(String(strict.destroyed?.message), /rule strict-json: expected a JSON document/);
  assert.equal(bodyOut(strict), '');
});

test('the call is ended when Envoy half-closes, once', () => {
  const call = stream();
  call.emit('end');
  call.emit('end');
  assert.equal(call.ended, true);
});
