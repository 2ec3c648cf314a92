/**
 * Metadata may create topics (auto.create.topics.enable): that is a create, and only a principal allowed to
 * administer a topic may cause it. Everyone else's Metadata goes to the broker with auto-creation turned off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KafkaAction } from '../../../src/core/action.ts';
import { DEFAULT_DENY, type Decision } from '../../../src/core/decision.ts';
import { authorizeRequest } from '../../../src/kafka/authorize/index.ts';
import { decodeRequest, encodeRequest } from '../../../src/kafka/protocol/messages.ts';

const METADATA = 3;

function metadata(version: number, topics: string[], allowAutoTopicCreation: boolean): Buffer {
  return encodeRequest({ apiKey: METADATA, apiVersion: version, correlationId: 7, clientId: 'c', taggedFields: [] }, {
    topics: topics.map((name) => ({ topicId: 'AAAAAAAAAAAAAAAAAAAAAA', name })),
    allowAutoTopicCreation,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  });
}

/** Writers may describe `orders.*` (implied by produce); only `orders.admin-*` may also be administered. */
function decide(action: KafkaAction): Decision {
  if (action.topic?.startsWith('orders.') !== true) return DEFAULT_DENY;
  if (action.operation === 'admin') return action.topic.startsWith('orders.admin-') ? { effect: 'allow', rule: 'creators', reason: 'ok' } : DEFAULT_DENY;
  return { effect: 'allow', rule: 'writers', reason: 'ok' };
}

const forwardedFlag = (frame: Buffer) => (decodeRequest(frame).body as { allowAutoTopicCreation: boolean }).allowAutoTopicCreation;

for (const version of [4, 12]) {
  test(`Metadata v${version} asking to auto-create a topic the principal may not create is forwarded with auto-creation off`, () => {
    const plan = authorizeRequest(metadata(version, ['orders.new'], true), decodeRequest(metadata(version, ['orders.new'], true)), decide);
    assert.equal(plan.kind, 'split');
    assert.equal(plan.kind === 'split' && forwardedFlag(plan.request), false);
    assert.ok(plan.decisions.some((d) => d.action.operation === 'admin' && d.decision.effect === 'deny'));
  });

  test(`Metadata v${version} may auto-create where the principal may administer the topic, and is then forwarded unchanged`, () => {
    const frame = metadata(version, ['orders.admin-new'], true);
    assert.equal(authorizeRequest(frame, decodeRequest(frame), decide).kind, 'forward');
  });

  test(`Metadata v${version} without auto-creation is forwarded unchanged and asks nothing about creating`, () => {
    const frame = metadata(version, ['orders.new'], false);
    const plan = authorizeRequest(frame, decodeRequest(frame), decide);
    assert.equal(plan.kind, 'forward');
    assert.ok(!plan.decisions.some((d) => d.action.operation === 'admin'));
  });
}
