/**
 * @module kafka/sasl/scram
 * A SCRAM-SHA-256 / SCRAM-SHA-512 client (RFC 5802, RFC 7677) as a small explicit state machine, for tollgate's own
 * connections to a broker that holds SCRAM credentials.
 *
 * ```
 *  initial ──clientFirstMessage()──▶ awaiting_server_first ──handleServerFirst(msg) → client-final──▶
 *  awaiting_server_final ──handleServerFinal(msg)──▶ complete          (any error: failed, for good)
 * ```
 *
 * What the client checks, failing closed with a `SaslError`:
 * - server-first: `r=` must extend the client nonce (`nonce_mismatch`), `s=` must be base64, `i=` must be a
 *   decimal within [minIterations, maxIterations] (`iteration_count_out_of_range`). Kafka's own client refuses
 *   fewer than 4096 iterations, and its broker stores 4096..16384 for both mechanisms (ScramMechanism), so those
 *   are the defaults; the maximum also caps the PBKDF2 work a hostile server can make us do. `m=` (a mandatory
 *   extension; none is defined) is refused (`unsupported_extension`);
 * - server-final: `e=` fails with the server's error (`server_error`); `v=` must equal the ServerSignature we
 *   computed, compared in constant time (`server_signature_mismatch`): only a server that knows the password's
 *   keys can produce it.
 *
 * Like Kafka's client: no channel binding (gs2 header `n,,`, so `c=biws`), no authzid, no SASLprep (the password is
 * used as its UTF-8 bytes; SASLprep changes nothing for ASCII). Kafka's broker, for its part, answers a wrong
 * password with SASL_AUTHENTICATION_FAILED rather than an `e=` server-final-message.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { describeByte, SaslError } from './errors.ts';
import { encodeSaslName } from './saslname.ts';

export type ScramMechanismName = 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

/** Kafka's ScramMechanism bounds, the same for both mechanisms. */
export const SCRAM_MIN_ITERATIONS = 4096;
export const SCRAM_MAX_ITERATIONS = 16384;

const HASHES: Readonly<Record<ScramMechanismName, { readonly name: 'sha256' | 'sha512'; readonly length: number }>> = {
  'SCRAM-SHA-256': { name: 'sha256', length: 32 },
  'SCRAM-SHA-512': { name: 'sha512', length: 64 },
};

/** The gs2 header of a client without channel binding or authzid, and its base64 (`c=` of client-final). */
const GS2_HEADER = 'n,,';
const CHANNEL_BINDING = Buffer.from(GS2_HEADER).toString('base64');

const COMMA = 0x2c;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** RFC 5802 `printable`: %x21-2B / %x2D-7E (printable ASCII except ','). */
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;

export interface ScramClientOptions {
  readonly mechanism: ScramMechanismName;
  readonly username: string;
  readonly password: string;
  /**
   * The client nonce: printable ASCII without ','. Default: 24 bytes from crypto.randomBytes, base64url (32
   * characters). Inject only in tests.
   */
  readonly nonce?: string;
  /**
   * Derives the keys from the password, salt and iteration count; `deriveScramKeys` by default. A gateway that
   * authenticates every connection with one credential passes a memoized one: PBKDF2 is deliberately slow, and the
   * broker's salt and iteration count for a user do not change between connections.
   */
  readonly deriveKeys?: (mechanism: ScramMechanismName, password: string, salt: Uint8Array, iterations: number) => ScramKeys;
  /** Default 4096 (Kafka's minimum). */
  readonly minIterations?: number;
  /** Default 16384 (Kafka's maximum). */
  readonly maxIterations?: number;
}

export type ScramClientState = 'initial' | 'awaiting_server_first' | 'awaiting_server_final' | 'complete' | 'failed';

