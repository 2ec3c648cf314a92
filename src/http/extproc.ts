/**
 * @module http/extproc
 * The HTTP ext_proc `Process` handler. It learns who is asking (ext_authz's dynamic metadata, forwarded by Envoy)
 * and what (method, authority, path), asks policy which masking rules apply, and masks the response body on whole
 * units (a JSON document, an NDJSON line, an SSE event) whatever the chunking. With no rule applying, every message
 * is answered unchanged.
 *
 * Bodies sent FULL_DUPLEX_STREAMED must be re-emitted as `streamed_response`: Envoy forwards only what the processor
 * sends, so held bytes are simply not sent yet, and a masked unit goes out in place of the original.
 *
 * Request bodies are read only when a deny rule with body conditions could still refuse the request (policy's
 * `bodyRules`): the body is held whole (bounded by masking.maxBufferBytes), parsed, checked, then released or
 * answered with a 403. Every other request body streams through untouched.
 *
 * Kafka REST Proxy requests (config `http.kafkaRest`) are judged as Kafka traffic instead (src/http/rest-proxy-bodies.ts):
 * produced records by their topic's `reject` rules, topics named in bodies by the access rules, consumed records by
 * their topic's `mask` rules (records of topics the caller may not consume left out), listings entry by entry. What
 * must be judged and cannot be (bodies Envoy does not stream to tollgate, an encoded or unreadable answer) is refused.
 */
import type { Logger } from 'pino';
import type { Principal } from '../core/principal.ts';
import type { AuditPath, AuditSink } from '../audit/record.ts';
import type { BodyRule, NamedMaskPlan, PolicyEngine } from '../policy/engine.ts';
import { PLAIN_HTTP, type HttpClassifier, type HttpRequestAction } from './action.ts';
import type { RestProxyKafkaRequest } from './rest-proxy.ts';
import { RestProxyBodyError } from './rest-proxy.ts';
import { judgesResponse, restJudge, restRequestGate, restResponseMasker, type GateStep, type RestJudge, type RestRefusal, type RestRequestGate } from './rest-proxy-bodies.ts';
import { restAuditDetails, restProxyError } from './rest-proxy-policy.ts';
import { forbidden, kubeStatus, type StatusReason } from './kube-status.ts';
import { parseRequestBody } from './request-body.ts';
import type { MaskContext } from '../masking/strategies.ts';
import type { StreamMasker } from '../masking/stream.ts';
import { bodyFormat, responseMasker, type MaskTally } from './response-masking.ts';

type BodyMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED' | 'GRPC';

interface HttpBodyLike { body?: Buffer; end_of_stream?: boolean }
interface HttpHeadersLike { headers?: { headers?: HeaderLike[] } | null; end_of_stream?: boolean }
interface HeaderLike { key: string; value?: string; raw_value?: Buffer }
interface StructValueLike { stringValue?: string; listValue?: { values?: StructValueLike[] } | null }
interface StructLike { fields?: Record<string, StructValueLike> }

/** The parts of envoy.service.ext_proc.v3.ProcessingRequest this handler reads (proto-loader, keepCase, oneofs). */
export interface ExtProcRequestLike {
  request?: 'request_headers' | 'response_headers' | 'request_body' | 'response_body' | 'request_trailers' | 'response_trailers';
  request_headers?: HttpHeadersLike | null;
  response_headers?: HttpHeadersLike | null;
  request_body?: HttpBodyLike | null;
  response_body?: HttpBodyLike | null;
  protocol_config?: { request_body_mode?: BodyMode; response_body_mode?: BodyMode } | null;
  metadata_context?: { filter_metadata?: Record<string, StructLike> } | null;
}

export type ExtProcResponseLike = Record<string, unknown>;

