/**
 * @module kafka/protocol/codec/schema
 * The runtime behind the generated codecs (../generated/): a message is described as data — structs of fields, each
 * with the version ranges of Kafka's JSON specs — and one interpreter decodes and encodes every API. The generated
 * files hold only those descriptions, typed interfaces and one-line `decode…`/`encode…` functions, which keeps
 * them small and puts every wire rule in one place, tested once.
 *
 * Per struct and version the interpreter computes a plan once (which fields are present, nullable, compact,
 * tagged) and caches it, so decoding loops over a precomputed list instead of testing version ranges per field.
 *
 * Wire rules (Kafka's message specs, common/message/README.md):
 * - A version is flexible from the message's `flexibleVersions` on: strings, bytes and arrays take the compact
 *   forms (UNSIGNED_VARINT length + 1, 0 for null) and every struct ends with a tagged-field section. A field's
 *   own `flexibleVersions` overrides the message's (the request header's client id stays a non-compact string).
 * - A nullable struct is preceded by an INT8 presence marker (-1 null, 1 present); inside a tagged field by an
 *   UNSIGNED_VARINT (0 null, 1 present) (KIP-893).
 * - A tagged field is written as UNSIGNED_VARINT tag, UNSIGNED_VARINT size, then its value in flexible form;
 *   sections are in ascending tag order.
 *
 * Decoded values (the shape of the generated interfaces):
 * - Field names are the spec's names with the first letter in lower case (`TopicData` → `topicData`,
 *   `KRaftVersionFeature` → `kRaftVersionFeature`), as Kafka's own Java accessors name them.
 * - A regular field absent from the decoded version holds its default (the spec's `default`, else 0, 0n, false,
 *   '', the zero uuid, an empty Buffer, null for records, [] for arrays, a default struct).
 * - A tagged field is an optional property: present exactly when the frame carried it, so re-encoding writes the
 *   same tags. Absent means the spec default (noted in the field's doc comment).
 * - Tagged fields the spec does not know (or not in this version) are kept in `_unknownTaggedFields` as raw
 *   `{tag, data}` views and written back in tag order: an untouched message re-encodes byte for byte.
 *
 * Encoding refuses (EncodeError) what Kafka's serializer refuses: null where the version is not nullable, a value
 * that does not fit its type, and a field the version lacks set to a non-default value unless it is `ignorable`.
 */
import { EncodeError } from './errors.ts';
import { Reader } from './reader.ts';
import type { TaggedField } from './reader.ts';
import { Writer } from './writer.ts';

export type { TaggedField } from './reader.ts';

/** A uuid in Kafka's text form: 16 bytes as unpadded base64url (22 characters), e.g. `AAAAAAAAAAAAAAAAAAAAAA`. */
export type Uuid = string;

/** The all-zero uuid: Kafka's "no uuid" (uuid fields are never null). */
export const ZERO_UUID: Uuid = 'AAAAAAAAAAAAAAAAAAAAAA';

const EMPTY_BYTES: Buffer = Buffer.alloc(0);

export type PrimitiveType =
  | 'bool'
  | 'int8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'float64'
  | 'string'
  | 'uuid'
  | 'bytes'
  | 'records';

export interface ArrayType {
  readonly kind: 'array';
  readonly element: FieldType;
}

export type FieldType = PrimitiveType | ArrayType | StructSchema;

/** An inclusive range of versions; `max` is Infinity for an open range (`3+`). */
export interface VersionRange {
  readonly min: number;
  readonly max: number;
}

/** `3+`, `0-12`, `5` or `none` (null). */
export function parseVersions(text: string): VersionRange | null {
  if (text === 'none') return null;
  const match = /^(\d+)(?:(\+)|-(\d+))?$/.exec(text);
  if (match === null) throw new Error(`invalid version range ${JSON.stringify(text)}`);
  const min = Number(match[1]);
  const max = match[2] !== undefined ? Infinity : match[3] !== undefined ? Number(match[3]) : min;
  if (max < min) throw new Error(`invalid version range ${JSON.stringify(text)}`);
  return { min, max };
}

export function inRange(range: VersionRange | null, version: number): boolean {
  return range !== null && version >= range.min && version <= range.max;
}

