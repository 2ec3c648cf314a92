/**
 * @module identity/authenticator
 * Bearer-token authentication across the configured OIDC issuers and the Kubernetes cluster: the verifier is chosen
 * by the token's (not yet verified) `iss`, and that verifier then checks everything, `iss` included.
 *
 * How a Kubernetes service-account token is told from a user's OIDC token: by `iss` alone. In issuer mode the
 * cluster issuer is one more verifier (its keys, its audiences, and the subject must be a service account). In
 * TokenReview mode, a JWT whose `iss` is no configured OIDC issuer (and is the configured cluster issuer, when one
 * is configured) goes to the API server for review; tokens that are not JWTs never do (service-account tokens are
 * JWTs, and a stream of junk must not become a stream of reviews). Configured group mappings apply to every
 * principal this returns, with the token's claims at hand.
 *
 * `start()` makes one start-up attempt per issuer and resolves once every issuer has been tried, whether it came up
 * or not: an issuer that failed is retried in the background with capped exponential backoff (1 s doubling to 60 s,
 * with jitter, by default) until it is ready or `close()` is called. Readiness is `ready()` / `health()`. Tokens of
 * an issuer that is not ready are denied (fail closed).
 */
import { decodeJwt } from 'jose';
import type { Principal } from '../core/principal.ts';
import { IdentityError, describeValue } from './errors.ts';
import type { GroupMapper } from './group-mappings.ts';
import { MAX_TOKEN_LENGTH, OidcVerifier } from './oidc.ts';
import type { IdentityLogger, OidcHealth, OidcVerifierOptions } from './oidc.ts';
import { serviceAccountPrincipal } from './service-account.ts';
import { TokenReviewer, type TokenReviewHealth, type TokenReviewerOptions } from './token-review.ts';

export interface AuthenticatorRetryOptions {
  /** First retry delay after a failed start-up; default 1000. */
  initialDelayMs?: number;
  /** Upper bound of the doubling delay; default 60000. */
  maxDelayMs?: number;
}

/** Service-account tokens verified locally: the cluster issuer's discovery and keys, like an OIDC issuer's. */
export type KubernetesIssuerOptions = Omit<OidcVerifierOptions, 'groupsClaim' | 'subjectClaim' | 'refine'>;

/** One of the two ways to accept Kubernetes tokens. */
export type KubernetesOptions =
  | ({ readonly mode: 'issuer' } & KubernetesIssuerOptions)
  | ({ readonly mode: 'tokenReview' } & Omit<TokenReviewerOptions, 'refine'>);

export interface AuthenticatorOptions {
  oidc: readonly OidcVerifierOptions[];
  kubernetes?: KubernetesOptions;
  /** Applied to every principal, with the verified token's claims. */
  mapGroups?: GroupMapper;
  logger?: IdentityLogger;
  /** Metrics hook, called after every JWKS fetch attempt of any issuer. */
  onJwksFetch?: (issuer: string, ok: boolean) => void;
  /** Background retry of issuers that failed to start; `false` disables it. */
  retry?: AuthenticatorRetryOptions | false;
}

const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9\-_]{0,31}$/;

/**
 * Extracts the token from an Authorization header value: case-insensitive "Bearer", one space-separated token
 * (RFC 6750 token68 syntax). Throws `token_missing` when there is no header or no token, `token_malformed`
 * otherwise. The header value is never echoed, only a recognisable scheme name.
 */
export function parseBearerHeader(value: string | undefined): string {
  if (value === undefined || value.trim().length === 0) {
    throw new IdentityError('token_missing', 'expected an Authorization header "Bearer <token>", found none');
  }
  const parts = value.trim().split(/\s+/);
  const scheme = parts[0] ?? '';
  if (scheme.toLowerCase() !== 'bearer') {
    const found =
      parts.length > 1 && SCHEME.test(scheme) ? `scheme ${describeValue(scheme)}` : 'a value without a scheme';
    throw new IdentityError('token_malformed', `expected an Authorization header "Bearer <token>", found ${found}`);
  }
  if (parts.length === 1) {
    throw new IdentityError('token_missing', 'expected a token after "Bearer", found none');
  }
  if (parts.length > 2) {
    throw new IdentityError('token_malformed', `expected exactly one token after "Bearer", found ${parts.length - 1}`);
  }
  const token = parts[1] as string;
  if (!BEARER_TOKEN.test(token)) {
    throw new IdentityError('token_malformed', 'expected a token of base64url/token68 characters, found other characters');
  }
  return token;
}

