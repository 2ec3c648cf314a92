/**
 * @module scripts/lib/envoy
 * The real Envoy for tests and the quickstart: fill in a bootstrap template, validate it, run it.
 *
 * Needs the binary from `node scripts/provision.ts envoy`.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ENVOY_BINARY, ENVOY_VERSION, RUN_DIR } from './paths.ts';
import { LOOPBACK } from './ports.ts';
import { outputTail, runCommand, spawnManaged } from './process.ts';
import type { ManagedProcess } from './process.ts';

/** Throws with the fix if the binary is not there. */
export function assertEnvoyProvisioned(): void {
  if (!fs.existsSync(ENVOY_BINARY)) {
    throw new Error(`Envoy ${ENVOY_VERSION} not found at ${ENVOY_BINARY}: run node scripts/provision.ts envoy`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------------------------

const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/**
 * Replace every `${NAME}` in `text` with `values[NAME]`. Strict on purpose: a placeholder without a value, or a `${`
 * that is not a well-formed placeholder, throws naming it and its line, because a half-filled Envoy config tends
 * to fail far from the cause (or worse, to validate and then listen on the wrong port). Values that are not used
 * are fine: one set of values can serve several templates.
 */
export function renderTemplate(text: string, values: Readonly<Record<string, string | number>>): string {
  const rendered = text.replace(PLACEHOLDER, (placeholder: string, name: string, offset: number) => {
    const value = Object.hasOwn(values, name) ? values[name] : undefined;
    if (value === undefined || value === null) {
      throw new Error(`renderTemplate: no value for placeholder ${placeholder} (line ${lineOf(text, offset)}); values given: ${Object.keys(values).join(', ') || 'none'}`);
    }
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new Error(`renderTemplate: value for ${placeholder} (line ${lineOf(text, offset)}) is ${value}; expected a finite number or a string`);
    }
    return String(value);
  });
  // Anything left that starts like a placeholder is a typo (`${ PORT}`, `${PORT` ...).
  const leftover = /\$\{[^}\n]{0,40}\}?/.exec(text.replace(PLACEHOLDER, ''));
  if (leftover !== null) {
    throw new Error(`renderTemplate: malformed placeholder ${JSON.stringify(leftover[0])}; expected \${NAME} with NAME of letters, digits and '_'`);
  }
  return rendered;
}

// ---------------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------------

/**
 * Check a bootstrap with `envoy --mode validate`, which parses and instantiates the whole config without binding
 * anything. Resolves with Envoy's output (warnings included); throws with that output when Envoy rejects it.
 * Note what validation cannot see: clusters named by a tcp_proxy are looked up at connection time, not here.
 */
export async function validateEnvoyConfig(yamlText: string, options: { timeoutMs?: number } = {}): Promise<string> {
  assertEnvoyProvisioned();
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'tollgate-envoy-validate-'));
  // Envoy picks the parser from the extension.
  const file = path.join(dir, 'bootstrap.yaml');
  try {
    await fs.promises.writeFile(file, yamlText);
    const result = await runCommand(ENVOY_BINARY, ['--mode', 'validate', '-c', file, '--log-level', 'warn', '--disable-hot-restart'], {
      timeoutMs: options.timeoutMs ?? 60_000,
    });
    const output = `${result.stdout}${result.stderr}`.trim();
    if (result.code !== 0) {
      throw new Error(`envoy rejected the config (envoy --mode validate exited with code ${result.code}):\n${outputTail(result, 40)}`);
    }
    return output;
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------------------------

export type EnvoyLogLevel = 'trace' | 'debug' | 'info' | 'warning' | 'warn' | 'error' | 'critical' | 'off';

export interface StartEnvoyOptions {
  /** The bootstrap, already rendered. Its `admin` listener must be on 127.0.0.1:`adminPort`. */
  readonly configYaml: string;
  readonly adminPort: number;
  /** Default `info`. */
  readonly logLevel?: EnvoyLogLevel;
  /** Folder for the config file and log. Default: a new folder under RUN_DIR. */
  readonly workDir?: string;
  /** Appended to Envoy's command line, e.g. `['--component-log-level', 'ext_proc:debug']`. */
  readonly extraArgs?: readonly string[];
  /** How long to wait for `/ready` to say LIVE. Default 30 s. */
  readonly readyTimeoutMs?: number;
}

export interface EnvoyProcess {
  readonly adminPort: number;
  /** `http://127.0.0.1:<adminPort>` */
  readonly adminUrl: string;
  readonly pid: number;
  readonly configFile: string;
  readonly logFile: string;
  /** SIGTERM, then SIGKILL after 5 s; resolves when Envoy has exited. Idempotent. */
  stop(): Promise<void>;
}

/** The admin port named in the bootstrap, so a mismatch fails at once instead of as a readiness timeout. */
function configuredAdminPort(configYaml: string): unknown {
  let doc: unknown;
  try {
    doc = YAML.parse(configYaml);
  } catch (err) {
    throw new Error(`startEnvoy: configYaml is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  const admin = (doc as { admin?: { address?: { socket_address?: { port_value?: unknown } } } } | null)?.admin;
  return admin?.address?.socket_address?.port_value;
}

/** Start Envoy and wait until its admin `/ready` answers LIVE. On failure the error quotes the end of its log. */
export async function startEnvoy(options: StartEnvoyOptions): Promise<EnvoyProcess> {
  assertEnvoyProvisioned();
  const configured = configuredAdminPort(options.configYaml);
  if (configured !== options.adminPort) {
    throw new Error(`startEnvoy: adminPort is ${options.adminPort} but the config's admin.address.socket_address.port_value is ${JSON.stringify(configured)}; they must match (readiness is read from the admin listener)`);
  }
  let workDir: string;
  if (options.workDir === undefined) {
    await fs.promises.mkdir(RUN_DIR, { recursive: true });
    workDir = await fs.promises.mkdtemp(path.join(RUN_DIR, 'envoy-'));
  } else {
    workDir = path.resolve(options.workDir);
    await fs.promises.mkdir(workDir, { recursive: true });
  }
  const configFile = path.join(workDir, 'envoy.yaml');
  const logFile = path.join(workDir, 'envoy.log');
  await fs.promises.writeFile(configFile, options.configYaml);

  const envoy = await spawnManaged({
    name: 'envoy',
    command: ENVOY_BINARY,
    args: [
      '-c', configFile,
      '--log-level', options.logLevel ?? 'info',
      // One worker thread is plenty for tests and keeps the 2-core machine free for everything else.
      '--concurrency', '1',
      // No shared memory or domain socket for hot restart, which is what base ids keep apart; a dynamic base id on
      // top costs nothing and rules out a collision with any other Envoy on the machine.
      '--disable-hot-restart',
      '--use-dynamic-base-id',
      ...(options.extraArgs ?? []),
    ],
    logFile,
    cwd: workDir,
  });

  try {
    await waitUntilReady(envoy, options.adminPort, options.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await envoy.stop(0);
    throw err;
  }
  return {
    adminPort: options.adminPort,
    adminUrl: `http://${LOOPBACK}:${options.adminPort}`,
    pid: envoy.pid,
    configFile,
    logFile,
    stop: async () => {
      await envoy.stop(5_000);
    },
  };
}

const READY_POLL_MS = 100;

async function waitUntilReady(envoy: ManagedProcess, adminPort: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    const exit = envoy.exitInfo;
    if (exit !== undefined) {
      throw envoy.failure(`envoy (pid ${envoy.pid}) exited with ${exit.signal ?? `code ${exit.code}`} before its admin /ready answered LIVE`);
    }
    const answer = await getReady(adminPort);
    if (answer.status === 200 && answer.body.trim() === 'LIVE') return;
    last = answer.status === 0 ? answer.body : `HTTP ${answer.status}: ${answer.body.trim()}`;
    if (Date.now() >= deadline) {
      throw envoy.failure(`envoy (pid ${envoy.pid}) admin http://${LOOPBACK}:${adminPort}/ready did not answer LIVE within ${timeoutMs} ms (last: ${last})`);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
}

/** GET /ready once; status 0 with the error text when there is no HTTP answer (not listening yet). */
function getReady(adminPort: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    // agent: false — no keep-alive socket left behind to hold the event loop open.
    const request = http.get({ host: LOOPBACK, port: adminPort, path: '/ready', agent: false, timeout: 2_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', (err) => resolve({ status: 0, body: err.message }));
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', (err) => resolve({ status: 0, body: err.message }));
  });
}
