/**
 * Kafka through the real Envoy (network ext_proc → tcp_proxy) and tollgate to a real broker: bytes arrive unchanged,
 * frames are reassembled whatever the TCP boundaries, closes propagate, and an oversized frame is refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type Producer } from 'kafkajs';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import { requestFrame, int32 } from '../kafka/frames.ts';

let stack: Stack;
let kafka: Kafka;

before(async () => {
  stack = await startStack();
  kafka = new Kafka({ clientId: 'e2e-kafka', brokers: [stack.kafkaBootstrap], logLevel: logLevel.NOTHING });
});
after(async () => { await stack?.stop(); });

/** Resolves with everything the socket received once it closes; rejects if it is still open after `ms`. */
function collectUntilClose(socket: net.Socket, ms: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connection still open after ${ms} ms`)), ms);
    socket.once('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)); });
  });
}

function connect(): Promise<net.Socket> {
  const [host, port] = stack.kafkaBootstrap.split(':');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: host!, port: Number(port) }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads whole frames off a socket (size prefix included). */
function frameReader(socket: net.Socket) {
  let buffered = Buffer.alloc(0);
  const waiting: Array<(f: Buffer) => void> = [];
  const frames: Buffer[] = [];
  const drain = () => {
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
      const size = 4 + buffered.readInt32BE(0);
      const frame = buffered.subarray(0, size);
      buffered = buffered.subarray(size);
      const w = waiting.shift();
      if (w) w(frame); else frames.push(frame);
    }
  };
  socket.on('data', (c: Buffer) => { buffered = Buffer.concat([buffered, c]); drain(); });
  return {
    next: (ms = 10_000) => new Promise<Buffer>((resolve, reject) => {
      const f = frames.shift();
      if (f) return resolve(f);
      const timer = setTimeout(() => reject(new Error(`no frame within ${ms} ms`)), ms);
      waiting.push((frame) => { clearTimeout(timer); resolve(frame); });
    }),
  };
}

const apiVersionsRequest = (correlationId: number) => requestFrame({ apiKey: 18, apiVersion: 0, correlationId, clientId: 'e2e-raw' });

test('kafkajs produces and consumes through Envoy and tollgate; every message arrives byte for byte', async () => {
  const topic = 'orders';
  const big = randomBytes(1536 * 1024); // > 1 MiB: the Produce and Fetch frames span many TCP reads
  const messages = [
    { key: 'order-1', value: JSON.stringify({ id: 1, card: '4111111111111111', email: 'ada@example.com' }), headers: { source: 'e2e' } },
    { key: 'order-big', value: big },
    { key: 'order-2', value: Buffer.from([0, 1, 2, 255, 254]) },
  ];
  const producer: Producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages });
  await producer.disconnect();

  const consumer: Consumer = kafka.consumer({ groupId: `e2e-${Date.now()}`, maxBytes: 8 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const received: Array<{ key: string; value: Buffer; headers: Record<string, unknown> }> = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received.length} of 3 messages within 30 s`)), 30_000);
    void consumer.run({
      eachMessage: async ({ message }) => {
        received.push({ key: message.key!.toString(), value: message.value!, headers: message.headers ?? {} });
        if (received.length === messages.length) { clearTimeout(timer); resolve(); }
      },
    });
  });
  await consumer.disconnect();

  assert.deepEqual(received.map((m) => m.key), ['order-1', 'order-big', 'order-2']);
  assert.equal(received[0]!.value.toString(), messages[0]!.value);
  assert.equal(String(received[0]!.headers['source']), 'e2e');
  assert.ok(received[1]!.value.equals(big), 'the 1.5 MiB value arrived unchanged');
  assert.ok(received[2]!.value.equals(Buffer.from([0, 1, 2, 255, 254])));

  // tollgate saw the traffic it let through: Produce and Fetch frames in both directions.
  const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text();
  assert.match(metrics, /tollgate_kafka_frames_total\{direction="request",api="Produce"\} [1-9]/);
  assert.match(metrics, /tollgate_kafka_frames_total\{direction="response",api="Fetch"\} [1-9]/);
});

test('a request written one byte at a time, and two requests in one write, get their responses in order', async () => {
  const socket = await connect();
  socket.setNoDelay(true);
  const reader = frameReader(socket);
  const first = apiVersionsRequest(7001);
  // A pause between bytes so each leaves in its own segment and reaches tollgate as its own read.
  for (const byte of first) {
    socket.write(Buffer.from([byte]));
    await new Promise((r) => setTimeout(r, 2));
  }
  const response = await reader.next();
  assert.equal(response.readInt32BE(4), 7001, 'correlation id');
  assert.equal(response.readInt16BE(8), 0, 'ApiVersions error code NONE');

  socket.write(Buffer.concat([apiVersionsRequest(7002), apiVersionsRequest(7003)]));
  assert.equal((await reader.next()).readInt32BE(4), 7002);
  assert.equal((await reader.next()).readInt32BE(4), 7003);
  socket.destroy();
});

test('a frame held incomplete for longer than Envoy\'s message timeout (5 s) keeps the connection open', async () => {
  const socket = await connect();
  const reader = frameReader(socket);
  const frame = apiVersionsRequest(7100);
  socket.write(frame.subarray(0, 10));
  // tollgate answers each partial read with an empty reply; without it Envoy would close the connection at 5 s.
  await new Promise((r) => setTimeout(r, 6_000));
  socket.write(frame.subarray(10));
  assert.equal((await reader.next()).readInt32BE(4), 7100);
  socket.destroy();
});

test('a client half-close reaches the broker, which then closes the connection', async () => {
  const socket = await connect();
  const closed = collectUntilClose(socket, 15_000);
  socket.end();
  await closed;
});

test('a frame larger than the limit closes the connection before anything reaches the broker, and is audited', async () => {
  const socket = await connect();
  const localPort = socket.localPort;
  const closed = collectUntilClose(socket, 15_000);
  // A size prefix of 200 MiB (over the 100 MiB default) followed by the start of a header.
  socket.write(Buffer.concat([int32(200 * 1024 * 1024), Buffer.from([0, 18, 0, 0])]));
  const received = await closed;
  assert.equal(received.length, 0, 'no response bytes');
  let record;
  for (let i = 0; i < 50 && !record; i++) {
    record = stack.auditRecords().find((r) => r.event === 'kafka.frame.too_large');
    if (!record) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(record, 'an audit record kafka.frame.too_large');
  assert.equal(record.path, 'kafka');
  assert.equal(record.details?.['size'], 200 * 1024 * 1024);
  // Envoy's connection attributes name the connection in the record.
  assert.equal(record.connection?.['source.port'], localPort);
  assert.equal(typeof record.connection?.['connection.id'], 'number');
});
