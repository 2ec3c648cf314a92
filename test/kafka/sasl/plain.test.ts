/** SASL PLAIN (RFC 4616): encode, parse back, and refuse what the message cannot carry. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePlain, parsePlain } from '../../../src/kafka/sasl/plain.ts';
import { SaslError } from '../../../src/kafka/sasl/errors.ts';
import type { SaslErrorCode } from '../../../src/kafka/sasl/errors.ts';

function expectSaslError(fn: () => unknown, code: SaslErrorCode, offset: number | undefined, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SaslError, `expected a SaslError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.offset, offset, err.message);
    assert.equal(err.mechanism, 'PLAIN');
    assert.match(err.message, message);
    return true;
  });
}

test('encodes authzid NUL username NUL password, an absent authzid as an empty field', () => {
  assert.deepEqual(encodePlain({ username: 'alice', password: 'pw' }), Buffer.from('\0alice\0pw'));
  assert.deepEqual(encodePlain({ authzid: 'admin', username: 'alice', password: 'pw' }), Buffer.from('admin\0alice\0pw'));
});

test('UTF-8 round trip, including characters that are special elsewhere (, = spaces)', () => {
  for (const credentials of [
    { username: 'jürgen', password: 'pässwörd, with = and spaces' },
    { authzid: 'ops', username: 'a,b=c', password: '🔑' },
  ]) {
    assert.deepEqual(parsePlain(encodePlain(credentials)), credentials);
  }
});

test('encoding refuses an empty username or password and any NUL', () => {
  expectSaslError(() => encodePlain({ username: '', password: 'pw' }), 'invalid_argument', undefined, /the username must not be empty/);
  expectSaslError(() => encodePlain({ username: 'u', password: '' }), 'invalid_argument', undefined, /the password must not be empty/);
  expectSaslError(() => encodePlain({ username: 'u\0v', password: 'pw' }), 'invalid_argument', undefined, /the username must not contain NUL/);
  expectSaslError(() => encodePlain({ username: 'u', password: 'p\0w' }), 'invalid_argument', undefined, /the password must not contain NUL/);
  expectSaslError(() => encodePlain({ authzid: 'a\0', username: 'u', password: 'pw' }), 'invalid_argument', undefined, /the authzid must not contain NUL/);
  expectSaslError(() => encodePlain({ username: 'u', password: '\ud800' }), 'invalid_argument', undefined, /not well-formed Unicode/);
});

test('parsing refuses malformed messages, naming the offset', () => {
  expectSaslError(() => parsePlain(Buffer.from('alice')), 'malformed_message', 5, /expected a NUL after the authzid, found none in 5 byte\(s\)/);
  expectSaslError(() => parsePlain(Buffer.from('\0alice')), 'malformed_message', 6, /expected a NUL after the username \(which starts at offset 1\), found none/);
  expectSaslError(() => parsePlain(Buffer.from('\0alice\0pw\0x')), 'malformed_message', 9, /expected exactly two NUL separators, found a third at offset 9/);
  expectSaslError(() => parsePlain(Buffer.from('\0\0pw')), 'malformed_message', 1, /expected a username at offset 1, found an empty field/);
  expectSaslError(() => parsePlain(Buffer.from('\0alice\0')), 'malformed_message', 7, /expected a password at offset 7, found an empty field/);
  expectSaslError(() => parsePlain(Buffer.from([0, 0x61, 0, 0xc3])), 'malformed_message', 3, /the password at offset 3 is not valid UTF-8/);
});

test('an empty authzid field parses as absent', () => {
  assert.deepEqual(parsePlain(Buffer.from('\0alice\0pw')), { username: 'alice', password: 'pw' });
});
