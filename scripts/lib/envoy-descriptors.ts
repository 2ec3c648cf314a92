/**
 * @module scripts/lib/envoy-descriptors
 * Reads the serialized `FileDescriptorProto`s that protoc-generated C++ embeds in the Envoy binary, and compares the
 * project's own `.proto` declarations (loaded with protobufjs) against them.
 *
 * The binary is the authority for field numbers and types: envoy's GitHub history has several different versions of
 * the same files (network ext_proc changed shape between releases), the binary has exactly the one Envoy speaks.
 *
 * Finding a descriptor: a serialized FileDescriptorProto starts with its `name` field, i.e. the bytes
 * `0x0a <varint length> <file name>`. From such a candidate we walk the top-level fields (tag, wire type, payload)
 * until the first byte sequence that cannot continue a FileDescriptorProto: an invalid tag or wire type (the C++
 * array is a string literal, so a NUL byte follows it), a length running past the buffer, or a second occurrence of
 * a singular field (another descriptor placed right after this one starts with its own `name`). The slice is then
 * decoded with protobufjs's descriptor schema and must carry the expected name.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor.js';

// ---------------------------------------------------------------------------------------------------------------
// Descriptor shapes (protobufjs `toObject` of google.protobuf.*DescriptorProto with `enums: String`), the parts used.

export interface FieldDescriptorObject {
  name: string;
  number: number;
  label?: string; // LABEL_OPTIONAL | LABEL_REQUIRED | LABEL_REPEATED
  type?: string; // TYPE_DOUBLE ... TYPE_MESSAGE, TYPE_ENUM
  typeName?: string; // ".pkg.Message" for TYPE_MESSAGE / TYPE_ENUM
  oneofIndex?: number;
  proto3Optional?: boolean;
}
export interface OneofDescriptorObject {
  name: string;
}
export interface EnumValueDescriptorObject {
  name: string;
  number: number;
}
export interface EnumDescriptorObject {
  name: string;
  value?: EnumValueDescriptorObject[];
}
export interface MessageDescriptorObject {
  name: string;
  field?: FieldDescriptorObject[];
  nestedType?: MessageDescriptorObject[];
  enumType?: EnumDescriptorObject[];
  oneofDecl?: OneofDescriptorObject[];
  options?: { mapEntry?: boolean };
}
export interface MethodDescriptorObject {
  name: string;
  inputType: string;
  outputType: string;
  clientStreaming?: boolean;
  serverStreaming?: boolean;
}
export interface ServiceDescriptorObject {
  name: string;
  method?: MethodDescriptorObject[];
}
export interface FileDescriptorObject {
  name: string;
  package?: string;
  dependency?: string[];
  messageType?: MessageDescriptorObject[];
  enumType?: EnumDescriptorObject[];
  service?: ServiceDescriptorObject[];
  syntax?: string;
}

export interface ExtractedFile {
  /** File name as compiled, e.g. `envoy/service/ext_proc/v3/external_processor.proto`. */
  name: string;
  /** Byte offset of the descriptor in the binary. */
  offset: number;
  /** Length of the serialized descriptor. */
  length: number;
  /** How many places in the binary held a descriptor with this name (some files are linked in twice). */
  candidates: number;
  /** Whether every candidate declares the same messages, fields, enums and services (options may differ). */
  candidatesAgree: boolean;
  descriptor: FileDescriptorObject;
}

