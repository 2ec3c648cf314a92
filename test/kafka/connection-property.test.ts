/**
 * Property tests of a whole connection behind the network ext_proc handler (seeded, bounded in count and time):
 * whatever bytes arrive, cut wherever, the handler never throws, never fails internally, answers every message,
 * holds no more than a frame, and either keeps going or closes cleanly — CLOSE after the data, one audit record
 * naming why, the stream ended. Seed with TOLLGATE_PROPERTY_SEED to reproduce a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { BrokerRoutes } from '../../src/kafka/connection.ts';
import { createNetworkExtProcHandler, type NetworkProcessingResponse } from '../../src/kafka/service.ts';
import { FakeCall, MemoryAudit } from './fakes.ts';
import { seededRandom } from './frames.ts';
import { authenticate, fakeAuthenticate, fakeDecide, goodToken, handshake, heartbeat, produce, request, settle } from './requests.ts';

const SEED = Number(process.env['TOLLGATE_PROPERTY_SEED'] ?? 20261123);
const CASES = 300;
const TIME_BUDGET_MS = 8_000;
const MAX_FRAME_BYTES = 64 * 1024;

function open() {
  const audit = new MemoryAudit();
  const handler = createNetworkExtProcHandler({
    logger: pino({ level: 'silent' }),
    audit,
    settings: () => ({
      maxFrameBytes: MAX_FRAME_BYTES,
      maxInFlight: 50,
      authenticate: fakeAuthenticate,
      decide: fakeDecide,
      maxSessionLifetimeMs: 3_600_000,
      routes: new BrokerRoutes([]),
    }),
  });
  const call = new FakeCall();
  handler(call);
  return { call, audit };
}

/** Cuts `bytes` at random points into 1..n chunks. */
function cuts(bytes: Buffer, random: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = 1 + Math.floor(random() * Math.min(bytes.length - at, random() < 0.3 ? 8 : 4096));
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** Valid frames, then some of them mutated, truncated, or replaced by garbage. */
function stream(random: () => number): Buffer {
  const frames: Buffer[] = [];
  const valid = [
    () => heartbeat(Math.floor(random() * 1000)),
    () => produce(Math.floor(random() * 1000), random() < 0.5 ? ['orders'] : ['orders', 'admin.audit']),
    () => request(3, 12, Math.floor(random() * 1000), { topics: null, allowAutoTopicCreation: false }),
    () => request(18, 3, Math.floor(random() * 1000), { clientSoftwareName: 'p', clientSoftwareVersion: '1' }),
  ];
  const count = 1 + Math.floor(random() * 6);
  for (let i = 0; i < count; i++) {
    let frame = Buffer.from(valid[Math.floor(random() * valid.length)]!());
    const roll = random();
    if (roll < 0.25) {
      for (let m = 0; m < 1 + Math.floor(random() * 4); m++) frame[Math.floor(random() * frame.length)] = Math.floor(random() * 256);
    } else if (roll < 0.35) {
      frame = frame.subarray(0, Math.floor(random() * frame.length));
    } else if (roll < 0.45) {
      frame = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256)));
    }
    frames.push(frame);
  }
  return Buffer.concat(frames);
}

function assertCleanEnd(replies: readonly NetworkProcessingResponse[], audit: MemoryAudit, call: FakeCall, label: string): void {
  const closeAt = replies.findIndex((r) => r.connection_status === 'CLOSE');
  if (closeAt === -1) {
    assert.equal(call.ended, false, `${label}: the stream is ended only after a CLOSE`);
    return;
  }
  assert.equal(closeAt, replies.length - 1, `${label}: nothing is written after CLOSE`);
  assert.equal(call.ended, true, `${label}: the stream is ended after CLOSE`);
  const perRequest = new Set(['kafka.request', 'kafka.request.denied', 'kafka.request.partially_denied', 'kafka.sasl.authenticated', 'kafka.sasl.unsupported_mechanism']);
  const closes = audit.records.filter((r) => !perRequest.has(r.event));
  assert.equal(closes.length, 1, `${label}: one audit record says why (${closes.map((r) => r.event).join(', ')})`);
  assert.notEqual(closes[0]!.event, 'kafka.processor.internal_error', `${label}: ${closes[0]!.reason}`);
}

test('random, mutated, truncated and garbage client bytes, cut anywhere: answered, bounded, and closed cleanly or not at all', async () => {
  const random = seededRandom(SEED);
  const started = Date.now();
  let closed = 0;
  let cases = 0;
  for (; cases < CASES && Date.now() - started < TIME_BUDGET_MS; cases++) {
    const { call, audit } = open();
    const authenticated = random() < 0.8;
    if (authenticated) {
      call.read(Buffer.concat([handshake(-2), authenticate(-1, goodToken('alice', Math.floor(Date.now() / 1000) + 600))]));
      await settle();
    }
    const label = `seed ${SEED} case ${cases} (${authenticated ? 'authenticated' : 'anonymous'})`;
    for (const chunk of cuts(stream(random), random)) {
      if (call.ended) {
        assert.deepEqual(call.read(chunk), [], `${label}: nothing is answered once closed`);
        continue;
      }
      const replies = call.read(chunk);
      assert.ok(replies.length >= 1, `${label}: every message is answered`);
      assert.ok(replies[0]!.read_data !== undefined || replies[0]!.connection_status === 'CLOSE', `${label}: the first reply is the read_data reply`);
    }
    await settle();
    assertCleanEnd(call.written.filter((r) => r.connection_status !== undefined || r.read_data !== undefined || r.write_data !== undefined), audit, call, label);
    if (call.ended) closed++;
  }
  assert.ok(cases >= 50, `ran ${cases} cases within the time budget`);
  assert.ok(closed > 0 && closed < cases, `some connections closed, some survived (${closed} of ${cases})`);
});

test('random broker bytes (responses nobody asked for, garbage) close the connection cleanly, never internally', () => {
  const random = seededRandom(SEED + 1);
  for (let i = 0; i < 100; i++) {
    const { call, audit } = open();
    const garbage = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 200) }, () => Math.floor(random() * 256)));
    for (const chunk of cuts(garbage, random)) {
      if (call.ended) break;
      call.writeData(chunk);
    }
    assertCleanEnd(call.written, audit, call, `broker garbage case ${i}`);
  }
});
