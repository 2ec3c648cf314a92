/**
 * @module kafka/sasl/oauthbearer
 * SASL OAUTHBEARER (RFC 7628) as Kafka clients speak it (KIP-255), as pure functions over bytes.
 *
 * The client's initial response is a GS2 header, then key-value pairs each ended by \x01, then a final \x01:
 * ```
 * n,[a=<authzid>],\x01auth=Bearer <token>\x01[<key>=<value>\x01]...\x01
 * ```
 * `auth` carries the token; every other key is a SASL extension (KIP-342), e.g. a tenant or cluster id.
 *
 * When the token is refused, the server answers with an error challenge, a JSON object (RFC 7628 §3.2.2), and the
 * exchange is still open: the client must answer with a lone \x01 (RFC 7628 §3.2.3), and only then does the
 * server fail the authentication. Kafka's broker does exactly that: the challenge goes out as SaslAuthenticate
 * auth_bytes with error_code 0; on the client's \x01 the broker answers SASL_AUTHENTICATION_FAILED (58) with the
 * same JSON as error_message, and closes the connection. A server that is not satisfied sends the challenge, waits
 * for `isOAuthBearerClientAck`, then fails.
 *
 * Grammar choices (each is the stricter or the RFC's reading where RFC 7628 and Kafka's parser differ):
 * - channel binding: only the `n` flag; `y` and `p=` are refused (`unsupported_channel_binding`), as Kafka does;
 * - the token is an RFC 6750 b64token (letters, digits, `-._~+/`, trailing `=`), a superset of what Kafka's own
 *   parser accepts (JWS compact serialisation: no `~+/=`); the scheme `Bearer` is matched case-insensitively;
 * - extension keys are ALPHA+ and values VCHAR / SP / HTAB / CR / LF, possibly empty (RFC 7628 §3.1);
 * - a key given twice is refused (`duplicate_key`): Kafka keeps the last, which would let a second `auth` smuggle
 *   a different token past anything that read the first.
 */
import { describeByte, SaslError } from './errors.ts';
import { decodeSaslName, encodeSaslName } from './saslname.ts';

const MECHANISM = 'OAUTHBEARER';
const SOH = 0x01;
const COMMA = 0x2c;
const EQUALS = 0x3d;
const SPACE = 0x20;

/** The reserved key that carries the HTTP-style credentials (`Bearer <token>`). */
export const OAUTHBEARER_AUTH_KEY = 'auth';

export interface OAuthBearerInitialResponse {
  /** The bearer token, exactly as sent (a JWT for Kafka's built-in login callback). */
  readonly token: string;
  /** The GS2 authorization identity, decoded (`=2C` → `,`, `=3D` → `=`); absent when the header had none. */
  readonly authzid?: string;
  /** Every key-value pair except `auth` (KIP-342 SASL extensions). */
  readonly extensions: Readonly<Record<string, string>>;
}

/** RFC 7628 §3.2.2's error challenge. */
export interface OAuthBearerErrorChallenge {
  /** `invalid_token`, `insufficient_scope` or `invalid_request` (RFC 6750 §3.1 error codes); Kafka's default is `invalid_token`. */
  readonly status: string;
  /** Space-separated scopes that would be sufficient. */
  readonly scope?: string;
  /** URL of an OpenID Connect discovery document for the issuer the server trusts. */
  readonly openidConfiguration?: string;
}

/** HTTP authentication schemes from IANA's registry: safe to quote in an error message, unlike an arbitrary word. */
const KNOWN_SCHEMES = new Set(['basic', 'digest', 'negotiate', 'ntlm', 'dpop', 'hoba', 'mutual', 'scram-sha-1', 'scram-sha-256', 'vapid', 'privatetoken', 'concealed', 'gnap']);

const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const EXTENSION_KEY = /^[A-Za-z]+$/;
const EXTENSION_VALUE = /^[\x21-\x7e \t\r\n]*$/;

