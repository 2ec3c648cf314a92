/**
 * The authority test: the project's own .proto declarations against the FileDescriptorProtos compiled into the
 * pinned Envoy binary. Field numbers, types, repeated/map-ness, oneofs, enum numbers and method signatures must
 * match; declared messages must also be complete (no field the binary has is left out).
 *
 * Every declared file is embedded in Envoy 1.40.0, one of them under another name: grpc/health/v1/health.proto is
 * embedded as "src/proto/grpc/health/v1/health.proto" (gRPC's source layout), not under its usual import path.
 * The test asserts both facts explicitly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ENVOY_BINARY } from '../../scripts/lib/paths.ts';
import { ensureEnvoy } from '../../scripts/provision.ts';
import {
  compareDeclarations,
  declaredFiles,
  descriptorEnd,
  decodeFileDescriptor,
  extractFileDescriptor,
  formatMismatch,
  indexDescriptors,
  loadProjectProtos,
  parseProtoSources,
  readBinary,
  type ExtractedFile,
} from '../../scripts/lib/envoy-descriptors.ts';
import { PROTO_DIR, packageDefinition } from '../../src/grpc/protos.ts';

/** Project file -> the name its descriptor carries in the binary, where that differs. */
const BINARY_FILE_NAME: Readonly<Record<string, string>> = {
  'grpc/health/v1/health.proto': 'src/proto/grpc/health/v1/health.proto',
};
/** The well-known types the project imports (from protobufjs's bundle, not from proto/). */
const WELL_KNOWN_FILES = [
  'google/protobuf/any.proto',
  'google/protobuf/duration.proto',
  'google/protobuf/struct.proto',
  'google/protobuf/timestamp.proto',
  'google/protobuf/wrappers.proto',
];

function listProtoFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: false }) as string[])
    .filter((f) => f.endsWith('.proto'))
    .map((f) => f.split(path.sep).join('/'))
    .sort();
}

const provisioned = await ensureEnvoy();
assert.equal(provisioned.path, ENVOY_BINARY);
const binary = readBinary(ENVOY_BINARY);
const projectFiles = listProtoFiles(PROTO_DIR);
const binaryName = (file: string): string => BINARY_FILE_NAME[file] ?? file;

const extracted = new Map<string, ExtractedFile>();
for (const file of [...projectFiles.map(binaryName), ...WELL_KNOWN_FILES]) {
  const found = extractFileDescriptor(binary, file);
  if (found) extracted.set(file, found);
}
const index = indexDescriptors([...extracted.values()].map((e) => e.descriptor));
const root = loadProjectProtos(PROTO_DIR, projectFiles);

test('the project declares the expected API files', () => {
  assert.deepEqual(projectFiles, [
    'envoy/config/core/v3/address.proto',
    'envoy/config/core/v3/base.proto',
    'envoy/extensions/filters/http/ext_proc/v3/processing_mode.proto',
    'envoy/service/auth/v3/attribute_context.proto',
    'envoy/service/auth/v3/external_auth.proto',
    'envoy/service/ext_proc/v3/external_processor.proto',
    'envoy/service/network_ext_proc/v3/network_external_processor.proto',
    'envoy/type/v3/http_status.proto',
    'google/rpc/status.proto',
    'grpc/health/v1/health.proto',
  ]);
});

test('every declared file is embedded in the binary, with the same package', () => {
  for (const file of projectFiles) {
    const name = binaryName(file);
    const found = extracted.get(name);
    assert.ok(found, `${file}: no FileDescriptorProto named ${name} in ${ENVOY_BINARY}`);
    assert.ok(found.candidatesAgree, `${name}: the ${found.candidates} copies in the binary declare different things`);
    const declaredPackage = /^package\s+([\w.]+)\s*;/m.exec(fs.readFileSync(path.join(PROTO_DIR, file), 'utf8'))?.[1];
    assert.equal(declaredPackage, found.descriptor.package, `${file}: package`);
  }
});

test('grpc/health/v1/health.proto is embedded only under gRPC source-tree name', () => {
  assert.equal(extractFileDescriptor(binary, 'grpc/health/v1/health.proto'), undefined);
  const health = extracted.get('src/proto/grpc/health/v1/health.proto');
  assert.ok(health);
  assert.equal(health.descriptor.package, 'grpc.health.v1');
});

test('the well-known types the project imports are embedded too', () => {
  for (const file of WELL_KNOWN_FILES) assert.ok(extracted.get(file), `${file} is not embedded`);
});

test('every declared message, enum and service lives in the corresponding binary file', () => {
  const files = declaredFiles(root, PROTO_DIR);
  assert.ok(files.size > 50, `only ${files.size} declarations found`);
  for (const [fullName, file] of files) {
    const bin = index.messages.get(fullName) ?? index.enums.get(fullName) ?? index.services.get(fullName);
    assert.ok(bin, `${fullName} (declared in ${file}) is not in the binary`);
    assert.equal(bin.file, binaryName(file), `${fullName}: declared in ${file}, binary has it in ${bin.file}`);
  }
});

