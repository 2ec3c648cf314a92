/**
 * What the bundled Envoy configs do when tollgate is down, with the real Envoy and nothing listening where tollgate
 * should be:
 * - HTTP edge (envoy/http-edge.yaml) as shipped: fail closed. ext_authz answers 403, and that local reply passes
 *   through ext_proc's response path, which fails closed too: the client gets 500. The upstream is never reached.
 * - The same with `failure_mode_allow: true` on ext_authz and ext_proc (the fail-open variant the deployment guide
 *   describes): the request passes to the upstream unchecked.
 * - Per route: ext_authz has no per-route failure mode, so a fail-open route gets its own ext_authz filter
 *   (failure_mode_allow: true) and disables the fail-closed one, while every other route does the opposite; ext_proc
 *   takes `failure_mode_allow` per route (ExtProcPerRoute.overrides). One listener then answers 403 on /api and
 *   passes /public.
 * - Kafka (envoy/kafka.yaml) as shipped: the connection is closed and not one byte reaches the broker.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { ensureEnvoy } from '../../scripts/provision.ts';
import { renderTemplate, startEnvoy, validateEnvoyConfig } from '../../scripts/lib/envoy.ts';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { freePorts } from '../../scripts/lib/ports.ts';
import { requestFrame } from '../kafka/frames.ts';

type Obj = Record<string, any>;

let upstream: http.Server;
let upstreamPort: number;
let upstreamHits = 0;

before(async () => {
  await ensureEnvoy();
  upstream = http.createServer((_req, res) => { upstreamHits++; res.end('from the upstream\n'); });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamPort = (upstream.address() as net.AddressInfo).port;
});
after(() => new Promise<void>((resolve) => upstream.close(() => resolve())));

/** envoy/<file> rendered with tollgate's port free (nothing listens there) and `edit` applied. */
async function bootstrap(file: string, edit: (doc: Obj) => void = () => {}, extra: Record<string, number> = {}) {
  const [envoyAdmin, listener, tollgateDown] = await freePorts(3);
  const text = renderTemplate(fs.readFileSync(path.join(REPO_ROOT, 'envoy', file), 'utf8'), {
    ENVOY_ADMIN_PORT: envoyAdmin!, HTTP_LISTENER_PORT: listener!, KAFKA_LISTENER_PORT: listener!,
    TOLLGATE_HOST: '127.0.0.1', TOLLGATE_PORT: tollgateDown!, UPSTREAM_HOST: '127.0.0.1', UPSTREAM_PORT: upstreamPort,
    BROKER_HOST: '127.0.0.1', BROKER_PORT: extra['BROKER_PORT'] ?? upstreamPort,
  });
  const doc = YAML.parse(text) as Obj;
  edit(doc);
  return { yaml: YAML.stringify(doc), envoyAdmin: envoyAdmin!, listener: listener! };
}

const httpFilters = (doc: Obj): Obj[] => doc['static_resources'].listeners[0].filter_chains[0].filters[0].typed_config.http_filters;

async function withEnvoy<T>(config: { yaml: string; envoyAdmin: number }, run: () => Promise<T>): Promise<T> {
  const envoy = await startEnvoy({ configYaml: config.yaml, adminPort: config.envoyAdmin, logLevel: 'warn' });
  try {
    return await run();
  } finally {
    await envoy.stop();
  }
}