// ---------------------------------------------------------------------------------------------------------------
// Extraction

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** FileDescriptorProto's top-level fields: number -> allowed wire types, and whether the field is singular. */
const FILE_FIELDS: ReadonlyMap<number, { wire: readonly number[]; singular: boolean }> = new Map([
  [1, { wire: [WIRE_LEN], singular: true }], // name
  [2, { wire: [WIRE_LEN], singular: true }], // package
  [3, { wire: [WIRE_LEN], singular: false }], // dependency
  [4, { wire: [WIRE_LEN], singular: false }], // message_type
  [5, { wire: [WIRE_LEN], singular: false }], // enum_type
  [6, { wire: [WIRE_LEN], singular: false }], // service
  [7, { wire: [WIRE_LEN], singular: false }], // extension
  [8, { wire: [WIRE_LEN], singular: true }], // options
  [9, { wire: [WIRE_LEN], singular: true }], // source_code_info
  [10, { wire: [WIRE_VARINT, WIRE_LEN], singular: false }], // public_dependency
  [11, { wire: [WIRE_VARINT, WIRE_LEN], singular: false }], // weak_dependency
  [12, { wire: [WIRE_LEN], singular: true }], // syntax
  [14, { wire: [WIRE_VARINT], singular: true }], // edition
  [15, { wire: [WIRE_LEN], singular: false }], // option_dependency
]);

/** Reads a varint at `pos`; returns [value, next position] or undefined when malformed/truncated. */
function readVarint(buf: Uint8Array, pos: number): [number, number] | undefined {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) return undefined;
    const byte = buf[pos++]!;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return Number.isSafeInteger(value) ? [value, pos] : undefined;
    multiplier *= 128;
  }
  return undefined;
}

function encodeVarint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/**
 * Walks the top-level fields of a serialized FileDescriptorProto starting at `start` and returns the offset just
 * past the last field that can belong to it (see the module comment for the stop rules).
 */
export function descriptorEnd(buf: Uint8Array, start: number): number {
  const seen = new Set<number>();
  let pos = start;
  for (;;) {
    const tag = readVarint(buf, pos);
    if (!tag) return pos;
    const [key, afterTag] = tag;
    const fieldNumber = Math.floor(key / 8);
    const wireType = key & 7;
    const spec = FILE_FIELDS.get(fieldNumber);
    if (!spec || !spec.wire.includes(wireType)) return pos;
    if (spec.singular && seen.has(fieldNumber)) return pos;
    if (pos === start && fieldNumber !== 1) return pos; // a descriptor starts with its name
    let next: number;
    if (wireType === WIRE_LEN) {
      const len = readVarint(buf, afterTag);
      if (!len) return pos;
      next = len[1] + len[0];
    } else if (wireType === WIRE_VARINT) {
      const v = readVarint(buf, afterTag);
      if (!v) return pos;
      next = v[1];
    } else if (wireType === WIRE_I64) {
      next = afterTag + 8;
    } else if (wireType === WIRE_I32) {
      next = afterTag + 4;
    } else {
      return pos;
    }
    if (next > buf.length) return pos;
    seen.add(fieldNumber);
    pos = next;
  }
}

const FileDescriptorProtoType = descriptor.FileDescriptorProto;

/** Decodes a serialized FileDescriptorProto into the plain object shape above. */
export function decodeFileDescriptor(bytes: Uint8Array): FileDescriptorObject {
  const message = FileDescriptorProtoType.decode(bytes);
  return FileDescriptorProtoType.toObject(message, { enums: String, longs: Number, defaults: false }) as FileDescriptorObject;
}

/**
 * Finds the embedded FileDescriptorProto named `fileName` in `binary`. Returns undefined when no candidate decodes
 * to a descriptor of that name. When several do (the same file linked twice), the longest one wins.
 */
export function extractFileDescriptor(binary: Buffer, fileName: string): ExtractedFile | undefined {
  const nameBytes = Buffer.from(fileName, 'utf8');
  const needle = Buffer.from([0x0a, ...encodeVarint(nameBytes.length), ...nameBytes]);
  let best: ExtractedFile | undefined;
  let candidates = 0;
  const renderings = new Set<string>();
  for (let at = binary.indexOf(needle); at !== -1; at = binary.indexOf(needle, at + 1)) {
    const end = descriptorEnd(binary, at);
    let decoded: FileDescriptorObject;
    try {
      decoded = decodeFileDescriptor(binary.subarray(at, end));
    } catch {
      continue;
    }
    if (decoded.name !== fileName) continue;
    candidates++;
    renderings.add(renderFileDescriptor(decoded));
    if (!best || end - at > best.length) {
      best = { name: fileName, offset: at, length: end - at, candidates: 0, candidatesAgree: true, descriptor: decoded };
    }
  }
  if (best) {
    best.candidates = candidates;
    best.candidatesAgree = renderings.size === 1;
  }
  return best;
}

