/**
 * @module masking/json-path
 * The JSON paths masking rules name: `$.card.number`, `$.items[*].email`, `$.data.*`, `$['odd key']`, `$.list[0]`,
 * and `$..email` (at any depth). Compiled once per rule; matching walks a parsed value.
 */

export type PathSegment =
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'index'; readonly index: number }
  | { readonly kind: 'wildcard' }
  | { readonly kind: 'descendant'; readonly key: string };

export interface JsonPath {
  readonly source: string;
  readonly segments: readonly PathSegment[];
}

export class JsonPathError extends Error {
  override name = 'JsonPathError';
}

export function compileJsonPath(source: string): JsonPath {
  if (!source.startsWith('$')) throw new JsonPathError(`JSON path ${JSON.stringify(source)}: expected it to start with "$"`);
  const segments: PathSegment[] = [];
  let i = 1;
  const fail = (what: string) => new JsonPathError(`JSON path ${JSON.stringify(source)}: expected ${what} at offset ${i}`);
  const ident = () => {
    const m = /^[A-Za-z0-9_$@:-]+/.exec(source.slice(i));
    if (!m) throw fail('a name');
    i += m[0].length;
    return m[0];
  };
  while (i < source.length) {
    if (source.startsWith('..', i)) {
      i += 2;
      segments.push({ kind: 'descendant', key: ident() });
    } else if (source[i] === '.') {
      i += 1;
      if (source[i] === '*') { i += 1; segments.push({ kind: 'wildcard' }); } else segments.push({ kind: 'key', key: ident() });
    } else if (source[i] === '[') {
      const close = source.indexOf(']', i);
      if (close === -1) throw fail('"]"');
      const inner = source.slice(i + 1, close);
      if (inner === '*') segments.push({ kind: 'wildcard' });
      else if (/^\d+$/.test(inner)) segments.push({ kind: 'index', index: Number(inner) });
      else if (/^'[^']*'$/.test(inner) || /^"[^"]*"$/.test(inner)) segments.push({ kind: 'key', key: inner.slice(1, -1) });
      else throw fail('[*], [n] or [\'name\']');
      i = close + 1;
    } else {
      throw fail('".", ".." or "["');
    }
  }
  return { source, segments };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Container = Json[] | { [key: string]: Json };

/** Calls `visit(container, key)` for every location the path selects in `root` (never the root itself). */
export function forEachMatch(root: Json, path: JsonPath, visit: (container: Container, key: string | number) => void): void {
  const walk = (value: Json, depth: number, parent: Container | undefined, key: string | number | undefined): void => {
    if (depth === path.segments.length) {
      if (parent !== undefined && key !== undefined) visit(parent, key);
      return;
    }
    const seg = path.segments[depth]!;
    if (value === null || typeof value !== 'object') return;
    switch (seg.kind) {
      case 'key':
        if (!Array.isArray(value) && Object.hasOwn(value, seg.key)) walk(value[seg.key]!, depth + 1, value, seg.key);
        break;
      case 'index':
        if (Array.isArray(value) && seg.index < value.length) walk(value[seg.index]!, depth + 1, value, seg.index);
        break;
      case 'wildcard':
        if (Array.isArray(value)) value.forEach((v, i) => walk(v, depth + 1, value, i));
        else for (const k of Object.keys(value)) walk(value[k]!, depth + 1, value, k);
        break;
      case 'descendant': {
        const children: Array<[Json, string | number]> = Array.isArray(value)
          ? value.map((v, i) => [v, i])
          : Object.entries(value).map(([k, v]) => [v, k]);
        for (const [child, k] of children) {
          if (k === seg.key) walk(child, depth + 1, value, k);
          walk(child, depth, value, k);
        }
        break;
      }
    }
  };
  walk(root, 0, undefined, undefined);
}
