/**
 * @module masking/strategies
 * How a sensitive value is replaced: `redact` (a fixed marker), `keep-first-N` / `keep-last-N` (the rest starred,
 * separators kept so formats stay readable), `hash` (keyed HMAC, so equal values stay joinable across records without
 * being reversible), `null` (the JSON value becomes null; inside text, the value is removed).
 */
import { createHmac } from 'node:crypto';

export type MaskStrategy =
  | { readonly kind: 'redact' }
  | { readonly kind: 'keep-first'; readonly count: number }
  | { readonly kind: 'keep-last'; readonly count: number }
  | { readonly kind: 'hash' }
  | { readonly kind: 'null' };

export const REDACTED = '[REDACTED]';

/** Parses `redact`, `keep-first-4`, `keep-last-4`, `hash`, `null`; throws naming what was expected. */
export function parseStrategy(text: string): MaskStrategy {
  if (text === 'redact' || text === 'hash' || text === 'null') return { kind: text };
  const m = /^keep-(first|last)-(\d{1,3})$/.exec(text);
  if (m) return { kind: m[1] === 'first' ? 'keep-first' : 'keep-last', count: Number(m[2]) };
  throw new Error(`expected a mask strategy: redact, keep-first-N, keep-last-N, hash or null; got ${JSON.stringify(text)}`);
}

const SEPARATOR = /[ \-./]/;

function keep(value: string, count: number, fromEnd: boolean): string {
  const chars = [...value];
  const maskable = chars.map((c, i) => (SEPARATOR.test(c) ? -1 : i)).filter((i) => i >= 0);
  const kept = new Set(fromEnd ? maskable.slice(Math.max(0, maskable.length - count)) : maskable.slice(0, count));
  return chars.map((c, i) => (SEPARATOR.test(c) || kept.has(i) ? c : '*')).join('');
}

export interface MaskContext {
  /** Key of the `hash` strategy; without one, `hash` refuses to run (an unkeyed hash of a card is guessable). */
  readonly hashKey?: Buffer;
}

/** The replacement text of a string value, or `null` for the `null` strategy. */
export function applyStrategy(value: string, strategy: MaskStrategy, ctx: MaskContext): string | null {
  switch (strategy.kind) {
    case 'redact': return REDACTED;
    case 'keep-first': return keep(value, strategy.count, false);
    case 'keep-last': return keep(value, strategy.count, true);
    case 'null': return null;
    case 'hash': {
      if (!ctx.hashKey) throw new Error('the hash mask strategy needs a key (masking.hashKey)');
      return `hash:${createHmac('sha256', ctx.hashKey).update(value).digest('hex').slice(0, 32)}`;
    }
  }
}
