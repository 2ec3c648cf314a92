/**
 * @module bench/lib/http-upstream
 * The HTTP bench's upstream, run as its own process so it never shares an event loop with tollgate or the bench:
 *
 *   node bench/lib/http-upstream.ts --port <port> [--bulk-bytes 16777216] [--record-size 512]
 *
 *   GET /api/items           a fixed small JSON document (the request-rate variants)
 *   GET /bulk/records.json   one JSON array of payment records (bench/lib/payments.ts), about --bulk-bytes long
 *   GET /bulk/records.ndjson the same records, one per line (application/x-ndjson)
 *   anything else            404
 *
 * Every body is built once at start-up and sent from memory with its content-length, so serving costs the upstream
 * as little as Node allows. Logs "http upstream listening on <port> (...)" when ready.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { LOOPBACK } from '../../scripts/lib/ports.ts';
import { paymentJson } from './payments.ts';

/** The small document: a short list as an API would answer it, ~300 bytes. */
export const SMALL_JSON = JSON.stringify({
  items: [
    { id: 1, name: 'widget', price: 9.5, tags: ['blue', 'small'] },
    { id: 2, name: 'gadget', price: 24, tags: ['red'] },
    { id: 3, name: 'doohickey', price: 3.25, tags: [] },
  ],
  next: null,
  total: 3,
}) + '\n';

/** The bulk bodies: `records` documents of `recordSize` bytes as a JSON array and as NDJSON (same records). */
export function bulkBodies(bulkBytes: number, recordSize: number): { json: Buffer; ndjson: Buffer; records: number } {
  const records = Math.max(1, Math.floor(bulkBytes / (recordSize + 1)));
  const docs = Array.from({ length: records }, (_, i) => paymentJson(i, recordSize));
  return { json: Buffer.from(`[${docs.join(',')}]\n`), ndjson: Buffer.from(`${docs.join('\n')}\n`), records };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      'port': { type: 'string' },
      'bulk-bytes': { type: 'string', default: String(16 * 1024 * 1024) },
      'record-size': { type: 'string', default: '512' },
    },
  });
  const port = Number(values['port']);
  const bulkBytes = Number(values['bulk-bytes']);
  const recordSize = Number(values['record-size']);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port: expected a TCP port, got ${values['port']}`);
  if (!Number.isInteger(bulkBytes) || bulkBytes < 1) throw new Error(`--bulk-bytes: expected a positive integer, got ${values['bulk-bytes']}`);
  if (!Number.isInteger(recordSize) || recordSize < 320) throw new Error(`--record-size: expected an integer of at least 320, got ${values['record-size']}`);

  const small = Buffer.from(SMALL_JSON);
  const bulk = bulkBodies(bulkBytes, recordSize);
  const routes = new Map<string, { body: Buffer; type: string }>([
    ['/api/items', { body: small, type: 'application/json' }],
    ['/bulk/records.json', { body: bulk.json, type: 'application/json' }],
    ['/bulk/records.ndjson', { body: bulk.ndjson, type: 'application/x-ndjson' }],
  ]);
  const server = http.createServer((req, res) => {
    const route = req.method === 'GET' ? routes.get((req.url ?? '/').split('?')[0]!) : undefined;
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': route.type, 'content-length': route.body.length }).end(route.body);
  });
  // wrk keeps its connections open for the whole run; Node's default 5 s keep-alive would cut idle ones between runs.
  server.keepAliveTimeout = 120_000;
  server.listen(port, LOOPBACK, () => {
    console.log(`http upstream listening on ${port} (small ${small.length} B, bulk ${bulk.records} records: json ${bulk.json.length} B, ndjson ${bulk.ndjson.length} B)`);
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

if (import.meta.main) main();