export function formatVersions(range: VersionRange | null): string {
  if (range === null) return 'none';
  if (range.max === Infinity) return `${range.min}+`;
  return range.min === range.max ? `${range.min}` : `${range.min}-${range.max}`;
}

/** A default from the spec, already typed: a number, a bigint (int64), a boolean, a string or null. */
export type DefaultValue = number | bigint | boolean | string | null;

export interface FieldSchema {
  /** The property name: the spec's name with a lower-case first letter. */
  readonly name: string;
  readonly type: FieldType;
  readonly versions: VersionRange | null;
  readonly nullableVersions: VersionRange | null;
  readonly tag: number | undefined;
  readonly taggedVersions: VersionRange | null;
  readonly ignorable: boolean;
  /** The field's own flexibleVersions (only strings use it); undefined: as the message. */
  readonly flexibleVersions: VersionRange | null | undefined;
  /** The spec's `default`, when it has one. */
  readonly default: DefaultValue | undefined;
}

/** Options of `f()`, spelled as in the spec: version ranges as text. */
export interface FieldOptions {
  readonly nullable?: string;
  readonly tag?: number;
  readonly tagged?: string;
  readonly ignorable?: boolean;
  readonly flexible?: string;
  readonly default?: DefaultValue;
}

/** Describes a field (used by the generated code). */
export function f(name: string, type: FieldType, versions: string, options: FieldOptions = {}): FieldSchema {
  return {
    name,
    type,
    versions: parseVersions(versions),
    nullableVersions: options.nullable === undefined ? null : parseVersions(options.nullable),
    tag: options.tag,
    taggedVersions: options.tagged === undefined ? null : parseVersions(options.tagged),
    ignorable: options.ignorable === true,
    flexibleVersions: options.flexible === undefined ? undefined : parseVersions(options.flexible),
    default: options.default,
  };
}

export function arrayOf(element: FieldType): ArrayType {
  return { kind: 'array', element };
}

export interface StructSchema {
  readonly kind: 'struct';
  /** The spec's struct name (`TopicProduceData`), for error messages. */
  readonly name: string;
  readonly fields: readonly FieldSchema[];
  /** Plans by `version * 2 + flexible`, built on first use. */
  readonly plans: Array<Plan | undefined>;
}

export function struct(name: string, fields: readonly FieldSchema[]): StructSchema {
  return { kind: 'struct', name, fields, plans: [] };
}

/** A request, response or header: its top-level struct and the version facts of its spec. */
export interface MessageSchema<T> {
  /** The spec's name: `ProduceRequest`. */
  readonly name: string;
  readonly apiKey: number | undefined;
  readonly validVersions: VersionRange | null;
  /** First flexible version, or null when no version is. */
  readonly flexibleFrom: number | null;
  readonly struct: StructSchema;
  /** Never set: carries the decoded type for `decodeMessage`. */
  readonly decoded?: T;
}

export function message<T>(
  name: string,
  apiKey: number | undefined,
  validVersions: string,
  flexibleVersions: string,
  fields: readonly FieldSchema[],
): MessageSchema<T> {
  const flexible = parseVersions(flexibleVersions);
  if (flexible !== null && flexible.max !== Infinity) throw new Error(`${name}: flexibleVersions must be open-ended`);
  return { name, apiKey, validVersions: parseVersions(validVersions), flexibleFrom: flexible?.min ?? null, struct: struct(name, fields) };
}

export function isFlexible(schema: MessageSchema<unknown>, version: number): boolean {
  return schema.flexibleFrom !== null && version >= schema.flexibleFrom;
}

// ---------------------------------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------------------------------

const READ = 0;
const DEFAULT = 1;
const ABSENT_TAGGED = 2;

interface Step {
  readonly field: FieldSchema;
  /** READ: on the wire in this version; DEFAULT: a regular field this version lacks; ABSENT_TAGGED: likewise, tagged. */
  readonly kind: typeof READ | typeof DEFAULT | typeof ABSENT_TAGGED;
  readonly nullable: boolean;
  readonly compact: boolean;
  /** How array elements are read: like the field, never null. */
  readonly element: Step | undefined;
}

