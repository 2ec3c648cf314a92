/**
 * @module audit/canonical
 * The one serialization a record's hash is computed over: JSON with every object's keys sorted (by UTF-16 code
 * units, as `Array.prototype.sort` orders strings) and no whitespace; otherwise exactly what `JSON.stringify`
 * writes (`toJSON` honoured, `undefined` and functions left out of objects and `null` in arrays, non-finite numbers
 * `null`). It is a fixed point: parsing it and serializing again gives the same text, so a verifier that reads a
 * line back computes the hash the writer did whatever order the keys arrived in.
 */

export function canonicalJson(value: unknown): string {
  const out = serialize(value);
  if (out === undefined) throw new TypeError(`expected a JSON value, got ${typeof value}`);
  return out;
}

/** `"key":` per key seen, and the sorted keys per object shape: records repeat a few shapes and many keys. */
const quotedKeys = new Map<string, string>();
const sortedShapes = new Map<string, readonly string[]>();
const CACHE_LIMIT = 10_000;

function quoted(key: string): string {
  let q = quotedKeys.get(key);
  if (q === undefined) {
    q = `${JSON.stringify(key)}:`;
    if (quotedKeys.size < CACHE_LIMIT) quotedKeys.set(key, q);
  }
  return q;
}

function sortedKeys(object: object): readonly string[] {
  const keys = Object.keys(object);
  // Unambiguous whatever the keys hold (a join on a separator is not).
  const shape = JSON.stringify(keys);
  let sorted = sortedShapes.get(shape);
  if (sorted === undefined) {
    sorted = keys.sort();
    if (sortedShapes.size < CACHE_LIMIT) sortedShapes.set(shape, sorted);
  }
  return sorted;
}

// Written for speed (it runs for every record of a file sink): loops and string concatenation, and the caches above.
function serialize(value: unknown): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string': return JSON.stringify(value);
    case 'number': return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean': return value ? 'true' : 'false';
    case 'bigint': throw new TypeError('a bigint has no JSON form; convert it to a string or number first');
    case 'undefined': case 'function': case 'symbol': return undefined;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += serialize(value[i]) ?? 'null';
    }
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  let out = '{';
  for (const key of sortedKeys(object)) {
    const member = serialize(object[key]);
    if (member === undefined) continue;
    out += `${out.length === 1 ? '' : ','}${quoted(key)}${member}`;
  }
  return `${out}}`;
}
