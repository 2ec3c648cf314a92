/**
 * @module kafka/service
 * The NetworkExternalProcessor `Process` handler for the Kafka listener (Envoy 1.40 network ext_proc). Thin: one
 * gRPC stream is one downstream TCP connection and gets one `KafkaConnection` (./connection.ts), which decides
 * everything; this module only translates between it and Envoy's messages.
 *
 * Contract with Envoy (see notes/envoy-network-ext-proc.md):
 * - Every incoming message gets exactly one reply per direction it carries (`read_data` first, then `write_data`),
 *   written synchronously, so replies leave in the order messages arrived. A reply carries the whole frames the
 *   message completed, concatenated — an empty Buffer while a frame is incomplete, which holds the bytes and
 *   stops Envoy's per-direction message timer.
 * - Frames for the other direction (a local answer to the client while handling client bytes, tollgate's own
 *   SASL request to the broker while handling broker bytes) go in an extra reply of that direction; replies are not
 *   matched to requests, so this is allowed at any time — also when a token verification completes later.
 * - `end_of_stream` is echoed in the reply of its direction (after the frames), or the other side never sees FIN.
 * - When the connection decides to close: the frames still owed first, then a separate `{connection_status:
 *   'CLOSE'}` (data in the same reply as CLOSE would be discarded), an audit record, and the gRPC stream is ended.
 *   The stream is never ended on our initiative without a CLOSE first: Envoy bypasses a processor whose stream ends
 *   OK.
 * - An unexpected exception in this code fails closed the same way (`kafka.processor.internal_error`).
 * - Connection facts come once, in the first message's `attributes["envoy.filters.network.ext_proc"]` (when the
 *   filter's `connection_attributes` asks for them); they label logs and audit records. Absent facts are fine.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/record.ts';
import type { Decision } from '../core/decision.ts';
import type { Principal } from '../core/principal.ts';
import { KafkaConnection, type CloseReason, type ConnectionOutput, type KafkaConnectionOptions, type KafkaDirection } from './connection.ts';

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

/** Why a connection's stream ended: the close event of the connection, or how the stream itself ended. */
export type ConnectionCloseReason = string;

/** Counters for someone else to wire to metrics. Hooks must not throw (an exception closes the connection). */
export interface NetworkExtProcHooks {
  onConnectionOpen?(): void;
  /** Called exactly once per stream, with the close event or `stream_end`, `cancelled`, `stream_error`. */
  onConnectionClose?(reason: ConnectionCloseReason): void;
  /** Once per frame that leaves; responses carry the api key of their request. */
  onFrame?(direction: KafkaDirection, apiKey: number): void;
  onDecision?(decision: Decision): void;
  /** Bytes Envoy handed over: from the client (`request`) or from the broker (`response`). */
  onBytes?(direction: KafkaDirection, bytes: number): void;
}

/** Everything a connection needs that is the same for all connections. */
export type KafkaConnectionSettings = Omit<KafkaConnectionOptions, 'deliver' | 'facts' | 'logger' | 'audit' | 'onFrame' | 'onDecision' | 'peerPrincipal'>;

/** The dynamic metadata namespace of Envoy's network ext_authz filter, forwarded to network ext_proc. */
export const NETWORK_EXT_AUTHZ_NAMESPACE = 'envoy.filters.network.ext_authz';

export interface NetworkExtProcHandlerOptions {
  readonly logger: Logger;
  readonly audit: AuditSink;
  /** Read per connection, so a config reload applies to new connections. */
  readonly settings: () => KafkaConnectionSettings;
  readonly hooks?: NetworkExtProcHooks;
}


/** The key under which Envoy's network ext_proc filter sends `connection_attributes`. */
export const CONNECTION_ATTRIBUTES_KEY = 'envoy.filters.network.ext_proc';

const EMPTY = Buffer.alloc(0);

export type ConnectionFacts = Record<string, string | number>;

