/**
 * Session lifetimes end to end (KIP-368), through real Envoy, tollgate and a SASL broker:
 * - tollgate grants clients a session no longer than `kafka.clientAuthentication.maxSessionLifetime` (4 s here);
 *   kafkajs re-authenticates on the same connection with a fresh token and keeps working;
 * - a client that does not re-authenticate in time is cut off at its next request;
 * - the broker grants tollgate's own upstream session only 5 s (`connections.max.reauth.ms`); tollgate
 *   re-authenticates upstream with its gateway credential, invisibly to the client, so the broker never closes the
 *   connection under it.
 * tollgate's broker credential here is SASL PLAIN (the other stacks use SCRAM-SHA-512), so both mechanisms run
 * against the real broker.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { logLevel } from 'kafkajs';
import type { AuditRecord } from '../../src/audit/record.ts';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import { authenticate, closedWithin, connectTo, decodeMetadata, decodeSaslAuthenticate, frameReader, metadataRequest, saslAuthenticateRequest, saslHandshakeRequest } from '../harness/kafka-client.ts';

const ANALYST = { sub: 'alice', groups: ['analysts'] } as const;
const CLIENT_SESSION_MS = 4_000;
const BROKER_SESSION_MS = 5_000;

let stack: Stack;

before(async () => {
  stack = await startStack({
    editConfig: (config) => {
      const kafka = (config['kafka'] ??= {}) as Record<string, unknown>;
      kafka['clientAuthentication'] = { maxSessionLifetime: `${CLIENT_SESSION_MS}ms` };
      const upstream = kafka['upstream'] as { sasl: { mechanism: string } };
      assert.equal(upstream.sasl.mechanism, 'SCRAM-SHA-512', 'the stack configures SCRAM; this file switches to PLAIN');
      upstream.sasl.mechanism = 'PLAIN';
    },
    kafkaServerProperties: { 'connections.max.reauth.ms': BROKER_SESSION_MS },
  });
});

after(async () => {
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function auditWhere(filter: (r: AuditRecord) => boolean, atLeast = 1): Promise<AuditRecord[]> {
  let found: AuditRecord[] = [];
  for (let i = 0; i < 50; i++) {
    found = stack.auditRecords().filter(filter);
    if (found.length >= atLeast) return found;
    await sleep(100);
  }
  return found;
}

test('kafkajs re-authenticates before its session ends and keeps producing on the same connection', async () => {
  const kafka = stack.kafkaClient({
    clientId: 'e2e-reauth',
    ...ANALYST,
    // kafkajs re-authenticates when less than this is left of the session.
    kafkajs: { logLevel: logLevel.NOTHING, reauthenticationThreshold: 2_000 },
  });
  const producer = kafka.producer();
  await producer.connect();
  try {
    const deadline = Date.now() + 2.5 * CLIENT_SESSION_MS;
    let sent = 0;
    while (Date.now() < deadline) {
      const [result] = await producer.send({ topic: 'orders', messages: [{ key: 'reauth', value: `message ${sent}` }] });
      assert.equal(result!.errorCode, 0);
      sent++;
      await sleep(700);
    }
    assert.ok(sent >= 10, `kept producing across several session lifetimes (${sent} sends)`);
  } finally {
    await producer.disconnect();
  }
  const reauths = await auditWhere((r) => r.event === 'kafka.sasl.reauthenticated' && r.principal?.subject === ANALYST.sub);
  assert.ok(reauths.length >= 1, 'at least one kafka.sasl.reauthenticated record');
  assert.ok(reauths.every((r) => Number(r.details?.['sessionLifetimeMs']) <= CLIENT_SESSION_MS), 'every session capped by maxSessionLifetime');
  assert.equal(stack.auditRecords().filter((r) => r.event === 'kafka.sasl.session_expired' && r.details?.['clientId'] === 'e2e-reauth').length, 0);
});

test('a client that does not re-authenticate is closed at its first request after the session ended; nothing reaches the broker', async () => {
  const socket = await connectTo(stack.kafkaBootstrap);
  const localPort = socket.localPort;
  const reader = frameReader(socket);
  socket.write(saslHandshakeRequest(1));
  await reader.next();
  socket.write(saslAuthenticateRequest(2, await stack.mintToken(ANALYST.sub, ANALYST.groups)));
  const auth = decodeSaslAuthenticate(await reader.next());
  assert.equal(auth.body.errorCode, 0);
  assert.ok(auth.body.sessionLifetimeMs > 0n && auth.body.sessionLifetimeMs <= BigInt(CLIENT_SESSION_MS));

  socket.write(metadataRequest(3, ['orders']));
  assert.equal(decodeMetadata(await reader.next()).body.topics[0]?.errorCode, 0, 'within the session: answered');
  await sleep(Number(auth.body.sessionLifetimeMs) + 500);
  socket.write(metadataRequest(4, ['orders']));
  assert.deepEqual(await closedWithin(reader.closed, 10_000), [], 'no answer after the session ended');
  const [record] = await auditWhere((r) => r.event === 'kafka.sasl.session_expired' && r.connection?.['source.port'] === localPort);
  assert.ok(record, 'a kafka.sasl.session_expired record');
  assert.equal(record.principal?.subject, ANALYST.sub);
});

test('tollgate re-authenticates to the broker (SASL PLAIN) when the broker\'s session for its credential runs out', async () => {
  const socket = await connectTo(stack.kafkaBootstrap);
  const reader = frameReader(socket);
  await authenticate(socket, reader, await stack.mintToken(ANALYST.sub, ANALYST.groups, 3600));
  let id = 10;
  // Longer than the broker's session for tollgate; the client's own session (4 s cap) is renewed on the way.
  const deadline = Date.now() + BROKER_SESSION_MS * 1.6;
  let answered = 0;
  while (Date.now() < deadline) {
    socket.write(metadataRequest(id, ['orders']));
    const metadata = decodeMetadata(await reader.next());
    assert.equal(metadata.header.correlationId, id);
    assert.equal(metadata.body.topics[0]?.errorCode, 0);
    answered++;
    id++;
    await sleep(1_000);
    if (answered % 3 === 0) await authenticate(socket, reader, await stack.mintToken(ANALYST.sub, ANALYST.groups, 3600), id++ * 100);
  }
  assert.ok(answered >= 7);
  socket.destroy();
});