/** The keys RFC 5802 §3 derives from a password; exported for fake servers in tests. */
export interface ScramKeys {
  readonly saltedPassword: Buffer;
  readonly clientKey: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

/** SaltedPassword = Hi(password, salt, i) (PBKDF2 with HMAC-H), ClientKey, StoredKey = H(ClientKey), ServerKey. */
export function deriveScramKeys(mechanism: ScramMechanismName, password: string, salt: Uint8Array, iterations: number): ScramKeys {
  const hash = HASHES[mechanism];
  const saltedPassword = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, hash.length, hash.name);
  const clientKey = createHmac(hash.name, saltedPassword).update('Client Key').digest();
  const storedKey = createHash(hash.name).update(clientKey).digest();
  const serverKey = createHmac(hash.name, saltedPassword).update('Server Key').digest();
  return { saltedPassword, clientKey, storedKey, serverKey };
}

/**
 * `deriveScramKeys` remembering its last results (a handful of salts at most: one per broker credential), for
 * `ScramClientOptions.deriveKeys`.
 */
export function memoizedScramKeys(limit = 16): (mechanism: ScramMechanismName, password: string, salt: Uint8Array, iterations: number) => ScramKeys {
  const cache = new Map<string, ScramKeys>();
  return (mechanism, password, salt, iterations) => {
    const key = createHash('sha256').update(`${mechanism}\0${iterations}\0`).update(Buffer.from(salt)).update('\0').update(password, 'utf8').digest('base64');
    let keys = cache.get(key);
    if (keys === undefined) {
      keys = deriveScramKeys(mechanism, password, salt, iterations);
      if (cache.size >= limit) cache.delete(cache.keys().next().value!);
      cache.set(key, keys);
    }
    return keys;
  };
}

/** One `x=value` attribute of a SCRAM message, with the byte offset of its first character. */
interface Attribute {
  readonly name: string;
  readonly value: string;
  readonly offset: number;
}

export class ScramClient {
  readonly mechanism: ScramMechanismName;
  #state: ScramClientState = 'initial';
  readonly #username: string;
  #password: string;
  readonly #nonce: string;
  readonly #minIterations: number;
  readonly #maxIterations: number;
  readonly #deriveKeys: NonNullable<ScramClientOptions['deriveKeys']>;
  #clientFirstBare: Buffer | undefined;
  #expectedServerSignature: Buffer | undefined;

  constructor(options: ScramClientOptions) {
    const mechanism = options.mechanism;
    if (!Object.hasOwn(HASHES, mechanism)) {
      throw new SaslError('invalid_argument', 'SCRAM-SHA-512', `SCRAM: unknown mechanism ${JSON.stringify(mechanism)} (expected SCRAM-SHA-256 or SCRAM-SHA-512)`);
    }
    this.mechanism = mechanism;
    if (options.username.length === 0 || !options.username.isWellFormed() || options.username.includes('\0')) {
      throw new SaslError('invalid_argument', mechanism, `${mechanism}: the username must be non-empty, well-formed Unicode without NUL`);
    }
    if (!options.password.isWellFormed()) throw new SaslError('invalid_argument', mechanism, `${mechanism}: the password is not well-formed Unicode (a lone surrogate)`);
    const nonce = options.nonce ?? randomBytes(24).toString('base64url');
    if (!PRINTABLE.test(nonce)) throw new SaslError('invalid_argument', mechanism, `${mechanism}: the client nonce must be printable ASCII without ','`);
    const minIterations = options.minIterations ?? SCRAM_MIN_ITERATIONS;
    const maxIterations = options.maxIterations ?? SCRAM_MAX_ITERATIONS;
    if (!Number.isSafeInteger(minIterations) || minIterations < 1 || !Number.isSafeInteger(maxIterations) || maxIterations < minIterations) {
      throw new SaslError('invalid_argument', mechanism, `${mechanism}: iteration bounds must be integers with 1 <= minIterations (${minIterations}) <= maxIterations (${maxIterations})`);
    }
    this.#username = options.username;
    this.#password = options.password;
    this.#nonce = nonce;
    this.#minIterations = minIterations;
    this.#maxIterations = maxIterations;
    this.#deriveKeys = options.deriveKeys ?? deriveScramKeys;
  }

