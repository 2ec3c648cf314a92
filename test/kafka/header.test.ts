import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiKeyName, requestHeaderVersion } from '../../src/kafka/protocol/api-keys.ts';
import { FrameError } from '../../src/kafka/protocol/errors.ts';
import { readRequestHeader, readResponseCorrelationId } from '../../src/kafka/protocol/header.ts';
import { readProduceAcks } from '../../src/kafka/protocol/produce.ts';
import { framed, int16, int32, produceRequest, requestFrame, responseFrame } from './frames.ts';

function isFrameError(code: string, expectedOffset?: number) {
  return (error: unknown): boolean =>
    error instanceof FrameError &&
    error.code === code &&
    (expectedOffset === undefined ||
      (error.details['expectedOffset'] === expectedOffset && error.message.includes(`offset ${expectedOffset}`)));
}

describe('readRequestHeader (frames include their 4-byte size prefix)', () => {
  it('reads a v1 header: api key, version, correlation id, client id; the body follows the client id', () => {
    const body = Buffer.from('BODY');
    const frame = requestFrame({ apiKey: 3, apiVersion: 8, correlationId: 42, clientId: 'console-producer', body });
    const header = readRequestHeader(frame);
    assert.deepEqual(header, {
      apiKey: 3,
      apiVersion: 8,
      correlationId: 42,
      clientId: 'console-producer',
      headerVersion: 1,
      bodyOffset: 4 + 2 + 2 + 4 + 2 + 'console-producer'.length,
    });
    assert.deepEqual(frame.subarray(header.bodyOffset), body);
  });

  it('reads a null client id (length -1) as null', () => {
    const header = readRequestHeader(requestFrame({ apiKey: 3, apiVersion: 1, correlationId: 1, clientId: null }));
    assert.equal(header.clientId, null);
    assert.equal(header.bodyOffset, 4 + 2 + 2 + 4 + 2);
  });

  it('reads a UTF-8 client id', () => {
    const header = readRequestHeader(requestFrame({ apiKey: 18, apiVersion: 2, correlationId: 1, clientId: 'prodüçer' }));
    assert.equal(header.clientId, 'prodüçer');
  });

  it('reads a v2 (flexible) header: non-compact client id, then tagged fields skipped before the body', () => {
    const body = Buffer.from([0xaa, 0xbb]);
    const frame = requestFrame({
      apiKey: 3, // Metadata: flexible from v9
      apiVersion: 12,
      correlationId: 7,
      headerVersion: 2,
      clientId: 'rdkafka',
      tagged: [
        [0, Buffer.from('abc')],
        [300, Buffer.alloc(200, 1)], // a tag and a size that need two varint bytes
      ],
      body,
    });
    const header = readRequestHeader(frame);
    assert.equal(header.headerVersion, 2);
    assert.equal(header.clientId, 'rdkafka');
    assert.equal(header.correlationId, 7);
    assert.deepEqual(frame.subarray(header.bodyOffset), body);
  });

  it('uses header v0 (no client id) for ControlledShutdown v0 only', () => {
    const frame = requestFrame({ apiKey: 7, apiVersion: 0, correlationId: 9, headerVersion: 0, body: int32(1) });
    assert.deepEqual(readRequestHeader(frame), {
      apiKey: 7,
      apiVersion: 0,
      correlationId: 9,
      clientId: null,
      headerVersion: 0,
      bodyOffset: 12,
    });
    assert.equal(requestHeaderVersion(7, 1), 1);
    assert.equal(requestHeaderVersion(7, 3), 2);
  });

  it('reads the client id of an unknown API key but leaves the body offset unknown (tagged fields unknowable)', () => {
    const header = readRequestHeader(requestFrame({ apiKey: 4242, apiVersion: 0, correlationId: 1, clientId: 'x' }));
    assert.equal(header.clientId, 'x');
    assert.equal(header.headerVersion, undefined);
    assert.equal(header.bodyOffset, undefined);
  });

  it('reports a frame cut inside the fixed fields as header_truncated, naming the offset it needed', () => {
    const frame = framed(Buffer.concat([int16(3), int16(1), int16(0)])); // correlation id cut in half
    assert.throws(() => readRequestHeader(frame), isFrameError('header_truncated', 12));
  });

  it('reports a frame cut inside the client id as header_truncated, naming the offset it needed', () => {
    const whole = requestFrame({ apiKey: 3, apiVersion: 1, correlationId: 1, clientId: 'abcdef' });
    const cut = whole.subarray(0, whole.length - 3);
    assert.throws(() => readRequestHeader(cut), isFrameError('header_truncated', 4 + 2 + 2 + 4 + 2 + 6));
  });

  it('reports a frame cut inside the tagged fields of a v2 header as header_truncated', () => {
    const whole = requestFrame({
      apiKey: 18,
      apiVersion: 3,
      correlationId: 1,
      headerVersion: 2,
      clientId: 'c',
      tagged: [[1, Buffer.alloc(10)]],
    });
    assert.throws(() => readRequestHeader(whole.subarray(0, whole.length - 4)), isFrameError('header_truncated'));
  });

  it('rejects a client id length below -1 as header_invalid', () => {
    const frame = framed(Buffer.concat([int16(3), int16(1), int32(1), int16(-2)]));
    assert.throws(() => readRequestHeader(frame), isFrameError('header_invalid'));
  });
});

