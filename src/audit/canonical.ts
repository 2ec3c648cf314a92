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
    return `[${value.map((item) => serialize(item) ?? 'null').join(',')}]`;
  }
  const object = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(object).sort()) {
    const member = serialize(object[key]);
    if (member !== undefined) parts.push(`${JSON.stringify(key)}:${member}`);
  }
  return `{${parts.join(',')}}`;
}
