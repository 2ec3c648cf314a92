/**
 * @module audit/cli
 * `tollgate audit verify` and `tollgate audit replay` (src/cli.ts dispatches here). Exit codes as the rest of the
 * CLI: 0 success, 1 a broken chain (verify) or a source that failed (replay), 2 bad usage.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DURATION_PATTERN, parseDuration } from '../config/duration.ts';
import { KafkaCluster } from '../kafka/client/cluster.ts';
import type { ClientSaslMechanism, KafkaClientOptions } from '../kafka/client/connection.ts';
import { canonicalJson } from './canonical.ts';
import { verifyChain } from './chain.ts';
import type { AuditRecord } from './record.ts';
import { recordsFromFile, recordsFromKafka, renderTimeline, timeline, type ReplayQuery } from './replay.ts';

export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

class AuditUsageError extends Error {}

const USAGE = `usage:
  tollgate audit verify FILE [--key-env VAR | --key-file F]
  tollgate audit replay (--session ID | --principal NAME) [--since T] [--until T] [--json]
                        (--from FILE | --from-kafka HOST:PORT[,HOST:PORT…]/TOPIC
                         [--sasl-mechanism PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 --sasl-username U --sasl-password-env VAR]
                         [--tls] [--tls-ca FILE])
  T: an ISO-8601 time (2026-05-01T12:00:00Z) or a duration ago (30s, 15m, 2h)
`;

export async function auditCommand(args: readonly string[], io: CliOutput): Promise<number> {
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case 'verify': return await verify(rest, io);
      case 'replay': return await replay(rest, io);
      default: throw new AuditUsageError(sub === undefined ? 'expected `verify` or `replay`' : `unknown audit command "${sub}"`);
    }
  } catch (err) {
    if (err instanceof AuditUsageError) {
      io.err(`tollgate audit: ${err.message}\n${USAGE}`);
      return 2;
    }
    throw err;
  }
}

function keyFrom(values: { 'key-env'?: string | undefined; 'key-file'?: string | undefined }): Buffer | undefined {
  if (values['key-env'] !== undefined && values['key-file'] !== undefined) throw new AuditUsageError('expected --key-env or --key-file, not both');
  if (values['key-env'] !== undefined) {
    const value = process.env[values['key-env']];
    if (value === undefined || value === '') throw new AuditUsageError(`environment variable ${values['key-env']} (--key-env) is not set`);
    return Buffer.from(value);
  }
  if (values['key-file'] !== undefined) {
    try {
      return Buffer.from(readFileSync(values['key-file'], 'utf8').replace(/\r?\n$/, ''));
    } catch (err) {
      throw new AuditUsageError(`cannot read --key-file ${values['key-file']}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return undefined;
}

async function verify(args: readonly string[], io: CliOutput): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args], strict: true, allowPositionals: true,
    options: { 'key-env': { type: 'string' }, 'key-file': { type: 'string' } },
  });
  if (positionals.length !== 1) throw new AuditUsageError('expected one FILE to verify');
  const file = positionals[0]!;
  if (!existsSync(file)) throw new AuditUsageError(`no such file: ${file}`);
  const result = await verifyChain(file, keyFrom(values));
  if (result.ok) {
    io.out(`${file}: ${result.records} records, chain intact${result.records > 0 ? ` (last seq ${result.head.seq}, hash ${result.head.hash})` : ''}\n`);
    return 0;
  }
  io.err(`${file}:${result.line}: ${result.problem}: ${result.message} (${result.records} records before it verified)\n`);
  return 1;
}

/** An ISO time, or a duration before now. */
function parseTime(value: string, option: string, now: number): number {
  if (DURATION_PATTERN.test(value)) return now - parseDuration(value);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new AuditUsageError(`${option} expects an ISO-8601 time or a duration such as 15m, got ${JSON.stringify(value)}`);
  return ms;
}

