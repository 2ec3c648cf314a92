/**
 * @module config/secrets
 * Secrets named by the config (`{env: NAME}` or `{file: PATH}`) are read once, when the config is loaded, so a missing
 * one fails the load, not a request. Errors name the secret's purpose and source, never its value.
 */
import { readFileSync } from 'node:fs';

export type SecretSource = { readonly env: string } | { readonly file: string };

export class SecretError extends Error {
  override name = 'SecretError';
}

/** `purpose` names the secret in errors, e.g. `upstream credential "demo"`. */
export function readSecret(source: SecretSource, purpose: string): string {
  if ('env' in source) {
    const value = process.env[source.env];
    if (value === undefined || value === '') {
      throw new SecretError(`${purpose}: expected environment variable ${source.env} to hold the secret, but it is not set`);
    }
    return value;
  }
  let text: string;
  try {
    text = readFileSync(source.file, 'utf8');
  } catch (err) {
    throw new SecretError(`${purpose}: cannot read secret file ${source.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new SecretError(`${purpose}: secret file ${source.file} is empty`);
  return value;
}
