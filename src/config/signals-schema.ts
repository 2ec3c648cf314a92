/**
 * @module config/signals-schema
 * The parts of the config schema for insider-threat signals: named time windows and the `match.time` condition,
 * the `match.flagged` condition, the `signal` rule kind and the top-level `signals` settings. Kept apart from
 * schema.ts, which assembles them, so the signal vocabulary reads in one place.
 */
import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './duration.ts';
import { DAY_NAMES, DAY_SETS, TIME_OF_DAY_PATTERN, isKnownTimeZone, minuteOfDay } from '../policy/time-windows.ts';
import { parseAmount, AMOUNT_PATTERN } from '../signals/amount.ts';
import { postgresSchema } from './postgres-schema.ts';

const duration = (description: string) =>
  z.string().regex(DURATION_PATTERN, 'expected a duration such as "250ms", "30s", "5m" or "1h"')
    .transform(parseDuration).meta({ description });

const names = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
const pattern = z.string().min(1).meta({ description: 'Exact value, or a glob where `*` matches any run of characters and `?` one character.' });
const patterns = z.union([pattern, z.array(pattern).min(1)]);

// ---------------------------------------------------------------------------------------------------------------
// Time windows
// ---------------------------------------------------------------------------------------------------------------

const timeOfDay = (description: string) =>
  z.string().regex(TIME_OF_DAY_PATTERN, 'expected a time of day "HH:MM", 00:00 to 24:00').meta({ description });

const recurringPeriod = z.object({
  days: z.union([z.enum(Object.keys(DAY_SETS) as [keyof typeof DAY_SETS, ...Array<keyof typeof DAY_SETS>]), z.array(z.enum(DAY_NAMES)).min(1)]).optional()
    .meta({ description: '`weekdays` (mon–fri), `weekends`, `daily`, or a list of `sun`…`sat`; default every day. For a period across midnight, the day it starts.' }),
  from: timeOfDay('Local start, inclusive.'),
  to: timeOfDay('Local end, exclusive; `24:00` is midnight at the end of the day. Earlier than `from`: the period runs across midnight (22:00 to 06:00).'),
}).strict().superRefine((p, ctx) => {
  if (p.from === '24:00') ctx.addIssue({ code: 'custom', path: ['from'], message: 'expected a start before 24:00' });
  else if (minuteOfDay(p.from) === minuteOfDay(p.to)) ctx.addIssue({ code: 'custom', path: ['to'], message: 'expected `to` to differ from `from` (an empty period)' });
});

const instant = (description: string) => z.iso.datetime({ offset: true }).meta({ description });

const oneOffPeriod = z.object({
  start: instant('ISO-8601 instant with an offset, inclusive (`2026-12-01T22:00:00Z`).'),
  end: instant('ISO-8601 instant with an offset, exclusive.'),
}).strict().refine((p) => Date.parse(p.end) > Date.parse(p.start), { path: ['end'], message: 'expected `end` after `start`' });

export const timeWindowSchema = z.object({
  timeZone: z.string().refine(isKnownTimeZone, 'expected an IANA time zone name such as "UTC", "Europe/Berlin" or "America/New_York"').default('UTC')
    .meta({ description: 'IANA time zone the recurring periods are read in (daylight saving as the zone has it).' }),
  periods: z.array(z.union([recurringPeriod, oneOffPeriod], { error: 'expected a recurring period {days, from, to} or a one-off period {start, end}' })).min(1)
    .meta({ description: 'The window holds when any period does: recurring `{days, from, to}` (local time) or one-off `{start, end}` (instants).' }),
}).strict();

export const timeWindowsSchema = z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected a lower-case name of letters, digits, ".", "_" and "-"'), timeWindowSchema)
  .default({}).meta({ description: 'Named time windows for `match.time` (maintenance windows, business hours): name → `{timeZone, periods}`. Each period is `{days, from, to}` (recurring, local time of `timeZone`, e.g. `{days: weekdays, from: "08:00", to: "18:00"}`) or `{start, end}` (one-off, ISO-8601 instants).' });

export const timeCondition = z.object({
  within: names.optional().meta({ description: 'Holds when the request time is in any of these windows.' }),
  outside: names.optional().meta({ description: 'Holds when the request time is in none of these windows.' }),
}).strict().refine((t) => t.within !== undefined || t.outside !== undefined, 'expected `within` or `outside` (or both)')
  .meta({ description: 'A condition on the time of the request, against named `timeWindows`, e.g. `{outside: maintenance}`.' });

export const flaggedCondition = z.union([z.literal(true), names])
  .meta({ description: 'Holds when the principal\'s session is flagged by an `authFailures` signal (failed authentications, then a success): `true` for any such signal rule, or the names of some. For rules on privileged operations in flagged sessions.' });

