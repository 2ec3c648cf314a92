/**
 * ext_authz checks from Envoy's network filter (an mTLS Kafka listener): no HTTP request, only the connection's
 * peers. Requests and responses go through the real protobuf codecs, so the shapes are what Envoy sends and reads.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import pino from 'pino';
import { createAuthzHandler, type AuthzHooks, type CheckRequestLike, type CheckResponseLike } from '../../src/http/authz.ts';
import { createMtlsIdentities, type MtlsIdentities } from '../../src/identity/mtls.ts';
import { authorizationService } from '../../src/grpc/protos.ts';
import { peerPrincipal, NETWORK_EXT_AUTHZ_NAMESPACE } from '../../src/kafka/service.ts';
import { compilePolicy } from '../../src/policy/engine.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import { createMtlsTestCertificates, type MtlsTestCertificates } from '../../scripts/lib/certs.ts';
import { RUN_DIR } from '../../scripts/lib/paths.ts';

const WRITER = 'spiffe://mesh.test/ns/shop/sa/orders-writer';
let pki: MtlsTestCertificates;
let dir: string;

before(async () => {
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  dir = await fs.promises.mkdtemp(path.join(RUN_DIR, 'authz-network-'));
  pki = await createMtlsTestCertificates(dir, { writer: WRITER });
});
after(async () => { if (dir) await fs.promises.rm(dir, { recursive: true, force: true }); });

const MESH = createMtlsIdentities({ trustDomains: ['mesh.test'], groups: [{ subject: 'spiffe://mesh.test/ns/shop/*', groups: ['shop'] }] });

function setup(mtls: MtlsIdentities | null = MESH) {
  const audit: AuditRecord[] = [];
  const decisions: Array<[string, string | null]> = [];
  const hooks: AuthzHooks = { onDecision: (effect, rule) => { decisions.push([effect, rule]); } };
  const check = createAuthzHandler({
    authenticate: async () => { throw new Error('a network check must not look for a bearer token'); },
    policy: () => compilePolicy([]),
    credentials: () => [],
    audit: { write: (r) => audit.push(r) },
    logger: pino({ level: 'silent' }),
    hooks,
    ...(mtls !== null && { mtls: () => mtls }),
  });
  return { check, audit, decisions };
}

/** A CheckRequest as Envoy's network ext_authz filter builds it, decoded as tollgate's gRPC server decodes it. */
function networkCheck(source: { principal?: string; certificate?: string }): CheckRequestLike {
  const bytes = authorizationService.Check.requestSerialize({
    attributes: {
      source: { address: { socket_address: { address: '127.0.0.9', port_value: 40123 } }, ...source },
      destination: { address: { socket_address: { address: '127.0.0.1', port_value: 19092 } }, principal: 'spiffe://mesh.test/kafka' },
    },
  });
  return authorizationService.Check.requestDeserialize(bytes) as CheckRequestLike;
}

/** What Envoy reads back from the response. */
function onTheWire(res: CheckResponseLike) {
  return authorizationService.Check.responseDeserialize(authorizationService.Check.responseSerialize(res as never));
}

const certificateOf = (file: string) => encodeURIComponent(fs.readFileSync(file, 'utf8'));

test('a decoded network check has no HTTP request: the mTLS path answers it', async () => {
  const req = networkCheck({ principal: WRITER });
  assert.equal(req.attributes?.request ?? null, null);
  const { check } = setup();
  assert.equal((await check(req)).status.code, 0);
});

test('a SPIFFE id of the trust domain: OK with the principal as dynamic metadata, which network ext_proc reads back', async () => {
  const { check, audit, decisions } = setup();
  const certificate = certificateOf(pki.clients['writer']!.cert);
  const res = onTheWire(await check(networkCheck({ principal: WRITER, certificate })));
  const expiresAt = Math.floor(new X509Certificate(fs.readFileSync(pki.clients['writer']!.cert)).validToDate.getTime() / 1000);
  assert.equal(res.status?.code, 0);
  assert.equal(res.http_response, undefined, 'a network check gets no HTTP response parts');
  // Envoy stores the Struct as the connection's metadata under its own namespace; ext_proc forwards it as is.
  const principal = peerPrincipal({ filter_metadata: { [NETWORK_EXT_AUTHZ_NAMESPACE]: res.dynamic_metadata } });
  assert.deepEqual(principal, { subject: WRITER, groups: ['shop'], issuer: 'spiffe://mesh.test', authenticatedBy: 'mtls', expiresAt });
  assert.equal(audit.length, 1);
  assert.equal(audit[0]?.event, 'kafka.mtls.allowed');
  assert.equal(audit[0]?.path, 'kafka');
  assert.deepEqual(audit[0]?.principal, principal);
  assert.deepEqual(audit[0]?.connection, { 'source.address': '127.0.0.9', 'source.port': 40123 });
  assert.deepEqual(decisions, [['allow', null]]);
});

test('without include_peer_certificate: allowed, no expires_at', async () => {
  const { check } = setup();
  const res = onTheWire(await check(networkCheck({ principal: WRITER })));
  assert.equal(res.status?.code, 0);
  assert.equal(res.dynamic_metadata?.fields['expires_at'], undefined);
  assert.equal(res.dynamic_metadata?.fields['authenticated_by']?.stringValue, 'mtls');
});

const denials: Array<[string, { principal?: string; certificate?: string }, string]> = [
  ['no client certificate (no principal)', {}, 'peer_principal_missing'],
  ['another trust domain', { principal: 'spiffe://other.test/ns/shop/sa/orders-writer' }, 'trust_domain_unknown'],
  ['a principal that is no SPIFFE id (subject DN)', { principal: 'CN=orders-writer' }, 'spiffe_id_malformed'],
  ['a certificate of someone else', { principal: 'spiffe://mesh.test/ns/shop/sa/intruder' }, 'certificate_mismatch'],
];
for (const [name, source, code] of denials) {
  test(`denied: ${name} → PERMISSION_DENIED, kafka.mtls.denied (${code})`, async () => {
    const { check, audit, decisions } = setup();
    const withCert = code === 'certificate_mismatch' ? { ...source, certificate: certificateOf(pki.clients['writer']!.cert) } : source;
    const res = onTheWire(await check(networkCheck(withCert)));
    assert.equal(res.status?.code, 7);
    assert.ok((res.status?.message ?? '').length > 0, 'the status message says why');
    assert.equal(res.dynamic_metadata, null, 'no principal on a denied connection');
    assert.equal(res.http_response, undefined);
    assert.equal(audit[0]?.event, 'kafka.mtls.denied');
    assert.equal(audit[0]?.principal, undefined);
    assert.equal((audit[0]?.details as { code: string }).code, code);
    assert.equal(audit[0]?.reason, res.status?.message);
    assert.deepEqual(decisions, [['unauthenticated', null]]);
  });
}

test('identity.mtls absent: every network check is denied, saying so', async () => {
  const { check, audit } = setup(null);
  const res = await check(networkCheck({ principal: WRITER }));
  assert.equal(res.status.code, 7);
  assert.match(res.status.message, /mTLS identities are not configured/);
  assert.equal((audit[0]?.details as { code: string }).code, 'mtls_not_configured');
});

test('HTTP checks are unchanged by mTLS identities: they still need a bearer token', async () => {
  const { check, audit } = setup();
  const res = await check({ attributes: { source: { principal: WRITER }, request: { http: { method: 'GET', path: '/x', host: 'h', headers: {} } } } });
  assert.equal(res.status.code, 16);
  assert.equal(audit[0]?.event, 'http.authz.unauthenticated');
});
