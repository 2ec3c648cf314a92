/**
 * @module kafka/client/connection
 * One connection from tollgate to a broker as a Kafka client of its own (the audit sink's producer, the audit
 * replay's topic reader): TCP or TLS, ApiVersions to agree on versions, SASL PLAIN or SCRAM with tollgate's SASL
 * clients, then requests answered in correlation order, each with a timeout. Built on the same generated codecs
 * and framing the data path uses, so no second Kafka implementation is shipped.
 *
 * A request that times out or a socket that fails rejects every request pending on the connection and closes it:
 * the caller reconnects (a Kafka connection's state after a lost response is unknown).
 */
import net from 'node:net';
import tls from 'node:tls';
import { API_KEY, apiKeyName } from '../protocol/api-keys.ts';
import { KafkaError, kafkaErrorName } from '../protocol/error-codes.ts';
import { FrameReassembler } from '../protocol/framing.ts';
import type { KnownApiKey, ResponseBodies } from '../protocol/generated/index.ts';
import { readResponseCorrelationId } from '../protocol/header.ts';
import { decodeResponse, encodeRequest } from '../protocol/messages.ts';
import { encodePlain } from '../sasl/plain.ts';
import { ScramClient } from '../sasl/scram.ts';

export type ClientSaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

export interface KafkaClientOptions {
  readonly clientId: string;
  readonly sasl?: { readonly mechanism: ClientSaslMechanism; readonly username: string; readonly password: string };
  /** TLS options (CA, client certificate, server name); absent: plaintext. */
  readonly tls?: tls.ConnectionOptions;
  /** Per request, and for connecting. */
  readonly timeoutMs: number;
  /** Largest response accepted. Default 256 MiB. */
  readonly maxResponseBytes?: number;
}

/** A failure a retry may cure: the broker unreachable, a connection lost, a request unanswered. */
export class KafkaClientError extends Error {
  override name = 'KafkaClientError';
}

interface Pending {
  readonly apiKey: number;
  readonly version: number;
  readonly resolve: (frame: Buffer) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const APIVERSIONS_VERSION = 3;

export class BrokerConnection {
  readonly address: string;
  readonly #socket: net.Socket;
  readonly #options: KafkaClientOptions;
  readonly #pending = new Map<number, Pending>();
  readonly #reassembler: FrameReassembler;
  #nextCorrelationId = 1;
  #versions = new Map<number, { min: number; max: number }>();
  #failure: Error | undefined;