  get state(): ScramClientState {
    return this.#state;
  }

  /** `n,,n=<username>,r=<client nonce>`: the first SaslAuthenticate auth_bytes. */
  clientFirstMessage(): Buffer {
    this.#expectState('initial', 'clientFirstMessage');
    this.#clientFirstBare = Buffer.from(`n=${encodeSaslName(this.#username)},r=${this.#nonce}`, 'utf8');
    this.#state = 'awaiting_server_first';
    return Buffer.concat([Buffer.from(GS2_HEADER), this.#clientFirstBare]);
  }

  /** Checks the server-first-message and returns the client-final-message `c=biws,r=<nonce>,p=<ClientProof>`. */
  handleServerFirst(message: Uint8Array): Buffer {
    this.#expectState('awaiting_server_first', 'handleServerFirst');
    try {
      const serverFirst = Buffer.from(message);
      const attributes = this.#attributes(serverFirst, 'server-first-message');
      const first = attributes[0];
      if (first?.name === 'm') {
        throw new SaslError('unsupported_extension', this.mechanism, `${this.mechanism} server-first-message: a mandatory extension ('m=' at offset ${first.offset}) that this client does not support`, { offset: first.offset });
      }
      const nonce = this.#expect(attributes, 0, 'r', 'the combined nonce', serverFirst.length, 'server-first-message');
      if (!PRINTABLE.test(nonce.value)) throw this.#malformed('server-first-message', nonce.offset + 2, 'the nonce must be printable ASCII without \',\'');
      if (!nonce.value.startsWith(this.#nonce) || nonce.value.length === this.#nonce.length) {
        throw new SaslError('nonce_mismatch', this.mechanism,
          `${this.mechanism} server-first-message: the nonce at offset ${nonce.offset + 2} must be the client nonce (${this.#nonce.length} characters) followed by the server's, found one that ${nonce.value.startsWith(this.#nonce) ? 'adds nothing to it' : 'does not start with it'}`,
          { offset: nonce.offset + 2 });
      }
      const saltAttribute = this.#expect(attributes, 1, 's', 'the salt', serverFirst.length, 'server-first-message');
      if (saltAttribute.value.length === 0 || !BASE64.test(saltAttribute.value)) {
        throw this.#malformed('server-first-message', saltAttribute.offset + 2, 'expected the salt in base64');
      }
      const iterationsAttribute = this.#expect(attributes, 2, 'i', 'the iteration count', serverFirst.length, 'server-first-message');
      if (!/^[1-9][0-9]{0,9}$/.test(iterationsAttribute.value)) {
        throw this.#malformed('server-first-message', iterationsAttribute.offset + 2, 'expected the iteration count as a positive decimal integer');
      }
      const iterations = Number(iterationsAttribute.value);
      if (iterations < this.#minIterations || iterations > this.#maxIterations) {
        throw new SaslError('iteration_count_out_of_range', this.mechanism,
          `${this.mechanism} server-first-message: iteration count ${iterations} is outside [${this.#minIterations}, ${this.#maxIterations}]`,
          { offset: iterationsAttribute.offset + 2 });
      }
      // Later attributes are extensions, which RFC 5802 says to ignore when not understood.

      const keys = this.#deriveKeys(this.mechanism, this.#password, Buffer.from(saltAttribute.value, 'base64'), iterations);
      this.#password = '';
      const withoutProof = Buffer.from(`c=${CHANNEL_BINDING},r=${nonce.value}`, 'utf8');
      const authMessage = Buffer.concat([this.#clientFirstBare!, Buffer.from(','), serverFirst, Buffer.from(','), withoutProof]);
      const hash = HASHES[this.mechanism].name;
      const clientSignature = createHmac(hash, keys.storedKey).update(authMessage).digest();
      const proof = Buffer.alloc(clientSignature.length);
      for (let i = 0; i < proof.length; i++) proof[i] = keys.clientKey[i]! ^ clientSignature[i]!;
      this.#expectedServerSignature = createHmac(hash, keys.serverKey).update(authMessage).digest();
      this.#state = 'awaiting_server_final';
      return Buffer.concat([withoutProof, Buffer.from(`,p=${proof.toString('base64')}`)]);
    } catch (err) {
      this.#fail();
      throw err;
    }
  }

  /** Checks the server-final-message: `v=<ServerSignature>` completes the exchange; `e=<error>` fails it. */
  handleServerFinal(message: Uint8Array): void {
    this.#expectState('awaiting_server_final', 'handleServerFinal');
    try {
      const serverFinal = Buffer.from(message);
      const attributes = this.#attributes(serverFinal, 'server-final-message');
      const first = attributes[0];
      if (first?.name === 'e') {
        const shown = JSON.stringify(first.value.length > 80 ? `${first.value.slice(0, 80)}…` : first.value);
        throw new SaslError('server_error', this.mechanism, `${this.mechanism}: the server refused the authentication: e=${shown}`, { offset: first.offset + 2, serverError: first.value });
      }
      const verifier = this.#expect(attributes, 0, 'v', "the server signature ('v=') or an error ('e=')", serverFinal.length, 'server-final-message');
      const expected = this.#expectedServerSignature!;
      const signature = BASE64.test(verifier.value) ? Buffer.from(verifier.value, 'base64') : undefined;
      if (signature === undefined || signature.length === 0) throw this.#malformed('server-final-message', verifier.offset + 2, 'expected the server signature in base64');
      if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
        throw new SaslError('server_signature_mismatch', this.mechanism, `${this.mechanism}: the server signature does not match: the server did not prove it knows the credentials`, { offset: verifier.offset + 2 });
      }
      this.#expectedServerSignature = undefined;
      this.#state = 'complete';
    } catch (err) {
      this.#fail();
      throw err;
    }
  }

  #fail(): void {
    this.#state = 'failed';
    this.#password = '';
    this.#expectedServerSignature = undefined;
  }

  #expectState(state: ScramClientState, method: string): void {
    if (this.#state !== state) {
      throw new SaslError('invalid_state', this.mechanism, `${this.mechanism}: ${method}() called in state ${this.#state} (expected ${state})`);
    }
  }

  #malformed(what: string, offset: number, message: string): SaslError {
    return new SaslError('malformed_message', this.mechanism, `${this.mechanism} ${what}: ${message} at offset ${offset}`, { offset });
  }

  /** Splits `a=v,b=w,...` into attributes; each must be one letter, '=', then a value without ','. */
  #attributes(buf: Buffer, what: string): Attribute[] {
    const attributes: Attribute[] = [];
    let start = 0;
    for (;;) {
      const end = buf.indexOf(COMMA, start) === -1 ? buf.length : buf.indexOf(COMMA, start);
      const letter = buf[start];
      const isLetter = letter !== undefined && ((letter >= 0x41 && letter <= 0x5a) || (letter >= 0x61 && letter <= 0x7a));
      if (!isLetter || buf[start + 1] !== 0x3d) {
        const at = isLetter ? start + 1 : start;
        throw this.#malformed(what, at, `expected an attribute ('<letter>=') but found ${describeByte(buf[at])}`);
      }
      attributes.push({ name: String.fromCharCode(letter), value: buf.toString('utf8', start + 2, end), offset: start });
      if (end === buf.length) return attributes;
      start = end + 1;
    }
  }

  #expect(attributes: readonly Attribute[], index: number, name: string, what: string, length: number, message: string): Attribute {
    const attribute = attributes[index];
    if (attribute === undefined) throw this.#malformed(message, length, `expected '${name}=' (${what}) but found the end of the message`);
    if (attribute.name !== name) throw this.#malformed(message, attribute.offset, `expected '${name}=' (${what}) but found '${attribute.name}='`);
    return attribute;
  }
}
