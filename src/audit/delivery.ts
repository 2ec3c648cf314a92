/**
 * @module audit/delivery
 * One spooled sink at work: records go into its spool at once (audit/spool.ts) and a loop hands them to the sink
 * in order, batch by batch. A batch the sink did not take is offered again, the same entries in the same array,
 * after a pause that doubles up to `maxBackoffMs`, until it does; only then is it confirmed to the spool. So a sink
 * that is down costs traffic nothing (unless its spool fills under `block`), and no record is skipped.
 */
import type { Logger } from 'pino';
import type { Spool, SpoolEntry } from './spool.ts';

/** What a sink does with a batch; the rest (spooling, order, retries) is the runner's. */
export interface Delivery {
  /** Where records go, for logs and /readyz: a file path, `topic@bootstrap`, a URL without its query. */
  readonly target: string;
  readonly maxRecords: number;
  readonly maxBytes: number;
  /** How long a batch short of maxRecords waits for more (0: at once). */
  readonly maxWaitMs: number;
  /**
   * Resolves once the sink holds every entry of `batch` (durably, as far as it can tell); throws otherwise. A
   * batch that failed is passed again as the same array. `rejected` counts entries the sink refused for good (a
   * record too large for it): they are skipped, counted and logged, never retried.
   */
  deliver(batch: readonly SpoolEntry[]): Promise<{ readonly rejected?: number } | void>;
  close(): Promise<void>;
}

export type RecordResult = 'accepted' | 'refused' | 'dropped' | 'delivered' | 'rejected';

export interface SinkStatus {
  readonly name: string;
  readonly type: string;
  readonly target: string;
  /** The last delivery succeeded (true before the first one). */
  readonly up: boolean;
  readonly lastError?: string;
  /** When `up` last changed (ms since the epoch). */
  readonly since: number;
  readonly pendingRecords: number;
  readonly spoolBytes: number;
  readonly spoolMaxBytes: number;
  /** Age of the oldest record not yet delivered; 0 when none waits. */
  readonly lagSeconds: number;
  /** Traffic must be refused: the spool is (nearly) full under `block`. */
  readonly blocked: boolean;
}

export interface SpooledSinkOptions {
  readonly name: string;
  readonly type: string;
  readonly spool: Spool;
  readonly delivery: Delivery;
  readonly logger: Logger;
  readonly onRecords?: (result: RecordResult, count: number) => void;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** The time of a spooled record (its `time` field), in ms; undefined when it has none. */
function timeOf(line: string): number | undefined {
  const at = line.indexOf('"time":"');
  if (at === -1) return undefined;
  const ms = Date.parse(line.slice(at + 8, line.indexOf('"', at + 8)));
  return Number.isNaN(ms) ? undefined : ms;
}

export class SpooledSink {
  readonly name: string;
  readonly type: string;
  readonly #spool: Spool;
  readonly #delivery: Delivery;
  readonly #logger: Logger;
  readonly #onRecords: (result: RecordResult, count: number) => void;
  readonly #minBackoffMs: number;
  readonly #maxBackoffMs: number;
  #up = true;
  #since = Date.now();
  #lastError: string | undefined;
  /** Time of the oldest record not delivered, when known. */
  #headTime: number | undefined;
  #wake: (() => void) | undefined;
  /** Whether a written record ends the current sleep (waiting for work) or not (a pause after a failure). */
  #wakeOnRecord = false;
  #stopping = false;
  #running: Promise<void> | undefined;
  #refusedLogged = 0;

  constructor(options: SpooledSinkOptions) {
    this.name = options.name;
    this.type = options.type;
    this.#spool = options.spool;
    this.#delivery = options.delivery;
    this.#logger = options.logger.child({ sink: options.name });
    this.#onRecords = options.onRecords ?? (() => {});
    this.#minBackoffMs = options.minBackoffMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5_000;
    const { pendingRecords, tornBytes } = this.#spool.recovery;
    if (tornBytes > 0) this.#logger.warn({ dir: this.#spool.dir, tornBytes }, 'audit spool: a record cut short by a crash was cut off');
    if (pendingRecords > 0) this.#logger.info({ dir: this.#spool.dir, pendingRecords }, 'audit spool: records from before the restart are delivered first');
  }

  /** Starts delivering; returns at once. */
  start(): void {
    this.#running ??= this.#run();
  }

