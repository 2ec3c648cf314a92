/**
 * @module identity/mtls
 * The principal of an mTLS peer, as Envoy reports it to ext_authz: the client certificate's URI SAN, a SPIFFE id
 * (`spiffe://<trust domain>/<path>`), and with `include_peer_certificate` the certificate itself (URL-encoded PEM).
 *
 * Trust: Envoy terminated TLS and verified the certificate chain against the listener's CA
 * (`validation_context.trusted_ca`) during the handshake, so the principal string it reports is taken as proven.
 * tollgate does not verify the chain again (it never sees the CA); it only decides whether that proven id belongs to
 * a trust domain it is configured to accept, which groups it gets, and when the identity ends (the certificate's
 * `notAfter`). A certificate that Envoy sends along must agree with the principal, or the check fails closed.
 *
 * Everything configurable is compiled when the identities are built; `authenticatePeer` does per-connection work only.
 */
import { X509Certificate } from 'node:crypto';
import type { Principal } from '../core/principal.ts';
import { compilePatterns, type Matcher } from '../policy/glob.ts';
import { describeValue } from './errors.ts';
import type { GroupMapper } from './group-mappings.ts';

export const MTLS_ERROR_CODES = [
  'mtls_not_configured',
  'peer_principal_missing',
  'spiffe_id_malformed',
  'trust_domain_unknown',
  'certificate_malformed',
  'certificate_mismatch',
  'certificate_expired',
] as const;

export type MtlsErrorCode = (typeof MTLS_ERROR_CODES)[number];

/** Why a peer was refused; `message` says what was expected and found and is safe to log and audit. */
export class MtlsError extends Error {
  readonly code: MtlsErrorCode;

  constructor(code: MtlsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MtlsError';
    this.code = code;
  }
}

export interface MtlsGroupMapping {
  /** A SPIFFE id, or globs over them (`spiffe://mesh.test/ns/shop/*`). */
  readonly subject: string | readonly string[];
  readonly groups: readonly string[];
}

export interface MtlsOptions {
  /** Trust domains whose ids are accepted (`mesh.test`), lower-case as SPIFFE requires. */
  readonly trustDomains: readonly string[];
  /** Every mapping whose subject matches contributes its groups (config order, de-duplicated). */
  readonly groups?: readonly MtlsGroupMapping[];
  /** identity.groupMappings, applied after `groups` (there are no claims: subject, issuer and method only). */
  readonly mapGroups?: GroupMapper;
}

/** What Envoy's CheckRequest says about the peer (`attributes.source`). */
export interface PeerIdentity {
  /** URI SAN (first), else DNS SAN, else the subject DN: Envoy's choice. Empty without a client certificate. */
  readonly principal?: string | null;
  /** URL-encoded PEM, only with the ext_authz filter's `include_peer_certificate: true`. */
  readonly certificate?: string | null;
}

export interface SpiffeId {
  readonly trustDomain: string;
  /** `/ns/shop/sa/orders-writer`; empty for the trust domain itself. */
  readonly path: string;
}

// SPIFFE-ID spec §2: scheme "spiffe", a trust domain of lower-case letters, digits, ".", "-" and "_" (no port, no
// user info), then path segments of letters, digits, ".", "-" and "_" that are neither empty, "." nor "..".
// No query, no fragment, no percent-encoding; at most 2048 bytes.
const SPIFFE_PREFIX = 'spiffe://';
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_SPIFFE_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;

export function isTrustDomainName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_TRUST_DOMAIN_LENGTH && TRUST_DOMAIN.test(name);
}

/** Parses a SPIFFE id strictly; throws `spiffe_id_malformed` naming what is wrong. */
export function parseSpiffeId(id: string): SpiffeId {
  const bad = (what: string) => new MtlsError('spiffe_id_malformed', `expected a SPIFFE id (spiffe://<trust domain>/<path>), found ${describeValue(id)}: ${what}`);
  if (Buffer.byteLength(id) > MAX_SPIFFE_ID_BYTES) throw bad(`longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  if (!id.startsWith(SPIFFE_PREFIX)) throw bad('the scheme is not spiffe://');
  const rest = id.slice(SPIFFE_PREFIX.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (!isTrustDomainName(trustDomain)) throw bad('the trust domain must be lower-case letters, digits, ".", "-" or "_"');
  if (path.length > 0) {
    for (const segment of path.slice(1).split('/')) {
      if (segment === '' || segment === '.' || segment === '..' || !SEGMENT.test(segment)) {
        throw bad('path segments must be non-empty letters, digits, ".", "-" or "_" (not "." or "..")');
      }
    }
  }
  return { trustDomain, path };
}

export interface MtlsIdentities {
  readonly trustDomains: readonly string[];
  /**
   * The principal of a peer Envoy authenticated with a client certificate: subject = the SPIFFE id, issuer =
   * `spiffe://<trust domain>`, groups from the mappings, `expiresAt` = the certificate's notAfter (when Envoy sent
   * the certificate). Throws MtlsError.
   */
  authenticatePeer(peer: PeerIdentity | null | undefined, nowMs?: number): Principal;
}

