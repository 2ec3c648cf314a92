/**
 * @module core/principal
 * Who a request comes from, once a credential has been verified. Protocol adapters never build one themselves:
 * identity/ does, from a token or a certificate.
 */

/** How the principal proved who it is. */
export const AUTH_METHODS = ['oidc', 'kubernetes', 'mtls', 'api-key'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

export interface Principal {
  /** The verified subject (`sub` claim, SPIFFE id, API key name). */
  readonly subject: string;
  /** Groups from the configured claim, de-duplicated, in claim order. */
  readonly groups: readonly string[];
  /** The issuer that vouched for the subject (token `iss`, trust domain, `api-key`). */
  readonly issuer: string;
  readonly authenticatedBy: AuthMethod;
  /** A stable id of the subject where its source has one (a Kubernetes service account's uid). */
  readonly uid?: string;
  /** Seconds since the epoch after which the credential is no longer valid; absent when it does not expire. */
  readonly expiresAt?: number;
}
