/**
 * @module scripts/lib/debian
 * Debian packages unpacked into a folder instead of installed: what provisioning does for components that only
 * Debian's repositories offer (PostgreSQL, Chromium). Nothing is installed and no maintainer script runs, so it works
 * the same for root in CI and for a developer without sudo (given apt's package lists).
 *
 * The packages asked for are downloaded with whichever of their dependencies this machine lacks: apt itself works
 * that set out (`apt-get --simulate install`, which needs no root), so a fresh machine gets every library and a
 * machine that has them gets only the packages asked for. Dependencies the machine has at another version are not
 * upgraded (an unpacked libc beside the system's loader would break everything): if one is too old, the binary's
 * version check fails and says so. Unpacked libraries are found through LD_LIBRARY_PATH (`libraryEnv`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatCommand, outputTail, runChecked, runCommand, type CommandResult } from './process.ts';

export interface DebianPackage {
  readonly name: string;
  readonly version: string;
}

export interface UnpackedPackages {
  /** Every package unpacked, with its version. */
  readonly packages: readonly DebianPackage[];
  /** Folders under the root holding shared libraries, relative to it (for LD_LIBRARY_PATH). */
  readonly libraryDirs: readonly string[];
}

/** apt's words for "this package is not in the lists you have" (lists never fetched, or too old). */
const APT_LISTS_LACK_PACKAGE = /Unable to locate package|has no installation candidate|Unable to fetch some archives|404\s+Not Found/;
const APT_TIMEOUT_MS = 600_000;

/**
 * Runs apt-get; when its package lists lack a package, refreshes them once (as root; otherwise the error says what to
 * run) and tries again.
 */
async function aptGet(step: string, args: readonly string[], cwd: string, log: (line: string) => void): Promise<CommandResult> {
  const run = () => runCommand('apt-get', args, { cwd, timeoutMs: APT_TIMEOUT_MS }).catch((err: unknown) => {
    throw new Error(`${step} failed: ${(err as Error).message} (these come from Debian's package repositories)`, { cause: err });
  });
  let result = await run();
  if (result.code !== 0 && APT_LISTS_LACK_PACKAGE.test(`${result.stdout}${result.stderr}`)) {
    if (process.getuid?.() !== 0) {
      throw new Error(`${step} failed: apt's package lists do not offer what is needed; run \`sudo apt-get update\` and provision again\n${outputTail(result)}`);
    }
    log(`${step}: apt's package lists lack a package; running apt-get update`);
    await runChecked('apt-get update', 'apt-get', ['update'], { timeoutMs: APT_TIMEOUT_MS });
    result = await run();
  }
  if (result.code !== 0) throw new Error(`${step} failed: \`${formatCommand('apt-get', args)}\` exited with code ${result.code}\n${outputTail(result)}`);
  return result;
}

/**
 * The packages apt would newly install for `packages` (those asked for that are missing, and their missing
 * dependencies), from a simulated install. Lines read `Inst name (version …)`; an upgrade reads
 * `Inst name [installed] (version …)` and is left out (see the module comment).
 */
export function newInstalls(simulation: string): string[] {
  const names: string[] = [];
  for (const line of simulation.split('\n')) {
    const match = /^Inst (\S+) (?!\[)\(/.exec(line);
    if (match !== null) names.push(match[1]!);
  }
  return names;
}

/** Folders (relative to `root`) holding a shared library, outside `skip` (an application's private folder). */
function libraryDirsOf(root: string, skip: readonly string[]): string[] {
  const found = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      const relative = path.relative(root, file);
      if (entry.isDirectory()) {
        if (!skip.some((s) => relative === s || relative.startsWith(`${s}${path.sep}`))) walk(file);
      } else if (/\.so(\.\d+)*$/.test(entry.name)) {
        found.add(path.relative(root, dir));
      }
    }
  };
  walk(root);
  return [...found].sort();
}

export interface UnpackOptions {
  /** Short name for progress lines and errors: `postgresql 15`. */
  readonly label: string;
  /** Packages downloaded even when this machine has them (the component itself). */
  readonly packages: readonly string[];
  /** Where the packages are unpacked (the root of their /usr, /etc, …); created. */
  readonly root: string;
  /** Scratch folder for the .deb files; emptied and removed afterwards. */
  readonly downloadDir: string;
  /** Folders (relative to the root) whose libraries the application finds by itself (its RUNPATH `$ORIGIN`). */
  readonly privateLibraryDirs?: readonly string[];
  readonly log: (line: string) => void;
}

