/**
 * @module kafka/service
 * The NetworkExternalProcessor `Process` handler for the Kafka listener (Envoy 1.40 network ext_proc). Thin: one
 * gRPC stream is one downstream TCP connection and gets one `KafkaSession`; this module only translates messages.
 *
 * Contract with Envoy (see notes/envoy-network-ext-proc.md):
 * - Every incoming message gets exactly one reply per direction it carries (`read_data` first, then `write_data`),
 *   written synchronously, so replies leave in the order messages arrived. A reply carries the whole frames the
 *   message completed, concatenated — an empty Buffer while a frame is incomplete, which holds the bytes and
 *   stops Envoy's per-direction message timer.
 * - `end_of_stream` is echoed in the reply of its direction (after the frames), or the other side never sees FIN.
 * - Protocol violations (frame over `maxFrameBytes`, negative size, unpaired or out-of-order response, too many
 *   requests in flight, unreadable header, a direction ending inside a frame) close the connection: the regular
 *   reply first (carrying the frames completed before the bad one), then a separate `{connection_status: 'CLOSE'}`
 *   (data in the same reply as CLOSE would be discarded), an audit record, and the gRPC stream is ended. The stream
 *   is never ended on our initiative without a CLOSE first: Envoy bypasses a processor whose stream ends OK.
 *   A partial frame when a direction ends is such a violation: the partial bytes are never forwarded (the peer
 *   would see a cut frame) and the connection is closed.
 * - An unexpected exception in this code fails closed the same way (`kafka.processor.internal_error`).
 * - Connection facts come once, in the first message's `attributes["envoy.filters.network.ext_proc"]` (when the
 *   filter's `connection_attributes` asks for them); they label logs and audit records. Absent facts are fine.
 */
import type { Logger } from 'pino';
import type { AuditRecord, AuditSink } from '../audit/record.ts';
import { KafkaSession, type KafkaDirection, type ProtocolViolation, type ViolationCode } from './session.ts';

/** `envoy.service.network_ext_proc.v3.Data`, as proto-loader gives it (`keepCase: true`). */
export interface NetworkData {
  readonly data: Buffer;
  readonly end_of_stream: boolean;
}

/** `envoy.service.network_ext_proc.v3.ProcessingRequest` (1.40: no oneof). Absent messages are null or missing. */
export interface NetworkProcessingRequest {
  readonly read_data?: NetworkData | null;
  readonly write_data?: NetworkData | null;
  readonly metadata?: unknown;
  /** `map<string, google.protobuf.Struct>`; Struct values are camelCase (`stringValue`) even with keepCase. */
  readonly attributes?: Readonly<Record<string, unknown>> | null;
}

export type NetworkConnectionStatus = 'CONTINUE' | 'CLOSE' | 'CLOSE_RST';

/** `envoy.service.network_ext_proc.v3.ProcessingResponse`: the presence of `read_data`/`write_data` matters. */
export interface NetworkProcessingResponse {
  read_data?: NetworkData;
  write_data?: NetworkData;
  connection_status?: NetworkConnectionStatus;
}

/** The part of grpc-js's `ServerDuplexStream<NetworkProcessingRequest, NetworkProcessingResponse>` used here. */
export interface NetworkProcessStream {
  // Listener arguments: 'data' → NetworkProcessingRequest, 'error' → Error, 'end'/'cancelled' → none.
  on(event: 'data' | 'end' | 'error' | 'cancelled', listener: (...args: any[]) => void): unknown;
  write(message: NetworkProcessingResponse): unknown;
  end(): unknown;
}

/** Why a connection's stream ended: a violation code, or how the stream itself ended. */
export type ConnectionCloseReason = ViolationCode | 'stream_end' | 'cancelled' | 'stream_error' | 'internal_error';

/** Counters for someone else to wire to metrics. Hooks must not throw (an exception closes the connection). */
export interface NetworkExtProcHooks {
  onConnectionOpen?(): void;
  /** Called exactly once per stream. */
  onConnectionClose?(reason: ConnectionCloseReason): void;
  /** Once per forwarded frame; responses carry the api key of their request. */
  onFrame?(direction: KafkaDirection, apiKey: number): void;
}

export interface NetworkExtProcHandlerOptions {
  readonly logger: Logger;
  readonly audit: AuditSink;
  /** Largest Kafka frame (size prefix value) accepted in either direction. Default 100 MiB. */
  readonly maxFrameBytes?: number;
  /** Most requests awaiting a response per connection. Default 1000. */
  readonly maxInFlight?: number;
  readonly hooks?: NetworkExtProcHooks;
  /** Monotonic milliseconds for request latency; `performance.now` by default. */
  readonly now?: () => number;
}

export const DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024;
export const DEFAULT_MAX_IN_FLIGHT = 1000;

/** The key under which Envoy's network ext_proc filter sends `connection_attributes`. */
export const CONNECTION_ATTRIBUTES_KEY = 'envoy.filters.network.ext_proc';

const EMPTY = Buffer.alloc(0);

export type ConnectionFacts = Record<string, string | number>;

