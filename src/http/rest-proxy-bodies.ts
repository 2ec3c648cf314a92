/**
 * @module http/rest-proxy-bodies
 * The bodies of Kafka REST Proxy requests and responses, judged as the wire path judges the same Kafka traffic. Pure:
 * bytes in, bytes to release (or a refusal) out; the ext_proc handler (src/http/extproc.ts) moves them.
 *
 * Requests (`restRequestGate`):
 * - produced records go through their topic's `reject` rules, as a wire Produce's do. A v3 `records` body is a stream
 *   of records (src/masking/json-sequence.ts): each goes on once inspected, so a long-lived producer stream keeps
 *   streaming. A v3 `records:batch` body or a v2 body is one request whose records the proxy writes together: it is
 *   held whole, and one refused record refuses it all (nothing of it is written, as a wire Produce's partition);
 * - topics a body names (`bodyActions`: a created topic, v2 subscriptions, offsets, seeks) are decided before any byte
 *   of the body goes on; one denied topic refuses the request.
 * Bodies nothing needs to read are not gated at all (the caller streams them through).
 *
 * Responses (`restResponseMasker`): v2 consumed records are masked with their topic's `mask` rules and records of
 * topics the caller may not consume are left out; listings keep the entries the caller may describe. Both are whole
 * JSON documents: held, bounded, transformed at their end.
 */
import type { KafkaAction } from '../core/action.ts';
import type { Decision } from '../core/decision.ts';
import type { Principal } from '../core/principal.ts';
import type { NamedMaskPlan, PolicyEngine } from '../policy/engine.ts';
import { rejectReason, type InspectedRecord, type RejectPlan } from '../policy/reject.ts';
import type { MaskContext } from '../masking/strategies.ts';
import type { MaskTally } from '../masking/units.ts';
import { documentMasker, type StreamMasker } from '../masking/stream.ts';
import { JsonSequenceError, jsonSequenceSplitter } from '../masking/json-sequence.ts';
import { bodyActions, filterListing, RestProxyBodyError, type RestProxyKafkaRequest } from './rest-proxy.ts';
import { consumedRecordAction, embeddedFormat, inspectedRecords, maskConsumedRecords, produceFormat, type ProduceFormat } from './rest-proxy-records.ts';
import { describeKafkaAction, denialMessage } from './rest-proxy-policy.ts';

/** Policy bound to one principal: the questions REST Proxy bodies ask. */
export interface RestJudge {
  decide(action: KafkaAction): Decision;
  /** The `reject` rules for records produced to `topic`. */
  rejects(topic: string): readonly RejectPlan[];
  /** The `mask` rules for records read from `topic`. */
  masks(topic: string): readonly NamedMaskPlan[];
}

export function restJudge(policy: PolicyEngine, principal: Principal): RestJudge {
  return {
    decide: (action) => policy.decide(principal, action),
    rejects: (topic) => policy.rejects(principal, { kind: 'kafka', api: 'Produce', operation: 'produce', topic }),
    masks: (topic) => policy.masks(principal, consumedRecordAction(topic)),
  };
}

/** Why a body is refused: an HTTP status, a message for the client, and facts for the audit record. */
export interface RestRefusal {
  readonly status: 400 | 403 | 413 | 422;
  readonly message: string;
  readonly rule: string | null;
  /** `body_denied` (a topic it names), `record_rejected`, `body_invalid` (unreadable), `body_too_large`. */
  readonly code: 'body_denied' | 'record_rejected' | 'body_invalid' | 'body_too_large';
  /** Never record contents: positions, topics, rules. */
  readonly details: Readonly<Record<string, unknown>>;
}

/** Bytes that may go on now, and a refusal that ends the body (after `release`, which precedes what it refuses). */
export interface GateStep {
  readonly release: Buffer;
  readonly refusal?: RestRefusal;
}

export interface RestRequestGate {
  /** `stream`: records go on as each is inspected; `whole`: the body is held to its end. */
  readonly mode: 'stream' | 'whole';
  push(chunk: Buffer): GateStep;
  /** The body ended (end of stream or trailers). */
  end(): GateStep;
}

const EMPTY = Buffer.alloc(0);

/** The rule a refusal reason names (rejectReason says `rule <name>: …`), found by asking each plan alone. */
function refusingRule(record: InspectedRecord, plans: readonly RejectPlan[]): string | null {
  return plans.find((plan) => rejectReason(record, [plan]) !== undefined)?.rule ?? null;
}

/**
 * The gate a request body must pass, or undefined when nothing in it needs reading: no topic named in it, and no
 * `reject` rule for the topic it produces to. Throws RestProxyBodyError for a v2 produce whose content type names no
 * embedded format (the proxy would refuse it too).
 */
