/**
 * Property tests of Fetch masking, seeded and bounded (count and time): random JSON documents (nested objects and
 * arrays, random keys, unicode strings, numbers) with PII planted at random places, in every format the detectors
 * promise to find (src/masking/detectors.ts): Luhn-valid card numbers (plain, spaced, dashed, Amex-grouped, a
 * single space or dash between any digits, and JSON numbers), emails, mod-97-valid IBANs (compact and grouped by
 * four), US SSNs. The documents go into record batches with random codecs and random splits, into a Fetch v12
 * response, through `maskFetchResponse` with a `{detectors: [card, email, iban, us-ssn]}` rule; every record of
 * the output is decoded and no planted value (nor the digits of a card, nor the compact form of an IBAN) is left.
 * Beyond not leaking: everything else of the document is exactly as it was (the rule only replaces findings), a
 * topic without rules keeps its bytes, and batch encode/decode round-trips random records.
 *
 * A failure prints its seed and case number: rerun with TOLLGATE_PROPERTY_SEED=<seed> to reproduce.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../../src/config/schema.ts';
import { compilePolicy, type NamedMaskPlan } from '../../../src/policy/engine.ts';
import type { Principal } from '../../../src/core/principal.ts';
import { maskFetchResponse } from '../../../src/kafka/masking/fetch.ts';
import { decodeResponse, encodeResponse } from '../../../src/kafka/protocol/messages.ts';
import {
  ATTR_TIMESTAMP_TYPE, ATTR_TRANSACTIONAL, decodeBatch, encodeBatch, splitBatches,
  type BatchHeader, type Compression, type KafkaRecord, type RecordHeader,
} from '../../../src/kafka/protocol/records/index.ts';
import { REDACTED } from '../../../src/masking/strategies.ts';
import { seededRandom } from '../frames.ts';

const SEED = Number(process.env['TOLLGATE_PROPERTY_SEED'] ?? 20260915);
/** Each property stops after this many cases or this much time, whichever comes first. */
const MAX_MS = 4_000;

type Random = () => number;

function bounded(cases: number, run: (random: Random, n: number) => void): void {
  const random = seededRandom(SEED);
  const deadline = Date.now() + MAX_MS;
  for (let n = 0; n < cases && Date.now() < deadline; n++) {
    try {
      run(random, n);
    } catch (error) {
      if (error instanceof Error) error.message = `[seed ${SEED}, case ${n}] ${error.message}`;
      throw error;
    }
  }
}