  private constructor(socket: net.Socket, address: string, options: KafkaClientOptions) {
    this.#socket = socket;
    this.address = address;
    this.#options = options;
    this.#reassembler = new FrameReassembler({ maxFrameBytes: options.maxResponseBytes ?? 256 * 1024 * 1024 });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(new KafkaClientError(`connection to ${address} failed: ${err.message}`)));
    socket.on('close', () => this.#fail(new KafkaClientError(`connection to ${address} closed`)));
  }

  /** Connects, agrees on versions and authenticates. */
  static async connect(host: string, port: number, options: KafkaClientOptions): Promise<BrokerConnection> {
    const address = `${host}:${port}`;
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = options.tls !== undefined
        ? tls.connect({ host, port, servername: net.isIP(host) === 0 ? host : undefined, ...options.tls })
        : net.connect({ host, port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new KafkaClientError(`cannot connect to ${address}: no answer within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
      s.once(options.tls !== undefined ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new KafkaClientError(`cannot connect to ${address}: ${err.message}`));
      });
    });
    socket.setNoDelay(true);
    const connection = new BrokerConnection(socket, address, options);
    try {
      await connection.#negotiate();
      if (options.sasl !== undefined) await connection.#authenticate(options.sasl);
    } catch (err) {
      connection.close();
      throw err;
    }
    return connection;
  }

  get closed(): boolean {
    return this.#failure !== undefined;
  }

  /** The highest version of `apiKey` both sides speak within [min, max]; throws when there is none. */
  version(apiKey: number, min: number, max: number): number {
    const broker = this.#versions.get(apiKey);
    const version = Math.min(max, broker?.max ?? -1);
    if (broker === undefined || version < Math.max(min, broker.min)) {
      throw new Error(`broker ${this.address} does not speak ${apiKeyName(apiKey)} versions ${min}-${max}${broker === undefined ? '' : ` (it speaks ${broker.min}-${broker.max})`}`);
    }
    return version;
  }

  /** Sends a request and resolves with its decoded response body. */
  async request<K extends KnownApiKey>(apiKey: K, version: number, body: unknown): Promise<ResponseBodies[K]> {
    const frame = await this.#send(apiKey, version, body);
    return decodeResponse(frame, apiKey, version).body as ResponseBodies[K];
  }

  close(): void {
    this.#fail(new KafkaClientError(`connection to ${this.address} closed by tollgate`));
  }

  #send(apiKey: number, version: number, body: unknown): Promise<Buffer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const correlationId = this.#nextCorrelationId;
    this.#nextCorrelationId = this.#nextCorrelationId === 0x7fffffff ? 1 : this.#nextCorrelationId + 1;
    const frame = encodeRequest({ apiKey, apiVersion: version, correlationId, clientId: this.#options.clientId, taggedFields: [] }, body);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(new KafkaClientError(`${apiKeyName(apiKey)} to ${this.address} got no answer within ${this.#options.timeoutMs} ms`));
      }, this.#options.timeoutMs);
      this.#pending.set(correlationId, { apiKey, version, resolve, reject, timer });
      this.#socket.write(frame);
    });
  }

  #onData(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.#reassembler.push(chunk);
    } catch (err) {
      this.#fail(new KafkaClientError(`unreadable bytes from ${this.address}: ${(err as Error).message}`));
      return;
    }
    for (const frame of frames) {
      const correlationId = readResponseCorrelationId(frame);
      const pending = this.#pending.get(correlationId);
      if (pending === undefined) {
        this.#fail(new KafkaClientError(`${this.address} answered correlation id ${correlationId}, which no request here has`));
        return;
      }
      this.#pending.delete(correlationId);
      clearTimeout(pending.timer);
      pending.resolve(frame);
    }
  }

  #fail(error: Error): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
    this.#socket.destroy();
  }

  async #negotiate(): Promise<void> {
    let response = await this.request(API_KEY.ApiVersions, APIVERSIONS_VERSION, { clientSoftwareName: 'tollgate', clientSoftwareVersion: '1' });
    // A broker older than the version asked answers UNSUPPORTED_VERSION in v0; v0 it speaks.
    if (response.errorCode === KafkaError.UNSUPPORTED_VERSION) response = await this.request(API_KEY.ApiVersions, 0, {});
    if (response.errorCode !== KafkaError.NONE) throw new KafkaClientError(`ApiVersions to ${this.address} failed: ${kafkaErrorName(response.errorCode)}`);
    this.#versions = new Map(response.apiKeys.map((k) => [k.apiKey, { min: k.minVersion, max: k.maxVersion }]));
  }

  async #authenticate(sasl: NonNullable<KafkaClientOptions['sasl']>): Promise<void> {
    const handshake = await this.request(API_KEY.SaslHandshake, this.version(API_KEY.SaslHandshake, 1, 1), { mechanism: sasl.mechanism });
    if (handshake.errorCode !== KafkaError.NONE) {
      throw new Error(`broker ${this.address} refused SASL mechanism ${sasl.mechanism} (${kafkaErrorName(handshake.errorCode)}); it offers ${handshake.mechanisms.join(', ') || 'none'}`);
    }
    const version = this.version(API_KEY.SaslAuthenticate, 0, 2);
    const round = async (authBytes: Buffer): Promise<Buffer> => {
      const response = await this.request(API_KEY.SaslAuthenticate, version, { authBytes });
      if (response.errorCode !== KafkaError.NONE) {
        throw new Error(`broker ${this.address} refused the credentials of ${sasl.username} (${sasl.mechanism}): ${kafkaErrorName(response.errorCode)}${response.errorMessage === null ? '' : `: ${response.errorMessage}`}`);
      }
      return response.authBytes;
    };
    if (sasl.mechanism === 'PLAIN') {
      await round(encodePlain({ username: sasl.username, password: sasl.password }));
      return;
    }
    const scram = new ScramClient({ mechanism: sasl.mechanism, username: sasl.username, password: sasl.password });
    const serverFirst = await round(scram.clientFirstMessage());
    const serverFinal = await round(scram.handleServerFirst(serverFirst));
    scram.handleServerFinal(serverFinal);
  }
}