/** Extracts several files; the result only has entries for files that are embedded. */
export function extractFileDescriptors(binary: Buffer, fileNames: readonly string[]): Map<string, ExtractedFile> {
  const out = new Map<string, ExtractedFile>();
  for (const name of fileNames) {
    const file = extractFileDescriptor(binary, name);
    if (file) out.set(name, file);
  }
  return out;
}

/** Reads the binary once per path (it is ~100 MB). */
const binaryCache = new Map<string, Buffer>();
export function readBinary(binaryPath: string): Buffer {
  let buf = binaryCache.get(binaryPath);
  if (!buf) {
    buf = readFileSync(binaryPath);
    binaryCache.set(binaryPath, buf);
  }
  return buf;
}

// ---------------------------------------------------------------------------------------------------------------
// Indexing the binary's declarations by full name

export interface IndexedMessage {
  file: string;
  fullName: string;
  message: MessageDescriptorObject;
}
export interface IndexedEnum {
  file: string;
  fullName: string;
  enumeration: EnumDescriptorObject;
}
export interface IndexedService {
  file: string;
  fullName: string;
  service: ServiceDescriptorObject;
}
export interface DescriptorIndex {
  messages: Map<string, IndexedMessage>;
  enums: Map<string, IndexedEnum>;
  services: Map<string, IndexedService>;
}

/** Indexes messages, enums and services (nested ones included) by full name without a leading dot. */
export function indexDescriptors(files: Iterable<FileDescriptorObject>): DescriptorIndex {
  const index: DescriptorIndex = { messages: new Map(), enums: new Map(), services: new Map() };
  const addEnums = (file: string, prefix: string, enums: EnumDescriptorObject[] | undefined): void => {
    for (const e of enums ?? []) index.enums.set(prefix + e.name, { file, fullName: prefix + e.name, enumeration: e });
  };
  const addMessages = (file: string, prefix: string, messages: MessageDescriptorObject[] | undefined): void => {
    for (const m of messages ?? []) {
      const fullName = prefix + m.name;
      index.messages.set(fullName, { file, fullName, message: m });
      addMessages(file, fullName + '.', m.nestedType);
      addEnums(file, fullName + '.', m.enumType);
    }
  };
  for (const f of files) {
    const prefix = f.package ? f.package + '.' : '';
    addMessages(f.name, prefix, f.messageType);
    addEnums(f.name, prefix, f.enumType);
    for (const s of f.service ?? []) {
      index.services.set(prefix + s.name, { file: f.name, fullName: prefix + s.name, service: s });
    }
  }
  return index;
}

// ---------------------------------------------------------------------------------------------------------------
// Loading the project's declarations

/** Loads .proto files with protobufjs, resolving imports against `protoDir` (google/protobuf/* from the bundle). */
export function loadProjectProtos(protoDir: string, files: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string =>
    path.isAbsolute(target) ? target : path.join(protoDir, target);
  root.loadSync(files.map((f) => path.join(protoDir, f)), { keepCase: true });
  root.resolveAll();
  return root;
}

/** Parses in-memory .proto sources into one resolved Root (imports are not followed); for tests. */
export function parseProtoSources(...sources: string[]): protobuf.Root {
  const root = new protobuf.Root();
  for (const text of sources) protobuf.parse(text, root, { keepCase: true });
  root.resolveAll();
  return root;
}

// ---------------------------------------------------------------------------------------------------------------
// Comparison

