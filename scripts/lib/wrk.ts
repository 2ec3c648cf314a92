/**
 * @module scripts/lib/wrk
 * wrk, the HTTP load tool the benches drive, from Debian's packages without a system install: `apt-get download`
 * of `wrk` and the LuaJIT library it links (the rest it needs, libc and libssl3, is on any Debian machine), unpacked
 * with `dpkg-deb -x` into the provisioning cache and run with LD_LIBRARY_PATH pointing at the unpacked library.
 *
 * Only benches call `ensureWrk`, on demand; the test suite's provisioning (`node scripts/provision.ts`) leaves it out.
 * The folder is built and marked like Envoy's and Kafka's (scripts/provision.ts), so a warm call costs one file read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildAtomically, markerMatches, seconds } from '../provision.ts';
import type { EnsureOptions, EnsureResult, Marker } from '../provision.ts';
import { CACHE_DIR } from './paths.ts';
import { outputTail, runChecked, runCommand } from './process.ts';

/** wrk's own version, whatever Debian revision of the package carries it. */
export const WRK_VERSION = '4.1.0';
export const WRK_DIR = path.join(CACHE_DIR, 'wrk', WRK_VERSION);
export const WRK_BINARY = path.join(WRK_DIR, 'bin', 'wrk');
/** The unpacked shared libraries wrk loads (LuaJIT). */
export const WRK_LIB_DIR = path.join(WRK_DIR, 'lib');

/**
 * Debian packages to unpack, each a list of alternatives (the first Debian has wins): wrk itself, and the LuaJIT
 * library it depends on (`libluajit-5.1-2 | libluajit2-5.1-2` in wrk's Depends).
 */
const PACKAGES: readonly (readonly string[])[] = [['wrk'], ['libluajit-5.1-2', 'libluajit2-5.1-2']];

/** The environment wrk runs in: this process's, with the unpacked libraries first on LD_LIBRARY_PATH. */
export function wrkEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const existing = base['LD_LIBRARY_PATH'];
  return { ...base, LD_LIBRARY_PATH: existing ? `${WRK_LIB_DIR}:${existing}` : WRK_LIB_DIR };
}

/** `apt-get download` fails like this when the package lists do not have the package (never updated, or stale). */
const NOT_IN_LISTS = /Unable to locate package|has no installation candidate|Can't select candidate/i;

async function download(name: string, dir: string): Promise<{ ok: boolean; output: string }> {
  const result = await runCommand('apt-get', ['download', name], { cwd: dir, timeoutMs: 300_000 });
  return { ok: result.code === 0, output: outputTail(result, 10) };
}

/** Download one of `alternatives` into `dir`; runs `apt-get update` once (as root) when the lists lack them all. */
async function downloadOneOf(alternatives: readonly string[], dir: string, state: { updated: boolean }, log: (line: string) => void): Promise<string> {
  const failures: string[] = [];
  for (let attempt = 0; attempt < 2; attempt++) {
    for (const name of alternatives) {
      const { ok, output } = await download(name, dir);
      if (ok) return name;
      failures.push(`${name}: ${output}`);
    }
    const notInLists = failures.every((f) => NOT_IN_LISTS.test(f));
    if (attempt > 0 || state.updated || !notInLists || process.getuid?.() !== 0) break;
    log('wrk: the package lists lack it; running apt-get update once');
    await runChecked('apt-get update', 'apt-get', ['update'], { timeoutMs: 600_000 });
    state.updated = true;
    failures.length = 0;
  }
  throw new Error(`apt-get download ${alternatives.join(' | ')} failed (run \`apt-get update\` first if the package lists are missing):\n${failures.join('\n')}`);
}

/** Every file below `dir` whose name satisfies `wanted`, recursively. */
async function findFiles(dir: string, wanted: (name: string) => boolean): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await fs.promises.readdir(dir, { withFileTypes: true, recursive: true })) {
    if ((entry.isFile() || entry.isSymbolicLink()) && wanted(entry.name)) found.push(path.join(entry.parentPath, entry.name));
  }
  return found;
}

/** wrk in the cache (downloading and unpacking it first if need be). Needs `apt-get` and `dpkg-deb` (any Debian). */
export async function ensureWrk(options: EnsureOptions = {}): Promise<EnsureResult> {
  const wanted: Marker = { component: 'wrk', version: WRK_VERSION };
  if (markerMatches(WRK_DIR, wanted)) return { status: 'cached', path: WRK_BINARY };
  const log = options.log ?? ((line: string) => process.stderr.write(`provision: ${line}\n`));
  const started = Date.now();

  await buildAtomically(WRK_DIR, wanted, async (tmpDir) => {
    const debs = path.join(tmpDir, 'debs');
    const root = path.join(tmpDir, 'root');
    await fs.promises.mkdir(debs);
    await fs.promises.mkdir(root);
    const state = { updated: false };
    for (const alternatives of PACKAGES) {
      const name = await downloadOneOf(alternatives, debs, state, log);
      log(`wrk: downloaded ${name}`);
    }
    for (const deb of (await fs.promises.readdir(debs)).filter((f) => f.endsWith('.deb'))) {
      await runChecked(`unpack ${deb}`, 'dpkg-deb', ['-x', path.join(debs, deb), root]);
    }

    // A flat layout whatever the package's multiarch paths: bin/wrk, lib/libluajit-*.so*, doc/<package>/copyright.
    const [binary] = await findFiles(path.join(root, 'usr', 'bin'), (n) => n === 'wrk');
    if (binary === undefined) throw new Error(`unpack wrk failed: no usr/bin/wrk in ${root}`);
    await fs.promises.mkdir(path.join(tmpDir, 'bin'));
    await fs.promises.rename(binary, path.join(tmpDir, 'bin', 'wrk'));
    const libs = await findFiles(path.join(root, 'usr', 'lib'), (n) => n.startsWith('libluajit'));
    if (libs.length === 0) throw new Error(`unpack wrk failed: no libluajit library below ${path.join(root, 'usr', 'lib')}`);
    await fs.promises.mkdir(path.join(tmpDir, 'lib'));
    for (const lib of libs) await fs.promises.rename(lib, path.join(tmpDir, 'lib', path.basename(lib)));
    const docs = path.join(root, 'usr', 'share', 'doc');
    for (const copyright of await findFiles(docs, (n) => n === 'copyright')) {
      const target = path.join(tmpDir, 'doc', path.relative(docs, copyright));
      await fs.promises.mkdir(path.dirname(target), { recursive: true });
      await fs.promises.rename(copyright, target);
    }
    await fs.promises.rm(debs, { recursive: true, force: true });
    await fs.promises.rm(root, { recursive: true, force: true });

    // `wrk -v` prints "wrk debian/4.1.0-3+b2 [epoll] Copyright ..." (and its usage) and exits 1: read, not checked.
    const version = await runCommand(path.join(tmpDir, 'bin', 'wrk'), ['-v'], { env: { ...wrkEnv(), LD_LIBRARY_PATH: path.join(tmpDir, 'lib') }, timeoutMs: 30_000 });
    const line = `${version.stdout}${version.stderr}`.split('\n')[0]?.trim() ?? '';
    if (!new RegExp(`^wrk \\S*\\b${WRK_VERSION.replaceAll('.', '\\.')}\\b`).test(line)) {
      throw new Error(`check wrk -v failed: expected wrk ${WRK_VERSION}, got:\n${outputTail(version, 10)}`);
    }
    log(`wrk: ${line}`);
  });
  log(`wrk ${WRK_VERSION}: ready at ${WRK_BINARY} (${seconds(started)})`);
  return { status: 'provisioned', path: WRK_BINARY };
}
