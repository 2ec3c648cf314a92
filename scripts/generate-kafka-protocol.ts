/**
 * @module scripts/generate-kafka-protocol
 * Generates src/kafka/protocol/generated/ from Kafka's own message specs (`common/message/*Request.json`,
 * `*Response.json` and the two header specs in the kafka-clients jar, see scripts/lib/kafka-specs.ts).
 *
 *   node scripts/generate-kafka-protocol.ts           write the files (stale ones are removed)
 *   node scripts/generate-kafka-protocol.ts --check   exit 1 when any file differs from what the specs give
 *
 * Output, per API (`produce.ts`, `list-offsets.ts`, …): typed interfaces for the request, the response and every
 * struct in them (named message + struct: `ProduceRequestTopicProduceData`), the message descriptions the runtime
 * interprets (src/kafka/protocol/codec/schema.ts, where the naming and value conventions are documented), and
 * `decode<Name>Request(reader, version)`, `encode<Name>Request(writer, version, message)` and the same for the
 * response. Plus `headers.ts` (request and response headers), `api-table.ts` (versions per API key, no codecs:
 * cheap to import) and `index.ts` (API_SPECS: the table plus the codecs of every API, and every type re-exported).
 *
 * `generateKafkaProtocol` is a pure function of the parsed specs, so a test can feed it a modified spec.
 * Spec attributes this generator does not know make it fail: a new Kafka feature must be looked at, not skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readKafkaMessageSpecs } from './lib/kafka-specs.ts';
import type { SpecFile } from './lib/kafka-specs.ts';
import { KAFKA_VERSION, REPO_ROOT } from './lib/paths.ts';

export const GENERATED_DIR = path.join(REPO_ROOT, 'src', 'kafka', 'protocol', 'generated');

// ---------------------------------------------------------------------------------------------------------------
// The spec model (validated JSON)
// ---------------------------------------------------------------------------------------------------------------

const PRIMITIVES = new Set(['bool', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'float64', 'string', 'uuid', 'bytes', 'records']);
const INTEGER_RANGES: Record<string, readonly [number, number]> = {
  int8: [-0x80, 0x7f],
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  int32: [-0x80000000, 0x7fffffff],
  uint32: [0, 0xffffffff],
};
const MESSAGE_KEYS = new Set(['apiKey', 'type', 'listeners', 'name', 'validVersions', 'flexibleVersions', 'fields', 'latestVersionUnstable', 'commonStructs']);
const FIELD_KEYS = new Set([
  'name', 'type', 'versions', 'nullableVersions', 'taggedVersions', 'tag', 'default', 'ignorable', 'fields',
  'flexibleVersions', 'about', 'mapKey', 'entityType', 'zeroCopy',
]);
const STRUCT_KEYS = new Set(['name', 'versions', 'fields']);

interface FieldSpec {
  readonly name: string;
  readonly type: string;
  readonly versions: string;
  readonly nullableVersions?: string;
  readonly taggedVersions?: string;
  readonly tag?: number;
  readonly default?: string;
  readonly ignorable?: boolean;
  readonly fields?: readonly FieldSpec[];
  readonly flexibleVersions?: string;
  readonly about?: string;
}

interface StructSpec {
  readonly name: string;
  readonly fields: readonly FieldSpec[];
}

interface MessageSpec {
  readonly fileName: string;
  readonly name: string;
  readonly type: 'request' | 'response' | 'header';
  readonly apiKey: number | undefined;
  readonly validVersions: string;
  readonly flexibleVersions: string;
  readonly latestVersionUnstable: boolean;
  readonly listeners: readonly string[];
  readonly fields: readonly FieldSpec[];
  readonly commonStructs: readonly StructSpec[];
}

class SpecError extends Error {
  constructor(where: string, what: string) {
    super(`${where}: ${what}`);
    this.name = 'SpecError';
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(where: string, value: Record<string, unknown>, known: ReadonlySet<string>): void {
  for (const key of Object.keys(value)) if (!known.has(key)) throw new SpecError(where, `unknown attribute "${key}"`);
}

function str(where: string, value: unknown, key: string): string {
  if (typeof value !== 'string') throw new SpecError(where, `"${key}" must be a string, got ${JSON.stringify(value)}`);
  return value;
}

function optStr(where: string, value: unknown, key: string): string | undefined {
  return value === undefined ? undefined : str(where, value, key);
}

const VERSIONS = /^(none|\d+(\+|-\d+)?)$/;

function versions(where: string, value: unknown, key: string): string {
  const text = str(where, value, key);
  if (!VERSIONS.test(text)) throw new SpecError(where, `"${key}" is not a version range: ${text}`);
  return text;
}

function parseField(where: string, raw: unknown): FieldSpec {
  if (!isObject(raw)) throw new SpecError(where, 'a field must be an object');
  const name = str(where, raw['name'], 'name');
  const at = `${where}.${name}`;
  checkKeys(at, raw, FIELD_KEYS);
  const type = str(at, raw['type'], 'type');
  if (raw['tag'] !== undefined && !(Number.isInteger(raw['tag']) && (raw['tag'] as number) >= 0)) throw new SpecError(at, '"tag" must be a non-negative integer');
  if ((raw['tag'] === undefined) !== (raw['taggedVersions'] === undefined)) throw new SpecError(at, '"tag" and "taggedVersions" go together');
  if (raw['ignorable'] !== undefined && typeof raw['ignorable'] !== 'boolean') throw new SpecError(at, '"ignorable" must be a boolean');
  if (raw['fields'] !== undefined && !Array.isArray(raw['fields'])) throw new SpecError(at, '"fields" must be an array');
  const defaultValue = raw['default'];
  if (defaultValue !== undefined && !['string', 'number', 'boolean'].includes(typeof defaultValue)) throw new SpecError(at, '"default" must be a scalar');
  return {
    name,
    type,
    versions: versions(at, raw['versions'], 'versions'),
    ...(raw['nullableVersions'] !== undefined ? { nullableVersions: versions(at, raw['nullableVersions'], 'nullableVersions') } : {}),
    ...(raw['taggedVersions'] !== undefined ? { taggedVersions: versions(at, raw['taggedVersions'], 'taggedVersions') } : {}),
    ...(raw['tag'] !== undefined ? { tag: raw['tag'] as number } : {}),
    ...(defaultValue !== undefined ? { default: String(defaultValue) } : {}),
    ...(raw['ignorable'] !== undefined ? { ignorable: raw['ignorable'] as boolean } : {}),
    ...(raw['fields'] !== undefined ? { fields: (raw['fields'] as unknown[]).map((field) => parseField(at, field)) } : {}),
    ...(raw['flexibleVersions'] !== undefined ? { flexibleVersions: versions(at, raw['flexibleVersions'], 'flexibleVersions') } : {}),
    ...(raw['about'] !== undefined ? { about: str(at, raw['about'], 'about') } : {}),
  };
}

/** Validates one parsed spec file. Exported for tests. */
export function parseMessageSpec(file: SpecFile): MessageSpec {
  const where = file.fileName;
  const raw = file.spec;
  if (!isObject(raw)) throw new SpecError(where, 'not a JSON object');
  checkKeys(where, raw, MESSAGE_KEYS);
  const type = str(where, raw['type'], 'type');
  if (type !== 'request' && type !== 'response' && type !== 'header') throw new SpecError(where, `unknown message type ${type}`);
  const apiKey = raw['apiKey'];
  if (type !== 'header' && !(Number.isInteger(apiKey) && (apiKey as number) >= 0)) throw new SpecError(where, '"apiKey" must be a non-negative integer');
  const flexibleVersions = raw['flexibleVersions'] === undefined ? 'none' : versions(where, raw['flexibleVersions'], 'flexibleVersions');
  if (!/^(none|\d+\+)$/.test(flexibleVersions)) throw new SpecError(where, `flexibleVersions must be open-ended ("N+") or none, got ${flexibleVersions}`);
  const structs = raw['commonStructs'] ?? [];
  if (!Array.isArray(structs)) throw new SpecError(where, '"commonStructs" must be an array');
  const listeners = raw['listeners'] ?? [];
  if (!Array.isArray(listeners) || !listeners.every((l) => typeof l === 'string')) throw new SpecError(where, '"listeners" must be strings');
  return {
    fileName: file.fileName,
    name: str(where, raw['name'], 'name'),
    type,
    apiKey: type === 'header' ? undefined : (apiKey as number),
    validVersions: versions(where, raw['validVersions'], 'validVersions'),
    flexibleVersions,
    latestVersionUnstable: raw['latestVersionUnstable'] === true,
    listeners: listeners as string[],
    fields: ((raw['fields'] ?? []) as unknown[]).map((field) => parseField(where, field)),
    commonStructs: structs.map((s: unknown) => {
      if (!isObject(s)) throw new SpecError(where, 'a common struct must be an object');
      const name = str(where, s['name'], 'name');
      checkKeys(`${where}#${name}`, s, STRUCT_KEYS);
      if (!Array.isArray(s['fields'])) throw new SpecError(`${where}#${name}`, '"fields" must be an array');
      return { name, fields: (s['fields'] as unknown[]).map((field) => parseField(`${where}#${name}`, field)) };
    }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Emitting TypeScript
// ---------------------------------------------------------------------------------------------------------------

function header(kafkaVersion: string): string {
  return `// Generated by scripts/generate-kafka-protocol.ts from Kafka ${kafkaVersion}'s message specs. Do not edit.\n`;
}

function quote(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** `TopicData` → `topicData`: the spec name with a lower-case first letter (Kafka's Java accessors do the same). */
export function propertyName(specName: string): string {
  return specName.charAt(0).toLowerCase() + specName.slice(1);
}

/** `ListOffsets` → `list-offsets`. */
export function fileBaseName(apiName: string): string {
  return apiName
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();
}

function docComment(text: string, indent: string): string {
  return `${indent}/** ${text.replaceAll('*/', '*\\/').replace(/\s+/g, ' ').trim()} */\n`;
}

function elementType(type: string): string | undefined {
  return type.startsWith('[]') ? type.slice(2) : undefined;
}

function parseInteger(text: string): number | undefined {
  const match = /^(-?)(0x[0-9a-f]+|0[0-7]+|\d+)$/i.exec(text);
  if (match === null) return undefined;
  const digits = match[2]!;
  const magnitude = /^0x/i.test(digits) ? parseInt(digits.slice(2), 16) : /^0[0-7]+$/.test(digits) ? parseInt(digits.slice(1), 8) : Number(digits);
  return match[1] === '-' ? -magnitude : magnitude;
}

/** The TypeScript literal of a field's spec default, or undefined when it equals the type's own default. */
function defaultLiteral(where: string, field: FieldSpec, nullableAnywhere: boolean): string | undefined {
  const text = field.default;
  if (text === undefined) return undefined;
  const type = field.type;
  if (text === 'null') {
    if (!nullableAnywhere) throw new SpecError(where, 'default null on a field that is never nullable');
    return type === 'records' ? undefined : 'null';
  }
  if (type in INTEGER_RANGES) {
    const value = parseInteger(text);
    const [min, max] = INTEGER_RANGES[type]!;
    if (value === undefined || value < min || value > max) throw new SpecError(where, `default ${text} is not a valid ${type}`);
    return value === 0 ? undefined : String(value);
  }
  if (type === 'int64') {
    let value: bigint;
    try {
      value = text.startsWith('-') ? -BigInt(text.slice(1)) : BigInt(text);
    } catch {
      throw new SpecError(where, `default ${text} is not a valid int64`);
    }
    if (value < -(1n << 63n) || value >= 1n << 63n) throw new SpecError(where, `default ${text} is not a valid int64`);
    return value === 0n ? undefined : `${value}n`;
  }
  if (type === 'float64') {
    const value = Number(text);
    if (!Number.isFinite(value)) throw new SpecError(where, `default ${text} is not a valid float64`);
    return value === 0 ? undefined : String(value);
  }
  if (type === 'bool') {
    if (text !== 'true' && text !== 'false') throw new SpecError(where, `default ${text} is not a valid bool`);
    return text === 'true' ? 'true' : undefined;
  }
  if (type === 'string') return text === '' ? undefined : quote(text);
  throw new SpecError(where, `a ${type} field can only default to null, got ${JSON.stringify(text)}`);
}

interface StructDef {
  readonly name: string;
  readonly fields: readonly FieldSpec[];
}

/** One message (request, response or header) turned into TypeScript: interfaces first, then schema constants. */
interface EmittedMessage {
  readonly interfaces: string;
  readonly schemas: string;
  readonly exportedTypes: readonly string[];
  readonly usesArrays: boolean;
  readonly usesUuid: boolean;
  readonly usesTagged: boolean;
}

function emitMessage(spec: MessageSpec): EmittedMessage {
  const where = spec.fileName;
  const flexible = spec.flexibleVersions !== 'none';
  // Every struct of the message by name: the common structs and every inline definition.
  const defs = new Map<string, StructDef>();
  const define = (name: string, fields: readonly FieldSpec[], at: string): void => {
    if (defs.has(name)) throw new SpecError(at, `struct ${name} is defined twice`);
    if (name === spec.name) throw new SpecError(at, `struct ${name} has the message's own name`);
    defs.set(name, { name, fields });
  };
  const collect = (fields: readonly FieldSpec[], at: string): void => {
    for (const field of fields) {
      const base = elementType(field.type) ?? field.type;
      if (PRIMITIVES.has(base)) {
        if (field.fields !== undefined) throw new SpecError(`${at}.${field.name}`, `a ${field.type} field cannot have fields`);
        continue;
      }
      if (!/^[A-Z][A-Za-z0-9]*$/.test(base)) throw new SpecError(`${at}.${field.name}`, `unknown type ${field.type}`);
      if (field.fields !== undefined) {
        define(base, field.fields, `${at}.${field.name}`);
        collect(field.fields, `${at}.${field.name}`);
      }
    }
  };
  for (const common of spec.commonStructs) define(common.name, common.fields, `${where}#${common.name}`);
  for (const common of spec.commonStructs) collect(common.fields, `${where}#${common.name}`);
  collect(spec.fields, where);

  const interfaceName = (structName: string): string => `${spec.name}${structName}`;
  const schemaName = (structName: string): string => `${spec.name}${structName}Schema`;

  let usesArrays = false;
  let usesUuid = false;
  const usesTagged = flexible;
  const interfaces: string[] = [];
  const schemas: string[] = [];
  const exportedTypes: string[] = [];
  const emitted = new Set<string>();
  const visiting = new Set<string>();

  const tsBase = (base: string, at: string): string => {
    switch (base) {
      case 'bool':
        return 'boolean';
      case 'int64':
        return 'bigint';
      case 'string':
        return 'string';
      case 'uuid':
        usesUuid = true;
        return 'Uuid';
      case 'bytes':
      case 'records':
        return 'Buffer';
      default:
        if (base in INTEGER_RANGES || base === 'float64') return 'number';
        if (!defs.has(base)) throw new SpecError(at, `struct ${base} is not defined in ${where}`);
        return interfaceName(base);
    }
  };

  /** Emits the interface and schema of `fields` (named `typeName`/`constName`), after the structs they use. */
  const emitStruct = (fields: readonly FieldSpec[], typeName: string, constName: string | undefined, doc: string, at: string): string[] => {
    const props: string[] = [];
    const fieldSchemas: string[] = [];
    const names = new Set<string>();
    for (const field of fields) {
      const fat = `${at}.${field.name}`;
      const property = propertyName(field.name);
      if (names.has(property) || property === '_unknownTaggedFields') throw new SpecError(fat, `property name ${property} is taken`);
      names.add(property);
      const element = elementType(field.type);
      const base = element ?? field.type;
      if (!PRIMITIVES.has(base)) emitStructDef(base, fat);
      if (element !== undefined) usesArrays = true;
      const nullableAnywhere = field.nullableVersions !== undefined && field.nullableVersions !== 'none';
      if (nullableAnywhere && ['bool', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'float64', 'uuid'].includes(field.type)) {
        throw new SpecError(fat, `a ${field.type} field cannot be nullable`);
      }
      if (field.tag !== undefined && !flexible) throw new SpecError(fat, 'a tagged field in a message without flexible versions');
      const fallback = defaultLiteral(fat, field, nullableAnywhere);
      const canBeNull = nullableAnywhere || fallback === 'null' || (field.type === 'records' && element === undefined);
      let tsType = tsBase(base, fat);
      if (element !== undefined) tsType = `${tsType}[]`;
      if (canBeNull) tsType = `${tsType} | null`;

      const facts = [`v${field.versions}`];
      if (nullableAnywhere) facts.push(`nullable v${field.nullableVersions}`);
      if (field.tag !== undefined) facts.push(`tag ${field.tag} in v${field.taggedVersions}: absent = default`);
      if (field.default !== undefined) facts.push(`default ${field.default}`);
      if (field.ignorable === true) facts.push('ignorable');
      if (field.flexibleVersions !== undefined) facts.push(field.flexibleVersions === 'none' ? 'never compact' : `compact v${field.flexibleVersions}`);
      props.push(docComment(`${field.about ?? ''} [${facts.join(', ')}]`, '  '));
      props.push(`  ${property}${field.tag !== undefined ? '?' : ''}: ${tsType};\n`);

      const typeExpr = PRIMITIVES.has(base) ? quote(base) : schemaName(base);
      const options: string[] = [];
      if (nullableAnywhere) options.push(`nullable: ${quote(field.nullableVersions!)}`);
      if (field.tag !== undefined) options.push(`tag: ${field.tag}`, `tagged: ${quote(field.taggedVersions!)}`);
      if (field.ignorable === true) options.push('ignorable: true');
      if (field.flexibleVersions !== undefined) options.push(`flexible: ${quote(field.flexibleVersions)}`);
      if (fallback !== undefined) options.push(`default: ${fallback}`);
      fieldSchemas.push(
        `  f(${quote(property)}, ${element !== undefined ? `arrayOf(${typeExpr})` : typeExpr}, ${quote(field.versions)}${options.length > 0 ? `, { ${options.join(', ')} }` : ''}),\n`,
      );
    }
    if (flexible) {
      props.push(docComment('Tagged fields this version does not know, kept as raw bytes and written back in tag order.', '  '));
      props.push('  _unknownTaggedFields?: TaggedField[];\n');
    }
    interfaces.push(`${docComment(doc, '')}export interface ${typeName} {\n${props.join('')}}\n`);
    exportedTypes.push(typeName);
    if (constName !== undefined) schemas.push(`const ${constName} = struct(${quote(typeName.slice(spec.name.length))}, [\n${fieldSchemas.join('')}]);\n`);
    return fieldSchemas;
  };

  const emitStructDef = (name: string, at: string): void => {
    if (emitted.has(name)) return;
    if (visiting.has(name)) throw new SpecError(at, `struct ${name} refers to itself`);
    const def = defs.get(name);
    if (def === undefined) throw new SpecError(at, `struct ${name} is not defined in ${where}`);
    visiting.add(name);
    emitStruct(def.fields, interfaceName(name), schemaName(name), `${spec.name} struct ${name}.`, `${where}#${name}`);
    visiting.delete(name);
    emitted.add(name);
  };

  const facts = `versions ${spec.validVersions}, flexible ${spec.flexibleVersions}${spec.latestVersionUnstable ? ', latest version unstable' : ''}`;
  const topFields = emitStruct(spec.fields, spec.name, undefined, `${spec.name} (${facts}).`, where);
  const apiKey = spec.apiKey === undefined ? 'undefined' : String(spec.apiKey);
  schemas.push(
    `export const ${spec.name}Schema: MessageSchema<${spec.name}> = message(${quote(spec.name)}, ${apiKey}, ${quote(spec.validVersions)}, ${quote(spec.flexibleVersions)}, [\n${topFields.join('')}]);\n`,
  );
  // Structs nothing refers to are not emitted (StreamsGroupDescribeResponse 4.1 has a common struct TopicPartitions
  // that no field uses).
  return { interfaces: interfaces.join('\n'), schemas: schemas.join('\n'), exportedTypes, usesArrays, usesUuid, usesTagged };
}

function codecFunctions(spec: MessageSpec): string {
  const n = spec.name;
  return (
    `export function decode${n}(reader: Reader, version: number): ${n} {\n  return decodeMessage(reader, version, ${n}Schema);\n}\n\n` +
    `export function encode${n}(writer: Writer, version: number, message: ${n}): void {\n  encodeMessage(writer, version, ${n}Schema, message);\n}\n`
  );
}

/** A file holding one or more messages (an API's request and response, or the two headers). */
function emitMessagesFile(kafkaVersion: string, moduleName: string, description: string, specs: readonly MessageSpec[]): { content: string; types: string[] } {
  const emitted = specs.map(emitMessage);
  const typeImports = ['MessageSchema'];
  if (emitted.some((e) => e.usesTagged)) typeImports.push('TaggedField');
  if (emitted.some((e) => e.usesUuid)) typeImports.push('Uuid');
  const valueImports = ['decodeMessage', 'encodeMessage', 'f', 'message'];
  if (emitted.some((e) => e.usesArrays)) valueImports.unshift('arrayOf');
  if (emitted.some((e) => e.schemas.includes('= struct('))) valueImports.push('struct');
  const parts = [
    header(kafkaVersion),
    `/**\n * @module kafka/protocol/generated/${moduleName}\n * ${description}\n * Conventions (field names, defaults, tagged fields, value types): src/kafka/protocol/codec/schema.ts.\n */\n`,
    `import type { Reader } from '../codec/reader.ts';\n`,
    `import type { ${typeImports.sort().join(', ')} } from '../codec/schema.ts';\n`,
    `import { ${valueImports.sort().join(', ')} } from '../codec/schema.ts';\n`,
    `import type { Writer } from '../codec/writer.ts';\n`,
  ];
  for (let i = 0; i < specs.length; i++) {
    parts.push(`\n// ${'-'.repeat(114)}\n// ${specs[i]!.name}\n// ${'-'.repeat(114)}\n\n`);
    parts.push(emitted[i]!.interfaces, '\n', emitted[i]!.schemas, '\n', codecFunctions(specs[i]!));
  }
  return { content: parts.join(''), types: emitted.flatMap((e) => e.exportedTypes) };
}

interface Api {
  readonly apiKey: number;
  readonly name: string;
  readonly request: MessageSpec;
  readonly response: MessageSpec;
}

function apiRow(api: Api): string {
  const side = (spec: MessageSpec): string => `${quote(spec.validVersions)}, ${quote(spec.flexibleVersions)}, ${spec.latestVersionUnstable}`;
  const listeners = `[${api.request.listeners.map(quote).join(', ')}]`;
  return `  api(${api.apiKey}, ${quote(api.name)}, ${listeners}, ${side(api.request)}, ${side(api.response)}),\n`;
}

function emitApiTable(kafkaVersion: string, apis: readonly Api[]): string {
  return `${header(kafkaVersion)}/**
 * @module kafka/protocol/generated/api-table
 * Every API key of Kafka ${kafkaVersion}: name, the listeners that serve it, and the valid and flexible versions of
 * its request and response. Only data (no codecs), so it is cheap to import; \`index.ts\` adds the codecs.
 * APIs whose validVersions are \`none\` were removed from Kafka (their keys stay reserved) and have no codecs.
 */
import { parseVersions } from '../codec/schema.ts';
import type { VersionRange } from '../codec/schema.ts';

/** The Kafka release whose specs generated this folder. */
export const KAFKA_SPEC_VERSION = ${quote(kafkaVersion)};

export interface ApiMessageVersions {
  /** The spec's message name: \`ProduceRequest\`. */
  readonly name: string;
  /** Null when no version is valid any more (a removed API). */
  readonly validVersions: VersionRange | null;
  /** First flexible version, or null when no version is flexible. */
  readonly flexibleFrom: number | null;
  /** The spec marks its highest version unstable: brokers only offer it when told to (unstable.api.versions.enable). */
  readonly latestVersionUnstable: boolean;
}

export interface ApiTableEntry {
  readonly apiKey: number;
  /** \`Produce\`, \`Fetch\`, …: the message name without Request/Response. */
  readonly name: string;
  /** Which listeners serve it: \`broker\`, \`controller\`. */
  readonly listeners: readonly string[];
  readonly request: ApiMessageVersions;
  readonly response: ApiMessageVersions;
}

function side(name: string, valid: string, flexible: string, latestVersionUnstable: boolean): ApiMessageVersions {
  return { name, validVersions: parseVersions(valid), flexibleFrom: parseVersions(flexible)?.min ?? null, latestVersionUnstable };
}

function api(
  apiKey: number,
  name: string,
  listeners: readonly string[],
  requestValid: string,
  requestFlexible: string,
  requestUnstable: boolean,
  responseValid: string,
  responseFlexible: string,
  responseUnstable: boolean,
): [number, ApiTableEntry] {
  return [apiKey, {
    apiKey,
    name,
    listeners,
    request: side(\`\${name}Request\`, requestValid, requestFlexible, requestUnstable),
    response: side(\`\${name}Response\`, responseValid, responseFlexible, responseUnstable),
  }];
}

/** By API key. */
export const API_TABLE: ReadonlyMap<number, ApiTableEntry> = new Map([
${apis.map(apiRow).join('')}]);
`;
}

function emitIndex(kafkaVersion: string, apis: readonly Api[], modules: ReadonlyMap<number, string>): string {
  const live = apis.filter((api) => modules.has(api.apiKey));
  const alias = (api: Api): string => `${propertyName(api.name)}Api`;
  const imports = live.map((api) => `import * as ${alias(api)} from './${modules.get(api.apiKey)}.ts';\n`).join('');
  const reexports = ['headers', ...live.map((api) => modules.get(api.apiKey)!)].map((m) => `export * from './${m}.ts';\n`).join('');
  const bodies = (side: 'Request' | 'Response'): string =>
    live.map((api) => `  ${api.apiKey}: ${alias(api)}.${api.name}${side};\n`).join('');
  const entries = apis
    .map((api) => {
      if (!modules.has(api.apiKey)) return `  [${api.apiKey}, { ...API_TABLE.get(${api.apiKey})!, codecs: null }],\n`;
      const a = alias(api);
      const n = api.name;
      return (
        `  [${api.apiKey}, { ...API_TABLE.get(${api.apiKey})!, codecs: {\n` +
        `    requestSchema: ${a}.${n}RequestSchema, responseSchema: ${a}.${n}ResponseSchema,\n` +
        `    decodeRequest: ${a}.decode${n}Request, encodeRequest: ${a}.encode${n}Request,\n` +
        `    decodeResponse: ${a}.decode${n}Response, encodeResponse: ${a}.encode${n}Response,\n` +
        `  } }],\n`
      );
    })
    .join('');
  return `${header(kafkaVersion)}/**
 * @module kafka/protocol/generated/index
 * API_SPECS: for every API key of Kafka ${kafkaVersion}, the facts of \`api-table.ts\` plus the codecs of its request
 * and response (null for removed APIs); and every generated type re-exported. Importing this loads every codec: code
 * that needs only names and versions imports \`api-table.ts\`.
 */
import type { Reader } from '../codec/reader.ts';
import type { MessageSchema } from '../codec/schema.ts';
import type { Writer } from '../codec/writer.ts';
import { API_TABLE } from './api-table.ts';
import type { ApiTableEntry } from './api-table.ts';
${imports}
export * from './api-table.ts';
${reexports}
/** The codecs of one API; the decoded types are those of \`RequestBodies\`/\`ResponseBodies\` for its key. */
export interface ApiCodecs<Request = unknown, Response = unknown> {
  readonly requestSchema: MessageSchema<Request>;
  readonly responseSchema: MessageSchema<Response>;
  decodeRequest(reader: Reader, version: number): Request;
  encodeRequest(writer: Writer, version: number, message: Request): void;
  decodeResponse(reader: Reader, version: number): Response;
  encodeResponse(writer: Writer, version: number, message: Response): void;
}

export interface ApiSpec extends ApiTableEntry {
  /** Null for an API Kafka removed (no valid version). */
  readonly codecs: ApiCodecs | null;
}

/** The decoded request body type by API key. */
export interface RequestBodies {
${bodies('Request')}}

/** The decoded response body type by API key. */
export interface ResponseBodies {
${bodies('Response')}}

/** API keys that have codecs. */
export type KnownApiKey = keyof RequestBodies & keyof ResponseBodies;

/** By API key. */
export const API_SPECS: ReadonlyMap<number, ApiSpec> = new Map<number, ApiSpec>([
${entries}]);
`;
}

/**
 * The generated files (name → content) for the given spec files. Pure: the same specs give the same output, byte
 * for byte. Throws SpecError on a spec it does not understand.
 */
export function generateKafkaProtocol(files: readonly SpecFile[], kafkaVersion: string): Map<string, string> {
  const specs = files.map(parseMessageSpec);
  const byKey = new Map<number, { request?: MessageSpec; response?: MessageSpec }>();
  const headers: MessageSpec[] = [];
  for (const spec of specs) {
    if (spec.type === 'header') {
      headers.push(spec);
      continue;
    }
    const suffix = spec.type === 'request' ? 'Request' : 'Response';
    if (!spec.name.endsWith(suffix)) throw new SpecError(spec.fileName, `a ${spec.type} named ${spec.name}`);
    const pair = byKey.get(spec.apiKey!) ?? {};
    if (pair[spec.type] !== undefined) throw new SpecError(spec.fileName, `a second ${spec.type} for api key ${spec.apiKey}`);
    pair[spec.type] = spec;
    byKey.set(spec.apiKey!, pair);
  }
  const apis: Api[] = [...byKey.entries()]
    .sort(([a], [b]) => a - b)
    .map(([apiKey, pair]) => {
      if (pair.request === undefined || pair.response === undefined) throw new SpecError(`api key ${apiKey}`, 'needs both a request and a response spec');
      const name = pair.request.name.slice(0, -'Request'.length);
      if (pair.response.name !== `${name}Response`) throw new SpecError(pair.response.fileName, `expected ${name}Response for api key ${apiKey}`);
      return { apiKey, name, request: pair.request, response: pair.response };
    });
  const requestHeader = headers.find((h) => h.name === 'RequestHeader');
  const responseHeader = headers.find((h) => h.name === 'ResponseHeader');
  if (requestHeader === undefined || responseHeader === undefined || headers.length !== 2) {
    throw new SpecError('headers', 'expected exactly RequestHeader.json and ResponseHeader.json');
  }

  const out = new Map<string, string>();
  const modules = new Map<number, string>();
  const typeOwners = new Map<string, string>();
  const claim = (types: readonly string[], file: string): void => {
    for (const type of types) {
      const owner = typeOwners.get(type);
      if (owner !== undefined) throw new SpecError(file, `type ${type} is also generated in ${owner}`);
      typeOwners.set(type, file);
    }
  };
  const headersFile = emitMessagesFile(
    kafkaVersion,
    'headers',
    'Request header (v1: client id; v2: plus tagged fields) and response header (v0: correlation id; v1: plus tagged fields).',
    [requestHeader, responseHeader],
  );
  claim(headersFile.types, 'headers.ts');
  out.set('headers.ts', headersFile.content);
  for (const api of apis) {
    const removed = api.request.validVersions === 'none' || api.response.validVersions === 'none';
    if (removed) {
      if (api.request.validVersions !== api.response.validVersions) throw new SpecError(api.request.fileName, 'request and response disagree on being removed');
      continue;
    }
    const base = fileBaseName(api.name);
    if (base === 'headers' || base === 'index' || base === 'api-table') throw new SpecError(api.request.fileName, `file name ${base}.ts is reserved`);
    const file = emitMessagesFile(
      kafkaVersion,
      base,
      `${api.name} (api key ${api.apiKey}): request versions ${api.request.validVersions} (flexible ${api.request.flexibleVersions}), ` +
        `response versions ${api.response.validVersions} (flexible ${api.response.flexibleVersions}).`,
      [api.request, api.response],
    );
    claim(file.types, `${base}.ts`);
    out.set(`${base}.ts`, file.content);
    modules.set(api.apiKey, base);
  }
  out.set('api-table.ts', emitApiTable(kafkaVersion, apis));
  out.set('index.ts', emitIndex(kafkaVersion, apis, modules));
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// ---------------------------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------------------------

/** Differences between `files` and the folder: changed or missing files, and .ts files that should not be there. */
export function staleFiles(files: ReadonlyMap<string, string>, dir: string = GENERATED_DIR): string[] {
  const stale: string[] = [];
  for (const [name, content] of files) {
    let current: string | undefined;
    try {
      current = fs.readFileSync(path.join(dir, name), 'utf8');
    } catch {
      current = undefined;
    }
    if (current !== content) stale.push(current === undefined ? `${name} (missing)` : `${name} (differs)`);
  }
  const present = fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.endsWith('.ts')) : [];
  for (const name of present) if (!files.has(name)) stale.push(`${name} (not generated from the specs)`);
  return stale.sort();
}

function main(argv: readonly string[]): void {
  const check = argv.includes('--check');
  if (argv.some((arg) => arg !== '--check')) throw new Error('usage: node scripts/generate-kafka-protocol.ts [--check]');
  const files = generateKafkaProtocol(readKafkaMessageSpecs(), KAFKA_VERSION);
  const stale = staleFiles(files);
  const relative = path.relative(REPO_ROOT, GENERATED_DIR);
  if (check) {
    if (stale.length > 0) {
      process.stderr.write(`generate-kafka-protocol: ${relative} is stale; run npm run generate:kafka\n  ${stale.join('\n  ')}\n`);
      process.exitCode = 1;
    }
    return;
  }
  fs.mkdirSync(GENERATED_DIR, { recursive: true });
  for (const name of fs.readdirSync(GENERATED_DIR)) if (name.endsWith('.ts') && !files.has(name)) fs.rmSync(path.join(GENERATED_DIR, name));
  let bytes = 0;
  for (const [name, content] of files) {
    bytes += Buffer.byteLength(content);
    const target = path.join(GENERATED_DIR, name);
    if (!fs.existsSync(target) || fs.readFileSync(target, 'utf8') !== content) fs.writeFileSync(target, content);
  }
  process.stderr.write(`generate-kafka-protocol: ${files.size} files, ${(bytes / 1024).toFixed(0)} KiB in ${relative} (${stale.length} changed)\n`);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`generate-kafka-protocol: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
