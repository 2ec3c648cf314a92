/**
 * @module policy/capture
 * Session capture rules (`capture`): compiled once per config, then combined per topic into what the adapter keeps
 * of each record for the audit record. Pure: which rules, which payload form, keys or not, how many records, and
 * the masks a `masked` payload goes through. The adapter reads the records (src/kafka/capture/).
 */
import type { CaptureSpecConfig } from '../config/schema.ts';
import { DETECTOR_NAMES } from '../masking/detectors.ts';
import { compileMaskPlan } from '../masking/mask.ts';
import type { RuleMaskPlan } from '../masking/units.ts';

export type CapturePayload = 'digest' | 'masked';

export interface CapturePlan {
  readonly rule: string;
  readonly payload: CapturePayload;
  readonly keys: boolean;
  readonly maxRecords: number;
  /** `masked` only: what masks the payload (the rule's `mask`, or every detector, redacted). */
  readonly mask: RuleMaskPlan | undefined;
}

/** Every capture rule of one topic, as one: what a record of that topic leaves in the audit record. */
export interface TopicCapture {
  /** The rules, in config order. */
  readonly rules: readonly string[];
  /** `masked` when any rule says so: a masked payload says more than a digest, and is still masked. */
  readonly payload: CapturePayload;
  readonly keys: boolean;
  /** The largest of the rules' maxRecords: each rule gets at least the records it asked for. */
  readonly maxRecords: number;
  /** `masked`: the masks of every masked rule, applied one after the other. */
  readonly masks: readonly RuleMaskPlan[];
}

/** No mask given: every detector, findings redacted, a value that is not JSON redacted whole. */
const DEFAULT_MASK_SPEC = { detectors: DETECTOR_NAMES, detectorStrategy: 'redact' } as const;

export function compileCapturePlan(rule: string, spec: CaptureSpecConfig): CapturePlan {
  let mask: RuleMaskPlan | undefined;
  if (spec.payload === 'masked') {
    const { onUndecodable, ...plan } = spec.mask ?? { ...DEFAULT_MASK_SPEC, onUndecodable: 'redact' as const };
    mask = Object.freeze({ rule, plan: compileMaskPlan(plan), onUndecodable });
  }
  return Object.freeze({ rule, payload: spec.payload, keys: spec.keys, maxRecords: spec.maxRecords, mask });
}

/** The capture of a topic whose capture rules are `plans` (config order); undefined when there are none. */
export function combineCaptures(plans: readonly CapturePlan[]): TopicCapture | undefined {
  if (plans.length === 0) return undefined;
  const masks: RuleMaskPlan[] = [];
  for (const p of plans) if (p.mask !== undefined) masks.push(p.mask);
  return Object.freeze({
    rules: plans.map((p) => p.rule),
    payload: masks.length > 0 ? 'masked' : 'digest',
    keys: plans.some((p) => p.keys),
    maxRecords: Math.max(...plans.map((p) => p.maxRecords)),
    masks,
  });
}
