import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { createExtProcHandler, type ExtProcRequestLike, type ExtProcResponseLike } from '../../src/http/extproc.ts';

class FakeCall extends EventEmitter {
  written: ExtProcResponseLike[] = [];
  ended = false;
  write(msg: ExtProcResponseLike) { this.written.push(msg); return true; }
  end() { this.ended = true; }
}

function stream() {
  const call = new FakeCall();
  createExtProcHandler({ logger: pino({ level: 'silent' }) })(call);
  return call;
}

test('headers and trailers are answered with an unchanged CONTINUE, one reply per message', () => {
  const call = stream();
  call.emit('data', { request: 'request_headers' } satisfies ExtProcRequestLike);
  call.emit('data', { request: 'response_headers' } satisfies ExtProcRequestLike);
  call.emit('data', { request: 'response_trailers' } satisfies ExtProcRequestLike);
  assert.deepEqual(call.written, [
    { request_headers: { response: {} } }, { response_headers: { response: {} } }, { response_trailers: {} },
  ]);
});

test('full-duplex streamed bodies are echoed chunk by chunk as streamed_response, end_of_stream kept', () => {
  const call = stream();
  call.emit('data', { request: 'request_headers', protocol_config: { request_body_mode: 'NONE', response_body_mode: 'FULL_DUPLEX_STREAMED' } });
  call.emit('data', { request: 'response_body', response_body: { body: Buffer.from('{"a":'), end_of_stream: false } });
  call.emit('data', { request: 'response_body', response_body: { body: Buffer.from('1}'), end_of_stream: true } });
  const bodies = call.written.slice(1).map((w) => (w as any).response_body.response.body_mutation.streamed_response);
  assert.deepEqual(bodies, [
    { body: Buffer.from('{"a":'), end_of_stream: false },
    { body: Buffer.from('1}'), end_of_stream: true },
  ]);
});

test('bodies in buffered or streamed mode continue unchanged without a mutation', () => {
  const call = stream();
  call.emit('data', { request: 'request_headers', protocol_config: { request_body_mode: 'BUFFERED', response_body_mode: 'STREAMED' } });
  call.emit('data', { request: 'request_body', request_body: { body: Buffer.from('x'), end_of_stream: true } });
  assert.deepEqual(call.written[1], { request_body: { response: {} } });
});

test('the call is ended when Envoy half-closes, once', () => {
  const call = stream();
  call.emit('end');
  call.emit('end');
  assert.equal(call.ended, true);
});
