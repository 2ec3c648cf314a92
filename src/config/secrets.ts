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

/**
 * A secret that may change while tollgate runs (a Kubernetes projected token, rotated by the kubelet): read now, so
 * a missing one fails the load, then a file is read again when the last read is older than `rereadMs`. A re-read
 * that fails keeps the last good value (the file is swapped atomically by the kubelet; a failure is transient, and
 * the party it is sent to says so if the value went stale).
 */
export function rereadingSecret(source: SecretSource, purpose: string, rereadMs = 60_000): () => string {
  let value = readSecret(source, purpose);
  if ('env' in source) return () => value;
  let readAt = Date.now();
  return () => {
    const now = Date.now();
    if (now - readAt >= rereadMs) {
      readAt = now;
      try {
        value = readSecret(source, purpose);
      } catch {
        // keep the last good value (see above)
      }
    }
    return value;
  };
}

/** A PEM certificate bundle (a CA), read once when the config is loaded; `purpose` names it in errors. */
export function readCertificateFile(file: string, purpose: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SecretError(`${purpose}: cannot read CA file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new SecretError(`${purpose}: expected PEM certificates in ${file}, found none`);
  return text;
}
