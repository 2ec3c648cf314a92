/**
 * @module http/credentials
 * Upstream credentials tollgate holds on behalf of callers. Secrets are read when the config is loaded, so a missing
 * file or variable fails the config load, not a request; a file is read again every minute (a rotated token is
 * picked up, an unreadable one keeps the last good value). They never appear in logs.
 */
import { rereadingSecret } from '../config/secrets.ts';
import type { UpstreamCredentialConfig } from '../config/schema.ts';
import { compilePatterns, type Matcher } from '../policy/glob.ts';

export interface UpstreamCredential {
  readonly name: string;
  readonly header: string;
  /** The full header value, prefix included. */
  readonly value: string;
  /** Kubernetes: send the caller as Impersonate-User / Impersonate-Group alongside the credential. */
  readonly impersonate: boolean;
  matches(host: string, path: string): boolean;
}

export function loadUpstreamCredentials(configs: readonly UpstreamCredentialConfig[]): UpstreamCredential[] {
  return configs.map((c) => {
    // A file is re-read every minute: a projected service-account token or a mounted Secret rotates underneath.
    const secret = rereadingSecret(c.secret, `upstream credential "${c.name}"`);
    const host: Matcher | undefined = compilePatterns(c.match.host);
    const path: Matcher | undefined = compilePatterns(c.match.path);
    return {
      name: c.name,
      header: c.header.toLowerCase(),
      get value() { return c.prefix + secret(); },
      impersonate: c.impersonate,
      matches: (h, p) => (host === undefined || host(h)) && (path === undefined || path(p)),
    };
  });
}
