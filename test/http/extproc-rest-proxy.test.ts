/**
 * HTTP ext_proc for Kafka REST Proxy hosts: produced records go through their topic's `reject` rules (a v3 stream
 * record by record, a batch or v2 body whole), topics named in bodies are decided before the body goes on, consumed
 * records are masked per topic with records of topics the caller may not read left out, and listings keep only what
 * the caller may describe. Everything it must judge and cannot is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { createExtProcHandler, type ExtProcRequestLike, type ExtProcResponseLike } from '../../src/http/extproc.ts';
import { createHttpClassifier } from '../../src/http/action.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import { configSchema } from '../../src/config/schema.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import type { MaskTally } from '../../src/masking/units.ts';

class FakeCall extends EventEmitter {
  written: ExtProcResponseLike[] = [];
  ended = false;
  destroyed: Error | undefined;
  write(msg: ExtProcResponseLike) { this.written.push(msg); return true; }
  end() { this.ended = true; }
  destroy(err?: Error) { this.destroyed = err; }
}

const config = configSchema.parse({
  http: { kafkaRest: { hosts: 'rest.test', pathPrefix: '/kafka' } },
  rules: [
    { name: 'analysts-produce-analytics', match: { group: 'analysts', kafka: { operation: 'produce', topic: ['analytics', 'orders'] } }, effect: 'allow' },
    { name: 'analysts-read-payments', match: { group: 'analysts', kafka: { operation: 'consume', topic: ['orders', 'payments'] } }, effect: 'allow' },
    { name: 'analysts-groups', match: { group: 'analysts', kafka: { operation: 'consume', group: 'analytics-*' } }, effect: 'allow' },
    { name: 'no-cards-in-analytics', match: { kafka: { topic: 'analytics' } }, reject: { detectors: ['card'] } },
    { name: 'mask-payments', match: { group: 'analysts', kafka: { topic: 'payments' } }, mask: { fields: { '$.card.number': 'keep-last-4' }, detectors: ['email'] } },
  ],
});
const policy = compilePolicy(config.rules);
const classify = createHttpClassifier(config.http.kubernetes, config.http.kafkaRest);

function stream(maxBufferBytes = 1 << 20) {
  const call = new FakeCall();
  const audit: AuditRecord[] = [];
  const masked: Array<{ rules: readonly string[]; tally: MaskTally }> = [];
  createExtProcHandler({
    logger: pino({ level: 'silent' }), policy: () => policy, maskContext: () => ({}), maxBufferBytes,
    classify: () => classify, audit: { write: (r) => audit.push(r) },
    hooks: { onMasked: (rules, tally) => masked.push({ rules, tally: { ...tally } }) },
  })(call);
  return { call, audit, masked };
}

const FULL_DUPLEX = { request_body_mode: 'FULL_DUPLEX_STREAMED', response_body_mode: 'FULL_DUPLEX_STREAMED' } as const;
const metadata = (...groups: string[]) => ({
  filter_metadata: { 'envoy.filters.http.ext_authz': { fields: { subject: { stringValue: 'ann' }, groups: { listValue: { values: groups.map((g) => ({ stringValue: g })) } } } } },
});
const headers = (pairs: Record<string, string>) => Object.entries(pairs).map(([key, v]) => ({ key, raw_value: Buffer.from(v) }));
function requestHeaders(method: string, path: string, extra: Record<string, string> = {}, options: { eos?: boolean; groups?: string[]; protocol?: object } = {}): ExtProcRequestLike {
  return {
    request: 'request_headers', protocol_config: (options.protocol ?? FULL_DUPLEX) as never, metadata_context: metadata(...(options.groups ?? ['analysts'])),
    request_headers: { headers: { headers: headers({ ':method': method, ':path': `/kafka${path}`, ':authority': 'rest.test', ...extra }) }, end_of_stream: options.eos ?? false },
  };
}
const requestChunk = (text: string, eos = false): ExtProcRequestLike => ({ request: 'request_body', request_body: { body: Buffer.from(text), end_of_stream: eos } });
const responseHeaders = (contentType: string, status = '200', extra: Record<string, string> = {}): ExtProcRequestLike =>
  ({ request: 'response_headers', response_headers: { headers: { headers: headers({ ':status': status, 'content-type': contentType, ...extra }) } } });
const responseChunk = (text: string, eos = false): ExtProcRequestLike => ({ request: 'response_body', response_body: { body: Buffer.from(text), end_of_stream: eos } });
const streamedOut = (call: FakeCall, field: 'request_body' | 'response_body') => call.written
  .map((w) => (w as any)[field]?.response?.body_mutation?.streamed_response as { body: Buffer; end_of_stream: boolean } | undefined)
  .filter((b) => b !== undefined);
const released = (call: FakeCall) => Buffer.concat(streamedOut(call, 'request_body').map((s) => s.body)).toString();
const answered = (call: FakeCall) => Buffer.concat(streamedOut(call, 'response_body').map((s) => s.body)).toString();
const immediate = (call: FakeCall) => call.written.map((w) => (w as any).immediate_response).find((r) => r !== undefined);
const immediateBody = (call: FakeCall) => JSON.parse(immediate(call).body.toString());

const C = '/v3/clusters/lkc-1';
const v3 = (data: unknown) => JSON.stringify({ value: { type: 'JSON', data } });
const CARD = '4111 1111 1111 1111';

test('a v3 records stream: each record goes on once inspected, whatever the chunking; a refused record stops the stream there', () => {
  const { call, audit } = stream();
  call.emit('data', requestHeaders('POST', `${C}/topics/analytics/records`, { 'content-type': 'application/json' }));
  assert.deepEqual(call.written[0], { request_headers: { response: {} } });
  const [a, b, bad, after] = [v3({ n: 0 }), v3({ n: 1 }), v3({ n: 2, card: CARD }), v3({ n: 3 })];
  call.emit('data', requestChunk(a.slice(0, 7)));
  assert.equal(released(call), '', 'a record is held until it is complete');
  call.emit('data', requestChunk(`${a.slice(7)}\n${b.slice(0, 5)}`));
  assert.equal(released(call), a, 'the first record went on as soon as it was complete');
  // The rest of b, the refused record and one after it arrive in one chunk: b goes on, nothing from the refusal on.
  call.emit('data', requestChunk(`${b.slice(5)}\n${bad}\n${after}`));
  assert.equal(released(call), `${a}\n${b}`);
  const reply = immediate(call);
  assert.equal(reply.status.code, 422);
  assert.equal(reply.details, 'tollgate_rest_record_rejected');
  assert.deepEqual(immediateBody(call), {
    error_code: 422,
    message: 'record 2 of the stream to topic "analytics" is refused, and the stream stops there (the records before it went on): rule no-cards-in-analytics: the record carries a card value',
  });
  assert.ok(!released(call).includes('4111'), 'the refused record never goes on');
  assert.equal(call.ended, true);
  call.emit('data', requestChunk(v3({ n: 4 }), true));
  assert.equal(released(call), `${a}\n${b}`, 'nothing after the refusal');
  assert.equal(audit.length, 1);
  assert.equal(audit[0]?.path, 'kafka');
  assert.equal(audit[0]?.event, 'kafka.rest.produce.rejected');
  assert.equal(audit[0]?.rule, 'no-cards-in-analytics');
  assert.equal(audit[0]?.principal?.subject, 'ann');
  assert.deepEqual({ ...(audit[0]?.details as any), kafkaRest: undefined }, {
    method: 'POST', host: 'rest.test', path: '/kafka/v3/clusters/lkc-1/topics/analytics/records', kafkaRest: undefined,
    topic: 'analytics', record: 2, passedRecords: 2, reason: 'rule no-cards-in-analytics: the record carries a card value',
  });
  assert.ok(!JSON.stringify(audit).includes('4111'), 'the audit record never holds the refused value');
});

test('a clean v3 stream is released byte for byte and ends with the client\'s end of stream (or its trailers)', () => {
  const body = ` ${v3({ n: 0 })}\r\n${v3({ n: 1, note: 'a } and a {' })}\n`;
  for (let cut = 0; cut <= body.length; cut += 7) {
    const { call } = stream();
    call.emit('data', requestHeaders('POST', `${C}/topics/analytics/records`));
    call.emit('data', requestChunk(body.slice(0, cut)));
    call.emit('data', requestChunk(body.slice(cut), true));
    assert.equal(released(call), body, `cut at ${cut}`);
    assert.equal(streamedOut(call, 'request_body').at(-1)?.end_of_stream, true);
    assert.equal(immediate(call), undefined);
  }
  const { call } = stream();
  call.emit('data', requestHeaders('POST', `${C}/topics/analytics/records`));
  call.emit('data', requestChunk(`${v3({ n: 0 })}  `));
  call.emit('data', { request: 'request_trailers' });
  assert.equal(released(call), `${v3({ n: 0 })}  `);
  assert.deepEqual(call.written.at(-1), { request_trailers: {} });
});

test('a stream tollgate cannot read stops at the unreadable record (400), and a record over the bound at the bound (413)', () => {
  const { call, audit } = stream();
  call.emit('data', requestHeaders('POST', `${C}/topics/analytics/records`));
  call.emit('data', requestChunk(`${v3({ n: 0 })}{"value":{"type":"BINARY","data":42}}`));
  assert.equal(released(call), v3({ n: 0 }));
  assert.equal(immediate(call).status.code, 400);
  assert.match(immediateBody(call).message, /^tollgate must read this body to judge it and cannot: record 1 of the stream: record\.value\.data: expected a base64 string/);
  assert.equal(audit[0]?.event, 'kafka.rest.body.invalid');

  const small = stream(64).call;
  small.emit('data', requestHeaders('POST', `${C}/topics/analytics/records`));
  const big = v3({ pad: 'x'.repeat(100) });
  small.emit('data', requestChunk(big.slice(0, 40)));
  assert.equal(immediate(small), undefined, 'under the bound: held');
  small.emit('data', requestChunk(big.slice(40, 80)));
  assert.equal(immediate(small).status.code, 413);
  assert.match(immediateBody(small).message, /^record 0 of the stream exceeds 64 bytes, the most tollgate holds to judge it/);

  const notJson = stream().call;
  notJson.emit('data', requestHeaders('POST', `${C}/topics/analytics/records`));
  notJson.emit('data', requestChunk('[1]', true));
  assert.equal(immediate(notJson).status.code, 400);
});

test('topics without reject rules for the caller stream through untouched, chunk by chunk', () => {
  const { call } = stream();
  call.emit('data', requestHeaders('POST', `${C}/topics/orders/records`));
  call.emit('data', requestChunk(`{"value":{"type":"JSON","data":{"card":"${CARD}"`));
  assert.equal(released(call), `{"value":{"type":"JSON","data":{"card":"${CARD}"`, 'no rule reads it: not held');
  call.emit('data', requestChunk('}}}', true));
  assert.equal(immediate(call), undefined);
});

test('a v3 batch is held whole: one refused record refuses it all and nothing of it goes on; a clean one goes on byte for byte', () => {
  const { call, audit } = stream();
  call.emit('data', requestHeaders('POST', `${C}/topics/analytics/records:batch`));
  const refused = JSON.stringify({ entries: [{ id: '1', value: { type: 'JSON', data: { n: 1 } } }, { id: '2', value: { type: 'STRING', data: `card ${CARD}` } }] });
  call.emit('data', requestChunk(refused.slice(0, 20)));
  call.emit('data', requestChunk(refused.slice(20), true));
  assert.equal(released(call), '');
  assert.equal(immediate(call).status.code, 422);
  assert.equal(immediateBody(call).message, 'record 1 of 2 to topic "analytics" is refused, so none of them is written: rule no-cards-in-analytics: the record carries a card value');
  assert.deepEqual((audit[0]?.details as any).record, 1);

  const clean = stream().call;
  clean.emit('data', requestHeaders('POST', `${C}/topics/analytics/records:batch`));
  const body = JSON.stringify({ entries: [{ id: '1', value: { type: 'JSON', data: { n: 1 } } }] });
  clean.emit('data', requestChunk(body.slice(0, 9)));
  assert.equal(released(clean), '', 'held until the whole batch is read');
  clean.emit('data', requestChunk(body.slice(9), true));
  assert.equal(released(clean), body);
  assert.equal(streamedOut(clean, 'request_body').at(-1)?.end_of_stream, true);
});

test('v2 produce bodies: read in the content type\'s embedded format; a content type naming none is refused at the headers', () => {
  const { call } = stream();
  call.emit('data', requestHeaders('POST', '/topics/analytics', { 'content-type': 'application/vnd.kafka.binary.v2+json' }));
  call.emit('data', requestChunk(JSON.stringify({ records: [{ value: Buffer.from(`{"card":"${CARD}"}`).toString('base64') }] }), true));
  assert.equal(immediate(call).status.code, 422);
  assert.match(immediateBody(call).message, /^record 0 of 1 to topic "analytics" is refused/);

  const json = stream().call;
  json.emit('data', requestHeaders('POST', '/topics/analytics', { 'content-type': 'application/vnd.kafka.json.v2+json' }));
  const body = JSON.stringify({ records: [{ value: { n: 1 } }, { key: 'k', value: { n: 2 } }] });
  json.emit('data', requestChunk(body, true));
  assert.equal(released(json), body);

  const untyped = stream().call;
  untyped.emit('data', requestHeaders('POST', '/topics/analytics', { 'content-type': 'application/json' }));
  assert.equal(immediate(untyped).status.code, 400);
  assert.match(immediateBody(untyped).message, /expected a v2 produce content type/);
});

test('topics a body names are decided before any of it goes on: a v2 subscription to a topic the caller may not read is a 403', () => {
  const { call, audit } = stream();
  const I = '/consumers/analytics-1/instances/i-1';
  call.emit('data', requestHeaders('POST', `${I}/subscription`, { 'content-type': 'application/vnd.kafka.v2+json' }));
  call.emit('data', requestChunk('{"topics":["payments",'));
  call.emit('data', requestChunk('"analytics"]}', true));
  assert.equal(released(call), '');
  assert.equal(immediate(call).status.code, 403);
  assert.deepEqual(immediateBody(call), {
    error_code: 40301, message: 'Fetch (consume) on topic "analytics", named in the request body: no rule allows this request',
  });
  assert.equal(audit[0]?.event, 'kafka.rest.body.deny');
  assert.equal((audit[0]?.details as any).topic, 'analytics');

  const ok = stream().call;
  ok.emit('data', requestHeaders('POST', `${I}/subscription`, { 'content-type': 'application/vnd.kafka.v2+json' }));
  ok.emit('data', requestChunk('{"topics":["payments","orders"]}', true));
  assert.equal(released(ok), '{"topics":["payments","orders"]}');
});

test('a held body over masking.maxBufferBytes is refused with 413', () => {
  const { call } = stream(32);
  call.emit('data', requestHeaders('POST', `${C}/topics/analytics/records:batch`));
  call.emit('data', requestChunk(JSON.stringify({ entries: [{ value: { type: 'STRING', data: 'x'.repeat(40) } }] })));
  assert.equal(immediate(call).status.code, 413);
  assert.equal(immediateBody(call).error_code, 413);
});

test('consumed records: masked with their topic\'s rules, records of topics the caller may not read left out, audited', () => {
  const { call, audit, masked } = stream();
  call.emit('data', requestHeaders('GET', '/consumers/analytics-1/instances/i-1/records?timeout=1000', { accept: 'application/vnd.kafka.json.v2+json', 'accept-encoding': 'gzip' }, { eos: true }));
  assert.deepEqual(call.written[0], { request_headers: { response: { header_mutation: { remove_headers: ['accept-encoding'] } } } });
  call.emit('data', responseHeaders('application/vnd.kafka.json.v2+json', '200', { 'content-length': '999' }));
  assert.deepEqual((call.written[1] as any).response_headers.response.header_mutation.remove_headers, ['content-length']);
  const records = [
    { topic: 'payments', key: null, value: { card: { number: '4111111111111111' }, email: 'ann@example.com' }, partition: 0, offset: 0 },
    { topic: 'analytics', key: null, value: { views: 3 }, partition: 0, offset: 7 },
    { topic: 'orders', key: 'o-1', value: { email: 'bob@example.com' }, partition: 0, offset: 2 },
  ];
  const text = JSON.stringify(records);
  call.emit('data', responseChunk(text.slice(0, 50)));
  assert.equal(answered(call), '', 'held until the whole answer is read');
  call.emit('data', responseChunk(text.slice(50), true));
  assert.deepEqual(JSON.parse(answered(call)), [
    { topic: 'payments', key: null, value: { card: { number: '************1111' }, email: '[REDACTED]' }, partition: 0, offset: 0 },
    { topic: 'orders', key: 'o-1', value: { email: 'bob@example.com' }, partition: 0, offset: 2 },
  ]);
  const record = audit.find((r) => r.event === 'kafka.rest.consume');
  assert.deepEqual({ ...(record?.details as any), kafkaRest: undefined, masked: undefined }, {
    method: 'GET', host: 'rest.test', path: '/kafka/consumers/analytics-1/instances/i-1/records', kafkaRest: undefined, masked: undefined,
    maskedRecords: 1, droppedRecords: 1, droppedTopics: ['analytics'], rules: ['mask-payments'],
  });
  assert.deepEqual(masked.at(-1)?.rules, ['mask-payments']);
});

test('consumed records in the binary format are decoded, masked and encoded again', () => {
  const { call } = stream();
  call.emit('data', requestHeaders('GET', '/consumers/analytics-1/instances/i-1/records', {}, { eos: true }));
  call.emit('data', responseHeaders('application/vnd.kafka.binary.v2+json'));
  const value = Buffer.from('{"email":"ann@example.com"}').toString('base64');
  call.emit('data', responseChunk(JSON.stringify([{ topic: 'payments', key: null, value, partition: 0, offset: 0 }]), true));
  const [out] = JSON.parse(answered(call)) as Array<{ value: string }>;
  assert.equal(Buffer.from(out!.value, 'base64').toString(), '{"email":"[REDACTED]"}');
});

test('an answer tollgate cannot judge is refused (502), a malformed one fails the stream; proxy errors pass as they are', () => {
  const opaque = stream().call;
  opaque.emit('data', requestHeaders('GET', '/consumers/analytics-1/instances/i-1/records', {}, { eos: true }));
  opaque.emit('data', responseHeaders('application/octet-stream'));
  assert.equal(immediate(opaque).status.code, 502);
  assert.match(immediateBody(opaque).message, /tollgate reads only application\/vnd\.kafka/);

  const gzip = stream().call;
  gzip.emit('data', requestHeaders('GET', `${C}/topics`, {}, { eos: true }));
  gzip.emit('data', responseHeaders('application/json', '200', { 'content-encoding': 'gzip' }));
  assert.equal(immediate(gzip).status.code, 502);

  const malformed = stream().call;
  malformed.emit('data', requestHeaders('GET', '/consumers/analytics-1/instances/i-1/records', {}, { eos: true }));
  malformed.emit('data', responseHeaders('application/vnd.kafka.json.v2+json'));
  malformed.emit('data', responseChunk('{"not":"records"}', true));
  assert.ok(malformed.destroyed, 'reset rather than passed unjudged');
  assert.equal(answered(malformed), '');

  const error = stream().call;
  error.emit('data', requestHeaders('GET', '/consumers/analytics-1/instances/i-1/records', {}, { eos: true }));
  error.emit('data', responseHeaders('application/vnd.kafka.v2+json', '404'));
  assert.deepEqual(error.written[1], { response_headers: { response: {} } });
  error.emit('data', responseChunk('{"error_code":40403,"message":"Consumer instance not found."}', true));
  assert.equal(answered(error), '{"error_code":40403,"message":"Consumer instance not found."}');
});

test('a topic listing keeps the topics the caller may describe, as a wire Metadata does', () => {
  const { call, audit } = stream();
  call.emit('data', requestHeaders('GET', `${C}/topics`, {}, { eos: true }));
  call.emit('data', responseHeaders('application/json'));
  const listing = JSON.stringify({
    kind: 'KafkaTopicList', metadata: { next: null },
    data: ['orders', 'payments', 'admin.audit', 'analytics'].map((t) => ({ kind: 'KafkaTopic', topic_name: t, partitions_count: 1 })),
  });
  call.emit('data', responseChunk(listing, true));
  assert.deepEqual(JSON.parse(answered(call)).data.map((t: { topic_name: string }) => t.topic_name), ['orders', 'payments', 'analytics']);
  assert.deepEqual((audit.find((r) => r.event === 'kafka.rest.listing')?.details as any).hidden, ['admin.audit']);
});

test('fail closed at the headers: an unknown request, no principal, or bodies Envoy does not stream when they must be judged', () => {
  const unknown = stream().call;
  unknown.emit('data', requestHeaders('GET', `${C}/links`, {}, { eos: true }));
  assert.equal(immediate(unknown).status.code, 403);
  assert.equal(immediateBody(unknown).error_code, 40301);

  const anonymous = stream().call;
  anonymous.emit('data', { ...requestHeaders('GET', `${C}/topics`, {}, { eos: true }), metadata_context: {} });
  assert.equal(immediate(anonymous).status.code, 403);

  const buffered = stream().call;
  buffered.emit('data', requestHeaders('POST', `${C}/topics/analytics/records`, {}, { protocol: { request_body_mode: 'BUFFERED', response_body_mode: 'FULL_DUPLEX_STREAMED' } }));
  assert.equal(immediate(buffered).status.code, 403);
  assert.match(immediateBody(buffered).message, /must be judged and Envoy does not send it to tollgate/);

  const listing = stream().call;
  listing.emit('data', requestHeaders('GET', `${C}/topics`, {}, { eos: true, protocol: { request_body_mode: 'NONE', response_body_mode: 'NONE' } }));
  assert.equal(immediate(listing).status.code, 403);

  const plain = stream().call;
  plain.emit('data', requestHeaders('GET', `${C}/topics/orders`, {}, { eos: true }));
  assert.deepEqual(plain.written[0], { request_headers: { response: {} } }, 'nothing to judge: left alone');
});
