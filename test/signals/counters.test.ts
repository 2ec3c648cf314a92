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

test('shared: the slices changed since the last take, whole sums, only those still in the window', () => {
  const c = new SlidingCounter(1000, 10);
  c.add(0, 5);
  c.add(50, 2);
  c.add(250, 3);
  assert.deepEqual(c.takeChanged(300), [{ slice: 0, amount: 7 }, { slice: 2, amount: 3 }]);
  assert.deepEqual(c.takeChanged(300), [], 'taken: nothing changed since');
  c.add(260, 1);
  assert.deepEqual(c.takeChanged(300), [{ slice: 2, amount: 4 }], 'the whole sum of the slice, not the increment');
  c.add(400, 9);
  // At 1500 ms the window holds slices 5..15: slice 4 has left it.
  assert.deepEqual(c.takeChanged(1500), [], 'a changed slice that left the window is not written');
  assert.equal(c.changed, false);
});

test('shared: a write that failed puts its slices back, those the ring still holds', () => {
  const c = new SlidingCounter(1000, 10);
  c.add(100, 4);
  const taken = c.takeChanged(100);
  c.markChanged(taken);
  assert.deepEqual(c.takeChanged(100), [{ slice: 1, amount: 4 }]);
  c.add(1200, 1);
  c.markChanged(taken);
  assert.deepEqual(c.takeChanged(1200), [{ slice: 12, amount: 1 }], 'slice 1 was replaced by slice 12 in its slot: not put back');
});

test('shared: the other replicas\' slices add to the sum with the same weighting, and are replaced whole', () => {
  const c = new SlidingCounter(1000, 10);
  c.add(0, 10);
  c.setRemote([{ slice: 0, amount: 20 }, { slice: 5, amount: 30 }]);
  assert.equal(c.sum(600), 60);
  assert.equal(c.remoteSum(600), 50);
  // At 1050 ms slice 0 is half out of the window, local and remote alike.
  assert.equal(c.sum(1050), 5 + 10 + 30);
  c.setRemote([{ slice: 6, amount: 1 }]);
  assert.equal(c.sum(700), 10 + 1, 'the earlier remote slices are gone');
  c.setRemote([]);
  assert.equal(c.sum(700), 10);
  assert.deepEqual(c.takeChanged(700), [{ slice: 0, amount: 10 }], 'remote slices are never written back');
});

test('shared: remote slices older than the window, or ahead of this clock, do not count', () => {
  const c = new SlidingCounter(1000, 10);
  c.setRemote([{ slice: 3, amount: 7 }, { slice: 30, amount: 100 }]);
  assert.equal(c.sum(500), 7, 'slice 30 lies ahead of this replica\'s clock');
  assert.equal(c.sum(1500), 0, 'slice 3 has left the window');
  assert.equal(c.idle(1500), true);
});

test('shared: drain time counts the other replicas\' slices too', () => {
  const c = new SlidingCounter(10_000, 10);
  c.add(0, 500);
  c.setRemote([{ slice: 0, amount: 500 }]);
  assert.equal(c.sum(500), 1000);
  const wait = c.drainTime(500, 500);
  assert.ok(Math.abs(wait - 10_000) < 2, `about 10 s: local and remote 1000 fade out over [10 s, 11 s), got ${wait}`);
  c.setRemote([{ slice: 5, amount: 400 }]);
  const later = c.drainTime(5_500, 400);
  assert.ok(later > 10_000 - 5_500, `the local 500 must fade out first, got ${later}`);
  assert.ok(c.sum(5_500 + later) <= 400.01 && c.sum(5_500 + later - 50) > 400);
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
