/**
 * @module scripts/lib/process
 * Child processes for provisioning, tests and the quickstart.
 *
 * - `runCommand` / `runChecked`: run a command to completion, capturing its output (pip, mvn, Kafka's CLI tools).
 * - `spawnManaged`: a long-running server (Kafka, Envoy) whose stdout and stderr go to a log file, with
 *   `waitForLog` for readiness and `stop` for shutdown. Children that outlive their handle are killed when this
 *   process exits, so a crashed test never leaves a broker holding ports and memory.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/** How many trailing log lines an error quotes: enough to show a stack trace, short enough to read. */
export const ERROR_TAIL_LINES = 40;

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export function describeExit(exit: ExitInfo): string {
  return exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** A command line as a person would paste it into a shell (for error messages only; never executed). */
export function formatCommand(command: string, args: readonly string[]): string {
  const quote = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`);
  return [command, ...args].map(quote).join(' ');
}

/** The last `count` non-empty lines of `text`. */
export function tailLines(text: string, count: number): string {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  return lines.slice(-count).join('\n');
}

function spawnFailure(command: string, err: NodeJS.ErrnoException): Error {
  const hint = err.code === 'ENOENT' ? ` (is "${command}" installed and on PATH?)` : '';
  return new Error(`could not start "${command}": ${err.message}${hint}`, { cause: err });
}

// ---------------------------------------------------------------------------------------------------------------
// Run to completion
// ---------------------------------------------------------------------------------------------------------------

export interface RunCommandOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. Without it stdin is empty (closed at once). */
  readonly input?: string;
  /** Kill the child (SIGKILL) and reject after this long. Default 10 minutes. */
  readonly timeoutMs?: number;
}

export interface CommandResult extends ExitInfo {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run `command args` and collect its output. Resolves whatever the exit code (callers decide what failure means);
 * rejects only when the command cannot be started or runs past `timeoutMs`.
 */
export function runCommand(command: string, args: readonly string[], options: RunCommandOptions = {}): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: 'pipe' });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // A child that exits without reading its stdin makes our write fail with EPIPE; its exit status says more.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.once('error', (err) => {
      clearTimeout(timer);
      reject(spawnFailure(command, err));
    });
    // 'close', not 'exit': only then is all of stdout/stderr collected.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result: CommandResult = {
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      };
      if (timedOut) {
        reject(new Error(`\`${formatCommand(command, args)}\` did not finish within ${timeoutMs} ms; killed.\n${outputTail(result)}`));
      } else {
        resolve(result);
      }
    });
  });
}

/** The tail of a command's stderr and stdout, labelled, for error messages (Maven prints its errors on stdout). */
export function outputTail(result: Pick<CommandResult, 'stdout' | 'stderr'>, lines = 25): string {
  const parts: string[] = [];
  if (result.stderr.trim() !== '') parts.push(`--- stderr (last lines) ---\n${tailLines(result.stderr, lines)}`);
  if (result.stdout.trim() !== '') parts.push(`--- stdout (last lines) ---\n${tailLines(result.stdout, lines)}`);
  return parts.length > 0 ? parts.join('\n') : '(no output)';
}

/**
 * `runCommand`, but a non-zero exit rejects with an Error naming `step`, the command line, the exit status and the
 * tail of its output.
 */
