/**
 * Property tests, seeded and bounded (count and time): random frames of every API built from the generated
 * schemas, cut at random points, garbage and mutated frames; broker endpoint rewriting and ApiVersions trimming
 * over random responses. A failure prints its seed and case number: rerun with that seed to reproduce.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_API_LIMITS, trimApiVersionsResponse } from '../../src/kafka/api-versions.ts';
import type { ApiVersionLimits } from '../../src/kafka/api-versions.ts';
import type { MessageSchema } from '../../src/kafka/protocol/codec/schema.ts';
import { FrameError } from '../../src/kafka/protocol/errors.ts';
import { FrameReassembler } from '../../src/kafka/protocol/framing.ts';
import { API_SPECS } from '../../src/kafka/protocol/generated/index.ts';
import type { ApiVersionsResponse } from '../../src/kafka/protocol/generated/index.ts';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../src/kafka/protocol/messages.ts';
import { BROKER_ENDPOINT_API_KEYS, BrokerRoutes, carriesBrokerEndpoints, rewriteBrokerEndpoints } from '../../src/kafka/routing/index.ts';
import { seededRandom } from './frames.ts';
import { endpointsIn, int, oneOf, randomBody } from './routing/schema-walk.ts';
import type { Pick, Random } from './routing/schema-walk.ts';

const SEED = Number(process.env['TOLLGATE_PROPERTY_SEED'] ?? 20260814);
/** Each property stops after this many cases or this much time, whichever comes first. */
const MAX_MS = 4_000;

function bounded(cases: number, run: (random: Random, n: number) => void): void {
  const random = seededRandom(SEED);
  const deadline = Date.now() + MAX_MS;
  for (let n = 0; n < cases && Date.now() < deadline; n++) {
    try {
      run(random, n);
    } catch (error) {
      if (error instanceof Error) error.message = `[seed ${SEED}, case ${n}] ${error.message}`;
      throw error;
    }
  }
}

const APIS = [...API_SPECS.values()].filter((spec) => spec.codecs !== null);

function versionOf(random: Random, schema: MessageSchema<unknown>): number {
  return int(random, schema.validVersions!.min, schema.validVersions!.max);
}

/** A random whole request or response frame of a random API and version. */
function randomFrame(random: Random): { frame: Buffer; kind: 'request' | 'response'; apiKey: number; apiVersion: number } {
  const spec = oneOf(random, APIS);
  const codecs = spec.codecs!;
  if (random() < 0.5) {
    const apiVersion = versionOf(random, codecs.requestSchema);
    const body = randomBody(codecs.requestSchema, apiVersion, random);
    const header = { apiKey: spec.apiKey, apiVersion, correlationId: int(random, 0, 0x7fffffff), clientId: random() < 0.1 ? null : 'client', taggedFields: [] };
    return { frame: encodeRequest(header, body), kind: 'request', apiKey: spec.apiKey, apiVersion };
  }
  const apiVersion = versionOf(random, codecs.responseSchema);
  const body = randomBody(codecs.responseSchema, apiVersion, random);
  return { frame: encodeResponse({ correlationId: int(random, 0, 1000), taggedFields: [] }, spec.apiKey, apiVersion, body), kind: 'response', apiKey: spec.apiKey, apiVersion };
}

