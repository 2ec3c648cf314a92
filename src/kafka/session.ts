/**
 * @module kafka/session
 * One Kafka connection's state, free of gRPC and Envoy: two frame reassemblers (client→broker requests, Envoy's
 * "read" direction; broker→client responses, the "write" direction) and the requests still waiting for a
 * response, by correlation id, in the order they were sent.
 *
 * Kafka answers requests in order on one connection, so every response must carry the correlation id of the oldest
 * request in flight. Anything else is a protocol violation and the connection must be closed (fail closed): a
 * response for an id never sent (`unknown_correlation_id`), one for a later request (`out_of_order_response`), a
 * request reusing an id still in flight (`duplicate_correlation_id`: pairing would be ambiguous), more requests in
 * flight than allowed (`in_flight_limit`), a frame the reassembler or header parser rejects, a partial frame when a
 * direction ends (`truncated_at_eof`).
 *
 * Produce requests with acks=0 get no response from the broker: they are forwarded but not tracked.
 *
 * Not supported: the raw SASL tokens of SaslHandshake v0 (unframed by Kafka headers; removed in Kafka 4.0). Such a
 * connection fails closed at its first broker token.
 *
 * A session never closes anything itself: it returns the frames to forward and, when the connection must be closed,
 * a `ProtocolViolation`. From then on it is closed: it forwards nothing and keeps returning that violation.
 */
import type { Logger } from 'pino';
import { apiKeyName, API_KEY } from './protocol/api-keys.ts';
import { FrameError, type FrameErrorCode } from './protocol/errors.ts';
import { FrameReassembler } from './protocol/framing.ts';
import { readRequestHeader, readResponseCorrelationId } from './protocol/header.ts';
import { readProduceAcks } from './protocol/produce.ts';

/** `request`: client→broker (Envoy's read direction); `response`: broker→client (write direction). */
export type KafkaDirection = 'request' | 'response';

export type ViolationCode =
  | FrameErrorCode
  | 'unknown_correlation_id'
  | 'out_of_order_response'
  | 'duplicate_correlation_id'
  | 'in_flight_limit'
  | 'truncated_at_eof';

/** The audit event of each violation: dotted and stable. */
export const VIOLATION_EVENTS: Readonly<Record<ViolationCode, string>> = {
  frame_too_large: 'kafka.frame.too_large',
  frame_size_invalid: 'kafka.frame.size_invalid',
  header_truncated: 'kafka.frame.header_truncated',
  header_invalid: 'kafka.frame.header_invalid',
  body_truncated: 'kafka.frame.body_truncated',
  body_invalid: 'kafka.frame.body_invalid',
  truncated_at_eof: 'kafka.frame.truncated_at_eof',
  unknown_correlation_id: 'kafka.response.unknown_correlation_id',
  out_of_order_response: 'kafka.response.out_of_order',
  duplicate_correlation_id: 'kafka.request.duplicate_correlation_id',
  in_flight_limit: 'kafka.request.in_flight_limit',
};

export interface ProtocolViolation {
  readonly code: ViolationCode;
  /** Audit event name, from `VIOLATION_EVENTS`. */
  readonly event: string;
  /** The direction whose bytes broke the protocol. */
  readonly direction: KafkaDirection;
  /** A human sentence for logs and the audit record. */
  readonly reason: string;
  /** Sizes, limits, ids: never payload bytes. */
  readonly details: Readonly<Record<string, unknown>>;
}

export interface SessionResult {
  /** Whole frames to forward, in stream order, bytes unchanged. */
  readonly forward: Buffer[];
  /** Set when the connection must be closed; `forward` then holds only the frames that came before the violation. */
  readonly violation?: ProtocolViolation;
}

export interface InFlightRequest {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  /** `now()` when the request was forwarded. */
  readonly sentAt: number;
}

