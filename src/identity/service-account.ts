/**
 * @module identity/service-account
 * Kubernetes service-account identities, whichever way their token was checked (locally against the cluster
 * issuer's keys, or by the API server in a TokenReview): the username `system:serviceaccount:<namespace>:<name>`
 * and the groups Kubernetes itself gives every service account, `system:serviceaccounts` and
 * `system:serviceaccounts:<namespace>`, so rules can be written the way RBAC bindings are.
 */
import type { JWTPayload } from 'jose';
import type { Principal } from '../core/principal.ts';
import { IdentityError, describeValue } from './errors.ts';

export const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';
export const ALL_SERVICE_ACCOUNTS_GROUP = 'system:serviceaccounts';

export interface ServiceAccountName {
  readonly namespace: string;
  readonly name: string;
}

// Kubernetes names: a namespace is a DNS-1123 label, a service account a DNS-1123 subdomain.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The namespace and name in `system:serviceaccount:<namespace>:<name>`; undefined for anything else. */
export function parseServiceAccountUsername(username: string): ServiceAccountName | undefined {
  if (!username.startsWith(SERVICE_ACCOUNT_PREFIX)) return undefined;
  const parts = username.slice(SERVICE_ACCOUNT_PREFIX.length).split(':');
  if (parts.length !== 2) return undefined;
  const [namespace, name] = parts as [string, string];
  if (namespace.length > 63 || !DNS_LABEL.test(namespace)) return undefined;
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) return undefined;
  return { namespace, name };
}

/** The groups Kubernetes puts every service account of `namespace` in. */
export function serviceAccountGroups(namespace: string): string[] {
  return [ALL_SERVICE_ACCOUNTS_GROUP, `${ALL_SERVICE_ACCOUNTS_GROUP}:${namespace}`];
}

/**
 * The principal of a service-account token the cluster issuer's keys verified (an OidcVerifier `refine`): the
 * subject must be a service account, groups are the service-account groups (the token carries none), the uid comes
 * from the `kubernetes.io` claim of a bound token. Throws `subject_malformed`.
 */
export function serviceAccountPrincipal(verified: Principal, claims: Readonly<JWTPayload>): Principal {
  const account = parseServiceAccountUsername(verified.subject);
  if (account === undefined) {
    throw new IdentityError(
      'subject_malformed',
      `expected sub "system:serviceaccount:<namespace>:<name>" in a token of ${verified.issuer}, found ${describeValue(verified.subject)}`,
    );
  }
  const uid = serviceAccountUid(claims);
  return {
    subject: verified.subject,
    groups: Object.freeze(serviceAccountGroups(account.namespace)),
    issuer: verified.issuer,
    authenticatedBy: 'kubernetes',
    ...(uid !== undefined && { uid }),
    ...(verified.expiresAt !== undefined && { expiresAt: verified.expiresAt }),
  };
}

/** `kubernetes.io.serviceaccount.uid` of a bound service-account token. */
function serviceAccountUid(claims: Readonly<JWTPayload>): string | undefined {
  const k8s = claims['kubernetes.io'];
  if (k8s === null || typeof k8s !== 'object') return undefined;
  const account = (k8s as Record<string, unknown>)['serviceaccount'];
  if (account === null || typeof account !== 'object') return undefined;
  const uid = (account as Record<string, unknown>)['uid'];
  return typeof uid === 'string' && uid.length > 0 ? uid : undefined;
}
