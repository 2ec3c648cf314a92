/**
 * @module kafka/sasl/errors
 * The one error type the SASL building blocks throw. `code` is stable (audit records, metrics, tests); `message`
 * says what was expected, where (a byte offset into the SASL message when there is one) and what was found, and
 * never contains a secret: no bearer token, password, proof or extension value is ever quoted.
 */

export const SASL_ERROR_CODES = [
  /** Bytes that do not follow the mechanism's grammar; `offset` says where. */
  'malformed_message',
  /** A GS2 header asking for channel binding (`y` or `p=`): Kafka's mechanisms support none. */
  'unsupported_channel_binding',
  /** An OAUTHBEARER initial response without the `auth` key-value pair. */
  'missing_auth',
  /** An `auth` value whose scheme is not `Bearer`. */
  'invalid_auth_scheme',
  /** A key-value pair (OAUTHBEARER) or attribute (SCRAM) given twice. */
  'duplicate_key',
  /** A SCRAM `m=` mandatory extension: RFC 5802 says to fail when it is not understood (none are defined). */
  'unsupported_extension',
  /** An encoder given a value the message cannot carry (a NUL in a PLAIN field, an `auth` extension...). */
  'invalid_argument',
  /** The SCRAM server nonce does not extend the client nonce. */
  'nonce_mismatch',
  /** The SCRAM iteration count is below the mechanism's minimum or above the configured maximum. */
  'iteration_count_out_of_range',
  /** A SCRAM server-final-message carrying `e=`: the server refused; `serverError` holds its value. */
  'server_error',
  /** The SCRAM server signature does not match: the server does not know the password (or is not the server). */
  'server_signature_mismatch',
  /** A state-machine method called out of turn, or after a failure. */
  'invalid_state',
] as const;

export type SaslErrorCode = (typeof SASL_ERROR_CODES)[number];

/** The mechanisms these building blocks speak, as Kafka names them in SaslHandshake. */
export type SaslMechanismName = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'OAUTHBEARER';

export interface SaslErrorDetails {
  /** Byte offset into the message being parsed, when the error is about one position. */
  readonly offset?: number;
  /** The `e=` value of a SCRAM server-final-message (a short token such as `invalid-proof`, never a secret). */
  readonly serverError?: string;
}

export class SaslError extends Error {
  readonly code: SaslErrorCode;
  readonly mechanism: SaslMechanismName;
  readonly offset: number | undefined;
  readonly serverError: string | undefined;

  constructor(code: SaslErrorCode, mechanism: SaslMechanismName, message: string, details: SaslErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SaslError';
    this.code = code;
    this.mechanism = mechanism;
    this.offset = details.offset;
    this.serverError = details.serverError;
  }
}

export function isSaslError(value: unknown): value is SaslError {
  return value instanceof SaslError;
}

/**
 * How a byte found at a structural position (a separator, a key character) reads in an error message: printable
 * ASCII quoted, anything else as hex, end of input named. Never used for bytes of secrets.
 */
export function describeByte(byte: number | undefined): string {
  if (byte === undefined) return 'the end of the message';
  if (byte >= 0x21 && byte <= 0x7e) return `'${String.fromCharCode(byte)}'`;
  if (byte === 0x20) return 'a space';
  return `byte 0x${byte.toString(16).padStart(2, '0')}`;
}
