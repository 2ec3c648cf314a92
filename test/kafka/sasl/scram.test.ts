/**
 * The SCRAM client: RFC 7677's SCRAM-SHA-256 test vector proves the math (the same code computes SHA-512, checked
 * against a real broker in broker.test.ts); then every way a server-first or server-final message can fail, and
 * the state machine's guards.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { deriveScramKeys, memoizedScramKeys, SCRAM_MAX_ITERATIONS, SCRAM_MIN_ITERATIONS, ScramClient } from '../../../src/kafka/sasl/scram.ts';
import type { ScramMechanismName } from '../../../src/kafka/sasl/scram.ts';
import { SaslError } from '../../../src/kafka/sasl/errors.ts';
import type { SaslErrorCode } from '../../../src/kafka/sasl/errors.ts';

// RFC 7677 §3.
const RFC7677 = {
  username: 'user',
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
} as const;

function rfcClient(options: { minIterations?: number; maxIterations?: number } = {}): ScramClient {
  return new ScramClient({ mechanism: 'SCRAM-SHA-256', username: RFC7677.username, password: RFC7677.password, nonce: RFC7677.clientNonce, ...options });
}

/** A client that has sent its first message and is waiting for the server's. */
function waitingForServerFirst(options: { minIterations?: number; maxIterations?: number } = {}): ScramClient {
  const client = rfcClient(options);
  client.clientFirstMessage();
  return client;
}

function waitingForServerFinal(): ScramClient {
  const client = waitingForServerFirst();
  client.handleServerFirst(Buffer.from(RFC7677.serverFirst));
  return client;
}

