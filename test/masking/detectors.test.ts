import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detect, ibanValid, luhnValid, DETECTOR_NAMES } from '../../src/masking/detectors.ts';

const found = (text: string, ...names: Parameters<typeof detect>[1]) =>
  detect(text, names.length ? names : DETECTOR_NAMES).map((f) => [f.detector, text.slice(f.start, f.end)]);

test('card numbers are found with or without separators, and only when Luhn-valid', () => {
  assert.equal(luhnValid('4111 1111 1111 1111'), true);
  assert.equal(luhnValid('4111111111111112'), false);
  assert.deepEqual(found('pay 4111-1111-1111-1111 now', 'card'), [['card', '4111-1111-1111-1111']]);
  assert.deepEqual(found('card 5500005555555559.', 'card'), [['card', '5500005555555559']]);
  assert.deepEqual(found('order 4111111111111112 and id 1234567890123', 'card'), []);
  assert.deepEqual(found('phone-ish 12345', 'card'), []);
});

test('emails, US SSNs and international phone numbers', () => {
  assert.deepEqual(found('mail ada.l+x@example.co.uk, thanks', 'email'), [['email', 'ada.l+x@example.co.uk']]);
  assert.deepEqual(found('ssn 123-45-6789; not 000-12-3456 nor 666-12-3456', 'us-ssn'), [['us-ssn', '123-45-6789']]);
  assert.deepEqual(found('call +44 20 7946 0958 today', 'phone'), [['phone', '+44 20 7946 0958']]);
  assert.deepEqual(found('version +1.2', 'phone'), []);
});

test('IBANs only when their mod-97 checksum holds', () => {
  assert.equal(ibanValid('GB82 WEST 1234 5698 7654 32'), true);
  assert.equal(ibanValid('GB82 WEST 1234 5698 7654 33'), false);
  assert.deepEqual(found('to DE89370400440532013000 via SEPA', 'iban'), [['iban', 'DE89370400440532013000']]);
  assert.deepEqual(found('to DE89370400440532013001', 'iban'), []);
});

test('secrets: JWTs, cloud and SaaS keys, private key blocks', () => {
  const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz';
  assert.deepEqual(found(`Bearer ${jwt}`, 'jwt'), [['jwt', jwt]]);
  assert.deepEqual(found('key=AKIAIOSFODNN7EXAMPLE', 'secret'), [['secret', 'AKIAIOSFODNN7EXAMPLE']]);
  assert.deepEqual(found(`t ghp_${'a'.repeat(36)} x`, 'secret'), [['secret', `ghp_${'a'.repeat(36)}`]]);
  const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----';
  assert.deepEqual(found(`k: ${pem}`, 'secret'), [['secret', pem]]);
});

test('overlapping findings are masked once, by the earliest', () => {
  const text = 'x ada@example.com 4111111111111111';
  assert.deepEqual(found(text), [['email', 'ada@example.com'], ['card', '4111111111111111']]);
});
