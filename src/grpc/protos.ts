/**
 * @module src/grpc/protos
 * The gRPC APIs tollgate serves to Envoy, loaded once from the project's own declarations in `proto/` (checked
 * against the pinned Envoy binary by test/proto/descriptors.test.ts), and the JS shapes of their messages.
 *
 * Loader options: keepCase, longs as Number, enums as String, defaults, oneofs. What that means for the shapes:
 * - A decoded message has every field: scalars with their default (`''`, `0`, `false`), bytes as a Buffer,
 *   repeated as `[]`, maps as `{}`, enums as the value name, int64 as number; an unset message field is `null`.
 * - Oneof members are the exception: only the member that is set is present, and a virtual property named after
 *   the oneof (e.g. `request: 'request_body'`) says which; with none set, neither is there.
 * - Outgoing messages are partial: use `Encodable<T>`. Presence matters for message fields: `{ read_data: { data:
 *   Buffer.alloc(0) } }` sends an (empty) Data, leaving `read_data` out sends none.
 * - google.protobuf.Struct/Value use camelCase keys (`structValue`, `stringValue`, ...) even with keepCase: the
 *   well-known types come from protobufjs's bundled copies. Snake_case keys are silently dropped on encode.
 * - Header values: ext_proc reads and writes `HeaderValue.raw_value` (bytes); ext_authz uses `HeaderValue.value`.
 *   Setting the other one yields empty header values.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protoLoader from '@grpc/proto-loader';
import type * as grpc from '@grpc/grpc-js';

// ---------------------------------------------------------------------------------------------------------------
// Generic shapes

/**
 * A proto oneof as proto-loader presents it: the discriminator property `D` names the member that is set, and
 * only that member is present. With nothing set, neither the discriminator nor any member is present.
 */
export type OneOf<D extends string, Members extends object> =
  | {
      [K in keyof Members]: { [P in D]: K } & { [P in K]: Members[K] } & {
        [P in Exclude<keyof Members, K>]?: undefined;
      };
    }[keyof Members]
  | ({ [P in D]?: undefined } & { [P in keyof Members]?: undefined });

/**
 * What the serializers accept for a message whose decoded shape is `T`: every field optional (unset = default;
 * for message fields: absent), `null` allowed where the decoded shape has it, Uint8Array for bytes. Oneof
 * exclusivity is kept. The discriminator may be given but is ignored on encode.
 */
export type Encodable<T> = T extends Buffer
  ? Buffer | Uint8Array
  : T extends readonly (infer E)[]
    ? Encodable<E>[]
    : T extends object
      ? { [K in keyof T]?: Encodable<T[K]> }
      : T;

// ---------------------------------------------------------------------------------------------------------------
// google.protobuf well-known types (protobufjs's bundled declarations: camelCase field names)

export interface Struct {
  fields: Record<string, Value>;
}
export type NullValue = 'NULL_VALUE';
export type Value = OneOf<
  'kind',
  {
    nullValue: NullValue;
    numberValue: number;
    stringValue: string;
    boolValue: boolean;
    structValue: Struct;
    listValue: ListValue;
  }
