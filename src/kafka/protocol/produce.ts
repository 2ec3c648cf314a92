/**
 * @module kafka/protocol/produce
 * The one Produce request field the session needs before codecs exist: `acks`. A Produce request with acks=0 gets
 * no response from the broker, so the session must not wait for one.
 *
 * Produce request body (ProduceRequest.json):
 *   v0–v2: acks INT16, …
 *   v3–v8: transactional_id NULLABLE_STRING (INT16 length), acks INT16, …
 *   v9+:   transactional_id COMPACT_NULLABLE_STRING (UNSIGNED_VARINT length + 1), acks INT16, …  (flexible)
 */
import { API_KEY } from './api-keys.ts';
import { FrameError } from './errors.ts';
import type { RequestHeader } from './header.ts';
import { ByteReader } from './reader.ts';

const FIRST_WITH_TRANSACTIONAL_ID = 3;
const FIRST_FLEXIBLE = 9;

/**
 * Reads `acks` from a Produce request frame (size prefix included) whose header `readRequestHeader` returned.
 * Throws `FrameError('body_truncated')` when the frame ends first.
 */
export function readProduceAcks(frame: Buffer, header: RequestHeader): number {
  if (header.apiKey !== API_KEY.Produce || header.bodyOffset === undefined) {
    throw new FrameError('body_invalid', `not a Produce request: api key ${header.apiKey}`, {
      apiKey: header.apiKey,
    });
  }
  const reader = new ByteReader(frame, header.bodyOffset, 'body');
  if (header.apiVersion >= FIRST_FLEXIBLE) reader.skipCompactNullableString('transactional_id');
  else if (header.apiVersion >= FIRST_WITH_TRANSACTIONAL_ID) reader.skipNullableString('transactional_id');
  return reader.int16('acks');
}
