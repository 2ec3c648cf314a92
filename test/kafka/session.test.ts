import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KafkaSession, type KafkaDirection, type KafkaSessionOptions } from '../../src/kafka/session.ts';
import { captureLogger } from './fakes.ts';
import { framed, int32, metadataRequest, produceRequest, requestFrame, responseFrame, splitAt } from './frames.ts';

function session(overrides: Partial<KafkaSessionOptions> = {}): KafkaSession {
  return new KafkaSession({ maxFrameBytes: 1024 * 1024, maxInFlight: 100, ...overrides });
}

describe('KafkaSession', () => {
  it('forwards request frames and pairs each response with its request, oldest first', () => {
    const s = session();
    const requests = [metadataRequest(1), metadataRequest(2), metadataRequest(3)];
    assert.deepEqual(s.onClientData(Buffer.concat(requests)).forward, requests);
    assert.equal(s.inFlightCount, 3);

    const responses = [responseFrame(1), responseFrame(2), responseFrame(3)];
    assert.deepEqual(s.onBrokerData(responses[0]!), { forward: [responses[0]] });
    assert.deepEqual(s.onBrokerData(Buffer.concat(responses.slice(1))), { forward: responses.slice(1) });
    assert.equal(s.inFlightCount, 0);
  });

  it('holds partial frames in both directions until they are whole', () => {
    const s = session();
    const request = metadataRequest(1);
    const [head, tail] = splitAt(request, [6]);
    assert.deepEqual(s.onClientData(head!), { forward: [] });
    assert.equal(s.pendingBytes('request'), 6);
    assert.equal(s.inFlightCount, 0, 'a request is tracked only once whole');
    assert.deepEqual(s.onClientData(tail!), { forward: [request] });

    const response = responseFrame(1);
    const pieces = splitAt(response, [1, 3, 7]);
    for (const piece of pieces.slice(0, -1)) assert.deepEqual(s.onBrokerData(piece), { forward: [] });
    assert.deepEqual(s.onBrokerData(pieces.at(-1)!), { forward: [response] });
  });

  it('logs one debug line per request/response pair: api name, version, correlation id, client id, latency', () => {
    const { logger, lines } = captureLogger('debug');
    let now = 1000;
    const s = session({ logger, now: () => now });
    s.onClientData(requestFrame({ apiKey: 18, apiVersion: 2, correlationId: 77, clientId: 'kcat' }));
    now += 12.5;
    s.onBrokerData(responseFrame(77));
    const pair = lines.find((line) => line['msg'] === 'kafka request/response');
    assert.ok(pair, 'a pair line was logged');
    assert.equal(pair['level'], 20);
    assert.equal(pair['api'], 'ApiVersions');
    assert.equal(pair['apiVersion'], 2);
    assert.equal(pair['correlationId'], 77);
    assert.equal(pair['clientId'], 'kcat');
    assert.equal(pair['latencyMs'], 12.5);
  });

  it('does not track Produce requests with acks=0 (the broker never answers them), in every body layout', () => {
    for (const apiVersion of [2, 3, 8, 9, 11]) {
      const s = session();
      const fireAndForget = produceRequest({ apiVersion, acks: 0, correlationId: 10, transactionalId: null });
      assert.deepEqual(s.onClientData(fireAndForget).forward, [fireAndForget], `v${apiVersion} forwarded`);
      assert.equal(s.inFlightCount, 0, `v${apiVersion}: acks=0 not in flight`);

      s.onClientData(produceRequest({ apiVersion, acks: 1, correlationId: 11 }));
      s.onClientData(produceRequest({ apiVersion, acks: -1, correlationId: 12, transactionalId: 'tx' }));
      assert.equal(s.inFlightCount, 2, `v${apiVersion}: acks=1 and acks=-1 are awaited`);
      assert.equal(s.onBrokerData(Buffer.concat([responseFrame(11), responseFrame(12)])).violation, undefined);
      assert.equal(s.inFlightCount, 0);
    }
  });

  it('closes on a response whose correlation id no request in flight has, forwarding what came before it', () => {
    const s = session();
    s.onClientData(metadataRequest(1));
    const result = s.onBrokerData(Buffer.concat([responseFrame(1), responseFrame(99)]));
    assert.deepEqual(result.forward, [responseFrame(1)]);
    assert.equal(result.violation?.code, 'unknown_correlation_id');
    assert.equal(result.violation?.event, 'kafka.response.unknown_correlation_id');
    assert.equal(result.violation?.direction, 'response');
    assert.equal(result.violation?.details['correlationId'], 99);
  });

  it('closes on a response when no request is in flight at all', () => {
    const result = session().onBrokerData(responseFrame(1));
    assert.equal(result.violation?.code, 'unknown_correlation_id');
    assert.deepEqual(result.forward, []);
  });

  it('closes on a response that overtakes an older request (Kafka answers in order)', () => {
    const s = session();
    s.onClientData(Buffer.concat([metadataRequest(1), metadataRequest(2)]));
    const result = s.onBrokerData(responseFrame(2));
    assert.equal(result.violation?.code, 'out_of_order_response');
    assert.equal(result.violation?.details['expectedCorrelationId'], 1);
  });

  it('closes on a request that reuses a correlation id still in flight', () => {
    const s = session();
    const result = s.onClientData(Buffer.concat([metadataRequest(5), metadataRequest(5)]));
    assert.deepEqual(result.forward, [metadataRequest(5)]);
    assert.equal(result.violation?.code, 'duplicate_correlation_id');
  });

  it('closes when more requests than maxInFlight await a response', () => {
    const s = session({ maxInFlight: 2 });
    const result = s.onClientData(Buffer.concat([metadataRequest(1), metadataRequest(2), metadataRequest(3)]));
    assert.deepEqual(result.forward, [metadataRequest(1), metadataRequest(2)]);
    assert.equal(result.violation?.code, 'in_flight_limit');
    assert.equal(result.violation?.details['limit'], 2);
  });

  it('closes on a frame above maxFrameBytes, forwarding the whole frames before it', () => {
    const s = session({ maxFrameBytes: 64 });
    const result = s.onClientData(Buffer.concat([metadataRequest(1), int32(65)]));
    assert.deepEqual(result.forward, [metadataRequest(1)]);
    assert.equal(result.violation?.code, 'frame_too_large');
    assert.equal(result.violation?.event, 'kafka.frame.too_large');
    assert.deepEqual(result.violation?.details, { direction: 'request', size: 65, limit: 64 });
  });

  it('closes on a request frame too short for a header', () => {
    const result = session().onClientData(framed(Buffer.from([0, 3])));
    assert.equal(result.violation?.code, 'header_truncated');
  });

  it('once closed, forwards nothing more and keeps reporting the same violation', () => {
    const s = session();
    const first = s.onBrokerData(responseFrame(1)).violation;
    assert.ok(first);
    assert.deepEqual(s.onClientData(metadataRequest(2)), { forward: [], violation: first });
    assert.deepEqual(s.onBrokerData(responseFrame(2)), { forward: [], violation: first });
  });

  it('reports a direction that ends inside a frame as truncated_at_eof, and a clean end as nothing', () => {
    const s = session();
    s.onClientData(metadataRequest(1));
    assert.equal(s.onClientEnd(), undefined);
    s.onBrokerData(responseFrame(1).subarray(0, 5));
    const violation = s.onBrokerEnd();
    assert.equal(violation?.code, 'truncated_at_eof');
    assert.equal(violation?.details['pendingBytes'], 5);
  });

  it('reports every forwarded frame to onFrame with its api key (responses carry their request’s)', () => {
    const seen: Array<[KafkaDirection, number]> = [];
    const s = session({ onFrame: (direction, apiKey) => seen.push([direction, apiKey]) });
    s.onClientData(Buffer.concat([metadataRequest(1), produceRequest({ apiVersion: 9, acks: 0, correlationId: 2 })]));
    s.onBrokerData(responseFrame(1));
    assert.deepEqual(seen, [['request', 3], ['request', 0], ['response', 3]]);
  });
});