describe('readResponseCorrelationId', () => {
  it('reads the correlation id right after the size prefix', () => {
    assert.equal(readResponseCorrelationId(responseFrame(123456)), 123456);
  });

  it('reports a frame too short for it as header_truncated at offset 8', () => {
    assert.throws(() => readResponseCorrelationId(framed(Buffer.from([0, 1]))), isFrameError('header_truncated', 8));
  });
});

describe('readProduceAcks', () => {
  const cases: Array<{ apiVersion: number; transactionalId?: string | null; what: string }> = [
    { apiVersion: 2, what: 'v0–v2: acks first in the body' },
    { apiVersion: 3, transactionalId: 'tx-1', what: 'v3–v8: after a non-compact transactional id' },
    { apiVersion: 8, transactionalId: null, what: 'v3–v8: after a null transactional id' },
    { apiVersion: 9, transactionalId: 'tx-ü', what: 'v9+: after tagged header fields and a compact transactional id' },
    { apiVersion: 11, transactionalId: null, what: 'v9+: after a null compact transactional id' },
  ];
  for (const { apiVersion, transactionalId, what } of cases) {
    it(`reads acks for Produce v${apiVersion} (${what})`, () => {
      for (const acks of [0, 1, -1]) {
        const frame = produceRequest({ apiVersion, acks, correlationId: 5, transactionalId: transactionalId ?? null });
        assert.equal(readProduceAcks(frame, readRequestHeader(frame)), acks);
      }
    });
  }

  it('reports a body too short for acks as body_truncated', () => {
    const frame = requestFrame({ apiKey: 0, apiVersion: 3, correlationId: 1, body: int16(-1) });
    assert.throws(() => readProduceAcks(frame, readRequestHeader(frame)), isFrameError('body_truncated'));
  });
});

describe('api keys', () => {
  it('names known keys and marks unknown ones', () => {
    assert.equal(apiKeyName(0), 'Produce');
    assert.equal(apiKeyName(1), 'Fetch');
    assert.equal(apiKeyName(18), 'ApiVersions');
    assert.equal(apiKeyName(36), 'SaslAuthenticate');
    assert.equal(apiKeyName(9999), 'Unknown(9999)');
  });

  it('knows where flexible versions (request header v2) start', () => {
    assert.equal(requestHeaderVersion(0, 8), 1);
    assert.equal(requestHeaderVersion(0, 9), 2);
    assert.equal(requestHeaderVersion(18, 2), 1);
    assert.equal(requestHeaderVersion(18, 3), 2);
    assert.equal(requestHeaderVersion(17, 1), 1, 'SaslHandshake has no flexible version');
    assert.equal(requestHeaderVersion(9999, 0), undefined);
  });
});
