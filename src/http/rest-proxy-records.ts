/**
 * @module http/rest-proxy-records
 * Records in Kafka REST Proxy bodies, read the way the wire path reads them. Produced records (request bodies) become
 * `InspectedRecord`s holding the key, value and header bytes the proxy writes to Kafka, so `reject` rules judge them
 * as they judge a wire Produce. Consumed records (v2 `GET …/records` responses) are masked per record with its topic's
 * plans, as Kafka Fetch masking does, and records of topics the principal may not consume are left out.
 *
 * Bytes the proxy writes, by embedded type (Confluent's serializers):
 * - BINARY: the base64 `data` decoded; STRING: `data` as UTF-8; JSON: `data` serialized compactly;
 * - AVRO, PROTOBUF, JSONSCHEMA, or no type (the subject's latest schema): Schema Registry formats, which tollgate cannot
 *   encode without the registry; their JSON `data` is inspected instead. That is more than a wire Produce shows (its
 *   Avro or Protobuf bytes are opaque to field and detector rules), and `maxRecordBytes` measures the JSON.
 * JSON is serialized with number literals as written (Jackson keeps integers exact, and so does this; JSON.parse would
 * round card numbers above 2^53) and strings re-escaped as JSON.stringify does, as Jackson does.
 */
import type { KafkaAction } from '../core/action.ts';
import type { InspectedRecord } from '../policy/reject.ts';
import type { NamedMaskPlan } from '../policy/engine.ts';
import type { MaskContext } from '../masking/strategies.ts';
import { MaskingFailure, maskJsonUnit, maskPayload, type MaskTally } from '../masking/units.ts';
import { arrayElements, objectMembers, skipWhitespace } from './json-spans.ts';
import { RestProxyBodyError, withoutElements, type RestProxyKafkaRequest } from './rest-proxy.ts';

/** The embedded formats of the v2 API, named by the content type. */
export type EmbeddedFormat = 'binary' | 'json' | 'avro' | 'jsonschema' | 'protobuf';

const EMBEDDED = /^application\/vnd\.kafka(?:\.(binary|json|avro|jsonschema|protobuf))?\.v2\+json$/;

/**
 * `application/vnd.kafka.<format>.v2+json` → the format; `application/vnd.kafka.v2+json` (no format) is binary, as the
 * proxy answers record reads. Undefined for anything else.
 */
export function embeddedFormat(contentType: string | undefined): EmbeddedFormat | undefined {
  const m = EMBEDDED.exec((contentType ?? '').split(';', 1)[0]!.trim().toLowerCase());
  return m === null ? undefined : ((m[1] ?? 'binary') as EmbeddedFormat);
}

/** How a produce body holds its records. */
export type ProduceFormat =
  /** v3 `records`: one record per JSON object (a stream of them); v3 `records:batch`: `{"entries": [record…]}`. */
  | { readonly api: 'v3'; readonly batch: boolean }
  /** v2: `{"records": [{key, value, partition}…]}`, key and value in the content type's embedded format. */
  | { readonly api: 'v2'; readonly embedded: EmbeddedFormat };

/** The format of a produce request's body; throws RestProxyBodyError for a v2 content type naming no format. */
export function produceFormat(produce: NonNullable<RestProxyKafkaRequest['produce']>, contentType: string | undefined): ProduceFormat {
  if (produce !== 'v2') return { api: 'v3', batch: produce === 'v3-batch' };
  const embedded = embeddedFormat(contentType);
  if (embedded === undefined) throw new RestProxyBodyError(`expected a v2 produce content type (application/vnd.kafka.<binary|json|avro|jsonschema|protobuf>.v2+json), got ${JSON.stringify(contentType ?? '')}`);
  return { api: 'v2', embedded };
}

// ---------------------------------------------------------------------------------------------------------------
// Produced records
// ---------------------------------------------------------------------------------------------------------------

