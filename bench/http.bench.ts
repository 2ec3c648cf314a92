/**
 * HTTP through Envoy with and without tollgate (issue 6, item 9): request rate and latency per authorization
 * variant, and streamed masking throughput, all measured in one run against one upstream.
 *
 * Part 1, requests/s and p50/p99 latency of GET /api/items (a ~200 B JSON document), wrk with 1 thread and
 * `--connections` keep-alive connections for `--duration` seconds per run, every request carrying a bearer token:
 *
 *   a  direct              Envoy, router only                                                    the baseline
 *   b  jwt_authn+rbac      Envoy's own jwt_authn (remote JWKS of the dev issuer, its cache of verified tokens on) +
 *                          RBAC on the token's groups claim: the same policy as tollgate's rules; one token
 *                          for every request                                                     the C++ baseline
 *   b2 jwt_authn+rbac new  the same, every request another token (so every signature is checked)
 *   c  tollgate warm       Envoy ext_authz → tollgate, one token for every request (verified once, then cached)
 *   d  tollgate new token  the same, every request another token
 *   e  edge as shipped     envoy/http-edge.yaml: ext_authz + ext_proc (FULL_DUPLEX_STREAMED responses) → tollgate,
 *                          one token; no masking rule applies to /api/items, so ext_proc passes the body through
 *
 * New tokens: `--tokens` tokens are minted before the runs; a wrk Lua script sends the next one with every request.
 * Each such variant continues where its previous run stopped, so it reuses a token only once it has sent them all
 * (the reuse fraction is printed; tokens go round in the same order, so a reused token had all the others after it,
 * more than either cache holds with the defaults).
 *
 * Part 2, streamed masking throughput: the upstream serves `--bulk-mib` MiB of payment records (card number, email,
 * padding; bench/lib/payments.ts) as one JSON array and as NDJSON. One request at a time, repeated for
 * `--bulk-seconds` per run (whole responses only), in MB/s (10^6 bytes of the upstream's body per second):
 *
 *   direct     Envoy, router only
 *   unmasked   the edge listener, a principal (group auditors) no masking rule applies to: ext_proc passthrough
 *   masked     the edge listener, a principal (group analysts) whose masking rule applies: card numbers kept to
 *              the last 4, emails and card numbers redacted (JSON: the whole document is held, then masked; NDJSON:
 *              line by line as the lines arrive)
 *
 *   node bench/http.bench.ts [--rounds 2] [--duration 8] [--warmup 3] [--connections 16] [--tokens 30000]
 *        [--bulk-mib 16] [--bulk-seconds 6] [--record-size 512] [--variants a,b,b2,c,d,e] [--skip-masking]
 *        [--time-limit 900] [--cpu-prof]
 *
 * --cpu-prof writes a V8 CPU profile of the tollgate process (node --cpu-prof) into the run's log folder when it stops.
 *
 * The default run takes about 4 minutes on 2 cores. Each figure is the median over `--rounds`; each round starts
 * with another variant. Before the rounds every variant gets one `--warmup` run (unmeasured: JIT, JWKS, caches).
 *
 * Processes: the upstream (bench/lib/http-upstream.ts), `tollgate serve` and Envoy (one worker; one listener per
 * variant, all derived from envoy/http-edge.yaml by bench/lib/http-envoy.ts) each run on their own; the dev OIDC
 * issuer (tokens, JWKS) and the masking client run in this process; wrk (Debian's package, unpacked into the cache
 * by scripts/lib/wrk.ts) is its own process. All on 127.0.0.1 and on the same shared cores, so the figures are what
 * this machine does with load tool, proxy, tollgate and upstream on it at once.
 *
 * Before measuring, the bench checks that the jwt_authn + RBAC listener and the tollgate listeners answer a set of
 * requests alike (right group 200; wrong group, wrong method, path outside the policy 403; no, expired or foreign
 * token 401) and that `envoy --mode validate` accepts the config. It fails (exit 1) when they differ, when any
 * measured request failed (wrk counts statuses ≥ 400 and socket errors), or when the masked bodies were not masked
 * (every record checked) or the unmasked and direct ones not byte for byte the upstream's.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureEnvoy } from '../scripts/provision.ts';
import { startEnvoy, validateEnvoyConfig } from '../scripts/lib/envoy.ts';
import type { EnvoyProcess } from '../scripts/lib/envoy.ts';
import { ENVOY_VERSION, REPO_ROOT, RUN_DIR } from '../scripts/lib/paths.ts';
import { freePorts, LOOPBACK } from '../scripts/lib/ports.ts';
import { spawnManaged } from '../scripts/lib/process.ts';
import type { ManagedProcess } from '../scripts/lib/process.ts';
import { ensureWrk, WRK_VERSION } from '../scripts/lib/wrk.ts';
import { parseConfig } from '../src/config/load.ts';
import { startDevIssuer } from '../src/dev/oidc-issuer.ts';
import { JWT_CACHE_SIZE, renderHttpBenchEnvoy } from './lib/http-envoy.ts';
import type { EnvoyVariant } from './lib/http-envoy.ts';
import { BENCH_POLICY, JSON_BULK_PATH, NDJSON_BULK_PATH, tollgateHttpBenchConfig } from './lib/http-policy.ts';
import { bulkBodies, SMALL_JSON } from './lib/http-upstream.ts';
import { checkMasked } from './lib/payments.ts';
import { countAuditRecords } from './lib/tollgate-kafka.ts';
import { errorCount, runWrk } from './lib/wrk-run.ts';
import type { WrkResult } from './lib/wrk-run.ts';

const { values } = parseArgs({
  options: {
    'rounds': { type: 'string', default: '2' },
    'duration': { type: 'string', default: '8' },
    'warmup': { type: 'string', default: '3' },
    'connections': { type: 'string', default: '16' },
    'tokens': { type: 'string', default: '30000' },
    'bulk-mib': { type: 'string', default: '16' },
    'bulk-seconds': { type: 'string', default: '6' },
    'record-size': { type: 'string', default: '512' },
    'variants': { type: 'string', default: 'a,b,b2,c,d,e' },
    'skip-masking': { type: 'boolean', default: false },
    'time-limit': { type: 'string', default: '900' },
    'cpu-prof': { type: 'boolean', default: false },
  },
});

function positiveInt(name: string, text: string | undefined, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: expected an integer from ${min} to ${max}, got ${text}`);
  return n;
}
const ROUNDS = positiveInt('rounds', values['rounds'], 1, 10);
const DURATION = positiveInt('duration', values['duration'], 1, 120);
const WARMUP = positiveInt('warmup', values['warmup'], 1, 60);
const CONNECTIONS = positiveInt('connections', values['connections'], 1, 1000);
const TOKENS = positiveInt('tokens', values['tokens'], 100, 1_000_000);
const BULK_MIB = positiveInt('bulk-mib', values['bulk-mib'], 1, 256);
const BULK_SECONDS = positiveInt('bulk-seconds', values['bulk-seconds'], 1, 120);
const RECORD_SIZE = positiveInt('record-size', values['record-size'], 320, 64 * 1024);
const SKIP_MASKING = values['skip-masking'] === true;
const TIME_LIMIT_MS = positiveInt('time-limit', values['time-limit'], 30, 3600) * 1000;
const CPU_PROF = values['cpu-prof'] === true;

type VariantId = 'a' | 'b' | 'b2' | 'c' | 'd' | 'e';
interface Variant {
  readonly id: VariantId;
  readonly name: string;
  readonly listener: EnvoyVariant;
  /** A new token per request; the cache that would otherwise answer, for the reuse note. */
  readonly rotate?: { readonly cache: string };
  readonly what: string;
}
const ALL_VARIANTS: readonly Variant[] = [
  { id: 'a', name: 'direct', listener: 'direct', what: 'Envoy, router only' },
  { id: 'b', name: 'jwt_authn+rbac', listener: 'jwt_rbac', what: 'Envoy native jwt_authn (JWT cache on) + RBAC, one token' },
  { id: 'b2', name: 'jwt_authn+rbac new token', listener: 'jwt_rbac', rotate: { cache: `jwt_authn's ${JWT_CACHE_SIZE}-token cache` }, what: 'the same, a new token per request' },
  { id: 'c', name: 'tollgate warm', listener: 'authz', what: 'ext_authz → tollgate, one token (verified once, then cached)' },
  { id: 'd', name: 'tollgate new token', listener: 'authz', rotate: { cache: "tollgate's token cache" }, what: 'ext_authz → tollgate, a new token per request' },
  { id: 'e', name: 'edge as shipped', listener: 'edge', what: 'ext_authz + ext_proc (body passthrough) → tollgate, one token' },
];
const VARIANTS: readonly Variant[] = (() => {
  const ids = ALL_VARIANTS.map((v) => v.id).join(',');
  const asked = (values['variants'] ?? '').split(',').map((v) => v.trim()).filter((v) => v !== '');
  for (const v of asked) if (!ALL_VARIANTS.some((x) => x.id === v)) throw new Error(`--variants: expected some of ${ids}, got ${JSON.stringify(v)}`);
  const chosen = ALL_VARIANTS.filter((v) => asked.includes(v.id));
  if (chosen.length === 0) throw new Error(`--variants: expected at least one of ${ids}`);
  return chosen;
})();

