import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseSequencer, SequenceError } from '../../src/kafka/sequencer.ts';
import { responseFrame } from './frames.ts';

const req = (correlationId: number) => ({ apiKey: 3, apiVersion: 12, correlationId });
const ids = (frames: Buffer[]) => frames.map((f) => f.readInt32BE(4));

test('broker responses are released in request order as they arrive', () => {
  const s = new ResponseSequencer();
  s.forwarded(req(1));
  s.forwarded(req(2));
  assert.deepEqual(ids(s.fromBroker(responseFrame(1))), [1]);
  assert.deepEqual(ids(s.fromBroker(responseFrame(2))), [2]);
  assert.equal(s.pendingClient, 0);
});

test('a local answer waits behind an earlier request still at the broker, then both go in order', () => {
  const s = new ResponseSequencer();
  s.forwarded(req(1));
  assert.deepEqual(s.answered(req(2), responseFrame(2)), [], 'the denial must not overtake request 1');
  s.forwarded(req(3));
  assert.deepEqual(ids(s.fromBroker(responseFrame(1))), [1, 2]);
  assert.deepEqual(ids(s.fromBroker(responseFrame(3))), [3]);
});

test('a local answer with nothing ahead of it is released at once', () => {
  const s = new ResponseSequencer();
  assert.deepEqual(ids(s.answered(req(5), responseFrame(5))), [5]);
});

test('tollgate\'s own upstream requests take their responses and the client never sees them', () => {
  const s = new ResponseSequencer();
  const own: number[] = [];
  s.injected(-1, (f) => own.push(f.readInt32BE(4)));
  s.injected(-2, (f) => own.push(f.readInt32BE(4)));
  s.forwarded(req(1));
  assert.deepEqual(s.fromBroker(responseFrame(-1)), []);
  assert.deepEqual(s.fromBroker(responseFrame(-2)), []);
  assert.deepEqual(ids(s.fromBroker(responseFrame(1))), [1]);
  assert.deepEqual(own, [-1, -2]);
});

test('a response nobody awaits, or for another request than the oldest, is refused', () => {
  const s = new ResponseSequencer();
  assert.throws(() => s.fromBroker(responseFrame(9)), (e: unknown) => e instanceof SequenceError && e.code === 'unexpected_response');
  s.forwarded(req(1));
  s.forwarded(req(2));
  assert.throws(() => s.fromBroker(responseFrame(2)), (e: unknown) => e instanceof SequenceError && e.code === 'correlation_mismatch' && /expected .* 1, got 2/.test(e.message));
});

test('a reserved slot holds its place until its asynchronous answer arrives, then releases what queued behind it', () => {
  const s = new ResponseSequencer();
  const fill = s.reserved(req(1));
  assert.deepEqual(s.answered(req(2), responseFrame(2)), []);
  assert.deepEqual(ids(fill(responseFrame(1))), [1, 2]);
  assert.throws(() => fill(responseFrame(1)), /already given/);
});

test('a forwarded request\'s transform shapes the broker response before the client sees it', () => {
  const s = new ResponseSequencer();
  s.forwarded(req(1), (frame) => Buffer.concat([frame, Buffer.from('!')]));
  const [out] = s.fromBroker(responseFrame(1));
  assert.equal(out!.at(-1), '!'.charCodeAt(0));
  s.forwarded(req(2), () => { throw new Error('cannot rewrite'); });
  assert.throws(() => s.fromBroker(responseFrame(2)), /cannot rewrite/);
});