async function get(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`);
  return { status: res.status, body: await res.text() };
}

test('HTTP edge as shipped, tollgate down: 500 (ext_authz\'s 403 then fails in ext_proc\'s response path), and the upstream never sees the request', async () => {
  const config = await bootstrap('http-edge.yaml');
  for (const f of httpFilters(YAML.parse(config.yaml)).slice(0, 2)) assert.equal(f['typed_config'].failure_mode_allow, false);
  const before = upstreamHits;
  const res = await withEnvoy(config, () => get(config.listener, '/api/customers'));
  assert.deepEqual(res, { status: 500, body: '' });
  assert.equal(upstreamHits, before);
});

test('HTTP edge with only ext_proc failing open, tollgate down: ext_authz alone answers, 403', async () => {
  const config = await bootstrap('http-edge.yaml', (doc) => { httpFilters(doc)[1]!['typed_config'].failure_mode_allow = true; });
  const before = upstreamHits;
  const res = await withEnvoy(config, () => get(config.listener, '/api/customers'));
  assert.equal(res.status, 403);
  assert.equal(upstreamHits, before);
});

test('HTTP edge with failure_mode_allow: true on ext_authz and ext_proc, tollgate down: the request passes unchecked', async () => {
  const config = await bootstrap('http-edge.yaml', (doc) => {
    for (const f of httpFilters(doc).slice(0, 2)) f['typed_config'].failure_mode_allow = true;
  });
  const before = upstreamHits;
  const res = await withEnvoy(config, () => get(config.listener, '/api/customers'));
  assert.deepEqual(res, { status: 200, body: 'from the upstream\n' });
  assert.equal(upstreamHits, before + 1);
});

/** Two ext_authz filters (closed, open); each route disables the one that is not its own; ext_proc fails open per route. */
function perRoute(doc: Obj): void {
  const hcm = doc['static_resources'].listeners[0].filter_chains[0].filters[0].typed_config;
  const [authz, proc, router] = hcm.http_filters as [Obj, Obj, Obj];
  const closed: Obj = { ...structuredClone(authz), name: 'tollgate.ext_authz.closed' };
  const open: Obj = { ...structuredClone(authz), name: 'tollgate.ext_authz.open' };
  open['typed_config'].failure_mode_allow = true;
  hcm.http_filters = [closed, open, proc, router];
  const off = { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute', disabled: true };
  hcm.route_config.virtual_hosts[0].routes = [
    {
      match: { prefix: '/public' }, route: { cluster: 'upstream', timeout: '0s' },
      typed_per_filter_config: {
        'tollgate.ext_authz.closed': off,
        'envoy.filters.http.ext_proc': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute', overrides: { failure_mode_allow: true } },
      },
    },
    { match: { prefix: '/' }, route: { cluster: 'upstream', timeout: '0s' }, typed_per_filter_config: { 'tollgate.ext_authz.open': off } },
  ];
}

test('per route, tollgate down: /public (fail-open route) passes, /api (fail-closed) is refused; the per-route config validates', async () => {
  const config = await bootstrap('http-edge.yaml', perRoute);
  assert.match(await validateEnvoyConfig(config.yaml), /OK/);
  const before = upstreamHits;
  const [open, closed] = await withEnvoy(config, async () => [await get(config.listener, '/public/status'), await get(config.listener, '/api/customers')]);
  assert.deepEqual(open, { status: 200, body: 'from the upstream\n' });
  assert.deepEqual(closed, { status: 500, body: '' });
  assert.equal(upstreamHits, before + 1, 'only the fail-open route reached the upstream');
});

test('Kafka listener as shipped, tollgate down: the connection is closed and not one byte reaches the broker', async () => {
  let brokerBytes = 0;
  let brokerConnections = 0;
  const broker = net.createServer((socket) => { brokerConnections++; socket.on('data', (d) => { brokerBytes += d.length; }); socket.on('error', () => {}); });
  await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve));
  try {
    const config = await bootstrap('kafka.yaml', () => {}, { BROKER_PORT: (broker.address() as net.AddressInfo).port });
    assert.equal(YAML.parse(config.yaml)['static_resources'].listeners[0].filter_chains[0].filters[0].typed_config.failure_mode_allow, false);
    const outcome = await withEnvoy(config, () => new Promise<{ received: number; closed: boolean }>((resolve, reject) => {
      const client = net.connect(config.listener, '127.0.0.1', () => client.write(requestFrame({ apiKey: 18, apiVersion: 3, correlationId: 1 })));
      let received = 0;
      client.on('data', (d) => { received += d.length; });
      client.on('close', () => resolve({ received, closed: true }));
      client.on('error', () => {});
      setTimeout(() => { client.destroy(); reject(new Error('the connection stayed open for 20 s with tollgate down')); }, 20_000).unref();
    }));
    assert.deepEqual(outcome, { received: 0, closed: true });
    assert.equal(brokerBytes, 0, `the broker got ${brokerBytes} bytes (${brokerConnections} connections)`);
  } finally {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  }
});