// ---------------------------------------------------------------------------------------------------------------
// Signal rules
// ---------------------------------------------------------------------------------------------------------------

export const SIGNAL_MEASURES = ['requests', 'changes', 'producedRecords', 'producedBytes', 'fetchedRecords', 'fetchedBytes'] as const;
export const SIGNAL_EFFECTS = ['alert', 'throttle', 'approve', 'deny'] as const;
export const SIGNAL_KEY_PARTS = ['subject', 'resource'] as const;
export const AUTH_KEY_PARTS = ['subject', 'source'] as const;

const amount = (description: string) =>
  z.union([z.number().nonnegative(), z.string().regex(AMOUNT_PATTERN, 'expected a number, or a size such as "50MB", "512KiB", "1GB"')])
    .transform((v) => (typeof v === 'number' ? v : parseAmount(v))).meta({ description });

const volumeSignal = z.object({
  measure: z.enum(SIGNAL_MEASURES).meta({ description: '`requests` (per request and key), `changes` (Kafka: ACL creations and deletion filters, config entries altered, topics created or deleted, partitions of DeleteRecords; Kubernetes create/update/patch/delete/deletecollection; HTTP POST/PUT/PATCH/DELETE), `producedRecords`/`producedBytes` (Kafka Produce, per topic, counted when sent), `fetchedRecords`/`fetchedBytes` (Kafka Fetch responses, per topic, counted when served).' }),
  window: duration('Sliding window the measure is summed over (and the period a baseline learns from).').prefault('1m'),
  per: z.array(z.enum(SIGNAL_KEY_PARTS)).min(1).default(['subject', 'resource'])
    .meta({ description: 'What one counter is kept for: `subject` (the principal), `resource` (Kafka topic, consumer group, transactional id or the cluster; Kubernetes namespace and resource; HTTP host and path), or both.' }),
  limit: amount('Fixed threshold: the signal fires when the window\'s sum exceeds it. Sizes: "50MB" (decimal), "50MiB" (binary).').optional(),
  baseline: z.object({
    deviations: z.number().positive().default(3).meta({ description: 'The learned threshold is the mean of past windows plus this many standard deviations.' }),
    warmup: duration('How much history a key needs before its baseline can fire (a new key fires only on `limit`).').prefault('1h'),
    halfLife: duration('How fast the rolling mean and deviation forget: a window this old weighs half.').prefault('24h'),
    floor: amount('The learned threshold is never below this.').default(0),
  }).strict().optional().meta({ description: 'Learned threshold per key: a rolling (exponentially weighted) mean and deviation of the sum per window, idle windows counting as zero. With `limit` as well, whichever is exceeded first fires.' }),
  configs: patterns.optional().meta({ description: '`changes` only: count only config entries (AlterConfigs, IncrementalAlterConfigs) whose names match, e.g. `retention.*`; other changes of those requests are not counted.' }),
}).strict().superRefine((v, ctx) => {
  if (v.limit === undefined && v.baseline === undefined) ctx.addIssue({ code: 'custom', path: ['limit'], message: 'expected `limit` (a fixed threshold), `baseline` (a learned one) or both' });
  if (v.configs !== undefined && v.measure !== 'changes') ctx.addIssue({ code: 'custom', path: ['configs'], message: 'expected `configs` only with `measure: changes`' });
  if (v.window < 1000) ctx.addIssue({ code: 'custom', path: ['window'], message: 'expected a window of at least 1s' });
});

const authFailuresSignal = z.object({
  threshold: z.number().int().positive().meta({ description: 'Failed authentications within `window` (per key) after which the next success flags the session.' }),
  window: duration('How far back failures count.').prefault('10m'),
  per: z.array(z.enum(AUTH_KEY_PARTS)).min(1).default(['subject', 'source'])
    .meta({ description: 'Count failures per `subject` (the subject a refused token claims, unverified; an mTLS peer\'s reported id) and per `source` (the client address Envoy reports).' }),
  flagFor: duration('How long the subject\'s sessions stay flagged after the success (Kafka connections and HTTP requests alike).').prefault('1h'),
}).strict();

const replaySignal = z.object({
  maxAge: duration('A produced record whose timestamp is older than this (against tollgate\'s clock) is flagged.').optional(),
  maxAhead: duration('A produced record whose timestamp is this far in the future is flagged.').optional(),
  duplicates: duration('A produced record whose key and value were already produced to the same topic within this window is flagged (a retry of the same idempotent batch is not; a payload counts as produced once the broker acknowledged it).').optional(),
  maxDigests: z.number().int().positive().default(100_000).meta({ description: 'Digests kept per rule (least recently seen dropped first).' }),
}).strict().refine((r) => r.maxAge !== undefined || r.maxAhead !== undefined || r.duplicates !== undefined, 'expected at least one of maxAge, maxAhead, duplicates');