interface CompiledMapping { readonly matches: Matcher; readonly groups: readonly string[] }

export function createMtlsIdentities(options: MtlsOptions): MtlsIdentities {
  if (options.trustDomains.length === 0) throw new TypeError('identity.mtls: expected at least one trust domain');
  for (const domain of options.trustDomains) {
    if (!isTrustDomainName(domain)) throw new TypeError(`identity.mtls: ${describeValue(domain)} is not a SPIFFE trust domain name`);
  }
  const trusted = new Set(options.trustDomains);
  const trustDomains = [...trusted];
  const mappings: CompiledMapping[] = (options.groups ?? []).map((m) => ({ matches: compilePatterns(m.subject) ?? (() => false), groups: m.groups }));

  const groupsOf = (subject: string): string[] => {
    const out = new Set<string>();
    for (const m of mappings) if (m.matches(subject)) for (const g of m.groups) out.add(g);
    return [...out];
  };

  return {
    trustDomains,
    authenticatePeer(peer, nowMs = Date.now()) {
      const principal = peer?.principal ?? '';
      if (principal.length === 0) {
        throw new MtlsError('peer_principal_missing', 'expected a client certificate with a SPIFFE id (URI SAN), found no peer principal');
      }
      const id = parseSpiffeId(principal);
      if (!trusted.has(id.trustDomain)) {
        throw new MtlsError('trust_domain_unknown', `expected a SPIFFE id in trust domain ${trustDomains.map((d) => describeValue(d)).join(', ')}, found ${describeValue(id.trustDomain)}`);
      }
      const certificate = peer?.certificate ?? '';
      const expiresAt = certificate.length === 0 ? undefined : certificateExpiry(certificate, principal, nowMs);
      const peerPrincipal: Principal = {
        subject: principal,
        groups: groupsOf(principal),
        issuer: `${SPIFFE_PREFIX}${id.trustDomain}`,
        authenticatedBy: 'mtls',
        ...(expiresAt !== undefined && { expiresAt }),
      };
      return options.mapGroups ? options.mapGroups(peerPrincipal) : peerPrincipal;
    },
  };
}

/**
 * The certificate's notAfter in epoch seconds, after checking that it is the certificate of `principal` (an X.509
 * SVID carries exactly one URI SAN) and has not expired by `nowMs`.
 */
function certificateExpiry(urlEncodedPem: string, principal: string, nowMs: number): number {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(decodeURIComponent(urlEncodedPem));
  } catch (error) {
    throw new MtlsError('certificate_malformed', 'expected the peer certificate as URL-encoded PEM, found something else', { cause: error });
  }
  // Node lists SANs as `URI:…, DNS:…`; values with unusual characters are JSON-quoted, and a SPIFFE id has none of
  // those (it was parsed above), so comparing whole entries is exact.
  const uris = (cert.subjectAltName ?? '').split(', ').filter((entry) => entry.startsWith('URI:') || entry.startsWith('"URI:'));
  if (uris.length !== 1 || uris[0] !== `URI:${principal}`) {
    throw new MtlsError('certificate_mismatch', `expected the peer certificate to carry exactly the URI SAN ${describeValue(principal)}, found ${uris.length === 0 ? 'none' : describeValue(uris.join(', '))}`);
  }
  const notAfter = cert.validToDate.getTime();
  if (!Number.isFinite(notAfter)) throw new MtlsError('certificate_malformed', `expected a notAfter date in the peer certificate, found ${describeValue(cert.validTo)}`);
  if (notAfter <= nowMs) throw new MtlsError('certificate_expired', `expected an unexpired peer certificate, found one that expired at ${cert.validToDate.toISOString()}`);
  return Math.floor(notAfter / 1000);
}
