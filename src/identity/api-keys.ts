/**
 * @module identity/api-keys
 * Static API keys for legacy callers that cannot obtain a token. The config holds only each key's SHA-256 (hex),
 * never the key: a leaked config file or a log line of it gives nobody a key. A presented key is hashed and its
 * digest compared with every configured digest in constant time (no early exit), so neither timing nor the order
 * of the list says how close a guess came.
 *
 * An unsalted digest is enough because keys are long random strings, not passwords (`tollgate apikey-digest
 * --generate` makes one); a short guessable key would be as weak here as anywhere.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Principal } from '../core/principal.ts';
import { IdentityError, describeValue } from './errors.ts';
import type { GroupMapper } from './group-mappings.ts';

export const API_KEY_ISSUER = 'api-key';

export interface ApiKeyOptions {
  /** The principal's subject; unique. */
  readonly name: string;
  /** Hex SHA-256 of the key. */
  readonly sha256: string;
  readonly groups: readonly string[];
}

export interface ApiKeys {
  readonly names: readonly string[];
  /** The principal of the key's entry. Throws IdentityError `api_key_malformed` or `api_key_unknown`. */
  authenticate(key: string): Principal;
}

/** Longest key accepted; anything larger is refused before it is hashed. */
export const MAX_API_KEY_LENGTH = 1024;
// Visible ASCII only: a key is copied into headers and shell variables, and whitespace there is always a mistake.
const KEY = /^[\x21-\x7e]+$/;
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

/** The hex SHA-256 of a key, as `identity.apiKeys[].sha256` wants it. */
export function apiKeyDigest(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function createApiKeys(entries: readonly ApiKeyOptions[], mapGroups?: GroupMapper): ApiKeys {
  const names = new Set<string>();
  const digests = new Set<string>();
  const compiled = entries.map((entry) => {
    if (typeof entry.name !== 'string' || entry.name.length === 0) throw new TypeError('identity.apiKeys: expected every key to have a name');
    if (names.has(entry.name)) throw new TypeError(`identity.apiKeys: the name ${describeValue(entry.name)} is used twice`);
    if (!HEX_SHA256.test(entry.sha256)) {
      throw new TypeError(`identity.apiKeys ${describeValue(entry.name)}: expected sha256 to be 64 hex digits (the SHA-256 of the key, not the key)`);
    }
    const hex = entry.sha256.toLowerCase();
    if (digests.has(hex)) throw new TypeError(`identity.apiKeys ${describeValue(entry.name)}: the same key digest is configured twice`);
    names.add(entry.name);
    digests.add(hex);
    let principal: Principal = {
      subject: entry.name,
      groups: Object.freeze([...new Set(entry.groups)]),
      issuer: API_KEY_ISSUER,
      authenticatedBy: 'api-key',
    };
    if (mapGroups) principal = mapGroups(principal);
    return { digest: Buffer.from(hex, 'hex'), principal: Object.freeze(principal) };
  });

  return {
    names: [...names],
    authenticate(key) {
      if (typeof key !== 'string' || key.length === 0) throw new IdentityError('token_missing', 'expected an API key, found none');
      if (key.length > MAX_API_KEY_LENGTH) {
        throw new IdentityError('api_key_malformed', `expected an API key of at most ${MAX_API_KEY_LENGTH} characters, found ${key.length}`);
      }
      if (!KEY.test(key)) throw new IdentityError('api_key_malformed', 'expected an API key of visible ASCII characters, found other characters');
      const digest = createHash('sha256').update(key, 'utf8').digest();
      let found: Principal | undefined;
      for (const entry of compiled) {
        if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry.principal;
      }
      if (found === undefined) throw new IdentityError('api_key_unknown', 'expected a configured API key, found one that is not');
      return found;
    },
  };
}
