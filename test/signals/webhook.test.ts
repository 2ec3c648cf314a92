/**
 * The alert webhook against a real local HTTP server: records arrive as JSON in order, a failing endpoint is
 * counted and skipped, a full queue drops its oldest record, and nothing ever waits on the endpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAlertWebhook } from '../../src/signals/webhook.ts';

async function receiver(status = 200) {
  const bodies: unknown[] = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => { text += chunk.toString('utf8'); });
    req.on('end', () => {
      bodies.push({ contentType: req.headers['content-type'], body: JSON.parse(text) });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
  return { url, bodies, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('records are POSTed as JSON, in order, one at a time', async () => {
  const r = await receiver();
  const results: string[] = [];
  const webhook = createAlertWebhook({ url: r.url, timeoutMs: 2000, maxQueue: 10, onResult: (result) => results.push(result) });
  webhook.send({ event: 'kafka.signal.breach', n: 1 });
  webhook.send({ event: 'kafka.signal.escalation', n: 2 });
  assert.ok(webhook.pending > 0, 'sending does not wait');
  await webhook.idle();
  assert.deepEqual(r.bodies, [
    { contentType: 'application/json', body: { event: 'kafka.signal.breach', n: 1 } },
    { contentType: 'application/json', body: { event: 'kafka.signal.escalation', n: 2 } },
  ]);
  assert.deepEqual(results, ['sent', 'sent']);
  await r.close();
});

test('a failing endpoint is reported per record; an unreachable one too; the queue keeps going', async () => {
  const r = await receiver(500);
  const results: Array<[string, string | undefined]> = [];
  const webhook = createAlertWebhook({ url: r.url, timeoutMs: 2000, maxQueue: 10, onResult: (result, detail) => results.push([result, detail]) });
  webhook.send({ n: 1 });
  await webhook.idle();
  await r.close();
  webhook.send({ n: 2 });
  await webhook.idle();
  assert.deepEqual(results[0], ['failed', 'HTTP 500']);
  assert.equal(results[1]?.[0], 'failed');
});

test('beyond maxQueue the oldest waiting record is dropped and counted', async () => {
  const r = await receiver();
  const results: string[] = [];
  const webhook = createAlertWebhook({ url: r.url, timeoutMs: 2000, maxQueue: 2, onResult: (result) => results.push(result) });
  for (let n = 1; n <= 5; n++) webhook.send({ n });
  await webhook.idle();
  // The first is in flight at once; 2..5 queue behind it in a queue of 2: 2 and 3 are dropped.
  assert.deepEqual(r.bodies.map((b) => (b as { body: { n: number } }).body.n), [1, 4, 5]);
  assert.deepEqual(results.filter((x) => x === 'dropped').length, 2);
  await r.close();
});
