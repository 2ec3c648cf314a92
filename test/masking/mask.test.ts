import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileMaskPlan, maskJson, maskText, UndecodableError } from '../../src/masking/mask.ts';
import { compileJsonPath, JsonPathError } from '../../src/masking/json-path.ts';
import { applyStrategy, parseStrategy } from '../../src/masking/strategies.ts';

const order = {
  id: 7,
  customer: { email: 'ada@example.com', name: 'Ada' },
  card: { number: '4111 1111 1111 1111', expiry: '12/29' },
  items: [{ sku: 'a', email: 'x@example.org' }, { sku: 'b', email: 'y@example.org' }],
  note: 'call +44 20 7946 0958 or mail ada@example.com',
};

test('field paths mask exactly what they name, with each strategy', () => {
  const plan = compileMaskPlan({ fields: { '$.card.number': 'keep-last-4', '$.items[*].email': 'redact', '$.customer.name': 'null' } });
  const out = JSON.parse(maskJson(JSON.stringify(order), plan).text);
  assert.equal(out.card.number, '**** **** **** 1111');
  assert.deepEqual(out.items.map((i: { email: string }) => i.email), ['[REDACTED]', '[REDACTED]']);
  assert.equal(out.customer.name, null);
  assert.equal(out.customer.email, 'ada@example.com', 'not named, not masked');
});

test('detectors mask inside every string value, and card numbers stored as numbers', () => {
  const plan = compileMaskPlan({ detectors: ['email', 'phone', 'card'] });
  const result = maskJson(JSON.stringify({ ...order, cardAsNumber: 4111111111111111 }), plan);
  const out = JSON.parse(result.text);
  assert.equal(out.note, 'call [REDACTED] or mail [REDACTED]');
  assert.equal(out.customer.email, '[REDACTED]');
  assert.equal(out.card.number, '[REDACTED]');
  assert.equal(out.cardAsNumber, '[REDACTED]');
  assert.equal(out.card.expiry, '12/29');
  assert.deepEqual(result.counts, { email: 4, phone: 1, card: 2 });
});

test('a document nothing matches comes back as the very same text', () => {
  const text = '{ "a" : 1,\n "b": "plain" }';
  const result = maskJson(text, compileMaskPlan({ fields: { '$.missing': 'redact' }, detectors: ['card'] }));
  assert.equal(result.changed, false);
  assert.equal(result.text, text);
});

test('keyed hashing keeps equal values joinable and needs a key', () => {
  const plan = compileMaskPlan({ fields: { '$.customer.email': 'hash' } });
  const key = Buffer.from('k1');
  const a = JSON.parse(maskJson(JSON.stringify(order), plan, { hashKey: key }).text).customer.email;
  const b = JSON.parse(maskJson(JSON.stringify(order), plan, { hashKey: key }).text).customer.email;
  const c = JSON.parse(maskJson(JSON.stringify(order), plan, { hashKey: Buffer.from('k2') }).text).customer.email;
  assert.match(a, /^hash:[0-9a-f]{32}$/);
  assert.equal(a, b);
  assert.notEqual(a, c);
  assert.throws(() => maskJson(JSON.stringify(order), plan), /needs a key/);
});

test('recursive descent and quoted keys', () => {
  const plan = compileMaskPlan({ fields: { '$..email': 'redact', "$['odd key']": 'redact' } });
  const out = JSON.parse(maskJson(JSON.stringify({ ...order, 'odd key': 's' }), plan).text);
  assert.equal(out.customer.email, '[REDACTED]');
  assert.equal(out.items[1].email, '[REDACTED]');
  assert.equal(out['odd key'], '[REDACTED]');
});

test('free text is masked by detectors; non-JSON given to maskJson is UndecodableError', () => {
  const plan = compileMaskPlan({ detectors: ['card', 'email'], detectorStrategy: 'keep-first-2' });
  assert.equal(maskText('card 4111111111111111 mail ab@example.com', plan).text, 'card 41************** mail ab********.***');
  assert.throws(() => maskJson('not json', plan), UndecodableError);
});

test('bad paths and strategies are refused with what was expected', () => {
  assert.throws(() => compileJsonPath('card.number'), (e: unknown) => e instanceof JsonPathError && /start with "\$"/.test(e.message));
  assert.throws(() => compileJsonPath('$.a[x]'), /expected \[\*\], \[n\]/);
  assert.throws(() => parseStrategy('keep-last'), /expected a mask strategy/);
  assert.equal(applyStrategy('abcdef', { kind: 'keep-first', count: 2 }, {}), 'ab****');
});

test('card numbers stored as JSON numbers are found whatever their size (JSON.parse would round those above 2^53)', () => {
  const plan = compileMaskPlan({ detectors: ['card'] });
  for (const text of ['{"card":3580994680287239631}', '3580994680287239631', '{"a":[1,4111111111111111,2.5e3]}', '{"card":6011000990139424}']) {
    const result = maskJson(text, plan);
    assert.equal(result.changed, true, text);
    assert.doesNotMatch(result.text, /3580994680287239631|4111111111111111|6011000990139424/, text);
  }
  const untouched = '{"id":12345678901234567890,"ratio":4111111111111111.5,"s":"x\\"4111111111111111"}';
  assert.equal(maskJson('{"id":12345678901234567890}', plan).changed, false, 'a long number that is not Luhn-valid is no card');
  assert.match(maskJson(untouched, plan).text, /12345678901234567890|1234567890123456/);
});
