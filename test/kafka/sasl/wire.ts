/**
 * A raw Kafka connection for the SASL tests: node:net, size-prefixed frames, responses handed out in request order;
 * plus the few request builders and response readers those tests need, written from Kafka's message specs
 * (clients/src/main/resources/common/message/{ApiVersions,SaslHandshake,SaslAuthenticate,Metadata}*.json), not
 * from any codec under development:
 *
 * - ApiVersions v3 (key 18, flexible): request header v2, body client_software_name and _version (compact strings)
 *   + tagged fields; the response header is always v0 (no tagged fields, so old clients can read it); body
 *   error_code int16, api_keys compact array of (api_key, min_version, max_version int16 + tagged fields),
 *   throttle_time_ms int32, tagged fields.
 * - SaslHandshake v1 (key 17, never flexible): request header v1, body mechanism string; response header v0, body
 *   error_code int16, mechanisms array (int32 count) of string.
 * - SaslAuthenticate v2 (key 36, flexible): request header v2, body auth_bytes compact bytes + tagged fields;
 *   response header v1 (correlation id + tagged fields), body error_code int16, error_message compact nullable
 *   string, auth_bytes compact bytes, session_lifetime_ms int64, tagged fields.
 * - Metadata v1 (key 3): response header v0, body brokers array of (node_id int32, host string, port int32, rack
 *   nullable string), then the rest (not read).
 */
import net from 'node:net';
import { compactNullableString, nullableString, requestFrame, taggedFields, uvarint } from '../frames.ts';

export class KafkaWire {
  readonly #socket: net.Socket;
  #buffered = Buffer.alloc(0);
  readonly #waiting: Array<{ resolve: (frame: Buffer) => void; reject: (err: Error) => void }> = [];
  #closed: Error | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#onClose(err));
    socket.on('close', () => this.#onClose(new Error('connection closed by the broker')));
  }

