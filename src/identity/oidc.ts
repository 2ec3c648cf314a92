/**
 * @module identity/oidc
 * Verifies JWT access/ID tokens of one OIDC issuer and turns them into a Principal.
 *
 * - Asymmetric signatures only: keys come from the issuer's JWKS, so shared-secret (HS*) and unsigned (`none`)
 *   algorithms are refused when the verifier is built, and a token whose `alg` is not in the allow-list is rejected
 *   before any key is looked up (so the RSA-public-key-as-HMAC-secret confusion cannot arise, and such tokens never
 *   cause a JWKS fetch).
 * - Issuer discovery at start: the discovery document's `issuer` must equal the configured issuer exactly.
 * - Checks iss, aud (any configured audience), exp (required), nbf, with an optional clock tolerance (default 0).
 * - Verified tokens are cached (LRU keyed by the token's SHA-256) until the token's exp, never past it; failures
 *   are not cached. Concurrent verifications of the same token share one verification.
 *
 * - For a Kubernetes cluster issuer (or a private IdP): keys from a fixed `jwksUri` instead of discovery, a CA bundle
 *   of its own, and a bearer credential for the fetches, sent only to the origin the keys are configured at.
 * - A `refine` hook turns the verified claims into the principal a caller wants (a service account, mapped groups);
 *   what it returns is what is cached.
 *
 * Start-up and retries: `start()` makes ONE attempt (discovery + first JWKS fetch) and rejects with
 * `discovery_failed` or `jwks_unavailable`; it does not retry — `Authenticator.start()` retries in the background
 * with backoff. Until a verifier is ready, `verify()` fails closed; it re-attempts start-up lazily, at most once per
 * `jwksRefreshCooldownMs`.
 */
import { createHash } from 'node:crypto';
import https from 'node:https';
import { decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JWSHeaderParameters, JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Logger as PinoLogger } from 'pino';
import type { Principal } from '../core/principal.ts';
import { readClaim, groupsFromClaim } from './claims.ts';
import { IdentityError, describeValue } from './errors.ts';
import type { IdentityErrorCode } from './errors.ts';
import { fetchJson, withAccess, type HttpAccess } from './fetch-json.ts';
import { JwksCache } from './jwks.ts';
import type { JwksFetchEvent } from './jwks.ts';

export { IdentityError, IDENTITY_ERROR_CODES, isIdentityError } from './errors.ts';
export type { IdentityErrorCode } from './errors.ts';

/** Signature algorithms this verifier accepts in its allow-list (all asymmetric). */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

export interface OidcVerifierOptions {
  /** The issuer exactly as it appears in `iss` and in the discovery document. */
  issuer: string;
  /** A token is accepted when its `aud` contains at least one of these. */
  audiences: string[];
  /** Claim holding the groups; a dotted path is allowed ("realm_access.roles"). */
  groupsClaim: string;
  /** Claim holding the subject; default "sub". A dotted path is allowed. */
  subjectClaim?: string;
  /** Allow-listed signature algorithms; asymmetric only. */
  algorithms: string[];
  /** Leeway for exp/nbf, seconds; default 0. The verified-token cache never extends past exp regardless. */
  clockToleranceSeconds?: number;
  /** Default: issuer (without a trailing slash) + "/.well-known/openid-configuration". */
  discoveryUrl?: string;
  /** Where the keys are; when set, discovery is skipped (the issuer is still checked in every token). */
  jwksUri?: string;
  /** PEM CA bundle trusted for discovery and JWKS fetches instead of the system roots (a cluster's CA). */
  ca?: string;
  /**
   * A bearer token sent with discovery and JWKS fetches, read anew for each (it may rotate). Only ever sent to the
   * origin of `jwksUri`, or of `discoveryUrl` when keys are discovered: a discovery document naming keys elsewhere
   * does not get tollgate's credential.
   */
  bearerToken?: () => string;
  /**
   * Turns the principal built from subjectClaim/groupsClaim into the one to use, with the verified claims at hand
   * (Kubernetes service accounts, group mappings). Runs once per verified token; the result is what is cached. May
   * throw IdentityError.
   */
  refine?: (principal: Principal, claims: Readonly<JWTPayload>) => Principal;
  /** Minimum time between two JWKS fetches caused by unknown kids (and between failed fetches); default 30000. */
  jwksRefreshCooldownMs?: number;
  /** Keys older than this are refreshed before use; default 600000. Refreshed in the background at 80 %. */
  jwksMaxAgeMs?: number;
  /** Verified tokens kept; default 10000. */
  tokenCacheMax?: number;
  /** Per HTTP request to the issuer; default 5000. */
  fetchTimeoutMs?: number;
}

