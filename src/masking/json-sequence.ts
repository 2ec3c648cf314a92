/**
 * @module masking/json-sequence
 * Splits a body of concatenated JSON objects (`{…}{…}` with optional whitespace between them: the streaming mode of
 * Kafka REST v3 produce, and a Kubernetes watch, whose events need not end in a newline) into whole objects as
 * chunks arrive, so each can be inspected or masked before any of its bytes go on. Chunk boundaries may fall anywhere, inside strings, escapes and multi-byte characters: the scan is over
 * bytes, and every structural character of JSON is ASCII, which never occurs inside a UTF-8 multi-byte sequence.
 *
 * The splitter only finds where objects end; whether an object is valid JSON is for the reader of its text to say.
 */

export class JsonSequenceError extends Error {
  override name = 'JsonSequenceError';
}

/** One object of the sequence. */
export interface JsonSequenceUnit {
  /** The whitespace before the object and the object, exactly as received: units (and `end()`) rejoin the body. */
  readonly bytes: Buffer;
  /** The object's own text. */
  readonly text: string;
}

export interface JsonSequenceSplitter {
  /** The next chunk in; the objects it completes, in order (possibly none). */
  push(chunk: Buffer): JsonSequenceUnit[];
  /** The end of the body: the whitespace after the last object. Throws when an object is left incomplete. */
  end(): Buffer;
  /** Bytes held: whitespace and the incomplete object after the last complete one. */
  readonly held: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const isWhitespace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** `maxUnitBytes` bounds an object with its leading whitespace; past it, push throws JsonSequenceError. */
export function jsonSequenceSplitter(maxUnitBytes: number): JsonSequenceSplitter {
  let held: Buffer[] = [];
  let heldBytes = 0;
  /** Where the current object starts within the held bytes, or -1 between objects. */
  let objectStart = -1;
  let depth = 0;
  let inString = false;
  let escaped = false;
  /** Bytes of the body before the held ones, for error positions. */
  let consumed = 0;

  return {
    get held() { return heldBytes; },
    push(chunk) {
      const units: JsonSequenceUnit[] = [];
      let from = 0;
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk[i]!;
        if (objectStart === -1) {
          if (isWhitespace(c)) continue;
          if (c !== 0x7b /* { */) {
            throw new JsonSequenceError(`expected a JSON object at byte ${consumed + heldBytes + i - from} of the records stream, got ${JSON.stringify(String.fromCharCode(c))}`);
          }
          objectStart = heldBytes + i - from;
          depth = 1;
          continue;
        }
        if (inString) {
          if (escaped) escaped = false;
          else if (c === BACKSLASH) escaped = true;
          else if (c === QUOTE) inString = false;
          continue;
        }
        if (c === QUOTE) inString = true;
        else if (c === 0x7b || c === 0x5b /* [ */) depth++;
        else if ((c === 0x7d /* } */ || c === 0x5d /* ] */) && --depth === 0) {
          const bytes = Buffer.concat([...held, chunk.subarray(from, i + 1)]);
          units.push({ bytes, text: bytes.subarray(objectStart).toString('utf8') });
          consumed += bytes.length;
          held = [];
          heldBytes = 0;
          objectStart = -1;
          from = i + 1;
        }
      }
      if (from < chunk.length) {
        held.push(chunk.subarray(from));
        heldBytes += chunk.length - from;
        if (heldBytes > maxUnitBytes) throw new JsonSequenceError(`a record of the stream exceeds the limit of ${maxUnitBytes} bytes`);
      }
      return units;
    },
    end() {
      if (objectStart !== -1) throw new JsonSequenceError(`the records stream ends inside a JSON object (${heldBytes - objectStart} bytes of it)`);
      const rest = Buffer.concat(held);
      held = [];
      heldBytes = 0;
      return rest;
    },
  };
}