const SASL_MECHANISMS: readonly ClientSaslMechanism[] = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'];

async function replay(args: readonly string[], io: CliOutput): Promise<number> {
  const { values } = parseArgs({
    args: [...args], strict: true,
    options: {
      session: { type: 'string' }, principal: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' },
      from: { type: 'string' }, 'from-kafka': { type: 'string' }, json: { type: 'boolean', default: false },
      'sasl-mechanism': { type: 'string' }, 'sasl-username': { type: 'string' }, 'sasl-password-env': { type: 'string' },
      tls: { type: 'boolean', default: false }, 'tls-ca': { type: 'string' },
    },
  });
  if ((values.session === undefined) === (values.principal === undefined)) throw new AuditUsageError('expected --session ID or --principal NAME (one of them)');
  if ((values.from === undefined) === (values['from-kafka'] === undefined)) throw new AuditUsageError('expected --from FILE or --from-kafka HOST:PORT/TOPIC (one of them)');
  const now = Date.now();
  const query: ReplayQuery = {
    ...(values.session !== undefined && { session: values.session }),
    ...(values.principal !== undefined && { principal: values.principal }),
    ...(values.since !== undefined && { since: parseTime(values.since, '--since', now) }),
    ...(values.until !== undefined && { until: parseTime(values.until, '--until', now) }),
  };
  let records: AuditRecord[];
  if (values.from !== undefined) {
    if (!existsSync(values.from)) throw new AuditUsageError(`no such file: ${values.from}`);
    records = await timeline(recordsFromFile(values.from), query);
  } else {
    const spec = values['from-kafka']!;
    const slash = spec.lastIndexOf('/');
    if (slash <= 0 || slash === spec.length - 1) throw new AuditUsageError(`--from-kafka expects HOST:PORT[,HOST:PORT…]/TOPIC, got ${JSON.stringify(spec)}`);
    const cluster = new KafkaCluster(spec.slice(0, slash).split(','), kafkaOptions(values));
    try {
      records = await timeline(recordsFromKafka(cluster, spec.slice(slash + 1)), query);
    } catch (err) {
      io.err(`tollgate audit replay: cannot read ${spec}: ${(err as Error).message}\n`);
      return 1;
    } finally {
      cluster.close();
    }
  }
  // Canonical JSON (sorted keys): a record reads the same whichever sink it came from.
  io.out(values.json ? records.map((r) => `${canonicalJson(r)}\n`).join('') : renderTimeline(records, query));
  return 0;
}

function kafkaOptions(values: Record<string, string | boolean | undefined>): KafkaClientOptions {
  const mechanism = values['sasl-mechanism'] as string | undefined;
  let sasl: KafkaClientOptions['sasl'];
  if (mechanism !== undefined) {
    if (!SASL_MECHANISMS.includes(mechanism as ClientSaslMechanism)) throw new AuditUsageError(`--sasl-mechanism expects ${SASL_MECHANISMS.join(', ')}, got ${mechanism}`);
    const username = values['sasl-username'] as string | undefined;
    const passwordEnv = values['sasl-password-env'] as string | undefined;
    if (username === undefined || passwordEnv === undefined) throw new AuditUsageError('--sasl-mechanism needs --sasl-username and --sasl-password-env (the password never goes on the command line)');
    const password = process.env[passwordEnv];
    if (password === undefined || password === '') throw new AuditUsageError(`environment variable ${passwordEnv} (--sasl-password-env) is not set`);
    sasl = { mechanism: mechanism as ClientSaslMechanism, username, password };
  }
  const caFile = values['tls-ca'] as string | undefined;
  const tls = values['tls'] === true || caFile !== undefined ? { ...(caFile !== undefined && { ca: readFileSync(caFile, 'utf8') }) } : undefined;
  return { clientId: 'tollgate-audit-replay', timeoutMs: 30_000, ...(sasl !== undefined && { sasl }), ...(tls !== undefined && { tls }) };
}
