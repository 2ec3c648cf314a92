import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import pino from 'pino';
import { BrokerRoutes } from '../../src/kafka/connection.ts';
import {
  createNetworkExtProcHandler,
  type ConnectionCloseReason,
  type KafkaConnectionSettings,
  type NetworkExtProcHandlerOptions,
  type NetworkProcessingRequest,
  type NetworkProcessingResponse,
  peerPrincipal,
} from '../../src/kafka/service.ts';
import { connectionAttributes, FakeCall, MemoryAudit } from './fakes.ts';
import { int32, splitAt } from './frames.ts';
import { authenticate, fakeAuthenticate, fakeDecide, goodToken, handshake, heartbeat as metadataRequest, heartbeatResponse as responseFrame, settle } from './requests.ts';

const settings = (overrides: Partial<KafkaConnectionSettings> = {}): KafkaConnectionSettings => ({
  maxFrameBytes: 100 * 1024 * 1024,
  maxInFlight: 1000,
  authenticate: fakeAuthenticate,
  decide: fakeDecide,
  maxSessionLifetimeMs: 3_600_000,
  routes: new BrokerRoutes([]),
  ...overrides,
});

function handlerOptions(overrides: Partial<NetworkExtProcHandlerOptions> = {}, connection: Partial<KafkaConnectionSettings> = {}): NetworkExtProcHandlerOptions {
  return { logger: pino({ level: 'silent' }), audit: new MemoryAudit(), settings: () => settings(connection), ...overrides };
}

/** A handler and one connection on it, unauthenticated. */
function open(overrides: Partial<NetworkExtProcHandlerOptions> = {}, connection: Partial<KafkaConnectionSettings> = {}) {
  const audit = new MemoryAudit();
  const handler = createNetworkExtProcHandler(handlerOptions({ audit, ...overrides }, connection));
  const call = new FakeCall();
  handler(call);
  return { call, audit, handler };
}

/** A connection whose client has authenticated (SASL OAUTHBEARER); the replies and records of that are cleared. */
async function start(overrides: Partial<NetworkExtProcHandlerOptions> = {}, connection: Partial<KafkaConnectionSettings> = {}) {
  const opened = open(overrides, connection);
  opened.call.read(Buffer.concat([handshake(-100), authenticate(-99, goodToken('alice', Math.floor(Date.now() / 1000) + 600))]));
  await settle();
  assert.equal(opened.call.ended, false, 'authenticated');
  opened.call.written.length = 0;
  opened.audit.records.length = 0;
  return opened;
}

const empty = Buffer.alloc(0);

