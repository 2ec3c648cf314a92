import { test } from 'node:test';
import assert from 'node:assert/strict';
import { documentMasker, lineMasker, sseMasker, StreamLimitError, type StreamMasker } from '../../src/masking/stream.ts';
import { compileMaskPlan, maskJson, maskText } from '../../src/masking/mask.ts';

const plan = compileMaskPlan({ detectors: ['card', 'email'] });
const maskLine = (line: string) => (line.trim() === '' ? line : maskJson(line, plan).text);

/** Feeds `body` cut at every offset in `cuts` and returns what came out. */
function run(masker: StreamMasker, body: string, cuts: number[]): string {
  const bytes = Buffer.from(body);
  const out: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(masker.push(bytes.subarray(at, cut)));
    at = cut;
  }
  out.push(masker.end());
  return Buffer.concat(out).toString();
}

const ndjson = [
  { type: 'ADDED', object: { email: 'ada@example.com' } },
  { type: 'MODIFIED', object: { card: '4111111111111111' } },
].map((o) => JSON.stringify(o)).join('\n') + '\n';

test('NDJSON lines are masked whole whatever the chunk boundaries, even a value split in two', () => {
  const expected = run(lineMasker(maskLine, 1 << 20), ndjson, []);
  assert.ok(!expected.includes('ada@example.com') && !expected.includes('4111111111111111'));
  for (let cut = 1; cut < ndjson.length; cut++) {
    assert.equal(run(lineMasker(maskLine, 1 << 20), ndjson, [cut]), expected, `cut at ${cut}`);
  }
  const everyByte = Array.from({ length: ndjson.length - 1 }, (_, i) => i + 1);
  assert.equal(run(lineMasker(maskLine, 1 << 20), ndjson, everyByte), expected);
});

test('nothing of an incomplete line leaves before its newline', () => {
  const masker = lineMasker(maskLine, 1 << 20);
  assert.equal(masker.push(Buffer.from('{"email":"ada@exa')).length, 0);
  assert.equal(masker.held, 17);
  assert.equal(masker.push(Buffer.from('mple.com"}\n')).toString(), '{"email":"[REDACTED]"}\n');
});

test('a line over the bound fails instead of buffering without limit', () => {
  const masker = lineMasker(maskLine, 16);
  assert.throws(() => masker.push(Buffer.from('x'.repeat(17))), StreamLimitError);
});

test('SSE events are masked once complete, other fields untouched', () => {
  const body = 'event: order\nid: 1\ndata: {"email":"ada@example.com"}\n\nevent: ping\ndata: ok\n\n';
  const maskData = (d: string) => maskText(d, plan).text;
  const expected = 'event: order\nid: 1\ndata: {"email":"[REDACTED]"}\n\nevent: ping\ndata: ok\n\n';
  for (let cut = 1; cut < body.length; cut++) assert.equal(run(sseMasker(maskData, 1 << 20), body, [cut]), expected, `cut at ${cut}`);
});

test('a whole JSON document is held to the end, then masked', () => {
  const doc = JSON.stringify({ customers: [{ email: 'ada@example.com' }] });
  const masker = documentMasker((t) => maskJson(t, plan).text, 1 << 20);
  assert.equal(run(masker, doc, [5, 20]), '{"customers":[{"email":"[REDACTED]"}]}');
  assert.throws(() => documentMasker((t) => t, 4).push(Buffer.from('12345')), StreamLimitError);
});

test('a sequence of JSON objects is masked object by object, whatever the chunking, whitespace kept', async () => {
  const { sequenceMasker } = await import('../../src/masking/stream.ts');
  const body = '{"type":"ADDED","object":{"data":{"p":"c2VjcmV0"}}}{"type":"MODIFIED","object":{"data":{"p":"b3RoZXI="}}}\n  {"type":"DELETED","object":{"data":{}}}\n';
  const mask = (t: string) => JSON.stringify({ ...JSON.parse(t), masked: true });
  for (let cut = 1; cut < body.length; cut++) {
    const m = sequenceMasker(mask, 1024);
    const first = m.push(Buffer.from(body.slice(0, cut))).toString();
    const rest = m.push(Buffer.from(body.slice(cut))).toString() + m.end().toString();
    const out = first + rest;
    assert.equal(first.split('{"type"').length, first.split('"masked":true').length, `cut at ${cut}: only whole, masked objects leave early`);
    assert.equal(out.split('"masked":true').length - 1, 3, `cut at ${cut}`);
    assert.match(out, /\}\n {2}\{/, 'whitespace between objects goes out as it came');
  }
});
