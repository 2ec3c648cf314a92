/**
 * @module masking/units
 * Every masking rule that applies, in turn, to one unit of payload (a JSON document, a line, an event, a Kafka
 * record value): the building block the HTTP and Kafka paths share.
 */
import { maskJson, maskText, UndecodableError, type MaskPlan } from './mask.ts';
import type { MaskContext } from './strategies.ts';
import { REDACTED } from './strategies.ts';

export class MaskingFailure extends Error {
  override name = 'MaskingFailure';
}

export interface MaskTally { [detectorOrField: string]: number }

/** A plan with the name of its rule and what to do with a payload that should be JSON and is not. */
export interface RuleMaskPlan {
  readonly rule: string;
  readonly plan: MaskPlan;
  readonly onUndecodable: 'pass' | 'redact' | 'fail';
}

/** Applies every plan in turn to one unit of JSON text; `tally` collects what was masked. */
export function maskJsonUnit(text: string, plans: readonly RuleMaskPlan[], ctx: MaskContext, tally: MaskTally): string {
  let out = text;
  for (const named of plans) {
    const { plan, onUndecodable, rule } = named;
    try {
      const r = maskJson(out, plan, ctx);
      for (const [k, v] of Object.entries(r.counts)) tally[k] = (tally[k] ?? 0) + v;
      out = r.text;
    } catch (err) {
      if (!(err instanceof UndecodableError)) throw err;
      if (onUndecodable === 'fail') throw new MaskingFailure(`rule ${rule}: ${err.message}`);
      if (onUndecodable === 'redact') return REDACTED;
      out = maskTextUnit(out, [named], ctx, tally);
    }
  }
  return out;
}

export function maskTextUnit(text: string, plans: readonly Pick<RuleMaskPlan, 'plan'>[], ctx: MaskContext, tally: MaskTally): string {
  let out = text;
  for (const { plan } of plans) {
    const r = maskText(out, plan, ctx);
    for (const [k, v] of Object.entries(r.counts)) tally[k] = (tally[k] ?? 0) + v;
    out = r.text;
  }
  return out;
}