export function restRequestGate(request: RestProxyKafkaRequest, judge: RestJudge, contentType: string | undefined, maxBufferBytes: number): RestRequestGate | undefined {
  const topic = request.actions.find((a) => a.api === 'Produce')?.topic;
  const plans = request.produce !== undefined && topic !== undefined ? judge.rejects(topic) : [];
  const inspect = plans.length > 0 && request.produce !== undefined ? { format: produceFormat(request.produce, contentType), plans, topic: topic! } : undefined;
  if (inspect === undefined && request.bodyTopics === undefined) return undefined;
  if (inspect !== undefined && request.produce === 'v3-stream' && request.bodyTopics === undefined) return streamGate(inspect, maxBufferBytes);
  return wholeBodyGate(request, judge, inspect, maxBufferBytes);
}

interface Inspection {
  readonly format: ProduceFormat;
  readonly plans: readonly RejectPlan[];
  readonly topic: string;
}

/**
 * A v3 records stream: each record goes on once its reject rules let it. A refused record stops the stream there:
 * the records before it have gone on (the proxy may have written and acknowledged them), the refused one and all
 * after it never do. The request cannot be answered cleanly any more once the proxy has started its streamed answer,
 * so the caller fails it (src/http/extproc.ts): a client sees its acknowledgements up to the refused record, then the
 * stream ends in an error — never a clean end that would pass a dropped record off as sent. Dropping only the refused
 * record and going on is not an option: the proxy answers records in order, one answer each, and a client matching
 * answers to records by position would take the next record's answer for the refused one's.
 */
function streamGate(inspect: Inspection, maxBufferBytes: number): RestRequestGate {
  const splitter = jsonSequenceSplitter(maxBufferBytes);
  let passed = 0;
  let stopped = false;
  const unreadable = (err: unknown): GateStep => {
    stopped = true;
    if (!(err instanceof JsonSequenceError)) throw err;
    // The splitter throws for a record over the bound with more than the bound held.
    if (splitter.held > maxBufferBytes) return { release: EMPTY, refusal: tooLarge(maxBufferBytes, `record ${passed} of the stream`) };
    return { release: EMPTY, refusal: invalid(`record ${passed} of the stream: ${err.message}`, { record: passed }) };
  };
  return {
    mode: 'stream',
    push(chunk) {
      if (stopped) return { release: EMPTY };
      let units;
      try {
        units = splitter.push(chunk);
      } catch (err) {
        return unreadable(err);
      }
      const out: Buffer[] = [];
      for (const unit of units) {
        let record: InspectedRecord;
        try {
          record = inspectedRecords(unit.text, inspect.format)[0]!;
        } catch (err) {
          if (!(err instanceof RestProxyBodyError)) throw err;
          stopped = true;
          return { release: Buffer.concat(out), refusal: invalid(`record ${passed} of the stream: ${err.message}`, { record: passed, passedRecords: passed }) };
        }
        const reason = rejectReason(record, inspect.plans);
        if (reason !== undefined) {
          stopped = true;
          const rule = refusingRule(record, inspect.plans);
          return {
            release: Buffer.concat(out),
            refusal: {
              status: 422, code: 'record_rejected', rule,
              message: `record ${passed} of the stream to topic ${JSON.stringify(inspect.topic)} is refused, and the stream stops there (the records before it went on): ${denialMessage(reason, rule)}`,
              details: { topic: inspect.topic, record: passed, passedRecords: passed, reason },
            },
          };
        }
        out.push(unit.bytes);
        passed++;
      }
      return { release: out.length === 1 ? out[0]! : Buffer.concat(out) };
    },
    end() {
      if (stopped) return { release: EMPTY };
      try {
        return { release: splitter.end() };
      } catch (err) {
        return unreadable(err);
      }
    },
  };
}

