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

const utf8 = new TextDecoder('utf-8', { fatal: true });
const REDACTED_BYTES = Buffer.from(REDACTED, 'utf8');

/**
 * Masks one payload (a value, a key, a header value) with every plan: JSON documents by field paths and detectors,
 * other UTF-8 text by detectors, bytes that are not UTF-8 by the rules' `onUndecodable`. Returns the same Buffer
 * when nothing changed. Throws MaskingFailure for a rule whose `onUndecodable` is `fail`.
 */
export function maskPayload(payload: Buffer, plans: readonly RuleMaskPlan[], ctx: MaskContext, tally: MaskTally): Buffer {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    // Binary: no detector can read it. The strictest rule decides.
    if (plans.some((p) => p.onUndecodable === 'fail')) throw new MaskingFailure(`rule ${plans.find((p) => p.onUndecodable === 'fail')!.rule}: a record is not UTF-8 text`);
    if (plans.some((p) => p.onUndecodable === 'redact')) return REDACTED_BYTES;
    return payload;
  }
  const masked = maskJsonUnit(text, plans, ctx, tally);
  return masked === text ? payload : Buffer.from(masked, 'utf8');
}
