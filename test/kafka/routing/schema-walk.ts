/**
 * Test helpers driven by the generated schemas (src/kafka/protocol/codec/schema.ts): random message bodies of any
 * API and version, and walks that find every endpoint-like struct (one with a `host` field) in a schema or a body.
 */
import { defaultOf, inRange } from '../../../src/kafka/protocol/codec/schema.ts';
import type { FieldSchema, FieldType, MessageSchema, StructSchema } from '../../../src/kafka/protocol/codec/schema.ts';

export type Random = () => number;

/** Picks a value for a field by name (undefined: random); `path` is the property path from the top. */
export type Pick = (field: FieldSchema, path: readonly string[], random: Random) => unknown;

export function int(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

export function oneOf<T>(random: Random, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)]!;
}

const CHARS = ['a', 'b', 'z', '0', '9', '.', '-', '_', ' ', 'é', 'ß', '日', '本', '🙂'];

function randomString(random: Random): string {
  let s = '';
  for (let n = int(random, 0, 10); n > 0; n--) s += oneOf(random, CHARS);
  return s;
}

function randomBytes(random: Random, max: number): Buffer {
  const bytes = Buffer.alloc(int(random, 0, max));
  for (let i = 0; i < bytes.length; i++) bytes[i] = int(random, 0, 255);
  return bytes;
}

function randomInt64(random: Random): bigint {
  if (random() < 0.7) return BigInt(int(random, -1, 100_000));
  const hi = BigInt(int(random, -0x80000000, 0x7fffffff));
  const lo = BigInt(int(random, 0, 0xffffffff));
  return BigInt.asIntN(64, (hi << 32n) | lo);
}

function isFlexible(schema: MessageSchema<unknown>, version: number): boolean {
  return schema.flexibleFrom !== null && version >= schema.flexibleFrom;
}

/** A random body of `schema` in `version`, valid for the encoder: fields the version lacks hold their defaults. */
export function randomBody(schema: MessageSchema<unknown>, version: number, random: Random, pick: Pick = () => undefined): Record<string, unknown> {
  return randomStruct(schema.struct, version, isFlexible(schema, version), random, pick, [], 0);
}

function randomStruct(schema: StructSchema, version: number, flexible: boolean, random: Random, pick: Pick, path: readonly string[], depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of schema.fields) {
    const present = inRange(field.versions, version);
    if (!present) {
      if (field.tag === undefined) out[field.name] = defaultOf(field);
      continue;
    }
    const tagged = flexible && field.tag !== undefined && inRange(field.taggedVersions, version);
    if (tagged && random() < 0.4) continue;
    const fieldPath = [...path, field.name];
    const picked = pick(field, fieldPath, random);
    if (picked !== undefined) {
      out[field.name] = picked;
      continue;
    }
    const nullable = inRange(field.nullableVersions, version);
    out[field.name] = nullable && random() < 0.15 ? null : randomValue(field.type, version, flexible, random, pick, fieldPath, depth);
  }
  if (flexible && random() < 0.1) out['_unknownTaggedFields'] = [{ tag: int(random, 1000, 1010), data: randomBytes(random, 6) }];
  return out;
}

function randomValue(type: FieldType, version: number, flexible: boolean, random: Random, pick: Pick, path: readonly string[], depth: number): unknown {
  switch (type) {
    case 'bool':
      return random() < 0.5;
    case 'int8':
      return int(random, -128, 127);
    case 'int16':
      return int(random, -32768, 32767);
    case 'uint16':
      return int(random, 0, 65535);
    case 'int32':
      return random() < 0.7 ? int(random, -1, 1000) : int(random, -0x80000000, 0x7fffffff);
    case 'uint32':
      return int(random, 0, 0xffffffff);
    case 'int64':
      return randomInt64(random);
    case 'float64':
      return Math.round(random() * 1e6) / 8;
    case 'string':
      return randomString(random);
    case 'uuid':
      return Buffer.from(Array.from({ length: 16 }, () => int(random, 0, 255))).toString('base64url');
    case 'bytes':
    case 'records':
      return randomBytes(random, 24);
  }
  if (type.kind === 'array') {
    const items: unknown[] = [];
    const max = depth >= 3 ? 1 : 3;
    for (let n = int(random, 0, max); n > 0; n--) items.push(randomValue(type.element, version, flexible, random, pick, path, depth + 1));
    return items;
  }
  return randomStruct(type, version, flexible, random, pick, path, depth + 1);
}

/** Paths (`brokers.host`) of the fields named `host` or `port` present in `version` of a message. */
export function addressFieldPaths(schema: MessageSchema<unknown>, version: number): string[] {
  const paths: string[] = [];
  const visit = (struct: StructSchema, prefix: string, seen: ReadonlySet<StructSchema>): void => {
    if (seen.has(struct)) return;
    const next = new Set(seen).add(struct);
    for (const field of struct.fields) {
      if (!inRange(field.versions, version)) continue;
      const path = prefix === '' ? field.name : `${prefix}.${field.name}`;
      if (field.name === 'host' || field.name === 'port') paths.push(path);
      let type: FieldType = field.type;
      if (typeof type === 'object' && type.kind === 'array') type = type.element;
      if (typeof type === 'object' && type.kind === 'struct') visit(type, path, next);
    }
  };
  visit(schema.struct, '', new Set());
  return paths;
}

/** An endpoint found in a body: the struct holding `host`, and its path. */
export interface FoundEndpoint {
  readonly path: string;
  readonly struct: Record<string, unknown>;
}

/** Every struct value with a `host` field present in `version`, in a decoded body of `schema`. */
export function endpointsIn(schema: MessageSchema<unknown>, version: number, body: Record<string, unknown>): FoundEndpoint[] {
  const found: FoundEndpoint[] = [];
  const visit = (struct: StructSchema, value: Record<string, unknown> | null, path: string): void => {
    if (value === null) return;
    if (struct.fields.some((field) => field.name === 'host' && inRange(field.versions, version))) found.push({ path, struct: value });
    for (const field of struct.fields) {
      if (!inRange(field.versions, version)) continue;
      const fieldValue = value[field.name];
      const type = field.type;
      if (typeof type !== 'object') continue;
      const sub = `${path}${path === '' ? '' : '.'}${field.name}`;
      if (type.kind === 'struct') visit(type, (fieldValue ?? null) as Record<string, unknown> | null, sub);
      else if (typeof type.element === 'object' && type.element.kind === 'struct' && Array.isArray(fieldValue)) {
        for (const item of fieldValue) visit(type.element, item as Record<string, unknown>, sub);
      }
    }
  };
  visit(schema.struct, body, '');
  return found;
}
