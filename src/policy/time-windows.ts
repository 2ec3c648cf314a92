/**
 * @module policy/time-windows
 * Named time windows (config `timeWindows`) and the `match.time` condition of rules: "outside the maintenance
 * window", "within business hours in Europe/Berlin". A window is a list of periods; it holds when any period does.
 * A period recurs (days of the week and a time of day, in the window's IANA time zone) or happens once (two
 * instants).
 *
 * Local time is read with `Intl.DateTimeFormat` in the window's zone, so daylight-saving changes follow the zone's
 * rules: 08:00–18:00 in Europe/Berlin is 07:00–17:00 UTC in winter and 06:00–16:00 UTC in summer. The local day and
 * minute are computed once per zone per minute (zone offsets are whole minutes), so a rule with a time condition
 * costs a cache lookup per request.
 */

export const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type DayName = (typeof DAY_NAMES)[number];
/** Shorthands for `days`. */
export const DAY_SETS = { weekdays: ['mon', 'tue', 'wed', 'thu', 'fri'], weekends: ['sat', 'sun'], daily: [...DAY_NAMES] } as const satisfies Record<string, readonly DayName[]>;

/** `HH:MM`, 00:00 to 24:00 (24:00 only as the end of a period). */
export const TIME_OF_DAY_PATTERN = /^([01]\d|2[0-3]):([0-5]\d)$|^24:00$/;

export interface RecurringPeriodConfig {
  readonly days?: keyof typeof DAY_SETS | readonly DayName[];
  readonly from: string;
  readonly to: string;
}

export interface OneOffPeriodConfig {
  /** ISO-8601 instants with an offset (`2026-12-01T22:00:00Z`). */
  readonly start: string;
  readonly end: string;
}

export type PeriodConfig = RecurringPeriodConfig | OneOffPeriodConfig;

export interface TimeWindowConfig {
  /** IANA time zone of the recurring periods; default UTC. */
  readonly timeZone?: string;
  readonly periods: readonly PeriodConfig[];
}

/** Whether `epochMs` lies in the window. */
export type TimeWindow = (epochMs: number) => boolean;

/** Minutes since local midnight of `HH:MM`; throws on anything else. */
export function minuteOfDay(text: string): number {
  const match = TIME_OF_DAY_PATTERN.exec(text);
  if (match === null) throw new Error(`expected a time of day "HH:MM" (00:00 to 24:00), got ${JSON.stringify(text)}`);
  if (text === '24:00') return 24 * 60;
  return Number(match[1]) * 60 + Number(match[2]);
}

/** Throws a RangeError naming the zone when the runtime does not know it. */
export function checkTimeZone(zone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw new RangeError(`unknown IANA time zone ${JSON.stringify(zone)} (e.g. "UTC", "Europe/Berlin", "America/New_York")`);
  }
}

export function isKnownTimeZone(zone: string): boolean {
  try {
    checkTimeZone(zone);
    return true;
  } catch {
    return false;
  }
}

interface LocalMinute {
  /** 0 = Sunday. */
  readonly day: number;
  readonly minute: number;
}

const WEEKDAY_INDEX: Readonly<Record<string, number>> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** The local weekday and minute of day in one zone, cached for the minute it was computed in. */
function localClock(zone: string): (epochMs: number) => LocalMinute {
  const format = new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  let cachedMinute = Number.NaN;
  let cached: LocalMinute = { day: 0, minute: 0 };
  return (epochMs) => {
    const minute = Math.floor(epochMs / 60_000);
    if (minute === cachedMinute) return cached;
    let day = 0;
    let hour = 0;
    let min = 0;
    for (const part of format.formatToParts(epochMs)) {
      if (part.type === 'weekday') day = WEEKDAY_INDEX[part.value] ?? 0;
      else if (part.type === 'hour') hour = Number(part.value);
      else if (part.type === 'minute') min = Number(part.value);
    }
    cachedMinute = minute;
    cached = { day, minute: hour * 60 + min };
    return cached;
  };
}

function daySet(days: RecurringPeriodConfig['days']): ReadonlySet<number> {
  const names: readonly DayName[] = days === undefined ? DAY_NAMES : typeof days === 'string' ? DAY_SETS[days] : days;
  return new Set(names.map((d) => DAY_NAMES.indexOf(d)));
}

function compilePeriod(period: PeriodConfig, clock: (epochMs: number) => LocalMinute): TimeWindow {
  if ('start' in period) {
    const start = Date.parse(period.start);
    const end = Date.parse(period.end);
    if (Number.isNaN(start) || Number.isNaN(end)) throw new Error(`expected ISO-8601 instants, got ${period.start} .. ${period.end}`);
    if (end <= start) throw new Error(`expected end after start, got ${period.start} .. ${period.end}`);
    return (t) => t >= start && t < end;
  }
  const from = minuteOfDay(period.from);
  const to = minuteOfDay(period.to);
  if (from === 24 * 60) throw new Error('expected a period to start before 24:00');
  if (from === to) throw new Error(`expected a period of some length, got ${period.from}-${period.to}`);
  const days = daySet(period.days);
  if (from < to) {
    return (t) => {
      const { day, minute } = clock(t);
      return days.has(day) && minute >= from && minute < to;
    };
  }
  // Across midnight (22:00-06:00): the day named is the day the period starts.
  return (t) => {
    const { day, minute } = clock(t);
    return (minute >= from && days.has(day)) || (minute < to && days.has((day + 6) % 7));
  };
}

/** Compiles one window; throws with what is wrong (the config schema reports the same problems earlier). */
export function compileTimeWindow(window: TimeWindowConfig): TimeWindow {
  const zone = window.timeZone ?? 'UTC';
  checkTimeZone(zone);
  const clock = localClock(zone);
  const periods = window.periods.map((p) => compilePeriod(p, clock));
  if (periods.length === 1) return periods[0]!;
  return (t) => periods.some((p) => p(t));
}

/** Every named window compiled once. */
export function compileTimeWindows(windows: Readonly<Record<string, TimeWindowConfig>>): ReadonlyMap<string, TimeWindow> {
  const out = new Map<string, TimeWindow>();
  for (const [name, window] of Object.entries(windows)) {
    try {
      out.set(name, compileTimeWindow(window));
    } catch (error) {
      throw new Error(`time window ${name}: ${(error as Error).message}`);
    }
  }
  return out;
}

/** `match.time`: within any of the named windows, or outside all of them. */
export interface TimeConditionConfig {
  readonly within?: string | readonly string[];
  readonly outside?: string | readonly string[];
}

/** The `match.time` condition over the request time `now()`. */
export function compileTimeCondition(condition: TimeConditionConfig, windows: ReadonlyMap<string, TimeWindow>, now: () => number): () => boolean {
  const pick = (names: string | readonly string[] | undefined): TimeWindow[] =>
    (names === undefined ? [] : typeof names === 'string' ? [names] : names).map((name) => {
      const window = windows.get(name);
      if (window === undefined) throw new Error(`match.time names the time window ${JSON.stringify(name)}, which timeWindows does not define`);
      return window;
    });
  const within = pick(condition.within);
  const outside = pick(condition.outside);
  return () => {
    const t = now();
    if (within.length > 0 && !within.some((w) => w(t))) return false;
    return !outside.some((w) => w(t));
  };
}