function isAlpha(byte: number): boolean {
  return (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
}

/** VCHAR / SP / HTAB / CR / LF. */
function isValueByte(byte: number): boolean {
  return (byte >= 0x20 && byte <= 0x7e) || byte === 0x09 || byte === 0x0d || byte === 0x0a;
}

/** b64token characters before any trailing '='. */
function isTokenByte(byte: number): boolean {
  return isAlpha(byte) || (byte >= 0x30 && byte <= 0x39) || byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e || byte === 0x2b || byte === 0x2f;
}

function malformed(offset: number, message: string): SaslError {
  return new SaslError('malformed_message', MECHANISM, `OAUTHBEARER initial response: ${message}`, { offset });
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function expectByte(buf: Buffer, offset: number, byte: number, what: string): void {
  if (buf[offset] !== byte) throw malformed(offset, `expected ${what} at offset ${offset}, found ${describeByte(buf[offset])}`);
}

/** True for the client's lone \x01, its answer to an error challenge (RFC 7628 §3.2.3). */
export function isOAuthBearerClientAck(bytes: Uint8Array): boolean {
  return bytes.length === 1 && bytes[0] === SOH;
}

/** The client's answer to an error challenge: a lone \x01. */
export function encodeOAuthBearerClientAck(): Buffer {
  return Buffer.from([SOH]);
}

/** Parses a client's initial response; throws `SaslError` naming what was expected at which byte offset. */
export function parseOAuthBearerInitialResponse(bytes: Uint8Array): OAuthBearerInitialResponse {
  const buf = toBuffer(bytes);
  if (buf.length === 0) throw malformed(0, "expected a GS2 header ('n,') at offset 0, found an empty message");
  if (isOAuthBearerClientAck(buf)) {
    throw malformed(0, "expected a GS2 header ('n,') at offset 0, found the lone \\x01 a client sends to acknowledge an error challenge");
  }

  // GS2 header: gs2-cb-flag "," [authzid] ","
  const flag = buf[0]!;
  if (flag === 0x79 /* y */ || flag === 0x70 /* p */) {
    throw new SaslError('unsupported_channel_binding', MECHANISM,
      `OAUTHBEARER initial response: the GS2 header asks for channel binding ('${String.fromCharCode(flag)}' at offset 0); only 'n' (none) is supported`,
      { offset: 0 });
  }
  expectByte(buf, 0, 0x6e, "the GS2 channel-binding flag 'n'");
  expectByte(buf, 1, COMMA, "',' after the channel-binding flag");
  let pos = 2;
  let authzid: string | undefined;
  if (buf[pos] === 0x61 /* a */) {
    expectByte(buf, pos + 1, EQUALS, "'=' after 'a' (the GS2 authzid)");
    const start = pos + 2;
    let end = start;
    while (end < buf.length && buf[end] !== COMMA && buf[end] !== SOH) end++;
    if (buf[end] !== COMMA) {
      throw malformed(end, `expected ',' ending the authzid that starts at offset ${start}, found ${describeByte(buf[end])} at offset ${end}`);
    }
    authzid = decodeSaslName(buf, start, end, MECHANISM, 'OAUTHBEARER initial response', 'the authzid');
    pos = end + 1;
  } else if (buf[pos] === COMMA) {
    pos += 1;
  } else {
    throw malformed(pos, `expected 'a=<authzid>' or ',' ending the GS2 header at offset ${pos}, found ${describeByte(buf[pos])}`);
  }
  expectByte(buf, pos, SOH, 'byte 0x01 after the GS2 header');
  pos += 1;

  // *kvpair kvsep, each kvpair being key "=" value kvsep.
  const pairs = new Map<string, { value: string; offset: number }>();
  for (;;) {
    if (pos >= buf.length) throw malformed(pos, `expected a key-value pair or the final byte 0x01 at offset ${pos}, found the end of the message`);
    if (buf[pos] === SOH) {
      pos += 1;
      break;
    }
    const keyStart = pos;
    while (pos < buf.length && isAlpha(buf[pos]!)) pos++;
    if (pos === keyStart) throw malformed(pos, `expected a key (letters A-Z, a-z) or the final byte 0x01 at offset ${pos}, found ${describeByte(buf[pos])}`);
    const key = buf.toString('latin1', keyStart, pos);
    if (buf[pos] !== EQUALS) throw malformed(pos, `expected '=' after key "${key}" at offset ${pos}, found ${describeByte(buf[pos])}`);
    pos += 1;
    const valueStart = pos;
    while (pos < buf.length && isValueByte(buf[pos]!)) pos++;
    if (pos >= buf.length) throw malformed(pos, `expected byte 0x01 ending the value of key "${key}" at offset ${pos}, found the end of the message`);
    if (buf[pos] !== SOH) {
      throw malformed(pos, `expected byte 0x01 ending the value of key "${key}" at offset ${pos}, found ${describeByte(buf[pos])}, which a value may not contain`);
    }
    if (pairs.has(key)) {
      throw new SaslError('duplicate_key', MECHANISM, `OAUTHBEARER initial response: key "${key}" at offset ${keyStart} was already given at offset ${pairs.get(key)!.offset}`, { offset: keyStart });
    }
    pairs.set(key, { value: buf.toString('latin1', valueStart, pos), offset: valueStart });
    pos += 1;
  }
  if (pos !== buf.length) {
    throw malformed(pos, `expected the end of the message after the final byte 0x01 at offset ${pos - 1}, found ${buf.length - pos} more byte(s)`);
  }

  const auth = pairs.get(OAUTHBEARER_AUTH_KEY);
  if (auth === undefined) {
    throw new SaslError('missing_auth', MECHANISM, `OAUTHBEARER initial response: no "${OAUTHBEARER_AUTH_KEY}" key-value pair (expected ${OAUTHBEARER_AUTH_KEY}=Bearer <token>)`, { offset: pos });
  }
  const token = parseAuthValue(auth.value, auth.offset);
  const extensions: Record<string, string> = {};
  for (const [key, { value }] of pairs) if (key !== OAUTHBEARER_AUTH_KEY) extensions[key] = value;
  return authzid === undefined ? { token, extensions } : { token, authzid, extensions };
}

/** `Bearer 1*SP b64token` → the token. `base` is the value's offset in the message, for error offsets. */
function parseAuthValue(value: string, base: number): string {
  const space = value.indexOf(' ');
  const scheme = space === -1 ? value : value.slice(0, space);
  if (space === -1) {
    throw malformed(base, `expected "Bearer <token>" as the value of "${OAUTHBEARER_AUTH_KEY}" at offset ${base}, found no space after a scheme`);
  }
  if (scheme.toLowerCase() !== 'bearer') {
    // Only a registered HTTP scheme is quoted: a value without a scheme may start with a secret.
    const shown = KNOWN_SCHEMES.has(scheme.toLowerCase()) ? `"${scheme}"` : `a ${scheme.length}-character word that is not a known scheme`;
    throw new SaslError('invalid_auth_scheme', MECHANISM, `OAUTHBEARER initial response: expected the scheme "Bearer" at offset ${base}, found ${shown}`, { offset: base });
  }
  let i = space;
  while (value.charCodeAt(i) === SPACE) i++;
  const tokenStart = i;
  while (i < value.length && isTokenByte(value.charCodeAt(i))) i++;
  while (i < value.length && value.charCodeAt(i) === EQUALS) i++;
  if (i === tokenStart) {
    throw malformed(base + i, `expected a bearer token after "Bearer " at offset ${base + i}, found ${describeByte(i < value.length ? value.charCodeAt(i) : undefined)}`);
  }
  if (i !== value.length) {
    // Not quoted: the byte sits inside the token.
    throw malformed(base + i, `the bearer token has a character at offset ${base + i} that an RFC 6750 b64token may not contain (letters, digits, '-._~+/', then only '=')`);
  }
  return value.slice(tokenStart);
}

export interface OAuthBearerInitialResponseInput {
  readonly token: string;
  readonly authzid?: string;
  readonly extensions?: Readonly<Record<string, string>>;
}

/**
 * Encodes a client initial response: `n,[a=<authzid>],\x01auth=Bearer <token>\x01<key>=<value>\x01...\x01`.
 * Throws `SaslError('invalid_argument')` for anything the grammar cannot carry.
 */
export function encodeOAuthBearerInitialResponse(input: OAuthBearerInitialResponseInput): Buffer {
  if (!B64TOKEN.test(input.token)) {
    throw new SaslError('invalid_argument', MECHANISM, `OAUTHBEARER: the token (${input.token.length} characters) is not an RFC 6750 b64token (letters, digits, '-._~+/', then only '=')`);
  }
  let authzid = '';
  if (input.authzid !== undefined) {
    if (input.authzid.length === 0 || input.authzid.includes('\0') || !input.authzid.isWellFormed()) {
      throw new SaslError('invalid_argument', MECHANISM, 'OAUTHBEARER: an authzid must be non-empty, well-formed Unicode without NUL');
    }
    authzid = `a=${encodeSaslName(input.authzid)}`;
  }
  let pairs = `${OAUTHBEARER_AUTH_KEY}=Bearer ${input.token}\x01`;
  for (const [key, value] of Object.entries(input.extensions ?? {})) {
    if (key === OAUTHBEARER_AUTH_KEY) throw new SaslError('invalid_argument', MECHANISM, `OAUTHBEARER: "${OAUTHBEARER_AUTH_KEY}" is reserved and cannot be an extension`);
    if (!EXTENSION_KEY.test(key)) throw new SaslError('invalid_argument', MECHANISM, `OAUTHBEARER: extension name ${JSON.stringify(key)} must be letters A-Z, a-z only`);
    if (!EXTENSION_VALUE.test(value)) {
      throw new SaslError('invalid_argument', MECHANISM, `OAUTHBEARER: the value of extension "${key}" must be printable ASCII, space, tab, CR or LF`);
    }
    pairs += `${key}=${value}\x01`;
  }
  return Buffer.from(`n,${authzid},\x01${pairs}\x01`, 'utf8');
}

/**
 * The server's error challenge (RFC 7628 §3.2.2), laid out as Kafka's broker lays it out:
 * `{"status":"invalid_token", "scope":"...", "openid-configuration":"..."}` (fields after status only when given).
 * Values are JSON-escaped, so the result is always valid JSON.
 */
export function encodeOAuthBearerErrorChallenge(challenge: OAuthBearerErrorChallenge = { status: 'invalid_token' }): Buffer {
  let json = `{"status":${JSON.stringify(challenge.status)}`;
  if (challenge.scope !== undefined) json += `, "scope":${JSON.stringify(challenge.scope)}`;
  if (challenge.openidConfiguration !== undefined) json += `, "openid-configuration":${JSON.stringify(challenge.openidConfiguration)}`;
  return Buffer.from(`${json}}`, 'utf8');
}

/** Reads a server's error challenge (for tollgate as a client, and for tests). */
export function parseOAuthBearerErrorChallenge(bytes: Uint8Array): OAuthBearerErrorChallenge {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new SaslError('malformed_message', MECHANISM, `OAUTHBEARER error challenge: expected a JSON object (RFC 7628 §3.2.2), found ${bytes.length} byte(s) that are not JSON`, { offset: 0 });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SaslError('malformed_message', MECHANISM, 'OAUTHBEARER error challenge: expected a JSON object (RFC 7628 §3.2.2)', { offset: 0 });
  }
  const record = parsed as Record<string, unknown>;
  const field = (name: string): string | undefined => {
    const value = record[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new SaslError('malformed_message', MECHANISM, `OAUTHBEARER error challenge: "${name}" must be a string`, { offset: 0 });
    return value;
  };
  const status = field('status');
  if (status === undefined) throw new SaslError('malformed_message', MECHANISM, 'OAUTHBEARER error challenge: "status" is required (RFC 7628 §3.2.2)', { offset: 0 });
  const scope = field('scope');
  const openidConfiguration = field('openid-configuration');
  return {
    status,
    ...(scope !== undefined ? { scope } : {}),
    ...(openidConfiguration !== undefined ? { openidConfiguration } : {}),
  };
}
