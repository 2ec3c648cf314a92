/**
 * Spans of values in JSON text: every element and member found where JSON.parse finds it, whatever the strings,
 * escapes and whitespace hold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arrayElements, objectMembers, skipValue } from '../../src/http/json-spans.ts';

const awkward = [
  '"a ] } , \\" \\\\"', '-1.5e+3', 'true', 'null', '[]', '{}', ' [ 1 , [ 2 ] , { "x" : "]" } ] ', '{"k":{"k":["}"]}}', '"\\u005d"', '12345678901234567890',
];

test('array elements are the values JSON.parse reads, with every separator shape', () => {
  for (const sep of [',', ' , ', '\n,\t', ',\r\n  ']) {
    const text = ` [ ${awkward.map((v) => v.trim()).join(sep)} ] `;
    const spans = arrayElements(text, 1);
    assert.deepEqual(spans.map((s) => JSON.parse(text.slice(s.start, s.end)) as unknown), JSON.parse(text));
    assert.equal(skipValue(text, 1), text.length - 1);
  }
  assert.deepEqual(arrayElements('[ ]', 0), []);
});

test('object members by name, the last one where a name repeats (as JSON.parse)', () => {
  const text = '{ "a\\"b" : [1,"}"] , "topic":"t","value" :{"v":"{"} ,"topic":"u" }';
  const members = objectMembers(text, 0);
  assert.deepEqual([...members.keys()], ['a"b', 'topic', 'value']);
  const parsed = JSON.parse(text) as Record<string, unknown>;
  for (const [name, span] of members) assert.deepEqual(JSON.parse(text.slice(span.start, span.end)), parsed[name], name);
  assert.deepEqual(objectMembers('{}', 0).size, 0);
});
