/**
 * @module audit/chain
 * The hash chain of an audit file. Each line is one record with three more fields: `seq` (1, 2, 3, … in file
 * order), `prevHash` (the previous line's `hash`; 64 zeros for the first) and `hash`, the SHA-256 (HMAC-SHA-256
 * with a key) of the canonical serialization (audit/canonical.ts) of the line without `hash`. The line is written
 * as that serialization with `hash` added as its last member (a verifier parses it, so member order is free; one
 * serialization per record keeps the file sink cheap).
 *
 * What the chain proves: a line changed after it was written no longer matches its hash; a line removed, moved or
 * slipped in breaks the `prevHash`/`seq` links around it. `verifyChain` names the first line that is wrong and
 * says how. What it cannot prove without a key: that nobody rewrote the file from some line on with fresh hashes,
 * or cut records off its end. A key (the file sink's `hmacKey`) closes the first; the other sinks, which hold the
 * same records, are the witness for the second.
 */
import { createHash, createHmac } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { canonicalJson } from './canonical.ts';
import { readLines } from './lines.ts';
import type { AuditRecord } from './record.ts';

export const GENESIS_HASH = '0'.repeat(64);

/** Where a chain stands: the last line's seq and hash (seq 0 and GENESIS_HASH before the first). */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

export const EMPTY_CHAIN: ChainHead = { seq: 0, hash: GENESIS_HASH };

export interface ChainedRecord extends AuditRecord {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

/** The hash of a line's content without its `hash` field. */
export function chainHash(content: object, key?: Buffer): string {
  const text = canonicalJson(content);
  return (key === undefined ? createHash('sha256') : createHmac('sha256', key)).update(text).digest('hex');
}

/** The line (with its newline) that puts `record` after `head` in a chain, and the new head. */
export function chainRecord(record: AuditRecord, head: ChainHead, key?: Buffer): { line: string; head: ChainHead } {
  const { hash: _ignored, ...rest } = record as AuditRecord & { hash?: unknown };
  const content = { ...rest, seq: head.seq + 1, prevHash: head.hash };
  const text = canonicalJson(content);
  const hash = (key === undefined ? createHash('sha256') : createHmac('sha256', key)).update(text).digest('hex');
  return { line: `${text.slice(0, -1)},"hash":"${hash}"}\n`, head: { seq: content.seq, hash } };
}

const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** A parsed line that has the chain's three fields; undefined when it is not one. */
export function asChained(value: unknown): ChainedRecord | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (!Number.isSafeInteger(v['seq']) || (v['seq'] as number) < 1) return undefined;
  if (typeof v['prevHash'] !== 'string' || !HASH_PATTERN.test(v['prevHash'])) return undefined;
  if (typeof v['hash'] !== 'string' || !HASH_PATTERN.test(v['hash'])) return undefined;
  return v as unknown as ChainedRecord;
}

/** Whether a chained line's content matches its `hash`. */
export function hashMatches(record: ChainedRecord, key?: Buffer): boolean {
  const { hash, ...content } = record;
  return chainHash(content, key) === hash;
}

export type ChainProblem = 'torn' | 'unreadable' | 'edited' | 'removed' | 'reordered' | 'inserted' | 'duplicated';

export type VerifyResult =
  | { readonly ok: true; readonly records: number; readonly head: ChainHead }
  | { readonly ok: false; readonly line: number; readonly problem: ChainProblem; readonly message: string; readonly records: number };

/** How many recent lines are remembered to recognise lines slipped in between a record and its successor. */
const RECENT_LINES = 4096;

interface Seen { readonly line: number; readonly seq: number }

/** How long a last line without its newline is given to be finished (the file may be written to right now). */
const SETTLE_MS = 500;

/** Whether `file` grows past `size` within `ms`. */
async function grows(file: string, size: number, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; ;) {
    if ((await stat(file)).size > size) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}

/**
 * Reads `file` line by line and checks every link. `records` counts the lines that verified (before the first bad
 * one). With `key`, hashes are HMAC-SHA-256 under it (what a sink with `hmacKey` writes). The file may be live: a
 * last line without its newline is waited for (`settleMs`) before it is called torn.
 */