/** The slice of a grpc-js ServerDuplexStream this handler uses, so tests can drive it with a plain emitter. */
export interface DuplexCall<Req, Res> {
  on(event: 'data', listener: (msg: Req) => void): unknown;
  on(event: 'end' | 'cancelled', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  write(msg: Res): unknown;
  end(): void;
  /** Ends the call with an error status: Envoy then resets the client's stream (fail closed). */
  destroy(err?: Error): unknown;
}

export interface ExtProcDeps {
  readonly logger: Logger;
  readonly policy: () => PolicyEngine;
  readonly maskContext: () => MaskContext;
  readonly maxBufferBytes: number;
  /** Turns a request into the action policy sees; default: plain HTTP (no Kubernetes hosts). */
  readonly classify?: () => HttpClassifier;
  /** Where body denials and shadow body matches are recorded. */
  readonly audit?: AuditSink;
  readonly hooks?: {
    onStream?(): void;
    onMessage?(kind: string): void;
    onMasked?(rules: readonly string[], tally: Readonly<MaskTally>): void;
  };
}

export const AUTHZ_NAMESPACE = 'envoy.filters.http.ext_authz';
export const MASKED_HEADER = 'x-tollgate-masked';

/** Content types a masker can read as text; anything else (protobuf, CBOR, images) is opaque to masking. */
function readableAsText(contentType: string | undefined): boolean {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return ct === '' || ct.startsWith('text/') || ct === 'application/json' || ct.endsWith('+json') || ct === 'application/x-ndjson'
    || ct === 'application/jsonl' || ct === 'application/ndjson' || ct.endsWith('+yaml') || ct === 'application/yaml' || ct === 'application/xml';
}

/** Kubernetes clients ask for protobuf or CBOR (client-go) or server-side Tables (kubectl get): masking needs plain JSON. */
function needsJsonNegotiation(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  const a = accept.toLowerCase();
  return a.includes('protobuf') || a.includes('cbor') || a.includes('as=table') || a.includes('as=partialobjectmetadata');
}

function immediate(status: number, body: object, details: string): ExtProcResponseLike {
  return {
    immediate_response: {
      status: { code: status },
      headers: { set_headers: [{ header: { key: 'content-type', raw_value: Buffer.from('application/json') } }] },
      body: Buffer.from(JSON.stringify(body)),
      details,
    },
  };
}

function headerMap(headers: readonly HeaderLike[] | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const h of headers ?? []) {
    const value = h.raw_value && h.raw_value.length > 0 ? h.raw_value.toString('utf8') : (h.value ?? '');
    map.set(h.key.toLowerCase(), value);
  }
  return map;
}

/** The principal ext_authz stored as dynamic metadata (see http/authz.ts), if it did. */
export function principalFromMetadata(metadata: ExtProcRequestLike['metadata_context']): Principal | undefined {
  const fields = metadata?.filter_metadata?.[AUTHZ_NAMESPACE]?.fields;
  const subject = fields?.['subject']?.stringValue;
  if (!fields || !subject) return undefined;
  const groups = (fields['groups']?.listValue?.values ?? []).map((v) => v.stringValue ?? '').filter((g) => g !== '');
  const method = fields['authenticated_by']?.stringValue;
  return {
    subject, groups, issuer: fields['issuer']?.stringValue ?? '',
    authenticatedBy: method === 'kubernetes' || method === 'mtls' || method === 'api-key' ? method : 'oidc',
  };
}

function passthroughBody(field: 'request_body' | 'response_body', body: HttpBodyLike | null | undefined, mode: BodyMode): ExtProcResponseLike {
  if (mode !== 'FULL_DUPLEX_STREAMED') return { [field]: { response: {} } };
  return streamed(field, body?.body ?? Buffer.alloc(0), body?.end_of_stream ?? false);
}

function streamed(field: 'request_body' | 'response_body', body: Buffer, endOfStream: boolean): ExtProcResponseLike {
  return { [field]: { response: { body_mutation: { streamed_response: { body, end_of_stream: endOfStream } } } } };
}