const started = Date.now();
/** The machine's 1-minute load average when the bench started: other work on the shared cores moves every figure. */
const loadBefore = os.loadavg()[0]!;
const deadline = started + TIME_LIMIT_MS;
// Last resort if something hangs past every timeout: exiting kills every managed child (scripts/lib/process.ts).
setTimeout(() => {
  console.error(`http bench: still running ${TIME_LIMIT_MS / 1000 + 60} s after start; giving up`);
  process.exit(2);
}, TIME_LIMIT_MS + 60_000).unref();

class TimeLimitReached extends Error {}
function checkTime(what: string, needsMs: number): void {
  if (Date.now() + needsMs > deadline) throw new TimeLimitReached(`time limit of ${TIME_LIMIT_MS / 1000} s reached before ${what}`);
}

const AUDIENCE = 'tollgate-bench';
const GROUPS_CLAIM = 'groups';
const SMALL_PATH = '/api/items';
const BULK_BYTES = BULK_MIB * 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** CPU time (user + system) a process has used so far, in ms; undefined where /proc cannot be read. */
function cpuMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

interface Response {
  readonly status: number;
  readonly bytes: number;
  readonly body?: Buffer;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One GET on 127.0.0.1:`port`; the body is kept only when asked for (throughput runs just count it). */
function get(port: number, urlPath: string, headers: Record<string, string>, keepBody: boolean, timeoutMs = 120_000): Promise<Response> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: LOOPBACK, port, path: urlPath, headers, agent, timeout: timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (keepBody) chunks.push(chunk);
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, bytes, ...(keepBody && { body: Buffer.concat(chunks) }) }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${urlPath} on port ${port}: no complete answer within ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

