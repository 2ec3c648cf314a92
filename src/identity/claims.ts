/**
 * @module identity/claims
 * Reading configured claims out of a verified JWT payload.
 */

/**
 * Reads a claim by name or dotted path ("groups", "realm_access.roles"). A claim whose name literally contains dots
 * (Auth0-style namespaced claims such as "https://example.com/roles") is found first by its full name; only when no
 * such top-level claim exists is the name split on dots and walked through nested objects.
 */
export function readClaim(payload: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  if (!path.includes('.')) return undefined;
  let current: unknown = payload;
  for (const segment of path.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
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