/** A body judged as a whole: held to its end (bounded), then released whole or refused whole. */
function wholeBodyGate(request: RestProxyKafkaRequest, judge: RestJudge, inspect: Inspection | undefined, maxBufferBytes: number): RestRequestGate {
  let held: Buffer[] = [];
  let size = 0;
  let stopped = false;
  return {
    mode: 'whole',
    push(chunk) {
      if (stopped) return { release: EMPTY };
      held.push(chunk);
      size += chunk.length;
      if (size <= maxBufferBytes) return { release: EMPTY };
      stopped = true;
      held = [];
      return { release: EMPTY, refusal: tooLarge(maxBufferBytes, 'the request body') };
    },
    end() {
      if (stopped) return { release: EMPTY };
      stopped = true;
      const body = Buffer.concat(held);
      held = [];
      const refusal = judgeWholeBody(request, judge, inspect, body);
      return refusal === undefined ? { release: body } : { release: EMPTY, refusal };
    },
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function judgeWholeBody(request: RestProxyKafkaRequest, judge: RestJudge, inspect: Inspection | undefined, body: Buffer): RestRefusal | undefined {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return invalid(`${request.operation}: the request body is not UTF-8`, {});
  }
  try {
    for (const action of bodyActions(request, text)) {
      const decision = judge.decide(action);
      if (decision.effect === 'allow') continue;
      return {
        status: 403, code: 'body_denied', rule: decision.rule,
        message: denialMessage(`${describeKafkaAction(action)}, named in the request body: ${decision.reason}`, decision.rule),
        details: { action: describeKafkaAction(action), ...(action.topic !== undefined && { topic: action.topic }) },
      };
    }
    if (inspect === undefined) return undefined;
    const records = inspectedRecords(text, inspect.format);
    for (const [i, record] of records.entries()) {
      const reason = rejectReason(record, inspect.plans);
      if (reason === undefined) continue;
      const rule = refusingRule(record, inspect.plans);
      return {
        status: 422, code: 'record_rejected', rule,
        message: `record ${i} of ${records.length} to topic ${JSON.stringify(inspect.topic)} is refused, so none of them is written: ${denialMessage(reason, rule)}`,
        details: { topic: inspect.topic, record: i, records: records.length, reason },
      };
    }
    return undefined;
  } catch (err) {
    if (!(err instanceof RestProxyBodyError)) throw err;
    return invalid(err.message, {});
  }
}

function invalid(message: string, details: Record<string, unknown>): RestRefusal {
  return { status: 400, code: 'body_invalid', rule: null, message: `tollgate must read this body to judge it and cannot: ${message}`, details };
}

function tooLarge(limit: number, what: string): RestRefusal {
  return {
    status: 413, code: 'body_too_large', rule: null,
    message: `${what} exceeds ${limit} bytes, the most tollgate holds to judge it (masking.maxBufferBytes)`, details: { limit },
  };
}

/** What a judged response left out or masked, for the audit record and metrics. */
export interface RestResponseReport {
  /** `consume` (records read) or `listing`. */
  readonly kind: 'consume' | 'listing';
  /** The masking rules that applied to some record. */
  readonly rules: readonly string[];
  readonly details: Readonly<Record<string, unknown>>;
}

/** The response needs judging (a v2 records read, a listing). */
export function judgesResponse(request: RestProxyKafkaRequest): boolean {
  return request.consume === true || request.listing !== undefined;
}

/**
 * The masker for a successful response to `request` (content type `contentType`), or a message saying why tollgate
 * cannot read it (the caller refuses the response rather than pass it unjudged). `report` is called once the whole
 * response is judged. The masker throws (MaskingFailure, RestProxyBodyError) for a body that is not what the request's
 * answer must be: the caller fails the response.
 */
export function restResponseMasker(
  request: RestProxyKafkaRequest, judge: RestJudge, contentType: string | undefined, ctx: MaskContext, tally: MaskTally,
  maxBufferBytes: number, report: (report: RestResponseReport) => void,
): StreamMasker | string {
  const listing = request.listing;
  if (listing !== undefined) {
    return documentMasker((text) => {
      const hidden: string[] = [];
      const out = filterListing(text, listing, (action) => {
        if (judge.decide(action).effect === 'allow') return true;
        hidden.push(action.topic ?? action.group ?? '');
        return false;
      });
      report({ kind: 'listing', rules: [], details: { hidden } });
      return out;
    }, maxBufferBytes);
  }
  const format = embeddedFormat(contentType);
  if (format === undefined) {
    return `the proxy answered records as ${JSON.stringify(contentType ?? '')}; tollgate reads only application/vnd.kafka[.<binary|json|avro|jsonschema|protobuf>].v2+json`;
  }
  return documentMasker((text) => {
    const rules = new Set<string>();
    const result = maskConsumedRecords(text, format, (topic) => {
      const plans = judge.masks(topic);
      for (const plan of plans) rules.add(plan.rule);
      return plans;
    }, ctx, tally, (topic) => judge.decide(consumedRecordAction(topic)).effect === 'allow');
    report({
      kind: 'consume', rules: [...rules],
      details: { maskedRecords: result.maskedRecords, droppedRecords: result.droppedRecords, droppedTopics: result.droppedTopics },
    });
    return result.text;
  }, maxBufferBytes);
}
