/**
 * @module http/response-masking
 * Chooses how a response body is masked from its content type and the masking rules that apply: whole JSON
 * documents, NDJSON lines (Kubernetes watch streams), SSE events, or plain text. Pure: no gRPC, no Envoy.
 */
import type { NamedMaskPlan } from '../policy/engine.ts';
import type { MaskContext } from '../masking/strategies.ts';
import { documentMasker, lineMasker, sequenceMasker, sseMasker, type StreamMasker } from '../masking/stream.ts';
import { maskJsonUnit, maskTextUnit, type MaskTally } from '../masking/units.ts';

export { MaskingFailure, maskJsonUnit, maskTextUnit, type MaskTally } from '../masking/units.ts';

/** `json-sequence`: JSON objects one after another, with or without newlines (a Kubernetes watch). */
export type BodyFormat = 'json' | 'ndjson' | 'json-sequence' | 'sse' | 'text';

/** `application/json;stream=watch` is how the Kubernetes API server labels watch streams. */
export function bodyFormat(contentType: string | undefined): BodyFormat {
  const ct = (contentType ?? '').toLowerCase();
  if (ct.includes('stream=watch') || ct.startsWith('application/x-ndjson') || ct.startsWith('application/jsonl') || ct.startsWith('application/ndjson')) return 'ndjson';
  if (ct.startsWith('text/event-stream')) return 'sse';
  if (ct.startsWith('application/json') || /^application\/[a-z0-9.+-]*\+json/.test(ct)) return 'json';
  return 'text';
}

/** The stream masker for one response body. */
export function responseMasker(format: BodyFormat, plans: readonly NamedMaskPlan[], ctx: MaskContext, maxBufferBytes: number, tally: MaskTally): StreamMasker {
  const json = (t: string) => maskJsonUnit(t, plans, ctx, tally);
  switch (format) {
    case 'json': return documentMasker(json, maxBufferBytes);
    case 'ndjson': return lineMasker((line) => (line.trim() === '' ? line : json(line)), maxBufferBytes);
    case 'json-sequence': return sequenceMasker(json, maxBufferBytes);
    case 'sse': return sseMasker((data) => (/^\s*[[{]/.test(data) ? json(data) : maskTextUnit(data, plans, ctx, tally)), maxBufferBytes);
    case 'text': return documentMasker((t) => maskTextUnit(t, plans, ctx, tally), maxBufferBytes);
  }
}