export function createExtProcHandler(deps: ExtProcDeps): (call: DuplexCall<ExtProcRequestLike, ExtProcResponseLike>) => void {
  const { logger, hooks } = deps;
  return (call) => {
    hooks?.onStream?.();
    // Envoy names the body modes only in the first message of a stream; later messages leave protocol_config empty.
    let requestMode: BodyMode = 'NONE';
    let responseMode: BodyMode = 'NONE';
    let plans: readonly NamedMaskPlan[] = [];
    let masker: StreamMasker | undefined;
    const tally: MaskTally = {};
    let ended = false;
    // The request as policy saw it, kept for denials and audit records of its body.
    let principal: Principal | undefined;
    let action: HttpRequestAction | undefined;
    let requestContentType: string | undefined;
    /** Envoy's x-request-id: the session of this request's audit records, shared with ext_authz's. */
    let session: { session: string } | undefined;
    let bodyRules: readonly BodyRule[] = [];
    let held: Buffer[] = [];
    let heldBytes = 0;
    /** A Kafka REST Proxy request: its Kafka request, the principal's policy, and the gate its body passes. */
    let rest: { request: RestProxyKafkaRequest; judge: RestJudge; gate?: RestRequestGate } | undefined;
    /** The masking rules that applied to the response, for the metrics hook at its end. */
    let maskedRules: readonly string[] = [];
    const finish = () => {
      if (ended) return;
      ended = true;
      call.end();
    };
    const fail = (reason: string) => {
      logger.warn({ reason }, 'ext_proc: cannot mask the response; resetting it rather than sending unmasked bytes');
      ended = true;
      call.destroy(Object.assign(new Error(reason), { code: 13, details: reason }));
    };
    const auditPath = (): AuditPath => (action?.kafkaRest !== undefined ? 'kafka' : action?.kubernetes !== undefined ? 'kubernetes' : 'http');

    /**
     * A refusal in the caller's protocol: a Kubernetes Status for API-server requests, the proxy's error object for
     * Kafka REST Proxy requests, tollgate's JSON otherwise.
     */
    const refuse = (status: number, reason: StatusReason, message: string, rule: string | null, details: string): ExtProcResponseLike => {
      if (action?.kafkaRest !== undefined) return immediate(status, restProxyError(status, message), details);
      const k = action?.kubernetes;
      if (k !== undefined) {
        const body = status === 403 && principal !== undefined ? forbidden(k, principal.subject, message) : kubeStatus(status, reason, message);
        return immediate(status, body, details);
      }
      const error = status === 403 ? 'forbidden' : status === 413 ? 'body_too_large' : 'masking_unavailable';
      return immediate(status, { error, reason: message, rule }, details);
    };

    const onRequestHeaders = (msg: ExtProcRequestLike): ExtProcResponseLike => {
      const headers = headerMap(msg.request_headers?.headers?.headers);
      principal = principalFromMetadata(msg.metadata_context);
      action = (deps.classify?.() ?? PLAIN_HTTP)(headers.get(':method') ?? 'GET', headers.get(':authority') ?? '', headers.get(':path') ?? '/', Object.fromEntries(headers));
      requestContentType = headers.get('content-type');
      const requestId = headers.get('x-request-id');
      session = requestId === undefined ? undefined : { session: requestId };
      if (action.kafkaRest !== undefined) return onRestRequestHeaders(msg);
      const policy = deps.policy();
      plans = principal ? policy.masks(principal, action) : [];
      const hasBody = msg.request_headers?.end_of_stream !== true;
      bodyRules = principal && hasBody ? policy.bodyRules(principal, action) : [];
      if (bodyRules.length > 0 && requestMode !== 'FULL_DUPLEX_STREAMED') {
        // Fail closed: a rule must read this body and Envoy will not show it to tollgate.
        const rules = bodyRules.map((r) => r.rule).join(', ');
        logger.warn({ path: action.path, rules }, 'ext_proc: body rules apply but request bodies are not streamed to tollgate; configure request_body_mode FULL_DUPLEX_STREAMED');
        return refuse(403, 'Forbidden', `the request body must be inspected by rule ${rules} and Envoy does not send it to tollgate`, bodyRules[0]!.rule, 'tollgate_body_not_inspectable');
      }
      if (plans.length === 0 || responseMode !== 'FULL_DUPLEX_STREAMED') {
        if (plans.length > 0) logger.warn({ path: action.path }, 'ext_proc: masking rules apply but response bodies are not streamed to tollgate; configure response_body_mode FULL_DUPLEX_STREAMED');
        plans = [];
        return { request_headers: { response: {} } };
      }
      // Masking reads bodies as text: ask the upstream for an unencoded body, and a Kubernetes API server for JSON
      // rather than protobuf or a server-side Table (whose cells a field rule cannot address).
      const mutation: Record<string, unknown> = { remove_headers: ['accept-encoding'] };
      if (action.kubernetes !== undefined && needsJsonNegotiation(headers.get('accept'))) {
        mutation['set_headers'] = [{ header: { key: 'accept', raw_value: Buffer.from('application/json') }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }];
      }
      return { request_headers: { response: { header_mutation: mutation } } };
    };

    /** The held request body against the pending body rules: released whole, or refused. */
    const checkRequestBody = (endOfStream: boolean): ExtProcResponseLike => {
      const body = Buffer.concat(held);
      held = [];
      const rules = bodyRules;
      bodyRules = [];
      const parsed = parseRequestBody(requestContentType, body);
      const base = { time: new Date().toISOString(), path: auditPath(), ...session, ...(principal ? { principal } : {}) };
      const details = { method: action?.method, host: action?.host, path: action?.path, bytes: body.length, ...(action?.kubernetes ? { kubernetes: action.kubernetes } : {}) };
      const shadow: Array<{ rule: string; field: string }> = [];
      for (const rule of rules) {
        if (!parsed.ok) {
          if (rule.shadow) continue;
          deps.audit?.write({ ...base, event: `${base.path}.body.deny`, rule: rule.rule, reason: parsed.reason, details });
          return refuse(403, 'Forbidden', `${rule.reason}: tollgate must read the request body and ${parsed.reason} (tollgate rule ${rule.rule})`, rule.rule, 'tollgate_body_unreadable');
        }
        const field = rule.match(parsed.doc);
        if (field === undefined) continue;
        if (rule.shadow) {
          shadow.push({ rule: rule.rule, field });
          continue;
        }
        deps.audit?.write({ ...base, event: `${base.path}.body.deny`, rule: rule.rule, reason: rule.reason, details: { ...details, field, ...(shadow.length > 0 ? { shadow } : {}) } });
        return refuse(403, 'Forbidden', `${rule.reason}: field ${field} (tollgate rule ${rule.rule})`, rule.rule, 'tollgate_body_denied');
      }
      if (shadow.length > 0) deps.audit?.write({ ...base, event: `${base.path}.body.shadow`, reason: 'shadow rules would have refused this body', details: { ...details, shadow } });
      return streamed('request_body', body, endOfStream);
    };

    const onRequestBody = (body: HttpBodyLike | null | undefined): ExtProcResponseLike => {
      if (bodyRules.length === 0) return passthroughBody('request_body', body, requestMode);
      const bytes = body?.body ?? Buffer.alloc(0);
      held.push(bytes);
      heldBytes += bytes.length;
      if (heldBytes > deps.maxBufferBytes) {
        const rule = bodyRules[0]!.rule;
        bodyRules = [];
        held = [];
        return refuse(413, 'RequestEntityTooLarge', `the request body exceeds ${deps.maxBufferBytes} bytes, the most tollgate holds to inspect it for rule ${rule}`, rule, 'tollgate_body_too_large');
      }
      if (body?.end_of_stream) return checkRequestBody(true);
      return streamed('request_body', Buffer.alloc(0), false);
    };

    const restAudit = (event: string, extra: { rule?: string | null; reason?: string; details?: Record<string, unknown> }) => {
      deps.audit?.write({
        time: new Date().toISOString(), path: 'kafka', event: `kafka.rest.${event}`, ...session, ...(principal ? { principal } : {}),
        ...(extra.rule != null && { rule: extra.rule }), ...(extra.reason !== undefined && { reason: extra.reason }),
        details: { method: action?.method, host: action?.host, path: action?.path, ...(action?.kafkaRest ? { kafkaRest: restAuditDetails(action.kafkaRest) } : {}), ...extra.details },
      });
    };

    /**
     * A Kafka REST Proxy request: what its body and its answer need, set up from its headers. ext_authz has judged the
     * actions it asks up front; an unknown request or one without a principal is refused again here (fail closed:
     * nothing of it could be judged).
     */
    const onRestRequestHeaders = (msg: ExtProcRequestLike): ExtProcResponseLike => {
      const request = action!.kafkaRest!;
      if (request.kind === 'unknown') return refuse(403, 'Forbidden', `not a Kafka REST Proxy request tollgate knows: ${request.reason}`, null, 'tollgate_rest_unknown');
      if (principal === undefined) return refuse(403, 'Forbidden', 'no principal from ext_authz: a Kafka REST Proxy request cannot be judged', null, 'tollgate_rest_no_principal');
      const judge = restJudge(deps.policy(), principal);
      let gate: RestRequestGate | undefined;
      try {
        gate = msg.request_headers?.end_of_stream === true ? undefined : restRequestGate(request, judge, requestContentType, deps.maxBufferBytes);
      } catch (err) {
        if (!(err instanceof RestProxyBodyError)) throw err;
        return refuse(400, 'BadRequest', err.message, null, 'tollgate_rest_body_invalid');
      }
      rest = gate === undefined ? { request, judge } : { request, judge, gate };
      if (gate !== undefined && requestMode !== 'FULL_DUPLEX_STREAMED') {
        logger.warn({ path: action!.path }, 'ext_proc: a Kafka REST Proxy body must be judged but request bodies are not streamed to tollgate; configure request_body_mode FULL_DUPLEX_STREAMED');
        return refuse(403, 'Forbidden', `the body of ${request.operation} must be judged and Envoy does not send it to tollgate`, null, 'tollgate_body_not_inspectable');
      }
      if (!judgesResponse(request)) return { request_headers: { response: {} } };
      if (responseMode !== 'FULL_DUPLEX_STREAMED') {
        logger.warn({ path: action!.path }, 'ext_proc: a Kafka REST Proxy answer must be judged but response bodies are not streamed to tollgate; configure response_body_mode FULL_DUPLEX_STREAMED');
        return refuse(403, 'Forbidden', `the answer to ${request.operation} must be judged and Envoy does not send it to tollgate`, null, 'tollgate_response_not_inspectable');
      }
      // The answer is read as text: ask for it unencoded.
      return { request_headers: { response: { header_mutation: { remove_headers: ['accept-encoding'] } } } };
    };

    /** One step of a gated REST Proxy body: what passed goes on, then a refusal ends the request. */
    const restBodySteps = (step: GateStep, endOfStream: boolean): ExtProcResponseLike[] => {
      const out: ExtProcResponseLike[] = [];
      const refusal = step.refusal;
      if (step.release.length > 0 || (endOfStream && refusal === undefined)) out.push(streamed('request_body', step.release, endOfStream && refusal === undefined));
      if (refusal !== undefined) out.push(restRefusal(refusal));
      else if (out.length === 0) out.push(streamed('request_body', Buffer.alloc(0), false));
      return out;
    };

    const restRefusal = (refusal: RestRefusal): ExtProcResponseLike => {
      const event = refusal.code === 'record_rejected' ? 'produce.rejected' : refusal.code === 'body_denied' ? 'body.deny' : `body.${refusal.code.slice('body_'.length)}`;
      restAudit(event, { rule: refusal.rule, reason: refusal.message, details: { ...refusal.details } });
      const reason: StatusReason = refusal.status === 403 ? 'Forbidden' : refusal.status === 413 ? 'RequestEntityTooLarge' : 'BadRequest';
      return refuse(refusal.status, reason, refusal.message, refusal.rule, `tollgate_rest_${refusal.code}`);
    };

    const onRestRequestBody = (gate: RestRequestGate, body: HttpBodyLike | null | undefined): ExtProcResponseLike[] => {
      const step = gate.push(body?.body ?? Buffer.alloc(0));
      if (step.refusal !== undefined || body?.end_of_stream !== true) return restBodySteps(step, false);
      const last = gate.end();
      return restBodySteps({ release: Buffer.concat([step.release, last.release]), ...(last.refusal !== undefined && { refusal: last.refusal }) }, true);
    };

    /** The answer to a REST Proxy request that needs judging: a successful one is masked or filtered whole. */
    const onRestResponseHeaders = (msg: ExtProcRequestLike, request: RestProxyKafkaRequest, judge: RestJudge): ExtProcResponseLike => {
      const headers = headerMap(msg.response_headers?.headers?.headers);
      const status = Number(headers.get(':status') ?? '0');
      // Errors carry no records and no listing: they pass as the proxy wrote them.
      if (!judgesResponse(request) || status < 200 || status > 299) return { response_headers: { response: {} } };
      const encoding = headers.get('content-encoding');
      if (encoding !== undefined && encoding !== '' && encoding.toLowerCase() !== 'identity') {
        return refuse(502, 'InternalError', `the proxy answered ${request.operation} with content-encoding ${encoding}; tollgate judges only unencoded answers`, null, 'tollgate_rest_encoded_answer');
      }
      const made = restResponseMasker(request, judge, headers.get('content-type'), deps.maskContext(), tally, deps.maxBufferBytes, (report) => {
        maskedRules = report.rules;
        restAudit(report.kind === 'consume' ? 'consume' : 'listing', { details: { ...report.details, ...(report.rules.length > 0 && { rules: report.rules, masked: { ...tally } }) } });
      });
      if (typeof made === 'string') return refuse(502, 'InternalError', made, null, 'tollgate_rest_unreadable_answer');
      masker = made;
      return { response_headers: { response: { header_mutation: { remove_headers: ['content-length'] } } } };
    };

    const onResponseHeaders = (msg: ExtProcRequestLike): ExtProcResponseLike => {
      if (rest !== undefined) return onRestResponseHeaders(msg, rest.request, rest.judge);
      if (plans.length === 0) return { response_headers: { response: {} } };
      const headers = headerMap(msg.response_headers?.headers?.headers);
      const encoding = headers.get('content-encoding');
      const contentType = headers.get('content-type');
      const rules = plans.map((p) => p.rule);
      if (encoding !== undefined && encoding !== '' && encoding.toLowerCase() !== 'identity') {
        plans = [];
        return refuse(502, 'InternalError', `the upstream answered with content-encoding ${encoding}; tollgate masks only unencoded bodies (rule ${rules[0]})`, rules[0]!, 'tollgate_masking_encoded_body');
      }
      if (!readableAsText(contentType) && plans.some((p) => p.onUndecodable !== 'pass')) {
        plans = [];
        return refuse(502, 'InternalError', `the upstream answered with content type ${contentType}, which tollgate cannot read to mask (rule ${rules[0]})`, rules[0]!, 'tollgate_masking_opaque_body');
      }
      // A Kubernetes watch is a stream of JSON objects whatever its content type says (`application/json` when the
      // client asked for JSON): masked object by object, never held to the end of a stream that does not end.
      const format = bodyFormat(contentType);
      const watching = action?.kubernetes?.verb === 'watch' && (format === 'json' || format === 'ndjson');
      masker = responseMasker(watching ? 'json-sequence' : format, plans, deps.maskContext(), deps.maxBufferBytes, tally);
      maskedRules = rules;
      return {
        response_headers: {
          response: {
            header_mutation: {
              remove_headers: ['content-length'],
              set_headers: [{ header: { key: MASKED_HEADER, raw_value: Buffer.from(rules.join(',')) }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
            },
          },
        },
      };
    };

    const onResponseBody = (body: HttpBodyLike | null | undefined): ExtProcResponseLike => {
      if (!masker) return passthroughBody('response_body', body, responseMode);
      const eos = body?.end_of_stream ?? false;
      let out = masker.push(body?.body ?? Buffer.alloc(0));
      if (eos) {
        out = Buffer.concat([out, masker.end()]);
        hooks?.onMasked?.(maskedRules, tally);
      }
      return streamed('response_body', out, eos);
    };

    call.on('data', (msg) => {
      if (ended) return;
      if (msg.protocol_config) {
        requestMode = msg.protocol_config.request_body_mode ?? requestMode;
        responseMode = msg.protocol_config.response_body_mode ?? responseMode;
      }
      const kind = msg.request;
      hooks?.onMessage?.(kind ?? 'unknown');
      try {
        switch (kind) {
          case 'request_headers': {
            const out = onRequestHeaders(msg);
            call.write(out);
            if ('immediate_response' in out) finish();
            break;
          }
          case 'response_headers': call.write(onResponseHeaders(msg)); break;
          case 'request_body': {
            const gate = rest?.gate;
            for (const out of gate !== undefined ? onRestRequestBody(gate, msg.request_body) : [onRequestBody(msg.request_body)]) {
              call.write(out);
              if ('immediate_response' in out) { finish(); break; }
            }
            break;
          }
          case 'response_body': call.write(onResponseBody(msg.response_body)); break;
          case 'request_trailers':
            // Trailers end the body: check and release what is held before answering them.
            if (rest?.gate !== undefined) {
              const outs = restBodySteps(rest.gate.end(), false);
              for (const out of outs) call.write(out);
              if (outs.some((out) => 'immediate_response' in out)) { finish(); break; }
            } else if (bodyRules.length > 0) {
              const out = checkRequestBody(false);
              call.write(out);
              if ('immediate_response' in out) { finish(); break; }
            }
            call.write({ request_trailers: {} });
            break;
          case 'response_trailers':
            // Trailers end the body: release what is still held, masked, before answering them.
            if (masker) call.write(streamed('response_body', masker.end(), false));
            call.write({ response_trailers: {} });
            break;
          default:
            logger.warn({ kind }, 'ext_proc: message of an unknown kind; leaving the stream');
            finish();
        }
      } catch (err) {
        fail((err as Error).message);
      }
    });
    // With envoy.reloadable_features.ext_proc_graceful_grpc_close Envoy half-closes; ending our side keeps the
    // shared HTTP/2 connection free of resets (Node drops a connection after ~1,000 of them).
    call.on('end', finish);
    call.on('cancelled', () => { ended = true; });
    call.on('error', (err) => {
      ended = true;
      logger.debug({ err: err.message }, 'ext_proc stream error');
    });
  };
}