export interface Mismatch {
  /** Full name of the message/enum/service, plus `.field` / `.VALUE` / `.Method` where it applies. */
  where: string;
  /** What differs: `missing in binary`, `number`, `type`, `label`, `map`, `oneof`, ... */
  what: string;
  declared: string;
  binary: string;
}

/** A field, enum value or method the binary has and the project does not declare. */
export interface Undeclared {
  where: string;
  binary: string;
}

/** A well-known-type field that protobufjs names differently from the binary (same number, type checked). */
export interface Renamed {
  where: string;
  declared: string;
  binary: string;
}

export interface Comparison {
  mismatches: Mismatch[];
  undeclared: Undeclared[];
  /** Only for google.protobuf.* (see compareDeclarations). */
  renamed: Renamed[];
  /** Full names of the messages, enums and services that were compared. */
  compared: string[];
}

export function formatMismatch(m: Mismatch): string {
  return `${m.where}: ${m.what} differs: declared ${m.declared}, binary ${m.binary}`;
}

const SCALAR_TYPES: Readonly<Record<string, string>> = {
  TYPE_DOUBLE: 'double',
  TYPE_FLOAT: 'float',
  TYPE_INT64: 'int64',
  TYPE_UINT64: 'uint64',
  TYPE_INT32: 'int32',
  TYPE_FIXED64: 'fixed64',
  TYPE_FIXED32: 'fixed32',
  TYPE_BOOL: 'bool',
  TYPE_STRING: 'string',
  TYPE_BYTES: 'bytes',
  TYPE_UINT32: 'uint32',
  TYPE_SFIXED32: 'sfixed32',
  TYPE_SFIXED64: 'sfixed64',
  TYPE_SINT32: 'sint32',
  TYPE_SINT64: 'sint64',
};

const stripDot = (name: string): string => (name.startsWith('.') ? name.slice(1) : name);

/** Describes a binary field's type as `int32`, `message envoy.x.Y`, `enum envoy.x.E` (`group` for groups). */
function binaryFieldType(f: FieldDescriptorObject): string {
  const t = f.type ?? 'TYPE_UNKNOWN';
  if (t === 'TYPE_MESSAGE') return `message ${stripDot(f.typeName ?? '?')}`;
  if (t === 'TYPE_ENUM') return `enum ${stripDot(f.typeName ?? '?')}`;
  return SCALAR_TYPES[t] ?? t;
}

function declaredType(type: string, resolved: protobuf.Type | protobuf.Enum | null): string {
  if (resolved instanceof protobuf.Type) return `message ${stripDot(resolved.fullName)}`;
  if (resolved instanceof protobuf.Enum) return `enum ${stripDot(resolved.fullName)}`;
  return type;
}

interface FieldShape {
  number: number;
  type: string; // value type for maps
  repeated: boolean;
  map: boolean;
  keyType?: string;
  oneof?: string; // real oneofs only (synthetic proto3-optional oneofs are reported as `optional`)
  optional: boolean; // proto3 `optional` (explicit presence)
}

function binaryFieldShape(owner: MessageDescriptorObject, f: FieldDescriptorObject, index: DescriptorIndex): FieldShape {
  const repeated = f.label === 'LABEL_REPEATED';
  const oneofDecl = f.oneofIndex !== undefined && !f.proto3Optional ? owner.oneofDecl?.[f.oneofIndex]?.name : undefined;
  const shape: FieldShape = { number: f.number, type: binaryFieldType(f), repeated, map: false, optional: f.proto3Optional === true };
  if (oneofDecl !== undefined) shape.oneof = oneofDecl;
  if (repeated && f.type === 'TYPE_MESSAGE' && f.typeName) {
    const entry = index.messages.get(stripDot(f.typeName));
    if (entry?.message.options?.mapEntry) {
      const key = entry.message.field?.find((x) => x.number === 1);
      const value = entry.message.field?.find((x) => x.number === 2);
      shape.map = true;
      shape.repeated = false;
      shape.keyType = key ? binaryFieldType(key) : '?';
      shape.type = value ? binaryFieldType(value) : '?';
    }
  }
  return shape;
}

