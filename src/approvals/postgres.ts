/**
 * @module approvals/postgres
 * The approval store for several tollgate replicas sharing approvals: PostgreSQL through `pg` (pure JavaScript), a
 * pool of connections for the store's statements and one more connection that LISTENs, so a decision, a revocation
 * or an expiry recorded by one replica reaches the others as it commits (`pg_notify` inside the transaction that
 * records it: a rolled-back change is never announced).
 *
 * What differs from SQLite is all here: `?` placeholders become `$1, $2, …`; transactions run side by side, so a
 * decision locks its request row (`SELECT … FOR UPDATE`) and migrations take a transaction-scoped advisory lock;
 * a unique violation is SQLSTATE 23505. A lost LISTEN connection is re-opened with backoff; until then, held
 * requests still re-read the store every `approvals.pollInterval`.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import type { PostgresConfig } from '../config/postgres-schema.ts';
import { readCertificateFile, rereadingSecret } from '../config/secrets.ts';
import { SqlApprovalStore, type SqlDriver, type SqlRow, type SqlTransaction, type SqlValue } from './sql.ts';
import { ApprovalStoreError } from './store.ts';

/** The channel changes are announced on. */
export const CHANGES_CHANNEL = 'tollgate_approvals';
/** The advisory lock migrations hold, named rather than numbered (`hashtext` makes the key). */
const MIGRATION_LOCK = 'tollgate.approvals.migrate';
const UNIQUE_VIOLATION = '23505';
const CONNECT_TIMEOUT_MS = 10_000;
const RELISTEN_FIRST_MS = 1_000;
const RELISTEN_MAX_MS = 30_000;

/** Where and how to connect, resolved from the config (secrets read). */
export interface PostgresConnection {
  /** A host name or address, or the folder of a Unix socket (starting with `/`). */
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Read at each new connection, so a rotated secret file is picked up. */
  readonly password?: () => string;
  /** TLS, verifying the server against `ca` (PEM) or the system roots. Absent: no TLS. */
  readonly tls?: { readonly ca?: string };
  /** Connections in the pool, besides the listening one. */
  readonly poolSize: number;
}

/** `postgres://user@host:port/database`: for logs and errors; never a password. */
export function describeConnection(c: Pick<PostgresConnection, 'host' | 'port' | 'database' | 'user'>): string {
  const host = c.host.startsWith('/') ? `[${c.host}]` : c.host.includes(':') ? `[${c.host}]` : c.host;
  return `postgres://${encodeURIComponent(c.user)}@${host}:${c.port}/${encodeURIComponent(c.database)}`;
}

/**
 * The connection `approvals.store.postgres` (or another config path, `where`) describes: its `url`, with `host`,
 * `port`, `database` and `user` overriding the URL's parts. A password in the URL is refused: it belongs in a secret
 * source.
 */
export function postgresConnection(config: PostgresConfig, where = 'approvals.store.postgres'): PostgresConnection {
  let fromUrl: { host?: string; port?: number; database?: string; user?: string } = {};
  if (config.url !== undefined) {
    let url: URL;
    try {
      url = new URL(config.url);
    } catch {
      throw new ApprovalStoreError(`${where}.url: expected a URL such as postgres://tollgate@db.internal:5432/tollgate, got ${JSON.stringify(config.url)}`);
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new ApprovalStoreError(`${where}.url: expected a postgres:// or postgresql:// URL, got ${url.protocol}//…`);
    if (url.password !== '') throw new ApprovalStoreError(`${where}.url: expected no password in the URL; give it as ${where}.password ({env: VARIABLE} or {file: /path})`);
    if (url.search !== '') throw new ApprovalStoreError(`${where}.url: expected no query parameters (${url.search}); TLS is ${where}.tls`);
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    fromUrl = {
      ...(url.hostname !== '' && { host: url.hostname.replace(/^\[(.*)\]$/, '$1') }),
      ...(url.port !== '' && { port: Number(url.port) }),
      ...(database !== '' && { database }),
      ...(url.username !== '' && { user: decodeURIComponent(url.username) }),
    };
  }
  const host = config.host ?? fromUrl.host;
  const user = config.user ?? fromUrl.user;
  if (host === undefined) throw new ApprovalStoreError(`${where}: expected a host (${where}.host, or the host of ${where}.url)`);
  if (user === undefined) throw new ApprovalStoreError(`${where}: expected a user (${where}.user, or the user of ${where}.url)`);
  const tls = config.tls;
  return {
    host,
    port: config.port ?? fromUrl.port ?? 5432,
    database: config.database ?? fromUrl.database ?? user,
    user,
    ...(config.password !== undefined && { password: rereadingSecret(config.password, `${where}.password`) }),
    ...(tls !== undefined && { tls: tls.caFile === undefined ? {} : { ca: readCertificateFile(tls.caFile, `${where}.tls.caFile`) } }),
    poolSize: config.poolSize,
  };
}

function clientConfig(c: PostgresConnection): pg.ClientConfig {
  return {
    host: c.host, port: c.port, database: c.database, user: c.user,
    ...(c.password !== undefined && { password: c.password }),
    ...(c.tls !== undefined && { ssl: c.tls.ca === undefined ? { rejectUnauthorized: true } : { ca: c.tls.ca, rejectUnauthorized: true } }),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'tollgate',
  };
}

/**
 * `?` placeholders numbered for PostgreSQL (`$1`, `$2`, …). Question marks inside quoted literals or identifiers are
 * left alone; the store's SQL has none, but a placeholder miscounted would bind a value to the wrong column.
 */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | undefined;
  for (const ch of sql) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else {
      out += ch;
    }
  }
  return out;
}

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

