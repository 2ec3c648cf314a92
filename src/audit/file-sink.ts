/**
 * @module audit/file-sink
 * The hash-chained JSONL file (audit/chain.ts), fed from its spool. The chain survives restarts: at start the last
 * line is read back, checked against its own hash, and the next record links to it.
 *
 * A last line without its newline was cut by a crash mid-write. It is not chained over as if nothing happened: its
 * bytes are moved to `<path>.torn-<time>`, the file is cut back to the last whole line, and the first record of the
 * new run (event `audit.file.torn_tail`, path `system`) says so, with the bytes' count and SHA-256 and where they
 * went. A last line that does not match its hash stops the start: the file was changed, and chaining on would hide
 * it (`tollgate audit verify` says where; move the file aside to start a new chain).
 *
 * One writer per file: `<path>.lock` holds the writer's pid; a lock whose process is gone is taken over.
 *
 * Exactly once across a crash: records written to the file but not yet confirmed to the spool come from the spool
 * again after a restart; those the file already ends with (same process prefix, counter up to the last line's) are
 * skipped, not written twice.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { asChained, chainRecord, EMPTY_CHAIN, hashMatches, type ChainHead } from './chain.ts';
import type { Delivery } from './delivery.ts';
import { readLastLine } from './lines.ts';
import type { AuditRecord } from './record.ts';
import type { SpoolEntry } from './spool.ts';
import { parseId } from './stamp.ts';

export interface FileDeliveryOptions {
  readonly path: string;
  readonly fsync: boolean;
  readonly hmacKey?: Buffer;
  readonly logger: Logger;
}

export class AuditFileError extends Error {
  override name = 'AuditFileError';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Files this process writes: a second sink on one of them is refused (the lock alone cannot tell it is ours). */
const open = new Set<string>();

/**
 * Takes `<file>.lock` for this process; throws when a live process holds it. A lock naming this process's own pid
 * and no file open here is stale (a container's tollgate is often pid 1 in every life).
 */
function lock(file: string): string {
  const lockFile = `${file}.lock`;
  if (open.has(file)) throw new AuditFileError(`audit file ${file} is already written by another sink of this process`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx' });
      open.add(file);
      return lockFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(lockFile, 'utf8').trim());
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new AuditFileError(`audit file ${file} is being written by process ${pid} (${lockFile}); give each tollgate process its own file`);
      }
      fs.rmSync(lockFile, { force: true });
    }
  }
  throw new AuditFileError(`cannot take the lock ${lockFile}`);
}

export class FileDelivery implements Delivery {
  readonly target: string;
  readonly maxRecords = 1000;
  readonly maxBytes = 1024 * 1024;
  readonly maxWaitMs = 0;
  readonly #fsync: boolean;
  readonly #key: Buffer | undefined;
  readonly #lockFile: string;
  #fd: number | undefined;
  #head: ChainHead;
  #size: number;
  /** The id of the last record found in the file at start: records up to it that come again are skipped. */
  #resumeAfter: { prefix: string; counter: number } | undefined;

  /** Opens (creating) the file, takes its lock and reads where its chain stands. */
  constructor(options: FileDeliveryOptions) {
    this.target = options.path;
    this.#fsync = options.fsync;
    this.#key = options.hmacKey;
    fs.mkdirSync(path.dirname(options.path), { recursive: true });
    this.#lockFile = lock(options.path);
    try {
      this.#fd = fs.openSync(options.path, 'a+');
      const last = readLastLine(this.#fd);
      this.#head = EMPTY_CHAIN;
      if (last.text !== undefined) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(last.text);
        } catch {
          parsed = undefined;
        }
        const record = asChained(parsed);
        if (record === undefined) throw new AuditFileError(`audit file ${options.path}: its last line is not a chained audit record; it is not a file tollgate wrote, or it was changed (move it aside to start a new chain)`);
        if (!hashMatches(record, this.#key)) {
          throw new AuditFileError(`audit file ${options.path}: its last record (seq ${record.seq}) does not match its hash${this.#key === undefined ? '' : ' under the configured hmacKey'}: the file was changed; \`tollgate audit verify ${options.path}\` says where (move it aside to start a new chain)`);
        }
        this.#head = { seq: record.seq, hash: record.hash };
        this.#resumeAfter = parseId(record.id);
      }
      this.#size = last.end;
      if (last.torn.length > 0) this.#setTornTailAside(options.path, last.torn, last.end, options.logger);
    } catch (err) {
      if (this.#fd !== undefined) fs.closeSync(this.#fd);
      fs.rmSync(this.#lockFile, { force: true });
      open.delete(this.target);
      throw err;
    }
  }

  get head(): ChainHead {
    return this.#head;
  }

  async deliver(batch: readonly SpoolEntry[]): Promise<{ rejected: number }> {
    const fd = this.#fd;
    if (fd === undefined) throw new Error(`audit file ${this.target} is closed`);
    let head = this.#head;
    let rejected = 0;
    const lines: string[] = [];
    let resume = this.#resumeAfter;
    for (const entry of batch) {
      let record: AuditRecord;
      try {
        record = JSON.parse(entry.line) as AuditRecord;
      } catch {
        rejected++;
        continue;
      }
      if (resume !== undefined) {
        const id = parseId(record.id);
        if (id !== undefined && id.prefix === resume.prefix && id.counter <= resume.counter) continue;
        resume = undefined;
      }
      const next = chainRecord(record, head, this.#key);
      lines.push(next.line);
      head = next.head;
    }
    const data = Buffer.from(lines.join(''));
    try {
      await write(fd, data);
      if (this.#fsync) await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      // A write cut short (a full disk) must not leave half a line for the next one to follow.
      try { fs.ftruncateSync(fd, this.#size); } catch { /* the retry's write fails the same way, and says why */ }
      throw new Error(`cannot append to ${this.target}: ${(err as Error).message}`);
    }
    this.#size += data.length;
    this.#head = head;
    this.#resumeAfter = resume;
    return { rejected };
  }

  async close(): Promise<void> {
    if (this.#fd === undefined) return;
    fs.closeSync(this.#fd);
    this.#fd = undefined;
    fs.rmSync(this.#lockFile, { force: true });
    open.delete(this.target);
  }

  #setTornTailAside(file: string, torn: Buffer, end: number, logger: Logger): void {
    const time = new Date();
    const savedTo = `${file}.torn-${time.toISOString().replace(/[:.]/g, '-')}`;
    fs.writeFileSync(savedTo, torn);
    fs.ftruncateSync(this.#fd!, end);
    const sha256 = createHash('sha256').update(torn).digest('hex');
    const reason = `the last line of the audit file was incomplete (a crash while it was written): ${torn.length} bytes set aside in ${path.basename(savedTo)}`;
    logger.warn({ file, bytes: torn.length, sha256, savedTo }, reason);
    const record: AuditRecord = {
      id: `torn-${time.getTime().toString(36)}`, time: time.toISOString(), path: 'system', event: 'audit.file.torn_tail', session: 'tollgate',
      reason, details: { bytes: torn.length, sha256, savedTo, afterSeq: this.#head.seq },
    };
    const next = chainRecord(record, this.#head, this.#key);
    fs.writeSync(this.#fd!, next.line);
    this.#size = end + Buffer.byteLength(next.line);
    this.#head = next.head;
  }
}

function write(fd: number, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let offset = 0;
    const step = () => fs.write(fd, data, offset, data.length - offset, null, (err, written) => {
      if (err) return reject(err);
      offset += written;
      if (offset < data.length) step();
      else resolve();
    });
    step();
  });
}
