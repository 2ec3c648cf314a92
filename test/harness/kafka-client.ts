/**
 * Raw Kafka client pieces for end-to-end tests through Envoy and tollgate: a socket, a frame reader, and the SASL
 * OAUTHBEARER exchange (SaslHandshake v1 + SaslAuthenticate v2) built with tollgate's own codecs.
 */
import net from 'node:net';
import { decodeResponse, encodeRequest } from '../../src/kafka/protocol/messages.ts';
import { encodeOAuthBearerInitialResponse } from '../../src/kafka/sasl/oauthbearer.ts';
import { ZERO_UUID } from '../../src/kafka/protocol/codec/schema.ts';

export const RAW_CLIENT_ID = 'e2e-raw';

export function connectTo(address: string): Promise<net.Socket> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)) }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export interface FrameReader {
  /** The next whole frame (size prefix included); rejects after `ms`, or when the socket closes first. */
  next(ms?: number): Promise<Buffer>;
  /** Resolves once the socket closed, with every frame that arrived and was not taken by `next`. */
  readonly closed: Promise<Buffer[]>;
}

/** Reads whole frames off a socket. Attach it right after connecting (it consumes 'data'). */
export function frameReader(socket: net.Socket): FrameReader {
  let buffered = Buffer.alloc(0);
  const waiting: Array<{ resolve: (f: Buffer) => void; reject: (e: Error) => void }> = [];
  const frames: Buffer[] = [];
  let isClosed = false;
  const drain = () => {
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
      const size = 4 + buffered.readInt32BE(0);
      const frame = buffered.subarray(0, size);
      buffered = buffered.subarray(size);
      const w = waiting.shift();
      if (w) w.resolve(frame); else frames.push(frame);
    }
  };
  socket.on('data', (c: Buffer) => { buffered = Buffer.concat([buffered, c]); drain(); });
  socket.on('error', () => {});
  const closed = new Promise<Buffer[]>((resolve) => socket.once('close', () => {
    isClosed = true;
    for (const w of waiting.splice(0)) w.reject(new Error('the connection closed before the frame arrived'));
    resolve(frames);
  }));
  return {
    next: (ms = 10_000) => new Promise<Buffer>((resolve, reject) => {
      const f = frames.shift();
      if (f) return resolve(f);
      if (isClosed) return reject(new Error('the connection is closed'));
      const timer = setTimeout(() => reject(new Error(`no frame within ${ms} ms`)), ms);
      waiting.push({
        resolve: (frame) => { clearTimeout(timer); resolve(frame); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      });
    }),
    closed,
  };
}

/** Rejects if the socket is still open after `ms`. */
export function closedWithin<T>(closed: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connection still open after ${ms} ms`)), ms);
    closed.then((v) => { clearTimeout(timer); resolve(v); }, (e: unknown) => { clearTimeout(timer); reject(e as Error); });
  });
}

export function saslHandshakeRequest(correlationId: number, mechanism = 'OAUTHBEARER'): Buffer {
  return encodeRequest({ apiKey: 17, apiVersion: 1, correlationId, clientId: RAW_CLIENT_ID, taggedFields: [] }, { mechanism });
}

export function saslAuthenticateRequest(correlationId: number, token: string): Buffer {
  return encodeRequest({ apiKey: 36, apiVersion: 2, correlationId, clientId: RAW_CLIENT_ID, taggedFields: [] }, {
    authBytes: encodeOAuthBearerInitialResponse({ token }),
  });
}

/** Metadata v8 (not flexible) for the named topics. */
export function metadataRequest(correlationId: number, topics: readonly string[]): Buffer {
  return encodeRequest({ apiKey: 3, apiVersion: 8, correlationId, clientId: RAW_CLIENT_ID, taggedFields: [] }, {
    topics: topics.map((name) => ({ topicId: ZERO_UUID, name })),
    allowAutoTopicCreation: false,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  });
}

export function decodeSaslHandshake(frame: Buffer) {
  return decodeResponse(frame, 17, 1);
}

export function decodeSaslAuthenticate(frame: Buffer) {
  return decodeResponse(frame, 36, 2);
}

export function decodeMetadata(frame: Buffer) {
  return decodeResponse(frame, 3, 8);
}

/**
 * SaslHandshake + SaslAuthenticate with `token` over `socket`; resolves when tollgate accepted it, rejects with the
 * error code and message otherwise.
 */
export async function authenticate(socket: net.Socket, reader: FrameReader, token: string, firstCorrelationId = 1): Promise<void> {
  socket.write(saslHandshakeRequest(firstCorrelationId));
  const handshake = decodeSaslHandshake(await reader.next());
  if (handshake.body.errorCode !== 0) throw new Error(`SaslHandshake: error ${handshake.body.errorCode}, mechanisms ${handshake.body.mechanisms.join(',')}`);
  socket.write(saslAuthenticateRequest(firstCorrelationId + 1, token));
  const auth = decodeSaslAuthenticate(await reader.next());
  if (auth.body.errorCode !== 0) throw new Error(`SaslAuthenticate: error ${auth.body.errorCode}: ${auth.body.errorMessage}`);
}

/** The same JWT with its signature's first character changed: well-formed, signed by nobody. */
export function tamperSignature(token: string): string {
  const dot = token.lastIndexOf('.');
  const first = token[dot + 1]!;
  return `${token.slice(0, dot + 1)}${first === 'A' ? 'B' : 'A'}${token.slice(dot + 2)}`;
}
