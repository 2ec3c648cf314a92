import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Spool, BLOCK_AT, RESUME_AT } from '../../src/audit/spool.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-spool-'));
let dirs = 0;
const freshDir = () => path.join(root, `spool-${++dirs}`);

/** A record line of exactly `size` bytes with its newline. */
const line = (i: number, size = 100) => {
  const head = `{"n":${i},"pad":"`;
  return head + 'x'.repeat(size - head.length - 3) + '"}';
};
const numbers = (entries: ReadonlyArray<{ line: string }>) => entries.map((e) => (JSON.parse(e.line) as { n: number }).n);
const segmentFiles = (dir: string) => fs.readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();

test('records come out in the order they went in, in batches bounded by count and bytes', () => {
  const spool = new Spool({ dir: freshDir(), maxBytes: 1_000_000, onFull: 'block' });
  for (let i = 1; i <= 50; i++) assert.equal(spool.append(line(i)), 'accepted');
  assert.equal(spool.pendingRecords, 50);
  const first = spool.take(20, 1_000_000);
  assert.deepEqual(numbers(first), Array.from({ length: 20 }, (_, i) => i + 1));
  assert.deepEqual(first.map((e) => e.seq), Array.from({ length: 20 }, (_, i) => i + 1), 'seqs count from 1');
  const second = spool.take(100, 1000);
  assert.deepEqual(numbers(second), Array.from({ length: 10 }, (_, i) => i + 21), 'ten lines of 100 bytes fit 1000 bytes');
  spool.ack(30);
  assert.equal(spool.pendingRecords, 20);
  assert.deepEqual(numbers(spool.take(100, 1_000_000)), Array.from({ length: 20 }, (_, i) => i + 31));
  assert.deepEqual(spool.take(100, 1_000_000), [], 'nothing more to take until more is appended');
  spool.close();
});

test('a record larger than the byte budget still comes out, alone', () => {
  const spool = new Spool({ dir: freshDir(), maxBytes: 1_000_000, onFull: 'block' });
  spool.append(line(1, 5000));
  spool.append(line(2));
  assert.deepEqual(numbers(spool.take(10, 1000)), [1]);
  assert.deepEqual(numbers(spool.take(10, 1000)), [2]);
  spool.close();
});

test('appends reach the disk within the turn, in one write', async () => {
  const dir = freshDir();
  const spool = new Spool({ dir, maxBytes: 1_000_000, onFull: 'block' });
  spool.append(line(1));
  spool.append(line(2));
  const [segment] = segmentFiles(dir);
  assert.equal(fs.readFileSync(path.join(dir, segment!), 'utf8'), '', 'not yet: appends of one turn are written together');
  await nextTurn();
  assert.equal(fs.readFileSync(path.join(dir, segment!), 'utf8'), `${line(1)}\n${line(2)}\n`);
  spool.close();
});

test('a restart finds what was not confirmed, in order; a batch taken but not confirmed comes out again', () => {
  const dir = freshDir();
  const before = new Spool({ dir, maxBytes: 1_000_000, onFull: 'block', segmentBytes: 1000 });
  for (let i = 1; i <= 40; i++) before.append(line(i));
  before.take(15, 1_000_000);
  before.ack(10);
  before.take(10, 1_000_000);
  before.close();
  const after = new Spool({ dir, maxBytes: 1_000_000, onFull: 'block', segmentBytes: 1000 });
  assert.equal(after.acked, 10);
  assert.equal(after.pendingRecords, 30);
  assert.deepEqual(after.recovery, { pendingRecords: 30, tornBytes: 0 });
  assert.deepEqual(numbers(after.take(100, 1_000_000)), Array.from({ length: 30 }, (_, i) => i + 11));
  after.append(line(41));
  assert.deepEqual(after.take(100, 1_000_000).map((e) => e.seq), [41], 'seqs go on where they stopped');
  after.close();
});

test('a line cut by a crash is cut off at the next start and counted; the records before it survive', () => {
  const dir = freshDir();
  const before = new Spool({ dir, maxBytes: 1_000_000, onFull: 'block' });
  for (let i = 1; i <= 3; i++) before.append(line(i));
  before.close();
  const [segment] = segmentFiles(dir);
  fs.appendFileSync(path.join(dir, segment!), line(4).slice(0, 37));
  const after = new Spool({ dir, maxBytes: 1_000_000, onFull: 'block' });
  assert.deepEqual(after.recovery, { pendingRecords: 3, tornBytes: 37 });
  assert.deepEqual(numbers(after.take(100, 1_000_000)), [1, 2, 3]);
  after.append(line(5));
  assert.deepEqual(numbers(after.take(100, 1_000_000)), [5], 'the next record starts on a line of its own');
  after.close();
});

