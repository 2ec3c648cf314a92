/**
 * @module identity/errors
 * The one error type identity/ throws. Protocol adapters map `code` to their own denial shape (HTTP 401, a Kafka
 * SASL error) and put it in audit records; `message` says what was expected and what was found, and never contains
 * the token itself.
 */

export const IDENTITY_ERROR_CODES = [
  'token_missing',
  'token_malformed',
  'token_expired',
  'token_not_yet_valid',
  'signature_invalid',
  'issuer_unknown',
  'issuer_mismatch',
  'audience_mismatch',
  'algorithm_not_allowed',
  'key_not_found',
  'discovery_failed',
  'jwks_unavailable',
  'subject_missing',
  /** A Kubernetes token's subject is not `system:serviceaccount:<namespace>:<name>`. */
  'subject_malformed',
  /** The Kubernetes API server reviewed the token and did not authenticate it (TokenReview). */
  'token_rejected',
  /** The Kubernetes API server could not be asked (unreachable, refused tollgate's credential, odd answer): fail closed. */
  'token_review_failed',
  'api_key_malformed',
  'api_key_unknown',
  /** More than one credential that could each name the caller (Authorization and x-api-key). */
  'credentials_ambiguous',
] as const;

export type IdentityErrorCode = (typeof IDENTITY_ERROR_CODES)[number];

export class IdentityError extends Error {
  readonly code: IdentityErrorCode;

  constructor(code: IdentityErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IdentityError';
    this.code = code;
  }
}

export function isIdentityError(value: unknown): value is IdentityError {
  return value instanceof IdentityError;
}

/**
 * Renders an untrusted value (a claim from a token, a field of a remote document) for an error message: JSON-quoted
 * so control characters cannot forge log lines, and cut short so a hostile token cannot blow up a log record.
 */
export function describeValue(value: unknown, max = 120): string {
  if (value === undefined) return 'none';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = `<${typeof value}>`;
  }
  return text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
}
