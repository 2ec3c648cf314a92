/**
 * @module http/response-masking
 * Chooses how a response body is masked from its content type and the masking rules that apply: whole JSON
 * documents, NDJSON lines (Kubernetes watch streams), SSE events, or plain text. Pure: no gRPC, no Envoy.
 */
import type { NamedMaskPlan } from '../policy/engine.ts';
import { maskJson, maskText, UndecodableError } from '../masking/mask.ts';
import type { MaskContext } from '../masking/strategies.ts';
import { REDACTED } from '../masking/strategies.ts';
import { documentMasker, lineMasker, sseMasker, type StreamMasker } from '../masking/stream.ts';

export type BodyFormat = 'json' | 'ndjson' | 'sse' | 'text';

/** `application/json;stream=watch` is how the Kubernetes API server labels watch streams. */
export function bodyFormat(contentType: string | undefined): BodyFormat {
  const ct = (contentType ?? '').toLowerCase();
  if (ct.includes('stream=watch') || ct.startsWith('application/x-ndjson') || ct.startsWith('application/jsonl') || ct.startsWith('application/ndjson')) return 'ndjson';
  if (ct.startsWith('text/event-stream')) return 'sse';
  if (ct.startsWith('application/json') || /^application\/[a-z0-9.+-]*\+json/.test(ct)) return 'json';
  return 'text';
}

export class MaskingFailure extends Error {
  override name = 'MaskingFailure';
}

export interface MaskTally { [detectorOrField: string]: number }

/** Applies every plan in turn to one unit of JSON text; `tally` collects what was masked. */
export function maskJsonUnit(text: string, plans: readonly NamedMaskPlan[], ctx: MaskContext, tally: MaskTally): string {
  let out = text;
  for (const { plan, onUndecodable, rule } of plans) {
    try {
      const r = maskJson(out, plan, ctx);
      for (const [k, v] of Object.entries(r.counts)) tally[k] = (tally[k] ?? 0) + v;
      out = r.text;
    } catch (err) {
      if (!(err instanceof UndecodableError)) throw err;
      if (onUndecodable === 'fail') throw new MaskingFailure(`rule ${rule}: ${err.message}`);
      if (onUndecodable === 'redact') return REDACTED;
      out = maskTextUnit(out, [{ plan, onUndecodable, rule }], ctx, tally);
    }
  }
  return out;
}

export function maskTextUnit(text: string, plans: readonly NamedMaskPlan[], ctx: MaskContext, tally: MaskTally): string {
  let out = text;
  for (const { plan } of plans) {
    const r = maskText(out, plan, ctx);
    for (const [k, v] of Object.entries(r.counts)) tally[k] = (tally[k] ?? 0) + v;
    out = r.text;
  }
  return out;
}

/** The stream masker for one response body. */
export function responseMasker(format: BodyFormat, plans: readonly NamedMaskPlan[], ctx: MaskContext, maxBufferBytes: number, tally: MaskTally): StreamMasker {
  const json = (t: string) => maskJsonUnit(t, plans, ctx, tally);
  switch (format) {
    case 'json': return documentMasker(json, maxBufferBytes);
    case 'ndjson': return lineMasker((line) => (line.trim() === '' ? line : json(line)), maxBufferBytes);
    case 'sse': return sseMasker((data) => (/^\s*[[{]/.test(data) ? json(data) : maskTextUnit(data, plans, ctx, tally)), maxBufferBytes);
    case 'text': return documentMasker((t) => maskTextUnit(t, plans, ctx, tally), maxBufferBytes);
  }
}