function declaredFieldShape(field: protobuf.Field): FieldShape {
  const isMap = field instanceof protobuf.MapField;
  const partOf = field.partOf;
  const synthetic = partOf !== null && partOf.fieldsArray.length === 1 && partOf.name === `_${field.name}`;
  const shape: FieldShape = {
    number: field.id,
    type: declaredType(field.type, field.resolvedType),
    repeated: field.repeated && !isMap,
    map: isMap,
    optional: synthetic,
  };
  if (isMap) shape.keyType = (field as protobuf.MapField).keyType;
  if (partOf && !synthetic) shape.oneof = partOf.name;
  return shape;
}

/**
 * Every type/enum/service declared under `root`; google.protobuf.* (the well-known types protobufjs bundles) only
 * when `includeWellKnown`.
 */
function declaredReflections(root: protobuf.Root, includeWellKnown = false): Array<protobuf.Type | protobuf.Enum | protobuf.Service> {
  const out: Array<protobuf.Type | protobuf.Enum | protobuf.Service> = [];
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const child of ns.nestedArray) {
      if (!includeWellKnown && child.fullName === '.google.protobuf') continue;
      if (child instanceof protobuf.Type || child instanceof protobuf.Enum || child instanceof protobuf.Service) out.push(child);
      if (child instanceof protobuf.Namespace || child instanceof protobuf.Type || child instanceof protobuf.Service) visit(child as protobuf.NamespaceBase);
    }
  };
  visit(root);
  return out;
}

/**
 * Compares every message, enum and service declared in `root` against the binary's descriptors: presence; each
 * field's number, type, repeated-ness, map-ness (with key type), oneof membership and proto3 `optional`; each enum
 * value's number; each method's input/output types and streaming flags. Also lists what the binary has that the
 * declarations leave out (`undeclared`), which is not a wire incompatibility but a completeness question.
 */
