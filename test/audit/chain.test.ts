import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { canonicalJson } from '../../src/audit/canonical.ts';
import { chainHash, chainRecord, EMPTY_CHAIN, GENESIS_HASH, verifyChain, type ChainHead } from '../../src/audit/chain.ts';
import { readLastLine } from '../../src/audit/lines.ts';
import type { AuditRecord } from '../../src/audit/record.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-chain-'));
let fileCount = 0;

const record = (i: number): AuditRecord => ({
  id: `test-${i}`, time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), path: 'http', event: 'http.authz.allow',
  session: `req-${i}`, principal: { subject: 'alice', groups: ['analysts'], issuer: 'https://idp.test', authenticatedBy: 'oidc' },
  rule: 'api-open', details: { method: 'GET', path: `/api/${i}`, note: 'ünïcödé ✓' },
});

/** A chained file of `count` records; returns its path and lines (each with its newline). */
function chainFile(count: number, key?: Buffer): { file: string; lines: string[] } {
  let head: ChainHead = EMPTY_CHAIN;
  const lines: string[] = [];
  for (let i = 1; i <= count; i++) {
    const next = chainRecord(record(i), head, key);
    lines.push(next.line);
    head = next.head;
  }
  const file = path.join(dir, `audit-${++fileCount}.jsonl`);
  fs.writeFileSync(file, lines.join(''));
  return { file, lines };
}

const rewrite = (file: string, lines: readonly string[]) => fs.writeFileSync(file, lines.join(''));

type Broken = Extract<Awaited<ReturnType<typeof verifyChain>>, { ok: false }>;

/** Verifies `file`, which must fail: the failure, for the test to say what it must name. */
async function broken(file: string, key?: Buffer): Promise<Broken> {
  const result = await verifyChain(file, key);
  assert.equal(result.ok, false, `expected the chain of ${file} to be broken`);
  return result as Broken;
}

test('canonical JSON sorts keys at every depth and is a fixed point of parse and serialize', () => {
  const value = { b: 1, a: [{ z: null, y: 'x\u2028"' }, undefined, 1e21], c: { e: -0, d: undefined }, when: new Date(0) };
  const text = canonicalJson(value);
  assert.equal(text, '{"a":[{"y":"x\u2028\\"","z":null},null,1e+21],"b":1,"c":{"e":0},"when":"1970-01-01T00:00:00.000Z"}');
  assert.equal(canonicalJson(JSON.parse(text)), text);
});

test('an intact chain verifies: count and head', async () => {
  const { file, lines } = chainFile(5);
  const result = await verifyChain(file);
  assert.equal(result.ok, true);
  if (!result.ok) return;
  assert.equal(result.records, 5);
  assert.equal(result.head.seq, 5);
  assert.equal(result.head.hash, JSON.parse(lines[4]!).hash);
  const first = JSON.parse(lines[0]!);
  assert.equal(first.prevHash, GENESIS_HASH, 'the first record links to the genesis hash');
  assert.equal(JSON.parse(lines[1]!).prevHash, first.hash, 'each record links to the one before');
  const { hash, ...content } = first;
  assert.equal(lines[0], `${canonicalJson(content).slice(0, -1)},"hash":"${hash}"}\n`, 'a line is the canonical form of its content, and its hash last');
});

test('an empty file is an intact chain of no records', async () => {
  const file = path.join(dir, 'empty.jsonl');
  fs.writeFileSync(file, '');
  assert.deepEqual(await verifyChain(file), { ok: true, records: 0, head: EMPTY_CHAIN });
});

test('an edited record is named by its line: its content no longer matches its hash', async () => {
  const { file, lines } = chainFile(5);
  lines[2] = lines[2]!.replace('"rule":"api-open"', '"rule":"something-else"');
  rewrite(file, lines);
  const result = await broken(file);
  assert.equal(result.line, 3);
  assert.equal(result.problem, 'edited');
  assert.equal(result.records, 2, 'the two lines before it verified');
});

test('an edited record whose hash was recomputed is named by its line: the next one still links to the old hash', async () => {
  const { file, lines } = chainFile(5);
  const edited = JSON.parse(lines[2]!);
  edited.rule = 'forged';
  delete edited.hash;
  lines[2] = `${canonicalJson({ ...edited, hash: chainHash(edited) })}\n`;
  rewrite(file, lines);
  const result = await broken(file);
  assert.deepEqual([result.line, result.problem], [3, 'edited']);
  assert.match(result.message, /hash recomputed/);
});

test('a removed record: the line after the gap is named, with how many are missing', async () => {
  const { file, lines } = chainFile(6);
  lines.splice(2, 2);
  rewrite(file, lines);
  const result = await broken(file);
  assert.deepEqual([result.line, result.problem], [3, 'removed']);
  assert.match(result.message, /2 records missing before this line: expected seq 3, found 5/);
});

test('a removed first record is a removal too', async () => {
  const { file, lines } = chainFile(3);
  rewrite(file, lines.slice(1));
  const result = await broken(file);
  assert.deepEqual([result.line, result.problem], [1, 'removed']);
});

test('reordered records: the first line out of place is named, and where the expected one is', async () => {
  const { file, lines } = chainFile(5);
  [lines[1], lines[3]] = [lines[3]!, lines[1]!];
  rewrite(file, lines);
  const result = await broken(file);
  assert.deepEqual([result.line, result.problem], [2, 'reordered']);
  assert.match(result.message, /seq 4 comes before seq 2, which is at line 4/);
});