export interface KafkaSessionOptions {
  /** Largest frame size prefix accepted in either direction (bytes after the 4-byte prefix). */
  readonly maxFrameBytes: number;
  /** Most requests awaiting a response at once; one more closes the connection. */
  readonly maxInFlight: number;
  /** Receives one debug line per request/response pair, and connection-level context via `child`. */
  readonly logger?: Logger;
  /** Monotonic milliseconds; `performance.now` by default. */
  readonly now?: () => number;
  /** Called once per forwarded frame (responses carry their request's api key). Must not throw. */
  readonly onFrame?: (direction: KafkaDirection, apiKey: number) => void;
}

export class KafkaSession {
  readonly #requests: FrameReassembler;
  readonly #responses: FrameReassembler;
  /** Requests awaiting a response; Map iteration order is send order, so the first entry is the oldest. */
  readonly #inFlight = new Map<number, InFlightRequest>();
  readonly #maxInFlight: number;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #onFrame: ((direction: KafkaDirection, apiKey: number) => void) | undefined;
  #violation: ProtocolViolation | undefined;

  constructor(options: KafkaSessionOptions) {
    if (!Number.isSafeInteger(options.maxInFlight) || options.maxInFlight < 1) {
      throw new RangeError(`maxInFlight must be a positive integer, got ${options.maxInFlight}`);
    }
    this.#requests = new FrameReassembler({ maxFrameBytes: options.maxFrameBytes });
    this.#responses = new FrameReassembler({ maxFrameBytes: options.maxFrameBytes });
    this.#maxInFlight = options.maxInFlight;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#onFrame = options.onFrame;
  }

  /** Requests forwarded and still awaiting their response. */
  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  /** The requests awaiting a response, oldest first. */
  inFlight(): IterableIterator<InFlightRequest> {
    return this.#inFlight.values();
  }