test('confirmed segments are deleted; the spool folder holds only what is pending (and the segment being written)', () => {
  const dir = freshDir();
  const spool = new Spool({ dir, maxBytes: 1_000_000, onFull: 'block', segmentBytes: 500 });
  for (let i = 1; i <= 20; i++) spool.append(line(i));
  spool.flush();
  assert.equal(segmentFiles(dir).length, 4, 'five 100-byte records per 500-byte segment');
  spool.take(12, 1_000_000);
  spool.ack(12);
  assert.deepEqual(segmentFiles(dir), ['0000000000000011.seg', '0000000000000016.seg'], 'segments 1-5 and 6-10 are gone');
  spool.close();
});

test('block: the spool never holds more than maxBytes; it refuses records and says so, and accepts again once drained', () => {
  const dir = freshDir();
  const spool = new Spool({ dir, maxBytes: 2000, onFull: 'block', segmentBytes: 300 });
  let accepted = 0;
  for (let i = 1; i <= 19; i++) if (spool.append(line(i)) === 'accepted') accepted++;
  assert.equal(accepted, 19);
  assert.equal(spool.blocked, 19 * 100 >= BLOCK_AT * 2000, 'blocked from 90% on');
  assert.equal(spool.blocked, true);
  assert.equal(spool.append(line(20)), 'accepted', 'the room above 90% takes the records of exchanges under way');
  assert.equal(spool.append(line(21)), 'refused', 'full');
  spool.flush();
  const onDisk = segmentFiles(dir).reduce((sum, n) => sum + fs.statSync(path.join(dir, n)).size, 0);
  assert.ok(onDisk <= 2000, `${onDisk} bytes on disk`);
  assert.equal(spool.bytes, onDisk);
  // The sink comes back: a little drained is not enough, below 75% is.
  spool.ack(spool.take(3, 1_000_000).at(-1)!.seq);
  assert.equal(spool.blocked, true, `${spool.bytes} bytes: still above ${RESUME_AT * 2000}`);
  spool.ack(spool.take(6, 1_000_000).at(-1)!.seq);
  assert.equal(spool.blocked, false, `${spool.bytes} bytes: below 75%`);
  assert.equal(spool.append(line(22)), 'accepted');
  assert.deepEqual(numbers(spool.take(100, 1_000_000)), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22], 'nothing reordered, the refused record is not there');
  spool.close();
});

test('block: a record refused blocks traffic even when the spool is not nearly full', () => {
  const spool = new Spool({ dir: freshDir(), maxBytes: 2000, onFull: 'block' });
  spool.append(line(1, 1500));
  assert.equal(spool.blocked, false);
  assert.equal(spool.append(line(2, 600)), 'refused');
  assert.equal(spool.blocked, true);
  spool.close();
});

test('drop-oldest: the oldest records go to make room, counted; the newest are kept in order, within maxBytes', () => {
  const dir = freshDir();
  const spool = new Spool({ dir, maxBytes: 2000, onFull: 'drop-oldest', segmentBytes: 500 });
  const drops: number[] = [];
  for (let i = 1; i <= 50; i++) assert.equal(spool.append(line(i), (n) => drops.push(n)), 'accepted');
  spool.flush();
  assert.ok(spool.bytes <= 2000);
  assert.equal(spool.blocked, false, 'drop-oldest never blocks');
  const kept = numbers(spool.take(100, 1_000_000));
  assert.equal(kept.at(-1), 50, 'the newest record is kept');
  assert.deepEqual(kept, Array.from({ length: kept.length }, (_, i) => 50 - kept.length + 1 + i), 'what is kept is contiguous and in order');
  assert.equal(spool.dropped, 50 - kept.length);
  assert.equal(drops.reduce((a, b) => a + b, 0), spool.dropped, 'every drop was reported');
  assert.ok(drops.every((n) => n === 5), 'a segment (five records) at a time');
  spool.close();
  const reopened = new Spool({ dir, maxBytes: 2000, onFull: 'drop-oldest', segmentBytes: 500 });
  assert.deepEqual(numbers(reopened.take(100, 1_000_000)), kept, 'dropped records stay dropped after a restart');
  reopened.close();
});

test('drop-oldest while a batch is out: the batch can still be confirmed, and nothing is taken twice', () => {
  const spool = new Spool({ dir: freshDir(), maxBytes: 1000, onFull: 'drop-oldest', segmentBytes: 300 });
  for (let i = 1; i <= 6; i++) spool.append(line(i));
  const out = spool.take(4, 1_000_000);
  for (let i = 7; i <= 12; i++) spool.append(line(i));
  spool.ack(out.at(-1)!.seq);
  const rest = numbers(spool.take(100, 1_000_000));
  assert.ok(rest.every((n) => n > 4), `after the confirmed batch: ${rest.join(',')}`);
  assert.equal(rest.at(-1), 12);
  spool.close();
});

