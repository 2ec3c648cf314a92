/**
 * @module config/postgres-schema
 * Schema parts used by both schema.ts and signals-schema.ts: where a secret comes from, and how to reach a
 * PostgreSQL database (the approvals store, the signal counters shared by replicas). Kept apart so both can import
 * them: schema.ts assembles signals-schema.ts, which therefore cannot import schema.ts.
 */
import { z } from 'zod';

export const secretSource = z.union([
  z.object({ env: z.string().min(1).meta({ description: 'Name of an environment variable holding the secret.' }) }).strict(),
  z.object({ file: z.string().min(1).meta({ description: 'Path of a file holding the secret (trailing newline trimmed).' }) }).strict(),
], { error: 'expected a secret source: {env: VARIABLE} or {file: /path}' }).meta({ description: 'Where a secret comes from. Secrets are never written into the config itself, nor logged.' });

/**
 * A PostgreSQL connection: a URL, or host, port, database and user, the password from a secret source. `where` is
 * the config path the messages name (`approvals.store.postgres`).
 */
export function postgresSchema(where: string, description: string, pool: { readonly size: number; readonly description: string } = {
  size: 10, description: 'Connections per tollgate process, besides the one that listens for other replicas\' changes.',
}) {
  return z.object({
    url: z.url({ protocol: /^postgres(ql)?$/, error: 'expected a URL such as postgres://tollgate@db.internal:5432/tollgate' })
      .refine((u) => URL.canParse(u) && new URL(u).password === '', `expected no password in the URL: give it as ${where}.password`)
      .refine((u) => URL.canParse(u) && new URL(u).search === '', `expected no query parameters in the URL: TLS is ${where}.tls`)
      .optional().meta({ description: '`postgres://user@host:port/database`; `host`, `port`, `database` and `user` override its parts. No password (see `password`) and no query parameters.' }),
    host: z.string().min(1).optional().meta({ description: 'Host name or address, or the folder of the server\'s Unix socket (`/var/run/postgresql`).' }),
    port: z.number().int().min(1).max(65535).optional().meta({ description: 'Default 5432.' }),
    database: z.string().min(1).optional().meta({ description: 'Default: the user name.' }),
    user: z.string().min(1).optional(),
    password: secretSource.optional().meta({ description: 'The user\'s password. A file is re-read for new connections, so a rotated password is picked up.' }),
    tls: z.object({
      caFile: z.string().min(1).optional().meta({ description: 'PEM CA bundle the server\'s certificate must chain to. Default: the system roots.' }),
    }).strict().optional().meta({ description: 'Connect with TLS, verifying the server\'s certificate and name. Absent: no TLS (a Unix socket, or a private network).' }),
    poolSize: z.number().int().min(1).max(100).default(pool.size).meta({ description: pool.description }),
  }).strict().superRefine((c, ctx) => {
    if (c.url === undefined && c.host === undefined) ctx.addIssue({ code: 'custom', path: ['host'], message: 'expected a host (or a url)' });
    if (c.user === undefined && (c.url === undefined || !URL.canParse(c.url) || new URL(c.url).username === '')) ctx.addIssue({ code: 'custom', path: ['user'], message: 'expected a user (or a url naming one)' });
  }).meta({ description });
}

export type PostgresConfig = z.output<ReturnType<typeof postgresSchema>>;