/** Downloads `packages` and the dependencies this machine lacks, and unpacks them all into `root`. */
export async function unpackDebianPackages(options: UnpackOptions): Promise<UnpackedPackages> {
  const { label, log } = options;
  await fs.promises.mkdir(options.downloadDir, { recursive: true });
  await fs.promises.mkdir(options.root, { recursive: true });
  // Not a real install: apt only works out what one would need (no root needed, nothing changes).
  const simulation = await aptGet(`${label}: work out the missing dependencies`, ['--simulate', '--no-install-recommends', 'install', ...options.packages], options.downloadDir, log);
  const wanted = [...new Set([...options.packages, ...newInstalls(simulation.stdout)])];
  log(`${label}: downloading ${wanted.length} Debian packages (apt-get download; nothing is installed): ${wanted.join(' ')}`);
  // _apt cannot write into a root-owned private folder; let it, so apt does not warn about an unsandboxed download.
  await fs.promises.chmod(options.downloadDir, 0o777);
  await aptGet(`${label}: download`, ['download', ...wanted], options.downloadDir, log);
  const debs = (await fs.promises.readdir(options.downloadDir)).filter((name) => name.endsWith('.deb')).sort();
  if (debs.length !== wanted.length) {
    throw new Error(`${label}: download failed: expected ${wanted.length} .deb files in ${options.downloadDir}, found ${debs.length}: ${debs.join(' ')}`);
  }
  const packages: DebianPackage[] = [];
  for (const deb of debs) {
    const file = path.join(options.downloadDir, deb);
    const [name, version] = (await runChecked(`read ${deb}`, 'dpkg-deb', ['--show', '--showformat=${Package}\\t${Version}', file])).stdout.split('\t');
    packages.push({ name: name!, version: version!.trim() });
    await runChecked(`unpack ${deb}`, 'dpkg-deb', ['--extract', file, options.root]);
  }
  await fs.promises.rm(options.downloadDir, { recursive: true, force: true });
  return { packages, libraryDirs: libraryDirsOf(options.root, options.privateLibraryDirs ?? []) };
}

/** `env` with `dirs` put first on LD_LIBRARY_PATH. */
export function libraryEnv(dirs: readonly string[], env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (dirs.length === 0) return { ...env };
  const current = env['LD_LIBRARY_PATH'];
  return { ...env, LD_LIBRARY_PATH: [...dirs, ...(current === undefined || current === '' ? [] : [current])].join(path.delimiter) };
}

/**
 * Where a provisioned component's program and libraries are, as provisioning wrote it into `layout.json` in the
 * component's folder (paths there are relative to that folder unless absolute: an installed server is used as is).
 */
export interface ComponentLayout {
  /** `unpacked` (from Debian packages, into the cache) or `installed` (the machine's own, same version). */
  readonly source: 'unpacked' | 'installed';
  /** The full version (`15.20-0+deb12u1`, `156.0.8078.79-1~deb12u1`). */
  readonly version: string;
  /** The program folder or executable, absolute. */
  readonly program: string;
  /** Absolute folders for LD_LIBRARY_PATH. */
  readonly libraryDirs: readonly string[];
}

export const LAYOUT_FILE = 'layout.json';

export function writeLayout(componentDir: string, layout: { source: ComponentLayout['source']; version: string; program: string; libraryDirs: readonly string[] }): void {
  fs.writeFileSync(path.join(componentDir, LAYOUT_FILE), `${JSON.stringify(layout, null, 2)}\n`);
}

/** Reads the layout of the component provisioned at `finalDir` (after it was renamed into place). */
export function readLayout(finalDir: string, fix: string): ComponentLayout {
  let raw: { source?: string; version?: string; program?: string; libraryDirs?: string[] };
  try {
    raw = JSON.parse(fs.readFileSync(path.join(finalDir, LAYOUT_FILE), 'utf8')) as typeof raw;
  } catch (err) {
    throw new Error(`${path.join(finalDir, LAYOUT_FILE)} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): ${fix}`);
  }
  if ((raw.source !== 'unpacked' && raw.source !== 'installed') || typeof raw.version !== 'string' || typeof raw.program !== 'string' || !Array.isArray(raw.libraryDirs)) {
    throw new Error(`${path.join(finalDir, LAYOUT_FILE)} is not a layout provisioning wrote: ${fix}`);
  }
  const resolve = (p: string) => path.resolve(finalDir, p);
  return { source: raw.source, version: raw.version, program: resolve(raw.program), libraryDirs: raw.libraryDirs.map(resolve) };
}
