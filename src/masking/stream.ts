/**
 * @module masking/stream
 * Masking for bodies that arrive in arbitrary chunks: NDJSON (Kubernetes watch streams), SSE, and whole JSON
 * documents. Units are masked only once complete (a line, an SSE event, the document), so a value split across
 * chunks is never missed and never leaks: bytes of an incomplete unit are held, up to a bound.
 */

import { jsonSequenceSplitter } from './json-sequence.ts';

export class StreamLimitError extends Error {
  readonly limit: number;
  constructor(what: string, limit: number) {
    super(`${what} exceeds the masking buffer limit of ${limit} bytes`);
    this.name = 'StreamLimitError';
    this.limit = limit;
  }
}

export interface StreamMasker {
  /** Bytes of the next chunk in; bytes that may go out now (possibly empty). */
  push(chunk: Buffer): Buffer;
  /** The end of the body: whatever was held, masked. */
  end(): Buffer;
  /** Bytes held for an incomplete unit. */
  readonly held: number;
}

/**
 * NDJSON and other line-oriented bodies: each complete line (terminator kept) is passed through `maskLine`.
 * A line longer than `maxLineBytes` throws StreamLimitError (the caller fails the stream rather than leak it).
 */
export function lineMasker(maskLine: (line: string) => string, maxLineBytes: number): StreamMasker {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const maskLines = (text: string) => text.split(/(?<=\n)/).map((l) => {
    const body = l.endsWith('\r\n') ? l.slice(0, -2) : l.endsWith('\n') ? l.slice(0, -1) : l;
    return maskLine(body) + l.slice(body.length);
  }).join('');
  return {
    get held() { return pendingBytes; },
    push(chunk) {
      const nl = chunk.lastIndexOf(0x0a);
      if (nl === -1) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes > maxLineBytes) throw new StreamLimitError('a line', maxLineBytes);
        return Buffer.alloc(0);
      }
      const complete = Buffer.concat([...pending, chunk.subarray(0, nl + 1)]);
      const rest = chunk.subarray(nl + 1);
      pending = rest.length > 0 ? [rest] : [];
      pendingBytes = rest.length;
      if (pendingBytes > maxLineBytes) throw new StreamLimitError('a line', maxLineBytes);
      return Buffer.from(maskLines(complete.toString('utf8')), 'utf8');
    },
    end() {
      const rest = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      return rest.length === 0 ? rest : Buffer.from(maskLines(rest.toString('utf8')), 'utf8');
    },
  };
}

/** Server-sent events: the `data:` lines of each complete event (ended by a blank line) are masked as one payload. */
export function sseMasker(maskData: (data: string) => string, maxEventBytes: number): StreamMasker {
  let buffered = '';
  const maskEvent = (event: string) => {
    const terminator = /(?:\r?\n)*$/.exec(event)![0];
    const lines = event.slice(0, event.length - terminator.length).split(/\r?\n/);
    const dataLines = lines.filter((l) => l.startsWith('data:'));
    if (dataLines.length === 0) return event;
    const data = dataLines.map((l) => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n');
    const masked = maskData(data);
    if (masked === data) return event;
    // The masked payload takes the place of the first data line; the event's other fields keep their order.
    const first = lines.findIndex((l) => l.startsWith('data:'));
    const rest = lines.filter((l, i) => i < first || !l.startsWith('data:'));
    rest.splice(first, 0, ...masked.split('\n').map((l) => `data: ${l}`));
    return rest.join('\n') + terminator;
  };
  return {
    get held() { return Buffer.byteLength(buffered); },
    push(chunk) {
      buffered += chunk.toString('utf8');
      const boundary = Math.max(buffered.lastIndexOf('\n\n'), buffered.lastIndexOf('\r\n\r\n'));
      if (boundary === -1) {
        if (Buffer.byteLength(buffered) > maxEventBytes) throw new StreamLimitError('an SSE event', maxEventBytes);
        return Buffer.alloc(0);
      }
      const cut = buffered.startsWith('\r\n\r\n', boundary) ? boundary + 4 : boundary + 2;
      const complete = buffered.slice(0, cut);
      buffered = buffered.slice(cut);
      return Buffer.from(complete.split(/(?<=\n\n|\r\n\r\n)/).map(maskEvent).join(''), 'utf8');
    },
    end() {
      const rest = buffered;
      buffered = '';
      return Buffer.from(rest === '' ? '' : maskEvent(rest), 'utf8');
    },
  };
}

/**
 * Concatenated JSON objects (a Kubernetes watch, served as `application/json` one event after another): each object
 * is masked as soon as it is complete; the whitespace between objects goes out as it came.
 */
export function sequenceMasker(maskObject: (text: string) => string, maxObjectBytes: number): StreamMasker {
  const splitter = jsonSequenceSplitter(maxObjectBytes);
  return {
    get held() { return splitter.held; },
    push(chunk) {
      const out: Buffer[] = [];
      for (const unit of splitter.push(chunk)) {
        const objectBytes = Buffer.byteLength(unit.text);
        out.push(unit.bytes.subarray(0, unit.bytes.length - objectBytes), Buffer.from(maskObject(unit.text), 'utf8'));
      }
      return Buffer.concat(out);
    },
    end: () => splitter.end(),
  };
}

/** A whole document (plain JSON response): held until the end, up to `maxBytes`, then masked at once. */
export function documentMasker(maskDocument: (text: string) => string, maxBytes: number): StreamMasker {
  let parts: Buffer[] = [];
  let size = 0;
  return {
    get held() { return size; },
    push(chunk) {
      parts.push(chunk);
      size += chunk.length;
      if (size > maxBytes) throw new StreamLimitError('the document', maxBytes);
      return Buffer.alloc(0);
    },
    end() {
      const text = Buffer.concat(parts).toString('utf8');
      parts = [];
      size = 0;
      return Buffer.from(text === '' ? '' : maskDocument(text), 'utf8');
    },
  };
}