  static connect(host: string, port: number): Promise<KafkaWire> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => {
        socket.off('error', reject);
        resolve(new KafkaWire(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends a whole request frame and resolves with the body of its response frame (size prefix removed). */
  request(frame: Buffer, timeoutMs = 10_000): Promise<Buffer> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
      this.#waiting.push({
        resolve: (body) => {
          clearTimeout(timer);
          resolve(body);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.#socket.write(frame);
    });
  }

  /** Resolves once the broker has closed the connection (at once if it already has). */
  closed(timeoutMs = 10_000): Promise<void> {
    if (this.#closed !== undefined || this.#socket.destroyed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the broker kept the connection open past ${timeoutMs} ms`)), timeoutMs);
      this.#socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffered = Buffer.concat([this.#buffered, chunk]);
    while (this.#buffered.length >= 4) {
      const size = this.#buffered.readInt32BE(0);
      if (this.#buffered.length < 4 + size) return;
      const body = this.#buffered.subarray(4, 4 + size);
      this.#buffered = this.#buffered.subarray(4 + size);
      const waiter = this.#waiting.shift();
      if (waiter === undefined) throw new Error(`unexpected response frame of ${size} bytes`);
      waiter.resolve(Buffer.from(body));
    }
  }

  #onClose(err: Error): void {
    this.#closed ??= err;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(err);
  }
}

/** A small cursor over a response body. */
export class Cursor {
  readonly #buf: Buffer;
  offset = 0;

  constructor(buf: Buffer) {
    this.#buf = buf;
  }

  int16(): number {
    const v = this.#buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(): number {
    const v = this.#buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  int64(): bigint {
    const v = this.#buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  uvarint(): number {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = this.#buf[this.offset++];
      if (byte === undefined) throw new Error('varint runs past the end');
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
  }

  bytes(length: number): Buffer {
    if (this.offset + length > this.#buf.length) throw new Error(`${length} bytes at ${this.offset} run past the end (${this.#buf.length})`);
    const v = this.#buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return v;
  }

  string(): string | null {
    const length = this.int16();
    return length < 0 ? null : this.bytes(length).toString('utf8');
  }

  compactString(): string | null {
    const n = this.uvarint();
    return n === 0 ? null : this.bytes(n - 1).toString('utf8');
  }

  compactBytes(): Buffer | null {
    const n = this.uvarint();
    return n === 0 ? null : Buffer.from(this.bytes(n - 1));
  }

  skipTaggedFields(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint();
      this.bytes(this.uvarint());
    }
  }

  get remaining(): number {
    return this.#buf.length - this.offset;
  }
}

export function apiVersionsRequest(correlationId: number): Buffer {
  return requestFrame({
    apiKey: 18, apiVersion: 3, correlationId, headerVersion: 2, clientId: 'sasl-test',
    body: Buffer.concat([compactNullableString('tollgate-sasl-test'), compactNullableString('0.1.0'), taggedFields()]),
  });
}

export interface ApiVersionsResponse {
  readonly correlationId: number;
  readonly errorCode: number;
  readonly versions: ReadonlyMap<number, readonly [number, number]>;
}

export function readApiVersionsResponse(body: Buffer): ApiVersionsResponse {
  const c = new Cursor(body);
  const correlationId = c.int32();
  const errorCode = c.int16();
  const versions = new Map<number, readonly [number, number]>();
  const count = c.uvarint() - 1;
  for (let i = 0; i < count; i++) {
    const key = c.int16();
    versions.set(key, [c.int16(), c.int16()]);
    c.skipTaggedFields();
  }
  return { correlationId, errorCode, versions };
}

export function saslHandshakeRequest(correlationId: number, mechanism: string): Buffer {
  return requestFrame({ apiKey: 17, apiVersion: 1, correlationId, clientId: 'sasl-test', body: nullableString(mechanism) });
}

export interface SaslHandshakeResponse {
  readonly correlationId: number;
  readonly errorCode: number;
  readonly mechanisms: readonly string[];
}

export function readSaslHandshakeResponse(body: Buffer): SaslHandshakeResponse {
  const c = new Cursor(body);
  const correlationId = c.int32();
  const errorCode = c.int16();
  const mechanisms: string[] = [];
  const count = c.int32();
  for (let i = 0; i < count; i++) mechanisms.push(c.string()!);
  if (c.remaining !== 0) throw new Error(`${c.remaining} bytes left after SaslHandshake v1 response`);
  return { correlationId, errorCode, mechanisms };
}

export function saslAuthenticateRequest(correlationId: number, authBytes: Buffer): Buffer {
  return requestFrame({
    apiKey: 36, apiVersion: 2, correlationId, headerVersion: 2, clientId: 'sasl-test',
    body: Buffer.concat([uvarint(authBytes.length + 1), authBytes, taggedFields()]),
  });
}

export interface SaslAuthenticateResponse {
  readonly correlationId: number;
  readonly errorCode: number;
  readonly errorMessage: string | null;
  readonly authBytes: Buffer;
  readonly sessionLifetimeMs: bigint;
}

export function readSaslAuthenticateResponse(body: Buffer): SaslAuthenticateResponse {
  const c = new Cursor(body);
  const correlationId = c.int32();
  c.skipTaggedFields();
  const errorCode = c.int16();
  const errorMessage = c.compactString();
  const authBytes = c.compactBytes() ?? Buffer.alloc(0);
  const sessionLifetimeMs = c.int64();
  c.skipTaggedFields();
  if (c.remaining !== 0) throw new Error(`${c.remaining} bytes left after SaslAuthenticate v2 response`);
  return { correlationId, errorCode, errorMessage, authBytes, sessionLifetimeMs };
}

export interface MetadataBroker {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

/** The correlation id and the brokers of a Metadata v1 response. */
export function readMetadataV1Brokers(body: Buffer): { correlationId: number; brokers: MetadataBroker[] } {
  const c = new Cursor(body);
  const correlationId = c.int32();
  const brokers: MetadataBroker[] = [];
  const count = c.int32();
  for (let i = 0; i < count; i++) {
    const nodeId = c.int32();
    const host = c.string()!;
    const port = c.int32();
    c.string(); // rack
    brokers.push({ nodeId, host, port });
  }
  return { correlationId, brokers };
}
