/**
 * What insider-threat signals cost per request and how much memory they keep, in process (no network: the signal
 * engine is pure bookkeeping):
 * - time per Kafka Fetch decision: the policy's decision alone (the baseline) against the policy plus the signal
 *   engine's `held` and `measure` for one volume rule with a fixed limit (one key kept over it, so every decision
 *   builds a throttle observation; then 1000 keys under it), one with a learned baseline, and both with a different
 *   principal on every request (the least-recently-used key table churning at `maxKeys`);
 * - heap kept by one volume rule after N distinct keys, for N below, at and well above `maxKeys`: it grows with N
 *   up to `maxKeys`, then stays flat (bounded memory), and what one key costs.
 *
 *   node bench/signals.bench.ts [--decisions 300000] [--max-keys 50000] [--rounds 3]
 *
 * Bounded by its counts; prints ratios against the baseline measured in the same run. No assertions.
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { configSchema } from '../src/config/schema.ts';
import { compilePolicy, type PolicyEngine } from '../src/policy/engine.ts';
import { SignalEngine } from '../src/signals/engine.ts';
import type { Principal } from '../src/core/principal.ts';
import type { KafkaAction } from '../src/core/action.ts';

const { values } = parseArgs({ options: {
  decisions: { type: 'string', default: '300000' },
  'max-keys': { type: 'string', default: '50000' },
  rounds: { type: 'string', default: '3' },
} });
const DECISIONS = Number(values.decisions);
const MAX_KEYS = Number(values['max-keys']);
const ROUNDS = Number(values.rounds);

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const ACCESS = [
  { name: 'analysts-read', match: { group: 'analysts', kafka: { operation: 'consume', topic: ['orders', 'payments'] } }, effect: 'allow' },
];
const LIMIT_RULE = {
  name: 'fetch-volume', match: { group: 'analysts', kafka: { operation: 'consume', topic: 'payments' } },
  signal: { volume: { measure: 'fetchedBytes', window: '1m', limit: '50MB' }, effect: 'throttle' },
};
const BASELINE_RULE = {
  name: 'unusual-reads', match: { kafka: { operation: 'consume' } },
  signal: { volume: { measure: 'fetchedRecords', window: '10m', baseline: { deviations: 4, warmup: '1h', floor: 10_000 } } },
};

const fetchPayments: KafkaAction = { kind: 'kafka', api: 'Fetch', operation: 'consume', topic: 'payments' };
const principals: Principal[] = Array.from({ length: MAX_KEYS * 2 }, (_, i) => ({ subject: `user-${i}`, groups: ['analysts'], issuer: 'https://idp.bench', authenticatedBy: 'oidc' }));

function setup(rules: readonly unknown[]): { policy: PolicyEngine; engine: SignalEngine; clock: { now: number } } {
  const clock = { now: Date.parse('2026-11-23T10:00:00Z') };
  const config = configSchema.parse({ signals: { maxKeys: MAX_KEYS }, rules: [...rules, ...ACCESS] });
  const engine = new SignalEngine({ now: () => clock.now });
  const policy = compilePolicy(config.rules, { now: () => clock.now });
  engine.update(policy.signals, { maxKeys: config.signals.maxKeys, maxThrottleMs: config.signals.maxThrottle });
  return { policy, engine, clock };
}

/** Nanoseconds per decision: `n` Fetch decisions, each (with signals) checked for a hold and counted as 40 KB. */
function timeDecisions(rules: readonly unknown[], withSignals: boolean, distinctPrincipals: number): number {
  const { policy, engine, clock } = setup(rules);
  let allowed = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < DECISIONS; i++) {
    // Time moves 1 ms per decision: slices age, windows slide, as under steady traffic.
    clock.now += 1;
    const principal = principals[i % distinctPrincipals]!;
    const decision = policy.decide(principal, fetchPayments);
    if (decision.effect !== 'allow') continue;
    allowed++;
    if (withSignals && engine.held(principal, fetchPayments).length === 0) {
      engine.measure(principal, [{ action: fetchPayments, amounts: { fetchedBytes: 40_000, fetchedRecords: 40 } }]);
    }
  }
  const ns = Number(process.hrtime.bigint() - started) / DECISIONS;
  if (allowed !== DECISIONS) throw new Error(`expected every decision to allow, ${allowed} of ${DECISIONS} did`);
  return ns;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`signals: ${DECISIONS} Fetch decisions per variant, median of ${ROUNDS} rounds; maxKeys ${MAX_KEYS}`);
const variants: Array<[string, readonly unknown[], boolean, number]> = [
  ['policy alone (baseline)', [], false, 1],
  ['+ volume limit, one key over it', [LIMIT_RULE], true, 1],
  ['+ volume limit, 1000 keys', [LIMIT_RULE], true, 1000],
  ['+ learned baseline, 1000 keys', [BASELINE_RULE], true, 1000],
  [`+ both, ${2 * MAX_KEYS} keys (LRU churn)`, [LIMIT_RULE, BASELINE_RULE], true, 2 * MAX_KEYS],
];
let baseline = 0;
for (const [name, rules, withSignals, keys] of variants) {
  timeDecisions(rules, withSignals, keys); // warm-up
  const ns = median(Array.from({ length: ROUNDS }, () => timeDecisions(rules, withSignals, keys)));
  if (baseline === 0) baseline = ns;
  console.log(`  ${name.padEnd(38)} ${ns.toFixed(0).padStart(6)} ns/decision   ${(ns / baseline).toFixed(2)}x the baseline`);
}

/** Heap kept by one engine after `keys` distinct principals each fetched once (after a full collection). */
function heapAfter(rules: readonly unknown[], keys: number): { bytes: number; kept: number } {
  gc();
  const before = process.memoryUsage().heapUsed;
  const { engine, clock } = setup(rules);
  for (let i = 0; i < keys; i++) {
    clock.now += 1;
    engine.measure(principals[i % principals.length]!, [{ action: fetchPayments, amounts: { fetchedBytes: 40_000, fetchedRecords: 40 } }]);
  }
  gc();
  const bytes = process.memoryUsage().heapUsed - before;
  // Read after the measurement: the engine is still reachable when the heap is measured.
  const kept = engine.keyCounts().reduce((n, r) => n + r.keys, 0);
  return { bytes, kept };
}

console.log(`\nheap kept by the signal state (one rule each), against the number of distinct keys seen:`);
for (const [name, rules] of [['volume limit', [LIMIT_RULE]], ['learned baseline', [BASELINE_RULE]]] as const) {
  const rows = [MAX_KEYS / 10, MAX_KEYS / 2, MAX_KEYS, 2 * MAX_KEYS].map((keys) => ({ keys, ...heapAfter(rules, keys) }));
  const atMax = rows.find((r) => r.keys === MAX_KEYS)!;
  for (const r of rows) {
    console.log(`  ${name.padEnd(18)} ${String(r.keys).padStart(7)} keys seen, ${String(r.kept).padStart(7)} kept: ${(r.bytes / 1_048_576).toFixed(1).padStart(6)} MiB   ${(r.bytes / atMax.bytes).toFixed(2)}x the heap at maxKeys`);
  }
  console.log(`  ${name.padEnd(18)} ~${Math.round(atMax.bytes / atMax.kept)} bytes per key`);
}
