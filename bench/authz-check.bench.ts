/**
 * ext_authz Check cost over real gRPC on loopback: tollgate's handler (bearer parsing, cached token verification,
 * policy, response rendering, audit to a discarding sink) against a baseline handler that allows at once, both
 * served by one grpc-js server and driven by the same client at the same concurrency. The ratio is tollgate's
 * throughput over the baseline's: what identity and policy cost on top of the gRPC round trip itself.
 *
 *   node bench/authz-check.bench.ts [--requests 20000] [--concurrency 16]
 *
 * Bounded by the request count; loopback only. No assertions.
 */
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { authorizationService } from '../src/grpc/protos.ts';
import { createAuthzHandler, type CheckRequestLike } from '../src/http/authz.ts';
import { Authenticator } from '../src/identity/authenticator.ts';
import { createCallerAuthenticator } from '../src/identity/caller.ts';
import { compilePolicy } from '../src/policy/engine.ts';
import { configSchema } from '../src/config/schema.ts';
import { startDevIssuer } from '../src/dev/oidc-issuer.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '16' } } });
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);

const issuer = await startDevIssuer({ audience: 'tollgate', clients: [] });
const identity = new Authenticator({ oidc: [{ issuer: issuer.issuer, audiences: ['tollgate'], groupsClaim: 'groups', algorithms: ['RS256'] }], retry: false });
await identity.start();
const config = configSchema.parse({
  rules: [
    { name: 'admin-routes-are-admin-only', match: { http: { path: '/admin/*' } }, unless: { group: 'platform-admins' }, effect: 'deny' },
    { name: 'api-open', match: { http: { path: '/api/*' } }, effect: 'allow' },
  ],
});
const policy = compilePolicy(config.rules);
const check = createAuthzHandler({
  authenticate: createCallerAuthenticator({ bearer: identity }),
  policy: () => policy,
  credentials: () => [],
  audit: { write: () => {} },
  logger: pino({ level: 'silent' }),
});

const server = new grpc.Server();
let mode: 'baseline' | 'tollgate' = 'baseline';
server.addService(authorizationService, {
  Check: (call: grpc.ServerUnaryCall<CheckRequestLike, unknown>, cb: grpc.sendUnaryData<unknown>) => {
    if (mode === 'baseline') cb(null, { status: { code: 0, message: '' }, ok_response: { headers: [], headers_to_remove: [] } });
    else check(call.request).then((r) => cb(null, r), (e: Error) => cb(e));
  },
});
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
const Client = grpc.makeGenericClientConstructor(authorizationService, 'Authorization');
const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());

const token = await issuer.mint({ sub: 'alice', groups: ['analysts'] });
const request = {
  attributes: {
    source: { address: { socket_address: { address: '127.0.0.1', port_value: 40000 } } },
    request: { http: { method: 'GET', path: '/api/customers', host: 'edge', headers: { authorization: `Bearer ${token}`, ':path': '/api/customers', 'user-agent': 'bench' } } },
  },
};

async function run(): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next++ < REQUESTS) {
      await new Promise<void>((resolve, reject) => client['Check']!(request, (e: Error | null) => (e ? reject(e) : resolve())));
    }
  }));
  return REQUESTS / ((performance.now() - started) / 1000);
}

await run(); // warm-up of both paths' JIT and the connection
mode = 'tollgate';
await run();
mode = 'baseline';
const baseline = await run();
mode = 'tollgate';
const tollgate = await run();
console.log(`ext_authz Check, ${REQUESTS} requests, concurrency ${CONCURRENCY}`);
console.log(`  baseline (allow at once)  ${baseline.toFixed(0)} checks/s`);
console.log(`  tollgate (verify+policy)  ${tollgate.toFixed(0)} checks/s`);
console.log(`  ratio tollgate/baseline   ${(tollgate / baseline).toFixed(2)}`);
client.close();
server.forceShutdown();
identity.close();
await issuer.close();
