/**
 * @module identity/token-review
 * Kubernetes tokens checked by the API server itself: tollgate POSTs a TokenReview (`authentication.k8s.io/v1`)
 * with the token and its own audiences, and the answer's status says whose token it is. This is the mode for
 * clusters whose issuer keys tollgate cannot fetch, and it sees revocation that local verification cannot: the API
 * server refuses tokens whose service account, pod or secret is gone.
 *
 * - tollgate reviews with a credential of its own, whose user needs the ClusterRole `system:auth-delegator` (it may
 *   create tokenreviews). A 401 or 403 from the API server says which of the two is wrong.
 * - The answer must name one of tollgate's audiences in `status.audiences`: an authenticated answer with none means
 *   the token is valid for the API server itself, i.e. a cluster credential replayed to tollgate, and is refused.
 * - Answers are cached by the token's SHA-256: an authentication until `cacheTtlMs` or the token's exp, whichever
 *   comes first; a refusal for `negativeCacheTtlMs` (short: a token can become valid a moment later, e.g. when its
 *   service account is created after the pod starts). An API server that cannot answer (unreachable, 5xx, refuses
 *   tollgate's credential, answers something that is not a TokenReview) is never cached: the request fails closed
 *   with `token_review_failed` and the next one asks again. Concurrent reviews of one token share one request.
 * - An expired token (by its unverified `exp`) is refused without asking: the answer could only be no.
 * - At most `maxInFlight` reviews are pending at once; beyond that a token is refused without asking
 *   (`token_review_failed`), so a flood of made-up JWTs cannot become a flood of requests to the API server.
 */
import { createHash } from 'node:crypto';
import https from 'node:https';
import type { JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Principal } from '../core/principal.ts';
import { IdentityError, describeValue, type IdentityErrorCode } from './errors.ts';
import { HttpStatusError, requestJson } from './fetch-json.ts';
import { parseServiceAccountUsername, serviceAccountGroups } from './service-account.ts';

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';

export interface TokenReviewerOptions {
  /** The API server's base URL (`https://kubernetes.default.svc`); reviews go to `<url>/apis/authentication.k8s.io/v1/tokenreviews`. */
  readonly url: string;
  /** Sent as `spec.audiences`; one of them must come back in `status.audiences`. */
  readonly audiences: readonly string[];
  /** tollgate's own bearer token for the API server, read anew for each review (a projected token rotates). */
  readonly credential: () => string;
  /** PEM CA bundle the API server's certificate must chain to (the cluster CA); default the system roots. */
  readonly ca?: string;
  /** The principal's issuer; default the token's `iss`, which the API server has checked. */
  readonly issuer?: string;
  /** Longest time an authentication is reused without asking again; default 60000. */
  readonly cacheTtlMs?: number;
  /** How long a refusal is remembered; default 10000 (never longer than cacheTtlMs). */
  readonly negativeCacheTtlMs?: number;
  /** Reviewed tokens kept; default 10000. */
  readonly cacheMax?: number;
  /** Per review; default 5000. */
  readonly timeoutMs?: number;
  /** Reviews pending at once before further tokens are refused unasked; default 64. */
  readonly maxInFlight?: number;
  /** Leeway for the exp pre-check, seconds; default 0. */
  readonly clockToleranceSeconds?: number;
  /** Runs on each authenticated principal before it is cached (group mappings); may throw IdentityError. */
  readonly refine?: (principal: Principal, claims: Readonly<JWTPayload>) => Principal;
}

export interface TokenReviewHealth {
  readonly url: string;
  /** TokenReviews sent. */
  readonly reviews: number;
  /** Reviews the API server could not answer (not refusals). */
  readonly failures: number;
  /** Why the most recent review failed; cleared by the next answer. */
  readonly lastError?: string;
  readonly cacheHits: number;
  readonly cacheSize: number;
}

type Answer = { readonly principal: Principal } | { readonly code: IdentityErrorCode; readonly message: string };

const MAX_ANSWER_BYTES = 256 * 1024;

export class TokenReviewer {
  readonly issuer: string | undefined;
  readonly endpoint: string;
  readonly #options: Required<Omit<TokenReviewerOptions, 'ca' | 'issuer' | 'refine'>> & Pick<TokenReviewerOptions, 'refine'>;
  readonly #agent: https.Agent | undefined;
  readonly #cache: LRUCache<string, Answer>;
  readonly #inflight = new Map<string, Promise<Principal>>();
  #reviews = 0;
  #failures = 0;
  #cacheHits = 0;
  #lastError: string | undefined;