describe('Kafka network ext_proc handler', () => {
  it('fits grpc-js: a Process handler for ServerDuplexStream<ProcessingRequest, ProcessingResponse>', () => {
    const handler: (call: ServerDuplexStream<NetworkProcessingRequest, NetworkProcessingResponse>) => void =
      createNetworkExtProcHandler(handlerOptions());
    assert.equal(typeof handler, 'function');
  });

  it('answers every read_data message with exactly one read_data reply carrying the whole frames it completed', async () => {
    const { call } = await start();
    const [a, b] = [metadataRequest(1), metadataRequest(2)];
    const stream = Buffer.concat([a, b]);
    const [first, second, third] = splitAt(stream, [5, a.length + 3]);

    assert.deepEqual(call.read(first!), [{ read_data: { data: empty, end_of_stream: false } }], 'partial frame: empty reply');
    assert.deepEqual(call.read(second!), [{ read_data: { data: a, end_of_stream: false } }]);
    assert.deepEqual(call.read(third!), [{ read_data: { data: b, end_of_stream: false } }]);
  });

  it('replies with an empty Buffer (present, not omitted) while a frame is incomplete, so Envoy holds the bytes', async () => {
    const { call } = await start();
    const [reply] = call.read(metadataRequest(1).subarray(0, 3));
    assert.ok(reply?.read_data, 'read_data is present');
    assert.ok(Buffer.isBuffer(reply.read_data.data));
    assert.equal(reply.read_data.data.length, 0);
    assert.equal(reply.write_data, undefined);
    assert.equal(reply.connection_status, undefined);
  });

  it('answers write_data the same way, pairing broker responses with client requests', async () => {
    const { call } = await start();
    call.read(Buffer.concat([metadataRequest(1), metadataRequest(2)]));
    const responses = Buffer.concat([responseFrame(1), responseFrame(2)]);
    const [head, tail] = splitAt(responses, [responseFrame(1).length + 2]);
    assert.deepEqual(call.writeData(head!), [{ write_data: { data: responseFrame(1), end_of_stream: false } }]);
    assert.deepEqual(call.writeData(tail!), [{ write_data: { data: responseFrame(2), end_of_stream: false } }]);
  });

  it('keeps replies in the order the messages arrived, one per direction, read before write', async () => {
    const { call } = await start();
    call.read(metadataRequest(1));
    const replies = call.send({
      read_data: { data: metadataRequest(2), end_of_stream: false },
      write_data: { data: responseFrame(1), end_of_stream: false },
    });
    assert.deepEqual(replies, [
      { read_data: { data: metadataRequest(2), end_of_stream: false } },
      { write_data: { data: responseFrame(1), end_of_stream: false } },
    ]);
    assert.equal(call.written.length, 3);
  });

  it('passes a chunk of whole frames through as the very same bytes', async () => {
    const { call } = await start();
    const chunk = Buffer.concat([metadataRequest(1), metadataRequest(2), metadataRequest(3)]);
    const [reply] = call.read(chunk);
    assert.ok(reply?.read_data?.data.equals(chunk));
  });

  it('echoes the client half-close after forwarding the frames that came with it', async () => {
    const { call } = await start();
    const request = metadataRequest(1);
    call.read(request.subarray(0, 4));
    assert.deepEqual(call.read(request.subarray(4), true), [{ read_data: { data: request, end_of_stream: true } }]);
    assert.deepEqual(call.read(empty, true), [{ read_data: { data: empty, end_of_stream: true } }]);
    assert.equal(call.ended, false, 'the connection stays open for the responses');
  });

  it('echoes the upstream close', async () => {
    const { call } = await start();
    call.read(metadataRequest(1));
    assert.deepEqual(call.writeData(responseFrame(1), true), [
      { write_data: { data: responseFrame(1), end_of_stream: true } },
    ]);
    assert.equal(call.ended, false);
  });

  it('closes when the client half-closes inside a frame: nothing more is forwarded, not even the whole frames before it', async () => {
    const { call, audit } = await start();
    const replies = call.read(Buffer.concat([metadataRequest(1), metadataRequest(2).subarray(0, 7)]), true);
    assert.deepEqual(replies, [
      { read_data: { data: empty, end_of_stream: false } },
      { connection_status: 'CLOSE' },
    ]);
    assert.equal(call.ended, true);
    assert.equal(audit.records.length, 1);
    assert.equal(audit.records[0]!.event, 'kafka.frame.truncated_at_eof');
  });

  it('closes a connection whose frame exceeds maxFrameBytes: data first, then CLOSE, an audit record, stream ended', async () => {
    const closes: ConnectionCloseReason[] = [];
    const { call, audit } = open({ hooks: { onConnectionClose: (reason) => closes.push(reason) } }, { maxFrameBytes: 1000 });
    const facts = { 'source.address': '10.0.0.7:51234', 'source.port': 51234, 'connection.id': 17 };
    call.send({
      read_data: { data: Buffer.concat([handshake(1), authenticate(2, goodToken('alice', Math.floor(Date.now() / 1000) + 600))]), end_of_stream: false },
      attributes: connectionAttributes(facts),
    });
    await settle();
    audit.records.length = 0;
    const replies = call.read(Buffer.concat([metadataRequest(3), int32(5000)]));

    assert.deepEqual(replies, [
      { read_data: { data: empty, end_of_stream: false } },
      { connection_status: 'CLOSE' },
    ], 'a connection being closed sends nothing more upstream: its responses could never be delivered');
    assert.equal(call.ended, true, 'the stream is ended after the CLOSE');
    assert.equal(audit.records.length, 1);
    const record = audit.records.find((r) => r.event === 'kafka.frame.too_large')!;
    assert.equal(record.path, 'kafka');
    assert.deepEqual(record.connection, facts);
    assert.equal(record.principal?.subject, 'alice');
    assert.equal(record.details?.['size'], 5000);
    assert.equal(record.details?.['limit'], 1000);
    assert.equal(record.details?.['direction'], 'request');
    assert.ok(!Number.isNaN(Date.parse(record.time)));
    assert.deepEqual(closes, ['kafka.frame.too_large']);

    assert.deepEqual(call.read(metadataRequest(4)), [], 'messages racing the close are not answered');
  });

  it('checks the frame size before anything else, also before authentication', () => {
    const { call, audit } = open({}, { maxFrameBytes: 100 * 1024 * 1024 });
    call.read(int32(100 * 1024 * 1024));
    assert.equal(call.ended, false);
    const other = open({}, { maxFrameBytes: 100 * 1024 * 1024 });
    other.call.read(int32(100 * 1024 * 1024 + 1));
    assert.equal(other.call.ended, true);
    assert.equal(other.audit.records[0]?.details?.['limit'], 100 * 1024 * 1024);
    assert.equal(audit.records.length, 0);
  });

  it('closes on a broker response nobody asked for, with an audit record', async () => {
    const { call, audit } = await start();
    const replies = call.writeData(responseFrame(5));
    assert.deepEqual(replies, [{ write_data: { data: empty, end_of_stream: false } }, { connection_status: 'CLOSE' }]);
    assert.equal(call.ended, true);
    assert.equal(audit.records[0]?.event, 'kafka.response.unknown_correlation_id');
    assert.deepEqual(audit.records[0]?.connection, {}, 'no connection attributes: no facts, no failure');
  });

  it('closes when more than maxInFlight requests await responses', async () => {
    const { call, audit } = await start({}, { maxInFlight: 1 });
    const replies = call.read(Buffer.concat([metadataRequest(1), metadataRequest(2)]));
    assert.deepEqual(replies, [
      { read_data: { data: empty, end_of_stream: false } },
      { connection_status: 'CLOSE' },
    ]);
    assert.equal(audit.records.at(-1)?.event, 'kafka.request.in_flight_limit');
  });

  it('reports connection open, frames, decisions and close to the hooks', async () => {
    const events: string[] = [];
    const { call } = await start({
      hooks: {
        onConnectionOpen: () => events.push('open'),
        onFrame: (direction, apiKey) => events.push(`${direction}:${apiKey}`),
        onDecision: (decision) => events.push(`decision:${decision.effect}:${decision.rule}`),
        onConnectionClose: (reason) => events.push(`close:${reason}`),
      },
    });
    call.read(metadataRequest(1));
    call.writeData(responseFrame(1));
    call.emit('end');
    call.emit('cancelled');
    assert.deepEqual(events, ['open', 'response:17', 'response:36', 'decision:allow:groups', 'request:12', 'response:12', 'close:stream_end']);
    assert.equal(call.ended, true, 'Envoy ended the stream: our side is completed too');
  });

  it('drops the session when the stream is cancelled or fails', async () => {
    for (const [event, reason] of [['cancelled', 'cancelled'], ['error', 'stream_error']] as const) {
      const closes: ConnectionCloseReason[] = [];
      const { call } = await start({ hooks: { onConnectionClose: (r) => closes.push(r) } });
      call.read(metadataRequest(1));
      if (event === 'error') call.emit('error', new Error('boom'));
      else call.emit(event);
      assert.deepEqual(closes, [reason]);
      assert.deepEqual(call.read(metadataRequest(2)), [], 'nothing is written to a dead stream');
    }
  });

  it('fails closed on an unexpected exception: CLOSE, an audit record, stream ended', async () => {
    const { call, audit } = await start({
      hooks: {
        onFrame: (direction) => {
          if (direction === 'request') throw new Error('metrics exploded');
        },
      },
    });
    assert.deepEqual(call.read(metadataRequest(1)), [{ connection_status: 'CLOSE' }]);
    assert.equal(call.ended, true);
    assert.equal(audit.records.at(-1)?.event, 'kafka.processor.internal_error');
  });
});