export class Authenticator {
  readonly #verifiers = new Map<string, OidcVerifier>();
  readonly #reviewer: TokenReviewer | undefined;
  readonly #kubernetesIssuer: string | undefined;
  readonly #logger: IdentityLogger | undefined;
  readonly #retry: Required<AuthenticatorRetryOptions> | false;
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(options: AuthenticatorOptions) {
    this.#logger = options.logger;
    this.#retry =
      options.retry === false
        ? false
        : { initialDelayMs: options.retry?.initialDelayMs ?? 1000, maxDelayMs: options.retry?.maxDelayMs ?? 60_000 };
    const hooks = {
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.onJwksFetch ? { onJwksFetch: options.onJwksFetch } : {}),
    };
    const map = options.mapGroups;
    const add = (verifier: OidcVerifierOptions) => {
      if (this.#verifiers.has(verifier.issuer)) {
        throw new TypeError(`identity: issuer ${describeValue(verifier.issuer)} is configured twice`);
      }
      this.#verifiers.set(verifier.issuer, new OidcVerifier(verifier, hooks));
    };
    for (const oidc of options.oidc) {
      const own = oidc.refine;
      add(!map ? oidc : { ...oidc, refine: (p, claims) => map(own ? own(p, claims) : p, claims) });
    }
    const k8s = options.kubernetes;
    if (k8s?.mode === 'issuer') {
      const { mode: _, ...verifier } = k8s;
      this.#kubernetesIssuer = verifier.issuer;
      add({
        ...verifier,
        // Service-account tokens carry no groups claim; their groups come from the subject (service-account.ts).
        groupsClaim: 'groups',
        refine: (p, claims) => (map ? map(serviceAccountPrincipal(p, claims), claims) : serviceAccountPrincipal(p, claims)),
      });
    } else if (k8s?.mode === 'tokenReview') {
      const { mode: _, ...reviewer } = k8s;
      if (reviewer.issuer !== undefined && this.#verifiers.has(reviewer.issuer)) {
        throw new TypeError(`identity: issuer ${describeValue(reviewer.issuer)} is configured both as an OIDC issuer and for TokenReview`);
      }
      this.#kubernetesIssuer = reviewer.issuer;
      this.#reviewer = new TokenReviewer({ ...reviewer, ...(map && { refine: map }) });
    }
  }

  /** Issuers whose tokens are verified locally (OIDC, and the cluster issuer in issuer mode). */
  get issuers(): string[] {
    return [...this.#verifiers.keys()];
  }

  /** The cluster issuer, when one is configured (either mode). */
  get kubernetesIssuer(): string | undefined {
    return this.#kubernetesIssuer;
  }

  /** TokenReview counters, in TokenReview mode. */
  tokenReviewHealth(): TokenReviewHealth | undefined {
    return this.#reviewer?.health();
  }

  verifier(issuer: string): OidcVerifier | undefined {
    return this.#verifiers.get(issuer);
  }

  /** Verifies a bearer token with the verifier of its issuer. Rejects with IdentityError. */
  async authenticateBearer(token: string): Promise<Principal> {
    if (typeof token !== 'string' || token.length === 0) {
      throw new IdentityError('token_missing', 'expected a bearer token, found none');
    }
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new IdentityError(
        'token_malformed',
        `expected a token of at most ${MAX_TOKEN_LENGTH} characters, found ${token.length}`,
      );
    }
    let claims: Record<string, unknown>;
    try {
      claims = decodeJwt(token);
    } catch {
      throw new IdentityError(
        'token_malformed',
        'expected a JWT (three base64url segments, the second a JSON claims set), found something else',
      );
    }
    const iss = claims.iss;
    if (typeof iss !== 'string') {
      throw new IdentityError('token_malformed', `expected a string iss claim, found ${describeValue(iss)}`);
    }
    const verifier = this.#verifiers.get(iss);
    if (verifier) return verifier.verify(token);
    const reviewer = this.#reviewer;
    if (reviewer && (reviewer.issuer === undefined || reviewer.issuer === iss)) return reviewer.review(token, claims);
    const known = reviewer?.issuer === undefined ? this.issuers : [...this.issuers, reviewer.issuer];
    throw new IdentityError('issuer_unknown', `expected iss one of ${describeValue(known, 400)}, found ${describeValue(iss)}`);
  }

  /** parseBearerHeader + authenticateBearer. */
  authenticateHeader(value: string | undefined): Promise<Principal> {
    try {
      return this.authenticateBearer(parseBearerHeader(value));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** One attempt per issuer, in parallel; failed issuers are retried in the background (see module doc). */
  async start(): Promise<void> {
    this.#closed = false;
    await Promise.all(
      [...this.#verifiers.values()].map((verifier) =>
        this.#startOne(verifier, this.#retry ? this.#retry.initialDelayMs : 0),
      ),
    );
  }

  health(): OidcHealth[] {
    return [...this.#verifiers.values()].map((verifier) => verifier.health());
  }

  /** Every issuer is ready (an authenticator without issuers is trivially ready). */
  ready(): boolean {
    return this.health().every((health) => health.ready);
  }

  /** Stops background retries. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  async #startOne(verifier: OidcVerifier, delayMs: number): Promise<void> {
    try {
      await verifier.start();
      this.#logger?.info({ issuer: verifier.issuer }, 'OIDC issuer ready');
    } catch (error) {
      const code = error instanceof IdentityError ? error.code : 'discovery_failed';
      const message = error instanceof Error ? error.message : String(error);
      if (!this.#retry || this.#closed) {
        this.#logger?.warn({ issuer: verifier.issuer, code, err: message }, 'OIDC issuer start-up failed');
        return;
      }
      const wait = Math.round(delayMs * (0.8 + Math.random() * 0.4));
      this.#logger?.warn(
        { issuer: verifier.issuer, code, err: message, retryInMs: wait },
        'OIDC issuer start-up failed; retrying',
      );
      const next = Math.min(delayMs * 2, this.#retry.maxDelayMs);
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        if (this.#closed || verifier.health().ready) return;
        void this.#startOne(verifier, next);
      }, wait);
      timer.unref();
      this.#timers.add(timer);
    }
  }
}