/** Creates the `Process` handler: `(call) => void`, one Kafka connection per call. */
export function createNetworkExtProcHandler(options: NetworkExtProcHandlerOptions): (call: NetworkProcessStream) => void {
  const { audit, hooks = {} } = options;

  return (call) => {
    // Every audit record of this connection carries one session id, so its timeline can be replayed.
    const session = `kafka-${randomBytes(8).toString('hex')}`;
    const connectionAudit: AuditSink = { write: (record) => audit.write(record.session === undefined ? { ...record, session } : record) };
    let connection: KafkaConnection | undefined;
    let facts: ConnectionFacts = {};
    let logger = options.logger;
    let finished = false;

    const finish = (reason: ConnectionCloseReason): void => {
      if (finished) return;
      finished = true;
      connection?.dispose();
      logger.debug({ reason, inFlight: connection?.inFlightCount ?? 0 }, 'kafka connection stream finished');
      hooks.onConnectionClose?.(reason);
    };

    const closeConnection = (close: CloseReason): void => {
      call.write({ connection_status: 'CLOSE' });
      connectionAudit.write({
        time: new Date().toISOString(),
        path: 'kafka',
        event: close.event,
        reason: close.reason,
        connection: facts,
        ...(close.principal !== undefined && { principal: close.principal }),
        ...(close.rule !== undefined && { rule: close.rule }),
        details: close.details,
      });
      logger.warn({ event: close.event, ...close.details }, `closing Kafka connection: ${close.reason}`);
      finish(close.event);
      call.end();
    };

    /** Writes the extra replies of an output and closes when it says so; false when the connection was closed. */
    const emit = (output: ConnectionOutput, skip: 'read_data' | 'write_data' | undefined): boolean => {
      if (skip !== 'read_data' && output.close === undefined && output.toBroker.length > 0) call.write({ read_data: { data: joinFrames(output.toBroker), end_of_stream: false } });
      if (skip !== 'write_data' && output.toClient.length > 0) call.write({ write_data: { data: joinFrames(output.toClient), end_of_stream: false } });
      if (output.close === undefined) return true;
      closeConnection(output.close);
      return false;
    };

    /** Answers one direction of a message; false when the connection was closed. */
    const answer = (direction: 'read_data' | 'write_data', data: NetworkData, current: KafkaConnection): boolean => {
      const bytes = data.data ?? EMPTY;
      const endOfStream = data.end_of_stream === true;
      const fromClient = direction === 'read_data';
      if (bytes.length > 0) hooks.onBytes?.(fromClient ? 'request' : 'response', bytes.length);
      let output = fromClient ? current.onClientData(bytes) : current.onBrokerData(bytes);
      if (output.close === undefined && endOfStream) {
        const end = fromClient ? current.onClientEnd() : current.onBrokerEnd();
        output = { toBroker: [...output.toBroker, ...end.toBroker], toClient: [...output.toClient, ...end.toClient], ...(end.close !== undefined && { close: end.close }) };
      }
      // A connection being closed sends nothing more upstream: the responses could never be delivered.
      const own = fromClient ? (output.close === undefined ? output.toBroker : []) : output.toClient;
      call.write({ [direction]: { data: joinFrames(own), end_of_stream: endOfStream && output.close === undefined } });
      return emit(output, direction);
    };

    const open = (message: NetworkProcessingRequest): KafkaConnection => {
      facts = connectionFacts(message.attributes);
      if (Object.keys(facts).length > 0) logger = options.logger.child({ connection: facts });
      const peer = peerPrincipal(message.metadata);
      if (peer !== undefined) logger = logger.child({ subject: peer.subject });
      const created = new KafkaConnection({
        ...options.settings(),
        ...(peer !== undefined && { peerPrincipal: peer }),
        facts,
        logger,
        audit: connectionAudit,
        deliver: (output) => {
          if (finished) return;
          try {
            emit(output, undefined);
          } catch (error) {
            failInternal(error);
          }
        },
        ...(hooks.onFrame !== undefined && { onFrame: hooks.onFrame.bind(hooks) }),
        ...(hooks.onDecision !== undefined && { onDecision: hooks.onDecision.bind(hooks) }),
      });
      logger.debug('kafka connection stream opened');
      return created;
    };

    const onMessage = (message: NetworkProcessingRequest): void => {
      if (finished) return;
      connection ??= open(message);
      const { read_data: read, write_data: write } = message;
      if (read == null && write == null) {
        logger.debug('network ext_proc message without data: nothing to answer');
        return;
      }
      const refusal = read != null && read.data?.length > 0 ? audit.refusal?.() : undefined;
      if (refusal !== undefined) {
        // Fail closed: an audit sink's spool is full under onFull: block; no request goes on unaudited.
        const principal = connection.principal;
        closeConnection({ event: 'kafka.connection.audit_unavailable', reason: refusal, details: {}, ...(principal !== undefined && { principal }) });
        return;
      }
      if (read != null && !answer('read_data', read, connection)) return;
      if (write != null) answer('write_data', write, connection);
    };

    const failInternal = (error: unknown): void => {
      if (finished) return;
      logger.error({ err: error }, 'unexpected error in the Kafka network ext_proc handler');
      try {
        closeConnection({ event: 'kafka.processor.internal_error', reason: error instanceof Error ? error.message : String(error), details: {} });
      } catch {
        finish('kafka.processor.internal_error');
      }
    };

    call.on('data', (message: NetworkProcessingRequest) => {
      try {
        onMessage(message);
      } catch (error) {
        failInternal(error);
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
 * The principal tollgate's ext_authz put on the connection (network ext_authz → dynamic metadata → forwarded to
 * network ext_proc in `metadata.filter_metadata`), as `subject`, `groups`, `issuer`, `authenticated_by` and, for a
 * certificate, `expires_at` (epoch seconds). Only Envoy writes a connection's dynamic metadata; a client cannot.
 * Undefined when absent or incomplete.
 */
export function peerPrincipal(metadata: unknown): Principal | undefined {
  const struct = asRecord(asRecord(asRecord(metadata)?.['filter_metadata'])?.[NETWORK_EXT_AUTHZ_NAMESPACE]);
  const fields = asRecord(struct?.['fields']);
  if (fields === undefined) return undefined;
  const text = (key: string): string | undefined => {
    const value = asRecord(fields[key])?.['stringValue'];
    return typeof value === 'string' && value.length > 0 ? value : undefined;
  };
  const subject = text('subject');
  const issuer = text('issuer');
  const method = text('authenticated_by');
  if (subject === undefined || issuer === undefined || (method !== 'mtls' && method !== 'oidc' && method !== 'kubernetes' && method !== 'api-key')) return undefined;
  const list = asRecord(asRecord(fields['groups'])?.['listValue'])?.['values'];
  const groups = Array.isArray(list) ? list.map((v) => asRecord(v)?.['stringValue']).filter((g): g is string => typeof g === 'string') : [];
  const expires = asRecord(fields['expires_at'])?.['numberValue'];
  return { subject, groups, issuer, authenticatedBy: method, ...(typeof expires === 'number' && { expiresAt: expires }) };
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
