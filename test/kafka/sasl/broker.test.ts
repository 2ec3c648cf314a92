/**
 * The SASL building blocks against a real Kafka 4.1 broker started with `startKafka({ sasl })`: raw TCP, frames
 * built by hand (wire.ts), SaslHandshake v1 + SaslAuthenticate v2 with PLAIN, SCRAM-SHA-512 (our client) and
 * OAUTHBEARER (our encoder; the broker's built-in unsecured validator), good and bad credentials, then a Metadata
 * request on the authenticated connection. One broker for the file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureKafka } from '../../../scripts/provision.ts';
import { startKafka } from '../../../scripts/lib/kafka.ts';
import type { KafkaBroker } from '../../../scripts/lib/kafka.ts';
import { metadataRequest } from '../frames.ts';
import { encodePlain } from '../../../src/kafka/sasl/plain.ts';
import { ScramClient } from '../../../src/kafka/sasl/scram.ts';
import {
  encodeOAuthBearerClientAck,
  encodeOAuthBearerErrorChallenge,
  encodeOAuthBearerInitialResponse,
  parseOAuthBearerErrorChallenge,
} from '../../../src/kafka/sasl/oauthbearer.ts';
import {
  apiVersionsRequest,
  KafkaWire,
  readApiVersionsResponse,
  readMetadataV1Brokers,
  readSaslAuthenticateResponse,
  readSaslHandshakeResponse,
  saslAuthenticateRequest,
  saslHandshakeRequest,
} from './wire.ts';
import type { SaslAuthenticateResponse } from './wire.ts';

const SASL_AUTHENTICATION_FAILED = 58;
const UNSUPPORTED_SASL_MECHANISM = 33;
const REAUTH_MS = 3_600_000;
const USERS = [
  { name: 'tollgate', password: 'gateway-secret' },
  { name: 'alice.ops-1', password: 'p@ss=w0rd!' },
];

let broker: KafkaBroker;
const open: KafkaWire[] = [];

before(async () => {
  await ensureKafka();
  broker = await startKafka({
    sasl: { users: USERS, mechanisms: ['PLAIN', 'SCRAM-SHA-512', 'OAUTHBEARER'] },
    // So the broker reports a session lifetime (KIP-368 re-authentication); without it, it reports 0.
    extraServerProperties: { 'connections.max.reauth.ms': REAUTH_MS },
  });
});

after(async () => {
  for (const wire of open) wire.close();
  await broker?.stop();
});

async function connect(): Promise<KafkaWire> {
  const wire = await KafkaWire.connect(broker.host, broker.port);
  open.push(wire);
  return wire;
}

/** A new connection that has completed SaslHandshake v1 for `mechanism`. */
async function handshake(mechanism: string): Promise<KafkaWire> {
  const wire = await connect();
  const response = readSaslHandshakeResponse(await wire.request(saslHandshakeRequest(1, mechanism)));
  assert.equal(response.correlationId, 1);
  assert.equal(response.errorCode, 0);
  return wire;
}

let correlationId = 100;
async function authenticate(wire: KafkaWire, authBytes: Buffer): Promise<SaslAuthenticateResponse> {
  const id = ++correlationId;
  const response = readSaslAuthenticateResponse(await wire.request(saslAuthenticateRequest(id, authBytes)));
  assert.equal(response.correlationId, id);
  return response;
}

/** Metadata v1 on an authenticated connection answers with this broker. */
async function assertMetadataWorks(wire: KafkaWire): Promise<void> {
  const metadata = readMetadataV1Brokers(await wire.request(metadataRequest(7)));
  assert.equal(metadata.correlationId, 7);
  assert.deepEqual(metadata.brokers, [{ nodeId: 1, host: broker.host, port: broker.port }]);
}

/** An unsigned JWT (alg "none") for the broker's unsecured OAUTHBEARER validator. */
function unsecuredJwt(claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none' })}.${part(claims)}.`;
}

