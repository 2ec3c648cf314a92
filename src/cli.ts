/**
 * @module cli
 * `tollgate serve | validate | token | apikey-digest | approvals … | audit verify | audit replay`. Exit codes: 0
 * success, 1 runtime failure (a refused approval action; for `audit verify`: the chain is broken), 2 bad usage or bad
 * config.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfigFileWithHash } from './config/load.ts';
import { startConfigReloader } from './config/reload.ts';
import { compilePolicy } from './policy/engine.ts';
import { loadUpstreamCredentials } from './http/credentials.ts';
import { readSecret, SecretError } from './config/secrets.ts';
import { loadMaskContext } from './masking/context.ts';
import { loadIdentities } from './identity/load.ts';
import { apiKeyDigest, MAX_API_KEY_LENGTH } from './identity/api-keys.ts';
import { APPROVALS_USAGE, ApprovalsUsageError, approvalsCommand } from './approvals/cli.ts';
import { readSinkSecrets, sinkNames } from './audit/pipeline.ts';
import { auditCommand } from './audit/cli.ts';

const USAGE = `usage:
  tollgate serve --config FILE          run the gRPC services for Envoy and the admin listener; reloads
                                        FILE when it changes and on SIGHUP (a bad one is refused)
  tollgate validate --config FILE [--no-secrets]
                                        check a config file and exit (0 valid, 2 invalid); secrets it
                                        names must be readable unless --no-secrets
  tollgate token --sub NAME [--groups a,b] [--ttl 3600] [--issuer URL]
                                        mint a token from the quickstart's dev OIDC issuer
  tollgate apikey-digest [--generate]   print the SHA-256 for identity.apiKeys[].sha256 of the key on stdin
                                        (one line); --generate makes a new random key and prints both
  tollgate audit verify FILE [--key-env VAR | --key-file F]
                                        check an audit file's hash chain: 0 and a count when intact, 1 and
                                        the first bad line (edited, removed, reordered, inserted, torn)
  tollgate audit replay (--session ID | --principal NAME) [--since T] [--until T]
                        (--from FILE | --from-kafka HOST:PORT[,…]/TOPIC [--sasl-mechanism M --sasl-username U
                        --sasl-password-env VAR] [--tls] [--tls-ca F]) [--json]
                                        print a session's timeline (T: ISO time, or a duration ago: 30m)
${APPROVALS_USAGE}`;

class UsageError extends Error {}

function configArgs(args: string[]): { file: string; secrets: boolean } {
  const { values } = parseArgs({
    args, strict: true,
    options: { config: { type: 'string', short: 'c' }, 'no-secrets': { type: 'boolean', default: false } },
  });
  if (!values.config) throw new UsageError('--config FILE is required');
  return { file: values.config, secrets: !values['no-secrets'] };
}

/** Loads and checks everything serve would, short of opening ports: schema, rules and (unless told not to) secrets. */
function checkConfig(file: string, secrets = true) {
  return checkConfigWithHash(file, secrets).config;
}

function checkConfigWithHash(file: string, secrets = true) {
  const loaded = loadConfigFileWithHash(file);
  const { config } = loaded;
  compilePolicy(config.rules, { timeWindows: config.timeWindows });
  if (secrets) {
    loadUpstreamCredentials(config.http.upstreamCredentials);
    loadMaskContext(config.masking);
    loadIdentities(config.identity).bearer.close();
    const sasl = config.kafka.upstream.sasl;
    if (sasl !== undefined) readSecret(sasl.password, `kafka.upstream.sasl password of ${sasl.username}`);
    const names = sinkNames(config.audit.sinks);
    config.audit.sinks.forEach((sink, i) => readSinkSecrets(sink, names[i]!));
  }
  return loaded;
}

