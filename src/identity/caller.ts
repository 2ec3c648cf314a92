/**
 * @module identity/caller
 * Who is calling, from all the credentials one request carries (a bearer token, an API key, the mTLS peer Envoy
 * verified), with one precedence, decided here for every adapter:
 *
 * 1. An `Authorization` header names the caller: `Bearer <token>` (an OIDC or Kubernetes token) or, when API keys
 *    are configured, `ApiKey <key>`.
 * 2. Else an `x-api-key: <key>` header, when API keys are configured (otherwise it is no credential to tollgate).
 * 3. Else the mTLS peer, when identity.mtls is configured and Envoy reports a peer principal.
 * 4. Else nothing: `token_missing`.
 *
 * Both an Authorization header and an API key: refused (`credentials_ambiguous`); picking one would let the other
 * ride along unchecked. A token (or API key) and an mTLS peer: the token is the caller. In a mesh the peer is the
 * workload that forwarded the request (a sidecar, a gateway, a backend passing its user's token on); the token says
 * on whose behalf it acts, and that is whom policy judges. The peer neither widens nor narrows that principal, and
 * a token that fails is a 401, never a quiet fallback to the workload's own identity.
 */
import type { Principal } from '../core/principal.ts';
import type { ApiKeys } from './api-keys.ts';
import { parseBearerHeader } from './authenticator.ts';
import { IdentityError } from './errors.ts';
import type { MtlsIdentities, PeerIdentity } from './mtls.ts';

/** Everything in one request that may say who sent it; adapters fill in what their protocol carries. */
export interface Credentials {
  /** The Authorization header's value. */
  readonly authorization?: string | undefined;
  /** The x-api-key header's value. */
  readonly apiKey?: string | undefined;
  /** The peer of an mTLS connection as Envoy verified it. */
  readonly peer?: PeerIdentity | null | undefined;
}

export interface CallerSources {
  readonly bearer: { authenticateBearer(token: string): Promise<Principal> };
  /** Absent or empty: API keys are not accepted (`ApiKey` is then an unknown scheme, x-api-key is ignored). */
  readonly apiKeys?: ApiKeys | undefined;
  /** Absent: peers do not authenticate HTTP requests. */
  readonly mtls?: MtlsIdentities | undefined;
}

/** Resolves to the caller's principal; rejects with IdentityError or MtlsError (each with a stable `code`). */
export type AuthenticateCaller = (credentials: Credentials) => Promise<Principal>;

const API_KEY_SCHEME = 'apikey';

export function createCallerAuthenticator(sources: CallerSources): AuthenticateCaller {
  const apiKeys = sources.apiKeys !== undefined && sources.apiKeys.names.length > 0 ? sources.apiKeys : undefined;
  const { mtls, bearer } = sources;
  const accepted = ['an Authorization header "Bearer <token>"'];
  if (apiKeys) accepted.push('an API key (x-api-key, or Authorization "ApiKey <key>")');
  if (mtls) accepted.push('an mTLS client certificate with a SPIFFE id');
  const missing = `expected ${accepted.length > 1 ? `${accepted.slice(0, -1).join(', ')} or ${accepted.at(-1)}` : accepted[0]}, found none`;

  return async function authenticateCaller(credentials) {
    const authorization = present(credentials.authorization);
    const apiKey = apiKeys ? present(credentials.apiKey) : undefined;
    if (authorization !== undefined && apiKey !== undefined) {
      throw new IdentityError('credentials_ambiguous', 'expected one credential, found both an Authorization header and an x-api-key header');
    }
    if (authorization !== undefined) {
      const parts = authorization.split(/\s+/);
      if (apiKeys && parts[0]?.toLowerCase() === API_KEY_SCHEME) {
        if (parts.length === 1) throw new IdentityError('token_missing', 'expected an API key after "ApiKey", found none');
        if (parts.length > 2) throw new IdentityError('api_key_malformed', `expected exactly one API key after "ApiKey", found ${parts.length - 1}`);
        return apiKeys.authenticate(parts[1] as string);
      }
      return bearer.authenticateBearer(parseBearerHeader(authorization));
    }
    if (apiKey !== undefined && apiKeys) return apiKeys.authenticate(apiKey);
    if (mtls && present(credentials.peer?.principal ?? undefined) !== undefined) return mtls.authenticatePeer(credentials.peer);
    throw new IdentityError('token_missing', missing);
  };
}

/** A header value with something in it, trimmed; undefined for absent or blank. */
function present(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed.length === 0 ? undefined : trimmed;
}