  /** Bytes held for an incomplete frame in one direction. */
  pendingBytes(direction: KafkaDirection): number {
    return (direction === 'request' ? this.#requests : this.#responses).pendingBytes;
  }

  /** The violation that closed this session, if any. */
  get violation(): ProtocolViolation | undefined {
    return this.#violation;
  }

  /** Bytes from the client (Envoy `read_data`). */
  onClientData(chunk: Buffer): SessionResult {
    if (this.#violation !== undefined) return { forward: [], violation: this.#violation };
    const forward: Buffer[] = [];
    let frames: Buffer[];
    try {
      frames = this.#requests.push(chunk);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      forward.push(...error.completeFrames.filter((frame) => this.#acceptRequest(frame)));
      // A frame of the same chunk may already have closed the session; that violation came first.
      return { forward, violation: this.#violation ?? this.#fail(frameViolation(error, 'request')) };
    }
    for (const frame of frames) {
      if (!this.#acceptRequest(frame)) return { forward, violation: this.#violation! };
      forward.push(frame);
    }
    return { forward };
  }

  /** Bytes from the broker (Envoy `write_data`). */
  onBrokerData(chunk: Buffer): SessionResult {
    if (this.#violation !== undefined) return { forward: [], violation: this.#violation };
    const forward: Buffer[] = [];
    let frames: Buffer[];
    try {
      frames = this.#responses.push(chunk);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      forward.push(...error.completeFrames.filter((frame) => this.#acceptResponse(frame)));
      return { forward, violation: this.#violation ?? this.#fail(frameViolation(error, 'response')) };
    }
    for (const frame of frames) {
      if (!this.#acceptResponse(frame)) return { forward, violation: this.#violation! };
      forward.push(frame);
    }
    return { forward };
  }

  /** The client half-closed. A partial request frame held at that point closes the session. */
  onClientEnd(): ProtocolViolation | undefined {
    return this.#onEnd('request', this.#requests);
  }

  /** The broker closed. A partial response frame held at that point closes the session. */
  onBrokerEnd(): ProtocolViolation | undefined {
    return this.#onEnd('response', this.#responses);
  }

  #onEnd(direction: KafkaDirection, reassembler: FrameReassembler): ProtocolViolation | undefined {
    if (this.#violation !== undefined) return this.#violation;
    if (reassembler.isIdle) return undefined;
    return this.#fail({
      code: 'truncated_at_eof',
      direction,
      reason: `the ${direction} stream ended inside a frame (${reassembler.pendingBytes} bytes held)`,
      details: { direction, pendingBytes: reassembler.pendingBytes },
    });
  }

  /** Tracks one request frame; false (and the session closed) when it breaks the protocol. */
  #acceptRequest(frame: Buffer): boolean {
    if (this.#violation !== undefined) return false;
    try {
      const header = readRequestHeader(frame);
      const expectsResponse = !(header.apiKey === API_KEY.Produce && readProduceAcks(frame, header) === 0);
      if (expectsResponse) {
        const { correlationId } = header;
        if (this.#inFlight.has(correlationId)) {
          this.#fail({
            code: 'duplicate_correlation_id',
            direction: 'request',
            reason: `request reuses correlation id ${correlationId}, still awaiting its response`,
            details: { direction: 'request', correlationId, apiKey: header.apiKey, api: apiKeyName(header.apiKey) },
          });
          return false;
        }
        if (this.#inFlight.size >= this.#maxInFlight) {
          this.#fail({
            code: 'in_flight_limit',
            direction: 'request',
            reason: `more than ${this.#maxInFlight} requests awaiting a response`,
            details: { direction: 'request', limit: this.#maxInFlight, correlationId },
          });
          return false;
        }
        this.#inFlight.set(correlationId, {
          apiKey: header.apiKey,
          apiVersion: header.apiVersion,
          correlationId,
          clientId: header.clientId,
          sentAt: this.#now(),
        });
      } else if (this.#logger?.isLevelEnabled('debug') === true) {
        this.#logger.debug(
          {
            api: apiKeyName(header.apiKey),
            apiVersion: header.apiVersion,
            correlationId: header.correlationId,
            clientId: header.clientId,
          },
          'kafka request without response (acks=0)',
        );
      }
      this.#onFrame?.('request', header.apiKey);
      return true;
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.#fail(frameViolation(error, 'request'));
      return false;
    }
  }

  /** Pairs one response frame with the oldest request; false (and the session closed) when it cannot. */
  #acceptResponse(frame: Buffer): boolean {
    if (this.#violation !== undefined) return false;
    let correlationId: number;
    try {
      correlationId = readResponseCorrelationId(frame);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.#fail(frameViolation(error, 'response'));
      return false;
    }
    const request = this.#inFlight.get(correlationId);
    if (request === undefined) {
      this.#fail({
        code: 'unknown_correlation_id',
        direction: 'response',
        reason: `response with correlation id ${correlationId}, which no request in flight has`,
        details: { direction: 'response', correlationId, inFlight: this.#inFlight.size },
      });
      return false;
    }
    const oldest = this.#inFlight.values().next().value!;
    if (oldest.correlationId !== correlationId) {
      this.#fail({
        code: 'out_of_order_response',
        direction: 'response',
        reason: `response for correlation id ${correlationId} before the one for ${oldest.correlationId}`,
        details: { direction: 'response', correlationId, expectedCorrelationId: oldest.correlationId },
      });
      return false;
    }
    this.#inFlight.delete(correlationId);
    if (this.#logger?.isLevelEnabled('debug') === true) {
      this.#logger.debug(
        {
          api: apiKeyName(request.apiKey),
          apiVersion: request.apiVersion,
          correlationId,
          clientId: request.clientId,
          latencyMs: Math.round((this.#now() - request.sentAt) * 1000) / 1000,
        },
        'kafka request/response',
      );
    }
    this.#onFrame?.('response', request.apiKey);
    return true;
  }

  #fail(violation: Omit<ProtocolViolation, 'event'>): ProtocolViolation {
    this.#violation = { ...violation, event: VIOLATION_EVENTS[violation.code] };
    return this.#violation;
  }
}

function frameViolation(error: FrameError, direction: KafkaDirection): Omit<ProtocolViolation, 'event'> {
  return { code: error.code, direction, reason: error.message, details: { direction, ...error.details } };
}