const int = (random: Random, min: number, max: number): number => min + Math.floor(random() * (max - min + 1));
const oneOf = <T>(random: Random, values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
const digits = (random: Random, n: number): string => Array.from({ length: n }, () => String(int(random, 0, 9))).join('');

// ---------------------------------------------------------------------------------------------------------------
// Planted values
// ---------------------------------------------------------------------------------------------------------------

/** The Luhn check digit for `body` (the digits before it). */
function luhnCheckDigit(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = body.charCodeAt(body.length - 1 - i) - 48;
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

/** Luhn-valid digits of a card number: 13 to 19 of them, starting as real issuers do. */
function cardDigits(random: Random, length = oneOf(random, [13, 14, 15, 16, 16, 16, 17, 18, 19])): string {
  const prefix = oneOf(random, ['4', '51', '55', '2221', '34', '37', '6011', '65', '35', '62']);
  const body = prefix + digits(random, length - 1 - prefix.length);
  return body + String(luhnCheckDigit(body));
}

/** A card written in a format the card detector promises: at most one space or dash between digits. */
function cardText(random: Random): string {
  const format = oneOf(random, ['plain', 'spaced', 'dashed', 'amex', 'mixed'] as const);
  const d = format === 'amex' ? cardDigits(random, 15) : cardDigits(random);
  switch (format) {
    case 'plain': return d;
    case 'spaced': return d.match(/.{1,4}/g)!.join(' ');
    case 'dashed': return d.match(/.{1,4}/g)!.join('-');
    case 'amex': { const sep = oneOf(random, [' ', '-']); return `${d.slice(0, 4)}${sep}${d.slice(4, 10)}${sep}${d.slice(10)}`; }
    case 'mixed': return [...d].map((c, i) => (i === 0 ? c : oneOf(random, ['', '', '', ' ', '-']) + c)).join('');
  }
}

function emailText(random: Random): string {
  const local = Array.from({ length: int(random, 1, 12) }, () => oneOf(random, [...'abcdefghijklmnopqrstuvwxyzABCXYZ0123456789', '.', '_', '%', '+', '-'])).join('');
  const label = () => Array.from({ length: int(random, 1, 10) }, () => oneOf(random, [...'abcdefghijklmnopqrstuvwxyz0123456789-'])).join('');
  const labels = Array.from({ length: int(random, 1, 3) }, label);
  const tld = Array.from({ length: int(random, 2, 6) }, () => oneOf(random, [...'abcdefghijklmnopqrstuvwxyzCOM'])).join('');
  return `${local}@${labels.join('.')}.${tld}`;
}

/** ISO 13616: check digits are 98 − (BBAN + country + "00" as digits) mod 97. */
function ibanText(random: Random): string {
  const country = oneOf(random, ['DE', 'FR', 'GB', 'NL', 'ES', 'IT', 'CH', 'BE', 'PL', 'SE', 'NO', 'MT']);
  const alphabet = random() < 0.5 ? '0123456789' : '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const bban = Array.from({ length: int(random, 11, 30) }, () => oneOf(random, [...alphabet])).join('');
  let remainder = 0;
  for (const ch of bban + country + '00') {
    const value = ch >= 'A' ? String(ch.charCodeAt(0) - 55) : ch;
    for (const digit of value) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  const iban = country + String(98 - remainder).padStart(2, '0') + bban;
  return random() < 0.5 ? iban : iban.match(/.{1,4}/g)!.join(' ');
}

/** Area 001–899 but not 666, group 01–99, serial 0001–9999: the numbers the SSN detector accepts. */
function ssnText(random: Random): string {
  let area = int(random, 1, 899);
  if (area === 666) area = 667;
  return `${String(area).padStart(3, '0')}-${String(int(random, 1, 99)).padStart(2, '0')}-${String(int(random, 1, 9999)).padStart(4, '0')}`;
}

interface Planted {
  readonly text: string;
  /** Other spellings that must not appear either (a card's bare digits, an IBAN without spaces). */
  readonly forms: readonly string[];
}

function plant(random: Random): Planted {
  switch (oneOf(random, ['card', 'email', 'iban', 'ssn'] as const)) {
    case 'card': { const text = cardText(random); return { text, forms: [text, text.replace(/[ -]/g, '')] }; }
    case 'email': { const text = emailText(random); return { text, forms: [text] }; }
    case 'iban': { const text = ibanText(random); return { text, forms: [text, text.replace(/ /g, '')] }; }
    case 'ssn': { const text = ssnText(random); return { text, forms: [text] }; }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Random documents
// ---------------------------------------------------------------------------------------------------------------

/**
 * Filler text: letters, accents, CJK, emoji (surrogate pairs), RTL, non-ASCII digits, quotes and escapes. No ASCII
 * digits and no '@', so filler alone never holds anything a detector finds.
 */
const FILLER = [...'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'é', 'ü', 'ß', 'ñ', 'Ω', 'ж', '漢', '字', 'カ', '한', 'ع', 'ש', '٣', '１', '😀', '🧾', '\u00a0', '"', '\\', '\n', '\t', '/', '<', '>', '&', '{', '}', '[', ']', '#'];
/** What stands between a planted value and its neighbours: never a space or dash alone (that would join digits), never part of an email or a word. */
const SEPARATORS = [', ', '; ', ' / ', ' (', ') ', ': ', '\n', ' · ', ' → ', '，', '|', ' "', '" ', ' <', '> '];

function filler(random: Random, max = 16): string {
  return Array.from({ length: int(random, 0, max) }, () => oneOf(random, FILLER)).join('');
}

function randomKey(random: Random): string {
  return random() < 0.6 ? oneOf(random, ['id', 'note', 'card', 'email', 'iban', 'ssn', 'customer', 'items', 'meta', 'memo', 'payee', 'ref']) : filler(random, 8);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Slot {
  /** The string as written into the document (with the plants). */
  readonly text: string;
  /** The same string as the rule must leave it: each plant replaced by the redaction marker. */
  readonly expected: string;
  readonly plants: Planted[];
}

/** A string value: plain filler, or one to three plants among filler, or a plant alone. */
function plantedString(random: Random): Slot {
  const plants: Planted[] = [];
  if (random() < 0.25) {
    const p = plant(random);
    return { text: p.text, expected: REDACTED, plants: [p] };
  }
  let text = filler(random);
  let expected = text;
  for (let i = int(random, 1, 3); i > 0; i--) {
    const p = plant(random);
    plants.push(p);
    const before = text === '' ? '' : oneOf(random, SEPARATORS);
    const tail = random() < 0.5 ? oneOf(random, SEPARATORS) + filler(random) : '';
    text += before + p.text + tail;
    expected += before + REDACTED + tail;
  }
  return { text, expected, plants };
}

interface Doc {
  readonly value: Json;
  /** The document as the rule must leave it. */
  readonly expected: Json;
  readonly plants: Planted[];
}

function randomNumber(random: Random): number {
  switch (int(random, 0, 3)) {
    case 0: return int(random, -1000, 1000);
    case 1: return Math.round(random() * 1e6) / 100;
    case 2: return (random() - 0.5) * 1e-3;
    default: return int(random, 0, 2 ** 31);
  }
}

/** A random JSON value of at most `depth` levels; `plantRate` of its strings carry PII. */
function randomDoc(random: Random, depth: number, plantRate: number): Doc {
  const roll = random();
  if (depth > 0 && roll < 0.3) {
    const keys = new Set<string>();
    const value: Record<string, Json> = {};
    const expected: Record<string, Json> = {};
    const plants: Planted[] = [];
    for (let i = int(random, 0, 6); i > 0; i--) {
      const key = randomKey(random);
      if (keys.has(key)) continue;
      keys.add(key);
      const child = randomDoc(random, depth - 1, plantRate);
      value[key] = child.value;
      expected[key] = child.expected;
      plants.push(...child.plants);
    }
    return { value, expected, plants };
  }
  if (depth > 0 && roll < 0.5) {
    const children = Array.from({ length: int(random, 0, 5) }, () => randomDoc(random, depth - 1, plantRate));
    return { value: children.map((c) => c.value), expected: children.map((c) => c.expected), plants: children.flatMap((c) => c.plants) };
  }
  if (roll < 0.75) {
    if (random() < plantRate) {
      const slot = plantedString(random);
      return { value: slot.text, expected: slot.expected, plants: slot.plants };
    }
    const text = filler(random, 24);
    return { value: text, expected: text, plants: [] };
  }
  if (roll < 0.8) {
    // A card kept as a JSON number (the detector reads safe integers that pass Luhn).
    let d = cardDigits(random, int(random, 13, 16));
    while (!Number.isSafeInteger(Number(d))) d = cardDigits(random, int(random, 13, 15));
    return { value: Number(d), expected: REDACTED, plants: [{ text: d, forms: [d] }] };
  }
  if (roll < 0.92) {
    const n = randomNumber(random);
    return { value: n, expected: n, plants: [] };
  }
  const v = oneOf(random, [true, false, null]);
  return { value: v, expected: v, plants: [] };
}

/** A document with at least one plant, often at the top level as a JSON object (what most topics carry). */
function plantedDoc(random: Random): Doc {
  for (;;) {
    const doc = randomDoc(random, int(random, 1, 5), 0.4);
    if (doc.plants.length > 0) return doc;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Batches and Fetch responses
// ---------------------------------------------------------------------------------------------------------------

const FETCH = 1;
const CODECS: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const analyst: Principal = { subject: 'ann', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' };
const policy = compilePolicy(configSchema.parse({
  rules: [
    { name: 'mask-payments', match: { group: 'analysts', kafka: { topic: 'payments' } }, mask: { detectors: ['card', 'email', 'iban', 'us-ssn'] } },
    { name: 'mask-notes', match: { group: 'analysts', kafka: { topic: 'notes' } }, mask: { detectors: ['card', 'email', 'iban', 'us-ssn'], onUndecodable: 'pass' } },
  ],
}).rules);
const plansFor = (topic: string): readonly NamedMaskPlan[] => policy.masks(analyst, { kind: 'kafka', api: 'Fetch', operation: 'consume', topic });

function batchHeader(random: Random, baseOffset: bigint, compression: Compression, count: number): BatchHeader {
  return {
    baseOffset, batchLength: 0, partitionLeaderEpoch: int(random, 0, 5), magic: 2, crc: 0,
    attributes: random() < 0.2 ? ATTR_TIMESTAMP_TYPE : 0, compression, isTransactional: false, isControl: false,
    lastOffsetDelta: count - 1, baseTimestamp: 1_700_000_000_000n, maxTimestamp: 1_700_000_000_000n + BigInt(count),
    producerId: random() < 0.5 ? -1n : BigInt(int(random, 0, 1e6)), producerEpoch: random() < 0.5 ? -1 : int(random, 0, 10),
    baseSequence: random() < 0.5 ? -1 : int(random, 0, 1e6), recordCount: count,
  };
}

/** `values` cut into batches of random sizes, each with a random codec; offsets continue across batches. */
function randomBatches(random: Random, values: ReadonlyArray<{ value: Buffer | null; key: Buffer | null; headers: RecordHeader[] }>): Buffer {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset < values.length) {
    const count = Math.min(values.length - offset, int(random, 1, 6));
    const records: KafkaRecord[] = values.slice(offset, offset + count).map((v, i) => ({ attributes: 0, timestampDelta: BigInt(i), offsetDelta: i, ...v }));
    out.push(encodeBatch(batchHeader(random, BigInt(1000 + offset), oneOf(random, CODECS), count), records));
    offset += count;
  }
  return Buffer.concat(out);
}

function fetchResponse(topics: ReadonlyArray<{ topic: string; records: Buffer }>): Buffer {
  return encodeResponse({ correlationId: 7, taggedFields: [] }, FETCH, 12, {
    throttleTimeMs: 0, errorCode: 0, sessionId: 0,
    responses: topics.map(({ topic, records }) => ({
      topic,
      partitions: [{ partitionIndex: 0, errorCode: 0, highWatermark: 5000n, lastStableOffset: 5000n, logStartOffset: 0n, abortedTransactions: null, preferredReadReplica: -1, records }],
    })),
  });
}

function partitionOf(frame: Buffer, topic: string) {
  return decodeResponse(frame, FETCH, 12).body.responses.find((t) => t.topic === topic)!.partitions[0]!;
}

/** Every record of a partition's records field, decoded (no partial batch allowed). */
function recordsIn(records: Buffer): KafkaRecord[] {
  const { batches, partial } = splitBatches(records);
  assert.equal(partial, null, 'no partial batch');
  return batches.flatMap((b) => decodeBatch(b).records);
}

function assertNoPlant(text: string, plants: readonly Planted[], where: string): void {
  for (const p of plants) {
    for (const form of p.forms) {
      assert.ok(!text.includes(form), `${where}: planted ${JSON.stringify(p.text)} left as ${JSON.stringify(form)} in ${JSON.stringify(text)}`);
    }
  }
}

describe('Fetch masking properties', () => {
  it('no planted card, email, IBAN or SSN survives in any record, whatever the codec and batch split; the rest of each document is unchanged', () => {
    bounded(150, (random) => {
      const docs = Array.from({ length: int(random, 1, 20) }, () => plantedDoc(random));
      // Free text (not JSON): a bare run of digits would be a JSON number, which is the JSON case.
      const notes = Array.from({ length: int(random, 0, 6) }, () => {
        const slot = plantedString(random);
        return { ...slot, text: `note: ${slot.text}`, expected: `note: ${slot.expected}` };
      });
      const untouchedValues = Array.from({ length: int(random, 1, 8) }, () => ({ value: Buffer.from(JSON.stringify(plantedDoc(random).value)), key: null, headers: [] }));
      const payments = randomBatches(random, docs.map((d, i) => ({
        value: Buffer.from(JSON.stringify(d.value)),
        key: random() < 0.5 ? null : Buffer.from(`k${i}`),
        headers: random() < 0.3 ? [{ key: 'trace', value: Buffer.from(filler(random)) }] : [],
      })));
      const notesRecords = notes.length === 0 ? Buffer.alloc(0) : randomBatches(random, notes.map((n) => ({ value: Buffer.from(n.text), key: null, headers: [] })));
      const orders = randomBatches(random, untouchedValues);
      const topics = [{ topic: 'payments', records: payments }, { topic: 'orders', records: orders }, { topic: 'notes', records: notesRecords }];
      for (let i = topics.length - 1; i > 0; i--) {
        const j = int(random, 0, i);
        [topics[i], topics[j]] = [topics[j]!, topics[i]!];
      }
      const frame = fetchResponse(topics);

      const result = maskFetchResponse(frame, 12, plansFor, {});
      assert.deepEqual(result.failedPartitions, []);
      assert.equal(result.droppedPartialBatches, 0);

      const masked = recordsIn(partitionOf(result.frame, 'payments').records!);
      assert.equal(masked.length, docs.length, 'every payments record comes back');
      const allPlants = [...docs.flatMap((d) => d.plants), ...notes.flatMap((n) => n.plants)];
      masked.forEach((record, i) => {
        const text = record.value!.toString('utf8');
        assertNoPlant(text, allPlants, `payments record ${i}`);
        assert.deepEqual(JSON.parse(text), docs[i]!.expected, `payments record ${i}: only the planted values are replaced`);
      });

      const maskedNotes = notes.length === 0 ? [] : recordsIn(partitionOf(result.frame, 'notes').records!);
      assert.equal(maskedNotes.length, notes.length);
      maskedNotes.forEach((record, i) => {
        const text = record.value!.toString('utf8');
        assertNoPlant(text, allPlants, `notes record ${i}`);
        assert.equal(text, notes[i]!.expected, `notes record ${i}: free text masked in place`);
      });

      assert.ok(partitionOf(result.frame, 'orders').records!.equals(orders), 'a topic without rules keeps its exact bytes');
    });
  });

  it('record offsets, keys and headers are kept when values are masked', () => {
    bounded(60, (random) => {
      const docs = Array.from({ length: int(random, 1, 30) }, () => plantedDoc(random));
      const inputs = docs.map((d, i) => ({ value: Buffer.from(JSON.stringify(d.value)), key: Buffer.from(`key-${i}`), headers: [{ key: 'n', value: Buffer.from(String(i)) }] }));
      const records = randomBatches(random, inputs);
      const result = maskFetchResponse(fetchResponse([{ topic: 'payments', records }]), 12, plansFor, {});
      const { batches } = splitBatches(partitionOf(result.frame, 'payments').records!);
      const before = splitBatches(records).batches.map((b) => decodeBatch(b));
      assert.equal(batches.length, before.length, 'one output batch per input batch');
      let i = 0;
      batches.forEach((b, n) => {
        const decoded = decodeBatch(b);
        assert.equal(decoded.header.baseOffset, before[n]!.header.baseOffset);
        assert.equal(decoded.header.compression, before[n]!.header.compression, 'a masked batch keeps its codec');
        assert.equal(decoded.header.attributes, before[n]!.header.attributes);
        for (const r of decoded.records) {
          assert.equal(r.key!.toString(), `key-${i}`);
          assert.deepEqual(r.headers.map((h) => [h.key, h.value!.toString()]), [['n', String(i)]]);
          i++;
        }
      });
      assert.equal(i, docs.length);
    });
  });

  it('a response for a principal with no rule on any topic is the broker\'s frame itself', () => {
    bounded(40, (random) => {
      const records = randomBatches(random, Array.from({ length: int(random, 1, 10) }, () => ({ value: Buffer.from(JSON.stringify(plantedDoc(random).value)), key: null, headers: [] })));
      const frame = fetchResponse([{ topic: oneOf(random, ['orders', 'payments-archive', 'analytics']), records }]);
      const result = maskFetchResponse(frame, 12, plansFor, {});
      assert.equal(result.frame, frame);
      assert.equal(result.maskedRecords, 0);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Batch encode/decode
// ---------------------------------------------------------------------------------------------------------------

function randomBytes(random: Random, max: number): Buffer {
  const kind = int(random, 0, 3);
  if (kind === 0) return Buffer.from(Array.from({ length: int(random, 0, max) }, () => int(random, 0, 255)));
  if (kind === 1) return Buffer.from(JSON.stringify(randomDoc(random, 3, 0.3).value));
  if (kind === 2) return Buffer.from(filler(random, max), 'utf8');
  // Compressible: long runs.
  return Buffer.alloc(int(random, 0, max * 20), oneOf(random, ['a', 'xyz', '\u0000', '漢']));
}

function randomRecord(random: Random, offsetDelta: number): KafkaRecord {
  return {
    attributes: 0,
    timestampDelta: random() < 0.8 ? BigInt(int(random, 0, 10_000)) : BigInt.asIntN(64, BigInt(int(random, 0, 2 ** 31)) * BigInt(int(random, 0, 2 ** 31)) * (random() < 0.5 ? -1n : 1n)),
    offsetDelta,
    key: random() < 0.3 ? null : randomBytes(random, 40),
    value: random() < 0.1 ? null : randomBytes(random, 300),
    headers: Array.from({ length: int(random, 0, 4) }, () => ({ key: filler(random, 10), value: random() < 0.2 ? null : randomBytes(random, 30) })),
  };
}

function randomHeader(random: Random, compression: Compression, count: number): BatchHeader {
  const attributes = (random() < 0.3 ? ATTR_TIMESTAMP_TYPE : 0) | (random() < 0.3 ? ATTR_TRANSACTIONAL : 0);
  return {
    baseOffset: BigInt(int(random, 0, 2 ** 31)) * BigInt(int(random, 1, 2 ** 20)),
    batchLength: 0, partitionLeaderEpoch: int(random, -1, 2 ** 31 - 1), magic: 2, crc: 0, attributes, compression,
    isTransactional: (attributes & ATTR_TRANSACTIONAL) !== 0, isControl: false, lastOffsetDelta: Math.max(0, count - 1),
    baseTimestamp: BigInt(int(random, 0, 2 ** 31)) * 1000n, maxTimestamp: BigInt(int(random, 0, 2 ** 31)) * 1000n,
    producerId: random() < 0.5 ? -1n : BigInt(int(random, 0, 2 ** 31)) * 7n, producerEpoch: int(random, -1, 32767),
    baseSequence: int(random, -1, 2 ** 31 - 1), recordCount: count,
  };
}

const bytesOrNull = (b: Buffer | null) => (b === null ? null : [...b]);
const plainRecord = (r: KafkaRecord) => ({
  attributes: r.attributes, timestampDelta: r.timestampDelta, offsetDelta: r.offsetDelta, key: bytesOrNull(r.key), value: bytesOrNull(r.value),
  headers: r.headers.map((h) => ({ key: h.key, value: bytesOrNull(h.value) })),
});

describe('record batch properties', () => {
  it('decode(encode(batch)) gives the records and header back for every codec; encoding is deterministic', () => {
    bounded(200, (random) => {
      const compression = oneOf(random, CODECS);
      const count = int(random, 0, 25);
      const records = Array.from({ length: count }, (_, i) => randomRecord(random, i));
      const header = randomHeader(random, compression, count);
      const encoded = encodeBatch(header, records);
      const decoded = decodeBatch(encoded);
      assert.deepEqual(decoded.records.map(plainRecord), records.map(plainRecord));
      const { crc: _crc, batchLength, ...rest } = decoded.header;
      const { crc: _crc0, batchLength: _length0, ...given } = header;
      assert.equal(batchLength, encoded.length - 12);
      assert.deepEqual(rest, { ...given, attributes: header.attributes | CODECS.indexOf(compression) }, 'the header as given, compression bits from its codec');
      assert.ok(encodeBatch(decoded.header, decoded.records).equals(encoded), 're-encoding the decoded batch gives the same bytes');
    });
  });

  it('batches concatenated into a records field split back at their boundaries, and a cut leaves the whole ones intact', () => {
    bounded(100, (random) => {
      const batches = Array.from({ length: int(random, 1, 6) }, () => {
        const count = int(random, 1, 8);
        return encodeBatch(randomHeader(random, oneOf(random, CODECS), count), Array.from({ length: count }, (_, i) => randomRecord(random, i)));
      });
      const all = Buffer.concat(batches);
      const split = splitBatches(all);
      assert.equal(split.partial, null);
      assert.deepEqual(split.batches.map((b) => [...b]), batches.map((b) => [...b]));
      const cut = int(random, 0, all.length - 1);
      const partial = splitBatches(all.subarray(0, cut));
      let whole = 0;
      let end = 0;
      while (whole < batches.length && end + batches[whole]!.length <= cut) end += batches[whole++]!.length;
      assert.equal(partial.batches.length, whole);
      assert.equal(partial.partial === null ? 0 : partial.partial.length, cut - end);
    });
  });
});
