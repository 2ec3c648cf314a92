/**
 * @module http/json-spans
 * Where the values of a JSON text are, as offsets into the text, so one value can be replaced (a record's masked
 * value) or one element left out (a listing entry) while every other byte stays as it came. The text must already be
 * known to be valid JSON (it has been through `JSON.parse`): the scan checks nothing.
 */

/** `[start, end)` of a value in the text. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

const isWhitespace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export function skipWhitespace(text: string, at: number): number {
  while (at < text.length && isWhitespace(text.charCodeAt(at))) at++;
  return at;
}

function skipString(text: string, at: number): number {
  for (let i = at + 1; ; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i++;
    else if (c === 0x22 /* " */) return i + 1;
  }
}

/** The end of the value starting at `at` (no leading whitespace). */
export function skipValue(text: string, at: number): number {
  const first = text.charCodeAt(at);
  if (first === 0x22) return skipString(text, at);
  if (first !== 0x7b /* { */ && first !== 0x5b /* [ */) {
    let i = at;
    while (i < text.length && !/[\s,\]}]/.test(text[i]!)) i++;
    return i;
  }
  let depth = 0;
  for (let i = at; ; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) i = skipString(text, i) - 1;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if ((c === 0x7d || c === 0x5d) && --depth === 0) return i + 1;
  }
}

/** The elements of the array starting at `at`. */
export function arrayElements(text: string, at: number): Span[] {
  const spans: Span[] = [];
  let i = skipWhitespace(text, at + 1);
  if (text.charCodeAt(i) === 0x5d) return spans;
  for (;;) {
    const end = skipValue(text, i);
    spans.push({ start: i, end });
    i = skipWhitespace(text, end);
    if (text.charCodeAt(i) === 0x5d) return spans;
    i = skipWhitespace(text, i + 1); // past the comma
  }
}

/** The members of the object starting at `at`: name → value span (the last one where a name repeats, as JSON.parse). */
export function objectMembers(text: string, at: number): Map<string, Span> {
  const members = new Map<string, Span>();
  let i = skipWhitespace(text, at + 1);
  if (text.charCodeAt(i) === 0x7d) return members;
  for (;;) {
    const nameEnd = skipString(text, i);
    const name = JSON.parse(text.slice(i, nameEnd)) as string;
    const start = skipWhitespace(text, skipWhitespace(text, nameEnd) + 1); // past the colon
    const end = skipValue(text, start);
    members.set(name, { start, end });
    i = skipWhitespace(text, end);
    if (text.charCodeAt(i) === 0x7d) return members;
    i = skipWhitespace(text, i + 1);
  }
}
