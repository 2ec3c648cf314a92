/**
 * @module identity/jwks
 * One issuer's JSON Web Key Set: fetched, cached, refreshed on an unknown `kid` at most once per cooldown.
 *
 * Built on jose's `createLocalJWKSet` (key selection by kid/alg/use/key_ops and imported-key caching) rather than
 * `createRemoteJWKSet`, so that tollgate controls exactly when the network is touched:
 * - the cooldown counts from the last fetch *attempt*, failed or not (jose counts only from the last success, so
 *   while the IdP is down every unknown kid would be a fetch);
 * - concurrent lookups share one in-flight fetch;
 * - keys are refreshed ahead of their maximum age (at 80 %) in the background, so the hot path does not wait;
 * - keys older than the maximum age are not used: when a refresh fails past that point, lookups fail closed with
 *   `jwks_unavailable` (a failed refresh is retried at most once per cooldown);
 * - several keys matching a token without a `kid` are all offered to the caller (jose's `jwtVerify` gives up with
 *   `JWKSMultipleMatchingKeys` instead).
 */
import { createLocalJWKSet, errors } from 'jose';
import type { CryptoKey, JSONWebKeySet, JWSHeaderParameters } from 'jose';
import { IdentityError, describeValue } from './errors.ts';
import { fetchJson, withAccess, type HttpAccess } from './fetch-json.ts';

type LocalJWKSet = ReturnType<typeof createLocalJWKSet>;

export type JwksRefreshReason = 'start' | 'unknown_kid' | 'max_age' | 'refresh_ahead';

export interface JwksFetchEvent {
  readonly ok: boolean;
  readonly reason: JwksRefreshReason;
  readonly uri: string;
  readonly durationMs: number;
  /** Key ids served (on success). */
  readonly kids?: readonly string[];
  /** Why the fetch failed (on failure); safe to log. */
  readonly error?: string;
}

export interface JwksCacheOptions {
  readonly uri: string;
  /** The issuer the keys belong to; only used in messages. */
  readonly issuer: string;
  readonly cooldownMs: number;
  readonly maxAgeMs: number;
  readonly timeoutMs: number;
  /** CA and headers for the fetch (a Kubernetes API server's `/openid/v1/jwks`); default: system roots, no headers. */
  readonly access?: HttpAccess;
  readonly onFetch?: (event: JwksFetchEvent) => void;
}

const REFRESH_AHEAD_FRACTION = 0.8;

export class JwksCache {
  readonly uri: string;
  readonly #options: JwksCacheOptions;
  #local: LocalJWKSet | undefined;
  #kids: readonly string[] = [];
  #loadedAt: number | undefined;
  #lastAttemptAt: number | undefined;
  #lastFailureAt: number | undefined;
  #pending: Promise<void> | undefined;
  #fetches = 0;
  #lastError: string | undefined;

  constructor(options: JwksCacheOptions) {
    this.uri = options.uri;
    this.#options = options;
  }

  /** HTTP fetches attempted so far (successful or not). */
  get fetches(): number {
    return this.#fetches;
  }

  /** When the current keys were fetched (ms since the epoch), if ever. */
  get loadedAt(): number | undefined {
    return this.#loadedAt;
  }

  /** Why the most recent fetch failed; cleared by the next successful one. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  get kids(): readonly string[] {
    return this.#kids;
  }

  /** Keys are loaded and younger than the maximum age. */
  fresh(now = Date.now()): boolean {
    return this.#loadedAt !== undefined && now - this.#loadedAt < this.#options.maxAgeMs;
  }

  /**
   * Fetches the key set now, joining a fetch already in flight. Rejects with `jwks_unavailable`; the previous keys
   * stay in place when a fetch fails.
   */
  refresh(reason: JwksRefreshReason): Promise<void> {
    if (this.#pending) return this.#pending;
    const pending = this.#load(reason).finally(() => {
      if (this.#pending === pending) this.#pending = undefined;
    });
    this.#pending = pending;
    return pending;
  }