const median = (xs: readonly number[]): number | undefined => {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const num = (v: number | undefined, digits = 0): string => (v === undefined ? '—' : v.toFixed(digits));
const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || b === 0 ? '—' : (a / b).toFixed(2));
const table = (header: string[], rows: string[][]): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
};

// ---------------------------------------------------------------------------------------------------------------
// Run

interface RateRound {
  readonly wrk: WrkResult;
  /** CPU µs per answered request. */
  readonly envoyCpu?: number;
  readonly tollgateCpu?: number;
  readonly upstreamCpu?: number;
}
type BulkFormat = 'json' | 'ndjson';
type BulkCase = 'direct' | 'unmasked' | 'masked';
const BULK_FORMATS: readonly BulkFormat[] = ['json', 'ndjson'];
const BULK_CASES: readonly BulkCase[] = ['direct', 'unmasked', 'masked'];
interface BulkRound {
  readonly responses: number;
  readonly seconds: number;
  /** 10^6 bytes of the upstream's body per second. */
  readonly mbPerSecond: number;
  /** CPU ms per body. */
  readonly envoyCpu?: number;
  readonly tollgateCpu?: number;
}
/** A new-token variant's use of the token file: where its next run starts, what its measured runs sent. */
interface Rotation {
  next: number;
  issued: number;
  reused: number;
  cacheSize: number;
}

const workDir = await (async () => {
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  return fs.promises.mkdtemp(path.join(RUN_DIR, 'bench-http-'));
})();
const stops: Array<() => Promise<unknown>> = [];
const rate = new Map<VariantId, RateRound[]>(VARIANTS.map((v) => [v.id, []]));
const rotations = new Map<VariantId, Rotation>();
const bulk = new Map<string, BulkRound[]>();
const problems: string[] = [];
let parityRows: string[][] = [];
let mintSeconds = 0;
let bodySizes = { json: 0, ndjson: 0, records: 0 };
let upstreamAlone: WrkResult | undefined;
let auditLine = 'audit: not counted';

