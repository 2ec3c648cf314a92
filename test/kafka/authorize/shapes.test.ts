/**
 * Shape checks across every version of every supported API: a sample request (every array with one entry) judged
 * by a policy that denies everything must give a response that decodes in the request's version, with the
 * request's correlation id; split plans must forward a request that decodes and complete a broker response; a
 * policy that allows everything must forward the client's frame.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authorizeRequest, KAFKA_API_POLICY } from '../../../src/kafka/authorize/index.ts';
import { defaultStruct } from '../../../src/kafka/protocol/codec/schema.ts';
import { API_SPECS } from '../../../src/kafka/protocol/generated/index.ts';
import type { KnownApiKey } from '../../../src/kafka/protocol/generated/index.ts';
import { decodeRequest, encodeRequest, encodeResponse } from '../../../src/kafka/protocol/messages.ts';
import { allowAll, CORRELATION_ID, denyAll, responseBody, sampleRequest, versionsOf } from './support.ts';

/** Requests refused whatever the policy says, by API name and version. */
const ALWAYS_REFUSED: ReadonlyMap<string, (version: number) => boolean> = new Map([['AddPartitionsToTxn', (v: number) => v >= 4]]);

function sampleFrame(apiKey: number, version: number): Buffer {
  return encodeRequest({ apiKey, apiVersion: version, correlationId: CORRELATION_ID, clientId: 'shapes', taggedFields: [] }, sampleRequest(apiKey, version));
}

function blankBrokerResponse(apiKey: number, version: number): Buffer {
  const schema = API_SPECS.get(apiKey)!.codecs!.responseSchema;
  return encodeResponse({ correlationId: CORRELATION_ID, taggedFields: [] }, apiKey, version, defaultStruct(schema.struct));
}

describe('every supported API and version', () => {
  for (const [key, policy] of KAFKA_API_POLICY) {
    const apiKey = key as KnownApiKey;
    it(`${policy.api}: denied answers decode in every version; allowed requests are forwarded`, () => {
      const refusedAlways = ALWAYS_REFUSED.get(policy.api) ?? (() => false);
      for (const version of versionsOf(apiKey)) {
        const frame = sampleFrame(apiKey, version);
        const request = decodeRequest(frame);
        const denied = authorizeRequest(frame, request, denyAll());
        const where = `${policy.api} v${version}`;
        switch (denied.kind) {
          case 'answer':
            assert.doesNotThrow(() => responseBody(denied.response, apiKey, version), where);
            assert.ok(denied.decisions.some((d) => d.decision.effect === 'deny'), `${where}: a denial is recorded`);
            break;
          case 'split':
            assert.equal(decodeRequest(denied.request).header.correlationId, CORRELATION_ID, where);
            assert.doesNotThrow(() => responseBody(denied.completeResponse(blankBrokerResponse(apiKey, version)), apiKey, version), where);
            break;
          case 'forward':
            // Only APIs that filter the broker's answer (or ask nothing) forward under a deny-all policy.
            if (denied.filterResponse !== undefined) {
              assert.doesNotThrow(() => responseBody(denied.filterResponse!(blankBrokerResponse(apiKey, version)), apiKey, version), where);
            } else {
              assert.deepEqual(denied.decisions, [], `${where}: forwarded although denied`);
            }
            break;
          case 'refuse':
            assert.ok(refusedAlways(version), `${where} refused: ${denied.reason}`);
            break;
        }
        const allowed = authorizeRequest(frame, request, allowAll());
        if (refusedAlways(version)) assert.equal(allowed.kind, 'refuse', where);
        else assert.equal(allowed.kind, 'forward', `${where}: ${allowed.kind === 'refuse' ? allowed.reason : allowed.kind}`);
      }
    });
  }
});
