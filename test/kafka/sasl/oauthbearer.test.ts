/**
 * OAUTHBEARER (RFC 7628, KIP-255): the client initial response parsed and encoded, malformed inputs refused with a
 * code, an offset and a message naming what was expected; the error challenge and the client's \x01 ack.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeOAuthBearerClientAck,
  encodeOAuthBearerErrorChallenge,
  encodeOAuthBearerInitialResponse,
  isOAuthBearerClientAck,
  parseOAuthBearerErrorChallenge,
  parseOAuthBearerInitialResponse,
} from '../../../src/kafka/sasl/oauthbearer.ts';
import { SASL_ERROR_CODES, SaslError } from '../../../src/kafka/sasl/errors.ts';
import type { SaslErrorCode } from '../../../src/kafka/sasl/errors.ts';

/** A JWS compact serialisation as Kafka clients send it (unsigned here: the parser never looks inside). */
const JWT = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.';

function expectSaslError(fn: () => unknown, code: SaslErrorCode, offset: number | undefined, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SaslError, `expected a SaslError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.offset, offset, err.message);
    assert.match(err.message, message);
    assert.equal(err.mechanism, 'OAUTHBEARER');
    assert.ok(SASL_ERROR_CODES.includes(err.code));
    return true;
  });
}

describe('parseOAuthBearerInitialResponse', () => {
  const valid: ReadonlyArray<readonly [string, string, { token: string; authzid?: string; extensions: Record<string, string> }]> = [
    ['what Kafka clients send (no authzid, no extensions)', `n,,\x01auth=Bearer ${JWT}\x01\x01`, { token: JWT, extensions: {} }],
    ['with an authzid', `n,a=alice,\x01auth=Bearer ${JWT}\x01\x01`, { token: JWT, authzid: 'alice', extensions: {} }],
    ['an authzid with escaped , and =', `n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01`, { token: 't', authzid: 'a,b=c', extensions: {} }],
    ['a UTF-8 authzid', `n,a=jürgen,\x01auth=Bearer t\x01\x01`, { token: 't', authzid: 'jürgen', extensions: {} }],
    ['KIP-342 extensions before and after auth', `n,,\x01logicalCluster=lkc-1\x01auth=Bearer t\x01tenant=acme corp\x01\x01`,
      { token: 't', extensions: { logicalCluster: 'lkc-1', tenant: 'acme corp' } }],
    ['an empty extension value (RFC 7628 allows *VCHAR)', `n,,\x01auth=Bearer t\x01empty=\x01\x01`, { token: 't', extensions: { empty: '' } }],
    ['an extension value with tab, CR and LF', `n,,\x01auth=Bearer t\x01note=a\tb\r\nc\x01\x01`, { token: 't', extensions: { note: 'a\tb\r\nc' } }],
    ['the scheme in any case, several spaces', 'n,,\x01auth=bEaReR   abc\x01\x01', { token: 'abc', extensions: {} }],
    ['an RFC 6750 b64token with ~+/ and trailing =', 'n,,\x01auth=Bearer a~b+c/d==\x01\x01', { token: 'a~b+c/d==', extensions: {} }],
  ];
  for (const [name, message, expected] of valid) {
    test(name, () => {
      assert.deepEqual(parseOAuthBearerInitialResponse(Buffer.from(message, 'utf8')), expected);
    });
  }

  test('accepts any Uint8Array view, not only a Buffer', () => {
    const bytes = new Uint8Array([0xff, ...Buffer.from(`n,,\x01auth=Bearer ${JWT}\x01\x01`)]).subarray(1);
    assert.equal(parseOAuthBearerInitialResponse(bytes).token, JWT);
  });

  const malformed: ReadonlyArray<readonly [string, string | Buffer, SaslErrorCode, number, RegExp]> = [
    ['an empty message', '', 'malformed_message', 0, /expected a GS2 header \('n,'\) at offset 0, found an empty message/],
    ["the client's \\x01 ack", '\x01', 'malformed_message', 0, /found the lone \\x01 a client sends to acknowledge an error challenge/],
    ["channel binding 'y'", `y,,\x01auth=Bearer t\x01\x01`, 'unsupported_channel_binding', 0, /asks for channel binding \('y' at offset 0\); only 'n'/],
    ["channel binding 'p='", `p=tls-unique,,\x01auth=Bearer t\x01\x01`, 'unsupported_channel_binding', 0, /\('p' at offset 0\)/],
    ['a wrong flag', 'x,,\x01auth=Bearer t\x01\x01', 'malformed_message', 0, /expected the GS2 channel-binding flag 'n' at offset 0, found 'x'/],
    ['no comma after the flag', 'n;,\x01', 'malformed_message', 1, /expected ',' after the channel-binding flag at offset 1, found ';'/],
    ['an unknown GS2 field', 'n,b=x,\x01', 'malformed_message', 2, /expected 'a=<authzid>' or ',' ending the GS2 header at offset 2, found 'b'/],
    ['an empty authzid', 'n,a=,\x01auth=Bearer t\x01\x01', 'malformed_message', 4, /expected the authzid \(at least one character\) at offset 4/],
    ['an authzid not ended by a comma', 'n,a=bob\x01auth=Bearer t\x01\x01', 'malformed_message', 7, /expected ',' ending the authzid that starts at offset 4, found byte 0x01 at offset 7/],
    ['a truncated authzid', 'n,a=bob', 'malformed_message', 7, /found the end of the message at offset 7/],
    ['a bad escape in the authzid', 'n,a=b=2x,\x01auth=Bearer t\x01\x01', 'malformed_message', 5, /'=' at offset 5 not followed by '2C' or '3D'/],
    ['an authzid that is not UTF-8', Buffer.from([...Buffer.from('n,a='), 0xff, ...Buffer.from(',\x01auth=Bearer t\x01\x01')]), 'malformed_message', 4, /authzid at offset 4 is not valid UTF-8/],
    ['no \\x01 after the GS2 header', 'n,,auth=Bearer t\x01\x01', 'malformed_message', 3, /expected byte 0x01 after the GS2 header at offset 3, found 'a'/],
    ['a GS2 header alone', 'n,,\x01', 'malformed_message', 4, /expected a key-value pair or the final byte 0x01 at offset 4, found the end of the message/],
    ['no final \\x01', `n,,\x01auth=Bearer t\x01`, 'malformed_message', 18, /expected a key-value pair or the final byte 0x01 at offset 18/],
    ['bytes after the final \\x01', `n,,\x01auth=Bearer t\x01\x01extra`, 'malformed_message', 19, /expected the end of the message after the final byte 0x01 at offset 18, found 5 more byte\(s\)/],
    ['a key with a digit', `n,,\x01auth=Bearer t\x01x1=2\x01\x01`, 'malformed_message', 19, /expected '=' after key "x" at offset 19, found '1'/],
    ['a key that starts with a non-letter', `n,,\x01auth=Bearer t\x01_x=2\x01\x01`, 'malformed_message', 18, /expected a key \(letters A-Z, a-z\) or the final byte 0x01 at offset 18, found '_'/],
    ['a key without a value', 'n,,\x01auth\x01\x01', 'malformed_message', 8, /expected '=' after key "auth" at offset 8, found byte 0x01/],
    ['a NUL in a value', 'n,,\x01auth=Bearer t\x00\x01\x01', 'malformed_message', 17, /ending the value of key "auth" at offset 17, found byte 0x00, which a value may not contain/],
    ['a value cut short', 'n,,\x01auth=Bearer t', 'malformed_message', 17, /ending the value of key "auth" at offset 17, found the end of the message/],
    ['auth given twice', 'n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01', 'duplicate_key', 18, /key "auth" at offset 18 was already given at offset 9/],
    ['an extension given twice', 'n,,\x01auth=Bearer a\x01x=1\x01x=2\x01\x01', 'duplicate_key', 22, /key "x" at offset 22/],
    ['no auth', 'n,,\x01tenant=x\x01\x01', 'missing_auth', 14, /no "auth" key-value pair \(expected auth=Bearer <token>\)/],
    ['auth in another case is an extension, not auth', 'n,,\x01Auth=Bearer t\x01\x01', 'missing_auth', 19, /no "auth" key-value pair/],
    ['a Basic scheme', 'n,,\x01auth=Basic dXNlcjpwdw==\x01\x01', 'invalid_auth_scheme', 9, /expected the scheme "Bearer" at offset 9, found "Basic"/],
    ['an unknown scheme, not quoted', 'n,,\x01auth=Foo x\x01\x01', 'invalid_auth_scheme', 9, /found a 3-character word that is not a known scheme/],
    ['a token without a scheme', `n,,\x01auth=${JWT}\x01\x01`, 'malformed_message', 9, /expected "Bearer <token>" as the value of "auth" at offset 9, found no space after a scheme/],
    ['an empty token', 'n,,\x01auth=Bearer \x01\x01', 'malformed_message', 16, /expected a bearer token after "Bearer " at offset 16, found the end of the message/],
    ['a space inside the token', 'n,,\x01auth=Bearer a b\x01\x01', 'malformed_message', 17, /the bearer token has a character at offset 17 that an RFC 6750 b64token may not contain/],
    ["'=' inside the token", 'n,,\x01auth=Bearer a=b\x01\x01', 'malformed_message', 18, /offset 18 that an RFC 6750 b64token may not contain/],
    ['a trailing space after the token', 'n,,\x01auth=Bearer abc \x01\x01', 'malformed_message', 19, /offset 19/],
  ];
  for (const [name, message, code, offset, pattern] of malformed) {
    test(`refuses ${name}`, () => {
      expectSaslError(() => parseOAuthBearerInitialResponse(typeof message === 'string' ? Buffer.from(message, 'latin1') : message), code, offset, pattern);
    });
  }

  test('never quotes the token in an error message', () => {
    const secret = 'c2VjcmV0LXRva2Vu';
    for (const message of [`n,,\x01auth=${secret}\x01\x01`, `n,,\x01auth=${secret} x\x01\x01`, `n,,\x01auth=Bearer ${secret}!\x01\x01`]) {
      assert.throws(() => parseOAuthBearerInitialResponse(Buffer.from(message)), (err: Error) => !err.message.includes(secret));
    }
  });
});

describe('encodeOAuthBearerInitialResponse', () => {
  test('lays the message out as Kafka clients do, and parses back', () => {
    const bytes = encodeOAuthBearerInitialResponse({ token: JWT });
    assert.equal(bytes.toString('latin1'), `n,,\x01auth=Bearer ${JWT}\x01\x01`);
    assert.deepEqual(parseOAuthBearerInitialResponse(bytes), { token: JWT, extensions: {} });
  });

  test('escapes the authzid and appends extensions after auth', () => {
    const input = { token: 'abc', authzid: 'a,b=c', extensions: { tenant: 'acme', traceId: 'x y' } };
    const bytes = encodeOAuthBearerInitialResponse(input);
    assert.equal(bytes.toString('utf8'), 'n,a=a=2Cb=3Dc,\x01auth=Bearer abc\x01tenant=acme\x01traceId=x y\x01\x01');
    assert.deepEqual(parseOAuthBearerInitialResponse(bytes), input);
  });

  const invalid: ReadonlyArray<readonly [string, Parameters<typeof encodeOAuthBearerInitialResponse>[0], RegExp]> = [
    ['a token with a space', { token: 'a b' }, /the token \(3 characters\) is not an RFC 6750 b64token/],
    ['an empty token', { token: '' }, /not an RFC 6750 b64token/],
    ['an empty authzid', { token: 't', authzid: '' }, /authzid must be non-empty/],
    ['an authzid with NUL', { token: 't', authzid: 'a\0b' }, /without NUL/],
    ['an extension named auth', { token: 't', extensions: { auth: 'Bearer x' } }, /"auth" is reserved/],
    ['an extension name with a digit', { token: 't', extensions: { k1: 'v' } }, /extension name "k1" must be letters/],
    ['an extension value with \\x01', { token: 't', extensions: { k: 'a\x01b' } }, /the value of extension "k" must be printable ASCII/],
  ];
  for (const [name, input, pattern] of invalid) {
    test(`refuses ${name}`, () => {
      expectSaslError(() => encodeOAuthBearerInitialResponse(input), 'invalid_argument', undefined, pattern);
    });
  }
});

describe('error challenge and acknowledgement', () => {
  test('the default challenge is byte for byte what Kafka\'s broker sends for a refused token', () => {
    assert.equal(encodeOAuthBearerErrorChallenge().toString(), '{"status":"invalid_token"}');
  });

  test('scope and openid-configuration follow status, as Kafka lays them out, and stay valid JSON', () => {
    const challenge = { status: 'insufficient_scope', scope: 'kafka "admin"', openidConfiguration: 'https://idp.example.com/.well-known/openid-configuration' };
    const bytes = encodeOAuthBearerErrorChallenge(challenge);
    assert.equal(bytes.toString(), '{"status":"insufficient_scope", "scope":"kafka \\"admin\\"", "openid-configuration":"https://idp.example.com/.well-known/openid-configuration"}');
    assert.deepEqual(JSON.parse(bytes.toString()), { status: 'insufficient_scope', scope: 'kafka "admin"', 'openid-configuration': challenge.openidConfiguration });
    assert.deepEqual(parseOAuthBearerErrorChallenge(bytes), challenge);
  });

  test('parsing a challenge refuses what is not an RFC 7628 error object', () => {
    expectSaslError(() => parseOAuthBearerErrorChallenge(Buffer.from('not json')), 'malformed_message', 0, /expected a JSON object \(RFC 7628 §3.2.2\), found 8 byte\(s\) that are not JSON/);
    expectSaslError(() => parseOAuthBearerErrorChallenge(Buffer.from('[]')), 'malformed_message', 0, /expected a JSON object/);
    expectSaslError(() => parseOAuthBearerErrorChallenge(Buffer.from('{"scope":"a"}')), 'malformed_message', 0, /"status" is required/);
    expectSaslError(() => parseOAuthBearerErrorChallenge(Buffer.from('{"status":1}')), 'malformed_message', 0, /"status" must be a string/);
  });

  test("the client's acknowledgement is a lone \\x01, and nothing else is", () => {
    assert.deepEqual(encodeOAuthBearerClientAck(), Buffer.from([1]));
    assert.equal(isOAuthBearerClientAck(encodeOAuthBearerClientAck()), true);
    assert.equal(isOAuthBearerClientAck(Buffer.from([1, 1])), false);
    assert.equal(isOAuthBearerClientAck(Buffer.alloc(0)), false);
    assert.equal(isOAuthBearerClientAck(encodeOAuthBearerInitialResponse({ token: 't' })), false);
  });
});
