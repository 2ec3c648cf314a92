/**
 * @module identity/unverified
 * What a credential that was refused claims to be: the `sub` of a JWT read without verifying anything. Only for
 * counting failed authentications per claimed subject (src/signals/auth-failures.ts); never for deciding access.
 */

/** The `sub` a JWT claims, unverified; undefined when the token is not a readable JWT or has no string `sub`. */
export function claimedSubject(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  const payload = token.split('.')[1];
  // A JWT payload of more than 8 KiB is no token anyone issues: not worth decoding for a counter.
  if (payload === undefined || payload.length > 8192) return undefined;
  try {
    const sub = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }).sub;
    return typeof sub === 'string' && sub.length > 0 && sub.length <= 256 ? sub : undefined;
  } catch {
    return undefined;
  }
}
