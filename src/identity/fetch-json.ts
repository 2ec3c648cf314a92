/**
 * @module identity/fetch-json
 * A small, strict JSON GET for discovery documents and JWKS: a timeout, a size cap, no redirects (the configured or
 * discovered URL is the one that is trusted; a redirect is reported, not followed).
 */

const DEFAULT_MAX_BYTES = 1024 * 1024;

export interface FetchJsonOptions {
  timeoutMs: number;
  maxBytes?: number;
  accept?: string;
}

/** Fetches `url` and parses its body as JSON. Throws a plain Error whose message is safe to log. */
export async function fetchJson(url: string, options: FetchJsonOptions): Promise<unknown> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const signal = AbortSignal.timeout(options.timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'GET',
      redirect: 'manual',
      signal,
      headers: { accept: options.accept ?? 'application/json' },
    });
  } catch (error) {
    if (signal.aborted) throw new Error(`GET ${url}: no response within ${options.timeoutMs} ms`);
    throw new Error(`GET ${url}: ${describeFetchError(error)}`);
  }
  try {
    if (response.status >= 300 && response.status < 400) {
      throw new Error(
        `GET ${url}: expected 200, found redirect ${response.status} to ${response.headers.get('location') ?? '?'} ` +
          '(redirects are not followed; configure the final URL)',
      );
    }
    if (response.status !== 200) throw new Error(`GET ${url}: expected 200, found ${response.status}`);
    const declared = Number(response.headers.get('content-length') ?? Number.NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      throw new Error(`GET ${url}: expected at most ${maxBytes} bytes, found content-length ${declared}`);
    }
    const text = await readCapped(response, maxBytes, url);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new Error(`GET ${url}: expected a JSON body, found ${text.length} bytes that do not parse`);
    }
  } catch (error) {
    if (signal.aborted) throw new Error(`GET ${url}: body not complete within ${options.timeoutMs} ms`);
    throw error;
  } finally {
    if (!response.bodyUsed) await response.body?.cancel().catch(() => {});
  }
}

async function readCapped(response: Response, maxBytes: number, url: string): Promise<string> {
  const body = response.body;
  if (!body) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new Error(`GET ${url}: expected at most ${maxBytes} bytes, found more`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

function describeFetchError(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return `${error.message} (${cause.message})`;
    return error.message;
  }
  return String(error);
}