function expectSaslError(fn: () => unknown, code: SaslErrorCode, offset: number | undefined, message: RegExp): SaslError {
  let caught: SaslError | undefined;
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SaslError, `expected a SaslError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.offset, offset, err.message);
    assert.match(err.message, message);
    caught = err;
    return true;
  });
  return caught!;
}

describe('RFC 7677 test vector (SCRAM-SHA-256)', () => {
  test('client-first, client-final with the proof, and the server signature verified', () => {
    const client = rfcClient();
    assert.equal(client.state, 'initial');
    assert.equal(client.clientFirstMessage().toString(), RFC7677.clientFirst);
    assert.equal(client.state, 'awaiting_server_first');
    assert.equal(client.handleServerFirst(Buffer.from(RFC7677.serverFirst)).toString(), RFC7677.clientFinal);
    assert.equal(client.state, 'awaiting_server_final');
    client.handleServerFinal(Buffer.from(RFC7677.serverFinal));
    assert.equal(client.state, 'complete');
  });

  test('deriveScramKeys agrees with RFC 5802 §3 computed here step by step', () => {
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const keys = deriveScramKeys('SCRAM-SHA-256', 'pencil', salt, 4096);
    const salted = pbkdf2Sync('pencil', salt, 4096, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    assert.deepEqual(keys, {
      saltedPassword: salted,
      clientKey,
      storedKey: createHash('sha256').update(clientKey).digest(),
      serverKey: createHmac('sha256', salted).update('Server Key').digest(),
    });
    assert.equal(deriveScramKeys('SCRAM-SHA-512', 'pencil', salt, 4096).saltedPassword.length, 64);
  });
});

describe('client-first-message', () => {
  test("escapes ',' and '=' in the username (=2C, =3D), and keeps UTF-8 as is", () => {
    const client = new ScramClient({ mechanism: 'SCRAM-SHA-512', username: 'a,b=c ü', password: 'pw', nonce: 'abc' });
    assert.equal(client.clientFirstMessage().toString('utf8'), 'n,,n=a=2Cb=3Dc ü,r=abc');
  });

  test('the default nonce is fresh, printable and long', () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const message = new ScramClient({ mechanism: 'SCRAM-SHA-512', username: 'u', password: 'p' }).clientFirstMessage().toString();
      const nonce = message.slice('n,,n=u,r='.length);
      assert.match(nonce, /^[A-Za-z0-9_-]{32}$/);
      nonces.add(nonce);
    }
    assert.equal(nonces.size, 20);
  });

  test('refuses options it cannot honour', () => {
    const base = { mechanism: 'SCRAM-SHA-512' as ScramMechanismName, username: 'u', password: 'p' };
    expectSaslError(() => new ScramClient({ ...base, username: '' }), 'invalid_argument', undefined, /username must be non-empty/);
    expectSaslError(() => new ScramClient({ ...base, nonce: 'a,b' }), 'invalid_argument', undefined, /nonce must be printable ASCII without ','/);
    expectSaslError(() => new ScramClient({ ...base, nonce: '' }), 'invalid_argument', undefined, /nonce must be printable/);
    expectSaslError(() => new ScramClient({ ...base, minIterations: 10, maxIterations: 5 }), 'invalid_argument', undefined, /1 <= minIterations \(10\) <= maxIterations \(5\)/);
    expectSaslError(() => new ScramClient({ ...base, mechanism: 'SCRAM-SHA-1' as ScramMechanismName }), 'invalid_argument', undefined, /unknown mechanism "SCRAM-SHA-1"/);
  });

  test("Kafka's iteration bounds are the defaults", () => {
    assert.equal(SCRAM_MIN_ITERATIONS, 4096);
    assert.equal(SCRAM_MAX_ITERATIONS, 16384);
  });
});

describe('server-first-message', () => {
  const nonce = `${RFC7677.clientNonce}server`;
  const cases: ReadonlyArray<readonly [string, string, SaslErrorCode, number, RegExp]> = [
    ['a nonce that does not start with the client nonce', 'r=other,s=QUJD,i=4096', 'nonce_mismatch', 2, /must be the client nonce \(20 characters\) followed by the server's, found one that does not start with it/],
    ['a nonce that adds nothing', `r=${RFC7677.clientNonce},s=QUJD,i=4096`, 'nonce_mismatch', 2, /found one that adds nothing to it/],
    ['a nonce with a non-printable byte', `r=${nonce}\x7f,s=QUJD,i=4096`, 'malformed_message', 2, /the nonce must be printable ASCII/],
    ['fewer iterations than Kafka allows', `r=${nonce},s=QUJD,i=4095`, 'iteration_count_out_of_range', 38, /iteration count 4095 is outside \[4096, 16384\]/],
    ['more iterations than the cap', `r=${nonce},s=QUJD,i=16385`, 'iteration_count_out_of_range', 38, /iteration count 16385 is outside \[4096, 16384\]/],
    ['an absurd iteration count', `r=${nonce},s=QUJD,i=99999999999`, 'malformed_message', 38, /expected the iteration count as a positive decimal integer at offset 38/],
    ['a zero iteration count', `r=${nonce},s=QUJD,i=0`, 'malformed_message', 38, /positive decimal integer/],
    ['a negative iteration count', `r=${nonce},s=QUJD,i=-4096`, 'malformed_message', 38, /positive decimal integer/],
    ['a salt that is not base64', `r=${nonce},s=not base64!,i=4096`, 'malformed_message', 31, /expected the salt in base64 at offset 31/],
    ['an empty salt', `r=${nonce},s=,i=4096`, 'malformed_message', 31, /expected the salt in base64/],
    ['no salt', `r=${nonce},i=4096`, 'malformed_message', 29, /expected 's=' \(the salt\) but found 'i=' at offset 29/],
    ['no iteration count', `r=${nonce},s=QUJD`, 'malformed_message', 35, /expected 'i=' \(the iteration count\) but found the end of the message at offset 35/],
    ['attributes out of order', `s=QUJD,r=${nonce},i=4096`, 'malformed_message', 0, /expected 'r=' \(the combined nonce\) but found 's=' at offset 0/],
    ['a mandatory extension', `m=ext,r=${nonce},s=QUJD,i=4096`, 'unsupported_extension', 0, /a mandatory extension \('m=' at offset 0\)/],
    ['an empty message', '', 'malformed_message', 0, /expected an attribute \('<letter>='\) but found the end of the message at offset 0/],
    ['an attribute without =', `r=${nonce},s`, 'malformed_message', 30, /expected an attribute \('<letter>='\) but found the end of the message at offset 30/],
    ['a two-letter attribute name', `r=${nonce},sx=QUJD,i=4096`, 'malformed_message', 30, /expected an attribute \('<letter>='\) but found 'x' at offset 30/],
  ];
  for (const [name, message, code, offset, pattern] of cases) {
    test(`refuses ${name}`, () => {
      const client = waitingForServerFirst();
      expectSaslError(() => client.handleServerFirst(Buffer.from(message, 'latin1')), code, offset, pattern);
      assert.equal(client.state, 'failed');
    });
  }

  test('ignores optional extensions after the iteration count (RFC 5802)', () => {
    const client = waitingForServerFirst();
    const final = client.handleServerFirst(Buffer.from(`${RFC7677.serverFirst},x=extension`)).toString();
    assert.match(final, /^c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj\)hNlF\$k0,p=[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(final, RFC7677.clientFinal, 'the extension is part of the AuthMessage, so the proof differs');
  });

  test('the bounds are configurable', () => {
    expectSaslError(() => waitingForServerFirst({ maxIterations: 4000, minIterations: 1000 }).handleServerFirst(Buffer.from(RFC7677.serverFirst)),
      'iteration_count_out_of_range', 82, /iteration count 4096 is outside \[1000, 4000\]/);
  });
});

describe('server-final-message', () => {
  test("an e= error fails with the server's value", () => {
    const client = waitingForServerFinal();
    const err = expectSaslError(() => client.handleServerFinal(Buffer.from('e=invalid-proof')), 'server_error', 2, /the server refused the authentication: e="invalid-proof"/);
    assert.equal(err.serverError, 'invalid-proof');
    assert.equal(client.state, 'failed');
  });

  test('a server error with control characters is quoted, not echoed raw', () => {
    const client = waitingForServerFinal();
    expectSaslError(() => client.handleServerFinal(Buffer.from('e=bad\nline')), 'server_error', 2, /e="bad\\nline"/);
  });

  test('a wrong server signature fails: the server did not prove it knows the password', () => {
    const wrong = Buffer.from(RFC7677.serverFinal.slice(2), 'base64');
    wrong[0]! ^= 1;
    const client = waitingForServerFinal();
    expectSaslError(() => client.handleServerFinal(Buffer.from(`v=${wrong.toString('base64')}`)), 'server_signature_mismatch', 2, /the server signature does not match/);
    assert.equal(client.state, 'failed');
  });

  test('a truncated signature fails without throwing from timingSafeEqual', () => {
    const client = waitingForServerFinal();
    expectSaslError(() => client.handleServerFinal(Buffer.from('v=QUJD')), 'server_signature_mismatch', 2, /does not match/);
  });

  test('malformed server-final messages', () => {
    expectSaslError(() => waitingForServerFinal().handleServerFinal(Buffer.from('v=***')), 'malformed_message', 2, /expected the server signature in base64 at offset 2/);
    expectSaslError(() => waitingForServerFinal().handleServerFinal(Buffer.from('v=')), 'malformed_message', 2, /expected the server signature in base64/);
    expectSaslError(() => waitingForServerFinal().handleServerFinal(Buffer.from('x=1')), 'malformed_message', 0, /expected 'v=' \(the server signature \('v='\) or an error \('e='\)\) but found 'x='/);
  });

  test('extensions after the verifier are ignored', () => {
    const client = waitingForServerFinal();
    client.handleServerFinal(Buffer.from(`${RFC7677.serverFinal},x=1`));
    assert.equal(client.state, 'complete');
  });
});

describe('state machine', () => {
  test('methods called out of turn fail with invalid_state', () => {
    const client = rfcClient();
    expectSaslError(() => client.handleServerFirst(Buffer.from(RFC7677.serverFirst)), 'invalid_state', undefined, /handleServerFirst\(\) called in state initial \(expected awaiting_server_first\)/);
    expectSaslError(() => client.handleServerFinal(Buffer.from(RFC7677.serverFinal)), 'invalid_state', undefined, /handleServerFinal\(\) called in state initial/);
    client.clientFirstMessage();
    expectSaslError(() => client.clientFirstMessage(), 'invalid_state', undefined, /clientFirstMessage\(\) called in state awaiting_server_first \(expected initial\)/);
  });

  test('after a failure every step fails', () => {
    const client = waitingForServerFirst();
    assert.throws(() => client.handleServerFirst(Buffer.from('r=other,s=QUJD,i=4096')));
    expectSaslError(() => client.handleServerFirst(Buffer.from(RFC7677.serverFirst)), 'invalid_state', undefined, /called in state failed/);
    expectSaslError(() => client.handleServerFinal(Buffer.from(RFC7677.serverFinal)), 'invalid_state', undefined, /called in state failed/);
  });

  test('a completed exchange cannot be replayed', () => {
    const client = waitingForServerFinal();
    client.handleServerFinal(Buffer.from(RFC7677.serverFinal));
    expectSaslError(() => client.handleServerFinal(Buffer.from(RFC7677.serverFinal)), 'invalid_state', undefined, /called in state complete/);
  });
});

describe('memoized key derivation (one broker credential, many connections)', () => {
  test('derives once per salt and iteration count, and gives the same keys as deriving afresh', () => {
    const derive = memoizedScramKeys();
    const salt = Buffer.from('salt-of-the-broker');
    const first = derive('SCRAM-SHA-512', 'pw', salt, 4096);
    assert.equal(derive('SCRAM-SHA-512', 'pw', Buffer.from(salt), 4096), first, 'the same salt and count are served from the memo (the very same keys object)');
    assert.deepEqual(first, deriveScramKeys('SCRAM-SHA-512', 'pw', salt, 4096));
    assert.notDeepEqual(derive('SCRAM-SHA-512', 'pw', Buffer.from('another-salt'), 4096), first, 'a new salt derives anew');
    assert.notDeepEqual(derive('SCRAM-SHA-512', 'pw', salt, 8192), first, 'so does a new iteration count');
    assert.notDeepEqual(derive('SCRAM-SHA-512', 'other', salt, 4096), first, 'and a new password');
  });
});
