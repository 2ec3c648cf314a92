/**
 * @module config/duration
 * Durations in the config are written the way Envoy and Kubernetes operators write them ("250ms", "30s", "5m").
 */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
export const DURATION_PATTERN = /^(\d+)(ms|s|m|h)$/;

/** Milliseconds in a duration string; throws on anything that does not match {@link DURATION_PATTERN}. */
export function parseDuration(text: string): number {
  const match = DURATION_PATTERN.exec(text);
  if (!match) throw new Error(`expected a duration such as "250ms", "30s", "5m" or "1h", got ${JSON.stringify(text)}`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}