/** Any pino logger (only info and warn are used). */
export type IdentityLogger = Pick<PinoLogger, 'info' | 'warn'>;

export interface OidcVerifierHooks {
  /** Key refreshes are logged at info, failures at warn. Tokens are never logged. */
  logger?: IdentityLogger;
  /** Called after every JWKS fetch attempt. */
  onJwksFetch?: (issuer: string, ok: boolean) => void;
}

export interface OidcHealth {
  issuer: string;
  /** Discovery done and a JWKS younger than jwksMaxAgeMs is loaded. */
  ready: boolean;
  /** The most recent discovery or JWKS failure; cleared once the JWKS loads again. */
  lastError?: string;
  /** JWKS HTTP fetches attempted. */
  jwksFetches: number;
  /** When the current JWKS was fetched (ISO 8601). */
  lastJwksFetchAt?: string;
  jwksUri?: string;
  /** Key ids in the current JWKS. */
  kids: string[];
  /** verify() calls answered from the verified-token cache (no parsing, no crypto). */
  tokenCacheHits: number;
  tokenCacheSize: number;
}

/** Longest token accepted; anything larger is rejected before it is parsed. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

const DEFAULTS = {
  subjectClaim: 'sub',
  clockToleranceSeconds: 0,
  jwksRefreshCooldownMs: 30_000,
  jwksMaxAgeMs: 600_000,
  tokenCacheMax: 10_000,
  fetchTimeoutMs: 5_000,
} as const;

interface Settings {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly groupsClaim: string;
  readonly subjectClaim: string;
  readonly algorithms: readonly string[];
  readonly clockToleranceSeconds: number;
  readonly discoveryUrl: string;
  readonly jwksUri: string | undefined;
  readonly access: HttpAccess | undefined;
  readonly refine: OidcVerifierOptions['refine'];
  readonly jwksRefreshCooldownMs: number;
  readonly jwksMaxAgeMs: number;
  readonly tokenCacheMax: number;
  readonly fetchTimeoutMs: number;
}

export class OidcVerifier {
  readonly issuer: string;
  readonly #settings: Settings;
  readonly #hooks: OidcVerifierHooks;
  readonly #cache: LRUCache<string, Principal>;
  readonly #inflight = new Map<string, Promise<Principal>>();
  #jwks: JwksCache | undefined;
  #startPending: Promise<void> | undefined;
  #lastStartAttemptAt: number | undefined;
  #lastStartError: IdentityError | undefined;
  #cacheHits = 0;

  constructor(options: OidcVerifierOptions, hooks: OidcVerifierHooks = {}) {
    this.#settings = validateOptions(options);
    this.issuer = this.#settings.issuer;
    this.#hooks = hooks;
    this.#cache = new LRUCache<string, Principal>({ max: this.#settings.tokenCacheMax });
  }

  /**
   * One start-up attempt: discovery (unless already done) and a JWKS fetch. Rejects with `discovery_failed` or
   * `jwks_unavailable`; never retries by itself. Calling it again after success refreshes the keys.
   */
  start(): Promise<void> {
    if (this.#startPending) return this.#startPending;
    const pending = this.#start().finally(() => {
      if (this.#startPending === pending) this.#startPending = undefined;
    });
    this.#startPending = pending;
    return pending;
  }

  /** Verifies a compact JWT and returns its principal; rejects with IdentityError. */
  verify(token: string): Promise<Principal> {
    if (typeof token !== 'string' || token.length === 0) {
      return Promise.reject(new IdentityError('token_missing', 'expected a token, found none'));
    }
    if (token.length > MAX_TOKEN_LENGTH) {
      return Promise.reject(
        new IdentityError(
          'token_malformed',
          `expected a token of at most ${MAX_TOKEN_LENGTH} characters, found ${token.length}`,
        ),
      );
    }
    const key = createHash('sha256').update(token).digest('base64url');
    const hit = this.#cache.get(key);
    if (hit !== undefined) {
      if (hit.expiresAt !== undefined && hit.expiresAt * 1000 > Date.now()) {
        this.#cacheHits += 1;
        return Promise.resolve(hit);
      }
      this.#cache.delete(key);
    }
    const inflight = this.#inflight.get(key);
    if (inflight) return inflight;
    const pending = this.#verifyUncached(token, key).finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, pending);
    return pending;
  }

  health(): OidcHealth {
    const jwks = this.#jwks;
    // A JWKS failure is reported by the cache; before the first load, the start-up error says why.
    const lastError = jwks?.lastError ?? (jwks?.loadedAt === undefined ? this.#lastStartError?.message : undefined);
    const health: OidcHealth = {
      issuer: this.issuer,
      ready: jwks?.fresh() ?? false,
      jwksFetches: jwks?.fetches ?? 0,
      kids: [...(jwks?.kids ?? [])],
      tokenCacheHits: this.#cacheHits,
      tokenCacheSize: this.#cache.size,
    };
    if (lastError !== undefined) health.lastError = lastError;
    if (jwks?.loadedAt !== undefined) health.lastJwksFetchAt = new Date(jwks.loadedAt).toISOString();
    if (jwks) health.jwksUri = jwks.uri;
    return health;
  }

  async #start(): Promise<void> {
    this.#lastStartAttemptAt = Date.now();
    try {
      if (!this.#jwks) this.#jwks = await this.#discover();
      await this.#jwks.refresh('start');
      this.#lastStartError = undefined;
    } catch (error) {
      const identityError =
        error instanceof IdentityError
          ? error
          : new IdentityError('discovery_failed', `start-up of ${this.issuer} failed: ${String(error)}`);
      this.#lastStartError = identityError;
      throw identityError;
    }
  }

  async #discover(): Promise<JwksCache> {
    const { discoveryUrl, issuer, fetchTimeoutMs, access } = this.#settings;
    const logger = this.#hooks.logger;
    if (this.#settings.jwksUri !== undefined) return this.#jwksCache(this.#settings.jwksUri);
    let document: unknown;
    try {
      document = await fetchJson(discoveryUrl, withAccess(discoveryUrl, access, { timeoutMs: fetchTimeoutMs }));
    } catch (error) {
      const message = `expected the discovery document of ${issuer}, found an error: ${messageOf(error)}`;
      logger?.warn({ issuer, discoveryUrl, err: messageOf(error) }, 'OIDC discovery failed');
      throw new IdentityError('discovery_failed', message, { cause: error });
    }
    const fail = (what: string): never => {
      const message = `discovery document ${discoveryUrl}: ${what}`;
      logger?.warn({ issuer, discoveryUrl, err: what }, 'OIDC discovery failed');
      throw new IdentityError('discovery_failed', message);
    };
    if (document === null || typeof document !== 'object' || Array.isArray(document)) {
      return fail('expected a JSON object, found ' + (Array.isArray(document) ? 'an array' : typeof document));
    }
    const doc = document as Record<string, unknown>;
    if (doc.issuer !== issuer) {
      return fail(`expected issuer ${describeValue(issuer)}, found ${describeValue(doc.issuer)}`);
    }
    if (typeof doc.jwks_uri !== 'string') return fail(`expected a jwks_uri string, found ${describeValue(doc.jwks_uri)}`);
    let jwksUrl: URL;
    try {
      jwksUrl = new URL(doc.jwks_uri);
    } catch {
      return fail(`expected jwks_uri to be an absolute URL, found ${describeValue(doc.jwks_uri)}`);
    }
    const issuerProtocol = new URL(issuer).protocol;
    const allowed = issuerProtocol === 'https:' ? ['https:'] : ['https:', 'http:'];
    if (!allowed.includes(jwksUrl.protocol)) {
      return fail(`expected a jwks_uri with scheme ${allowed.join(' or ')}, found ${describeValue(jwksUrl.protocol)}`);
    }
    logger?.info({ issuer, discoveryUrl, jwksUri: jwksUrl.href }, 'OIDC discovery done');
    return this.#jwksCache(jwksUrl.href);
  }

  #jwksCache(uri: string): JwksCache {
    return new JwksCache({
      uri,
      issuer: this.issuer,
      cooldownMs: this.#settings.jwksRefreshCooldownMs,
      maxAgeMs: this.#settings.jwksMaxAgeMs,
      timeoutMs: this.#settings.fetchTimeoutMs,
      ...(this.#settings.access && { access: this.#settings.access }),
      onFetch: (event) => this.#onJwksFetch(event),
    });
  }

  #onJwksFetch(event: JwksFetchEvent): void {
    const logger = this.#hooks.logger;
    if (event.ok) {
      logger?.info(
        { issuer: this.issuer, jwksUri: event.uri, reason: event.reason, kids: event.kids, durationMs: event.durationMs },
        'JWKS loaded',
      );
    } else {
      logger?.warn(
        { issuer: this.issuer, jwksUri: event.uri, reason: event.reason, err: event.error, durationMs: event.durationMs },
        'JWKS fetch failed',
      );
    }
    try {
      this.#hooks.onJwksFetch?.(this.issuer, event.ok);
    } catch {
      // a metrics hook must not break verification
    }
  }

  async #ensureDiscovered(): Promise<JwksCache> {
    if (this.#jwks) return this.#jwks;
    if (this.#startPending) {
      await this.#startPending.catch(() => {});
    } else if (
      this.#lastStartAttemptAt === undefined ||
      Date.now() - this.#lastStartAttemptAt >= this.#settings.jwksRefreshCooldownMs
    ) {
      await this.start().catch(() => {});
    }
    if (this.#jwks) return this.#jwks;
    const cause = this.#lastStartError;
    throw new IdentityError(
      cause?.code ?? 'discovery_failed',
      `expected issuer ${this.issuer} to be ready, found it not started` + (cause ? `: ${cause.message}` : ''),
    );
  }

  async #verifyUncached(token: string, cacheKey: string): Promise<Principal> {
    const jwks = await this.#ensureDiscovered();
    const header = decodeHeader(token);
    const { algorithms, audiences, clockToleranceSeconds } = this.#settings;
    if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) {
      throw new IdentityError(
        'algorithm_not_allowed',
        `expected alg one of ${describeValue(algorithms)}, found ${describeValue(header.alg)}`,
      );
    }
    const keys = await jwks.keysFor(header);
    let payload: JWTPayload | undefined;
    let lastError: unknown;
    for (const key of keys) {
      try {
        ({ payload } = await jwtVerify(token, key, {
          issuer: this.issuer,
          audience: [...audiences],
          algorithms: [...algorithms],
          clockTolerance: clockToleranceSeconds,
          requiredClaims: ['exp'],
        }));
        break;
      } catch (error) {
        lastError = error;
        // With several candidate keys (no kid), a signature failure means "try the next one".
        if (!(error instanceof errors.JWSSignatureVerificationFailed)) break;
      }
    }
    if (payload === undefined) throw this.#mapError(lastError, header);

    // jose compares exp against whole seconds; be exact so a fractional exp is not honoured up to a second late.
    const exp = payload.exp as number;
    const nowMs = Date.now();
    if (exp * 1000 <= nowMs - clockToleranceSeconds * 1000) throw this.#expired(exp, nowMs);

    const subject = readClaim(payload, this.#settings.subjectClaim);
    if (typeof subject !== 'string' || subject.length === 0) {
      throw new IdentityError(
        'subject_missing',
        `expected a non-empty string in claim ${describeValue(this.#settings.subjectClaim)}, found ${
          subject === undefined ? 'none' : typeof subject === 'string' ? 'an empty string' : typeof subject
        }`,
      );
    }
    const groups = Object.freeze(groupsFromClaim(readClaim(payload, this.#settings.groupsClaim)));
    let principal: Principal = Object.freeze({
      subject,
      groups,
      issuer: this.issuer,
      authenticatedBy: 'oidc',
      expiresAt: exp,
    });
    if (this.#settings.refine) principal = Object.freeze(this.#settings.refine(principal, payload));
    const ttl = Math.floor(exp * 1000 - Date.now());
    if (ttl > 0) this.#cache.set(cacheKey, principal, { ttl });
    return principal;
  }

  #expired(exp: number, nowMs: number): IdentityError {
    return new IdentityError(
      'token_expired',
      `expected exp after ${new Date(nowMs).toISOString()} (clock tolerance ${this.#settings.clockToleranceSeconds} s), ` +
        `found exp ${isoOrValue(exp)}`,
    );
  }

  #mapError(error: unknown, header: JWSHeaderParameters): IdentityError {
    if (error instanceof IdentityError) return error;
    const { audiences, algorithms, clockToleranceSeconds } = this.#settings;
    if (error instanceof errors.JWTExpired) {
      return this.#expired(error.payload.exp as number, Date.now());
    }
    if (error instanceof errors.JWTClaimValidationFailed) {
      const payload = error.payload;
      const code = claimErrorCode(error.claim, error.reason);
      switch (code) {
        case 'issuer_mismatch':
          return new IdentityError(code, `expected iss ${describeValue(this.issuer)}, found ${describeValue(payload.iss)}`);
        case 'audience_mismatch':
          return new IdentityError(
            code,
            `expected aud to contain one of ${describeValue(audiences)}, found ${describeValue(payload.aud)}`,
          );
        case 'token_not_yet_valid':
          return new IdentityError(
            code,
            `expected nbf at or before ${new Date().toISOString()} (clock tolerance ${clockToleranceSeconds} s), ` +
              `found nbf ${isoOrValue(payload.nbf)}`,
          );
        default:
          return new IdentityError(
            'token_malformed',
            `expected a valid ${describeValue(error.claim)} claim, found ${error.reason === 'missing' ? 'none' : describeValue(payload[error.claim])}`,
          );
      }
    }
    if (error instanceof errors.JOSEAlgNotAllowed) {
      return new IdentityError(
        'algorithm_not_allowed',
        `expected alg one of ${describeValue(algorithms)}, found ${describeValue(header.alg)}`,
      );
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      const kid = header.kid === undefined ? 'the keys without kid' : `the key with kid ${describeValue(header.kid)}`;
      return new IdentityError(
        'signature_invalid',
        `expected a signature by ${kid} in the JWKS of ${this.issuer}, found one that does not verify`,
      );
    }
    if (
      error instanceof errors.JWSInvalid ||
      error instanceof errors.JWTInvalid ||
      error instanceof errors.JOSENotSupported
    ) {
      return new IdentityError('token_malformed', `expected a well-formed signed JWT, found: ${error.message}`);
    }
    // Anything else (a key jose refuses, e.g. an RSA modulus under 2048 bits): fail closed.
    return new IdentityError(
      'signature_invalid',
      `expected a signature verifiable with the JWKS of ${this.issuer}, found an error: ${messageOf(error)}`,
      { cause: error },
    );
  }
}

function claimErrorCode(claim: string, reason: string): IdentityErrorCode {
  if (reason === 'check_failed') {
    if (claim === 'iss') return 'issuer_mismatch';
    if (claim === 'aud') return 'audience_mismatch';
    if (claim === 'nbf') return 'token_not_yet_valid';
  }
  if (reason === 'missing') {
    if (claim === 'iss') return 'issuer_mismatch';
    if (claim === 'aud') return 'audience_mismatch';
  }
  return 'token_malformed';
}

function decodeHeader(token: string): JWSHeaderParameters {
  const segments = token.split('.').length;
  if (segments !== 3) {
    throw new IdentityError(
      'token_malformed',
      `expected a compact JWS of 3 dot-separated segments, found ${segments} segment${segments === 1 ? '' : 's'}`,
    );
  }
  try {
    return decodeProtectedHeader(token) as JWSHeaderParameters;
  } catch {
    throw new IdentityError('token_malformed', 'expected a base64url JSON object as the JWS header, found something else');
  }
}

function validateOptions(options: OidcVerifierOptions): Settings {
  const problem = (message: string): never => {
    throw new TypeError(`OIDC verifier for ${describeValue(options?.issuer)}: ${message}`);
  };
  if (typeof options !== 'object' || options === null) throw new TypeError('OIDC verifier: expected an options object');
  const { issuer } = options;
  if (typeof issuer !== 'string' || issuer.length === 0) problem('expected a non-empty issuer');
  let issuerUrl: URL | undefined;
  try {
    issuerUrl = new URL(issuer);
  } catch {
    problem('expected the issuer to be an absolute URL');
  }
  if (issuerUrl && issuerUrl.protocol !== 'https:' && issuerUrl.protocol !== 'http:') {
    problem(`expected an https (or http) issuer URL, found scheme ${issuerUrl.protocol}`);
  }
  if (!Array.isArray(options.audiences) || options.audiences.length === 0) problem('expected at least one audience');
  if (options.audiences.some((aud) => typeof aud !== 'string' || aud.length === 0)) {
    problem('expected audiences to be non-empty strings');
  }
  if (typeof options.groupsClaim !== 'string' || options.groupsClaim.length === 0) problem('expected a groupsClaim');
  const subjectClaim = options.subjectClaim ?? DEFAULTS.subjectClaim;
  if (typeof subjectClaim !== 'string' || subjectClaim.length === 0) problem('expected subjectClaim to be non-empty');
  if (!Array.isArray(options.algorithms) || options.algorithms.length === 0) {
    problem('expected at least one allowed algorithm, e.g. ["RS256"]');
  }
  for (const alg of options.algorithms) {
    if (typeof alg !== 'string') problem(`expected algorithm names, found ${describeValue(alg)}`);
    if (alg.toLowerCase() === 'none') {
      problem('algorithm "none" is refused: this verifier accepts only asymmetric signatures checked against the issuer JWKS');
    }
    if (/^hs\d*$/i.test(alg)) {
      problem(
        `algorithm ${describeValue(alg)} is refused: HMAC (HS*) uses a shared secret, and this verifier accepts only ` +
          'asymmetric signatures checked against the issuer JWKS (RS*, PS*, ES*, EdDSA)',
      );
    }
    if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) {
      problem(`algorithm ${describeValue(alg)} is not supported; expected some of ${ASYMMETRIC_ALGORITHMS.join(', ')}`);
    }
  }
  const number = (name: keyof typeof DEFAULTS, value: number | undefined, min: number): number => {
    const resolved = value ?? (DEFAULTS[name] as number);
    if (typeof resolved !== 'number' || !Number.isFinite(resolved) || resolved < min) {
      problem(`expected ${name} to be a number >= ${min}, found ${describeValue(value)}`);
    }
    return resolved;
  };
  const discoveryUrl = options.discoveryUrl ?? `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const origin = (name: string, url: string): string => {
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new TypeError('scheme');
      return parsed.origin;
    } catch {
      return problem(`expected ${name} to be an absolute http(s) URL, found ${describeValue(url)}`);
    }
  };
  const credentialOrigin = options.jwksUri === undefined ? origin('discoveryUrl', discoveryUrl) : origin('jwksUri', options.jwksUri);
  if (options.ca !== undefined && !options.ca.includes('-----BEGIN CERTIFICATE-----')) {
    problem('expected ca to be PEM certificates (-----BEGIN CERTIFICATE-----)');
  }
  const bearerToken = options.bearerToken;
  const access: HttpAccess | undefined = options.ca === undefined && bearerToken === undefined ? undefined : {
    ...(options.ca !== undefined && { agent: new https.Agent({ ca: options.ca, keepAlive: true }) }),
    ...(bearerToken && {
      headers: (url: string) => (new URL(url).origin === credentialOrigin ? { authorization: `Bearer ${bearerToken()}` } : undefined),
    }),
  };
  return Object.freeze({
    issuer,
    audiences: Object.freeze([...options.audiences]),
    groupsClaim: options.groupsClaim,
    subjectClaim,
    algorithms: Object.freeze([...new Set(options.algorithms)]),
    clockToleranceSeconds: number('clockToleranceSeconds', options.clockToleranceSeconds, 0),
    discoveryUrl,
    jwksUri: options.jwksUri,
    access,
    refine: options.refine,
    jwksRefreshCooldownMs: number('jwksRefreshCooldownMs', options.jwksRefreshCooldownMs, 0),
    jwksMaxAgeMs: number('jwksMaxAgeMs', options.jwksMaxAgeMs, 1),
    tokenCacheMax: Math.floor(number('tokenCacheMax', options.tokenCacheMax, 1)),
    fetchTimeoutMs: Math.floor(number('fetchTimeoutMs', options.fetchTimeoutMs, 1)),
  });
}

function isoOrValue(seconds: unknown): string {
  if (typeof seconds === 'number' && Number.isFinite(seconds)) {
    const date = new Date(seconds * 1000);
    if (!Number.isNaN(date.getTime())) return date.toISOString();
  }
  return describeValue(seconds);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