>;
export interface ListValue {
  values: Value[];
}
export interface Any {
  type_url: string;
  value: Buffer;
}
export interface Duration {
  seconds: number;
  nanos: number;
}
export interface Timestamp {
  seconds: number;
  nanos: number;
}
export interface BoolValue {
  value: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// google.rpc

export interface RpcStatus {
  /** A google.rpc.Code: 0 OK, 7 PERMISSION_DENIED, 16 UNAUTHENTICATED, ... */
  code: number;
  message: string;
  details: Any[];
}

// ---------------------------------------------------------------------------------------------------------------
// envoy.type.v3

export type StatusCode =
  | 'Empty'
  | 'Continue'
  | 'OK'
  | 'Created'
  | 'Accepted'
  | 'NonAuthoritativeInformation'
  | 'NoContent'
  | 'ResetContent'
  | 'PartialContent'
  | 'MultiStatus'
  | 'AlreadyReported'
  | 'IMUsed'
  | 'MultipleChoices'
  | 'MovedPermanently'
  | 'Found'
  | 'SeeOther'
  | 'NotModified'
  | 'UseProxy'
  | 'TemporaryRedirect'
  | 'PermanentRedirect'
  | 'BadRequest'
  | 'Unauthorized'
  | 'PaymentRequired'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'ProxyAuthenticationRequired'
  | 'RequestTimeout'
  | 'Conflict'
  | 'Gone'
  | 'LengthRequired'
  | 'PreconditionFailed'
  | 'PayloadTooLarge'
  | 'URITooLong'
  | 'UnsupportedMediaType'
  | 'RangeNotSatisfiable'
  | 'ExpectationFailed'
  | 'MisdirectedRequest'
  | 'UnprocessableEntity'
  | 'Locked'
  | 'FailedDependency'
  | 'UpgradeRequired'
  | 'PreconditionRequired'
  | 'TooManyRequests'
  | 'RequestHeaderFieldsTooLarge'
  | 'InternalServerError'
  | 'NotImplemented'
  | 'BadGateway'
  | 'ServiceUnavailable'
  | 'GatewayTimeout'
  | 'HTTPVersionNotSupported'
  | 'VariantAlsoNegotiates'
  | 'InsufficientStorage'
  | 'LoopDetected'
  | 'NotExtended'
  | 'NetworkAuthenticationRequired';
export interface HttpStatus {
  code: StatusCode;
}

// ---------------------------------------------------------------------------------------------------------------
// envoy.config.core.v3

export interface Metadata {
  filter_metadata: Record<string, Struct>;
  typed_filter_metadata: Record<string, Any>;
}
export interface QueryParameter {
  key: string;
  value: string;
}
/** ext_proc uses `raw_value`, ext_authz uses `value`. */
export interface HeaderValue {
  key: string;
  value: string;
  raw_value: Buffer;
}
export type HeaderAppendAction =
  | 'APPEND_IF_EXISTS_OR_ADD'
  | 'ADD_IF_ABSENT'
  | 'OVERWRITE_IF_EXISTS_OR_ADD'
  | 'OVERWRITE_IF_EXISTS';
export interface HeaderValueOption {
  header: HeaderValue | null;
  /** Deprecated; use append_action. */
  append: BoolValue | null;
  append_action: HeaderAppendAction;
  keep_empty_value: boolean;
}
export interface HeaderMap {
  headers: HeaderValue[];
}
export interface Pipe {
  path: string;
  mode: number;
}
export type EnvoyInternalAddress = { endpoint_id: string } & OneOf<'address_name_specifier', { server_listener_name: string }>;
export type SocketProtocol = 'TCP' | 'UDP';
export type SocketAddress = {
  protocol: SocketProtocol;
  address: string;
  resolver_name: string;
  ipv4_compat: boolean;
  network_namespace_filepath: string;
} & OneOf<'port_specifier', { port_value: number; named_port: string }>;
export type Address = OneOf<
  'address',
  { socket_address: SocketAddress; pipe: Pipe; envoy_internal_address: EnvoyInternalAddress }
>;

// ---------------------------------------------------------------------------------------------------------------
// envoy.service.auth.v3 (ext_authz)

export interface AttributeContextPeer {
  address: Address | null;
  service: string;
  labels: Record<string, string>;
  /** With mTLS: the client certificate's URI SAN (a SPIFFE id in a mesh). */
  principal: string;
  /** URL-encoded PEM; only with include_peer_certificate. */
  certificate: string;
}
export interface AttributeContextHttpRequest {
  id: string;
  method: string;
  /** Lower-case names, pseudo-headers included. Empty when Envoy sends `header_map` instead. */
  headers: Record<string, string>;
  header_map: HeaderMap | null;
  path: string;
  host: string;
  scheme: string;
  query: string;
  fragment: string;
  size: number;
  protocol: string;
  body: string;
  raw_body: Buffer;
}
export interface AttributeContextRequest {
  time: Timestamp | null;
  http: AttributeContextHttpRequest | null;
}
export interface AttributeContextTlsSession {
  sni: string;
}
export interface AttributeContext {
  source: AttributeContextPeer | null;
  destination: AttributeContextPeer | null;
  request: AttributeContextRequest | null;
  context_extensions: Record<string, string>;
  metadata_context: Metadata | null;
  route_metadata_context: Metadata | null;
  tls_session: AttributeContextTlsSession | null;
}
export interface CheckRequest {
  attributes: AttributeContext | null;
}
export interface DeniedHttpResponse {
  status: HttpStatus | null;
  /** Header values go in `header.value`. */
  headers: HeaderValueOption[];
  body: string;
}
export interface OkHttpResponse {
  /** Added to the upstream request; values in `header.value`. */
  headers: HeaderValueOption[];
  headers_to_remove: string[];
  /** Deprecated: use CheckResponse.dynamic_metadata. */
  dynamic_metadata: Struct | null;
  response_headers_to_add: HeaderValueOption[];
  query_parameters_to_set: QueryParameter[];
  query_parameters_to_remove: string[];
}
export type CheckResponse = {
  /** code 0 allows, anything else denies. */
  status: RpcStatus | null;
  dynamic_metadata: Struct | null;
} & OneOf<
  'http_response',
  { denied_response: DeniedHttpResponse; ok_response: OkHttpResponse; error_response: DeniedHttpResponse }
>;

// ---------------------------------------------------------------------------------------------------------------
// envoy.extensions.filters.http.ext_proc.v3

export type HeaderSendMode = 'DEFAULT' | 'SEND' | 'SKIP';
export type BodySendMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED' | 'GRPC';
export interface ProcessingMode {
  request_header_mode: HeaderSendMode;
  response_header_mode: HeaderSendMode;
  request_body_mode: BodySendMode;
  response_body_mode: BodySendMode;
  request_trailer_mode: HeaderSendMode;
  response_trailer_mode: HeaderSendMode;
}

// ---------------------------------------------------------------------------------------------------------------
// envoy.service.ext_proc.v3 (HTTP ext_proc)

export interface ProtocolConfiguration {
  request_body_mode: BodySendMode;
  response_body_mode: BodySendMode;
  send_body_without_waiting_for_header_response: boolean;
}
export interface FlowControlInit {
  initial_window_downstream_to_sidestream: number;
  initial_window_sidestream_to_upstream: number;
  initial_window_upstream_to_sidestream: number;
  initial_window_sidestream_to_downstream: number;
}
export interface ClientWindowUpdate {
  window_increment_sidestream_to_upstream: number;
  window_increment_sidestream_to_downstream: number;
}
export interface ServerWindowUpdate {
  window_increment_downstream_to_sidestream: number;
  window_increment_upstream_to_sidestream: number;
}
export interface HttpHeaders {
  /** Values are in `raw_value`. */
  headers: HeaderMap | null;
  /** Deprecated and unused by Envoy: see ProcessingRequest.attributes. */
  attributes: Record<string, Struct>;
  end_of_stream: boolean;
}
export interface HttpBody {
  body: Buffer;
  end_of_stream: boolean;
  end_of_stream_without_message: boolean;
  grpc_message_compressed: boolean;
  drain_complete: boolean;
}
export interface HttpTrailers {
  trailers: HeaderMap | null;
}
export type ProcessingRequest = {
  metadata_context: Metadata | null;
  attributes: Record<string, Struct>;
  observability_mode: boolean;
  /** First message of a stream only. */
  protocol_config: ProtocolConfiguration | null;
  flow_control_init: FlowControlInit | null;
  client_window_update: ClientWindowUpdate | null;
} & OneOf<
  'request',
  {
    request_headers: HttpHeaders;
    response_headers: HttpHeaders;
    request_body: HttpBody;
    response_body: HttpBody;
    request_trailers: HttpTrailers;
    response_trailers: HttpTrailers;
  }
>;
export type ProcessingRequestKind = NonNullable<ProcessingRequest['request']>;

export interface HeaderMutation {
  /** Values go in `header.raw_value`. */
  set_headers: HeaderValueOption[];
  remove_headers: string[];
}
/** The body reply in FULL_DUPLEX_STREAMED (and GRPC) body modes. */
export interface StreamedBodyResponse {
  body: Buffer;
  end_of_stream: boolean;
  end_of_stream_without_message: boolean;
  grpc_message_compressed: boolean;
  drain_complete: boolean;
}
export type BodyMutation = OneOf<
  'mutation',
  { body: Buffer; clear_body: boolean; streamed_response: StreamedBodyResponse }
>;
export type ResponseStatus = 'CONTINUE' | 'CONTINUE_AND_REPLACE';
export interface CommonResponse {
  status: ResponseStatus;
  header_mutation: HeaderMutation | null;
  body_mutation: BodyMutation | null;
  trailers: HeaderMap | null;
  clear_route_cache: boolean;
}
export interface HeadersResponse {
  response: CommonResponse | null;
}
export interface BodyResponse {
  response: CommonResponse | null;
}
export interface TrailersResponse {
  header_mutation: HeaderMutation | null;
}
export interface GrpcStatus {
  status: number;
}
export interface ImmediateResponse {
  status: HttpStatus | null;
  headers: HeaderMutation | null;
  body: Buffer;
  grpc_status: GrpcStatus | null;
  details: string;
}
export type StreamedImmediateResponse = OneOf<
  'response',
  { headers_response: HttpHeaders; body_response: StreamedBodyResponse; trailers_response: HeaderMap }
>;
export type ProcessingResponse = {
  dynamic_metadata: Struct | null;
  typed_dynamic_metadata: Record<string, Any>;
  mode_override: ProcessingMode | null;
  request_drain: boolean;
  request_drain_requests: boolean;
  request_drain_responses: boolean;
  /** Honoured only with max_message_timeout in the filter config. */
  override_message_timeout: Duration | null;
  server_window_update: ServerWindowUpdate | null;
} & OneOf<
  'response',
  {
    request_headers: HeadersResponse;
    response_headers: HeadersResponse;
    request_body: BodyResponse;
    response_body: BodyResponse;
    request_trailers: TrailersResponse;
    response_trailers: TrailersResponse;
    immediate_response: ImmediateResponse;
    streamed_immediate_response: StreamedImmediateResponse;
  }
>;

// ---------------------------------------------------------------------------------------------------------------
// envoy.service.network_ext_proc.v3 (network ext_proc, as in Envoy 1.40: no oneof)

export interface NetworkData {
  data: Buffer;
  end_of_stream: boolean;
}
export interface NetworkProcessingRequest {
  /** Client -> upstream bytes. */
  read_data: NetworkData | null;
  /** Upstream -> client bytes. */
  write_data: NetworkData | null;
  metadata: Metadata | null;
  /** `attributes["envoy.filters.network.ext_proc"]`, first message only, when connection_attributes asks. */
  attributes: Record<string, Struct>;
}
export type DataProcessedStatus = 'UNKNOWN' | 'UNMODIFIED' | 'MODIFIED';
export type ConnectionStatus = 'CONTINUE' | 'CLOSE' | 'CLOSE_RST';
export interface NetworkProcessingResponse {
  /** Replaces the client -> upstream bytes; an empty Data holds them back. */
  read_data: NetworkData | null;
  /** Replaces the upstream -> client bytes, or answers the client directly. */
  write_data: NetworkData | null;
  /** Ignored by Envoy 1.40. */
  data_processing_status: DataProcessedStatus;
  /** CLOSE/CLOSE_RST discard data in the same reply: send data first. */
  connection_status: ConnectionStatus;
  dynamic_metadata: Struct | null;
  close_stream_to_ext_proc_server: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// grpc.health.v1

export interface HealthCheckRequest {
  service: string;
}
export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
export interface HealthCheckResponse {
  status: ServingStatus;
}

// ---------------------------------------------------------------------------------------------------------------
// Service definitions

/** A method definition whose (de)serializers are typed with the shapes above. */
export interface TypedMethodDefinition<Req, Res> extends grpc.MethodDefinition<any, any> {
  requestSerialize: (value: Encodable<Req>) => Buffer;
  requestDeserialize: (bytes: Buffer) => Req;
  responseSerialize: (value: Encodable<Res>) => Buffer;
  responseDeserialize: (bytes: Buffer) => Res;
}

export interface AuthorizationService extends grpc.ServiceDefinition {
  readonly Check: TypedMethodDefinition<CheckRequest, CheckResponse>;
}
export interface ExternalProcessorService extends grpc.ServiceDefinition {
  readonly Process: TypedMethodDefinition<ProcessingRequest, ProcessingResponse>;
}
export interface NetworkExternalProcessorService extends grpc.ServiceDefinition {
  readonly Process: TypedMethodDefinition<NetworkProcessingRequest, NetworkProcessingResponse>;
}
export interface HealthService extends grpc.ServiceDefinition {
  readonly Check: TypedMethodDefinition<HealthCheckRequest, HealthCheckResponse>;
  readonly Watch: TypedMethodDefinition<HealthCheckRequest, HealthCheckResponse>;
}

/** Implementations for `server.addService(authorizationService, handlers)`. */
export interface AuthorizationHandlers extends grpc.UntypedServiceImplementation {
  Check: grpc.handleUnaryCall<CheckRequest, Encodable<CheckResponse>>;
}
export interface ExternalProcessorHandlers extends grpc.UntypedServiceImplementation {
  Process: grpc.handleBidiStreamingCall<ProcessingRequest, Encodable<ProcessingResponse>>;
}
export interface NetworkExternalProcessorHandlers extends grpc.UntypedServiceImplementation {
  Process: grpc.handleBidiStreamingCall<NetworkProcessingRequest, Encodable<NetworkProcessingResponse>>;
}
export interface HealthHandlers extends grpc.UntypedServiceImplementation {
  Check: grpc.handleUnaryCall<HealthCheckRequest, Encodable<HealthCheckResponse>>;
  Watch: grpc.handleServerStreamingCall<HealthCheckRequest, Encodable<HealthCheckResponse>>;
}

// ---------------------------------------------------------------------------------------------------------------
// Loading

export const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');

/** The service files; their imports (core types, google.rpc, ...) are found through PROTO_DIR. */
export const SERVICE_PROTO_FILES: readonly string[] = [
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/service/ext_proc/v3/external_processor.proto',
  'envoy/service/network_ext_proc/v3/network_external_processor.proto',
  'grpc/health/v1/health.proto',
];

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export const SERVICE_NAMES = {
  authorization: 'envoy.service.auth.v3.Authorization',
  externalProcessor: 'envoy.service.ext_proc.v3.ExternalProcessor',
  networkExternalProcessor: 'envoy.service.network_ext_proc.v3.NetworkExternalProcessor',
  health: 'grpc.health.v1.Health',
} as const;

let cached: protoLoader.PackageDefinition | undefined;

/** The package definition of all of the above, loaded on first use and then reused. */
export function packageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync([...SERVICE_PROTO_FILES], LOADER_OPTIONS);
  return cached;
}

function service<T extends grpc.ServiceDefinition>(fullName: string): T {
  const def = packageDefinition()[fullName];
  if (!def || 'format' in def) throw new Error(`${fullName} is not a service in ${PROTO_DIR}`);
  return def as unknown as T;
}

export const authorizationService: AuthorizationService = service(SERVICE_NAMES.authorization);
export const externalProcessorService: ExternalProcessorService = service(SERVICE_NAMES.externalProcessor);
export const networkExternalProcessorService: NetworkExternalProcessorService = service(
  SERVICE_NAMES.networkExternalProcessor,
);
export const healthService: HealthService = service(SERVICE_NAMES.health);