export async function runChecked(step: string, command: string, args: readonly string[], options: RunCommandOptions = {}): Promise<CommandResult> {
  let result: CommandResult;
  try {
    result = await runCommand(command, args, options);
  } catch (err) {
    throw new Error(`${step} failed: ${(err as Error).message}`, { cause: err });
  }
  if (result.code !== 0) {
    throw new Error(`${step} failed: \`${formatCommand(command, args)}\` exited with ${describeExit(result)}\n${outputTail(result)}`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Long-running servers
// ---------------------------------------------------------------------------------------------------------------

export interface SpawnManagedOptions {
  /** Short name for messages: `kafka`, `envoy`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** stdout and stderr are appended here; created with its folder if missing. */
  readonly logFile: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

interface ManagedInternals {
  /** Where this run's output starts in the log file (after our header, and after earlier runs if it is reused). */
  readonly logStart: number;
}

/** How often waitForLog looks at the log file. Polling, not fs.watch: it behaves the same on every filesystem. */
const LOG_POLL_MS = 50;
/** How much of the end of a log file `logTail` reads; 40 lines of Java stack trace fit. */
const LOG_TAIL_BYTES = 64 * 1024;

/** Children still running, killed when this process goes away. */
const live = new Set<ManagedProcess>();

export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly commandLine: string;
  /** Settles when the child has exited, for whatever reason. Never rejects. */
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | undefined;
  #child: ChildProcess;
  #stopping: Promise<ExitInfo> | undefined;
  #logStart: number;

  /** Use `spawnManaged`: it waits until the OS has actually started the child. */
  constructor(child: ChildProcess, options: SpawnManagedOptions, internals: ManagedInternals) {
    if (child.pid === undefined) throw new Error(`${options.name}: child process has no pid (it failed to start)`);
    this.#child = child;
    this.#logStart = internals.logStart;
    this.name = options.name;
    this.pid = child.pid;
    this.logFile = options.logFile;
    this.commandLine = formatCommand(options.command, options.args);
    this.exited = new Promise((resolve) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        this.#exit = { code, signal };
        untrack(this);
        resolve(this.#exit);
      };
      if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
      else child.once('exit', onExit);
    });
  }

  /** Set once the child has exited. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /** The last `lines` lines of the log file, or a note saying why there are none. */
  logTail(lines = ERROR_TAIL_LINES): string {
    let fd: number | undefined;
    try {
      fd = fs.openSync(this.logFile, 'r');
      const size = fs.fstatSync(fd).size;
      const length = Math.min(size, LOG_TAIL_BYTES);
      const buffer = Buffer.alloc(length);
      fs.readSync(fd, buffer, 0, length, size - length);
      const text = tailLines(buffer.toString('utf8'), lines);
      return text === '' ? '(log is empty)' : text;
    } catch (err) {
      return `(could not read ${this.logFile}: ${(err as Error).message})`;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /** An Error whose message ends with the last lines of the log, so a failed start explains itself. */
  failure(summary: string): Error {
    return new Error(`${summary}\n--- last ${ERROR_TAIL_LINES} lines of ${this.logFile} ---\n${this.logTail()}`);
  }

  /**
   * Resolve with the first line this child logged matching `pattern`. Earlier lines count too, so calling it late is
   * fine; the header line spawnManaged writes (it quotes the command line) does not. Rejects, quoting the end of the
   * log, when `timeoutMs` passes first or the child exits without having logged such a line.
   */
  async waitForLog(pattern: RegExp, timeoutMs: number): Promise<string> {
    // A global or sticky regex carries lastIndex between test() calls; matching line by line needs neither.
    const matcher = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    const deadline = Date.now() + timeoutMs;
    let offset = this.#logStart;
    let partial = '';
    // Keeps a UTF-8 character that straddles two reads whole.
    const decoder = new StringDecoder('utf8');
    const handle = await fs.promises.open(this.logFile, 'r');
    try {
      for (;;) {
        // Sample exit state before reading: if the child had already exited, this read sees everything it wrote.
        const exitedBeforeRead = this.#exit;
        const chunk = Buffer.alloc(64 * 1024);
        for (;;) {
          const { bytesRead } = await handle.read(chunk, 0, chunk.length, offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
          const lines = (partial + decoder.write(chunk.subarray(0, bytesRead))).split('\n');
          partial = lines.pop() ?? '';
          const hit = lines.find((line) => matcher.test(line));
          if (hit !== undefined) return hit;
        }
        if (exitedBeforeRead !== undefined) {
          if (matcher.test(partial)) return partial;
          throw this.failure(`${this.name} (pid ${this.pid}) exited with ${describeExit(exitedBeforeRead)} before logging a line matching ${pattern}`);
        }
        if (Date.now() >= deadline) {
          throw this.failure(`${this.name} (pid ${this.pid}) did not log a line matching ${pattern} within ${timeoutMs} ms`);
        }
        await new Promise((resolve) => setTimeout(resolve, LOG_POLL_MS));
      }
    } finally {
      await handle.close();
    }
  }

  /**
   * SIGTERM, then SIGKILL if the child is still there after `graceMs`. Resolves once it has exited; calling it again
   * (or after the child died by itself) just returns the same exit.
   */
  stop(graceMs = 10_000): Promise<ExitInfo> {
    if (this.#exit !== undefined) return Promise.resolve(this.#exit);
    this.#stopping ??= (async () => {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
      try {
        return await this.exited;
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.#stopping;
  }

  /** Synchronous, for exit handlers: deliver `signal` if the child is still running. */
  signal(signal: NodeJS.Signals): void {
    if (this.#exit === undefined) this.#child.kill(signal);
  }
}

/**
 * Start a long-running child with stdout and stderr appended to `logFile`. The child writes the file directly (it is
 * not piped through us), so its log is complete even if this process is busy or dies. Resolves once the child runs;
 * rejects if it cannot be started at all (missing binary).
 */
export async function spawnManaged(options: SpawnManagedOptions): Promise<ManagedProcess> {
  await fs.promises.mkdir(path.dirname(options.logFile), { recursive: true });
  const header = `# ${new Date().toISOString()} ${options.name}: ${formatCommand(options.command, options.args)}\n`;
  await fs.promises.appendFile(options.logFile, header);
  const logStart = (await fs.promises.stat(options.logFile)).size;
  const fd = fs.openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    // The child holds its own copy of the descriptor.
    fs.closeSync(fd);
  }
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(spawnFailure(options.command, err)));
  });
  const managed = new ManagedProcess(child, options, { logStart });
  track(managed);
  return managed;
}

// ---------------------------------------------------------------------------------------------------------------
// Cleanup when this process goes away
// ---------------------------------------------------------------------------------------------------------------

const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** On a normal exit nobody is left to wait for a graceful shutdown, so SIGKILL: nothing may outlive us. */
function onProcessExit(): void {
  for (const child of live) child.signal('SIGKILL');
}

/**
 * On a terminating signal, ask the children to stop. If some other part of the program also handles the signal (the
 * quickstart's graceful shutdown), leave the rest to it; if we are the only listener, re-raise the signal with our
 * listener removed so the process dies of it just as it would have without us.
 */
function onSignal(signal: NodeJS.Signals): void {
  for (const child of live) child.signal('SIGTERM');
  if (process.listenerCount(signal) === 1) {
    removeHandlers();
    process.kill(process.pid, signal);
  }
}

function installHandlers(): void {
  process.on('exit', onProcessExit);
  for (const signal of FORWARDED_SIGNALS) process.on(signal, onSignal);
}

function removeHandlers(): void {
  process.removeListener('exit', onProcessExit);
  for (const signal of FORWARDED_SIGNALS) process.removeListener(signal, onSignal);
}

// Handlers are present only while children run, so a process with none behaves exactly as if this module were absent.
function track(child: ManagedProcess): void {
  if (child.exitInfo !== undefined) return;
  if (live.size === 0) installHandlers();
  live.add(child);
}

function untrack(child: ManagedProcess): void {
  if (live.delete(child) && live.size === 0) removeHandlers();
}

/**
 * Whether `pid` is a running process. A zombie (exited, not yet reaped by its parent) counts as gone: it holds no
 * ports or memory any more, and in a container without an init process it might never be reaped.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": the state follows the last ')' because comm may itself contain ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
  }
  // No /proc (not Linux): signal 0 checks existence without delivering anything.
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