/** `JSON.rawJSON` (Node 21+), not yet in TypeScript's lib. */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** Parses keeping every number's literal, so that serializing gives the very digits the client sent. */
function parseExact(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' && context?.source !== undefined ? rawJSON(context.source) : value);
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

function base64(value: unknown, where: string): Buffer {
  if (typeof value !== 'string') throw new RestProxyBodyError(`${where}: expected a base64 string, got ${JSON.stringify(value)}`);
  return Buffer.from(value, 'base64');
}

const SCHEMA_TYPES = new Set(['AVRO', 'JSONSCHEMA', 'PROTOBUF']);

/** A v3 key or value (`{type, data, schema…}`) as the bytes the proxy writes. */
function v3Data(value: unknown, where: string): Buffer | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value)) throw new RestProxyBodyError(`${where}: expected an object with type and data`);
  const { type, data } = value;
  if (data === undefined || data === null) return null;
  if (type !== undefined && type !== null && typeof type !== 'string') throw new RestProxyBodyError(`${where}.type: expected a string`);
  const t = typeof type === 'string' ? type.toUpperCase() : undefined;
  if (t === 'BINARY') return base64(data, `${where}.data`);
  if (t === 'STRING') {
    if (typeof data !== 'string') throw new RestProxyBodyError(`${where}.data: expected a string for type STRING`);
    return Buffer.from(data, 'utf8');
  }
  if (t === 'JSON' || t === undefined || SCHEMA_TYPES.has(t)) return Buffer.from(JSON.stringify(data), 'utf8');
  throw new RestProxyBodyError(`${where}.type: expected BINARY, JSON, STRING, AVRO, JSONSCHEMA or PROTOBUF, got ${JSON.stringify(type)}`);
}

function v3Record(record: unknown, where: string): InspectedRecord {
  if (!isObject(record)) throw new RestProxyBodyError(`${where}: expected a record object`);
  const headers = record['headers'] ?? [];
  if (!Array.isArray(headers)) throw new RestProxyBodyError(`${where}.headers: expected an array`);
  return {
    key: v3Data(record['key'], `${where}.key`),
    value: v3Data(record['value'], `${where}.value`),
    headers: headers.map((header: unknown, i) => {
      const at = `${where}.headers[${i}]`;
      if (!isObject(header) || typeof header['name'] !== 'string') throw new RestProxyBodyError(`${at}: expected {name, value}`);
      const value = header['value'];
      return { key: header['name'], value: value === undefined || value === null ? null : base64(value, `${at}.value`) };
    }),
  };
}

function v2Data(value: unknown, embedded: EmbeddedFormat, where: string): Buffer | null {
  if (value === undefined || value === null) return null;
  return embedded === 'binary' ? base64(value, where) : Buffer.from(JSON.stringify(value), 'utf8');
}

/**
 * The records of one produce body unit: for v3 a record object (one unit of the stream, src/masking/json-sequence.ts)
 * or a whole batch, for v2 the whole body. Throws RestProxyBodyError, naming the record and field, for a unit that is
 * not what the proxy accepts: nothing of such a request would be written.
 */