async function rowsOf<T extends SqlRow>(db: Queryable, sql: string, params: readonly SqlValue[]): Promise<T[]> {
  return (await db.query(numberPlaceholders(sql), [...params])).rows as T[];
}

async function changedBy(db: Queryable, sql: string, params: readonly SqlValue[]): Promise<number> {
  return (await db.query(numberPlaceholders(sql), [...params])).rowCount ?? 0;
}

export interface PostgresDriverOptions {
  readonly logger?: Pick<Logger, 'warn' | 'info'>;
  /** What the database is used for, in log lines: `approvals store` by default. */
  readonly purpose?: string;
}

export class PostgresDriver implements SqlDriver {
  readonly #connection: PostgresConnection;
  readonly #pool: pg.Pool;
  readonly #logger: Pick<Logger, 'warn' | 'info'> | undefined;
  readonly #listeners = new Set<() => Promise<void>>();
  readonly #purpose: string;

  constructor(connection: PostgresConnection, options: PostgresDriverOptions = {}) {
    this.#connection = connection;
    this.#logger = options.logger;
    this.#purpose = options.purpose ?? 'approvals store';
    this.#pool = new pg.Pool({ ...clientConfig(connection), max: connection.poolSize, idleTimeoutMillis: 30_000 });
    // An idle connection the server closed (a restart, a failover) is reported here; without a listener it would
    // crash the process. The pool replaces it on the next checkout.
    this.#pool.on('error', (err) => this.#logger?.warn({ err, store: describeConnection(connection) }, `${this.#purpose}: an idle PostgreSQL connection failed`));
  }

  query<T extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[]): Promise<T[]> {
    return rowsOf<T>(this.#pool, sql, params);
  }

  run(sql: string, params: readonly SqlValue[]): Promise<number> {
    return changedBy(this.#pool, sql, params);
  }

  async transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const tx: SqlTransaction = {
        lockRows: ' FOR UPDATE',
        lockForMigration: async () => {
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [MIGRATION_LOCK]);
        },
        announce: async (payload) => {
          await client.query('SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, payload]);
        },
        query: <R extends SqlRow>(sql: string, params: readonly SqlValue[]) => rowsOf<R>(client, sql, params),
        run: (sql, params) => changedBy(client, sql, params),
      };
      const result = await work(tx);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        // The connection is unusable (it died mid-transaction): the pool must not hand it out again.
        broken = rollbackError as Error;
      }
      throw error;
    } finally {
      client.release(broken);
    }
  }

  isUniqueViolation(error: unknown): boolean {
    return (error as { code?: unknown } | null)?.code === UNIQUE_VIOLATION;
  }

  /**
   * LISTENs on a connection of its own; resolves once listening, or once the first attempt failed (logged, and
   * retried with backoff meanwhile: re-reading covers the gap, so a LISTEN failure never keeps the store closed).
   */
  async listen(listener: (payload: string) => void): Promise<() => Promise<void>> {
    const where = describeConnection(this.#connection);
    let client: pg.Client | undefined;
    let stopped = false;
    let retry: NodeJS.Timeout | undefined;
    let delay = RELISTEN_FIRST_MS;

    const reconnectLater = (err: unknown) => {
      if (stopped || retry !== undefined) return;
      this.#logger?.warn({ err, store: where, retryInMs: delay }, 'approvals store: not listening for other replicas\' changes (held requests re-read the store meanwhile)');
      retry = setTimeout(() => {
        retry = undefined;
        void connect();
      }, delay);
      retry.unref();
      delay = Math.min(delay * 2, RELISTEN_MAX_MS);
    };

    const connect = async (): Promise<void> => {
      const c = new pg.Client(clientConfig(this.#connection));
      client = c;
      c.on('notification', (message) => {
        if (message.channel === CHANGES_CHANNEL && message.payload !== undefined) listener(message.payload);
      });
      c.on('error', (err) => {
        c.end().catch(() => {});
        reconnectLater(err);
      });
      c.on('end', () => reconnectLater(new Error('the listening connection ended')));
      try {
        await c.connect();
        await c.query(`LISTEN ${CHANGES_CHANNEL}`);
        if (stopped) {
          await c.end();
          return;
        }
        if (delay !== RELISTEN_FIRST_MS) this.#logger?.info({ store: where }, 'approvals store: listening for other replicas\' changes again');
        delay = RELISTEN_FIRST_MS;
      } catch (err) {
        c.removeAllListeners('end');
        c.end().catch(() => {});
        reconnectLater(err);
      }
    };

    await connect();
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      this.#listeners.delete(stop);
      if (retry !== undefined) clearTimeout(retry);
      const c = client;
      c?.removeAllListeners('end');
      await c?.end().catch(() => {});
    };
    this.#listeners.add(stop);
    return stop;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#listeners].map((stop) => stop()));
    await this.#pool.end();
  }
}

/** Opens (migrating as needed) the PostgreSQL approval store `connection` describes. */
export async function openPostgresStore(connection: PostgresConnection, options: PostgresDriverOptions = {}, now?: number): Promise<SqlApprovalStore> {
  return SqlApprovalStore.open(new PostgresDriver(connection, options), now);
}
