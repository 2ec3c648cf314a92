/**
 * @module audit/spool
 * A bounded, append-only, on-disk queue of audit records for one sink: records wait here until the sink has them,
 * in order, however long the sink is down, and survive a restart of tollgate.
 *
 * On disk, in the spool's folder:
 * - segment files `<seq of their first record, 16 digits>.seg`, one record per line (its JSON), appended to; a
 *   record's seq is its segment's first seq plus its line index, so seqs are never written down;
 * - `acked`: the seq of the last record the sink confirmed (replaced atomically: written aside, then renamed).
 * A segment whose records are all confirmed is deleted. The segment being written rotates at `segmentBytes`.
 *
 * Bounds: `maxBytes` counts the segment files as they are on disk (the confirmed head of the oldest one included),
 * so the folder never holds more. When a record does not fit:
 * - `block`: it is refused. From `BLOCK_AT` of maxBytes on (or once a record was refused), `blocked` is true so
 *   that traffic is refused (fail closed) until the sink has drained the spool below `RESUME_AT`; the room left
 *   above BLOCK_AT is for the records of exchanges already under way and of the refusals;
 * - `drop-oldest`: the oldest segment is deleted, records it held unconfirmed are counted as dropped.
 *
 * Crash window: appends are buffered for one turn of the event loop and written together (one write for many
 * records under load); a process killed in that turn loses them. A line cut by a crash is cut off at the next
 * start, and counted. Confirmation is at least once: a record delivered just before a crash may be delivered again
 * after it (every record carries its `id` for de-duplication).
 */
import fs from 'node:fs';
import path from 'node:path';

export type OnFull = 'block' | 'drop-oldest';

/** Fraction of maxBytes from which a `block` spool refuses traffic, and below which it accepts it again. */
export const BLOCK_AT = 0.9;
export const RESUME_AT = 0.75;

export interface SpoolOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly onFull: OnFull;
  /** Default: an eighth of maxBytes, at most 64 MiB. */
  readonly segmentBytes?: number;
  /** Told when appends cannot be written (a full or failing disk); they are kept and written again every second. */
  readonly onWriteError?: (error: Error) => void;
}

export interface SpoolEntry {
  readonly seq: number;
  /** The record's JSON (no newline). */
  readonly line: string;
}

export type AppendResult = 'accepted' | 'refused';

/** What opening found: lines cut by a crash, confirmed segments left behind. */
export interface SpoolRecovery {
  readonly pendingRecords: number;
  /** Bytes of a last line cut short by a crash, cut off. */
  readonly tornBytes: number;
}

interface Segment {
  readonly firstSeq: number;
  readonly file: string;
  /** Records in it. */
  count: number;
  /** Bytes on disk (pending appends not included). */
  bytes: number;
}

const SEGMENT_PATTERN = /^(\d{16})\.seg$/;
const ACKED_FILE = 'acked';

