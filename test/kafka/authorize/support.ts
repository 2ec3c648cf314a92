/**
 * Helpers for the authorization tests: a `decide` stub from a small rule table, request and broker-response frames
 * built with the codecs, and a sample request of any API and version (every array with one entry, every string
 * named after its field) for shape checks across versions.
 */
import type { KafkaAction, KafkaOperation } from '../../../src/core/action.ts';
import type { Decision } from '../../../src/core/decision.ts';
import type { Decide, RequestPlan } from '../../../src/kafka/authorize/index.ts';
import { defaultOf, inRange } from '../../../src/kafka/protocol/codec/schema.ts';
import type { FieldType, StructSchema } from '../../../src/kafka/protocol/codec/schema.ts';
import { API_SPECS } from '../../../src/kafka/protocol/generated/index.ts';
import type { KnownApiKey, RequestBodies, ResponseBodies } from '../../../src/kafka/protocol/generated/index.ts';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../../src/kafka/protocol/messages.ts';
import type { DecodedRequest } from '../../../src/kafka/protocol/messages.ts';

export const CORRELATION_ID = 4242;

export interface Rule {
  readonly name: string;
  readonly effect: 'allow' | 'deny';
  readonly operation?: KafkaOperation;
  readonly topic?: string;
  readonly group?: string;
  readonly transactionalId?: string;
  /** Matches actions with no resource (cluster-level). */
  readonly cluster?: true;
}

/** A `decide` over a rule table: the first rule whose given fields all equal the action's wins; else deny. */
export function decider(rules: readonly Rule[]): Decide & { readonly asked: KafkaAction[] } {
  const asked: KafkaAction[] = [];
  const decide = (action: KafkaAction): Decision => {
    asked.push(action);
    for (const rule of rules) {
      if (rule.operation !== undefined && rule.operation !== action.operation) continue;
      if (rule.topic !== undefined && rule.topic !== action.topic) continue;
      if (rule.group !== undefined && rule.group !== action.group) continue;
      if (rule.transactionalId !== undefined && rule.transactionalId !== action.transactionalId) continue;
      if (rule.cluster && (action.topic ?? action.group ?? action.transactionalId) !== undefined) continue;
      return { effect: rule.effect, rule: rule.name, reason: `${rule.effect === 'allow' ? 'allowed' : 'denied'} by rule ${rule.name}` };
    }
    return { effect: 'deny', rule: null, reason: 'no rule allows this request' };
  };
  return Object.assign(decide, { asked });
}

export const allowAll = (): Decide => decider([{ name: 'everything', effect: 'allow' }]);
export const denyAll = (): Decide => decider([{ name: 'nothing', effect: 'deny' }]);

export function requestOf<K extends KnownApiKey>(apiKey: K, apiVersion: number, body: RequestBodies[K]): { frame: Buffer; request: DecodedRequest } {
  const frame = encodeRequest({ apiKey, apiVersion, correlationId: CORRELATION_ID, clientId: 'test-client', taggedFields: [] }, body);
  return { frame, request: decodeRequest(frame) };
}

export function brokerResponse<K extends KnownApiKey>(apiKey: K, apiVersion: number, body: ResponseBodies[K]): Buffer {
  return encodeResponse({ correlationId: CORRELATION_ID, taggedFields: [] }, apiKey, apiVersion, body);
}

export function expectKind<T extends RequestPlan['kind']>(plan: RequestPlan, kind: T): Extract<RequestPlan, { kind: T }> {
  if (plan.kind !== kind) throw new Error(`expected a ${kind} plan, got ${plan.kind}${plan.kind === 'refuse' ? `: ${plan.reason}` : ''}`);
  return plan as Extract<RequestPlan, { kind: T }>;
}

/** Decodes an answer or completed response and checks its correlation id. */
export function responseBody<K extends KnownApiKey>(frame: Buffer, apiKey: K, apiVersion: number): ResponseBodies[K] {
  const decoded = decodeResponse(frame, apiKey, apiVersion);
  if (decoded.header.correlationId !== CORRELATION_ID) throw new Error(`correlation id ${decoded.header.correlationId}`);
  return decoded.body;
}

export function forwardedBody<K extends KnownApiKey>(frame: Buffer, apiKey: K): RequestBodies[K] {
  const decoded = decodeRequest(frame);
  if (decoded.header.correlationId !== CORRELATION_ID || decoded.header.apiKey !== apiKey) throw new Error('forwarded header changed');
  return decoded.body as RequestBodies[K];
}

// ---------------------------------------------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------------------------------------------

function sampleOf(type: FieldType, name: string, version: number): unknown {
  if (typeof type === 'object') {
    if (type.kind === 'array') return [sampleOf(type.element, name, version)];
    return sampleStruct(type, version);
  }
  switch (type) {
    case 'string':
      return `${name}-1`;
    case 'int64':
      return 0n;
    case 'bool':
      return false;
    case 'uuid':
      return 'AAAAAAAAAAAAAAAAAAAAAA';
    case 'bytes':
      return Buffer.from('b');
    case 'records':
      return Buffer.alloc(0);
    default:
      return 0;
  }
}

/** A struct with every field of `version` set (one entry per array, `<field>-1` per string, spec defaults for numbers). */
export function sampleStruct(struct: StructSchema, version: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of struct.fields) {
    if (field.tag !== undefined) continue;
    if (!inRange(field.versions, version)) {
      out[field.name] = defaultOf(field);
      continue;
    }
    const fallback = field.default;
    out[field.name] = typeof field.type === 'string' && typeof fallback === 'number' ? fallback : sampleOf(field.type, field.name, version);
  }
  return out;
}

export function sampleRequest(apiKey: number, version: number): unknown {
  const codecs = API_SPECS.get(apiKey)!.codecs!;
  const body = sampleStruct(codecs.requestSchema.struct, version);
  if (apiKey === 0) body['acks'] = -1;
  return body;
}

export function versionsOf(apiKey: number): number[] {
  const range = API_SPECS.get(apiKey)!.request.validVersions!;
  const versions: number[] = [];
  for (let v = range.min; v <= range.max; v++) versions.push(v);
  return versions;
}