test('a record larger than the whole spool is refused under either policy', () => {
  for (const onFull of ['block', 'drop-oldest'] as const) {
    const spool = new Spool({ dir: freshDir(), maxBytes: 500, onFull });
    assert.equal(spool.append(line(1, 600)), 'refused');
    spool.close();
  }
});

test('property: under random appends, batches, confirmations, restarts and both policies, delivery is in order, within bounds, and nothing confirmed comes back', () => {
  let state = 0x2545f491;
  const random = (n: number) => {
    state ^= state << 13; state ^= state >>> 17; state ^= state << 5;
    return (state >>> 0) % n;
  };
  for (const onFull of ['block', 'drop-oldest'] as const) {
    for (let run = 0; run < 20; run++) {
      const dir = freshDir();
      const options = { dir, maxBytes: 3000 + random(5000), onFull, segmentBytes: 200 + random(1500) };
      let spool = new Spool(options);
      let next = 1;
      const accepted: number[] = [];
      let lastConfirmed = 0;
      let out: number[] = [];
      const delivered: number[] = [];
      for (let step = 0; step < 400; step++) {
        const action = random(10);
        if (action < 5) {
          const n = next++;
          if (spool.append(line(n, 60 + random(300))) === 'accepted') accepted.push(n);
        } else if (action < 7) {
          if (out.length === 0) out = numbers(spool.take(1 + random(8), 200 + random(2000)));
        } else if (action < 9) {
          if (out.length > 0) {
            const seq = spool.acked + out.length;
            spool.ack(seq);
            delivered.push(...out);
            out = [];
          }
        } else {
          // A restart: a batch out is forgotten and comes again.
          spool.close();
          spool = new Spool(options);
          out = [];
        }
        spool.flush();
        assert.ok(spool.bytes <= options.maxBytes, `${spool.bytes} > ${options.maxBytes} bytes`);
        assert.ok(spool.acked >= lastConfirmed);
        lastConfirmed = spool.acked;
      }
      for (let i = 1; i < delivered.length; i++) assert.ok(delivered[i]! > delivered[i - 1]!, `${onFull}: delivered out of order or twice: ${delivered.slice(Math.max(0, i - 3), i + 2).join(',')}`);
      const acceptedSet = new Set(accepted);
      assert.ok(delivered.every((n) => acceptedSet.has(n)), 'only accepted records are delivered');
      if (onFull === 'block') {
        // Nothing is dropped: every accepted record up to the last delivered one was delivered.
        const last = delivered.at(-1) ?? 0;
        assert.deepEqual(delivered, accepted.filter((n) => n <= last), 'block loses nothing it accepted');
      } else {
        // What is dropped is the oldest: the newest record accepted is always still there (or delivered).
        const rest = [...out, ...numbers(spool.take(1_000_000, 1_000_000_000))];
        if (accepted.length > 0) assert.equal([...delivered, ...rest].at(-1), accepted.at(-1));
      }
      spool.close();
    }
  }
});

test('a disk that refuses: an append that needs a new segment file is refused (blocking traffic under block), buffered lines are written once the disk takes them again, nothing throws', async () => {
  const dir = freshDir();
  const errors: string[] = [];
  const spool = new Spool({ dir, maxBytes: 1_000_000, onFull: 'block', onWriteError: (err) => errors.push((err as NodeJS.ErrnoException).code ?? err.message) });
  // A directory where the first segment file must go: the file cannot be created.
  const first = path.join(dir, '0000000000000001.seg');
  fs.mkdirSync(first);
  assert.equal(spool.append(line(1)), 'refused');
  assert.equal(spool.blocked, true, 'a record lost under block stops traffic');
  assert.deepEqual(errors, ['EISDIR']);
  fs.rmdirSync(first);
  assert.equal(spool.append(line(2)), 'accepted');
  // Now the segment exists but cannot be written: appends stay buffered and are retried.
  fs.rmSync(first);
  fs.mkdirSync(first);
  await nextTurn();
  assert.equal(errors.length, 2, 'the write failed and was reported');
  assert.equal(spool.pendingRecords, 1, 'the record is still held');
  fs.rmdirSync(first);
  fs.writeFileSync(first, '');
  await new Promise((resolve) => setTimeout(resolve, 1200));
  assert.equal(fs.readFileSync(first, 'utf8'), `${line(2)}\n`, 'written again a second later');
  assert.deepEqual(spool.take(10, 1_000_000).map((e) => e.seq), [1]);
  spool.close();
});