/** Creates the `Process` handler: `(call) => void`, one Kafka session per call. */
export function createNetworkExtProcHandler(
  options: NetworkExtProcHandlerOptions,
): (call: NetworkProcessStream) => void {
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 0 || maxFrameBytes > 0x7fffffff) {
    throw new RangeError(`maxFrameBytes must be an integer in [0, 2^31-1], got ${maxFrameBytes}`);
  }
  if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) {
    throw new RangeError(`maxInFlight must be a positive integer, got ${maxInFlight}`);
  }
  const { audit, hooks = {} } = options;

  return (call) => {
    let session: KafkaSession | undefined;
    let facts: ConnectionFacts = {};
    let logger = options.logger;
    let finished = false;

    const finish = (reason: ConnectionCloseReason): void => {
      if (finished) return;
      finished = true;
      logger.debug({ reason, inFlight: session?.inFlightCount ?? 0 }, 'kafka connection stream finished');
      hooks.onConnectionClose?.(reason);
    };

    const closeConnection = (
      reason: ConnectionCloseReason,
      record: Pick<AuditRecord, 'event' | 'reason' | 'details'>,
    ): void => {
      call.write({ connection_status: 'CLOSE' });
      audit.write({ time: new Date().toISOString(), path: 'kafka', connection: facts, ...record });
      logger.warn({ event: record.event, ...record.details }, `closing Kafka connection: ${record.reason}`);
      finish(reason);
      call.end();
    };

    /** Answers one direction of a message; false when the connection was closed. */
    const answer = (direction: 'read_data' | 'write_data', data: NetworkData, current: KafkaSession): boolean => {
      const bytes = data.data ?? EMPTY;
      const endOfStream = data.end_of_stream === true;
      const result = direction === 'read_data' ? current.onClientData(bytes) : current.onBrokerData(bytes);
      let violation: ProtocolViolation | undefined = result.violation;
      if (violation === undefined && endOfStream) {
        violation = direction === 'read_data' ? current.onClientEnd() : current.onBrokerEnd();
      }
      call.write({ [direction]: { data: joinFrames(result.forward), end_of_stream: endOfStream } });
      if (violation === undefined) return true;
      closeConnection(violation.code, { event: violation.event, reason: violation.reason, details: violation.details });
      return false;
    };

    const onMessage = (message: NetworkProcessingRequest): void => {
      if (finished) return;
      if (session === undefined) {
        facts = connectionFacts(message.attributes);
        if (Object.keys(facts).length > 0) logger = options.logger.child({ connection: facts });
        session = new KafkaSession({
          maxFrameBytes,
          maxInFlight,
          logger,
          ...(options.now !== undefined && { now: options.now }),
          ...(hooks.onFrame !== undefined && { onFrame: hooks.onFrame.bind(hooks) }),
        });
        logger.debug('kafka connection stream opened');
      }
      const { read_data: read, write_data: write } = message;
      if (read == null && write == null) {
        logger.debug('network ext_proc message without data: nothing to answer');
        return;
      }
      if (read != null && !answer('read_data', read, session)) return;
      if (write != null) answer('write_data', write, session);
    };

    call.on('data', (message: NetworkProcessingRequest) => {
      try {
        onMessage(message);
      } catch (error) {
        if (finished) return;
        logger.error({ err: error }, 'unexpected error in the Kafka network ext_proc handler');
        try {
          closeConnection('internal_error', {
            event: 'kafka.processor.internal_error',
            reason: error instanceof Error ? error.message : String(error),
          });
        } catch {
          finish('internal_error');
        }
      }
    });
    call.on('end', () => {
      // Envoy half-closed the stream: the connection is gone. Complete our side.
      if (finished) return;
      finish('stream_end');
      call.end();
    });
    call.on('error', (error: Error) => {
      logger.debug({ err: error }, 'network ext_proc stream error');
      finish('stream_error');
    });
    call.on('cancelled', () => finish('cancelled'));
    hooks.onConnectionOpen?.();
  };
}

/**
 * The scalar facts of `attributes["envoy.filters.network.ext_proc"]` (a `google.protobuf.Struct` as proto-loader
 * decodes it), keyed as Envoy sends them: `source.address`, `source.port`, `connection.id`, … Tolerates absence and
 * any other shape (returns what it can read).
 */
export function connectionFacts(attributes: Readonly<Record<string, unknown>> | null | undefined): ConnectionFacts {
  const facts: ConnectionFacts = {};
  const fields = asRecord(asRecord(attributes?.[CONNECTION_ATTRIBUTES_KEY])?.['fields']);
  if (fields === undefined) return facts;
  for (const [key, value] of Object.entries(fields)) {
    const v = asRecord(value);
    if (v === undefined) continue;
    const scalar = v['stringValue'] ?? v['string_value'] ?? v['numberValue'] ?? v['number_value'] ??
      v['boolValue'] ?? v['bool_value'];
    if (typeof scalar === 'string' || typeof scalar === 'number') facts[key] = scalar;
    else if (typeof scalar === 'boolean') facts[key] = String(scalar);
  }
  return facts;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

/**
 * The frames as one Buffer. Frames cut from one incoming chunk are adjacent views of the same memory: they are
 * returned as one view, without copying; anything else is concatenated.
 */
export function joinFrames(frames: readonly Buffer[]): Buffer {
  const first = frames[0];
  if (first === undefined) return EMPTY;
  if (frames.length === 1) return first;
  let end = first.byteOffset + first.length;
  let adjacent = true;
  for (let i = 1; i < frames.length; i++) {
    const frame = frames[i]!;
    if (frame.buffer !== first.buffer || frame.byteOffset !== end) {
      adjacent = false;
      break;
    }
    end += frame.length;
  }
  if (adjacent) return Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset);
  return Buffer.concat(frames);
}
