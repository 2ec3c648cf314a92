/**
 * @module identity/group-mappings
 * Groups a principal gains from configuration rather than from its credential: by subject (an API key's name, a
 * service account, a SPIFFE id; exact or glob) or by a claim of its verified token. Applied once per
 * authentication, for every method, after the method's own groups: each matching entry adds its groups, in config
 * order, de-duplicated. An entry can be narrowed to issuers or authentication methods, so that a subject one source
 * vouches for cannot borrow the groups meant for the same name from another source.
 *
 * Everything is compiled when the identities are built; mapping a principal costs a few string comparisons.
 */
import type { AuthMethod, Principal } from '../core/principal.ts';
import { compilePatterns } from '../policy/glob.ts';
import { readClaim } from './claims.ts';
import { describeValue } from './errors.ts';

export interface GroupMappingOptions {
  /** Principal subjects, exact or globs. */
  readonly subject?: string | readonly string[];
  /** A claim of the verified token, dotted for nested claims; needs `equals` or `matches`. */
  readonly claim?: string;
  /** The claim is this value, or is a list holding it. */
  readonly equals?: string | number | boolean;
  /** A regular expression the whole claim value (a string, or a string in a list) must match. */
  readonly matches?: string;
  /** Only principals vouched for by these issuers (exact or globs). */
  readonly issuer?: string | readonly string[];
  /** Only principals authenticated this way. */
  readonly authenticatedBy?: AuthMethod | readonly AuthMethod[];
  readonly groups: readonly string[];
}

/** Adds the mapped groups; returns the principal itself when nothing matches. `claims` is absent for API keys and mTLS. */
export type GroupMapper = (principal: Principal, claims?: Readonly<Record<string, unknown>>) => Principal;

type Condition = (principal: Principal, claims: Readonly<Record<string, unknown>> | undefined) => boolean;

/** undefined when there is nothing to map, so callers skip the step altogether. Throws TypeError on a bad entry. */
export function compileGroupMappings(entries: readonly GroupMappingOptions[]): GroupMapper | undefined {
  if (entries.length === 0) return undefined;
  const compiled = entries.map((entry, index) => ({ matches: compileEntry(entry, index), groups: [...entry.groups] }));
  return (principal, claims) => {
    let groups: Set<string> | undefined;
    let changed = false;
    for (const entry of compiled) {
      if (!entry.matches(principal, claims)) continue;
      groups ??= new Set(principal.groups);
      for (const group of entry.groups) {
        if (groups.has(group)) continue;
        groups.add(group);
        changed = true;
      }
    }
    if (groups === undefined || !changed) return principal;
    return { ...principal, groups: Object.freeze([...groups]) };
  };
}

function compileEntry(entry: GroupMappingOptions, index: number): Condition {
  const problem = (message: string): never => {
    throw new TypeError(`identity.groupMappings[${index}]: ${message}`);
  };
  if (entry.groups.length === 0 || entry.groups.some((g) => typeof g !== 'string' || g.length === 0)) {
    problem('expected at least one non-empty group');
  }
  if (entry.subject === undefined && entry.claim === undefined) problem('expected `subject` or `claim` (or both)');
  if (entry.claim === undefined && (entry.equals !== undefined || entry.matches !== undefined)) {
    problem('`equals` and `matches` apply to a `claim`, and none is given');
  }
  if (entry.claim !== undefined && (entry.equals === undefined) === (entry.matches === undefined)) {
    problem(`expected exactly one of \`equals\` or \`matches\` for claim ${describeValue(entry.claim)}`);
  }
  const conditions: Condition[] = [];
  const subject = compilePatterns(entry.subject);
  if (subject) conditions.push((p) => subject(p.subject));
  const issuer = compilePatterns(entry.issuer);
  if (issuer) conditions.push((p) => issuer(p.issuer));
  if (entry.authenticatedBy !== undefined) {
    const methods = new Set<string>(typeof entry.authenticatedBy === 'string' ? [entry.authenticatedBy] : entry.authenticatedBy);
    conditions.push((p) => methods.has(p.authenticatedBy));
  }
  if (entry.claim !== undefined) conditions.push(claimCondition(entry.claim, entry.equals, entry.matches, problem));
  return (principal, claims) => conditions.every((condition) => condition(principal, claims));
}

function claimCondition(
  path: string,
  equals: string | number | boolean | undefined,
  matches: string | undefined,
  problem: (message: string) => never,
): Condition {
  let test: (value: unknown) => boolean;
  if (matches !== undefined) {
    let regex: RegExp;
    try {
      // Anchored: a mapping that grants groups must not fire on a value that merely contains the pattern.
      regex = new RegExp(`^(?:${matches})$`, 'u');
    } catch (error) {
      return problem(`expected \`matches\` to be a regular expression, found ${describeValue(matches)}: ${(error as Error).message}`);
    }
    test = (value) => typeof value === 'string' && regex.test(value);
  } else {
    test = (value) => value === equals;
  }
  return (_principal, claims) => {
    if (claims === undefined) return false;
    const value = readClaim(claims, path);
    return Array.isArray(value) ? value.some(test) : test(value);
  };
}