  /**
   * The verification keys that may have signed a token with this header: usually exactly one; several only when
   * the header has no `kid` and several keys fit the algorithm. Throws `key_not_found` or `jwks_unavailable`.
   */
  async keysFor(header: JWSHeaderParameters): Promise<CryptoKey[]> {
    const now = Date.now();
    if (!this.fresh(now)) {
      if (this.#pending || this.#mayRetryAfterFailure(now)) await this.refresh('max_age').catch(() => {});
      if (!this.fresh()) throw this.#unavailable();
    } else if (
      now - (this.#loadedAt ?? now) >= this.#options.maxAgeMs * REFRESH_AHEAD_FRACTION &&
      !this.#pending &&
      !this.#coolingDown(now) &&
      this.#mayRetryAfterFailure(now)
    ) {
      void this.refresh('refresh_ahead').catch(() => {});
    }

    const found = await this.#resolve(header);
    if (found) return found;

    // Unknown kid: the issuer may have rotated. Join a fetch in flight, or start one unless one was attempted
    // within the cooldown (a stream of made-up kids must not turn into a stream of requests to the IdP).
    if (this.#pending) await this.#pending.catch(() => {});
    else if (!this.#coolingDown(Date.now())) await this.refresh('unknown_kid').catch(() => {});
    else throw this.#keyNotFound(header, ' (no refresh: one was attempted within the cooldown)');
    if (!this.fresh()) throw this.#unavailable();
    const retried = await this.#resolve(header);
    if (retried) return retried;
    throw this.#keyNotFound(header, ' (after a refresh)');
  }

  #coolingDown(now: number): boolean {
    return this.#lastAttemptAt !== undefined && now - this.#lastAttemptAt < this.#options.cooldownMs;
  }

  #mayRetryAfterFailure(now: number): boolean {
    return this.#lastFailureAt === undefined || now - this.#lastFailureAt >= this.#options.cooldownMs;
  }

  /** undefined when no key matches; IdentityError when keys match but cannot be used. */
  async #resolve(header: JWSHeaderParameters): Promise<CryptoKey[] | undefined> {
    const local = this.#local;
    if (!local) return undefined;
    try {
      return [await local(header)];
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey) return undefined;
      if (error instanceof errors.JWKSMultipleMatchingKeys) {
        const keys: CryptoKey[] = [];
        for await (const key of error as unknown as AsyncIterable<CryptoKey>) keys.push(key);
        if (keys.length > 0) return keys;
        throw new IdentityError(
          'jwks_unavailable',
          `expected a usable key for alg ${describeValue(header.alg)} in ${this.uri}, found several candidates, none of which imports`,
        );
      }
      if (error instanceof errors.JOSENotSupported) {
        throw new IdentityError(
          'algorithm_not_allowed',
          `expected an asymmetric signature algorithm, found alg ${describeValue(header.alg)}`,
        );
      }
      throw new IdentityError(
        'jwks_unavailable',
        `expected an importable public key for kid ${describeValue(header.kid)} in ${this.uri}, found: ${messageOf(error)}`,
        { cause: error },
      );
    }
  }

  async #load(reason: JwksRefreshReason): Promise<void> {
    const started = Date.now();
    this.#lastAttemptAt = started;
    this.#fetches += 1;
    try {
      const json = await fetchJson(this.uri, withAccess(this.uri, this.#options.access, {
        timeoutMs: this.#options.timeoutMs,
        accept: 'application/jwk-set+json, application/json',
      }));
      let local: LocalJWKSet;
      try {
        local = createLocalJWKSet(json as JSONWebKeySet);
      } catch (error) {
        throw new Error(`GET ${this.uri}: expected a JSON Web Key Set ({"keys": [...]}), found: ${messageOf(error)}`);
      }
      const keys = (json as { keys: Array<{ kid?: unknown }> }).keys;
      this.#local = local;
      this.#kids = keys.map((key) => (typeof key.kid === 'string' ? key.kid : '(no kid)'));
      this.#loadedAt = Date.now();
      this.#lastError = undefined;
      this.#options.onFetch?.({ ok: true, reason, uri: this.uri, durationMs: Date.now() - started, kids: this.#kids });
    } catch (error) {
      this.#lastFailureAt = Date.now();
      this.#lastError = messageOf(error);
      this.#options.onFetch?.({
        ok: false,
        reason,
        uri: this.uri,
        durationMs: Date.now() - started,
        error: this.#lastError,
      });
      throw new IdentityError(
        'jwks_unavailable',
        `expected the JWKS of ${this.#options.issuer} from ${this.uri}, found an error: ${this.#lastError}`,
        { cause: error },
      );
    }
  }

  #unavailable(): IdentityError {
    const age =
      this.#loadedAt === undefined ? 'none was ever loaded' : `the last good one is ${Date.now() - this.#loadedAt} ms old`;
    return new IdentityError(
      'jwks_unavailable',
      `expected a JWKS of ${this.#options.issuer} younger than ${this.#options.maxAgeMs} ms, found that ${age}` +
        (this.#lastError ? `; last fetch error: ${this.#lastError}` : ''),
    );
  }

  #keyNotFound(header: JWSHeaderParameters, detail: string): IdentityError {
    const wanted = header.kid === undefined ? 'a key without kid' : `kid ${describeValue(header.kid)}`;
    return new IdentityError(
      'key_not_found',
      `expected ${wanted} usable for alg ${describeValue(header.alg)} in the JWKS of ${this.#options.issuer}, ` +
        `found kids ${describeValue(this.#kids, 400)}${detail}`,
    );
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
