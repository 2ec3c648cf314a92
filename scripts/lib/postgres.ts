/**
 * @module scripts/lib/postgres
 * A real, throwaway PostgreSQL server for tests: Debian's server from the provisioning cache (scripts/provision.ts
 * postgresql), a cluster made by initdb in a per-run folder under RUN_DIR, listening on a free 127.0.0.1 port and on a
 * Unix socket in that folder; `stop()` ends it and removes the folder.
 *
 * Authentication: user `tollgate` with a random password over TCP (scram-sha-256, what tollgate's store config
 * exercises), trust over the Unix socket (the harness's own psql). initdb and postgres refuse to run as root, so as
 * root (CI) both run as `nobody` through setpriv (util-linux; it execs, so the pid is the server's), and the run
 * folder is handed to that user (made under the system's temporary folder instead when nobody cannot reach RUN_DIR).
 *
 * Cost: initdb ~2 s and a start ~1 s on the 2-core machine, ~40 MB resident; one server per test file, one database
 * per test (`createDatabase`).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { libraryEnv, readLayout, type ComponentLayout } from './debian.ts';
import { POSTGRES_DIR, POSTGRES_MAJOR, RUN_DIR } from './paths.ts';
import { freePort, LOOPBACK } from './ports.ts';
import { runChecked, runCommand, spawnManaged, type ManagedProcess } from './process.ts';

export const POSTGRES_USER = 'tollgate';
/** nobody:nogroup on Debian: who runs the server when this process is root. */
const UNPRIVILEGED_ID = 65534;
const STOP_GRACE_MS = 10_000;

export interface PostgresServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** The password of `user` over TCP. */
  readonly password: string;
  /** The folder of the server's Unix socket (trust authentication). */
  readonly socketDir: string;
  /** The run folder: data/, socket/, postgres.log. */
  readonly dir: string;
  /** `15.20` */
  readonly version: string;
  readonly pid: number;
  /** `postgres://tollgate@127.0.0.1:<port>/<database>`: no password in it (tollgate takes that from a secret source). */
  url(database?: string): string;
  /** Creates an empty database with a fresh name and returns the name. */
  createDatabase(): Promise<string>;
  /** Runs SQL with psql over the Unix socket; resolves to its unaligned, tuples-only output. */
  psql(sql: string, database?: string): Promise<string>;
  /** Fast shutdown (SIGINT: open sessions are ended), SIGKILL after 10 s; then the run folder is removed. Idempotent. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** How long to wait for the server to accept connections. Default 60 s. */
  readonly startTimeoutMs?: number;
}

export function postgresLayout(): ComponentLayout {
  const layout = readLayout(POSTGRES_DIR, 'run node scripts/provision.ts postgresql');
  if (!fs.existsSync(path.join(layout.program, 'postgres'))) throw new Error(`PostgreSQL ${POSTGRES_MAJOR} not found at ${layout.program}: run node scripts/provision.ts postgresql`);
  return layout;
}

/** initdb a cluster in a new run folder and start it; on failure the folder is kept for its log. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const layout = postgresLayout();
  const bin = (name: string) => path.join(layout.program, name);
  const env = { ...libraryEnv(layout.libraryDirs), LC_ALL: 'C' };
  const asRoot = process.getuid?.() === 0;
  // setpriv execs the program as nobody: same pid, same signals, nothing left in between.
  const unprivileged = (command: string, args: readonly string[]): [string, string[]] => asRoot
    ? ['setpriv', [`--reuid=${UNPRIVILEGED_ID}`, `--regid=${UNPRIVILEGED_ID}`, '--clear-groups', '--', command, ...args]]
    : [command, [...args]];

  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  let base = RUN_DIR;
  if (asRoot) {
    // nobody must reach the programs and the run folder: a checkout under a private home folder (/root) hides both.
    const reachable = async (p: string) => (await runCommand(...unprivileged('test', ['-x', p]))).code === 0;
    if (!(await reachable(bin('postgres')))) {
      throw new Error(`startPostgres: as root the server runs as nobody, who cannot reach ${bin('postgres')}; make the folders above the cache world-readable (chmod o+rx) or set TOLLGATE_CACHE_DIR to a folder such as /var/tmp/tollgate-cache`);
    }
    if (!(await reachable(RUN_DIR))) base = os.tmpdir();
  }
  const dir = await fs.promises.mkdtemp(path.join(base, 'postgres-'));
  const data = path.join(dir, 'data');
  const socketDir = path.join(dir, 'socket');
  await fs.promises.mkdir(socketDir);
  const password = randomBytes(18).toString('base64url');
  const passwordFile = path.join(dir, 'password');
  await fs.promises.writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  if (asRoot) {
    for (const p of [dir, socketDir, passwordFile]) await fs.promises.chown(p, UNPRIVILEGED_ID, UNPRIVILEGED_ID);
  }
  const port = await freePort();

  const [initCommand, initArgs] = unprivileged(bin('initdb'), [
    `--pgdata=${data}`, `--username=${POSTGRES_USER}`, `--pwfile=${passwordFile}`, '--auth-local=trust', '--auth-host=scram-sha-256',
    '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions',
  ]);
  await runChecked(`initdb a PostgreSQL ${layout.version} cluster in ${data}`, initCommand, initArgs, { env, timeoutMs: 120_000 });
  await fs.promises.rm(passwordFile);

  const [command, args] = unprivileged(bin('postgres'), [
    '-D', data, '-p', String(port), '-k', socketDir,
    '-c', `listen_addresses=${LOOPBACK}`,
    // A throwaway cluster: durability buys nothing, and the disk is shared with every other test.
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', 'shared_buffers=32MB', '-c', 'max_connections=100',
  ]);
  let server: ManagedProcess | undefined;
  try {
    server = await spawnManaged({ name: 'postgres', command, args, logFile: path.join(dir, 'postgres.log'), cwd: dir, env });
    await server.waitForLog(/database system is ready to accept connections/, options.startTimeoutMs ?? 60_000);
  } catch (err) {
    await server?.stop(STOP_GRACE_MS);
    throw new Error(`${(err as Error).message}\n(the run folder ${dir} is kept for its log)`);
  }
  const running = server;

  const psql = async (sql: string, database = 'postgres'): Promise<string> => {
    const { stdout } = await runChecked(`psql ${JSON.stringify(sql.slice(0, 80))}`, bin('psql'), [
      '-X', '-h', socketDir, '-p', String(port), '-U', POSTGRES_USER, '-d', database, '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql,
    ], { env, timeoutMs: 60_000 });
    return stdout;
  };
  let databases = 0;
  let stopping: Promise<void> | undefined;
  return {
    host: LOOPBACK,
    port,
    user: POSTGRES_USER,
    password,
    socketDir,
    dir,
    version: layout.version,
    pid: running.pid,
    url: (database = 'postgres') => `postgres://${POSTGRES_USER}@${LOOPBACK}:${port}/${database}`,
    async createDatabase() {
      const name = `test_${process.pid}_${++databases}`;
      await psql(`CREATE DATABASE ${name}`);
      return name;
    },
    psql,
    stop() {
      stopping ??= (async () => {
        // SIGTERM would be a smart shutdown, waiting for every client to leave.
        running.signal('SIGINT');
        await running.stop(STOP_GRACE_MS);
        await fs.promises.rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
