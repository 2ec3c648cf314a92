/**
 * @module bench/lib/wrk-run
 * One wrk run (scripts/lib/wrk.ts provisions wrk), its figures read from a line its Lua `done()` prints rather than
 * from the human-readable summary: requests, duration, bytes, every error count, latency percentiles in µs.
 *
 * Two request modes:
 * - static: wrk builds one request and sends it again and again (its fastest path: no Lua per request);
 * - token rotation: a Lua `request()` puts the next token of a file into `Authorization: Bearer …` for every
 *   request, starting at `tokenOffset` and wrapping around, so a run that stays within the file never sends a token
 *   twice. `issued` says how many it built (the last few may not have been answered when the run ended).
 *
 * One wrk thread always: the benches run on 2 shared cores, and the rotation's positions are then one sequence.
 * wrk is a closed loop (each connection waits for its answer before it sends the next request), so its latencies
 * are those of a saturated server, not of a fixed offered rate.
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatCommand, outputTail, runCommand } from '../../scripts/lib/process.ts';
import { WRK_BINARY, wrkEnv } from '../../scripts/lib/wrk.ts';

export interface WrkOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationSeconds: number;
  /** A request without an answer after this long counts as a timeout error. */
  readonly timeoutSeconds: number;
  /** Sent with every request, e.g. `{authorization: 'Bearer …'}` (static mode). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Token rotation: a file of tokens, one per line, and the position of the first one to send. */
  readonly tokens?: { readonly file: string; readonly offset: number };
  /** Folder for the generated Lua script. */
  readonly workDir: string;
}

export interface WrkResult {
  /** Complete responses. */
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  /** Bytes read (headers and bodies). */
  readonly bytes: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Socket errors, and responses with a status of 400 or more (`status`). */
  readonly errors: { readonly connect: number; readonly read: number; readonly write: number; readonly status: number; readonly timeout: number };
  /** Token rotation: requests built (tokens taken), from `tokens.offset` on. */
  readonly issued: number;
}

const MARK = 'WRK_RESULT ';

const REPORT_LUA = `
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local issued = 0
  for _, t in ipairs(threads) do issued = issued + (t:get("issued") or 0) end
  local e = summary.errors
  io.write(string.format('${MARK}{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%.1f,"p99_us":%.1f,"max_us":%.1f,"issued":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, issued))
end
`;

// init() runs in the thread's own Lua state, after setup(); `issued` is a global there so done() can read it.
const ROTATE_LUA = `
local tokens = {}
local position = 0
issued = 0
function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then tokens[#tokens + 1] = line end
  end
  if #tokens == 0 then error("no tokens in " .. args[1]) end
  position = tonumber(args[2])
end
function request()
  wrk.headers["Authorization"] = "Bearer " .. tokens[(position % #tokens) + 1]
  position = position + 1
  issued = issued + 1
  return wrk.format()
end
`;

function count(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new Error(`wrk result: expected a non-negative number for ${name}, got ${JSON.stringify(value)}`);
  return value;
}

export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const script = path.join(o.workDir, o.tokens === undefined ? 'report.lua' : 'rotate.lua');
  await fs.promises.mkdir(o.workDir, { recursive: true });
  await fs.promises.writeFile(script, o.tokens === undefined ? REPORT_LUA : REPORT_LUA + ROTATE_LUA);
  const args = [
    '-t', '1',
    '-c', String(o.connections),
    '-d', `${o.durationSeconds}s`,
    '--timeout', `${o.timeoutSeconds}s`,
    '-s', script,
    ...Object.entries(o.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    o.url,
    ...(o.tokens === undefined ? [] : ['--', o.tokens.file, String(o.tokens.offset)]),
  ];
  const result = await runCommand(WRK_BINARY, args, { env: wrkEnv(), timeoutMs: (o.durationSeconds + o.timeoutSeconds + 30) * 1000 });
  const line = result.stdout.split('\n').find((l) => l.startsWith(MARK));
  if (result.code !== 0 || line === undefined) {
    throw new Error(`\`${formatCommand(WRK_BINARY, args)}\` exited with ${result.code ?? result.signal} without its result line:\n${outputTail(result, 15)}`);
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(line.slice(MARK.length)) as Record<string, unknown>;
  } catch {
    // Lua prints nan for the percentiles of a run without a single answer.
    throw new Error(`wrk result: expected JSON after ${JSON.stringify(MARK)}, got ${JSON.stringify(line)} (${formatCommand(WRK_BINARY, args)})`);
  }
  const requests = count('requests', raw['requests']);
  const seconds = count('duration_us', raw['duration_us']) / 1e6;
  return {
    requests,
    seconds,
    requestsPerSecond: seconds > 0 ? requests / seconds : 0,
    bytes: count('bytes', raw['bytes']),
    p50Ms: count('p50_us', raw['p50_us']) / 1000,
    p99Ms: count('p99_us', raw['p99_us']) / 1000,
    maxMs: count('max_us', raw['max_us']) / 1000,
    errors: {
      connect: count('connect', raw['connect']),
      read: count('read', raw['read']),
      write: count('write', raw['write']),
      status: count('status', raw['status']),
      timeout: count('timeout', raw['timeout']),
    },
    issued: count('issued', raw['issued']),
  };
}

/** Every error count added up. */
export function errorCount(r: WrkResult): number {
  return r.errors.connect + r.errors.read + r.errors.write + r.errors.status + r.errors.timeout;
}