export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly onFull: OnFull;
  readonly segmentBytes: number;
  readonly recovery: SpoolRecovery;
  /** Oldest first; the last one is written to. */
  readonly #segments: Segment[] = [];
  #tailFd: number | undefined;
  #pending: string[] = [];
  #pendingBytes = 0;
  #flushScheduled = false;
  /** Last confirmed seq. */
  #acked: number;
  /** Next seq `take` returns; > acked while a batch is out. */
  #takeSeq: number;
  /** Where the record `#takeSeq` starts: its segment (by first seq) and the byte offset in it. */
  #takeSegment = 0;
  #takeOffset = 0;
  #nextSeq: number;
  #blocked = false;
  #dropped = 0;
  #closed = false;
  readonly #onWriteError: ((error: Error) => void) | undefined;
  #retry: NodeJS.Timeout | undefined;

  constructor(options: SpoolOptions) {
    this.#onWriteError = options.onWriteError;
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes <= 0) throw new Error(`spool ${options.dir}: maxBytes must be a positive integer, got ${options.maxBytes}`);
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.onFull = options.onFull;
    this.segmentBytes = options.segmentBytes ?? Math.min(64 * 1024 * 1024, Math.max(1, Math.floor(options.maxBytes / 8)));
    fs.mkdirSync(this.dir, { recursive: true });
    this.#acked = this.#readAcked();
    let tornBytes = 0;
    const names = fs.readdirSync(this.dir).filter((n) => SEGMENT_PATTERN.test(n)).sort();
    for (const name of names) {
      const file = path.join(this.dir, name);
      this.#segments.push({ firstSeq: Number(SEGMENT_PATTERN.exec(name)![1]), file, count: 0, bytes: fs.statSync(file).size });
    }
    // Counts: a segment ends where the next begins; the last one is counted line by line (and a torn line cut off).
    for (let i = 0; i < this.#segments.length - 1; i++) this.#segments[i]!.count = this.#segments[i + 1]!.firstSeq - this.#segments[i]!.firstSeq;
    const tail = this.#segments.at(-1);
    if (tail !== undefined) {
      const content = fs.readFileSync(tail.file);
      const end = content.lastIndexOf(0x0a) + 1;
      if (end < content.length) {
        tornBytes = content.length - end;
        fs.truncateSync(tail.file, end);
        tail.bytes = end;
      }
      let count = 0;
      for (let at = content.indexOf(0x0a); at !== -1 && at < end; at = content.indexOf(0x0a, at + 1)) count++;
      tail.count = count;
    }
    this.#nextSeq = tail !== undefined ? tail.firstSeq + tail.count : this.#acked + 1;
    if (this.#nextSeq <= this.#acked) this.#nextSeq = this.#acked + 1;
    this.#removeConfirmed();
    this.#takeSeq = 0;
    this.rewind();
    this.#updateBlocked();
    this.recovery = { pendingRecords: this.pendingRecords, tornBytes };
  }

  /** Records not confirmed yet (a batch out included). */
  get pendingRecords(): number {
    return this.#nextSeq - 1 - this.#acked;
  }

  /** Bytes the spool takes on disk, with appends not yet written. */
  get bytes(): number {
    let total = this.#pendingBytes;
    for (const s of this.#segments) total += s.bytes;
    return total;
  }

  /** Under `block`: the spool is nearly full, traffic must be refused until it drains. */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** Records dropped so far (drop-oldest), since this spool was opened. */
  get dropped(): number {
    return this.#dropped;
  }

  get acked(): number {
    return this.#acked;
  }

  /**
   * Queues a record for the sink. Returns at once; the line reaches the disk within this turn of the event loop.
   * `onDrop` hears of records drop-oldest removed to make room.
   */
  append(line: string, onDrop?: (count: number) => void): AppendResult {
    // After a drain closed the sinks, a last record of a stream cut short has nowhere to go but the log.
    if (this.#closed) return 'refused';
    const size = Buffer.byteLength(line) + 1;
    if (size > this.maxBytes) {
      if (this.onFull === 'block') this.#blocked = true;
      return 'refused';
    }
    if (this.bytes + size > this.maxBytes) {
      if (this.onFull === 'block') {
        // A record lost is the moment to stop traffic, however full the spool looked before.
        this.#blocked = true;
        return 'refused';
      }
      let dropped: number;
      try {
        dropped = this.#dropOldest(size);
      } catch (err) {
        return this.#diskRefused(err as Error);
      }
      if (dropped > 0) onDrop?.(dropped);
    }
    let tail = this.#segments.at(-1);
    if (tail === undefined || tail.bytes + this.#pendingBytes >= this.segmentBytes) {
      this.flush();
      // Appends not written yet belong to the segment they were counted in: it rotates once they are on disk.
      if (tail === undefined || this.#pending.length === 0) {
        try {
          tail = this.#rotate();
        } catch (err) {
          return this.#diskRefused(err as Error);
        }
      }
    }
    this.#pending.push(line);
    this.#pendingBytes += size;
    this.#nextSeq++;
    tail.count++;
    this.#updateBlocked();
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return 'accepted';
  }

  /** The disk refused a segment file: the record cannot be kept (and under `block`, traffic stops). */
  #diskRefused(error: Error): AppendResult {
    this.#onWriteError?.(error);
    if (this.onFull === 'block') this.#blocked = true;
    return 'refused';
  }

  /**
   * Writes buffered appends to the segment file now. Never throws: when the disk refuses, the appends stay
   * buffered (still counted against maxBytes), `onWriteError` is told, and a write is tried again in a second.
   */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#pending.length === 0 || this.#closed) return;
    const tail = this.#segments.at(-1)!;
    const data = Buffer.from(this.#pending.join('\n') + '\n');
    try {
      this.#tailFd ??= fs.openSync(tail.file, 'a');
      for (let written = 0; written < data.length;) written += fs.writeSync(this.#tailFd, data, written, data.length - written);
    } catch (err) {
      // Half a write must not stay in front of the next one.
      try { if (this.#tailFd !== undefined) fs.ftruncateSync(this.#tailFd, tail.bytes); } catch { /* the next write reports */ }
      this.#onWriteError?.(err as Error);
      this.#retry ??= setTimeout(() => {
        this.#retry = undefined;
        this.flush();
      }, 1000).unref();
      return;
    }
    tail.bytes += data.length;
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  /**
   * The next records after those already taken, oldest first: at most `maxRecords`, and at most `maxBytes` of
   * lines unless the first alone is larger. Empty when every record has been taken.
   */
  take(maxRecords: number, maxBytes: number): SpoolEntry[] {
    this.flush();
    const out: SpoolEntry[] = [];
    let bytes = 0;
    while (out.length < maxRecords && this.#takeSeq < this.#nextSeq) {
      const index = this.#segmentIndexOf(this.#takeSeq);
      if (index === -1) break;
      const segment = this.#segments[index]!;
      if (this.#takeSeq >= segment.firstSeq + segment.count) break;
      if (segment.firstSeq !== this.#takeSegment) {
        // The record is in a segment begun after the cursor was placed (at the end of the one before).
        this.#takeSegment = segment.firstSeq;
        this.#takeOffset = this.#offsetOf(segment, this.#takeSeq);
      }
      const want = Math.max(1, Math.min(maxBytes - bytes, segment.bytes - this.#takeOffset));
      const chunk = this.#read(segment, this.#takeOffset, want, out.length === 0);
      let from = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1 && out.length < maxRecords; nl = chunk.indexOf(0x0a, from)) {
        const size = nl - from + 1;
        if (out.length > 0 && bytes + size > maxBytes) break;
        out.push({ seq: this.#takeSeq, line: chunk.toString('utf8', from, nl) });
        bytes += size;
        this.#takeSeq++;
        this.#takeOffset += size;
        from = nl + 1;
      }
      if (this.#takeSeq === segment.firstSeq + segment.count && index + 1 < this.#segments.length) continue;
      if (from === 0 || bytes >= maxBytes) break;
    }
    return out;
  }

  /** Forgets what was taken and not confirmed: the next `take` starts after the last confirmed record again. */
  rewind(): void {
    const head = this.#segments[0];
    this.#takeSeq = Math.max(this.#acked + 1, head?.firstSeq ?? this.#acked + 1);
    this.#takeSegment = head?.firstSeq ?? 0;
    this.#takeOffset = head === undefined ? 0 : this.#offsetOf(head, this.#takeSeq);
  }

  /** The sink has every record up to `seq`: remembered on disk, and segments it empties are deleted. */
  ack(seq: number): void {
    if (seq <= this.#acked) return;
    if (seq >= this.#nextSeq) throw new Error(`spool ${this.dir}: cannot confirm seq ${seq}, the last record is ${this.#nextSeq - 1}`);
    this.#acked = seq;
    this.#writeAcked();
    this.#removeConfirmed();
    if (this.#takeSeq <= seq) this.rewind();
    this.#updateBlocked();
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    clearTimeout(this.#retry);
    this.#closed = true;
    if (this.#tailFd !== undefined) fs.closeSync(this.#tailFd);
    this.#tailFd = undefined;
  }

  #rotate(): Segment {
    const segment: Segment = { firstSeq: this.#nextSeq, file: path.join(this.dir, `${String(this.#nextSeq).padStart(16, '0')}.seg`), count: 0, bytes: 0 };
    fs.writeFileSync(segment.file, '');
    if (this.#tailFd !== undefined) fs.closeSync(this.#tailFd);
    this.#tailFd = undefined;
    this.#segments.push(segment);
    this.#removeConfirmed();
    return segment;
  }

  /** Deletes oldest segments until `size` more bytes fit; returns the unconfirmed records lost. */
  #dropOldest(size: number): number {
    let dropped = 0;
    while (this.bytes + size > this.maxBytes && this.#segments.length > 0) {
      if (this.#segments.length === 1) {
        // The only segment is the one written to: close it so it can go, the next append starts a new one.
        this.flush();
        if (this.#tailFd !== undefined) fs.closeSync(this.#tailFd);
        this.#tailFd = undefined;
        // Appends the disk did not take go with their segment (its count includes them).
        this.#pending = [];
        this.#pendingBytes = 0;
      }
      const segment = this.#segments.shift()!;
      const last = segment.firstSeq + segment.count - 1;
      dropped += Math.max(0, last - Math.max(this.#acked, segment.firstSeq - 1));
      fs.rmSync(segment.file, { force: true });
      if (last > this.#acked) {
        this.#acked = last;
        this.#writeAcked();
      }
    }
    this.#dropped += dropped;
    if (this.#takeSeq <= this.#acked) this.rewind();
    return dropped;
  }

  #removeConfirmed(): void {
    while (this.#segments.length > 1) {
      const head = this.#segments[0]!;
      if (head.firstSeq + head.count - 1 > this.#acked) break;
      fs.rmSync(head.file, { force: true });
      this.#segments.shift();
    }
  }

  #updateBlocked(): void {
    if (this.onFull !== 'block') return;
    const used = this.bytes / this.maxBytes;
    if (!this.#blocked && used >= BLOCK_AT) this.#blocked = true;
    else if (this.#blocked && used < RESUME_AT) this.#blocked = false;
  }

  #segmentIndexOf(seq: number): number {
    for (let i = this.#segments.length - 1; i >= 0; i--) if (this.#segments[i]!.firstSeq <= seq) return i;
    return -1;
  }

  /** Byte offset of record `seq` in `segment` (its lines counted from the start). */
  #offsetOf(segment: Segment, seq: number): number {
    const skip = seq - segment.firstSeq;
    if (skip <= 0) return 0;
    const content = fs.readFileSync(segment.file);
    let at = -1;
    for (let i = 0; i < skip; i++) {
      at = content.indexOf(0x0a, at + 1);
      if (at === -1) return content.length;
    }
    return at + 1;
  }

  /** `length` bytes of `segment` from `offset`, extended to the next newline when `whole` and none is in them. */
  #read(segment: Segment, offset: number, length: number, whole: boolean): Buffer {
    const fd = fs.openSync(segment.file, 'r');
    try {
      let buffer = Buffer.allocUnsafe(length);
      let got = fs.readSync(fd, buffer, 0, length, offset);
      while (whole && buffer.subarray(0, got).indexOf(0x0a) === -1 && offset + got < segment.bytes) {
        const more = Buffer.allocUnsafe(Math.max(64 * 1024, got));
        const n = fs.readSync(fd, more, 0, more.length, offset + got);
        if (n === 0) break;
        buffer = Buffer.concat([buffer.subarray(0, got), more.subarray(0, n)]);
        got = buffer.length;
      }
      return buffer.subarray(0, got);
    } finally {
      fs.closeSync(fd);
    }
  }

  #readAcked(): number {
    try {
      const text = fs.readFileSync(path.join(this.dir, ACKED_FILE), 'utf8').trim();
      const seq = Number(text);
      if (!Number.isSafeInteger(seq) || seq < 0) throw new Error(`spool ${this.dir}: ${ACKED_FILE} holds ${JSON.stringify(text)}, expected a record number`);
      return seq;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
  }

  #writeAcked(): void {
    const file = path.join(this.dir, ACKED_FILE);
    fs.writeFileSync(`${file}.new`, `${this.#acked}\n`);
    fs.renameSync(`${file}.new`, file);
  }
}
