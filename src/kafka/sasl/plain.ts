/**
 * @module kafka/sasl/plain
 * SASL PLAIN (RFC 4616): one client message, `[authzid] NUL authcid NUL passwd`, UTF-8, no NUL inside a field;
 * authcid and passwd are non-empty. Kafka's broker additionally refuses an authzid that differs from the username.
 * Kafka does not SASLprep either field, and neither do we: bytes are the UTF-8 of the strings as given.
 */
import { SaslError } from './errors.ts';

const MECHANISM = 'PLAIN';
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface PlainCredentials {
  readonly username: string;
  readonly password: string;
  /** Authorization identity; absent (an empty field on the wire) means "the username". */
  readonly authzid?: string;
}

function checkField(value: string, what: string, allowEmpty: boolean): void {
  if (!allowEmpty && value.length === 0) throw new SaslError('invalid_argument', MECHANISM, `PLAIN: the ${what} must not be empty`);
  if (value.includes('\0')) throw new SaslError('invalid_argument', MECHANISM, `PLAIN: the ${what} must not contain NUL`);
  if (!value.isWellFormed()) throw new SaslError('invalid_argument', MECHANISM, `PLAIN: the ${what} is not well-formed Unicode (a lone surrogate)`);
}

/** `authzid \0 username \0 password`. Throws `SaslError('invalid_argument')` for an empty username/password or a NUL. */
export function encodePlain(credentials: PlainCredentials): Buffer {
  checkField(credentials.username, 'username', false);
  checkField(credentials.password, 'password', false);
  checkField(credentials.authzid ?? '', 'authzid', true);
  return Buffer.from(`${credentials.authzid ?? ''}\0${credentials.username}\0${credentials.password}`, 'utf8');
}

/** Parses a PLAIN message; throws `SaslError('malformed_message')` with the offending offset. */
export function parsePlain(bytes: Uint8Array): PlainCredentials {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const first = buf.indexOf(0);
  if (first === -1) throw new SaslError('malformed_message', MECHANISM, `PLAIN: expected a NUL after the authzid, found none in ${buf.length} byte(s)`, { offset: buf.length });
  const second = buf.indexOf(0, first + 1);
  if (second === -1) throw new SaslError('malformed_message', MECHANISM, `PLAIN: expected a NUL after the username (which starts at offset ${first + 1}), found none`, { offset: buf.length });
  const third = buf.indexOf(0, second + 1);
  if (third !== -1) throw new SaslError('malformed_message', MECHANISM, `PLAIN: expected exactly two NUL separators, found a third at offset ${third}`, { offset: third });
  if (second === first + 1) throw new SaslError('malformed_message', MECHANISM, `PLAIN: expected a username at offset ${first + 1}, found an empty field`, { offset: first + 1 });
  if (second + 1 === buf.length) throw new SaslError('malformed_message', MECHANISM, `PLAIN: expected a password at offset ${second + 1}, found an empty field`, { offset: second + 1 });
  const decode = (start: number, end: number, what: string): string => {
    try {
      return utf8.decode(buf.subarray(start, end));
    } catch {
      throw new SaslError('malformed_message', MECHANISM, `PLAIN: the ${what} at offset ${start} is not valid UTF-8`, { offset: start });
    }
  };
  const authzid = decode(0, first, 'authzid');
  const username = decode(first + 1, second, 'username');
  const password = decode(second + 1, buf.length, 'password');
  return authzid.length === 0 ? { username, password } : { username, password, authzid };
}