try {
  await ensureEnvoy();
  await ensureWrk();
  const [envoyAdmin, directPort, jwtPort, authzPort, edgePort, upstreamPort, tollGrpc, tollAdmin] = (await freePorts(8)) as [number, number, number, number, number, number, number, number];
  const listenerPort: Record<EnvoyVariant, number> = { direct: directPort, jwt_rbac: jwtPort, authz: authzPort, edge: edgePort };

  const upstream: ManagedProcess = await spawnManaged({
    name: 'http-upstream',
    command: process.execPath,
    args: [path.join(REPO_ROOT, 'bench', 'lib', 'http-upstream.ts'), '--port', String(upstreamPort), '--bulk-bytes', String(BULK_BYTES), '--record-size', String(RECORD_SIZE)],
    logFile: path.join(workDir, 'upstream.log'),
  });
  stops.push(() => upstream.stop(5_000));
  await upstream.waitForLog(/http upstream listening/, 60_000);

  const issuer = await startDevIssuer({ audience: AUDIENCE, clients: [], groupsClaim: GROUPS_CLAIM });
  stops.push(() => issuer.close());

  const tollgateConfigFile = path.join(workDir, 'tollgate.yaml');
  const tollgateConfigText = tollgateHttpBenchConfig({
    grpc: `${LOOPBACK}:${tollGrpc}`,
    admin: `${LOOPBACK}:${tollAdmin}`,
    issuer: issuer.issuer,
    audience: AUDIENCE,
    policy: BENCH_POLICY,
    maskedGroup: 'analysts',
    maxBufferBytes: Math.max(8 * 1024 * 1024, 2 * BULK_BYTES),
  });
  await fs.promises.writeFile(tollgateConfigFile, tollgateConfigText);
  const tollgateTokenCache = parseConfig(tollgateConfigText, tollgateConfigFile).identity.oidc[0]!.tokenCacheSize;
  for (const v of VARIANTS) {
    if (v.rotate !== undefined) rotations.set(v.id, { next: 0, issued: 0, reused: 0, cacheSize: v.listener === 'jwt_rbac' ? JWT_CACHE_SIZE : tollgateTokenCache });
  }
  const tollgate: ManagedProcess = await spawnManaged({
    name: 'tollgate',
    command: process.execPath,
    args: [
      ...(CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', path.join(workDir, 'tollgate-cpu-prof')] : []),
      path.join(REPO_ROOT, 'src', 'cli.ts'), 'serve', '--config', tollgateConfigFile,
    ],
    logFile: path.join(workDir, 'tollgate.log'),
  });
  stops.push(() => tollgate.stop(10_000));
  await tollgate.waitForLog(/tollgate listening/, 30_000);

  const envoyConfig = renderHttpBenchEnvoy({
    adminPort: envoyAdmin,
    listeners: listenerPort,
    upstreamPort,
    tollgatePort: tollGrpc,
    issuer: issuer.issuer,
    issuerPort: issuer.port,
    audience: AUDIENCE,
    groupsClaim: GROUPS_CLAIM,
    policy: BENCH_POLICY,
  });
  await validateEnvoyConfig(envoyConfig);
  console.error('envoy --mode validate: config accepted');
  const envoy: EnvoyProcess = await startEnvoy({ configYaml: envoyConfig, adminPort: envoyAdmin, logLevel: 'warn', workDir: path.join(workDir, 'envoy') });
  stops.push(() => envoy.stop());

  // Tokens. Rotation tokens go to a file the wrk script reads; minting runs before anything is measured.
  const analyst = await issuer.mint({ sub: 'bench-analyst', groups: ['analysts'] });
  const auditor = await issuer.mint({ sub: 'bench-auditor', groups: ['auditors'] });
  const wrongGroup = await issuer.mint({ sub: 'bench-ci', groups: ['ci'] });
  const expired = await issuer.mint({ sub: 'bench-analyst', groups: ['analysts'], extraClaims: { exp: Math.floor(Date.now() / 1000) - 600 } });
  const foreign = await (async () => {
    const rogue = await startDevIssuer({ issuerUrl: issuer.issuer, audience: AUDIENCE, clients: [] });
    try {
      return await rogue.mint({ sub: 'bench-analyst', groups: ['analysts'] });
    } finally {
      await rogue.close();
    }
  })();
  const tokensFile = path.join(workDir, 'tokens.txt');
  if (rotations.size > 0) {
    const mintStart = Date.now();
    const out = fs.createWriteStream(tokensFile);
    const BATCH = 500;
    for (let i = 0; i < TOKENS; i += BATCH) {
      const batch = await Promise.all(Array.from({ length: Math.min(BATCH, TOKENS - i) }, () => issuer.mint({ sub: 'bench-analyst', groups: ['analysts'] })));
      out.write(`${batch.join('\n')}\n`);
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    mintSeconds = (Date.now() - mintStart) / 1000;
    console.error(`minted ${TOKENS} tokens in ${mintSeconds.toFixed(1)} s`);
  }

  // The same answers from Envoy's own filters and from tollgate, before anything is measured.
  const parityCases: ReadonlyArray<{ what: string; method: string; path: string; token?: string; expect: number }> = [
    { what: 'analyst GET /api/items', method: 'GET', path: SMALL_PATH, token: analyst, expect: 200 },
    { what: 'auditor GET /api/items (group without /api/)', method: 'GET', path: SMALL_PATH, token: auditor, expect: 403 },
    { what: 'group ci GET /api/items (no rule)', method: 'GET', path: SMALL_PATH, token: wrongGroup, expect: 403 },
    { what: 'analyst POST /api/items (method)', method: 'POST', path: SMALL_PATH, token: analyst, expect: 403 },
    { what: 'analyst GET /other (path)', method: 'GET', path: '/other', token: analyst, expect: 403 },
    { what: 'auditor GET /bulk/records.ndjson', method: 'GET', path: NDJSON_BULK_PATH, token: auditor, expect: 200 },
    { what: 'no token', method: 'GET', path: SMALL_PATH, expect: 401 },
    { what: 'expired token', method: 'GET', path: SMALL_PATH, token: expired, expect: 401 },
    { what: 'token signed by another key', method: 'GET', path: SMALL_PATH, token: foreign, expect: 401 },
  ];
  const parityListeners: readonly EnvoyVariant[] = ['jwt_rbac', 'authz', 'edge'];
  parityRows = [];
  for (const c of parityCases) {
    const row = [c.what, String(c.expect)];
    for (const l of parityListeners) {
      const status = await new Promise<number>((resolve, reject) => {
        const request = http.request({ host: LOOPBACK, port: listenerPort[l], path: c.path, method: c.method, agent: false, headers: c.token === undefined ? {} : { authorization: `Bearer ${c.token}` } }, (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        });
        request.on('error', reject);
        request.end();
      });
      row.push(String(status));
      if (status !== c.expect) problems.push(`policy parity: ${c.what} on the ${l} listener answered ${status}, expected ${c.expect}`);
    }
    parityRows.push(row);
  }
  if (problems.length > 0) throw new Error('the variants do not answer alike; not measuring');
  console.error(`policy parity: ${parityCases.length} requests answered alike by jwt_authn+rbac and tollgate (ext_authz, edge)`);
  // What tollgate's audit must show for them: one record per request on each of its two listeners.
  const parityTollgate = { deny: 2 * parityCases.filter((c) => c.expect === 403).length, unauthenticated: 2 * parityCases.filter((c) => c.expect === 401).length };
  let tollgateAnswered = 2 * parityCases.filter((c) => c.expect === 200).length;

  // Part 1: request rate.
  const runVariant = async (v: Variant, seconds: number): Promise<RateRound> => {
    checkTime(v.name, (seconds + 15) * 1000);
    const rotation = rotations.get(v.id);
    const pids = [envoy.pid, tollgate.pid, upstream.pid];
    const before = pids.map(cpuMs);
    const wrk = await runWrk({
      url: `http://${LOOPBACK}:${listenerPort[v.listener]}${SMALL_PATH}`,
      connections: CONNECTIONS,
      durationSeconds: seconds,
      timeoutSeconds: 10,
      workDir,
      ...(rotation !== undefined ? { tokens: { file: tokensFile, offset: rotation.next } } : { headers: { authorization: `Bearer ${analyst}` } }),
    });
    const after = pids.map(cpuMs);
    const perRequest = (i: number): number | undefined => (before[i] === undefined || after[i] === undefined || wrk.requests === 0 ? undefined : ((after[i]! - before[i]!) * 1000) / wrk.requests);
    if (rotation !== undefined) rotation.next += wrk.issued;
    if (v.listener === 'authz' || v.listener === 'edge') tollgateAnswered += wrk.requests;
    return { wrk, envoyCpu: perRequest(0), tollgateCpu: perRequest(1), upstreamCpu: perRequest(2) };
  };

  // The upstream alone, for scale: what the part every variant shares serves without Envoy.
  upstreamAlone = await runWrk({ url: `http://${LOOPBACK}:${upstreamPort}${SMALL_PATH}`, connections: CONNECTIONS, durationSeconds: Math.min(DURATION, 5), timeoutSeconds: 10, workDir, headers: { authorization: `Bearer ${analyst}` } });
  for (const v of VARIANTS) {
    const w = await runVariant(v, WARMUP);
    console.error(`warm-up ${v.id} ${v.name}: ${w.wrk.requestsPerSecond.toFixed(0)} req/s, ${errorCount(w.wrk)} errors`);
  }
  outer: for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const v = VARIANTS[(k + round) % VARIANTS.length]!;
      const rotation = rotations.get(v.id);
      const start = rotation?.next ?? 0;
      try {
        const r = await runVariant(v, DURATION);
        rate.get(v.id)!.push(r);
        if (rotation !== undefined) {
          rotation.issued += r.wrk.issued;
          rotation.reused += Math.max(0, start + r.wrk.issued - Math.max(start, TOKENS));
        }
        const errors = errorCount(r.wrk);
        if (errors > 0) problems.push(`${v.id} ${v.name}, round ${round + 1}: ${errors} failed requests (${JSON.stringify(r.wrk.errors)})`);
        console.error(`round ${round + 1}/${ROUNDS} ${v.id} ${v.name}: ${r.wrk.requestsPerSecond.toFixed(0)} req/s, p50 ${r.wrk.p50Ms.toFixed(2)} ms, p99 ${r.wrk.p99Ms.toFixed(2)} ms, ${errors} errors`);
      } catch (err) {
        problems.push(`${v.id} ${v.name}, round ${round + 1}: ${(err as Error).message}`);
        console.error(problems.at(-1));
        if (err instanceof TimeLimitReached) break outer;
      }
    }
  }

  // Part 2: streamed masking throughput.
  if (!SKIP_MASKING) {
    const expected = bulkBodies(BULK_BYTES, RECORD_SIZE);
    bodySizes = { json: expected.json.length, ndjson: expected.ndjson.length, records: expected.records };
    const pathOf: Record<BulkFormat, string> = { json: JSON_BULK_PATH, ndjson: NDJSON_BULK_PATH };
    const target = (c: BulkCase): { port: number; headers: Record<string, string> } => ({
      port: c === 'direct' ? directPort : edgePort,
      headers: { authorization: `Bearer ${c === 'masked' ? analyst : auditor}` },
    });

    // Correctness first (and a warm-up): masked bodies masked in every record, the others byte for byte the upstream's.
    const maskingProblems: string[] = [];
    for (const format of BULK_FORMATS) {
      const original = expected[format];
      for (const c of BULK_CASES) {
        const { port, headers } = target(c);
        const res = await get(port, pathOf[format], headers, true);
        if (c !== 'direct') tollgateAnswered++;
        const body = res.body!;
        if (res.status !== 200) {
          maskingProblems.push(`masking: ${format} ${c} answered ${res.status}: ${body.subarray(0, 200).toString()}`);
          continue;
        }
        if (c !== 'masked') {
          if (!body.equals(original)) maskingProblems.push(`masking: the ${c} ${format} body (${body.length} B) differs from the upstream's (${original.length} B)`);
          continue;
        }
        const text = body.toString('utf8');
        let docs: unknown[];
        try {
          docs = format === 'json' ? (JSON.parse(text) as unknown[]) : text.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
        } catch (err) {
          maskingProblems.push(`masking: the masked ${format} body is not ${format === 'json' ? 'JSON' : 'NDJSON'}: ${(err as Error).message}`);
          continue;
        }
        if (docs.length !== expected.records) maskingProblems.push(`masking: the masked ${format} body has ${docs.length} records, expected ${expected.records}`);
        const bad = docs.map((d) => checkMasked(JSON.stringify(d))).find((p) => p !== undefined);
        if (bad !== undefined) maskingProblems.push(`masking: a masked ${format} record: ${bad}`);
      }
    }
    problems.push(...maskingProblems);
    if (maskingProblems.length > 0) throw new Error('masking check failed; not measuring masking throughput');
    console.error(`masking check: ${expected.records} records per body masked for analysts (json and ndjson); auditors and direct got the upstream's bytes`);

    for (let round = 0; round < ROUNDS; round++) {
      for (const format of BULK_FORMATS) {
        for (let k = 0; k < BULK_CASES.length; k++) {
          const c = BULK_CASES[(k + round) % BULK_CASES.length]!;
          const key = `${format}/${c}`;
          try {
            checkTime(`masking ${key}`, (BULK_SECONDS + 60) * 1000);
            const { port, headers } = target(c);
            const pids = [envoy.pid, tollgate.pid];
            const before = pids.map(cpuMs);
            const t0 = performance.now();
            let responses = 0;
            let last = t0;
            // Whole responses only: the clock stops at the end of the last one.
            while (responses < 2 || last - t0 < BULK_SECONDS * 1000) {
              const res = await get(port, pathOf[format], headers, false);
              if (res.status !== 200) throw new Error(`answered ${res.status}`);
              responses++;
              last = performance.now();
            }
            const after = pids.map(cpuMs);
            if (c !== 'direct') tollgateAnswered += responses;
            const perBody = (i: number): number | undefined => (before[i] === undefined || after[i] === undefined ? undefined : (after[i]! - before[i]!) / responses);
            const seconds = (last - t0) / 1000;
            const r: BulkRound = { responses, seconds, mbPerSecond: (responses * expected[format].length) / 1e6 / seconds, envoyCpu: perBody(0), tollgateCpu: perBody(1) };
            bulk.set(key, [...(bulk.get(key) ?? []), r]);
            console.error(`round ${round + 1}/${ROUNDS} ${key}: ${r.mbPerSecond.toFixed(1)} MB/s (${responses} bodies in ${seconds.toFixed(1)} s)`);
          } catch (err) {
            problems.push(`masking ${key}, round ${round + 1}: ${(err as Error).message}`);
            console.error(problems.at(-1));
            if (err instanceof TimeLimitReached) break;
          }
        }
      }
    }
  }

  // Every request through a tollgate listener was decided by tollgate: one audit record each, and the only
  // refusals are the parity checks'.
  await envoy.stop();
  await tollgate.stop(10_000);
  try {
    const audit = await countAuditRecords(tollgate.logFile);
    const n = (event: string): number => audit.byEvent.get(event) ?? 0;
    auditLine = `audit: ${audit.total} records in tollgate's log (${[...audit.byEvent].map(([e, k]) => `${e} ${k}`).join(', ')}); ` +
      `${tollgateAnswered} requests were answered through tollgate's listeners`;
    if (n('http.authz.allow') < tollgateAnswered) problems.push(`audit: ${n('http.authz.allow')} allow records for ${tollgateAnswered} requests answered through tollgate`);
    if (n('http.authz.deny') !== parityTollgate.deny || n('http.authz.unauthenticated') !== parityTollgate.unauthenticated) {
      problems.push(`audit: ${n('http.authz.deny')} deny and ${n('http.authz.unauthenticated')} unauthenticated records; the parity checks account for ${parityTollgate.deny} and ${parityTollgate.unauthenticated}`);
    }
  } catch (err) {
    problems.push(`audit: could not be counted (${(err as Error).message})`);
  }
} catch (err) {
  problems.push((err as Error).message);
} finally {
  agent.destroy();
  for (const stop of stops.reverse()) await stop().catch((err: Error) => console.error(`stopping: ${err.message}`));
}

