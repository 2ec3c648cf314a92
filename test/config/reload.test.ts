/**
 * Config reload on file change, with the real file system: an editor's write-and-rename and a Kubernetes ConfigMap
 * update (the `..data` symlink swap the kubelet does) are both seen; a burst of events is one reload; content equal to
 * the config in force is no reload; a config that fails to load or to apply is refused and counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfigFileWithHash } from '../../src/config/load.ts';
import { startConfigReloader, type ConfigReloader } from '../../src/config/reload.ts';
import type { Config } from '../../src/config/schema.ts';

const rules = (name: string) => `rules:\n  - { name: ${name}, effect: allow }\n`;

function harness(file: string, initialHash: string, apply: (c: Config) => void = () => {}) {
  let hash = initialHash;
  const applied: string[] = [];
  const results: string[] = [];
  const errors: string[] = [];
  const reloader: ConfigReloader = startConfigReloader({
    file,
    load: loadConfigFileWithHash,
    apply: (config, h) => { apply(config); hash = h; applied.push(config.rules[0]?.name ?? ''); },
    currentHash: () => hash,
    logger: { info: () => {}, warn: () => {}, error: (obj) => { errors.push(String((obj as { err: string }).err)); } },
    onResult: (r) => results.push(r),
    debounceMs: 50,
  });
  return { reloader, applied, results, errors };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const settle = () => new Promise((r) => setTimeout(r, 400));

test('an editor\'s save (write beside, rename over) is one reload; saving the same content again is none', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-watch-'));
  const file = path.join(dir, 'tollgate.yaml');
  fs.writeFileSync(file, rules('first'));
  const h = harness(file, loadConfigFileWithHash(file).hash);
  try {
    fs.writeFileSync(`${file}.tmp`, rules('second'));
    fs.renameSync(`${file}.tmp`, file);
    await until('the reload', () => h.applied.length === 1);
    await settle();
    assert.deepEqual(h.applied, ['second']);
    fs.writeFileSync(file, rules('second'));
    await settle();
    assert.deepEqual(h.results, ['success'], 'unchanged content is not reloaded');
  } finally {
    h.reloader.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a ConfigMap update (kubelet swaps the ..data symlink) is seen through the file\'s own symlink', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-configmap-'));
  const version = (n: number, text: string) => {
    fs.mkdirSync(path.join(dir, `..2026_${n}`));
    fs.writeFileSync(path.join(dir, `..2026_${n}`, 'tollgate.yaml'), text);
    fs.symlinkSync(`..2026_${n}`, path.join(dir, '..data_tmp'));
    fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  };
  version(1, rules('v1'));
  const file = path.join(dir, 'tollgate.yaml');
  fs.symlinkSync('..data/tollgate.yaml', file);
  const h = harness(file, loadConfigFileWithHash(file).hash);
  try {
    version(2, rules('v2'));
    await until('the reload', () => h.applied.length === 1);
    assert.deepEqual(h.applied, ['v2']);
  } finally {
    h.reloader.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a file that does not validate, and a config that cannot be applied, are refused with the reason; the next good one loads', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-watch-'));
  const file = path.join(dir, 'tollgate.yaml');
  fs.writeFileSync(file, rules('first'));
  const h = harness(file, loadConfigFileWithHash(file).hash, (c) => {
    if (c.rules[0]?.name === 'unapplicable') throw new Error('upstream credential "x": cannot read secret file /nowhere: ENOENT');
  });
  try {
    fs.writeFileSync(file, 'rules:\n  - { name: Bad Name, effect: allow }\n');
    await until('the refusal', () => h.results.length === 1);
    assert.deepEqual(h.results, ['failure']);
    assert.match(h.errors[0]!, new RegExp(`${file.replace(/[.]/g, '\\.')}:2:\\d+: rules\\[0\\]\\.name: expected a lower-case name`));
    fs.writeFileSync(file, rules('unapplicable'));
    await until('the second refusal', () => h.results.length === 2);
    assert.match(h.errors[1]!, /cannot read secret file/);
    fs.writeFileSync(file, rules('good'));
    await until('the reload', () => h.results.length === 3);
    assert.deepEqual(h.results, ['failure', 'failure', 'success']);
    assert.deepEqual(h.applied, ['good']);
    assert.equal(h.reloader.reload('SIGHUP'), 'success', 'SIGHUP reloads even an unchanged file');
  } finally {
    h.reloader.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
