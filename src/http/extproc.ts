/**
 * @module http/extproc
 * The HTTP ext_proc `Process` handler. In this first cut it changes nothing: every message is answered so the
 * request flows on unchanged. Bodies sent FULL_DUPLEX_STREAMED must be re-emitted by the processor as
 * `streamed_response` (Envoy forwards only what the processor sends), so passthrough echoes each chunk.
 */
import type { Logger } from 'pino';

type BodyMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED' | 'GRPC';

interface HttpBodyLike { body?: Buffer; end_of_stream?: boolean }

/** The parts of envoy.service.ext_proc.v3.ProcessingRequest this handler reads (proto-loader, keepCase, oneofs). */
export interface ExtProcRequestLike {
  request?: 'request_headers' | 'response_headers' | 'request_body' | 'response_body' | 'request_trailers' | 'response_trailers';
  request_body?: HttpBodyLike | null;
  response_body?: HttpBodyLike | null;
  protocol_config?: { request_body_mode?: BodyMode; response_body_mode?: BodyMode } | null;
}

export type ExtProcResponseLike = Record<string, unknown>;

/** The slice of a grpc-js ServerDuplexStream this handler uses, so tests can drive it with a plain emitter. */
export interface DuplexCall<Req, Res> {
  on(event: 'data', listener: (msg: Req) => void): unknown;
  on(event: 'end' | 'cancelled', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  write(msg: Res): unknown;
  end(): void;
}

export interface ExtProcDeps {
  readonly logger: Logger;
  readonly hooks?: { onStream?(): void; onMessage?(kind: string): void };
}

function bodyReply(field: 'request_body' | 'response_body', body: HttpBodyLike | null | undefined, mode: BodyMode): ExtProcResponseLike {
  if (mode !== 'FULL_DUPLEX_STREAMED') return { [field]: { response: {} } };
  return {
    [field]: {
      response: {
        body_mutation: { streamed_response: { body: body?.body ?? Buffer.alloc(0), end_of_stream: body?.end_of_stream ?? false } },
      },
    },
  };
}

export function createExtProcHandler(deps: ExtProcDeps): (call: DuplexCall<ExtProcRequestLike, ExtProcResponseLike>) => void {
  const { logger, hooks } = deps;
  return (call) => {
    hooks?.onStream?.();
    // Envoy names the body modes only in the first message of a stream; later messages leave protocol_config empty.
    let requestMode: BodyMode = 'NONE';
    let responseMode: BodyMode = 'NONE';
    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      call.end();
    };
    call.on('data', (msg) => {
      if (msg.protocol_config) {
        requestMode = msg.protocol_config.request_body_mode ?? requestMode;
        responseMode = msg.protocol_config.response_body_mode ?? responseMode;
      }
      const kind = msg.request;
      hooks?.onMessage?.(kind ?? 'unknown');
      switch (kind) {
        case 'request_headers': call.write({ request_headers: { response: {} } }); break;
        case 'response_headers': call.write({ response_headers: { response: {} } }); break;
        case 'request_body': call.write(bodyReply('request_body', msg.request_body, requestMode)); break;
        case 'response_body': call.write(bodyReply('response_body', msg.response_body, responseMode)); break;
        case 'request_trailers': call.write({ request_trailers: {} }); break;
        case 'response_trailers': call.write({ response_trailers: {} }); break;
        default:
          logger.warn({ kind }, 'ext_proc: message of an unknown kind; leaving the stream');
          finish();
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