export function compareDeclarations(
  root: protobuf.Root,
  index: DescriptorIndex,
  options: { includeWellKnown?: boolean } = {},
): Comparison {
  const mismatches: Mismatch[] = [];
  const undeclared: Undeclared[] = [];
  const renamed: Renamed[] = [];
  const compared: string[] = [];
  for (const r of declaredReflections(root, options.includeWellKnown)) {
    const fullName = stripDot(r.fullName);
    compared.push(fullName);
    if (r instanceof protobuf.Type) {
      const bin = index.messages.get(fullName);
      if (!bin) {
        const other = index.enums.has(fullName) ? 'an enum' : 'absent';
        mismatches.push({ where: fullName, what: 'message presence', declared: 'message', binary: other });
        continue;
      }
      const binFields = new Map((bin.message.field ?? []).map((f) => [f.name, f]));
      const binByNumber = new Map((bin.message.field ?? []).map((f) => [f.number, f]));
      // protobufjs bundles the well-known types with camelCase field names (the JS keys proto-loader then uses
      // even with keepCase): match those by number and report the name difference separately.
      const wellKnown = fullName.startsWith('google.protobuf.');
      const matchedBinaryFields = new Set<string>();
      for (const field of r.fieldsArray) {
        const where = `${fullName}.${field.name}`;
        let bf = binFields.get(field.name);
        if (!bf && wellKnown) {
          bf = binByNumber.get(field.id);
          if (bf) renamed.push({ where, declared: field.name, binary: bf.name });
        }
        if (!bf) {
          const byNumber = binByNumber.get(field.id);
          mismatches.push({
            where,
            what: 'field presence',
            declared: `field ${field.name} = ${field.id}`,
            binary: byNumber ? `no such field (number ${field.id} is ${byNumber.name})` : 'no such field',
          });
          continue;
        }
        matchedBinaryFields.add(bf.name);
        const d = declaredFieldShape(field);
        const b = binaryFieldShape(bin.message, bf, index);
        const check = (what: string, dv: unknown, bv: unknown): void => {
          if (dv !== bv) mismatches.push({ where, what, declared: String(dv), binary: String(bv) });
        };
        check('number', d.number, b.number);
        check('type', d.type, b.type);
        check('repeated', d.repeated, b.repeated);
        check('map', d.map, b.map);
        if (d.map || b.map) check('map key type', d.keyType, b.keyType);
        check('oneof', d.oneof ?? '(none)', b.oneof ?? '(none)');
        check('proto3 optional', d.optional, b.optional);
      }
      for (const bf of bin.message.field ?? []) {
        if (!matchedBinaryFields.has(bf.name)) {
          undeclared.push({ where: `${fullName}.${bf.name}`, binary: `${binaryFieldType(bf)} = ${bf.number}` });
        }
      }
      // Nested messages/enums that the binary has but the declaration omits (map entries excepted).
      for (const nested of bin.message.nestedType ?? []) {
        if (nested.options?.mapEntry) continue;
        if (!r.nested?.[nested.name]) undeclared.push({ where: `${fullName}.${nested.name}`, binary: 'nested message' });
      }
      for (const nested of bin.message.enumType ?? []) {
        if (!r.nested?.[nested.name]) undeclared.push({ where: `${fullName}.${nested.name}`, binary: 'nested enum' });
      }
    } else if (r instanceof protobuf.Enum) {
      const bin = index.enums.get(fullName);
      if (!bin) {
        mismatches.push({ where: fullName, what: 'enum presence', declared: 'enum', binary: index.messages.has(fullName) ? 'a message' : 'absent' });
        continue;
      }
      const binValues = new Map((bin.enumeration.value ?? []).map((v) => [v.name, v.number]));
      for (const [name, number] of Object.entries(r.values)) {
        const bv = binValues.get(name);
        if (bv === undefined) {
          mismatches.push({ where: `${fullName}.${name}`, what: 'enum value presence', declared: String(number), binary: 'no such value' });
        } else if (bv !== number) {
          mismatches.push({ where: `${fullName}.${name}`, what: 'enum value number', declared: String(number), binary: String(bv) });
        }
      }
      for (const [name, number] of binValues) {
        if (!(name in r.values)) undeclared.push({ where: `${fullName}.${name}`, binary: `= ${number}` });
      }
    } else {
      const bin = index.services.get(fullName);
      if (!bin) {
        mismatches.push({ where: fullName, what: 'service presence', declared: 'service', binary: 'absent' });
        continue;
      }
      const binMethods = new Map((bin.service.method ?? []).map((m) => [m.name, m]));
      for (const method of r.methodsArray) {
        const where = `${fullName}.${method.name}`;
        const bm = binMethods.get(method.name);
        if (!bm) {
          mismatches.push({ where, what: 'method presence', declared: 'rpc', binary: 'no such method' });
          continue;
        }
        const check = (what: string, dv: unknown, bv: unknown): void => {
          if (dv !== bv) mismatches.push({ where, what, declared: String(dv), binary: String(bv) });
        };
        check('input type', stripDot(method.resolvedRequestType?.fullName ?? method.requestType), stripDot(bm.inputType));
        check('output type', stripDot(method.resolvedResponseType?.fullName ?? method.responseType), stripDot(bm.outputType));
        check('client streaming', method.requestStream === true, bm.clientStreaming === true);
        check('server streaming', method.responseStream === true, bm.serverStreaming === true);
      }
      for (const bm of bin.service.method ?? []) {
        if (!r.methods[bm.name]) undeclared.push({ where: `${fullName}.${bm.name}`, binary: 'rpc' });
      }
    }
  }
  return { mismatches, undeclared, renamed, compared };
}

