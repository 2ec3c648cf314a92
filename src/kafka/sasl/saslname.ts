/**
 * @module kafka/sasl/saslname
 * The `saslname` encoding shared by the GS2 authzid of OAUTHBEARER (RFC 7628 via RFC 5801) and the SCRAM username
 * (RFC 5802 §5.1): ',' travels as `=2C` and '=' as `=3D`; any other '=' is an error. Names are UTF-8 without NUL.
 */
import { SaslError } from './errors.ts';
import type { SaslMechanismName } from './errors.ts';

const EQUALS = 0x3d;
const COMMA = 0x2c;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** `=` → `=3D`, `,` → `=2C` (in that order, so the `=` of an escape is never escaped again). */
export function encodeSaslName(name: string): string {
  return name.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

/**
 * Decodes `buf[start, end)`, a saslname, reporting offsets relative to the whole message. `context` starts error
 * messages ("OAUTHBEARER initial response"); `what` names the field ("the authzid", "the username").
 */
export function decodeSaslName(buf: Buffer, start: number, end: number, mechanism: SaslMechanismName, context: string, what: string): string {
  if (end <= start) throw new SaslError('malformed_message', mechanism, `${context}: expected ${what} (at least one character) at offset ${start}`, { offset: start });
  const out: number[] = [];
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    if (byte === 0) throw new SaslError('malformed_message', mechanism, `${context}: ${what} contains a NUL byte at offset ${i}`, { offset: i });
    if (byte === COMMA) throw new SaslError('malformed_message', mechanism, `${context}: ${what} contains an unescaped ',' at offset ${i} (expected '=2C')`, { offset: i });
    if (byte !== EQUALS) {
      out.push(byte);
      continue;
    }
    const escape = buf.toString('latin1', i + 1, Math.min(i + 3, end));
    if (escape === '2C') out.push(COMMA);
    else if (escape === '3D') out.push(EQUALS);
    else throw new SaslError('malformed_message', mechanism, `${context}: ${what} has '=' at offset ${i} not followed by '2C' or '3D'`, { offset: i });
    i += 2;
  }
  try {
    return utf8.decode(Uint8Array.from(out));
  } catch {
    throw new SaslError('malformed_message', mechanism, `${context}: ${what} at offset ${start} is not valid UTF-8`, { offset: start });
  }
}