  /** Queues one record (its JSON line). Never waits. */
  write(line: string): void {
    const result = this.#spool.append(line, (dropped) => {
      this.#onRecords('dropped', dropped);
      this.#logger.error({ dropped, totalDropped: this.#spool.dropped, maxBytes: this.#spool.maxBytes },
        `audit sink ${this.name} is behind and its spool is full: the oldest records were dropped (spool.onFull: drop-oldest)`);
    });
    this.#onRecords(result, 1);
    if (result === 'refused') {
      // One error line per second at most: under `block` every refused exchange also writes a record.
      const now = Date.now();
      if (now - this.#refusedLogged >= 1000) {
        this.#refusedLogged = now;
        this.#logger.error({ maxBytes: this.#spool.maxBytes, spoolBytes: this.#spool.bytes, recordBytes: Buffer.byteLength(line) },
          `audit sink ${this.name} refused a record: its spool is full (spool.onFull: block); traffic is refused until it drains`);
      }
    }
    this.#headTime ??= timeOf(line);
    if (this.#wakeOnRecord) this.#wake?.();
  }

  /** Why traffic must be refused, when the spool is full under `block`. */
  refusal(): string | undefined {
    if (!this.#spool.blocked) return undefined;
    return `audit sink ${this.name} (${this.#delivery.target}) cannot keep up: its spool is full (${this.#spool.bytes} of ${this.#spool.maxBytes} bytes) and spool.onFull is block, so traffic is refused until it drains`;
  }

  status(): SinkStatus {
    const pending = this.#spool.pendingRecords;
    return {
      name: this.name, type: this.type, target: this.#delivery.target, up: this.#up, since: this.#since,
      ...(this.#lastError !== undefined && { lastError: this.#lastError }),
      pendingRecords: pending, spoolBytes: this.#spool.bytes, spoolMaxBytes: this.#spool.maxBytes,
      lagSeconds: pending === 0 || this.#headTime === undefined ? 0 : Math.max(0, (Date.now() - this.#headTime) / 1000),
      blocked: this.#spool.blocked,
    };
  }

  /**
   * Stops after the batch under way (waiting for it at most until `deadline`, ms since the epoch), writes what is
   * buffered to the spool and closes the sink. What was not delivered waits in the spool for the next start.
   */
  async close(deadline = Date.now() + 5_000): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    this.#spool.flush();
    if (this.#running !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#running, new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.max(0, deadline - Date.now())); })]);
      clearTimeout(timer);
    }
    await this.#delivery.close().catch((err: Error) => this.#logger.warn({ err: err.message }, 'audit sink did not close cleanly'));
    this.#spool.close();
  }

  /** Resolves after `ms`, or when the sink is closing; without `ms`, also when a record is written. */
  #sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      if (ms !== undefined) timer = setTimeout(done, ms);
      this.#wake = done;
      this.#wakeOnRecord = ms === undefined;
    });
  }

  async #run(): Promise<void> {
    const { maxRecords, maxBytes, maxWaitMs } = this.#delivery;
    let batch: readonly SpoolEntry[] | undefined;
    let backoff = this.#minBackoffMs;
    const failed = async (message: string) => {
      if (this.#up) {
        this.#logger.warn({ target: this.#delivery.target, err: message, pendingRecords: this.#spool.pendingRecords }, `audit sink ${this.name} is down; records wait in its spool`);
        this.#up = false;
        this.#since = Date.now();
      }
      this.#lastError = message;
      await this.#sleep(backoff);
      backoff = Math.min(this.#maxBackoffMs, backoff * 2);
    };
    while (!this.#stopping) {
      if (batch === undefined) {
        if (this.#spool.pendingRecords === 0) {
          this.#headTime = undefined;
          await this.#sleep();
          continue;
        }
        if (maxWaitMs > 0 && this.#spool.pendingRecords < maxRecords) await this.#sleep(maxWaitMs);
        if (this.#stopping) break;
        let taken: SpoolEntry[];
        try {
          taken = this.#spool.take(maxRecords, maxBytes);
        } catch (err) {
          await failed(`cannot read the spool ${this.#spool.dir}: ${(err as Error).message}`);
          continue;
        }
        if (taken.length === 0) {
          await this.#sleep();
          continue;
        }
        batch = taken;
        this.#headTime = timeOf(taken[0]!.line) ?? this.#headTime;
      }
      let rejected: number;
      try {
        rejected = (await this.#delivery.deliver(batch))?.rejected ?? 0;
      } catch (err) {
        await failed(err instanceof Error ? err.message : String(err));
        continue;
      }
      // Delivered: from here only the confirmation is retried, never the delivery (it would be a second copy).
      for (let error = this.#confirm(batch.at(-1)!.seq); error !== undefined; error = this.#confirm(batch.at(-1)!.seq)) {
        if (this.#stopping) return;
        await failed(`delivered, but cannot confirm it in the spool ${this.#spool.dir}: ${error}`);
      }
      this.#onRecords('delivered', batch.length - rejected);
      if (rejected > 0) {
        this.#onRecords('rejected', rejected);
        this.#logger.error({ rejected }, `audit sink ${this.name} refused ${rejected} record(s) for good (too large for it?); they are skipped here and kept by the other sinks`);
      }
      batch = undefined;
      backoff = this.#minBackoffMs;
      if (!this.#up) {
        this.#logger.warn({ target: this.#delivery.target, downForMs: Date.now() - this.#since, pendingRecords: this.#spool.pendingRecords }, `audit sink ${this.name} is back; delivering what waited`);
        this.#up = true;
        this.#since = Date.now();
        this.#lastError = undefined;
      }
    }
  }

  /** Confirms up to `seq` in the spool; the error's message when the disk refused. */
  #confirm(seq: number): string | undefined {
    try {
      this.#spool.ack(seq);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }
}