async function serve(args: string[]): Promise<number> {
  const { file } = configArgs(args);
  const { config, hash } = checkConfigWithHash(file);
  const { startServer } = await import('./server.ts');
  const server = await startServer(config, { configHash: hash });
  server.metrics.configReloads.inc({ result: 'success' }, 0);
  server.metrics.configReloads.inc({ result: 'failure' }, 0);
  const reloader = startConfigReloader({
    file,
    load: (f) => checkConfigWithHash(f),
    apply: (next, nextHash) => { server.reload(next, nextHash); },
    currentHash: () => server.configHash,
    logger: server.logger,
    onResult: (result) => server.metrics.configReloads.inc({ result }),
  });
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      reloader.close();
      server.logger.info({ signal }, 'signal received');
      server.drain().then(() => resolve(0), (err: Error) => {
        server.logger.error({ err }, 'drain failed');
        resolve(1);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

function validate(args: string[]): number {
  const { file, secrets } = configArgs(args);
  const config = checkConfig(file, secrets);
  process.stdout.write(`${file}: valid (${config.rules.length} rules, ${config.identity.oidc.length} OIDC issuers)\n`);
  return 0;
}

/** The quickstart writes its addresses here; `token` uses its issuer unless --issuer says otherwise. */
export const QUICKSTART_STATE = path.join(process.cwd(), '.tollgate', 'quickstart.json');

function quickstartIssuer(): string {
  try {
    const state = JSON.parse(readFileSync(QUICKSTART_STATE, 'utf8')) as { issuer?: string };
    if (state.issuer) return state.issuer;
  } catch { /* no quickstart running from here: fall back to its fixed address */ }
  return 'http://127.0.0.1:18080';
}

async function token(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args, strict: true,
    options: { sub: { type: 'string' }, groups: { type: 'string', default: '' }, ttl: { type: 'string', default: '3600' }, issuer: { type: 'string' } },
  });
  if (!values.sub) throw new UsageError('--sub NAME is required');
  const ttlSeconds = Number(values.ttl);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new UsageError(`--ttl expects whole seconds, got "${values.ttl}"`);
  const issuer = values.issuer ?? quickstartIssuer();
  const groups = values.groups.split(',').map((g) => g.trim()).filter((g) => g !== '');
  let res: Response;
  try {
    res = await fetch(new URL('/dev/mint', issuer), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sub: values.sub, groups, ttlSeconds }),
    });
  } catch (err) {
    process.stderr.write(`tollgate token: cannot reach the dev issuer at ${issuer} (is \`npm start\` running?): ${(err as Error).message}\n`);
    return 1;
  }
  const body = await res.text();
  if (!res.ok) {
    process.stderr.write(`tollgate token: the dev issuer at ${issuer} answered ${res.status}: ${body}\n`);
    return 1;
  }
  process.stdout.write(`${(JSON.parse(body) as { access_token: string }).access_token}\n`);
  return 0;
}

/** Keys shorter than this are refused: an unsalted digest protects a random key, not a guessable one. */
export const MIN_API_KEY_LENGTH = 24;

function apikeyDigest(args: string[], input: () => string): number {
  const { values } = parseArgs({ args, strict: true, options: { generate: { type: 'boolean', default: false } } });
  if (values.generate) {
    const key = randomBytes(32).toString('base64url');
    process.stdout.write(`key:    ${key}\nsha256: ${apiKeyDigest(key)}\n`);
    return 0;
  }
  const key = input().replace(/\r?\n$/, '');
  if (key.length === 0) throw new UsageError('expected the key on stdin, found nothing (or use --generate)');
  if (key.includes('\n')) throw new UsageError('expected one key on one line of stdin, found several lines');
  if (!/^[\x21-\x7e]+$/.test(key)) throw new UsageError('expected a key of visible ASCII characters (no spaces), found others');
  if (key.length > MAX_API_KEY_LENGTH) throw new UsageError(`expected a key of at most ${MAX_API_KEY_LENGTH} characters, found ${key.length}`);
  if (key.length < MIN_API_KEY_LENGTH) {
    throw new UsageError(`expected a key of at least ${MIN_API_KEY_LENGTH} random characters, found ${key.length}; make one with --generate`);
  }
  process.stdout.write(`${apiKeyDigest(key)}\n`);
  return 0;
}

export async function main(argv: string[], stdin: () => string = () => readFileSync(0, 'utf8')): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve': return await serve(rest);
      case 'validate': return validate(rest);
      case 'token': return await token(rest);
      case 'apikey-digest': return apikeyDigest(rest, stdin);
      case 'approvals': return await approvalsCommand(rest, {
        env: process.env, cwd: process.cwd(), out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t),
      });
      case 'audit': return await auditCommand(rest, { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) });
      case undefined: case 'help': case '--help': case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default: throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof SecretError) {
      process.stderr.write(`tollgate ${command}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof UsageError || err instanceof ApprovalsUsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`tollgate ${command}: ${(err as Error).message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`tollgate ${command}: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
