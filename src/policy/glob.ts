/**
 * @module policy/glob
 * Patterns in rules: `*` matches any run of characters (so `/admin/*` covers nested paths and `admin.*` every admin
 * topic), `?` one character, anything else itself. Compiled once when the config loads.
 */

export type Matcher = (value: string) => boolean;

export function compileGlob(pattern: string): Matcher {
  if (!pattern.includes('*') && !pattern.includes('?')) return (value) => value === pattern;
  const starAt = pattern.indexOf('*');
  if (starAt === pattern.length - 1 && !pattern.includes('?')) {
    const prefix = pattern.slice(0, -1);
    return (value) => value.startsWith(prefix);
  }
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  const regex = new RegExp(`^${source}$`, 's');
  return (value) => regex.test(value);
}

/** Any-of over one pattern or a list; `undefined` (no condition) matches everything. */
export function compilePatterns(patterns: string | readonly string[] | undefined): Matcher | undefined {
  if (patterns === undefined) return undefined;
  const list = (typeof patterns === 'string' ? [patterns] : patterns).map(compileGlob);
  if (list.length === 1) return list[0];
  return (value) => list.some((m) => m(value));
}
