import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { createMtlsIdentities, parseSpiffeId, MtlsError, type MtlsErrorCode } from '../../src/identity/mtls.ts';
import { createMtlsTestCertificates, issueCertificate, type MtlsTestCertificates } from '../../scripts/lib/certs.ts';
import { RUN_DIR } from '../../scripts/lib/paths.ts';

const WRITER = 'spiffe://mesh.test/ns/shop/sa/orders-writer';
let pki: MtlsTestCertificates;
let dir: string;
const pem = (file: string) => encodeURIComponent(fs.readFileSync(file, 'utf8'));

before(async () => {
  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  dir = await fs.promises.mkdtemp(path.join(RUN_DIR, 'mtls-unit-'));
  pki = await createMtlsTestCertificates(dir, { writer: WRITER, other: 'spiffe://other.test/ns/x/sa/y' });
});
after(async () => { if (dir) await fs.promises.rm(dir, { recursive: true, force: true }); });

const identities = () => createMtlsIdentities({
  trustDomains: ['mesh.test'],
  groups: [
    { subject: 'spiffe://mesh.test/ns/shop/*', groups: ['shop'] },
    { subject: ['spiffe://mesh.test/ns/*/sa/orders-*'], groups: ['orders', 'shop'] },
    { subject: 'spiffe://mesh.test/ns/billing/*', groups: ['billing'] },
  ],
});

function refused(fn: () => unknown, code: MtlsErrorCode, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MtlsError, `expected MtlsError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test('a SPIFFE id of a trusted domain becomes an mtls principal with the mapped groups, de-duplicated in order', () => {
  const p = identities().authenticatePeer({ principal: WRITER });
  assert.deepEqual(p, { subject: WRITER, groups: ['shop', 'orders'], issuer: 'spiffe://mesh.test', authenticatedBy: 'mtls' });
});

test('no mapping matching: no groups', () => {
  assert.deepEqual(identities().authenticatePeer({ principal: 'spiffe://mesh.test/ns/ops/sa/x' }).groups, []);
});

test('with the certificate: expiresAt is its notAfter in epoch seconds', () => {
  const p = identities().authenticatePeer({ principal: WRITER, certificate: pem(pki.clients['writer']!.cert) });
  const notAfter = new X509Certificate(fs.readFileSync(pki.clients['writer']!.cert)).validToDate.getTime();
  assert.equal(p.expiresAt, Math.floor(notAfter / 1000));
});

test('no peer principal (no client certificate): peer_principal_missing', () => {
  refused(() => identities().authenticatePeer({ principal: '' }), 'peer_principal_missing');
  refused(() => identities().authenticatePeer(undefined), 'peer_principal_missing');
  refused(() => identities().authenticatePeer({}), 'peer_principal_missing');
});

test('an id of another trust domain: trust_domain_unknown, naming both', () => {
  refused(() => identities().authenticatePeer({ principal: 'spiffe://other.test/ns/shop/sa/x' }), 'trust_domain_unknown', /"mesh\.test".*"other\.test"/);
});

test('a trust domain is matched exactly, not as a suffix or prefix', () => {
  refused(() => identities().authenticatePeer({ principal: 'spiffe://evil-mesh.test/ns/shop/sa/x' }), 'trust_domain_unknown');
  refused(() => identities().authenticatePeer({ principal: 'spiffe://mesh.test.evil/ns/shop/sa/x' }), 'trust_domain_unknown');
});

test('malformed ids are refused: Envoy falls back to a DNS SAN or the subject DN when there is no URI SAN', () => {
  for (const principal of [
    'orders-writer.mesh.test', // a DNS SAN
    'CN=orders-writer,O=shop', // a subject DN
    'https://mesh.test/ns/shop',
    'SPIFFE://mesh.test/ns/shop',
    'spiffe://Mesh.test/ns/shop',
    'spiffe://mesh.test:8443/ns/shop',
    'spiffe://user@mesh.test/ns/shop',
    'spiffe:///ns/shop',
    'spiffe://mesh.test/ns//shop',
    'spiffe://mesh.test/ns/shop/',
    'spiffe://mesh.test/ns/../admin',
    'spiffe://mesh.test/ns/./shop',
    'spiffe://mesh.test/ns/shop?x=1',
    'spiffe://mesh.test/ns/shop#frag',
    'spiffe://mesh.test/ns/sh%6fp',
    `spiffe://mesh.test/${'a'.repeat(2048)}`,
  ]) {
    refused(() => identities().authenticatePeer({ principal }), 'spiffe_id_malformed');
  }
});

test('parseSpiffeId splits trust domain and path', () => {
  assert.deepEqual(parseSpiffeId('spiffe://mesh.test/ns/shop/sa/a_b-c.d'), { trustDomain: 'mesh.test', path: '/ns/shop/sa/a_b-c.d' });
  assert.deepEqual(parseSpiffeId('spiffe://mesh.test'), { trustDomain: 'mesh.test', path: '' });
});

test('a certificate that does not carry the principal: certificate_mismatch', () => {
  refused(() => identities().authenticatePeer({ principal: WRITER, certificate: pem(pki.server.cert) }), 'certificate_mismatch', /found none/);
  refused(() => identities().authenticatePeer({ principal: 'spiffe://mesh.test/ns/shop/sa/someone-else', certificate: pem(pki.clients['writer']!.cert) }), 'certificate_mismatch');
});

test('a certificate with two URI SANs is no X.509-SVID: certificate_mismatch', async () => {
  const two = await issueCertificate(pki.ca, { name: 'two-uris', usage: 'client', uris: [WRITER, 'spiffe://mesh.test/ns/shop/sa/other'] });
  refused(() => identities().authenticatePeer({ principal: WRITER, certificate: pem(two.cert) }), 'certificate_mismatch');
});

test('garbage in place of the certificate: certificate_malformed', () => {
  refused(() => identities().authenticatePeer({ principal: WRITER, certificate: 'not%20a%20certificate' }), 'certificate_malformed');
  refused(() => identities().authenticatePeer({ principal: WRITER, certificate: '%E0%A4%A' }), 'certificate_malformed');
});

test('an expired certificate: certificate_expired', () => {
  const cert = new X509Certificate(fs.readFileSync(pki.clients['writer']!.cert));
  refused(() => identities().authenticatePeer({ principal: WRITER, certificate: pem(pki.clients['writer']!.cert) }, cert.validToDate.getTime() + 1000), 'certificate_expired');
});

test('config mistakes fail when the identities are built', () => {
  assert.throws(() => createMtlsIdentities({ trustDomains: [] }), /at least one trust domain/);
  assert.throws(() => createMtlsIdentities({ trustDomains: ['Mesh.Test'] }), /not a SPIFFE trust domain/);
});