export const signalSpec = z.object({
  volume: volumeSignal.optional().meta({ description: 'Volume and frequency per key over a sliding window, against a fixed or learned threshold.' }),
  authFailures: authFailuresSignal.optional().meta({ description: 'Failed authentications, then a success: the session is flagged (`match.flagged`) and alerted.' }),
  replay: replaySignal.optional().meta({ description: 'Kafka Produce records replayed: timestamps far in the past (or future), payloads already produced.' }),
  effect: z.enum(SIGNAL_EFFECTS).default('alert').meta({ description: '`alert`: an audit record and a webhook, traffic passes; `throttle`: Kafka responses carry `throttle_time_ms` (clients back off as from broker quotas), HTTP gets 429 with Retry-After; `approve`: further requests need an approval; `deny`: refused for one window length after the breach. `authFailures` only alerts; `replay` alerts or denies.' }),
  escalate: z.object({
    after: duration('How long a key must stay in breach (over its threshold again within a window of the last breach).'),
    effect: z.enum(SIGNAL_EFFECTS).meta({ description: 'The effect from then on, until the key is quiet for a whole window.' }),
  }).strict().optional().meta({ description: '`volume` only: a stronger effect for a breach that lasts, e.g. throttle, then approve.' }),
}).strict().superRefine((s, ctx) => {
  const kinds = [s.volume, s.authFailures, s.replay].filter((k) => k !== undefined).length;
  if (kinds !== 1) ctx.addIssue({ code: 'custom', path: [], message: 'expected exactly one of `volume`, `authFailures` or `replay`' });
  if (s.authFailures !== undefined && s.effect !== 'alert') ctx.addIssue({ code: 'custom', path: ['effect'], message: 'expected `effect: alert` for authFailures (the flag itself is what rules act on, with `match.flagged`)' });
  if (s.replay !== undefined && s.effect !== 'alert' && s.effect !== 'deny') ctx.addIssue({ code: 'custom', path: ['effect'], message: 'expected `alert` or `deny` for replay (a record is refused or let through)' });
  if (s.escalate !== undefined && s.volume === undefined) ctx.addIssue({ code: 'custom', path: ['escalate'], message: 'expected `escalate` only on a `volume` signal' });
});

export const signalsSettings = z.object({
  maxKeys: z.number().int().positive().default(100_000)
    .meta({ description: 'Keys (principal × resource) each volume or authFailures rule keeps state for; the least recently seen is dropped first (its counters and baseline start over). A volume key takes about 0.7 KB (0.8 KB with a baseline): 100000 keys, about 70 MB per rule (bench/signals.bench.ts).' }),
  maxThrottle: duration('Longest throttle one Kafka response asks for (`throttle_time_ms`) and longest HTTP Retry-After.').prefault('30s'),
  alerts: z.object({
    webhook: z.object({
      url: z.url().meta({ description: 'Every signal record (a breach, an escalation, a flagged session, a replay) is POSTed here as JSON, the audit record itself.' }),
      timeout: duration('Per POST; a webhook that fails is logged and counted, never retried past `maxQueue`, never in the way of traffic.').prefault('5s'),
      maxQueue: z.number().int().positive().default(1000).meta({ description: 'Alerts waiting to be sent; beyond, the oldest are dropped (counted).' }),
    }).strict().optional(),
  }).strict().prefault({}),
  // Volume counters shared by replicas (src/signals/shared-counters.ts).
  shared: z.object({
    postgres: postgresSchema('signals.shared.postgres', 'The database the replicas share their volume counts through (table `signal_slices`, created if missing). May be the approvals database.',
      { size: 2, description: 'Connections per tollgate process (one sync runs at a time).' }),
    syncInterval: duration('How often this replica writes its slice sums and reads the others\' (for the keys it holds): the overshoot of a threshold across replicas is about one interval of traffic.').prefault('1s'),
    replica: z.string().min(1).max(200).optional()
      .meta({ description: 'This replica\'s name in the shared table; unique per running process. Default: `<hostname>-<pid>`.' }),
    maxKeysPerSync: z.number().int().positive().default(1000)
      .meta({ description: 'Keys per volume rule one sync writes and reads at most, the most recently counted first (the rest wait for the next sync).' }),
  }).strict().superRefine((s, ctx) => {
    if (s.syncInterval < 100) ctx.addIssue({ code: 'custom', path: ['syncInterval'], message: 'expected a sync interval of at least 100ms' });
  }).optional().meta({ description: 'Share the counts of `volume` signals between tollgate replicas through PostgreSQL, so a threshold applies to the traffic of all of them (baselines, holds, flags and payload digests stay per replica). Absent: each process counts only what it sees. A reload that changes it restarts the sync.' }),
}).strict().prefault({}).meta({ description: 'Insider-threat signals (rules with `signal`): limits and where alerts go. Signal state is kept per process unless `shared` is set (see the README on several replicas) and survives a reload of the rules.' });