interface Plan {
  readonly flexible: boolean;
  /** Every field in spec order, except the ones tagged in this version. */
  readonly steps: readonly Step[];
  /** The fields tagged in this version, by ascending tag. */
  readonly tagged: readonly Step[];
  readonly byTag: ReadonlyMap<number, Step>;
}

function planFor(schema: StructSchema, version: number, flexible: boolean): Plan {
  const key = version * 2 + (flexible ? 1 : 0);
  const cached = schema.plans[key];
  if (cached !== undefined) return cached;
  const steps: Step[] = [];
  const tagged: Step[] = [];
  for (const field of schema.fields) {
    const compact = flexible && (field.flexibleVersions === undefined || inRange(field.flexibleVersions, version));
    const isTagged = flexible && field.tag !== undefined && inRange(field.taggedVersions, version);
    const present = inRange(field.versions, version);
    const kind = present ? READ : field.tag !== undefined ? ABSENT_TAGGED : DEFAULT;
    const nullable = inRange(field.nullableVersions, version);
    const element: Step | undefined =
      typeof field.type === 'object' && field.type.kind === 'array' ? { field, kind, nullable: false, compact, element: undefined } : undefined;
    const step: Step = { field, kind, nullable, compact, element };
    (present && isTagged ? tagged : steps).push(step);
  }
  tagged.sort((a, b) => a.field.tag! - b.field.tag!);
  const plan: Plan = { flexible, steps, tagged, byTag: new Map(tagged.map((step) => [step.field.tag!, step])) };
  schema.plans[key] = plan;
  return plan;
}

// ---------------------------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------------------------

/** The value a field holds when the decoded version lacks it: fresh arrays and structs, shared primitives. */
export function defaultOf(field: FieldSchema): unknown {
  if (field.default !== undefined) return field.default;
  return defaultOfType(field.type);
}

function defaultOfType(type: FieldType): unknown {
  switch (type) {
    case 'bool':
      return false;
    case 'int64':
      return 0n;
    case 'string':
      return '';
    case 'uuid':
      return ZERO_UUID;
    case 'bytes':
      return EMPTY_BYTES;
    case 'records':
      return null;
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'float64':
      return 0;
    default:
      return type.kind === 'array' ? [] : defaultStruct(type);
  }
}

/** A struct with every regular field at its default and no tagged fields. */
export function defaultStruct(schema: StructSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of schema.fields) if (field.tag === undefined) out[field.name] = defaultOf(field);
  return out;
}

