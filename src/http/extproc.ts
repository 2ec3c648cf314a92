/**
 * @module http/extproc
 * The HTTP ext_proc `Process` handler. It learns who is asking (ext_authz's dynamic metadata, forwarded by Envoy)
 * and what (method, authority, path), asks policy which masking rules apply, and masks the response body on whole
 * units (a JSON document, an NDJSON line, an SSE event) whatever the chunking. With no rule applying, every message
 * is answered unchanged.
 *
 * Bodies sent FULL_DUPLEX_STREAMED must be re-emitted as `streamed_response`: Envoy forwards only what the processor
 * sends, so held bytes are simply not sent yet, and a masked unit goes out in place of the original.
 */
import type { Logger } from 'pino';
import type { HttpAction } from '../core/action.ts';
import type { Principal } from '../core/principal.ts';
import type { NamedMaskPlan, PolicyEngine } from '../policy/engine.ts';
import type { MaskContext } from '../masking/strategies.ts';
import type { StreamMasker } from '../masking/stream.ts';
import { bodyFormat, responseMasker, type MaskTally } from './response-masking.ts';

type BodyMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED' | 'GRPC';

interface HttpBodyLike { body?: Buffer; end_of_stream?: boolean }
interface HeaderLike { key: string; value?: string; raw_value?: Buffer }
interface StructValueLike { stringValue?: string; listValue?: { values?: StructValueLike[] } | null }
interface StructLike { fields?: Record<string, StructValueLike> }

/** The parts of envoy.service.ext_proc.v3.ProcessingRequest this handler reads (proto-loader, keepCase, oneofs). */
export interface ExtProcRequestLike {
  request?: 'request_headers' | 'response_headers' | 'request_body' | 'response_body' | 'request_trailers' | 'response_trailers';
  request_headers?: { headers?: { headers?: HeaderLike[] } | null } | null;
  response_headers?: { headers?: { headers?: HeaderLike[] } | null } | null;
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
  readonly hooks?: {
    onStream?(): void;
    onMessage?(kind: string): void;
    onMasked?(rules: readonly string[], tally: Readonly<MaskTally>): void;
  };
}

export const AUTHZ_NAMESPACE = 'envoy.filters.http.ext_authz';
export const MASKED_HEADER = 'x-tollgate-masked';

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

    const onRequestHeaders = (msg: ExtProcRequestLike) => {
      const headers = headerMap(msg.request_headers?.headers?.headers);
      const principal = principalFromMetadata(msg.metadata_context);
      const rawPath = headers.get(':path') ?? '/';
      const action: HttpAction = {
        kind: 'http', method: (headers.get(':method') ?? 'GET').toUpperCase(), host: headers.get(':authority') ?? '',
        path: rawPath.split('?')[0] ?? '/',
      };
      plans = principal ? deps.policy().masks(principal, action) : [];
      if (plans.length === 0 || responseMode !== 'FULL_DUPLEX_STREAMED') {
        if (plans.length > 0) logger.warn({ path: action.path }, 'ext_proc: masking rules apply but response bodies are not streamed to tollgate; configure response_body_mode FULL_DUPLEX_STREAMED');
        plans = [];
        return { request_headers: { response: {} } };
      }
      // Masking reads bodies as text: ask the upstream for an unencoded body.
      return { request_headers: { response: { header_mutation: { remove_headers: ['accept-encoding'] } } } };
    };

    const onResponseHeaders = (msg: ExtProcRequestLike): ExtProcResponseLike => {
      if (plans.length === 0) return { response_headers: { response: {} } };
      const headers = headerMap(msg.response_headers?.headers?.headers);
      const encoding = headers.get('content-encoding');
      const rules = plans.map((p) => p.rule);
      if (encoding !== undefined && encoding !== '' && encoding.toLowerCase() !== 'identity') {
        plans = [];
        return {
          immediate_response: {
            status: { code: 502 },
            headers: { set_headers: [{ header: { key: 'content-type', raw_value: Buffer.from('application/json') } }] },
            body: Buffer.from(JSON.stringify({ error: 'masking_unavailable', reason: `the upstream answered with content-encoding ${encoding}; tollgate masks only unencoded bodies`, rule: rules[0] })),
            details: 'tollgate_masking_encoded_body',
          },
        };
      }
      masker = responseMasker(bodyFormat(headers.get('content-type')), plans, deps.maskContext(), deps.maxBufferBytes, tally);
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
        hooks?.onMasked?.(plans.map((p) => p.rule), tally);
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
          case 'request_headers': call.write(onRequestHeaders(msg)); break;
          case 'response_headers': call.write(onResponseHeaders(msg)); break;
          case 'request_body': call.write(passthroughBody('request_body', msg.request_body, requestMode)); break;
          case 'response_body': call.write(onResponseBody(msg.response_body)); break;
          case 'request_trailers': call.write({ request_trailers: {} }); break;
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
