/**
 * @module scripts/lib/certs
 * Throwaway X.509 material for tests of mTLS listeners, made with the `openssl` CLI (OpenSSL 3): a CA, server
 * certificates with IP/DNS SANs, and client certificates with a URI SAN (a SPIFFE id, so they are X.509-SVIDs).
 * Keys are EC P-256 (fast to make), unencrypted, PEM (PKCS#8). Also bare RSA key pairs for signing JWTs (a
 * Kubernetes API server's service-account key). Never use any of it outside a test run.
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runChecked } from './process.ts';

export interface CertificateFiles {
  /** PEM certificate file. */
  readonly cert: string;
  /** PEM private key file (PKCS#8, unencrypted). */
  readonly key: string;
}

export interface CertificateAuthority extends CertificateFiles {
  readonly name: string;
}

export interface IssueOptions {
  /** Subject common name; also the file names (`<name>.crt`, `<name>.key`). Letters, digits, '.', '_', '-'. */
  readonly name: string;
  /** `server` gets extendedKeyUsage serverAuth, `client` clientAuth. */
  readonly usage: 'server' | 'client';
  readonly uris?: readonly string[];
  readonly ips?: readonly string[];
  readonly dns?: readonly string[];
  /** Validity in days from now; default 2. */
  readonly days?: number;
}

const SAFE_NAME = /^[A-Za-z0-9._-]+$/;
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function checkName(name: string): void {
  if (!SAFE_NAME.test(name)) throw new Error(`certs: expected a name of letters, digits, '.', '_' or '-', got ${JSON.stringify(name)}`);
}

const serial = () => `0x${randomBytes(16).toString('hex').replace(/^[89a-f]/, '1')}`;

/** A self-signed CA (`<dir>/<name>.crt`, `<dir>/<name>.key`), valid for `days` (default 2). */
export async function createCertificateAuthority(dir: string, name = 'ca', days = 2): Promise<CertificateAuthority> {
  checkName(name);
  await fs.promises.mkdir(dir, { recursive: true });
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  await runChecked(`creating CA ${name}`, 'openssl', [
    'req', '-x509', ...EC_KEY, '-keyout', key, '-out', cert, '-days', String(days), '-subj', `/CN=${name}`, '-set_serial', serial(),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { name, cert, key };
}

/** A leaf certificate signed by `ca`, written next to it (or into `dir`). */
export async function issueCertificate(ca: CertificateAuthority, options: IssueOptions, dir = path.dirname(ca.cert)): Promise<CertificateFiles> {
  checkName(options.name);
  const sans = [
    ...(options.uris ?? []).map((u) => `URI:${u}`),
    ...(options.ips ?? []).map((ip) => `IP:${ip}`),
    ...(options.dns ?? []).map((d) => `DNS:${d}`),
  ];
  for (const san of sans) if (/[,\n]/.test(san)) throw new Error(`certs: a SAN may not contain ',' or a newline: ${JSON.stringify(san)}`);
  await fs.promises.mkdir(dir, { recursive: true });
  const cert = path.join(dir, `${options.name}.crt`);
  const key = path.join(dir, `${options.name}.key`);
  const csr = path.join(dir, `${options.name}.csr`);
  const ext = path.join(dir, `${options.name}.ext`);
  await fs.promises.writeFile(ext, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${options.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
    ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
    '',
  ].join('\n'));
  try {
    await runChecked(`creating the key and CSR of ${options.name}`, 'openssl', ['req', '-new', ...EC_KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${options.name}`]);
    await runChecked(`signing ${options.name} with CA ${ca.name}`, 'openssl', [
      'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', serial(), '-days', String(options.days ?? 2),
      '-extfile', ext, '-out', cert,
    ]);
  } finally {
    await fs.promises.rm(csr, { force: true });
    await fs.promises.rm(ext, { force: true });
  }
  return { cert, key };
}

export interface MtlsTestCertificates {
  readonly dir: string;
  readonly ca: CertificateAuthority;
  /** For a listener on 127.0.0.1 (IP SAN 127.0.0.1, DNS SAN localhost). */
  readonly server: CertificateFiles;
  /** One client certificate per entry of `clients`, keyed like it. */
  readonly clients: Readonly<Record<string, CertificateFiles>>;
}

/**
 * A CA, a server certificate for 127.0.0.1 and one client certificate per `clients` entry (name → SPIFFE id, the
 * only URI SAN), all in `dir`. Default client: `orders-writer` = spiffe://mesh.test/ns/shop/sa/orders-writer.
 */
export async function createMtlsTestCertificates(dir: string, clients: Readonly<Record<string, string>> = {
  'orders-writer': 'spiffe://mesh.test/ns/shop/sa/orders-writer',
}): Promise<MtlsTestCertificates> {
  const ca = await createCertificateAuthority(dir);
  const server = await issueCertificate(ca, { name: 'server', usage: 'server', ips: ['127.0.0.1'], dns: ['localhost'] });
  const issued: Record<string, CertificateFiles> = {};
  for (const [name, spiffeId] of Object.entries(clients)) {
    issued[name] = await issueCertificate(ca, { name, usage: 'client', uris: [spiffeId] });
  }
  return { dir, ca, server, clients: issued };
}

export interface KeyPairFiles {
  /** PEM private key file (PKCS#8, unencrypted). */
  readonly privateKey: string;
  /** PEM public key file (SubjectPublicKeyInfo, `BEGIN PUBLIC KEY`). */
  readonly publicKey: string;
}

/**
 * An RSA-2048 key pair (`<dir>/<name>.key`, `<dir>/<name>.pub`) for signing RS256 JWTs. RSA, not EC like the
 * certificates: RS256 is what every JWT verifier accepts and what Kubernetes' service-account tokens use by default.
 */
export async function createRsaKeyPair(dir: string, name: string): Promise<KeyPairFiles> {
  checkName(name);
  await fs.promises.mkdir(dir, { recursive: true });
  const { privateKey, publicKey } = await new Promise<{ privateKey: string; publicKey: string }>((resolve, reject) => {
    generateKeyPair('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    }, (err, pub, priv) => (err === null ? resolve({ privateKey: priv, publicKey: pub }) : reject(new Error(`certs: generating RSA key ${name} failed: ${err.message}`, { cause: err }))));
  });
  const files = { privateKey: path.join(dir, `${name}.key`), publicKey: path.join(dir, `${name}.pub`) };
  await fs.promises.writeFile(files.privateKey, privateKey, { mode: 0o600 });
  await fs.promises.writeFile(files.publicKey, publicKey);
  return files;
}
