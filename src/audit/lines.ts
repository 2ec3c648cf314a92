/**
 * @module audit/lines
 * Reading JSONL files line by line without holding them whole (an audit file grows without bound), knowing whether
 * the last line was finished (a line without its newline is one a crash cut), and reading only the last line.
 */
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

export interface FileLine {
  /** 1-based. */
  readonly number: number;
  readonly text: string;
  /** False only for a last line without its newline. */
  readonly terminated: boolean;
  /** Byte offset of the line's first byte. */
  readonly offset: number;
  /** Byte offset just after the line (after its newline). */
  readonly end: number;
}

const CHUNK_BYTES = 256 * 1024;

/** The lines of `file`, from byte `start` (a line start) on; numbered from `firstNumber`. */
export async function* readLines(file: string, start = 0, firstNumber = 1): AsyncGenerator<FileLine> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const decoder = new StringDecoder('utf8');
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let position = start;
    let pending = '';
    let pendingOffset = start;
    let number = firstNumber;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      // Line offsets are counted in bytes: newlines are found in the bytes, the text decoded per line.
      let from = 0;
      for (let nl = chunk.indexOf(0x0a, from); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
        const text = pending + decoder.write(chunk.subarray(from, nl)) + decoder.end();
        yield { number: number++, text, terminated: true, offset: pendingOffset, end: position + nl + 1 };
        pending = '';
        pendingOffset = position + nl + 1;
        from = nl + 1;
      }
      pending += decoder.write(chunk.subarray(from));
      position += bytesRead;
    }
    pending += decoder.end();
    if (pending !== '' || pendingOffset < position) yield { number, text: pending, terminated: false, offset: pendingOffset, end: position };
  } finally {
    await handle.close();
  }
}

export interface LastLine {
  /** The last complete line, without its newline; undefined when the file has none. */
  readonly text: string | undefined;
  /** Byte offset just after the last complete line's newline (0 when there is none). */
  readonly end: number;
  /** Bytes after the last newline: a line a crash cut short (empty when the file ends with a newline). */
  readonly torn: Buffer;
}

/** The end of `fd`'s file, read backwards in chunks until the last complete line is whole. */
export function readLastLine(fd: number): LastLine {
  // `tail` holds the file's bytes from `start` to its end; offsets below are absolute.
  let start = fs.fstatSync(fd).size;
  let tail = Buffer.alloc(0);
  const grow = () => {
    const length = Math.min(CHUNK_BYTES, start);
    start -= length;
    const chunk = Buffer.allocUnsafe(length);
    fs.readSync(fd, chunk, 0, length, start);
    tail = Buffer.concat([chunk, tail]);
  };
  let lastNewline = -1;
  while (lastNewline === -1 && start > 0) {
    grow();
    const at = tail.lastIndexOf(0x0a);
    if (at !== -1) lastNewline = start + at;
  }
  if (lastNewline === -1) return { text: undefined, end: 0, torn: tail };
  const torn = Buffer.from(tail.subarray(lastNewline - start + 1));
  let previousNewline = -1;
  for (;;) {
    // lastIndexOf with a negative offset would count from the end: only search when bytes precede the newline.
    const at = lastNewline > start ? tail.lastIndexOf(0x0a, lastNewline - start - 1) : -1;
    if (at !== -1) {
      previousNewline = start + at;
      break;
    }
    if (start === 0) break;
    grow();
  }
  const text = tail.subarray(previousNewline + 1 - start, lastNewline - start).toString('utf8');
  return { text, end: lastNewline + 1, torn };
}
