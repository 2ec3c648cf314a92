/**
 * @module identity/claims
 * Reading configured claims out of a verified JWT payload.
 */

/**
 * Reads a claim by name or dotted path ("groups", "realm_access.roles"). Claim names may themselves contain dots
 * (Auth0-style namespaced claims such as "https://example.com/roles", Kubernetes' "kubernetes.io"), so at every
 * level the longest name that exists wins: "https://example.com/roles" is found as one claim, and
 * "kubernetes.io.namespace" as the "namespace" member of the "kubernetes.io" claim.
 */
export function readClaim(payload: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  if (!path.includes('.')) return undefined;
  return walk(payload, path.split('.'));
}

function walk(current: unknown, segments: readonly string[]): unknown {
  if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
  for (let take = segments.length; take >= 1; take--) {
    const name = segments.slice(0, take).join('.');
    if (!Object.hasOwn(current, name)) continue;
    const value = (current as Record<string, unknown>)[name];
    if (take === segments.length) return value;
    const found = walk(value, segments.slice(take));
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Groups from a claim value: an array of strings or a single string. Non-string members of an array are ignored;
 * any other value (number, object, null, absent) yields no groups. Empty strings are dropped; the result is
 * de-duplicated in claim order.
 */
export function groupsFromClaim(value: unknown): string[] {
  const raw = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  const seen = new Set<string>();
  for (const item of raw) {
    if (typeof item === 'string' && item.length > 0) seen.add(item);
  }
  return [...seen];
}
