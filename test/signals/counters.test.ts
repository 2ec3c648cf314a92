/**
 * The arithmetic under the signals: a sliding-window sum in constant memory, the time it takes to drain back under
 * a threshold, and a learned baseline (exponentially weighted mean and deviation per window, with a warm-up).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlidingCounter } from '../../src/signals/sliding-counter.ts';
import { Baseline } from '../../src/signals/baseline.ts';
import { parseAmount, formatAmount } from '../../src/signals/amount.ts';

test('a sliding sum counts what lies in the last window, the oldest slice weighted by the part still inside', () => {
  const c = new SlidingCounter(60_000, 6);
  c.add(0, 100);
  c.add(30_000, 50);
  assert.equal(c.sum(30_000), 150);
  assert.equal(c.sum(59_999), 150);
  // At 65 s the slice [0, 10 s) is half out of the window [5 s, 65 s].
  assert.equal(c.sum(65_000), 100);
  assert.equal(c.sum(70_000), 50);
  assert.equal(c.sum(100_000), 0);
  assert.equal(c.idle(100_000), true);
});

test('a slot reused after a full turn of the ring starts from zero', () => {
  // Ten 100 ms slices in eleven slots: the slice at 1100 ms takes the slot of the slice at 0 ms.
  const c = new SlidingCounter(1000, 10);
  c.add(0, 5);
  c.add(1100, 7);
  assert.equal(c.sum(1100), 7);
  c.add(1150, 1);
  assert.equal(c.sum(1150), 8);
});

test('drain time: how long until the sum is back at the threshold with nothing added', () => {
  const c = new SlidingCounter(10_000, 10);
  c.add(0, 1000);
  assert.equal(c.drainTime(500, 1000), 0, 'at the threshold already');
  // 1000 in the first slice: it fades out linearly over [10 s, 11 s).
  const wait = c.drainTime(500, 500);
  assert.ok(Math.abs(wait - 10_000) < 2, `about 10 s (the slice is half out at 10.5 s), got ${wait}`);
  assert.ok(c.sum(500 + wait) <= 500.01);
  c.add(9_500, 300);
  const more = c.drainTime(9_600, 100);
  assert.ok(c.sum(9_600 + more) <= 100.01 && c.sum(9_600 + more - 50) > 100, `drains exactly then, got ${more}`);
});

test('a baseline learns per window, idle windows count as zero, and fires only after its warm-up', () => {
  const period = 60_000;
  const b = new Baseline({ periodMs: period, warmupMs: 5 * period, halfLifeMs: 10 * period }, 0);
  const threshold = { deviations: 3, floor: 10 };
  for (let i = 0; i < 4; i++) b.add(i * period + 1, 100);
  assert.equal(b.view(4 * period, threshold).threshold, undefined, 'four periods: still warming up');
  b.add(4 * period + 1, 100);
  const warm = b.view(5 * period, threshold);
  assert.equal(warm.periods, 5);
  assert.equal(warm.mean, 100);
  assert.equal(warm.stddev, 0);
  assert.equal(warm.threshold, 100, 'steady traffic: mean + 3 × 0');
  // Ten idle minutes pull the mean down and widen the deviation.
  const idle = b.view(15 * period, threshold);
  assert.equal(idle.periods, 15);
  assert.ok(idle.mean < 60 && idle.stddev > 30, `mean ${idle.mean}, stddev ${idle.stddev}`);
  assert.ok(idle.threshold! > idle.mean);
  const low = new Baseline({ periodMs: period, warmupMs: period, halfLifeMs: period }, 0);
  low.add(1, 1);
  assert.equal(low.view(period, { deviations: 3, floor: 10 }).threshold, 10, 'never below the floor');
});

test('amounts: decimal and binary sizes, plain numbers', () => {
  assert.equal(parseAmount('50MB'), 50_000_000);
  assert.equal(parseAmount('512KiB'), 524_288);
  assert.equal(parseAmount('1.5 GB'), 1_500_000_000);
  assert.equal(parseAmount('1000'), 1000);
  assert.throws(() => parseAmount('50 megs'), /expected a number or a size/);
  assert.equal(formatAmount(61_234_567, true), '61.235 MB');
  assert.equal(formatAmount(12, false), '12');
});