// ---------------------------------------------------------------------------------------------------------------
// Report

const summary = new Map(VARIANTS.map((v) => {
  const rs = rate.get(v.id)!;
  const pick = (get: (r: RateRound) => number | undefined): number | undefined => median(rs.map(get).filter((x): x is number => x !== undefined));
  return [v.id, {
    runs: rs.length,
    rps: pick((r) => r.wrk.requestsPerSecond),
    p50: pick((r) => r.wrk.p50Ms),
    p99: pick((r) => r.wrk.p99Ms),
    envoyCpu: pick((r) => r.envoyCpu),
    tollgateCpu: pick((r) => r.tollgateCpu),
    upstreamCpu: pick((r) => r.upstreamCpu),
  }] as const;
}));
const a = summary.get('a');
const b = summary.get('b');
const ran = VARIANTS.filter((v) => summary.get(v.id)!.runs > 0);

console.log(`HTTP request rate: GET ${SMALL_PATH} (${Buffer.byteLength(SMALL_JSON)} B JSON) with a bearer token, wrk ${WRK_VERSION} (Debian), 1 thread, ` +
  `${CONNECTIONS} connections, ${DURATION} s per run, ${ROUNDS} round(s) (median), one ${WARMUP} s warm-up run per variant first; ` +
  `Envoy ${ENVOY_VERSION} (--concurrency 1), tollgate, the upstream and wrk each their own process on this machine's shared cores`);