test('the client listener is SASL_PLAINTEXT, and ApiVersions answers before authentication', async () => {
  assert.equal(broker.securityProtocol, 'SASL_PLAINTEXT');
  const wire = await connect();
  const versions = readApiVersionsResponse(await wire.request(apiVersionsRequest(1)));
  assert.equal(versions.errorCode, 0);
  assert.deepEqual(versions.versions.get(17), [0, 1], 'SaslHandshake');
  assert.deepEqual(versions.versions.get(36), [0, 2], 'SaslAuthenticate');
  // The same connection can go on to authenticate.
  assert.deepEqual(readSaslHandshakeResponse(await wire.request(saslHandshakeRequest(2, 'PLAIN'))), { correlationId: 2, errorCode: 0, mechanisms: ['PLAIN', 'SCRAM-SHA-512', 'OAUTHBEARER'] });
  const response = await authenticate(wire, encodePlain({ username: 'tollgate', password: 'gateway-secret' }));
  assert.equal(response.errorCode, 0);
  await assertMetadataWorks(wire);
});

test('an unsupported mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled list', async () => {
  const wire = await connect();
  const response = readSaslHandshakeResponse(await wire.request(saslHandshakeRequest(1, 'GSSAPI')));
  assert.deepEqual(response, { correlationId: 1, errorCode: UNSUPPORTED_SASL_MECHANISM, mechanisms: ['PLAIN', 'SCRAM-SHA-512', 'OAUTHBEARER'] });
});

test('a request before authentication: the broker closes the connection', async () => {
  const wire = await connect();
  await assert.rejects(wire.request(metadataRequest(1)), /connection closed by the broker/);
});

describe('PLAIN', () => {
  test('good password: no error, empty error_message and auth_bytes, the re-authentication lifetime; then Metadata', async () => {
    const wire = await handshake('PLAIN');
    const response = await authenticate(wire, encodePlain({ username: 'alice.ops-1', password: 'p@ss=w0rd!' }));
    assert.equal(response.errorCode, 0);
    assert.equal(response.errorMessage, '', 'an empty string, not null');
    assert.equal(response.authBytes.length, 0);
    assert.equal(response.sessionLifetimeMs, BigInt(REAUTH_MS));
    await assertMetadataWorks(wire);
  });

  test("bad password: SASL_AUTHENTICATION_FAILED with the broker's message, then the connection is closed", async () => {
    const wire = await handshake('PLAIN');
    const response = await authenticate(wire, encodePlain({ username: 'alice.ops-1', password: 'wrong' }));
    assert.equal(response.errorCode, SASL_AUTHENTICATION_FAILED);
    assert.equal(response.errorMessage, 'Authentication failed: Invalid username or password');
    assert.equal(response.sessionLifetimeMs, 0n);
    await wire.closed();
  });

  test('an authzid other than the username is refused', async () => {
    const wire = await handshake('PLAIN');
    const response = await authenticate(wire, encodePlain({ authzid: 'alice.ops-1', username: 'tollgate', password: 'gateway-secret' }));
    assert.equal(response.errorCode, SASL_AUTHENTICATION_FAILED);
    assert.equal(response.errorMessage, 'Authentication failed: Client requested an authorization id that is different from username');
  });
});

