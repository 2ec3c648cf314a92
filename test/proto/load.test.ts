/**
 * Smoke test of src/grpc/protos.ts: the service definitions load, and messages survive the definitions' own
 * serialize/deserialize functions with the shapes the handlers rely on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  authorizationService,
  externalProcessorService,
  healthService,
  networkExternalProcessorService,
  packageDefinition,
  type Encodable,
  type ProcessingRequest,
  type ProcessingResponse,
  type Struct,
} from '../../src/grpc/protos.ts';

test('the package definition is loaded once', () => {
  assert.equal(packageDefinition(), packageDefinition());
});

test('service definitions have the paths and streaming flags Envoy calls', () => {
  const methods = {
    Check: authorizationService.Check,
    Process: externalProcessorService.Process,
    NetworkProcess: networkExternalProcessorService.Process,
    HealthCheck: healthService.Check,
    HealthWatch: healthService.Watch,
  };
  const shape = Object.fromEntries(
    Object.entries(methods).map(([k, m]) => [k, [m.path, m.requestStream, m.responseStream]]),
  );
  assert.deepEqual(shape, {
    Check: ['/envoy.service.auth.v3.Authorization/Check', false, false],
    Process: ['/envoy.service.ext_proc.v3.ExternalProcessor/Process', true, true],
    NetworkProcess: ['/envoy.service.network_ext_proc.v3.NetworkExternalProcessor/Process', true, true],
    HealthCheck: ['/grpc.health.v1.Health/Check', false, false],
    HealthWatch: ['/grpc.health.v1.Health/Watch', false, true],
  });
  assert.deepEqual(Object.keys(authorizationService), ['Check']);
  assert.deepEqual(Object.keys(healthService).sort(), ['Check', 'Watch']);
});

test('ext_proc ProcessingResponse: streamed body, dynamic metadata Struct, timeout override', () => {
  const m = externalProcessorService.Process;
  const metadata: Encodable<Struct> = {
    fields: {
      'tollgate.masking': {
        structValue: { fields: { masked: { numberValue: 3 }, rule: { stringValue: 'pii' }, partial: { boolValue: true } } },
      },
    },
  };
  const bytes = m.responseSerialize({
    response_body: {
      response: { body_mutation: { streamed_response: { body: Buffer.from('{"ok":1}\n'), end_of_stream: true } } },
    },
    dynamic_metadata: metadata,
    override_message_timeout: { seconds: 25 },
  });
  const decoded = m.responseDeserialize(bytes);
  assert.equal(decoded.response, 'response_body');
  const mutation = decoded.response_body?.response?.body_mutation;
  assert.equal(mutation?.mutation, 'streamed_response');
  assert.ok(Buffer.isBuffer(mutation?.streamed_response?.body));
  assert.equal(mutation?.streamed_response?.body.toString(), '{"ok":1}\n');
  assert.equal(mutation?.streamed_response?.end_of_stream, true);
  assert.equal(decoded.response_body?.response?.status, 'CONTINUE');
  assert.equal(decoded.response_body?.response?.header_mutation, null);
  assert.equal(decoded.request_headers, undefined, 'unset oneof members are absent');
  assert.deepEqual(decoded.override_message_timeout, { seconds: 25, nanos: 0 });
  assert.equal(decoded.mode_override, null);
  const inner = decoded.dynamic_metadata?.fields['tollgate.masking'];
  assert.equal(inner?.kind, 'structValue');
  assert.deepEqual(inner?.structValue?.fields['masked'], { kind: 'numberValue', numberValue: 3 });
  assert.deepEqual(inner?.structValue?.fields['rule'], { kind: 'stringValue', stringValue: 'pii' });
  assert.deepEqual(inner?.structValue?.fields['partial'], { kind: 'boolValue', boolValue: true });
});

test('ext_proc ProcessingResponse: immediate response and header mutation with raw_value', () => {
  const m = externalProcessorService.Process;
  const decoded: ProcessingResponse = m.responseDeserialize(
    m.responseSerialize({
      immediate_response: {
        status: { code: 'Forbidden' },
        headers: {
          set_headers: [{ header: { key: 'content-type', raw_value: Buffer.from('application/json') }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        },
        body: Buffer.from('{"error":"denied"}'),
        details: 'tollgate_denied',
      },
    }),
  );
  assert.equal(decoded.response, 'immediate_response');
  const ir = decoded.immediate_response;
  assert.equal(ir?.status?.code, 'Forbidden');
  const header = ir?.headers?.set_headers[0];
  assert.equal(header?.header?.key, 'content-type');
  assert.equal(header?.header?.raw_value.toString(), 'application/json');
  assert.equal(header?.header?.value, '');
  assert.equal(header?.append_action, 'OVERWRITE_IF_EXISTS_OR_ADD');
  assert.equal(header?.append, null);
  assert.equal(ir?.body.toString(), '{"error":"denied"}');
  assert.equal(ir?.details, 'tollgate_denied');
});

test('ext_proc ProcessingRequest: oneof discriminator, headers in raw_value, attributes, protocol_config', () => {
  const m = externalProcessorService.Process;
  const decoded: ProcessingRequest = m.requestDeserialize(
    m.requestSerialize({
      request_headers: {
        headers: { headers: [{ key: ':path', raw_value: Buffer.from('/api/v1/pods') }] },
        end_of_stream: true,
      },
      attributes: { 'envoy.filters.http.ext_proc': { fields: { 'request.id': { stringValue: 'r-1' } } } },
      protocol_config: { response_body_mode: 'FULL_DUPLEX_STREAMED' },
      metadata_context: {
        filter_metadata: { 'envoy.filters.http.ext_authz': { fields: { subject: { stringValue: 'alice' } } } },
      },
    }),
  );
  assert.equal(decoded.request, 'request_headers');
  assert.equal(decoded.request_headers?.end_of_stream, true);
  assert.equal(decoded.request_headers?.headers?.headers[0]?.raw_value.toString(), '/api/v1/pods');
  assert.equal(decoded.attributes['envoy.filters.http.ext_proc']?.fields['request.id']?.stringValue, 'r-1');
  assert.equal(decoded.protocol_config?.response_body_mode, 'FULL_DUPLEX_STREAMED');
  assert.equal(decoded.protocol_config?.request_body_mode, 'NONE');
  assert.equal(
    decoded.metadata_context?.filter_metadata['envoy.filters.http.ext_authz']?.fields['subject']?.stringValue,
    'alice',
  );
  assert.equal(decoded.flow_control_init, null);
  assert.equal(decoded.observability_mode, false);
});

test('network ProcessingResponse: an empty read_data keeps its presence; CLOSE', () => {
  const m = networkExternalProcessorService.Process;
  const held = m.responseSerialize({ read_data: { data: Buffer.alloc(0) } });
  // Field 1 (read_data) is on the wire: a Data holding an explicitly empty `data` (protobufjs writes the bytes
  // field because it was given; Envoy reads it as empty either way).
  assert.deepEqual([...held], [0x0a, 0x02, 0x0a, 0x00]);
  assert.deepEqual([...m.responseSerialize({ read_data: {} })], [0x0a, 0x00]);
  const heldDecoded = m.responseDeserialize(held);
  assert.ok(heldDecoded.read_data, 'read_data present');
  assert.equal(heldDecoded.read_data.data.length, 0);
  assert.equal(heldDecoded.read_data.end_of_stream, false);
  assert.equal(heldDecoded.write_data, null);

  const absent = m.responseDeserialize(m.responseSerialize({}));
  assert.equal(absent.read_data, null);

  const close = m.responseDeserialize(
    m.responseSerialize({ write_data: { data: Buffer.from([1, 2, 3]), end_of_stream: true }, connection_status: 'CLOSE' }),
  );
  assert.equal(close.connection_status, 'CLOSE');
  assert.equal(close.data_processing_status, 'UNKNOWN');
  assert.deepEqual([...(close.write_data?.data ?? [])], [1, 2, 3]);
  assert.equal(close.write_data?.end_of_stream, true);
  assert.equal(m.responseDeserialize(m.responseSerialize({ connection_status: 'CLOSE_RST' })).connection_status, 'CLOSE_RST');
});

test('network ProcessingRequest: data, metadata and connection attributes', () => {
  const m = networkExternalProcessorService.Process;
  const decoded = m.requestDeserialize(
    m.requestSerialize({
      read_data: { data: Buffer.from('kafka'), end_of_stream: false },
      attributes: {
        'envoy.filters.network.ext_proc': { fields: { 'source.port': { numberValue: 40000 } } },
      },
    }),
  );
  assert.equal(decoded.read_data?.data.toString(), 'kafka');
  assert.equal(decoded.write_data, null);
  assert.equal(decoded.metadata, null);
  assert.equal(decoded.attributes['envoy.filters.network.ext_proc']?.fields['source.port']?.numberValue, 40000);
});

test('ext_authz CheckResponse: ok with header changes and metadata; denied with status and body', () => {
  const m = authorizationService.Check;
  const ok = m.responseDeserialize(
    m.responseSerialize({
      status: { code: 0 },
      ok_response: {
        headers: [{ header: { key: 'x-tollgate-subject', value: 'alice' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        headers_to_remove: ['authorization'],
        response_headers_to_add: [{ header: { key: 'x-tollgate', value: 'allowed' } }],
        query_parameters_to_set: [{ key: 'a', value: 'b' }],
      },
      dynamic_metadata: {
        fields: {
          principal: { structValue: { fields: { subject: { stringValue: 'alice' }, groups: { listValue: { values: [{ stringValue: 'sre' }] } } } } },
        },
      },
    }),
  );
  assert.equal(ok.http_response, 'ok_response');
  assert.equal(ok.status?.code, 0);
  assert.equal(ok.ok_response?.headers[0]?.header?.value, 'alice');
  assert.equal(ok.ok_response?.headers[0]?.header?.raw_value.length, 0);
  assert.deepEqual(ok.ok_response?.headers_to_remove, ['authorization']);
  assert.equal(ok.ok_response?.response_headers_to_add[0]?.append_action, 'APPEND_IF_EXISTS_OR_ADD');
  assert.deepEqual(ok.ok_response?.query_parameters_to_set, [{ key: 'a', value: 'b' }]);
  const principal = ok.dynamic_metadata?.fields['principal']?.structValue;
  assert.equal(principal?.fields['subject']?.stringValue, 'alice');
  assert.equal(principal?.fields['groups']?.listValue?.values[0]?.stringValue, 'sre');

  const denied = m.responseDeserialize(
    m.responseSerialize({
      status: { code: 7, message: 'denied by rule admin-only' },
      denied_response: {
        status: { code: 'Forbidden' },
        headers: [{ header: { key: 'content-type', value: 'application/json' } }],
        body: '{"error":"forbidden"}',
      },
    }),
  );
  assert.equal(denied.http_response, 'denied_response');
  assert.equal(denied.status?.code, 7);
  assert.equal(denied.status?.message, 'denied by rule admin-only');
  assert.equal(denied.denied_response?.status?.code, 'Forbidden');
  assert.equal(denied.denied_response?.body, '{"error":"forbidden"}');
  assert.equal(denied.ok_response, undefined);
});

test('ext_authz CheckRequest: peers, headers map, addresses, body', () => {
  const m = authorizationService.Check;
  const decoded = m.requestDeserialize(
    m.requestSerialize({
      attributes: {
        source: {
          address: { socket_address: { address: '10.0.0.7', port_value: 51234 } },
          principal: 'spiffe://cluster.local/ns/default/sa/client',
        },
        request: {
          http: {
            method: 'POST',
            path: '/api?x=1',
            host: 'api.test',
            headers: { ':path': '/api?x=1', authorization: 'Bearer t' },
            raw_body: Buffer.from('{}'),
            size: 2,
          },
        },
        context_extensions: { route: 'api' },
      },
    }),
  );
  const a = decoded.attributes;
  assert.equal(a?.source?.address?.address, 'socket_address');
  assert.equal(a?.source?.address?.socket_address?.address, '10.0.0.7');
  assert.equal(a?.source?.address?.socket_address?.port_value, 51234);
  assert.equal(a?.source?.address?.socket_address?.protocol, 'TCP');
  assert.equal(a?.source?.principal, 'spiffe://cluster.local/ns/default/sa/client');
  assert.equal(a?.destination, null);
  assert.equal(a?.request?.http?.headers['authorization'], 'Bearer t');
  assert.equal(a?.request?.http?.header_map, null);
  assert.equal(a?.request?.http?.raw_body.toString(), '{}');
  assert.equal(a?.request?.http?.size, 2);
  assert.deepEqual(a?.context_extensions, { route: 'api' });
});

test('health Check/Watch messages', () => {
  const m = healthService.Watch;
  assert.equal(m.requestDeserialize(m.requestSerialize({ service: 'tollgate' })).service, 'tollgate');
  assert.equal(m.responseDeserialize(m.responseSerialize({ status: 'SERVING' })).status, 'SERVING');
  assert.equal(healthService.Check.responseDeserialize(healthService.Check.responseSerialize({})).status, 'UNKNOWN');
});

test('gotcha: snake_case keys in a Struct value encode as an empty value', () => {
  const m = networkExternalProcessorService.Process;
  const wrong = { fields: { k: { string_value: 'x' } } } as unknown as Encodable<Struct>;
  const decoded = m.responseDeserialize(m.responseSerialize({ dynamic_metadata: wrong }));
  assert.deepEqual(decoded.dynamic_metadata?.fields['k'], {});
});

// Type-level checks (tsc --noEmit); never called.
export function typeChecks(): void {
  // @ts-expect-error Struct values use camelCase keys in JS.
  const snake: Encodable<Struct> = { fields: { k: { string_value: 'x' } } };
  // @ts-expect-error two members of one oneof.
  const both: Encodable<ProcessingResponse> = { request_body: {}, response_body: {} };
  // @ts-expect-error enum values are names.
  const badEnum: Encodable<ProcessingResponse> = { mode_override: { response_body_mode: 'FULL_DUPLEX' } };
  void [snake, both, badEnum];
}