test('declared fields, enum values and methods match the binary', () => {
  const { mismatches, compared } = compareDeclarations(root, index);
  assert.ok(compared.includes('envoy.service.network_ext_proc.v3.ProcessingResponse'));
  assert.ok(compared.includes('envoy.service.ext_proc.v3.ExternalProcessor'));
  assert.deepEqual(mismatches.map(formatMismatch), []);
});

test('declared messages and enums are complete (nothing the binary has is left out)', () => {
  const { undeclared } = compareDeclarations(root, index);
  assert.deepEqual(
    undeclared.map((u) => `${u.where} (${u.binary})`),
    [],
  );
});

test("protobufjs's bundled well-known types match the binary; only Value's field names differ (camelCase)", () => {
  const { mismatches, undeclared, renamed } = compareDeclarations(root, index, { includeWellKnown: true });
  assert.deepEqual(mismatches.map(formatMismatch), []);
  assert.deepEqual(undeclared, []);
  assert.deepEqual(
    renamed.map((r) => `${r.where} -> ${r.binary}`),
    [
      'google.protobuf.Value.nullValue -> null_value',
      'google.protobuf.Value.numberValue -> number_value',
      'google.protobuf.Value.stringValue -> string_value',
      'google.protobuf.Value.boolValue -> bool_value',
      'google.protobuf.Value.structValue -> struct_value',
      'google.protobuf.Value.listValue -> list_value',
    ],
  );
});