test('a record moved back: named where it comes after a later one', async () => {
  const { file, lines } = chainFile(5);
  const [moved] = lines.splice(1, 1);
  lines.push(moved!);
  rewrite(file, lines);
  const result = await broken(file);
  assert.deepEqual([result.line, result.problem], [2, 'reordered']);
});

test('an inserted record with a valid hash and link is named: the next record links past it', async () => {
  const { file, lines } = chainFile(5);
  const before = JSON.parse(lines[1]!) as { seq: number; hash: string };
  const forged = chainRecord({ ...record(99), rule: 'forged' }, { seq: before.seq, hash: before.hash });
  lines.splice(2, 0, forged.line);
  rewrite(file, lines);
  const result = await broken(file);
  assert.deepEqual([result.line, result.problem], [3, 'inserted']);
  assert.match(result.message, /line 3 is not part of the chain: line 4 \(seq 3\) follows line 2 directly/);
});

test('an inserted record with a made-up link is named, not the honest record before it', async () => {
  const { file, lines } = chainFile(5);
  const forged = chainRecord(record(99), { seq: 2, hash: 'f'.repeat(64) });
  lines.splice(2, 0, forged.line);
  rewrite(file, lines);
  const result = await broken(file);
  assert.deepEqual([result.line, result.problem], [3, 'inserted']);
});

test('a record inserted before the first one is named', async () => {
  const { file, lines } = chainFile(3);
  lines.unshift(chainRecord(record(0), EMPTY_CHAIN).line);
  rewrite(file, lines);
  const result = await broken(file);
  assert.deepEqual([result.line, result.problem], [1, 'inserted']);
});

test('a duplicated record is named as a copy of the earlier line', async () => {
  const { file, lines } = chainFile(4);
  lines.splice(2, 0, lines[1]!);
  rewrite(file, lines);
  const result = await broken(file);
  assert.deepEqual([result.line, result.problem], [3, 'duplicated']);
  assert.match(result.message, /copy of line 2/);
});

test('a torn last line (a crash mid-write) is named as torn, after the records before it verified', async () => {
  const { file, lines } = chainFile(3);
  fs.writeFileSync(file, lines.join('') + lines[0]!.slice(0, 40));
  const result = await broken(file);
  assert.deepEqual([result.line, result.problem, result.records], [4, 'torn', 3]);
});

test('a live file: a last line still being written is waited for, not called torn', async () => {
  const { file, lines } = chainFile(3);
  const last = lines.pop()!;
  fs.writeFileSync(file, lines.join('') + last.slice(0, 30));
  setTimeout(() => fs.appendFileSync(file, last.slice(30)), 100);
  const result = await verifyChain(file);
  assert.deepEqual(result.ok && result.records, 3);
});

test('a line that is not a chained record is unreadable', async () => {
  const { file, lines } = chainFile(3);
  lines[1] = '{"time":"2026-01-01T00:00:00Z","event":"x"}\n';
  rewrite(file, lines);
  const result = await broken(file);
  assert.deepEqual([result.line, result.problem], [2, 'unreadable']);
});

test('with a key: verifies under the key, fails without it, and a rewrite with fresh plain hashes is caught', async () => {
  const key = Buffer.from('an audit key that only the writer and the auditor know');
  const { file, lines } = chainFile(3, key);
  assert.equal((await verifyChain(file, key)).ok, true);
  const withoutKey = await verifyChain(file);
  assert.equal(withoutKey.ok, false);
  // Someone without the key rewrites record 2 and every hash after it: valid as a plain chain, not under the key.
  let head: ChainHead = { seq: 1, hash: JSON.parse(lines[0]!).hash };
  const forged = [lines[0]!];
  for (const i of [2, 3]) {
    const next = chainRecord({ ...record(i), rule: 'forged' }, head);
    forged.push(next.line);
    head = next.head;
  }
  rewrite(file, forged);
  const result = await broken(file, key);
  assert.deepEqual([result.line, result.problem], [2, 'edited']);
});

test('readLastLine finds the last complete line and the torn bytes after it, across chunk boundaries', () => {
  const file = path.join(dir, 'last.jsonl');
  const long = 'x'.repeat(600 * 1024);
  for (const [content, text, torn] of [
    ['', undefined, ''],
    ['partial', undefined, 'partial'],
    ['a\n', 'a', ''],
    ['a\nb\n', 'b', ''],
    ['a\nb\ncut', 'b', 'cut'],
    [`a\n${long}\n`, long, ''],
    [`${long}\n${long.slice(1)}`, long, long.slice(1)],
    ['\n', '', ''],
  ] as const) {
    fs.writeFileSync(file, content);
    const fd = fs.openSync(file, 'r');
    try {
      const last = readLastLine(fd);
      assert.equal(last.text, text, `last line of ${JSON.stringify(content.slice(0, 12))}…`);
      assert.equal(last.torn.toString(), torn);
      assert.equal(last.end, Buffer.byteLength(content) - Buffer.byteLength(torn));
    } finally {
      fs.closeSync(fd);
    }
  }
});

test('canonical JSON: objects whose keys would join alike are told apart', () => {
  assert.equal(canonicalJson({ 'a\u0000': 1, b: 2 }), '{"a\\u0000":1,"b":2}');
  assert.equal(canonicalJson({ a: 1, '\u0000b': 2 }), '{"\\u0000b":2,"a":1}');
  assert.equal(canonicalJson({ 'a\u0000b': 1 }), '{"a\\u0000b":1}');
  assert.equal(canonicalJson({ a: 1, b: 2 }), '{"a":1,"b":2}');
});