  constructor(options: TokenReviewerOptions) {
    const problem = (message: string): never => {
      throw new TypeError(`TokenReview: ${message}`);
    };
    const base = URL.parse(options.url) ?? problem(`expected the API server URL to be absolute, found ${describeValue(options.url)}`);
    if (base.protocol !== 'https:' && base.protocol !== 'http:') problem(`expected an https URL, found ${describeValue(options.url)}`);
    if (base.search !== '' || base.hash !== '') problem('expected the API server URL without a query or fragment');
    if (options.audiences.length === 0 || options.audiences.some((a) => typeof a !== 'string' || a.length === 0)) {
      problem('expected at least one non-empty audience: without one, the API server would accept tokens meant for itself');
    }
    if (options.ca !== undefined && !options.ca.includes('-----BEGIN CERTIFICATE-----')) {
      problem('expected ca to be PEM certificates (-----BEGIN CERTIFICATE-----)');
    }
    const cacheTtlMs = positive('cacheTtlMs', options.cacheTtlMs, 60_000, problem);
    this.#options = {
      url: options.url,
      audiences: [...options.audiences],
      credential: options.credential,
      cacheTtlMs,
      negativeCacheTtlMs: Math.min(positive('negativeCacheTtlMs', options.negativeCacheTtlMs, 10_000, problem), cacheTtlMs),
      cacheMax: Math.floor(positive('cacheMax', options.cacheMax, 10_000, problem)),
      timeoutMs: positive('timeoutMs', options.timeoutMs, 5_000, problem),
      maxInFlight: Math.floor(positive('maxInFlight', options.maxInFlight, 64, problem)),
      clockToleranceSeconds: options.clockToleranceSeconds ?? 0,
      refine: options.refine,
    };
    this.issuer = options.issuer;
    this.endpoint = `${base.origin}${base.pathname.replace(/\/+$/, '')}${TOKEN_REVIEW_PATH}`;
    this.#agent = options.ca === undefined ? undefined : new https.Agent({ ca: options.ca, keepAlive: true });
    this.#cache = new LRUCache<string, Answer>({ max: this.#options.cacheMax });
  }

  /**
   * The principal the API server says `token` belongs to. `claims` are the token's own, not verified by tollgate
   * (the API server verifies them): they give the expiry, the default issuer and the claims group mappings read.
   * Rejects with IdentityError: `token_expired`, `token_rejected`, `audience_mismatch`, `token_review_failed`.
   */
  review(token: string, claims: Readonly<JWTPayload>): Promise<Principal> {
    const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
    const now = Date.now();
    if (exp !== undefined && exp * 1000 <= now - this.#options.clockToleranceSeconds * 1000) {
      return Promise.reject(new IdentityError('token_expired', `expected exp after ${new Date(now).toISOString()}, found exp ${new Date(exp * 1000).toISOString()}`));
    }
    const key = createHash('sha256').update(token).digest('base64url');
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      if (!('principal' in cached)) {
        this.#cacheHits += 1;
        return Promise.reject(new IdentityError(cached.code, cached.message));
      }
      if (cached.principal.expiresAt === undefined || cached.principal.expiresAt * 1000 > now) {
        this.#cacheHits += 1;
        return Promise.resolve(cached.principal);
      }
      this.#cache.delete(key);
    }
    const inflight = this.#inflight.get(key);
    if (inflight) return inflight;
    if (this.#inflight.size >= this.#options.maxInFlight) {
      return Promise.reject(this.#failed(`expected at most ${this.#options.maxInFlight} TokenReviews pending, found that many: refused without asking`));
    }
    const pending = this.#review(token, claims, key).finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, pending);
    return pending;
  }

  health(): TokenReviewHealth {
    return {
      url: this.#options.url,
      reviews: this.#reviews,
      failures: this.#failures,
      ...(this.#lastError !== undefined && { lastError: this.#lastError }),
      cacheHits: this.#cacheHits,
      cacheSize: this.#cache.size,
    };
  }

  async #review(token: string, claims: Readonly<JWTPayload>, key: string): Promise<Principal> {
    this.#reviews += 1;
    let body: unknown;
    try {
      body = await requestJson(this.endpoint, {
        method: 'POST',
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: this.#options.audiences } },
        okStatuses: [200, 201],
        headers: { authorization: `Bearer ${this.#options.credential()}` },
        timeoutMs: this.#options.timeoutMs,
        maxBytes: MAX_ANSWER_BYTES,
        ...(this.#agent && { agent: this.#agent }),
      });
    } catch (error) {
      throw this.#failed(unreachable(error), error);
    }
    const answer = this.#interpret(body, claims);
    if ('principal' in answer) {
      const untilExp = answer.principal.expiresAt === undefined ? Infinity : answer.principal.expiresAt * 1000 - Date.now();
      const ttl = Math.floor(Math.min(this.#options.cacheTtlMs, untilExp));
      if (ttl > 0) this.#cache.set(key, answer, { ttl });
      return answer.principal;
    }
    if (answer.code !== 'token_review_failed') this.#cache.set(key, answer, { ttl: this.#options.negativeCacheTtlMs });
    throw new IdentityError(answer.code, answer.message);
  }

  #failed(message: string, cause?: unknown): IdentityError {
    this.#failures += 1;
    this.#lastError = message;
    return new IdentityError('token_review_failed', message, { cause });
  }

  /** The API server's answer as a principal or a refusal; an answer that is no TokenReview is a failure. */
  #interpret(body: unknown, claims: Readonly<JWTPayload>): Answer {
    const odd = (what: string): never => {
      throw this.#failed(`expected a TokenReview from ${this.endpoint}, found ${what}`);
    };
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return odd(Array.isArray(body) ? 'an array' : typeof body);
    const review = body as Record<string, unknown>;
    if (review['kind'] !== undefined && review['kind'] !== 'TokenReview') return odd(`kind ${describeValue(review['kind'])}`);
    const status = review['status'];
    if (status === null || typeof status !== 'object' || Array.isArray(status)) return odd('no status');
    this.#lastError = undefined;
    const { authenticated, user, audiences, error } = status as Record<string, unknown>;
    if (authenticated !== true) {
      const why = typeof error === 'string' && error.length > 0 ? `: ${describeValue(error, 300)}` : '';
      return { code: 'token_rejected', message: `expected the Kubernetes API server to authenticate the token, found it did not${why}` };
    }
    const granted = Array.isArray(audiences) ? audiences.filter((a): a is string => typeof a === 'string') : [];
    if (!granted.some((a) => this.#options.audiences.includes(a))) {
      return {
        code: 'audience_mismatch',
        message: `expected the TokenReview to confirm one of the audiences ${describeValue(this.#options.audiences)}, found ${
          granted.length === 0 ? 'none (the token is valid for the API server itself, not for tollgate)' : describeValue(granted)
        }`,
      };
    }
    const info = user !== null && typeof user === 'object' ? (user as Record<string, unknown>) : {};
    const username = info['username'];
    if (typeof username !== 'string' || username.length === 0) return odd(`an authenticated status without a username (${describeValue(username)})`);
    const groups = new Set<string>();
    const account = parseServiceAccountUsername(username);
    if (account) for (const group of serviceAccountGroups(account.namespace)) groups.add(group);
    if (Array.isArray(info['groups'])) for (const g of info['groups']) if (typeof g === 'string' && g.length > 0) groups.add(g);
    const uid = info['uid'];
    const issuer = this.issuer ?? (typeof claims.iss === 'string' ? claims.iss : this.#options.url);
    let principal: Principal = {
      subject: username,
      groups: Object.freeze([...groups]),
      issuer,
      authenticatedBy: 'kubernetes',
      ...(typeof uid === 'string' && uid.length > 0 && { uid }),
      ...(typeof claims.exp === 'number' && { expiresAt: claims.exp }),
    };
    if (this.#options.refine) principal = this.#options.refine(principal, claims);
    return { principal: Object.freeze(principal) };
  }
}

function unreachable(error: unknown): string {
  if (error instanceof HttpStatusError) {
    if (error.status === 401) {
      return `the Kubernetes API server refused tollgate's reviewer credential (401): ${error.message}; check identity.kubernetes.tokenReview.credential`;
    }
    if (error.status === 403) {
      return `the Kubernetes API server does not let tollgate's reviewer create TokenReviews (403): ${error.message}; bind the ClusterRole system:auth-delegator to it`;
    }
  }
  return `the Kubernetes API server could not review the token: ${error instanceof Error ? error.message : String(error)}`;
}

function positive(name: string, value: number | undefined, fallback: number, problem: (message: string) => never): number {
  const resolved = value ?? fallback;
  if (!Number.isFinite(resolved) || resolved <= 0) problem(`expected ${name} to be a positive number, found ${describeValue(value)}`);
  return resolved;
}