export function inspectedRecords(unit: string, format: ProduceFormat): InspectedRecord[] {
  let doc: unknown;
  try {
    doc = parseExact(unit);
  } catch (err) {
    throw new RestProxyBodyError(`expected a JSON produce body: ${(err as Error).message}`);
  }
  if (format.api === 'v3') {
    if (!format.batch) return [v3Record(doc, 'record')];
    const entries = isObject(doc) ? doc['entries'] : undefined;
    if (!Array.isArray(entries)) throw new RestProxyBodyError('expected {"entries": [records]}');
    return entries.map((entry, i) => v3Record(entry, `entries[${i}]`));
  }
  const records = isObject(doc) ? doc['records'] : undefined;
  if (!Array.isArray(records)) throw new RestProxyBodyError('expected {"records": [records]}');
  return records.map((record: unknown, i) => {
    if (!isObject(record)) throw new RestProxyBodyError(`records[${i}]: expected a record object`);
    return { key: v2Data(record['key'], format.embedded, `records[${i}].key`), value: v2Data(record['value'], format.embedded, `records[${i}].value`), headers: [] };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Consumed records
// ---------------------------------------------------------------------------------------------------------------

/** What a record read from `topic` is judged as: Fetch, consume on the topic, as on the wire. */
export function consumedRecordAction(topic: string): KafkaAction {
  return { kind: 'kafka', api: 'Fetch', operation: 'consume', topic };
}

export interface ConsumedRecords {
  /** The response body: `text` itself when nothing changed. */
  readonly text: string;
  /** Records whose key or value changed. */
  readonly maskedRecords: number;
  /** Records left out, and their topics (each once). */
  readonly droppedRecords: number;
  readonly droppedTopics: readonly string[];
}

interface TopicPlans {
  readonly values: readonly NamedMaskPlan[];
  readonly keys: readonly NamedMaskPlan[];
}

/** Keys are often plain strings (an id): read as text whatever the rule says of undecodable values, as Fetch does. */
function topicPlans(plans: readonly NamedMaskPlan[]): TopicPlans {
  return { values: plans, keys: plans.filter((p) => p.keys).map((p) => (p.onUndecodable === 'pass' ? p : { ...p, onUndecodable: 'pass' })) };
}

/** One embedded key or value (its JSON text in the response) masked; the same text when nothing changed. */
function maskEmbedded(raw: string, format: EmbeddedFormat, plans: readonly NamedMaskPlan[], ctx: MaskContext, tally: MaskTally, where: string): string {
  if (plans.length === 0 || raw === 'null') return raw;
  if (format !== 'binary') return maskJsonUnit(raw, plans, ctx, tally);
  const encoded: unknown = JSON.parse(raw);
  if (typeof encoded !== 'string') throw new MaskingFailure(`${where}: expected a base64 string in a binary records response`);
  const bytes = Buffer.from(encoded, 'base64');
  const masked = maskPayload(bytes, plans, ctx, tally);
  return masked === bytes ? raw : JSON.stringify(masked.toString('base64'));
}

/**
 * Masks a v2 records response (`[{topic, key, value, partition, offset}…]` in `format`): each record's value with its
 * topic's plans, and its key with the plans that say `keys`; JSON formats as JSON, binary decoded from base64, masked
 * as Fetch masks a payload (JSON, else text, else the rules' `onUndecodable`), and encoded again. Records of topics
 * `consumable` refuses are left out. What nothing changes keeps its bytes.
 *
 * Throws MaskingFailure for a body that is not an array of records, and for a rule whose `onUndecodable` is `fail`:
 * the caller fails the response rather than let it through.
 */
export function maskConsumedRecords(
  text: string,
  format: EmbeddedFormat,
  plansForTopic: (topic: string) => readonly NamedMaskPlan[],
  ctx: MaskContext,
  tally: MaskTally,
  consumable: (topic: string) => boolean = () => true,
): ConsumedRecords {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new MaskingFailure(`expected a JSON array of records: ${(err as Error).message}`);
  }
  if (!Array.isArray(doc)) throw new MaskingFailure('expected a JSON array of records');
  const start = skipWhitespace(text, 0);
  const spans = arrayElements(text, start);
  const byTopic = new Map<string, TopicPlans | null>();
  const dropped = new Set<string>();
  const keep: boolean[] = [];
  const replaced = new Map<number, string>();
  let maskedRecords = 0;
  let droppedRecords = 0;
  spans.forEach((span, i) => {
    const record: unknown = doc[i];
    const topic = isObject(record) ? record['topic'] : undefined;
    if (typeof topic !== 'string') throw new MaskingFailure(`record ${i}: expected an object with a topic`);
    let plans = byTopic.get(topic);
    if (plans === undefined) {
      const rules = consumable(topic) ? plansForTopic(topic) : undefined;
      plans = rules === undefined ? null : topicPlans(rules);
      byTopic.set(topic, plans);
    }
    if (plans === null) {
      keep.push(false);
      dropped.add(topic);
      droppedRecords++;
      return;
    }
    keep.push(true);
    if (plans.values.length === 0) return;
    const members = objectMembers(text, span.start);
    let out = '';
    let at = span.start;
    for (const [name, fieldPlans] of [['key', plans.keys], ['value', plans.values]] as const) {
      const field = members.get(name);
      if (field === undefined) continue;
      const raw = text.slice(field.start, field.end);
      const masked = maskEmbedded(raw, format, fieldPlans, ctx, tally, `record ${i} (${topic}) ${name}`);
      if (masked === raw) continue;
      out += text.slice(at, field.start) + masked;
      at = field.end;
    }
    if (at === span.start) return;
    replaced.set(i, out + text.slice(at, span.end));
    maskedRecords++;
  });
  if (replaced.size === 0 && droppedRecords === 0) return { text, maskedRecords, droppedRecords, droppedTopics: [] };
  // Masked records first (their spans index the original text), then the dropped ones out of the result.
  let masked = '';
  let at = 0;
  spans.forEach((span, i) => {
    const replacement = replaced.get(i);
    if (replacement === undefined) return;
    masked += text.slice(at, span.start) + replacement;
    at = span.end;
  });
  masked += text.slice(at);
  if (droppedRecords > 0) {
    const arrayStart = skipWhitespace(masked, 0);
    const arrayEnd = masked.lastIndexOf(']') + 1;
    masked = masked.slice(0, arrayStart) + withoutElements(masked, { start: arrayStart, end: arrayEnd }, keep) + masked.slice(arrayEnd);
  }
  return { text: masked, maskedRecords, droppedRecords, droppedTopics: [...dropped] };
}