export type SignalSpecConfig = z.output<typeof signalSpec>;

/** Whether the signal can ask for an approval (its effect, or the one it escalates to): the rule then says who gives it. */
export function signalAsksApproval(s: Pick<SignalSpecConfig, 'effect' | 'escalate'>): boolean {
  return s.effect === 'approve' || s.escalate?.effect === 'approve';
}
export type SignalsSettingsConfig = z.output<typeof signalsSettings>;
export type TimeWindowSchemaConfig = z.output<typeof timeWindowSchema>;

// ---------------------------------------------------------------------------------------------------------------
// Checks across a rule and across the config
// ---------------------------------------------------------------------------------------------------------------

type Ctx = z.core.$RefinementCtx<unknown>;

interface RuleShape {
  readonly name: string;
  readonly match: {
    readonly http?: unknown; readonly kafka?: { readonly operation?: string | readonly string[] }; readonly kubernetes?: unknown;
    readonly body?: unknown; readonly time?: TimeConditionShape; readonly flagged?: true | string | readonly string[];
  };
  readonly signal?: SignalSpecConfig | undefined;
}

interface TimeConditionShape { readonly within?: string | readonly string[]; readonly outside?: string | readonly string[] }

const KAFKA_ONLY_MEASURES: ReadonlySet<string> = new Set(['producedRecords', 'producedBytes', 'fetchedRecords', 'fetchedBytes']);

/** What a signal rule's match may say, given its kind. */
export function refineSignalRule(r: RuleShape, ctx: Ctx): void {
  const s = r.signal;
  if (s === undefined) return;
  const { http, kafka, kubernetes, body } = r.match;
  if (body !== undefined) ctx.addIssue({ code: 'custom', path: ['match', 'body'], message: 'expected no `body` condition in a signal rule' });
  if (s.authFailures !== undefined && (http !== undefined || kafka !== undefined || kubernetes !== undefined || r.match.time !== undefined)) {
    ctx.addIssue({ code: 'custom', path: ['match'], message: 'expected only principal conditions (subject, group, issuer) in an authFailures rule: failures are counted on every path, and the match says whose success may be flagged' });
  }
  if (s.replay !== undefined) {
    if (http !== undefined || kubernetes !== undefined) ctx.addIssue({ code: 'custom', path: ['match'], message: 'expected no `http` or `kubernetes` condition in a replay rule: replay applies to Kafka Produce' });
    const ops = kafka?.operation === undefined ? undefined : typeof kafka.operation === 'string' ? [kafka.operation] : kafka.operation;
    if (ops !== undefined && !ops.includes('produce')) ctx.addIssue({ code: 'custom', path: ['match', 'kafka', 'operation'], message: 'expected `produce` among the operations of a replay rule' });
  }
  if (s.volume !== undefined && KAFKA_ONLY_MEASURES.has(s.volume.measure) && (http !== undefined || kubernetes !== undefined)) {
    ctx.addIssue({ code: 'custom', path: ['signal', 'volume', 'measure'], message: `expected a Kafka-only match for ${s.volume.measure} (records and bytes are Kafka measures)` });
  }
}

/** Time windows and flagging rules named by `match.time` and `match.flagged` exist. */
export function refineSignalReferences(config: { readonly timeWindows: Readonly<Record<string, unknown>>; readonly rules: readonly RuleShape[] }, ctx: Ctx): void {
  const authRules = new Set(config.rules.filter((r) => r.signal?.authFailures !== undefined).map((r) => r.name));
  const list = (v: string | readonly string[] | undefined): readonly string[] => (v === undefined ? [] : typeof v === 'string' ? [v] : v);
  config.rules.forEach((r, i) => {
    const time = r.match.time;
    for (const key of ['within', 'outside'] as const) {
      for (const name of list(time?.[key])) {
        if (!(name in config.timeWindows)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'match', 'time', key], message: `expected the name of a time window in timeWindows; "${name}" is not one (${Object.keys(config.timeWindows).join(', ') || 'none defined'})` });
      }
    }
    const flagged = r.match.flagged;
    if (flagged === true && authRules.size === 0) {
      ctx.addIssue({ code: 'custom', path: ['rules', i, 'match', 'flagged'], message: 'expected an `authFailures` signal rule somewhere: none can flag a session' });
    }
    if (flagged !== undefined && flagged !== true) {
      for (const name of list(flagged)) {
        if (!authRules.has(name)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'match', 'flagged'], message: `expected the name of an authFailures signal rule; "${name}" is not one` });
      }
    }
  });
}