describe('a principal established by Envoy (mTLS via network ext_authz)', () => {
  const metadata = (fields: Record<string, unknown>) => ({ filter_metadata: { 'envoy.filters.network.ext_authz': { fields } } });
  const spiffe = {
    subject: { stringValue: 'spiffe://mesh.test/ns/shop/sa/orders-writer' },
    groups: { listValue: { values: [{ stringValue: 'shop' }] } },
    issuer: { stringValue: 'spiffe://mesh.test' },
    authenticated_by: { stringValue: 'mtls' },
    expires_at: { numberValue: Math.floor(Date.now() / 1000) + 3600 },
  };

  it('reads subject, groups, issuer, method and certificate expiry from the forwarded metadata', () => {
    assert.deepEqual(peerPrincipal(metadata(spiffe)), {
      subject: 'spiffe://mesh.test/ns/shop/sa/orders-writer', groups: ['shop'], issuer: 'spiffe://mesh.test', authenticatedBy: 'mtls', expiresAt: spiffe.expires_at.numberValue,
    });
    assert.equal(peerPrincipal(metadata({ ...spiffe, subject: { stringValue: '' } })), undefined, 'no subject, no principal');
    assert.equal(peerPrincipal(metadata({ ...spiffe, authenticated_by: { stringValue: 'magic' } })), undefined);
    assert.equal(peerPrincipal({ filter_metadata: { other: { fields: spiffe } } }), undefined, 'only ext_authz\'s namespace counts');
    assert.equal(peerPrincipal(undefined), undefined);
  });

  it('lets the connection start authenticated: requests go straight to policy, no SASL', () => {
    const audit = new MemoryAudit();
    const handler = createNetworkExtProcHandler(handlerOptions({ audit }, { decide: (p, a) => p.subject.endsWith('orders-writer') && a.group === 'app-1' ? { effect: 'allow', rule: 'mtls', reason: 'ok' } : fakeDecide(p, a) }));
    const call = new FakeCall();
    handler(call);
    const replies = call.send({ read_data: { data: metadataRequest(1), end_of_stream: false }, metadata: metadata(spiffe) });
    assert.deepEqual(replies, [{ read_data: { data: metadataRequest(1), end_of_stream: false } }]);
    call.writeData(responseFrame(1));
    const record = audit.records.find((r) => r.event === 'kafka.request');
    assert.equal(record?.principal?.authenticatedBy, 'mtls');
    assert.equal(record?.rule, 'mtls');
  });

  it('without that metadata, the same request before SASL closes the connection', () => {
    const { call, audit } = open();
    assert.deepEqual(call.read(metadataRequest(1)).at(-1), { connection_status: 'CLOSE' });
    assert.equal(audit.records[0]?.event, 'kafka.sasl.unauthenticated_request');
  });
});
