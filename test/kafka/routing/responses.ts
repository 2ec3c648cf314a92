/**
 * Response builders for the routing, api-versions and property tests: bodies start from the generated schemas'
 * defaults (so a test names only the fields it cares about) and are encoded with the frame codecs.
 */
import { defaultStruct } from '../../../src/kafka/protocol/codec/schema.ts';
import type { FieldType, StructSchema } from '../../../src/kafka/protocol/codec/schema.ts';
import { API_SPECS } from '../../../src/kafka/protocol/generated/index.ts';
import type { KnownApiKey, ResponseBodies } from '../../../src/kafka/protocol/generated/index.ts';
import { encodeResponse } from '../../../src/kafka/protocol/messages.ts';

function responseStruct(apiKey: number): StructSchema {
  const codecs = API_SPECS.get(apiKey)?.codecs;
  if (codecs == null) throw new Error(`no codecs for api key ${apiKey}`);
  return codecs.responseSchema.struct;
}

/** A response body of `apiKey`: the schema's defaults, then `fields`. */
export function responseBody<K extends KnownApiKey>(apiKey: K, fields: Partial<ResponseBodies[K]> = {}): ResponseBodies[K] {
  return { ...defaultStruct(responseStruct(apiKey)), ...fields } as unknown as ResponseBodies[K];
}

/** An element of the struct array at `path` (property names from the top) of `apiKey`'s response: defaults, then `fields`. */
export function element<T extends object>(apiKey: number, path: readonly string[], fields: NoInfer<Partial<T>> = {}): T {
  let schema = responseStruct(apiKey);
  for (const name of path) {
    const field = schema.fields.find((candidate) => candidate.name === name);
    if (field === undefined) throw new Error(`no field ${path.join('.')}`);
    let type: FieldType = field.type;
    if (typeof type === 'object' && type.kind === 'array') type = type.element;
    if (typeof type !== 'object' || type.kind !== 'struct') throw new Error(`${path.join('.')} is not a struct`);
    schema = type;
  }
  return { ...defaultStruct(schema), ...fields } as T;
}

/** A whole response frame (size prefix included), correlation id 7 unless told. */
export function response<K extends KnownApiKey>(apiKey: K, apiVersion: number, body: ResponseBodies[K], correlationId = 7): Buffer {
  return encodeResponse({ correlationId, taggedFields: [] }, apiKey, apiVersion, body);
}