describe('SCRAM-SHA-512', () => {
  test('the full exchange with our client: the server proves it knows the credentials; then Metadata', async () => {
    const wire = await handshake('SCRAM-SHA-512');
    const client = new ScramClient({ mechanism: 'SCRAM-SHA-512', username: 'alice.ops-1', password: 'p@ss=w0rd!' });
    const first = await authenticate(wire, client.clientFirstMessage());
    assert.equal(first.errorCode, 0);
    // The broker's server-first: r=<our nonce><its nonce>,s=<salt>,i=4096 (StorageTool's default iterations).
    assert.match(first.authBytes.toString(), /^r=[\x21-\x2b\x2d-\x7e]+,s=[A-Za-z0-9+/]+=*,i=4096$/);
    assert.equal(first.sessionLifetimeMs, 0n, 'no lifetime until the exchange completes');
    const final = await authenticate(wire, client.handleServerFirst(first.authBytes));
    assert.equal(final.errorCode, 0);
    assert.equal(final.errorMessage, '');
    assert.match(final.authBytes.toString(), /^v=[A-Za-z0-9+/]{86}==$/);
    assert.equal(final.sessionLifetimeMs, BigInt(REAUTH_MS));
    client.handleServerFinal(final.authBytes);
    assert.equal(client.state, 'complete');
    await assertMetadataWorks(wire);
  });

  test('bad password: the broker fails the client-final step with SASL_AUTHENTICATION_FAILED, not an e= message', async () => {
    const wire = await handshake('SCRAM-SHA-512');
    const client = new ScramClient({ mechanism: 'SCRAM-SHA-512', username: 'tollgate', password: 'wrong' });
    const first = await authenticate(wire, client.clientFirstMessage());
    assert.equal(first.errorCode, 0);
    const final = await authenticate(wire, client.handleServerFirst(first.authBytes));
    assert.equal(final.errorCode, SASL_AUTHENTICATION_FAILED);
    assert.equal(final.errorMessage, 'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512');
    assert.equal(final.authBytes.length, 0);
    assert.equal(client.state, 'awaiting_server_final');
    await wire.closed();
  });

  test('unknown user: refused at the client-first step already, with the same message', async () => {
    const wire = await handshake('SCRAM-SHA-512');
    const client = new ScramClient({ mechanism: 'SCRAM-SHA-512', username: 'nobody', password: 'x' });
    const first = await authenticate(wire, client.clientFirstMessage());
    assert.equal(first.errorCode, SASL_AUTHENTICATION_FAILED);
    assert.equal(first.errorMessage, 'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512');
    await wire.closed();
  });
});

describe('OAUTHBEARER (the broker\'s unsecured validator)', () => {
  test('our initial response is accepted; the session lifetime is capped by the token\'s exp', async () => {
    const now = Math.floor(Date.now() / 1000);
    const wire = await handshake('OAUTHBEARER');
    const response = await authenticate(wire, encodeOAuthBearerInitialResponse({
      token: unsecuredJwt({ sub: 'alice.ops-1', iat: now, exp: now + 600 }),
      authzid: 'alice.ops-1',
      extensions: { tenant: 'acme' },
    }));
    assert.equal(response.errorCode, 0);
    assert.equal(response.authBytes.length, 0);
    assert.ok(response.sessionLifetimeMs > 500_000n && response.sessionLifetimeMs <= 600_000n, `session lifetime ${response.sessionLifetimeMs}`);
    await assertMetadataWorks(wire);
  });

  test('a refused token: the error challenge (error_code 0), our \\x01 ack, then SASL_AUTHENTICATION_FAILED with the challenge as message', async () => {
    const wire = await handshake('OAUTHBEARER');
    const challenge = await authenticate(wire, encodeOAuthBearerInitialResponse({ token: 'not-a-jwt' }));
    assert.equal(challenge.errorCode, 0, 'the exchange is still open');
    assert.deepEqual(challenge.authBytes, encodeOAuthBearerErrorChallenge(), 'byte for byte what our encoder builds');
    assert.deepEqual(parseOAuthBearerErrorChallenge(challenge.authBytes), { status: 'invalid_token' });
    const failed = await authenticate(wire, encodeOAuthBearerClientAck());
    assert.equal(failed.errorCode, SASL_AUTHENTICATION_FAILED);
    assert.equal(failed.errorMessage, '{"status":"invalid_token"}');
    await wire.closed();
  });
});

test('the harness authenticates its own admin client (createTopics) on the SASL listener', async () => {
  await broker.createTopics(['sasl-harness-topic']);
});