if (upstreamAlone !== undefined) {
  console.log(`the upstream alone (wrk straight to it): ${upstreamAlone.requestsPerSecond.toFixed(0)} req/s, p50 ${upstreamAlone.p50Ms.toFixed(2)} ms, p99 ${upstreamAlone.p99Ms.toFixed(2)} ms`);
}
console.log('');
console.log(table(
  ['variant', 'req/s', 'p50 ms', 'p99 ms', 'req/s ÷ a', 'req/s ÷ b', 'p50 ÷ a', 'p50 ÷ b', 'p99 ÷ a', 'p99 ÷ b'],
  VARIANTS.map((v) => {
    const s = summary.get(v.id)!;
    if (s.runs === 0) return [`${v.id} ${v.name}`, 'failed', '', '', '', '', '', '', '', ''];
    return [`${v.id} ${v.name}`, num(s.rps), num(s.p50, 2), num(s.p99, 2), ratio(s.rps, a?.rps), ratio(s.rps, b?.rps),
      ratio(s.p50, a?.p50), ratio(s.p50, b?.p50), ratio(s.p99, a?.p99), ratio(s.p99, b?.p99)];
  }),
));
const b2 = summary.get('b2');
const d = summary.get('d');
if (b2 !== undefined && d !== undefined && b2.runs > 0 && d.runs > 0) {
  console.log(`like for like with a new token per request: d ÷ b2 req/s ${ratio(d.rps, b2.rps)}, p50 ${ratio(d.p50, b2.p50)}, p99 ${ratio(d.p99, b2.p99)}`);
}
for (const v of VARIANTS) console.log(`  ${v.id.padEnd(2)} ${v.name}: ${v.what}`);
if (ran.length > 0) {
  console.log('');
  console.log(table(
    ['CPU µs per request (user+sys)', 'Envoy', 'tollgate', 'upstream'],
    ran.map((v) => {
      const s = summary.get(v.id)!;
      return [`${v.id} ${v.name}`, num(s.envoyCpu), v.listener === 'authz' || v.listener === 'edge' ? num(s.tollgateCpu) : '—', num(s.upstreamCpu)];
    }),
  ));
}
if (rotations.size > 0) {
  console.log('');
  console.log(`new tokens: ${TOKENS} minted before the runs (${mintSeconds.toFixed(1)} s), sent in the same order round after round`);
  for (const [id, r] of rotations) {
    const fraction = r.issued === 0 ? 0 : r.reused / r.issued;
    const cache = VARIANTS.find((v) => v.id === id)!.rotate!.cache;
    console.log(`  ${id}: ${r.issued} sent in the measured runs, ${(100 * fraction).toFixed(1)}% of them a token it had sent before` +
      (fraction > 0 ? (TOKENS - 1 >= r.cacheSize
        ? ` (each with all ${TOKENS - 1} others sent since, more than ${cache} holds (${r.cacheSize}): verified again)`
        : ` (${cache} holds ${r.cacheSize}: some may have been answered from it)`) : ''));
  }
}
if (parityRows.length > 0) {
  console.log('');
  console.log('policy parity, checked before measuring (HTTP status):');
  console.log(table(['request', 'expected', 'b jwt_authn+rbac', 'c/d ext_authz', 'e edge'], parityRows));
}

