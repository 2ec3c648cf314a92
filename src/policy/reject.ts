/**
 * @module policy/reject
 * Publish inspection rules (`reject`): compiled once per config, then asked whether a record may be written. Pure:
 * a record in (any protocol's: a key, a value, headers), the first reason to refuse it (or none) out; the adapter
 * decides what a refusal does to its request (src/kafka/inspect/produce.ts).
 */
import type { RejectSpecConfig } from '../config/schema.ts';
import { detect, type DetectorName } from '../masking/detectors.ts';
import { compileCondition, compileFieldConditions, firstHolding, holds, type Condition, type FieldCondition } from './conditions.ts';

/** What inspection reads of a record. */
export interface InspectedRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: ReadonlyArray<{ readonly key: string; readonly value: Buffer | null }>;
}

export interface RejectPlan {
  readonly rule: string;
  /** Shadow mode: what it would refuse is audited; nothing is refused. */
  readonly shadow: boolean;
  readonly detectors: readonly DetectorName[];
  readonly fields: readonly FieldCondition[];
  readonly headers: ReadonlyArray<{ readonly name: string; readonly condition: Condition }>;
  readonly maxRecordBytes: number | undefined;
}

export function compileRejectPlan(rule: string, spec: RejectSpecConfig, shadow = false): RejectPlan {
  return {
    rule,
    shadow,
    detectors: [...(spec.detectors ?? [])],
    fields: compileFieldConditions(spec.fields ?? {}),
    headers: Object.entries(spec.headers ?? {}).map(([name, c]) => ({ name, condition: compileCondition(c) })),
    maxRecordBytes: spec.maxRecordBytes,
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function text(bytes: Buffer | null): string | undefined {
  if (bytes === null) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Every string inside a JSON value, depth first. */
function* strings(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (Array.isArray(value)) for (const item of value) yield* strings(item);
  else if (value !== null && typeof value === 'object') for (const item of Object.values(value)) yield* strings(item);
}

function recordBytes(record: InspectedRecord): number {
  let size = (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const header of record.headers) size += Buffer.byteLength(header.key) + (header.value?.length ?? 0);
  return size;
}

/**
 * The first reason one of `plans` refuses `record`, naming the rule and what matched (never the matched value:
 * the reason goes back to the producer and into the audit record). Undefined when every plan lets it through.
 * Shadow plans never refuse: `shadowRejectReason` asks them.
 */
export function rejectReason(record: InspectedRecord, plans: readonly RejectPlan[]): string | undefined {
  return firstReason(record, plans, false);
}

/** What the shadow plans among `plans` would refuse `record` for (audited, never enforced). */
export function shadowRejectReason(record: InspectedRecord, plans: readonly RejectPlan[]): string | undefined {
  return firstReason(record, plans, true);
}

function firstReason(record: InspectedRecord, plans: readonly RejectPlan[], shadow: boolean): string | undefined {
  let parsed: { readonly ok: true; readonly doc: unknown } | { readonly ok: false } | undefined;
  const value = text(record.value);
  const json = () => {
    if (parsed === undefined) {
      try {
        parsed = value === undefined ? { ok: false } : { ok: true, doc: JSON.parse(value) as unknown };
      } catch {
        parsed = { ok: false };
      }
    }
    return parsed;
  };
  for (const plan of plans) {
    if (plan.shadow !== shadow) continue;
    if (plan.maxRecordBytes !== undefined) {
      const size = recordBytes(record);
      if (size > plan.maxRecordBytes) return `rule ${plan.rule}: a record of ${size} bytes exceeds ${plan.maxRecordBytes}`;
    }
    for (const { name, condition } of plan.headers) {
      const header = record.headers.find((h) => h.key === name);
      if (header !== undefined && holds(condition, text(header.value) ?? null)) return `rule ${plan.rule}: header ${name} is refused`;
    }
    if (plan.fields.length > 0) {
      const doc = json();
      if (doc.ok) {
        const hit = firstHolding(doc.doc, plan.fields);
        if (hit !== undefined) return `rule ${plan.rule}: field ${hit.source} is refused`;
      }
    }
    if (plan.detectors.length > 0 && value !== undefined) {
      const doc = json();
      const texts = doc.ok ? strings(doc.doc) : [value];
      for (const candidate of texts) {
        const [finding] = detect(candidate, plan.detectors);
        if (finding !== undefined) return `rule ${plan.rule}: the record carries a ${finding.detector} value`;
      }
    }
  }
  return undefined;
}