export async function verifyChain(file: string, key?: Buffer, settleMs = SETTLE_MS): Promise<VerifyResult> {
  let previous: ChainHead & { line: number } = { ...EMPTY_CHAIN, line: 0 };
  const recent = new Map<string, Seen>([[GENESIS_HASH, { line: 0, seq: 0 }]]);
  let records = 0;
  const fail = (line: number, problem: ChainProblem, message: string): VerifyResult => ({ ok: false, line, problem, message, records });
  let start = 0;
  let firstNumber = 1;
  reading: for (;;) {
    for await (const { number, text, terminated, offset, end } of readLines(file, start, firstNumber)) {
      if (!terminated) {
        if (await grows(file, end, settleMs)) {
          // Being written: read on from this line once more of it is there.
          start = offset;
          firstNumber = number;
          continue reading;
        }
        return fail(number, 'torn', 'the last line is incomplete (no newline): tollgate stopped in the middle of writing it, e.g. a crash; the next start of the file sink sets it aside and records that it did');
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return fail(number, 'unreadable', text === '' ? 'an empty line, not a record' : 'not JSON');
      }
      const record = asChained(parsed);
      if (record === undefined) return fail(number, 'unreadable', 'not a chained audit record (expected `seq`, `prevHash` and `hash`)');
      if (!hashMatches(record, key)) {
        return fail(number, 'edited', `its content does not match its hash (seq ${record.seq})${key === undefined ? '' : ', or it was not written with this key'}`);
      }
      if (record.prevHash !== previous.hash || record.seq !== previous.seq + 1) {
        return classify(file, number, end, record, previous, recent, fail);
      }
      previous = { seq: record.seq, hash: record.hash, line: number };
      records++;
      recent.set(record.hash, { line: number, seq: record.seq });
      if (recent.size > RECENT_LINES) recent.delete(recent.keys().next().value!);
    }
    return { ok: true, records, head: { seq: previous.seq, hash: previous.hash } };
  }
}

/** Why line `number` does not follow `previous` (the last line that verified). */
async function classify(
  file: string, number: number, next: number, record: ChainedRecord, previous: ChainHead & { line: number },
  recent: ReadonlyMap<string, Seen>, fail: (line: number, problem: ChainProblem, message: string) => VerifyResult,
): Promise<VerifyResult> {
  const duplicate = recent.get(record.hash);
  if (duplicate !== undefined) return fail(number, 'duplicated', `a copy of line ${duplicate.line} (seq ${duplicate.seq})`);
  const linked = recent.get(record.prevHash);
  if (linked !== undefined && record.seq === linked.seq + 1 && linked.line < previous.line) {
    // This record follows an earlier line directly: the lines between were never part of the chain.
    const first = linked.line + 1;
    const span = first === previous.line ? `line ${first} is` : `lines ${first}-${previous.line} are`;
    return fail(first, 'inserted', `${span} not part of the chain: line ${number} (seq ${record.seq}) follows line ${linked.line} directly`);
  }
  const expected = previous.seq + 1;
  if (record.seq === expected) {
    // The seq is right, the link is not. Either this line was slipped in (the next one links past it), or the line
    // before was changed and its hash recomputed (this line still holds its original hash).
    const after = await lineAt(file, next, number + 1);
    if (after !== undefined && after.prevHash === previous.hash) {
      return fail(number, 'inserted', `line ${number} is not part of the chain: line ${number + 1} (seq ${after.seq}) follows line ${previous.line} directly`);
    }
    return previous.line === 0
      ? fail(number, 'edited', `the first record must link to the genesis hash (64 zeros); its prevHash is ${record.prevHash}`)
      : fail(previous.line, 'edited', `its hash is not the prevHash line ${number} holds: the record was changed and its hash recomputed`);
  }
  if (record.seq > expected) {
    const later = await findSeq(file, next, number + 1, expected);
    if (later !== undefined) return fail(number, 'reordered', `seq ${record.seq} comes before seq ${expected}, which is at line ${later}`);
    const missing = record.seq - expected;
    return fail(number, 'removed', `${missing} record${missing === 1 ? '' : 's'} missing before this line: expected seq ${expected}, found ${record.seq}`);
  }
  return fail(number, 'reordered', `seq ${record.seq} comes after seq ${previous.seq} (line ${previous.line})`);
}

/** The chained record on the line starting at byte `start`, if it is one. */
async function lineAt(file: string, start: number, number: number): Promise<ChainedRecord | undefined> {
  for await (const { text } of readLines(file, start, number)) {
    try {
      return asChained(JSON.parse(text));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The number of the first line from byte `start` on whose seq is `seq`. */
async function findSeq(file: string, start: number, firstNumber: number, seq: number): Promise<number | undefined> {
  for await (const { number, text } of readLines(file, start, firstNumber)) {
    try {
      if (asChained(JSON.parse(text))?.seq === seq) return number;
    } catch { /* an unreadable line cannot be the one looked for */ }
  }
  return undefined;
}
