/**
 * @module http/credentials
 * Upstream credentials tollgate holds on behalf of callers. Secrets are read once when the config is loaded, so a
 * missing file or variable fails the config load, not a request, and never appear in logs.
 */
import { readFileSync } from 'node:fs';
import type { UpstreamCredentialConfig } from '../config/schema.ts';
import { compilePatterns, type Matcher } from '../policy/glob.ts';

export interface UpstreamCredential {
  readonly name: string;
  readonly header: string;
  /** The full header value, prefix included. */
  readonly value: string;
  matches(host: string, path: string): boolean;
}

export class SecretError extends Error {
  override name = 'SecretError';
}

function readSecret(source: UpstreamCredentialConfig['secret'], name: string): string {
  if ('env' in source) {
    const value = process.env[source.env];
    if (value === undefined || value === '') {
      throw new SecretError(`upstream credential "${name}": expected environment variable ${source.env} to hold the secret, but it is not set`);
    }
    return value;
  }
  let text: string;
  try {
    text = readFileSync(source.file, 'utf8');
  } catch (err) {
    throw new SecretError(`upstream credential "${name}": cannot read secret file ${source.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new SecretError(`upstream credential "${name}": secret file ${source.file} is empty`);
  return value;
}

export function loadUpstreamCredentials(configs: readonly UpstreamCredentialConfig[]): UpstreamCredential[] {
  return configs.map((c) => {
    const secret = readSecret(c.secret, c.name);
    const host: Matcher | undefined = compilePatterns(c.match.host);
    const path: Matcher | undefined = compilePatterns(c.match.path);
    return {
      name: c.name,
      header: c.header.toLowerCase(),
      value: c.prefix + secret,
      matches: (h, p) => (host === undefined || host(h)) && (path === undefined || path(p)),
    };
  });
}