test("proto-loader's own (protobufjs 7) well-known types match the binary by number and type", () => {
  // proto-loader encodes with its own protobufjs copy; the definition carries its descriptors of the bundled types.
  // They use relative type names and name map entries differently ("Fields"), so types are compared by simple
  // name, and maps by their key and value types.
  interface Field { name: string; number: number; type?: string; label?: string; typeName?: string }
  interface Message { field?: Field[]; nestedType?: Array<{ name: string; field?: Field[]; options?: { mapEntry?: boolean } | null }> }
  const simple = (n: string | undefined): string => (n ?? '').slice((n ?? '').lastIndexOf('.') + 1);
  const describe = (f: Field, entry: Message | undefined): string => {
    if (entry) {
      const [k, v] = [1, 2].map((n) => entry.field?.find((x) => x.number === n));
      return `map<${k?.type}, ${v?.type} ${simple(v?.typeName)}>`;
    }
    return `${f.label} ${f.type} ${simple(f.typeName)}`;
  };
  const pd = packageDefinition();
  const names = ['Struct', 'Value', 'ListValue', 'Any', 'Duration', 'Timestamp', 'BoolValue'].map((n) => `google.protobuf.${n}`);
  for (const fullName of names) {
    const def = pd[fullName];
    assert.ok(def && 'format' in def, `${fullName} missing from the package definition`);
    const declared = def.type as Message;
    const bin = index.messages.get(fullName);
    assert.ok(bin, `${fullName} not in the binary`);
    const binFields = new Map((bin.message.field ?? []).map((f) => [f.number, f]));
    assert.equal(declared.field?.length, binFields.size, `${fullName}: field count`);
    for (const f of declared.field ?? []) {
      const b = binFields.get(f.number);
      assert.ok(b, `${fullName}.${f.name}: number ${f.number} not in the binary`);
      const declaredEntry = declared.nestedType?.find((n) => n.name === simple(f.typeName) && n.options?.mapEntry);
      const binEntry = b.typeName ? index.messages.get(b.typeName.replace(/^\./, '')) : undefined;
      assert.equal(
        describe(f, declaredEntry),
        describe(b, binEntry?.message.options?.mapEntry ? binEntry.message : undefined),
        `${fullName}.${f.name} (binary: ${b.name})`,
      );
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------
// The comparison itself

test('the comparison catches wrong declarations and names the field and both values', () => {
  const wrong = parseProtoSources(`
    syntax = "proto3";
    package envoy.service.network_ext_proc.v3;
    message Data {
      bytes data = 1;
      bool end_of_stream = 3;          // binary: 2
    }
    message ProcessingRequest {
      oneof request {                  // binary: no oneof in 1.40
        Data read_data = 1;
        Data write_data = 2;
      }
      map<string, string> attributes = 4;   // binary: map<string, Struct>
    }
    message ProcessingResponse {
      enum ConnectionStatus {
        CONTINUE = 0;
        CLOSE = 2;                     // binary: 1
        CLOSE_RST = 1;                 // binary: 2
        CLOSE_LATER = 3;               // binary: absent
      }
      repeated Data read_data = 1;     // binary: singular
      string connection_status = 4;    // binary: the enum
      Data dynamic_metadata = 5;       // binary: google.protobuf.Struct
      uint32 close_stream_to_ext_proc_server = 6;   // binary: bool
      bool new_connection = 7;         // binary: absent (a later API version)
    }
    message NewConnection {}           // binary: absent
    service NetworkExternalProcessor {
      rpc Process(ProcessingRequest) returns (stream ProcessingResponse);   // binary: client streaming too
    }
  `);
  const { mismatches } = compareDeclarations(wrong, index);
  const pkg = 'envoy.service.network_ext_proc.v3';
  assert.deepEqual(mismatches.map(formatMismatch).sort(), [
    `${pkg}.Data.end_of_stream: number differs: declared 3, binary 2`,
    `${pkg}.NetworkExternalProcessor.Process: client streaming differs: declared false, binary true`,
    `${pkg}.NewConnection: message presence differs: declared message, binary absent`,
    `${pkg}.ProcessingRequest.attributes: type differs: declared string, binary message google.protobuf.Struct`,
    `${pkg}.ProcessingRequest.read_data: oneof differs: declared request, binary (none)`,
    `${pkg}.ProcessingRequest.write_data: oneof differs: declared request, binary (none)`,
    `${pkg}.ProcessingResponse.ConnectionStatus.CLOSE: enum value number differs: declared 2, binary 1`,
    `${pkg}.ProcessingResponse.ConnectionStatus.CLOSE_LATER: enum value presence differs: declared 3, binary no such value`,
    `${pkg}.ProcessingResponse.ConnectionStatus.CLOSE_RST: enum value number differs: declared 1, binary 2`,
    `${pkg}.ProcessingResponse.close_stream_to_ext_proc_server: type differs: declared uint32, binary bool`,
    `${pkg}.ProcessingResponse.connection_status: type differs: declared string, binary enum ${pkg}.ProcessingResponse.ConnectionStatus`,
    `${pkg}.ProcessingResponse.dynamic_metadata: type differs: declared message ${pkg}.Data, binary message google.protobuf.Struct`,
    `${pkg}.ProcessingResponse.new_connection: field presence differs: declared field new_connection = 7, binary no such field`,
    `${pkg}.ProcessingResponse.read_data: repeated differs: declared true, binary false`,
  ]);
});

test('the comparison catches map-ness, map key types and misnumbered fields', () => {
  const wrong = parseProtoSources(`
    syntax = "proto3";
    package envoy.service.auth.v3;
    message AttributeContext {
      message Peer {
        repeated string labels = 3;     // binary: map<string, string>
        string principal = 5;           // binary: 4 (5 is certificate)
      }
      map<int32, string> context_extensions = 10;   // binary: map<string, string>
    }
  `);
  const { mismatches } = compareDeclarations(wrong, index);
  const at = 'envoy.service.auth.v3.AttributeContext';
  assert.deepEqual(mismatches.map(formatMismatch).sort(), [
    `${at}.Peer.labels: map differs: declared false, binary true`,
    `${at}.Peer.labels: map key type differs: declared undefined, binary string`,
    `${at}.Peer.labels: repeated differs: declared true, binary false`,
    `${at}.Peer.principal: number differs: declared 5, binary 4`,
    `${at}.context_extensions: map key type differs: declared int32, binary string`,
  ]);
});

test('a correct in-memory declaration compares clean', () => {
  const right = parseProtoSources(`
    syntax = "proto3";
    package envoy.service.network_ext_proc.v3;
    message Data { bytes data = 1; bool end_of_stream = 2; }
  `);
  const { mismatches, undeclared } = compareDeclarations(right, index);
  assert.deepEqual(mismatches, []);
  assert.deepEqual(undeclared, []);
});

test('descriptorEnd stops at the next descriptor and at the terminating NUL', () => {
  const encode = (name: string, pkg: string): Buffer => {
    const n = Buffer.from(name);
    const p = Buffer.from(pkg);
    return Buffer.concat([Buffer.from([0x0a, n.length]), n, Buffer.from([0x12, p.length]), p, Buffer.from([0x62, 6]), Buffer.from('proto3')]);
  };
  const a = encode('a/one.proto', 'pkg.one');
  const b = encode('b/two.proto', 'pkg.two');
  const both = Buffer.concat([Buffer.from([0xff, 0x00]), a, b, Buffer.from([0x00, 0x0a, 0x03])]);
  const endA = descriptorEnd(both, 2);
  assert.equal(endA, 2 + a.length);
  assert.equal(descriptorEnd(both, endA), endA + b.length);
  assert.deepEqual(decodeFileDescriptor(both.subarray(2, endA)), { name: 'a/one.proto', package: 'pkg.one', syntax: 'proto3' });
  // A truncated length-delimited field ends the descriptor before it.
  assert.equal(descriptorEnd(Buffer.concat([a, Buffer.from([0x1a, 0x7f, 0x41])]), 0), a.length);
});
