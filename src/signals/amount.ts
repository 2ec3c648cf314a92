/**
 * @module signals/amount
 * Thresholds in the config are written as operators think of them: `50MB`, `512KiB`, `1000`. Decimal units are
 * powers of 1000 (as Kafka's quota docs and network rates count), binary ones powers of 1024.
 */

const UNITS: Readonly<Record<string, number>> = {
  '': 1, B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4,
};

export const AMOUNT_PATTERN = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/;

/** The number an amount stands for; throws on text that does not match {@link AMOUNT_PATTERN}. */
export function parseAmount(text: string): number {
  const match = AMOUNT_PATTERN.exec(text.trim());
  if (match === null) throw new Error(`expected a number or a size such as "50MB" or "512KiB", got ${JSON.stringify(text)}`);
  return Number(match[1]) * UNITS[match[2] ?? '']!;
}

/** A measured value for people: bytes with a unit, counts as they are (rounded to 3 significant decimals). */
export function formatAmount(value: number, bytes: boolean): string {
  const round = (n: number) => String(Math.round(n * 1000) / 1000);
  if (!bytes) return round(value);
  for (const [unit, size] of [['GB', 1e9], ['MB', 1e6], ['KB', 1e3]] as const) if (Math.abs(value) >= size) return `${round(value / size)} ${unit}`;
  return `${round(value)} B`;
}
