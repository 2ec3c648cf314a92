/**
 * @module identity/load
 * Every identity source built from the config's `identity` section: OIDC issuers and the Kubernetes cluster (bearer
 * tokens), API keys, mTLS peers, the group mappings all of them share, and the caller precedence over them. Secrets
 * and CA files are read here, once, so a missing one fails the load (and `tollgate validate`), not a request.
 */
import type { Config, KubernetesIdentityConfig, OidcIssuerConfig } from '../config/schema.ts';
import { readCertificateFile, rereadingSecret } from '../config/secrets.ts';
import { createApiKeys, type ApiKeys } from './api-keys.ts';
import { Authenticator, type KubernetesOptions } from './authenticator.ts';
import { createCallerAuthenticator, type AuthenticateCaller } from './caller.ts';
import { compileGroupMappings } from './group-mappings.ts';
import { createMtlsIdentities, type MtlsIdentities } from './mtls.ts';
import type { IdentityLogger, OidcVerifierOptions } from './oidc.ts';

export interface Identities {
  /** Bearer tokens: OIDC and Kubernetes (HTTP Authorization, Kafka SASL OAUTHBEARER). Call start() before use. */
  readonly bearer: Authenticator;
  /** Undefined when no API key is configured. */
  readonly apiKeys: ApiKeys | undefined;
  /** Undefined when identity.mtls is absent. */
  readonly mtls: MtlsIdentities | undefined;
  /** The caller of an HTTP request, from all its credentials (identity/caller.ts). */
  readonly authenticateCaller: AuthenticateCaller;
}

export interface IdentityHooks {
  readonly logger?: IdentityLogger;
  readonly onJwksFetch?: (issuer: string, ok: boolean) => void;
}

export function oidcOptions(o: OidcIssuerConfig): OidcVerifierOptions {
  return {
    issuer: o.issuer,
    audiences: [...o.audiences],
    groupsClaim: o.groupsClaim,
    subjectClaim: o.subjectClaim,
    algorithms: [...o.algorithms],
    clockToleranceSeconds: Math.round(o.clockTolerance / 1000),
    ...(o.discoveryUrl ? { discoveryUrl: o.discoveryUrl } : {}),
    jwksRefreshCooldownMs: o.jwksRefreshCooldown,
    jwksMaxAgeMs: o.jwksMaxAge,
    tokenCacheMax: o.tokenCacheSize,
  };
}

export function kubernetesOptions(k: KubernetesIdentityConfig): KubernetesOptions {
  const clockToleranceSeconds = Math.round(k.clockTolerance / 1000);
  const review = k.tokenReview;
  if (review !== undefined) {
    return {
      mode: 'tokenReview',
      url: review.url,
      audiences: [...k.audiences],
      credential: rereadingSecret(review.credential, 'identity.kubernetes.tokenReview.credential'),
      ...(review.caFile !== undefined && { ca: readCertificateFile(review.caFile, 'identity.kubernetes.tokenReview.caFile') }),
      ...(k.issuer !== undefined && { issuer: k.issuer }),
      cacheTtlMs: review.cacheTtl,
      negativeCacheTtlMs: review.negativeCacheTtl,
      cacheMax: review.cacheSize,
      timeoutMs: review.timeout,
      clockToleranceSeconds,
    };
  }
  if (k.issuer === undefined) throw new TypeError('identity.kubernetes: expected `issuer` or `tokenReview`');
  return {
    mode: 'issuer',
    issuer: k.issuer,
    audiences: [...k.audiences],
    algorithms: [...k.algorithms],
    clockToleranceSeconds,
    ...(k.discoveryUrl !== undefined && { discoveryUrl: k.discoveryUrl }),
    ...(k.jwksUri !== undefined && { jwksUri: k.jwksUri }),
    ...(k.caFile !== undefined && { ca: readCertificateFile(k.caFile, 'identity.kubernetes.caFile') }),
    ...(k.credential !== undefined && { bearerToken: rereadingSecret(k.credential, 'identity.kubernetes.credential') }),
    jwksRefreshCooldownMs: k.jwksRefreshCooldown,
    jwksMaxAgeMs: k.jwksMaxAge,
    tokenCacheMax: k.tokenCacheSize,
  };
}

/** Builds every source; throws SecretError for an unreadable secret or CA file, TypeError for a bad entry. */
export function loadIdentities(config: Config['identity'], hooks: IdentityHooks = {}): Identities {
  const mapGroups = compileGroupMappings(config.groupMappings);
  const bearer = new Authenticator({
    oidc: config.oidc.map(oidcOptions),
    ...(config.kubernetes !== undefined && { kubernetes: kubernetesOptions(config.kubernetes) }),
    ...(mapGroups && { mapGroups }),
    ...(hooks.logger && { logger: hooks.logger }),
    ...(hooks.onJwksFetch && { onJwksFetch: hooks.onJwksFetch }),
  });
  const apiKeys = config.apiKeys.length === 0 ? undefined : createApiKeys(config.apiKeys, mapGroups);
  const mtls = config.mtls === undefined ? undefined : createMtlsIdentities({ ...config.mtls, ...(mapGroups && { mapGroups }) });
  return { bearer, apiKeys, mtls, authenticateCaller: createCallerAuthenticator({ bearer, apiKeys, mtls }) };
}