if (!SKIP_MASKING && bodySizes.records > 0) {
  console.log('');
  console.log(`Streamed masking throughput: ${bodySizes.records} payment records of ${RECORD_SIZE} B (card number, email, padding) as one JSON array ` +
    `(${(bodySizes.json / 1e6).toFixed(1)} MB) and as NDJSON (${(bodySizes.ndjson / 1e6).toFixed(1)} MB); one request at a time for ≥ ${BULK_SECONDS} s per run, ` +
    `whole bodies only; MB/s = 10^6 bytes of the upstream's body per second; ${ROUNDS} round(s) (median)`);
  console.log('direct: Envoy, router only; unmasked: edge listener (ext_authz + ext_proc FULL_DUPLEX_STREAMED → tollgate), a principal no masking rule applies to; ' +
    'masked: the same, a principal whose rule masks {card.number of each record: keep-last-4, detectors: [email, card]} ' +
    '(JSON: the document is held whole, then masked; NDJSON: line by line as lines arrive)');
  console.log('');
  const pick = (format: BulkFormat, c: BulkCase, get: (r: BulkRound) => number | undefined) =>
    median((bulk.get(`${format}/${c}`) ?? []).map(get).filter((x): x is number => x !== undefined));
  const mb = (format: BulkFormat, c: BulkCase) => pick(format, c, (r) => r.mbPerSecond);
  console.log(table(
    ['body', 'direct MB/s', 'unmasked MB/s', 'masked MB/s', 'masked ÷ direct', 'unmasked ÷ direct', 'masked ÷ unmasked', 'CPU ms/body unmasked: Envoy', 'tollgate', 'masked: Envoy', 'tollgate'],
    BULK_FORMATS.map((f) => [f, num(mb(f, 'direct'), 1), num(mb(f, 'unmasked'), 1), num(mb(f, 'masked'), 1), ratio(mb(f, 'masked'), mb(f, 'direct')),
      ratio(mb(f, 'unmasked'), mb(f, 'direct')), ratio(mb(f, 'masked'), mb(f, 'unmasked')),
      num(pick(f, 'unmasked', (r) => r.envoyCpu)), num(pick(f, 'unmasked', (r) => r.tollgateCpu)), num(pick(f, 'masked', (r) => r.envoyCpu)), num(pick(f, 'masked', (r) => r.tollgateCpu))]),
  ));
}
console.log('');
console.log(auditLine);
if (CPU_PROF) console.log(`tollgate CPU profile: ${path.join(workDir, 'tollgate-cpu-prof')}`);
console.log(`load average (1 min) of the machine: ${loadBefore.toFixed(1)} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end, on ${os.cpus().length} cores`);
console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s (limit ${TIME_LIMIT_MS / 1000} s); logs in ${workDir}`);
if (problems.length > 0) {
  console.error(`http bench: FAILED:\n  ${problems.join('\n  ')}`);
  process.exitCode = 1;
}
