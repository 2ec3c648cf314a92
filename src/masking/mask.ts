/**
 * @module masking/mask
 * Applies a compiled masking plan to a JSON document or to free text. What no rule touches comes back as the very
 * same string (`changed: false`), so untouched payloads stay byte-exact.
 */
import { detect, luhnValid, type DetectorName } from './detectors.ts';
import { compileJsonPath, forEachMatch, type JsonPath } from './json-path.ts';
import { applyStrategy, parseStrategy, REDACTED, type MaskContext, type MaskStrategy } from './strategies.ts';

export interface MaskPlanSpec {
  /** JSON path → strategy name, e.g. `{"$.card.number": "keep-last-4"}`. */
  readonly fields?: Readonly<Record<string, string>>;
  /** Detectors run over every string value (JSON) or the whole text. */
  readonly detectors?: readonly DetectorName[];
  /** Strategy for detector findings; default `redact`. */
  readonly detectorStrategy?: string;
}

export interface MaskPlan {
  readonly fields: ReadonlyArray<{ readonly path: JsonPath; readonly strategy: MaskStrategy }>;
  readonly detectors: readonly DetectorName[];
  readonly detectorStrategy: MaskStrategy;
}

export function compileMaskPlan(spec: MaskPlanSpec): MaskPlan {
  return {
    fields: Object.entries(spec.fields ?? {}).map(([path, strategy]) => ({ path: compileJsonPath(path), strategy: parseStrategy(strategy) })),
    detectors: [...(spec.detectors ?? [])],
    detectorStrategy: parseStrategy(spec.detectorStrategy ?? 'redact'),
  };
}

export interface MaskResult {
  readonly text: string;
  readonly changed: boolean;
  /** Values masked, by detector name or `field`. */
  readonly counts: Readonly<Record<string, number>>;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function maskString(value: string, plan: MaskPlan, ctx: MaskContext, counts: Record<string, number>): string {
  if (plan.detectors.length === 0) return value;
  const findings = detect(value, plan.detectors);
  if (findings.length === 0) return value;
  let out = '';
  let at = 0;
  for (const f of findings) {
    out += value.slice(at, f.start) + (applyStrategy(value.slice(f.start, f.end), plan.detectorStrategy, ctx) ?? '');
    at = f.end;
    counts[f.detector] = (counts[f.detector] ?? 0) + 1;
  }
  return out + value.slice(at);
}

/** Masks free text with the plan's detectors (field paths do not apply to text). */
export function maskText(text: string, plan: MaskPlan, ctx: MaskContext = {}): MaskResult {
  const counts: Record<string, number> = {};
  const masked = maskString(text, plan, ctx, counts);
  return { text: masked, changed: masked !== text, counts };
}

/** Thrown when the input is not JSON; the caller's rule decides (pass, redact the record, fail). */
export class UndecodableError extends Error {
  override name = 'UndecodableError';
}

/** Masks a JSON document: field paths first, then detectors over every remaining string value. */
/**
 * JSON number literals that are card numbers (13–19 digits, Luhn-valid), turned into strings holding their exact
 * digits, before `JSON.parse` rounds anything above 2^53 (every 17–19 digit card, many 16 digit ones) into another
 * number that no detector would recognise. Only literals outside strings; the rest of the text is untouched.
 */
function cardLiteralsAsStrings(text: string): string {
  let out = '';
  let from = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      continue;
    }
    if (c >= 0x30 && c <= 0x39 && (i === 0 || !/[\d.eE+-]/.test(text[i - 1]!))) {
      let end = i;
      while (end < text.length && text.charCodeAt(end) >= 0x30 && text.charCodeAt(end) <= 0x39) end++;
      const next = text[end];
      const digits = text.slice(i, end);
      if ((next === undefined || !/[.eE]/.test(next)) && digits.length >= 13 && digits.length <= 19 && luhnValid(digits)) {
        out += `${text.slice(from, i)}"${digits}"`;
        from = end;
      }
      i = end - 1;
    }
  }
  return from === 0 ? text : out + text.slice(from);
}

export function maskJson(text: string, plan: MaskPlan, ctx: MaskContext = {}): MaskResult {
  let doc: Json;
  try {
    doc = JSON.parse(plan.detectors.includes('card') ? cardLiteralsAsStrings(text) : text) as Json;
  } catch (err) {
    throw new UndecodableError(`expected a JSON document: ${(err as Error).message}`);
  }
  const counts: Record<string, number> = {};
  for (const { path, strategy } of plan.fields) {
    forEachMatch(doc, path, (container, key) => {
      const current = (container as Record<string | number, Json>)[key];
      if (current === null || current === undefined) return;
      const replacement = typeof current === 'object'
        ? (strategy.kind === 'null' ? null : REDACTED)
        : applyStrategy(String(current), strategy, ctx);
      (container as Record<string | number, Json>)[key] = replacement;
      counts['field'] = (counts['field'] ?? 0) + 1;
    });
  }
  let detectorHits = 0;
  const cardsInNumbers = plan.detectors.includes('card');
  const walk = (value: Json): Json => {
    if (typeof value === 'string') {
      const masked = maskString(value, plan, ctx, counts);
      if (masked !== value) detectorHits++;
      return masked;
    }
    // Card numbers stored as JSON numbers are still card numbers.
    if (typeof value === 'number' && cardsInNumbers && Number.isSafeInteger(value) && luhnValid(String(value))) {
      detectorHits++;
      counts['card'] = (counts['card'] ?? 0) + 1;
      return applyStrategy(String(value), plan.detectorStrategy, ctx);
    }
    if (Array.isArray(value)) return value.map(walk);
    if (value !== null && typeof value === 'object') {
      for (const k of Object.keys(value)) value[k] = walk(value[k]!);
    }
    return value;
  };
  if (plan.detectors.length > 0) doc = walk(doc);
  const changed = (counts['field'] ?? 0) > 0 || detectorHits > 0;
  return { text: changed ? JSON.stringify(doc) : text, changed, counts };
}
