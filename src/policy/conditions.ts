/**
 * @module policy/conditions
 * The value conditions rules put on payload fields and headers (`{equals}`, `{matches}`, `{exists}`), compiled once
 * and shared by publish inspection (reject rules) and request-body rules.
 */
import { compileJsonPath, forEachMatch, type JsonPath } from '../masking/json-path.ts';

export type ConditionConfig =
  | { readonly equals: string | number | boolean | null }
  | { readonly matches: string }
  | { readonly exists: true };

export type Condition =
  | { readonly equals: string | number | boolean | null }
  | { readonly matches: RegExp }
  | { readonly exists: true };

export function compileCondition(c: ConditionConfig): Condition {
  if ('matches' in c) return { matches: new RegExp(c.matches, 'u') };
  return c;
}

/** Whether a value that is present satisfies the condition (absent values satisfy none). */
export function holds(condition: Condition, value: unknown): boolean {
  if ('exists' in condition) return true;
  if ('equals' in condition) return value === condition.equals;
  return typeof value === 'string' && condition.matches.test(value);
}

export interface FieldCondition {
  /** The path as written in the config, for reasons and audit records. */
  readonly source: string;
  readonly path: JsonPath;
  readonly condition: Condition;
}

export function compileFieldConditions(fields: Readonly<Record<string, ConditionConfig>>): FieldCondition[] {
  return Object.entries(fields).map(([source, c]) => ({ source, path: compileJsonPath(source), condition: compileCondition(c) }));
}

/** The first field condition that holds somewhere in `doc`, if any. */
export function firstHolding(doc: unknown, fields: readonly FieldCondition[]): FieldCondition | undefined {
  for (const field of fields) {
    let hit = false;
    forEachMatch(doc as never, field.path, (container, key) => {
      if (!hit && holds(field.condition, (container as Record<string | number, unknown>)[key])) hit = true;
    });
    if (hit) return field;
  }
  return undefined;
}
