/**
 * @module policy/reject
 * Publish inspection rules (`reject`), compiled once per config: what makes a record unfit to be written. Evaluated
 * over records by the Kafka adapter (src/kafka/inspect/records.ts).
 */
import type { RejectSpecConfig } from '../config/schema.ts';
import type { DetectorName } from '../masking/detectors.ts';
import { compileJsonPath, type JsonPath } from '../masking/json-path.ts';

export type Condition = { readonly equals: string | number | boolean | null } | { readonly matches: RegExp };

export interface RejectPlan {
  readonly rule: string;
  readonly detectors: readonly DetectorName[];
  readonly fields: ReadonlyArray<{ readonly source: string; readonly path: JsonPath; readonly condition: Condition }>;
  readonly headers: ReadonlyArray<{ readonly name: string; readonly condition: Condition }>;
  readonly maxRecordBytes: number | undefined;
}

function compileCondition(c: { equals: string | number | boolean | null } | { matches: string }): Condition {
  return 'matches' in c ? { matches: new RegExp(c.matches, 'u') } : { equals: c.equals };
}

export function compileRejectPlan(rule: string, spec: RejectSpecConfig): RejectPlan {
  return {
    rule,
    detectors: [...(spec.detectors ?? [])],
    fields: Object.entries(spec.fields ?? {}).map(([source, c]) => ({ source, path: compileJsonPath(source), condition: compileCondition(c) })),
    headers: Object.entries(spec.headers ?? {}).map(([name, c]) => ({ name, condition: compileCondition(c) })),
    maxRecordBytes: spec.maxRecordBytes,
  };
}

