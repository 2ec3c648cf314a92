/**
 * The splitter for Kafka REST v3 streaming produce bodies: concatenated JSON objects, found whole whatever the chunk
 * boundaries, rejoining to the very bytes that came in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonSequenceError, jsonSequenceSplitter } from '../../src/masking/json-sequence.ts';

// Strings with braces, brackets, escaped quotes and backslashes, multi-byte characters, nested arrays and objects,
// and every kind of whitespace between objects.
const objects = [
  '{"value":{"type":"JSON","data":{"note":"a } brace and a { brace","q":"say \\"}\\" ok","path":"C:\\\\dir\\\\"}}}',
  '{"key":{"type":"STRING","data":"ключ 🔑"},"value":{"type":"BINARY","data":"e30="},"headers":[{"name":"h]","value":null}]}',
  '{"value":{"type":"JSON","data":[[1,2],{"a":[]},"]]}}",{}]},"partition_id":0}',
  '{}',
];
const body = Buffer.from(`  ${objects[0]}${objects[1]}\n${objects[2]}\r\n\t ${objects[3]}\n`);

function split(chunks: readonly Buffer[], max = 1 << 16) {
  const splitter = jsonSequenceSplitter(max);
  const units = chunks.flatMap((chunk) => splitter.push(chunk));
  const tail = splitter.end();
  return { texts: units.map((u) => u.text), rejoined: Buffer.concat([...units.map((u) => u.bytes), tail]) };
}

test('every single split point of a multi-record body gives the same objects and the same bytes', () => {
  for (const object of objects) assert.doesNotThrow(() => JSON.parse(object), 'the fixture is JSON');
  for (let cut = 0; cut <= body.length; cut++) {
    const { texts, rejoined } = split([body.subarray(0, cut), body.subarray(cut)]);
    assert.deepEqual(texts, objects, `split at byte ${cut}`);
    assert.ok(rejoined.equals(body), `split at byte ${cut}`);
  }
});

test('every pair of split points, and one byte at a time', () => {
  for (let a = 0; a <= body.length; a += 3) {
    for (let b = a; b <= body.length; b += 5) {
      const { texts, rejoined } = split([body.subarray(0, a), body.subarray(a, b), body.subarray(b)]);
      assert.deepEqual(texts, objects, `split at bytes ${a} and ${b}`);
      assert.ok(rejoined.equals(body));
    }
  }
  const bytes = [...body].map((byte) => Buffer.from([byte]));
  assert.deepEqual(split(bytes).texts, objects);
});

test('each object comes out as soon as its last byte arrives, and only then', () => {
  const splitter = jsonSequenceSplitter(1024);
  assert.deepEqual(splitter.push(Buffer.from('{"value":{"data":"}')), []);
  assert.equal(splitter.held, 19);
  assert.deepEqual(splitter.push(Buffer.from('"}}\n{"v')).map((u) => u.text), ['{"value":{"data":"}"}}']);
  assert.equal(splitter.held, 4, 'the newline and the start of the next object are held');
  assert.deepEqual(splitter.push(Buffer.from('":1}')).map((u) => [u.text, u.bytes.toString()]), [['{"v":1}', '\n{"v":1}']]);
});

test('anything but whitespace between objects is refused, with its position', () => {
  assert.throws(() => jsonSequenceSplitter(1024).push(Buffer.from('{"a":1}, {"b":2}')), (err: unknown) =>
    err instanceof JsonSequenceError && /expected a JSON object at byte 7 of the records stream, got ","/.test(err.message));
  assert.throws(() => jsonSequenceSplitter(1024).push(Buffer.from('[{"a":1}]')), /expected a JSON object at byte 0/);
  const splitter = jsonSequenceSplitter(1024);
  splitter.push(Buffer.from('{"a":1}\n'));
  assert.throws(() => splitter.push(Buffer.from(' x')), /at byte 9/);
});

test('a body that ends inside an object, or an object over the limit, is an error, not a pass', () => {
  const open = jsonSequenceSplitter(1024);
  open.push(Buffer.from('{"a":1}{"b":"}'));
  assert.throws(() => open.end(), /ends inside a JSON object \(7 bytes of it\)/);
  const big = jsonSequenceSplitter(64);
  assert.throws(() => big.push(Buffer.from(`{"value":"${'x'.repeat(100)}`)), /exceeds the limit of 64 bytes/);
  const many = jsonSequenceSplitter(64);
  for (let i = 0; i < 100; i++) assert.equal(many.push(Buffer.from(`{"n":${i}}`)).length, 1, 'complete objects do not count against the limit');
});
