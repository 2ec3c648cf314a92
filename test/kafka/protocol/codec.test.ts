/**
 * The codec runtime: wire primitives against byte strings written from Kafka's protocol description (table
 * tests), and the schema interpreter's rules — defaults for absent fields, tagged fields known and unknown,
 * nullable structs, ignorable fields — on a small message described here.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EncodeError } from '../../../src/kafka/protocol/codec/errors.ts';
import { Reader } from '../../../src/kafka/protocol/codec/reader.ts';
import { arrayOf, decodeMessage, encodeMessage, f, message, parseVersions, struct, ZERO_UUID } from '../../../src/kafka/protocol/codec/schema.ts';
import { Writer } from '../../../src/kafka/protocol/codec/writer.ts';
import { FrameError } from '../../../src/kafka/protocol/errors.ts';

const hex = (text: string): Buffer => Buffer.from(text.replaceAll(' ', ''), 'hex');
const written = (write: (w: Writer) => void): string => {
  const writer = new Writer(16);
  write(writer);
  return writer.finish().toString('hex');
};
const reader = (text: string): Reader => new Reader(hex(text), 0, 'body');

function assertFrameError(fn: () => unknown, code: string, details?: Record<string, unknown>): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FrameError, `expected FrameError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (details !== undefined) for (const [key, value] of Object.entries(details)) assert.equal(err.details[key], value, `details.${key}`);
    return true;
  });
}

describe('wire primitives', () => {
  const uvarints: ReadonlyArray<readonly [number, string]> = [
    [0, '00'],
    [1, '01'],
    [127, '7f'],
    [128, '8001'],
    [300, 'ac02'],
    [16383, 'ff7f'],
    [16384, '808001'],
    [2 ** 31 - 1, 'ffffffff07'],
    [2 ** 32 - 1, 'ffffffff0f'],
  ];
  for (const [value, bytes] of uvarints) {
    it(`unsigned varint ${value} ⇄ ${bytes}`, () => {
      assert.equal(written((w) => w.uvarint(value)), bytes);
      const r = reader(bytes);
      assert.equal(r.uvarint('v'), value);
      assert.equal(r.remaining, 0);
    });
  }

  const varints: ReadonlyArray<readonly [number, string]> = [
    [0, '00'],
    [-1, '01'],
    [1, '02'],
    [-64, '7f'],
    [64, '8001'],
    [2 ** 31 - 1, 'feffffff0f'],
    [-(2 ** 31), 'ffffffff0f'],
  ];
  for (const [value, bytes] of varints) {
    it(`zigzag varint ${value} ⇄ ${bytes}`, () => {
      assert.equal(written((w) => w.varint(value)), bytes);
      assert.equal(reader(bytes).varint('v'), value);
    });
  }

  const varlongs: ReadonlyArray<readonly [bigint, string]> = [
    [0n, '00'],
    [-1n, '01'],
    [1n, '02'],
    [(1n << 63n) - 1n, 'feffffffffffffffff01'],
    [-(1n << 63n), 'ffffffffffffffffff01'],
  ];
  for (const [value, bytes] of varlongs) {
    it(`zigzag varlong ${value} ⇄ ${bytes}`, () => {
      assert.equal(written((w) => w.varlong(value)), bytes);
      assert.equal(reader(bytes).varlong('v'), value);
    });
  }

  it('refuses over-long and truncated varints with FrameError naming the field and offset', () => {
    assertFrameError(() => reader('ffffffff1f').uvarint('count'), 'body_invalid', { field: 'count' });
    assertFrameError(() => reader('ffffffffff01').uvarint('count'), 'body_invalid');
    assertFrameError(() => reader('ffffffffffffffffff02').varlong('delta'), 'body_invalid');
    assertFrameError(() => reader('8080').uvarint('count'), 'body_truncated', { field: 'count', expectedOffset: 3, length: 2 });
  });

  const strings: ReadonlyArray<readonly [string | null, boolean, string]> = [
    [null, true, '00'],
    ['', true, '01'],
    ['é', true, '03 c3a9'],
    [null, false, 'ffff'],
    ['', false, '0000'],
    ['ab', false, '0002 6162'],
  ];
  for (const [value, compact, bytes] of strings) {
    it(`${compact ? 'compact' : 'INT16-length'} nullable string ${JSON.stringify(value)} ⇄ ${bytes}`, () => {
      assert.equal(written((w) => w.stringOrNull(value, compact)), bytes.replaceAll(' ', ''));
      assert.equal(reader(bytes).stringOrNull('s', compact), value);
    });
  }

  it('bytes and records are length-prefixed views of the frame (INT32 or compact), null as -1 or 0', () => {
    assert.equal(written((w) => w.bytesOrNull(null, false)), 'ffffffff');
    assert.equal(written((w) => w.bytesOrNull(null, true)), '00');
    assert.equal(written((w) => w.bytesOrNull(hex('0102'), true)), '030102');
    const frame = hex('00000002 0102 ff');
    const view = new Reader(frame, 0, 'body').bytesOrNull('b', false)!;
    assert.deepEqual(view, hex('0102'));
    assert.equal(view.buffer, frame.buffer, 'a view, not a copy');
    assertFrameError(() => reader('fffffffe').bytesOrNull('b', false), 'body_invalid');
    assertFrameError(() => reader('05 0102').bytesOrNull('b', true), 'body_truncated', { field: 'b', expectedOffset: 5 });
  });

  it('fixed-width types, uuid as base64url text, bool as any non-zero byte', () => {
    assert.equal(written((w) => { w.int8(-2); w.uint16(65535); w.uint32(2 ** 32 - 1); w.int64(-2n); w.float64(1.5); w.bool(true); }),
      'fe' + 'ffff' + 'ffffffff' + 'fffffffffffffffe' + '3ff8000000000000' + '01');
    const r = reader('fe ffff ffffffff fffffffffffffffe 3ff8000000000000 02');
    assert.deepEqual([r.int8('a'), r.uint16('b'), r.uint32('c'), r.int64('d'), r.float64('e'), r.bool('f')], [-2, 65535, 2 ** 32 - 1, -2n, 1.5, true]);
    assert.equal(reader('000102030405060708090a0b0c0d0e0f').uuid('id'), 'AAECAwQFBgcICQoLDA0ODw');
    assert.equal(written((w) => w.uuid('AAECAwQFBgcICQoLDA0ODw')), '000102030405060708090a0b0c0d0e0f');
    assert.equal(written((w) => w.uuid(ZERO_UUID)), '00'.repeat(16));
  });

  it('refuses values that do not fit their type with EncodeError', () => {
    const w = new Writer();
    assert.throws(() => w.int16(40000, 'acks'), (err: unknown) => err instanceof EncodeError && /acks: 40000 is not a valid int16/.test(err.message));
    assert.throws(() => w.int32(1.5), EncodeError);
    assert.throws(() => w.int64(1n << 63n), EncodeError);
    assert.throws(() => w.uuid('not-a-uuid'), EncodeError);
    assert.throws(() => w.uvarint(-1), EncodeError);
    assert.throws(() => w.stringOrNull('x'.repeat(40_000), false), /does not fit an INT16 length/);
    assert.equal(w.length, 0, 'nothing written by failed calls');
  });

  it('grows its buffer as needed and keeps earlier bytes', () => {
    const w = new Writer(16);
    for (let i = 0; i < 5000; i++) w.int16(i);
    const out = w.finish();
    assert.equal(out.length, 10_000);
    for (let i = 0; i < 5000; i++) assert.equal(out.readInt16BE(i * 2), i);
  });

  it('reads tagged-field sections raw and refuses array counts larger than the bytes left', () => {
    assert.deepEqual(reader('02 00 01 aa 05 02 bbcc').taggedFields(), [{ tag: 0, data: hex('aa') }, { tag: 5, data: hex('bbcc') }]);
    assertFrameError(() => reader('02 00 05 aa').taggedFields(), 'body_truncated');
    assertFrameError(() => reader('ffffffff0f 00').arrayLength('topics', true), 'body_invalid', { field: 'topics' });
    assertFrameError(() => reader('7fffffff').arrayLength('topics', false), 'body_invalid');
    assert.equal(reader('00').arrayLength('topics', true), -1);
    assert.equal(reader('ffffffff').arrayLength('topics', false), -1);
  });

  it('parses the specs\' version ranges', () => {
    assert.deepEqual(parseVersions('3+'), { min: 3, max: Infinity });
    assert.deepEqual(parseVersions('0-12'), { min: 0, max: 12 });
    assert.deepEqual(parseVersions('5'), { min: 5, max: 5 });
    assert.equal(parseVersions('none'), null);
    assert.throws(() => parseVersions('2-1'));
  });
});

// A message with every rule the interpreter has: versions 0-2, flexible from 1.
interface Inner {
  a: number;
  note?: string | null;
  _unknownTaggedFields?: { tag: number; data: Buffer }[];
}
interface TestMessage {
  name: string;
  added: number;
  dropped: number;
  strict: boolean;
  items: Inner[];
  maybe: Inner | null;
  ids: string[] | null;
  hint?: bigint;
  _unknownTaggedFields?: { tag: number; data: Buffer }[];
}
const InnerSchema = struct('Inner', [f('a', 'int32', '0+'), f('note', 'string', '1+', { nullable: '1+', tag: 0, tagged: '1+' })]);
const TestSchema = message<TestMessage>('TestRequest', 999, '0-2', '1+', [
  f('name', 'string', '0+'),
  f('added', 'int16', '2+', { default: -1 }),
  f('dropped', 'int32', '0', { ignorable: true }),
  f('strict', 'bool', '0-1'),
  f('items', arrayOf(InnerSchema), '0+'),
  f('maybe', InnerSchema, '1+', { nullable: '1+' }),
  f('ids', arrayOf('uuid'), '0+', { nullable: '1+' }),
  f('hint', 'int64', '1+', { tag: 3, tagged: '1+', default: -1n }),
]);

const encode = (version: number, value: TestMessage): Buffer => {
  const w = new Writer();
  encodeMessage(w, version, TestSchema, value);
  return Buffer.from(w.finish());
};
const decode = (version: number, bytes: Buffer): TestMessage => {
  const r = new Reader(bytes, 0, 'body');
  const value = decodeMessage(r, version, TestSchema);
  assert.equal(r.remaining, 0, 'whole message read');
  return value;
};

describe('schema interpreter', () => {
  it('non-flexible v0: INT16 strings, INT32 arrays, no tagged sections; absent fields get their defaults', () => {
    const bytes = hex('0001 78' + '00000007' + '01' + '00000001 0000002a' + '00000000');
    const value = decode(0, bytes);
    assert.deepEqual(value, { name: 'x', added: -1, dropped: 7, strict: true, items: [{ a: 42 }], maybe: { a: 0 }, ids: [] });
    assert.deepEqual(encode(0, value), bytes);
  });

  it('flexible v2: compact forms, a nullable struct marker, known and unknown tags written back in tag order', () => {
    const bytes = hex(
      '02 78' + // name 'x'
        '0005' + // added
        '02' + '0000002a' + '01 00 03 03 6869' + // items: one Inner {a: 42, note (tag 0): 'hi'}
        'ff' + // maybe: null
        '00' + // ids: null
        '03' + '01 01 aa' + '03 08 0000000000000007' + '05 00', // tags 1 (unknown), 3 (hint), 5 (unknown)
    );
    const value = decode(2, bytes);
    assert.deepEqual(value, {
      name: 'x',
      added: 5,
      dropped: 0,
      strict: false,
      items: [{ a: 42, note: 'hi' }],
      maybe: null,
      ids: null,
      hint: 7n,
      _unknownTaggedFields: [{ tag: 1, data: hex('aa') }, { tag: 5, data: Buffer.alloc(0) }],
    });
    assert.deepEqual(encode(2, value), bytes);
  });

  it('writes a present nullable struct with marker 1, and a tagged field only when it is set', () => {
    const base: TestMessage = { name: '', added: 0, dropped: 0, strict: false, items: [], maybe: { a: 1 }, ids: [ZERO_UUID] };
    assert.equal(encode(2, base).toString('hex'), '01' + '0000' + '01' + '01' + '00000001' + '00' + '02' + '00'.repeat(16) + '00');
    assert.ok(encode(2, { ...base, hint: -1n }).toString('hex').endsWith('01' + '03' + '08' + 'ff'.repeat(8)), 'hint written although it is the default');
  });

  it('refuses a tagged field whose declared size disagrees with its value', () => {
    assertFrameError(() => decode(2, hex('01 0000 01 ff 00 01 03 09 0000000000000007 00')), 'body_invalid', { field: 'hint' });
  });

  it('refuses null where the version is not nullable, on both sides', () => {
    assertFrameError(() => decode(0, hex('0000 00000000 00 00000000 ffffffff')), 'body_invalid', { field: 'ids' });
    assert.throws(() => encode(0, { name: '', added: -1, dropped: 0, strict: false, items: [], maybe: { a: 0 }, ids: null }), (err: unknown) => {
      assert.ok(err instanceof EncodeError);
      assert.equal(err.path, 'TestRequest v0: ids');
      return true;
    });
  });

  it('drops ignorable fields the version lacks, refuses non-ignorable ones set to a non-default value', () => {
    const value: TestMessage = { name: 'x', added: -1, dropped: 9, strict: false, items: [], maybe: null, ids: [] };
    assert.doesNotThrow(() => encode(2, value), 'dropped is ignorable');
    assert.throws(() => encode(2, { ...value, strict: true }), /TestRequest v2: strict: version 2 has no such field/);
    assert.throws(() => encode(0, { ...value, added: 5 }), /TestRequest v0: added: version 0 has no such field/);
    assert.throws(() => encode(0, { ...value, maybe: { a: 0 }, hint: 3n }), /TestRequest v0: hint/);
    assert.throws(() => encode(0, { ...value, maybe: { a: 0 }, _unknownTaggedFields: [{ tag: 9, data: Buffer.alloc(0) }] }), /not flexible/);
  });

  it('names the path of a bad value inside arrays', () => {
    const value: TestMessage = { name: 'x', added: 0, dropped: 0, strict: false, items: [{ a: 1 }, { a: 2 ** 40 }], maybe: null, ids: [] };
    assert.throws(() => encode(2, value), (err: unknown) => err instanceof EncodeError && err.path === 'TestRequest v2: items[1].a');
  });

  it('refuses versions outside validVersions', () => {
    assertFrameError(() => decode(3, hex('00')), 'body_invalid', { field: 'TestRequest' });
    assert.throws(() => encode(3, {} as TestMessage), /TestRequest v3: outside the valid versions 0-2/);
  });
});