/** True when `value` equals the field's default (undefined counts as the default). */
export function isDefault(field: FieldSchema, value: unknown): boolean {
  if (value === undefined) return true;
  const fallback = defaultOf(field);
  if (fallback === null || typeof fallback !== 'object') return value === fallback;
  if (Buffer.isBuffer(fallback)) return Buffer.isBuffer(value) && value.length === 0;
  if (Array.isArray(fallback)) return Array.isArray(value) && value.length === 0;
  if (typeof field.type !== 'object' || field.type.kind !== 'struct' || typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const unknownTags = record['_unknownTaggedFields'];
  if (Array.isArray(unknownTags) && unknownTags.length > 0) return false;
  return field.type.fields.every((sub) => isDefault(sub, record[sub.name]));
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------------------------

/**
 * Decodes a whole message body of `version` from the reader's offset (which ends after it). Throws
 * `FrameError('<section>_invalid')` for a version outside the spec's validVersions, and like every read on bad
 * bytes. Trailing bytes are the caller's business (the frame-level functions refuse them).
 */
export function decodeMessage<T>(reader: Reader, version: number, schema: MessageSchema<T>): T {
  if (!inRange(schema.validVersions, version)) {
    throw reader.invalid(schema.name, `version ${version} is outside the valid versions ${formatVersions(schema.validVersions)}`);
  }
  return decodeStruct(reader, version, schema.struct, isFlexible(schema, version)) as T;
}

function decodeStruct(reader: Reader, version: number, schema: StructSchema, flexible: boolean): Record<string, unknown> {
  const plan = planFor(schema, version, flexible);
  const out: Record<string, unknown> = {};
  for (const step of plan.steps) {
    if (step.kind === READ) out[step.field.name] = readValue(reader, version, step.field.type, step, plan, false);
    else if (step.kind === DEFAULT) out[step.field.name] = defaultOf(step.field);
  }
  if (flexible) readTaggedSection(reader, version, plan, out);
  return out;
}

function readTaggedSection(reader: Reader, version: number, plan: Plan, out: Record<string, unknown>): void {
  const count = reader.uvarint('tagged fields count');
  let unknown: TaggedField[] | undefined;
  for (let i = 0; i < count; i++) {
    const tag = reader.uvarint('tagged field tag');
    const size = reader.uvarint('tagged field size');
    const step = plan.byTag.get(tag);
    if (step === undefined) {
      (unknown ??= []).push({ tag, data: reader.view(size, `tagged field ${tag}`) });
      continue;
    }
    const name = step.field.name;
    reader.need(size, name);
    const end = reader.offset + size;
    // A reader that ends where the tagged field ends: its value cannot read into what follows.
    const bounded = end === reader.buf.length ? reader : new Reader(reader.buf.subarray(0, end), reader.offset, reader.section);
    out[name] = readValue(bounded, version, step.field.type, step, plan, true);
    if (bounded.offset !== end) throw bounded.invalid(name, `tagged field ${tag} declares ${size} bytes, its value took ${bounded.offset - end + size}`);
    reader.offset = end;
  }
  if (unknown !== undefined) out['_unknownTaggedFields'] = unknown;
}

function readValue(reader: Reader, version: number, type: FieldType, step: Step, plan: Plan, inTag: boolean): unknown {
  const name = step.field.name;
  switch (type) {
    case 'int8':
      return reader.int8(name);
    case 'int16':
      return reader.int16(name);
    case 'uint16':
      return reader.uint16(name);
    case 'int32':
      return reader.int32(name);
    case 'uint32':
      return reader.uint32(name);
    case 'int64':
      return reader.int64(name);
    case 'float64':
      return reader.float64(name);
    case 'bool':
      return reader.bool(name);
    case 'uuid':
      return reader.uuid(name);
    case 'string': {
      const value = reader.stringOrNull(name, step.compact);
      if (value === null && !step.nullable) throw reader.invalid(name, 'null in a version where the string is not nullable');
      return value;
    }
    case 'bytes':
    case 'records': {
      const value = reader.bytesOrNull(name, step.compact);
      if (value === null && !step.nullable) throw reader.invalid(name, `null in a version where the ${type} are not nullable`);
      return value;
    }
  }
  if (type.kind === 'array') {
    const count = reader.arrayLength(name, step.compact);
    if (count < 0) {
      if (!step.nullable) throw reader.invalid(name, 'null in a version where the array is not nullable');
      return null;
    }
    const element = step.element!;
    const items: unknown[] = [];
    for (let i = 0; i < count; i++) items.push(readValue(reader, version, type.element, element, plan, false));
    return items;
  }
  if (step.nullable) {
    const marker = inTag ? reader.uvarint(name) : reader.int8(name);
    if (inTag ? marker === 0 : marker < 0) return null;
  }
  return decodeStruct(reader, version, type, plan.flexible);
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------------------------

/** Writes a whole message body of `version`. Throws `EncodeError` naming the message, version and field path. */
export function encodeMessage<T>(writer: Writer, version: number, schema: MessageSchema<T>, value: T): void {
  const where = `${schema.name} v${version}`;
  if (!inRange(schema.validVersions, version)) {
    throw new EncodeError(where, `outside the valid versions ${formatVersions(schema.validVersions)}`);
  }
  try {
    encodeStruct(writer, version, schema.struct, isFlexible(schema, version), value as Record<string, unknown>);
  } catch (err) {
    if (err instanceof EncodeError) throw err.within(where, ': ');
    throw err;
  }
}

function encodeStruct(writer: Writer, version: number, schema: StructSchema, flexible: boolean, value: Record<string, unknown>): void {
  if (typeof value !== 'object' || value === null) throw new EncodeError('', `expected a ${schema.name} object, got ${String(value)}`);
  const plan = planFor(schema, version, flexible);
  for (const step of plan.steps) {
    const field = step.field;
    const fieldValue = value[field.name];
    try {
      if (step.kind === READ) {
        writeValue(writer, version, field.type, step, plan, fieldValue === undefined ? defaultOf(field) : fieldValue, false);
      } else if (!field.ignorable && !isDefault(field, fieldValue)) {
        throw new EncodeError('', `version ${version} has no such field, and it is set to a non-default value (not ignorable)`);
      }
    } catch (err) {
      if (err instanceof EncodeError) throw err.within(field.name);
      throw err;
    }
  }
  const unknown = value['_unknownTaggedFields'] as readonly TaggedField[] | undefined;
  if (flexible) writeTaggedSection(writer, version, plan, value, unknown);
  else if (unknown !== undefined && unknown.length > 0) {
    throw new EncodeError('_unknownTaggedFields', `version ${version} is not flexible and cannot carry tagged fields`);
  }
}

function writeTaggedSection(
  writer: Writer,
  version: number,
  plan: Plan,
  value: Record<string, unknown>,
  unknown: readonly TaggedField[] | undefined,
): void {
  const entries: TaggedField[] = [];
  for (const step of plan.tagged) {
    const fieldValue = value[step.field.name];
    if (fieldValue === undefined) continue;
    const data = new Writer(64);
    try {
      writeValue(data, version, step.field.type, step, plan, fieldValue, true);
    } catch (err) {
      if (err instanceof EncodeError) throw err.within(step.field.name);
      throw err;
    }
    entries.push({ tag: step.field.tag!, data: data.finish() });
  }
  if (unknown !== undefined && unknown.length > 0) {
    for (const field of unknown) {
      if (plan.byTag.has(field.tag)) throw new EncodeError('_unknownTaggedFields', `tag ${field.tag} is a known field of this version`);
      entries.push(field);
    }
    entries.sort((a, b) => a.tag - b.tag);
  }
  writer.uvarint(entries.length);
  for (const entry of entries) {
    writer.uvarint(entry.tag, '_unknownTaggedFields');
    writer.uvarint(entry.data.length);
    writer.raw(entry.data);
  }
}

function writeValue(writer: Writer, version: number, type: FieldType, step: Step, plan: Plan, value: unknown, inTag: boolean): void {
  switch (type) {
    case 'int8':
      return writer.int8(value as number, '');
    case 'int16':
      return writer.int16(value as number, '');
    case 'uint16':
      return writer.uint16(value as number, '');
    case 'int32':
      return writer.int32(value as number, '');
    case 'uint32':
      return writer.uint32(value as number, '');
    case 'int64':
      return writer.int64(value as bigint, '');
    case 'float64':
      return writer.float64(value as number, '');
    case 'bool':
      return writer.bool(value as boolean, '');
    case 'uuid':
      return writer.uuid(value as string, '');
    case 'string':
      if (value === null && !step.nullable) throw new EncodeError('', `null, but the string is not nullable in version ${version}`);
      return writer.stringOrNull(value as string | null, step.compact, '');
    case 'bytes':
    case 'records':
      if (value === null && !step.nullable) throw new EncodeError('', `null, but the ${type} are not nullable in version ${version}`);
      return writer.bytesOrNull(value as Buffer | null, step.compact, '');
  }
  if (type.kind === 'array') {
    if (value === null) {
      if (!step.nullable) throw new EncodeError('', `null, but the array is not nullable in version ${version}`);
      writer.arrayLength(-1, step.compact);
      return;
    }
    if (!Array.isArray(value)) throw new EncodeError('', `expected an array, got ${typeof value}`);
    writer.arrayLength(value.length, step.compact);
    const element = step.element!;
    for (let i = 0; i < value.length; i++) {
      try {
        writeValue(writer, version, type.element, element, plan, value[i], false);
      } catch (err) {
        if (err instanceof EncodeError) throw err.within(`[${i}]`);
        throw err;
      }
    }
    return;
  }
  if (value === null) {
    if (!step.nullable) throw new EncodeError('', `null, but the ${type.name} struct is not nullable in version ${version}`);
    if (inTag) writer.uvarint(0);
    else writer.int8(-1);
    return;
  }
  if (step.nullable) {
    if (inTag) writer.uvarint(1);
    else writer.int8(1);
  }
  encodeStruct(writer, version, type, plan.flexible, value as Record<string, unknown>);
}
