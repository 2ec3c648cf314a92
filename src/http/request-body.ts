/**
 * @module http/request-body
 * A request body as a document body rules can read, by its content type: JSON (and the JSON patch flavours the
 * Kubernetes API accepts), YAML (server-side apply), and JSON Patch (RFC 6902), read as the values it sets — so
 * `kubectl patch --type=json` cannot smuggle `privileged: true` past a rule written against the object's shape.
 */
import { parse as parseYaml } from 'yaml';

export type ParsedBody = { readonly ok: true; readonly doc: unknown } | { readonly ok: false; readonly reason: string };

const mediaType = (contentType: string | undefined): string => (contentType ?? '').split(';')[0]!.trim().toLowerCase();

export function parseRequestBody(contentType: string | undefined, body: Buffer): ParsedBody {
  const type = mediaType(contentType);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return { ok: false, reason: `the ${type || 'untyped'} body is not UTF-8` };
  }
  try {
    if (type === 'application/json-patch+json') return { ok: true, doc: jsonPatchValues(JSON.parse(text)) };
    if (type === '' || type === 'application/json' || type.endsWith('+json')) return { ok: true, doc: JSON.parse(text) as unknown };
    if (type === 'application/yaml' || type === 'application/x-yaml' || type === 'text/yaml' || type.endsWith('+yaml')) {
      return { ok: true, doc: parseYaml(text) as unknown };
    }
  } catch (err) {
    return { ok: false, reason: `the ${type || 'untyped'} body does not parse: ${(err as Error).message.split('\n')[0]}` };
  }
  return { ok: false, reason: `a body of content type ${JSON.stringify(type)} cannot be inspected` };
}

type Node = Record<string, unknown> | unknown[];

/**
 * The document a JSON Patch's add/replace/test operations would write into an empty one: `{"op":"add",
 * "path":"/spec/containers/0/securityContext/privileged","value":true}` reads as
 * `{spec:{containers:[{securityContext:{privileged:true}}]}}`. Removes and moves add no values and are skipped.
 */
export function jsonPatchValues(patch: unknown): unknown {
  if (!Array.isArray(patch)) throw new Error('expected a JSON Patch array of operations');
  const root: Record<string, unknown> = {};
  patch.forEach((op: unknown, i) => {
    if (op === null || typeof op !== 'object') throw new Error(`operation ${i}: expected an object`);
    const { op: kind, path, value } = op as { op?: unknown; path?: unknown; value?: unknown };
    if (typeof path !== 'string' || (path !== '' && !path.startsWith('/'))) throw new Error(`operation ${i}: expected a JSON pointer in "path"`);
    if (kind !== 'add' && kind !== 'replace' && kind !== 'test') return;
    const segments = path.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (segments.length === 0) {
      root['$root'] = value;
      return;
    }
    let node: Node = root;
    segments.forEach((segment, depth) => {
      const last = depth === segments.length - 1;
      const next = segments[depth + 1];
      const child = (): Node => (next !== undefined && (next === '-' || /^\d+$/.test(next)) ? [] : {});
      if (Array.isArray(node)) {
        const index = segment === '-' ? node.length : Number(segment);
        if (last) node[index] = value;
        else node = (node[index] as Node | undefined) ?? (node[index] = child()) as Node;
      } else if (last) {
        node[segment] = value;
      } else {
        const existing = node[segment];
        node = existing !== null && typeof existing === 'object' ? existing as Node : (node[segment] = child()) as Node;
      }
    });
  });
  return '$root' in root ? root['$root'] : root;
}
