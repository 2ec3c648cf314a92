/**
 * mTLS peers on the HTTP path, end to end: the bundled HTTP edge (envoy/http-edge.yaml) with its listener made a TLS
 * listener that requires a client certificate, as a mesh's sidecar presents one. Envoy verifies the chain and
 * reports the certificate's URI SAN (a SPIFFE id) as `source.principal` in the ext_authz check; tollgate makes it
 * the caller when no token names one, with groups from identity.mtls. A token, when present, is the caller; the peer
 * is then recorded as the workload the request came through.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import pino from 'pino';
import YAML from 'yaml';
import type { AuditRecord } from '../../src/audit/record.ts';
import { parseConfig } from '../../src/config/load.ts';
import { startServer, splitHostPort, type RunningServer } from '../../src/server.ts';
import { startDemoUpstream, type DemoUpstream } from '../../src/dev/demo-upstream.ts';
import { startDevIssuer, type DevIssuer } from '../../src/dev/oidc-issuer.ts';
import { ensureEnvoy } from '../../scripts/provision.ts';
import { createMtlsTestCertificates, type CertificateFiles, type MtlsTestCertificates } from '../../scripts/lib/certs.ts';
import { renderTemplate, startEnvoy, validateEnvoyConfig, type EnvoyProcess } from '../../scripts/lib/envoy.ts';
import { REPO_ROOT, RUN_DIR } from '../../scripts/lib/paths.ts';
import { freePorts, LOOPBACK } from '../../scripts/lib/ports.ts';

const SHOP = 'spiffe://mesh.test/ns/shop/sa/frontend';
const STRANGER = 'spiffe://other.test/ns/shop/sa/frontend';
const UPSTREAM_TOKEN_ENV = 'TOLLGATE_HTTP_MTLS_TEST_UPSTREAM';

let workDir: string;
let pki: MtlsTestCertificates;
let issuer: DevIssuer;
let upstream: DemoUpstream;
let tollgate: RunningServer;
let envoy: EnvoyProcess;
let listenerPort: number;
const audit: AuditRecord[] = [];

/** envoy/http-edge.yaml with its one listener terminating TLS and requiring a client certificate from the test CA. */
function mtlsEdge(values: Record<string, string | number>): string {
  const doc = YAML.parse(renderTemplate(fs.readFileSync(path.join(REPO_ROOT, 'envoy', 'http-edge.yaml'), 'utf8'), values));
  doc.static_resources.listeners[0].filter_chains[0].transport_socket = {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      require_client_certificate: true,
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { filename: pki.server.cert }, private_key: { filename: pki.server.key } }],
        validation_context: { trusted_ca: { filename: pki.ca.cert } },
      },
    },
  };
  return YAML.stringify(doc);
}

before(async () => {
  await ensureEnvoy();
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  workDir = await fs.promises.mkdtemp(path.join(RUN_DIR, 'http-mtls-'));
  pki = await createMtlsTestCertificates(path.join(workDir, 'pki'), { shop: SHOP, stranger: STRANGER });
  const [port, envoyAdmin, issuerPort] = await freePorts(3) as [number, number, number];
  listenerPort = port;
  issuer = await startDevIssuer({ port: issuerPort, issuerUrl: `http://${LOOPBACK}:${issuerPort}`, audience: 'tollgate', clients: [] });
  const upstreamToken = 'upstream-secret-for-the-mtls-test';
  upstream = await startDemoUpstream({ token: upstreamToken });
  process.env[UPSTREAM_TOKEN_ENV] = upstreamToken;
  const config = parseConfig(YAML.stringify({
    server: { grpc: { address: `${LOOPBACK}:0` }, admin: { address: `${LOOPBACK}:0` }, drainTimeout: '1s' },
    identity: {
      oidc: [{ issuer: issuer.issuer, audiences: ['tollgate'], algorithms: ['RS256'] }],
      mtls: { trustDomains: ['mesh.test'], groups: [{ subject: 'spiffe://mesh.test/ns/shop/*', groups: ['shop'] }] },
    },
    http: { upstreamCredentials: [{ name: 'demo', match: { path: '/*' }, secret: { env: UPSTREAM_TOKEN_ENV } }] },
    rules: [
      { name: 'shop-reads-customers', match: { group: 'shop', http: { method: 'GET', path: '/api/*' } }, effect: 'allow' },
      { name: 'analysts-read-customers', match: { group: 'analysts', http: { method: 'GET', path: '/api/*' } }, effect: 'allow' },
    ],
  }), 'http-mtls.test.yaml');
  tollgate = await startServer(config, { logger: pino({ level: 'silent' }), audit: { write: (r) => audit.push(r) } });
  await tollgate.identityReady;
  const grpc = splitHostPort(tollgate.grpcAddress);
  const rendered = mtlsEdge({
    ENVOY_ADMIN_PORT: envoyAdmin, HTTP_LISTENER_PORT: listenerPort, TOLLGATE_HOST: grpc.host, TOLLGATE_PORT: grpc.port,
    UPSTREAM_HOST: LOOPBACK, UPSTREAM_PORT: upstream.port,
  });
  await validateEnvoyConfig(rendered);
  envoy = await startEnvoy({ configYaml: rendered, adminPort: envoyAdmin, workDir: path.join(workDir, 'envoy') });
});

after(async () => {
  await envoy?.stop();
  await tollgate?.drain();
  await upstream?.close();
  await issuer?.close();
  delete process.env[UPSTREAM_TOKEN_ENV];
});

function get(pathname: string, certificate: CertificateFiles, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: LOOPBACK, port: listenerPort, path: pathname, method: 'GET', headers,
      ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(certificate.cert), key: fs.readFileSync(certificate.key),
    }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a mesh peer with no token is the caller, by its SPIFFE id, with the groups its id maps to', async () => {
  const res = await get('/api/whoami', pki.clients['shop']!);
  assert.equal(res.status, 200, res.body);
  assert.deepEqual(JSON.parse(res.body), { subject: SHOP, groups: 'shop' });
  const record = audit.findLast((r) => r.event === 'http.authz.allow');
  assert.equal(record?.principal?.authenticatedBy, 'mtls');
  assert.equal(record?.rule, 'shop-reads-customers');
});

test('a peer of a trust domain tollgate does not trust is refused, though Envoy verified its chain', async () => {
  const res = await get('/api/whoami', pki.clients['stranger']!);
  assert.equal(res.status, 401, res.body);
  assert.match(res.body, /other\.test/);
});

test('a token through a mesh peer: the token is the caller, and the peer is recorded as the workload it came through', async () => {
  const token = await issuer.mint({ sub: 'alice', groups: ['analysts'] });
  const res = await get('/api/whoami', pki.clients['shop']!, { authorization: `Bearer ${token}` });
  assert.equal(res.status, 200, res.body);
  assert.deepEqual(JSON.parse(res.body), { subject: 'alice', groups: 'analysts' });
  const record = audit.findLast((r) => r.event === 'http.authz.allow');
  assert.equal(record?.principal?.subject, 'alice');
  assert.equal((record?.details as { peer?: string }).peer, SHOP);
});