/** The file each declared message/enum/service lives in according to protobufjs (relative to `protoDir`). */
export function declaredFiles(root: protobuf.Root, protoDir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of declaredReflections(root)) {
    if (r.filename) out.set(stripDot(r.fullName), path.relative(protoDir, r.filename).split(path.sep).join('/'));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering (for humans: a proto-like summary of an embedded descriptor, without options)

/** Renders a descriptor as proto-like text (fields, numbers, types, oneofs, enums, services; options omitted). */
export function renderFileDescriptor(file: FileDescriptorObject): string {
  const lines: string[] = [`// ${file.name}`, `syntax = "${file.syntax ?? 'proto2'}";`, `package ${file.package ?? ''};`];
  for (const dep of file.dependency ?? []) lines.push(`import "${dep}";`);
  const typeOf = (f: FieldDescriptorObject, owner: MessageDescriptorObject): string => {
    if (f.label === 'LABEL_REPEATED' && f.type === 'TYPE_MESSAGE' && f.typeName) {
      const entryName = f.typeName.slice(f.typeName.lastIndexOf('.') + 1);
      const entry = owner.nestedType?.find((n) => n.name === entryName && n.options?.mapEntry);
      if (entry) {
        const k = entry.field?.find((x) => x.number === 1);
        const v = entry.field?.find((x) => x.number === 2);
        return `map<${k ? binaryFieldType(k) : '?'}, ${v ? binaryFieldType(v).replace(/^(message|enum) /, '') : '?'}>`;
      }
    }
    const t = binaryFieldType(f).replace(/^(message|enum) /, '');
    if (f.label === 'LABEL_REPEATED') return `repeated ${t}`;
    if (f.proto3Optional) return `optional ${t}`;
    return t;
  };
  const renderEnum = (e: EnumDescriptorObject, indent: string): void => {
    lines.push(`${indent}enum ${e.name} {`);
    for (const v of e.value ?? []) lines.push(`${indent}  ${v.name} = ${v.number};`);
    lines.push(`${indent}}`);
  };
  const renderMessage = (m: MessageDescriptorObject, indent: string): void => {
    lines.push(`${indent}message ${m.name} {`);
    for (const n of m.nestedType ?? []) if (!n.options?.mapEntry) renderMessage(n, indent + '  ');
    for (const e of m.enumType ?? []) renderEnum(e, indent + '  ');
    const byOneof = new Map<number, FieldDescriptorObject[]>();
    for (const f of m.field ?? []) {
      if (f.oneofIndex !== undefined && !f.proto3Optional) {
        const list = byOneof.get(f.oneofIndex) ?? [];
        list.push(f);
        byOneof.set(f.oneofIndex, list);
      }
    }
    const printedOneofs = new Set<number>();
    for (const f of m.field ?? []) {
      if (f.oneofIndex !== undefined && !f.proto3Optional) {
        if (printedOneofs.has(f.oneofIndex)) continue;
        printedOneofs.add(f.oneofIndex);
        lines.push(`${indent}  oneof ${m.oneofDecl?.[f.oneofIndex]?.name ?? '?'} {`);
        for (const g of byOneof.get(f.oneofIndex) ?? []) lines.push(`${indent}    ${typeOf(g, m)} ${g.name} = ${g.number};`);
        lines.push(`${indent}  }`);
      } else {
        lines.push(`${indent}  ${typeOf(f, m)} ${f.name} = ${f.number};`);
      }
    }
    lines.push(`${indent}}`);
  };
  for (const e of file.enumType ?? []) renderEnum(e, '');
  for (const m of file.messageType ?? []) renderMessage(m, '');
  for (const s of file.service ?? []) {
    lines.push(`service ${s.name} {`);
    for (const m of s.method ?? []) {
      lines.push(
        `  rpc ${m.name}(${m.clientStreaming ? 'stream ' : ''}${stripDot(m.inputType)}) returns (${m.serverStreaming ? 'stream ' : ''}${stripDot(m.outputType)});`,
      );
    }
    lines.push('}');
  }
  return lines.join('\n');
}