/** Cuts `stream` at random points; chunks range from 1 byte to several frames. */
function randomChunks(random: Random, stream: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset < stream.length) {
    const size = random() < 0.3 ? int(random, 1, 8) : int(random, 1, 600);
    chunks.push(stream.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

/** Runs `fn`; anything it throws must be a FrameError. */
function onlyFrameErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof FrameError, `expected FrameError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
}

describe('random frames of every API', () => {
  it('encode, decode and re-encode byte for byte', () => {
    bounded(1500, (random) => {
      const { frame, kind, apiKey, apiVersion } = randomFrame(random);
      if (kind === 'request') {
        const decoded = decodeRequest(frame);
        assert.deepEqual(encodeRequest(decoded.header, decoded.body), frame);
      } else {
        const decoded = decodeResponse(frame, apiKey, apiVersion);
        assert.deepEqual(encodeResponse(decoded.header, apiKey, apiVersion, decoded.body), frame);
      }
    });
  });

  it('come out of the reassembler intact and in order, however the stream is cut', () => {
    bounded(300, (random) => {
      const frames = Array.from({ length: int(random, 1, 8) }, () => randomFrame(random).frame);
      const maxFrameBytes = Math.max(...frames.map((f) => f.length - 4)) + int(random, 0, 10);
      const reassembler = new FrameReassembler({ maxFrameBytes });
      const out: Buffer[] = [];
      for (const chunk of randomChunks(random, Buffer.concat(frames))) {
        out.push(...reassembler.push(chunk));
        assert.ok(reassembler.pendingBytes <= maxFrameBytes + 4);
      }
      assert.deepEqual(out, frames);
      assert.equal(reassembler.isIdle, true);
    });
  });

  it('a stream that ends mid-frame leaves the reassembler holding it (not idle)', () => {
    bounded(300, (random) => {
      const frames = Array.from({ length: int(random, 1, 5) }, () => randomFrame(random).frame);
      const stream = Buffer.concat(frames);
      const last = frames[frames.length - 1]!;
      const cut = stream.length - int(random, 1, last.length - 1);
      const reassembler = new FrameReassembler({ maxFrameBytes: 1 << 20 });
      const out: Buffer[] = [];
      for (const chunk of randomChunks(random, stream.subarray(0, cut))) out.push(...reassembler.push(chunk));
      assert.deepEqual(out, frames.slice(0, -1));
      assert.equal(reassembler.isIdle, false);
      assert.equal(reassembler.pendingBytes, cut - (stream.length - last.length));
    });
  });
});

describe('garbage never breaks the parsers', () => {
  function mutate(random: Random, frame: Buffer): Buffer {
    const out = Buffer.from(frame);
    switch (int(random, 0, 3)) {
      case 0: // flip a few bytes
        for (let n = int(random, 1, 4); n > 0; n--) out[int(random, 0, out.length - 1)] = int(random, 0, 255);
        break;
      case 1: // cut, size prefix fixed
        return fixPrefix(out.subarray(0, int(random, 4, out.length)));
      case 2: // extend, size prefix fixed
        return fixPrefix(Buffer.concat([out, Buffer.from([int(random, 0, 255), int(random, 0, 255)])]));
      default: // flip body bytes only, size prefix fixed
        for (let n = int(random, 1, 4); n > 0 && out.length > 12; n--) out[int(random, 12, out.length - 1)] = int(random, 0, 255);
        break;
    }
    return out;
  }

  function fixPrefix(frame: Buffer): Buffer {
    const out = Buffer.from(frame);
    if (out.length >= 4) out.writeInt32BE(out.length - 4, 0);
    return out;
  }

  it('decodeRequest and decodeResponse throw only FrameError on random bytes', () => {
    bounded(3000, (random) => {
      const body = Buffer.alloc(int(random, 0, 64));
      for (let i = 0; i < body.length; i++) body[i] = int(random, 0, 255);
      // Requests: a real API key and version in front most of the time, so parsing gets past the header.
      if (body.length >= 4 && random() < 0.8) {
        const spec = oneOf(random, APIS);
        body.writeInt16BE(spec.apiKey, 0);
        body.writeInt16BE(versionOf(random, spec.codecs!.requestSchema), 2);
      }
      const frame = fixPrefix(Buffer.concat([Buffer.alloc(4), body]));
      onlyFrameErrors(() => decodeRequest(frame));
      const spec = oneOf(random, APIS);
      onlyFrameErrors(() => decodeResponse(frame, spec.apiKey, versionOf(random, spec.codecs!.responseSchema)));
      onlyFrameErrors(() => decodeResponse(frame, int(random, -5, 200), int(random, -1, 20)));
    });
  });

  it('decodeRequest and decodeResponse throw only FrameError on mutated valid frames', () => {
    bounded(3000, (random) => {
      const { frame, kind, apiKey, apiVersion } = randomFrame(random);
      const bad = mutate(random, frame);
      if (kind === 'request') onlyFrameErrors(() => decodeRequest(bad));
      else onlyFrameErrors(() => decodeResponse(bad, apiKey, apiVersion));
    });
  });

  it('the reassembler throws only FrameError on garbage and never holds more than a frame', () => {
    bounded(500, (random) => {
      const maxFrameBytes = int(random, 0, 2048);
      const reassembler = new FrameReassembler({ maxFrameBytes });
      const stream = Buffer.alloc(int(random, 0, 4096));
      for (let i = 0; i < stream.length; i++) stream[i] = random() < 0.7 ? 0 : int(random, 0, 255);
      for (const chunk of randomChunks(random, stream)) {
        try {
          reassembler.push(chunk);
        } catch (error) {
          assert.ok(error instanceof FrameError, String(error));
          assert.equal(reassembler.failure, error);
          assert.throws(() => reassembler.push(Buffer.from([0])), (again: unknown) => again === error);
          break;
        }
        assert.ok(reassembler.pendingBytes <= maxFrameBytes + 4, `${reassembler.pendingBytes} held, limit ${maxFrameBytes}`);
      }
    });
  });
});

describe('broker endpoint rewriting over random responses', () => {
  const ROUTES = new BrokerRoutes([
    { nodeId: 1, host: 'kafka-1.envoy.local', port: 19092 },
    { nodeId: 2, host: 'kafka-2.envoy.local', port: 19093 },
    { nodeId: 3, host: '10.0.0.3', port: 19094 },
  ]);
  const ROUTED = new Set(ROUTES.list().map((r) => `${r.host}:${r.port}`));

  /** Node ids mostly routed, sometimes unknown or "no node"; addresses sometimes already the route. */
  const pick: Pick = (field, _path, random) => {
    switch (field.name) {
      case 'nodeId':
      case 'brokerId':
        return oneOf(random, [1, 2, 3, 1, 2, 3, 1, 2, 3, 7, -1]);
      case 'host':
        return oneOf(random, ['broker.internal', 'kafka-1.envoy.local', 'kafka-2.envoy.local', '10.0.0.3', '']);
      case 'port':
        return oneOf(random, field.type === 'uint16' ? [9092, 19092, 19093, 19094] : [9092, 19092, 19093, 19094, -1]);
      case 'errorCode':
        return oneOf(random, [0, 0, 15]);
      case 'endpointType':
        return oneOf(random, [1, 1, 1, 2]);
      default:
        return undefined;
    }
  };

  const idOf = (struct: Record<string, unknown>): number | undefined => (struct['nodeId'] ?? struct['brokerId']) as number | undefined;
  const isNoNode = (apiKey: number, struct: Record<string, unknown>, body: Record<string, unknown>): boolean =>
    apiKey === 10 && idOf(struct) === -1 && struct['host'] === '' && (struct['errorCode'] ?? body['errorCode']) !== 0;
  /** Endpoints that must never reach a client, whatever the routes: controllers. */
  const isController = (apiKey: number, path: string, body: Record<string, unknown>): boolean =>
    (apiKey === 55 && path === 'nodes.listeners') || (apiKey === 60 && body['endpointType'] === 2);

  it('rewritten frames decode and carry only routed addresses; unchanged frames already did; unknown node ids fail closed', () => {
    const seen = { unchanged: 0, rewritten: 0, unknown_broker: 0 };
    bounded(2000, (random) => {
      const apiKey = oneOf(random, BROKER_ENDPOINT_API_KEYS);
      const schema = API_SPECS.get(apiKey)!.codecs!.responseSchema;
      const apiVersion = versionOf(random, schema);
      const body = randomBody(schema, apiVersion, random, pick);
      const frame = encodeResponse({ correlationId: 5, taggedFields: [] }, apiKey, apiVersion, body);
      const result = rewriteBrokerEndpoints(frame, apiKey, apiVersion, ROUTES);
      seen[result.kind]++;
      const before = endpointsIn(schema, apiVersion, decodeResponse(frame, apiKey, apiVersion).body as unknown as Record<string, unknown>);
      const relevant = before.filter((e) => !isController(apiKey, e.path, body) && !isNoNode(apiKey, e.struct, body));
      const unknown = relevant.find((e) => ROUTES.get(idOf(e.struct)!) === undefined);
      if (!carriesBrokerEndpoints(apiKey, apiVersion)) {
        assert.deepEqual(result, { kind: 'unchanged' });
        return;
      }
      if (unknown !== undefined) {
        assert.deepEqual(result, { kind: 'unknown_broker', nodeId: idOf(unknown.struct), host: unknown.struct['host'], port: unknown.struct['port'] });
        return;
      }
      const out = result.kind === 'rewritten' ? result.frame : frame;
      if (result.kind === 'unchanged') assert.equal(before.filter((e) => isController(apiKey, e.path, body)).length, 0, 'controllers must be stripped');
      const decoded = decodeResponse(out, apiKey, apiVersion);
      assert.equal(decoded.header.correlationId, 5);
      const after = endpointsIn(schema, apiVersion, decoded.body as unknown as Record<string, unknown>);
      for (const endpoint of after) {
        if (isNoNode(apiKey, endpoint.struct, decoded.body as unknown as Record<string, unknown>)) continue;
        assert.ok(!isController(apiKey, endpoint.path, decoded.body as unknown as Record<string, unknown>), `controller endpoint at ${endpoint.path}`);
        const route = ROUTES.get(idOf(endpoint.struct)!)!;
        assert.equal(`${endpoint.struct['host']}:${endpoint.struct['port']}`, `${route.host}:${route.port}`, endpoint.path);
        assert.ok(ROUTED.has(`${endpoint.struct['host']}:${endpoint.struct['port']}`));
      }
      if (result.kind === 'rewritten') {
        assert.notDeepEqual(out, frame);
        assert.deepEqual(rewriteBrokerEndpoints(out, apiKey, apiVersion, ROUTES), { kind: 'unchanged' }, 'rewriting is idempotent');
      }
    });
    assert.ok(seen.unchanged > 0 && seen.rewritten > 0 && seen.unknown_broker > 0, JSON.stringify(seen));
  });

  it('outside the addresses, a rewritten frame is the broker\'s frame', () => {
    bounded(1000, (random) => {
      const apiKey = oneOf(random, BROKER_ENDPOINT_API_KEYS);
      const schema = API_SPECS.get(apiKey)!.codecs!.responseSchema;
      const apiVersion = versionOf(random, schema);
      const body = randomBody(schema, apiVersion, random, pick);
      const frame = encodeResponse({ correlationId: 5, taggedFields: [] }, apiKey, apiVersion, body);
      const result = rewriteBrokerEndpoints(frame, apiKey, apiVersion, ROUTES);
      if (result.kind !== 'rewritten') return;
      // Put the broker's addresses back (and the stripped controller lists): the bytes must be the broker's.
      const restored = decodeResponse(result.frame, apiKey, apiVersion).body as unknown as Record<string, unknown>;
      const original = decodeResponse(frame, apiKey, apiVersion).body as unknown as Record<string, unknown>;
      if (apiKey === 60) restored['brokers'] = original['brokers'];
      if (apiKey === 55) (restored['nodes'] as Array<Record<string, unknown>>).forEach((node, i) => { node['listeners'] = (original['nodes'] as Array<Record<string, unknown>>)[i]!['listeners']; });
      const from = endpointsIn(schema, apiVersion, original);
      const to = endpointsIn(schema, apiVersion, restored);
      assert.equal(to.length, from.length);
      to.forEach((endpoint, i) => {
        endpoint.struct['host'] = from[i]!.struct['host'];
        endpoint.struct['port'] = from[i]!.struct['port'];
      });
      assert.deepEqual(encodeResponse({ correlationId: 5, taggedFields: [] }, apiKey, apiVersion, restored), frame);
    });
  });

  it('with no routes configured, nothing is ever rewritten', () => {
    const none = new BrokerRoutes([]);
    bounded(300, (random) => {
      const apiKey = oneOf(random, BROKER_ENDPOINT_API_KEYS);
      const schema = API_SPECS.get(apiKey)!.codecs!.responseSchema;
      const apiVersion = versionOf(random, schema);
      const frame = encodeResponse({ correlationId: 5, taggedFields: [] }, apiKey, apiVersion, randomBody(schema, apiVersion, random, pick));
      assert.deepEqual(rewriteBrokerEndpoints(frame, apiKey, apiVersion, none), { kind: 'unchanged' });
    });
  });
});

describe('ApiVersions trimming over random offers', () => {
  const schema = API_SPECS.get(18)!.codecs!.responseSchema;

  function randomLimits(random: Random): ApiVersionLimits {
    if (random() < 0.4) return CLIENT_API_LIMITS;
    const limits = new Map<number, { min: number; max: number }>();
    for (let n = int(random, 0, 30); n > 0; n--) {
      const min = int(random, 0, 10);
      limits.set(int(random, 0, 95), { min, max: int(random, min, 20) });
    }
    return limits;
  }

  it('keeps only allowed keys, each narrowed to the overlap, in order; the rest of the body stays; trimming twice changes nothing', () => {
    bounded(1500, (random) => {
      const version = versionOf(random, schema);
      const body = randomBody(schema, version, random) as unknown as ApiVersionsResponse;
      body.errorCode = oneOf(random, [0, 0, 0, 35]);
      body.apiKeys = Array.from({ length: int(random, 0, 40) }, () => {
        const minVersion = int(random, 0, 12);
        return { apiKey: int(random, 0, 95), minVersion, maxVersion: int(random, minVersion - 1, 20) };
      });
      const frame = encodeResponse({ correlationId: 9, taggedFields: [] }, 18, version, body);
      const limits = randomLimits(random);
      const out = trimApiVersionsResponse(frame, version, limits);
      if (body.errorCode === 35) {
        assert.equal(out, frame, 'UNSUPPORTED_VERSION passes through');
        return;
      }
      const decoded = decodeResponse(out, 18, version);
      const expected = body.apiKeys.flatMap((entry) => {
        const limit = limits.get(entry.apiKey);
        if (limit === undefined) return [];
        const minVersion = Math.max(entry.minVersion, limit.min);
        const maxVersion = Math.min(entry.maxVersion, limit.max);
        return minVersion > maxVersion ? [] : [{ ...entry, minVersion, maxVersion }];
      });
      assert.deepEqual(decoded.body.apiKeys.map(({ apiKey, minVersion, maxVersion }) => ({ apiKey, minVersion, maxVersion })), expected.map(({ apiKey, minVersion, maxVersion }) => ({ apiKey, minVersion, maxVersion })));
      const { apiKeys: _a, ...rest } = decoded.body;
      const { apiKeys: _b, ...expectedRest } = decodeResponse(frame, 18, version).body;
      assert.deepEqual(rest, expectedRest);
      const changed = JSON.stringify(expected) !== JSON.stringify(body.apiKeys.map((e) => ({ ...e })));
      if (!changed) assert.equal(out, frame, 'nothing to trim: the very same frame');
      assert.equal(trimApiVersionsResponse(out, version, limits), out, 'trimming is idempotent');
    });
  });
});
