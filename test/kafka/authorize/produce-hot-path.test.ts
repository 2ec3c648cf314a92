/**
 * The Produce hot path (readProduceRequest + allowedProduce) against the full path (decodeRequest + authorizeRequest):
 * the same decisions, each question asked of the policy once, the same audit summary.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KafkaAction } from '../../../src/core/action.ts';
import type { Decision } from '../../../src/core/decision.ts';
import { allowedProduce, authorizeRequest, replayDecisions, type ResourceDecision } from '../../../src/kafka/authorize/index.ts';
import { API_KEY } from '../../../src/kafka/protocol/api-keys.ts';
import { decodeRequest, readProduceRequest } from '../../../src/kafka/protocol/messages.ts';
import { summarizeProduceRequest, summarizeRequest } from '../../../src/kafka/summary.ts';
import { request } from '../requests.ts';

const batch = Buffer.alloc(70);
batch.writeInt32BE(58, 8); // batchLength: the 61-byte header + 9 bytes of records
batch.writeInt8(2, 16); // magic
batch.writeInt32BE(3, 57); // recordsCount

function produceFrame(version: number, transactionalId: string | null, topics: string[]): Buffer {
  return request(API_KEY.Produce, version, 7, {
    transactionalId, acks: -1, timeoutMs: 1000,
    topicData: topics.map((name) => ({ name, partitionData: [{ index: 0, records: batch }, { index: 1, records: null }] })),
  });
}

function policy(denied: ReadonlySet<string>): { decide: (action: KafkaAction) => Decision; asked: KafkaAction[] } {
  const asked: KafkaAction[] = [];
  return {
    asked,
    decide: (action) => {
      asked.push(action);
      const name = action.topic ?? action.transactionalId ?? '';
      return denied.has(name) ? { effect: 'deny', rule: null, reason: `no ${name}` } : { effect: 'allow', rule: 'r', reason: 'ok' };
    },
  };
}

/** Hot path first; on a denial the full path with the hot path's answers replayed (as the connection does). */
function judge(frame: Buffer, denied: ReadonlySet<string>): { decisions: readonly ResourceDecision[]; kind: string; asked: KafkaAction[] } {
  const { decide, asked } = policy(denied);
  const decoded = decodeRequest(frame);
  const judged: ResourceDecision[] = [];
  const fast = allowedProduce(frame, decoded.header, readProduceRequest(frame), (action) => {
    const decision = decide(action);
    judged.push({ action, decision });
    return decision;
  });
  if (fast !== undefined) return { decisions: fast, kind: 'forward', asked };
  const plan = authorizeRequest(frame, decoded, replayDecisions(judged, decide));
  return { decisions: plan.decisions, kind: plan.kind, asked };
}

const cases: Record<string, { version: number; transactionalId: string | null; topics: string[]; denied: string[] }> = {
  'every topic allowed, v12': { version: 12, transactionalId: null, topics: ['a', 'b', 'a'], denied: [] },
  'transactional, allowed, v3 (not flexible)': { version: 3, transactionalId: 'tx-1', topics: ['a'], denied: [] },
  'one topic denied (split)': { version: 9, transactionalId: null, topics: ['a', 'b', 'c'], denied: ['b'] },
  'every topic denied (answered)': { version: 9, transactionalId: null, topics: ['b'], denied: ['b'] },
  'transactional id denied': { version: 12, transactionalId: 'tx-1', topics: ['a', 'b'], denied: ['tx-1'] },
};

for (const [name, c] of Object.entries(cases)) {
  test(`produce hot path gives the full path's plan kind and decisions, asking each question once: ${name}`, () => {
    // Given
    const frame = produceFrame(c.version, c.transactionalId, c.topics);
    const denied = new Set(c.denied);
    // When
    const hot = judge(frame, denied);
    const full = (() => {
      const { decide } = policy(denied);
      return authorizeRequest(frame, decodeRequest(frame), decide);
    })();
    // Then
    assert.equal(hot.kind, full.kind);
    assert.deepEqual(hot.decisions, full.decisions);
    assert.deepEqual(hot.asked, full.decisions.map((d) => d.action), 'each question asked of the policy once, in order');
  });
}

test('the Produce hot-path reading summarizes like the decoded request', () => {
  for (const version of [3, 8, 9, 12]) {
    const frame = produceFrame(version, version === 3 ? null : 'tx-9', ['orders', 'payments']);
    assert.deepEqual(summarizeProduceRequest(readProduceRequest(frame)), summarizeRequest(frame));
  }
});

test('readProduceRequest refuses trailing bytes and truncation like the decoder', () => {
  const frame = produceFrame(9, null, ['orders']);
  const longer = Buffer.concat([frame, Buffer.from([0])]);
  longer.writeInt32BE(longer.length - 4, 0);
  assert.throws(() => readProduceRequest(longer), { code: 'body_invalid' });
  const shorter = frame.subarray(0, frame.length - 3);
  shorter.writeInt32BE(shorter.length - 4, 0);
  assert.throws(() => readProduceRequest(Buffer.from(shorter)), /truncated|invalid/);
});
