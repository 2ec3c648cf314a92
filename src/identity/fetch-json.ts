/**
 * @module identity/fetch-json
 * A small, strict JSON client for discovery documents, JWKS and Kubernetes TokenReviews: one deadline for the whole
 * exchange, a size cap, no redirects (the configured or discovered URL is the one that is trusted; a redirect is
 * reported, not followed). Built on node:http/https rather than fetch, because a Kubernetes API server is trusted
 * through its own cluster CA, which fetch cannot be given per request; an https.Agent made with `ca` can.
 */
import http from 'node:http';
import https from 'node:https';
import { describeValue } from './errors.ts';

const DEFAULT_MAX_BYTES = 1024 * 1024;

export interface FetchJsonOptions {
  timeoutMs: number;
  maxBytes?: number;
  accept?: string;
  /** Extra request headers (an Authorization header, say). Never part of an error message. */
  headers?: Readonly<Record<string, string>>;
  /** The connection pool to use; an `https.Agent({ca})` trusts that CA bundle instead of the system roots. */
  agent?: http.Agent;
}

export interface RequestJsonOptions extends FetchJsonOptions {
  method: 'GET' | 'POST';
  /** Sent as JSON (`content-type: application/json`). */
  body?: unknown;
  /** Statuses whose body is parsed and returned; default [200]. Any other status rejects with HttpStatusError. */
  okStatuses?: readonly number[];
}

/**
 * How one party (an issuer, an API server) is reached: its connection pool (and so its CA) and the headers each
 * request to a given URL carries. Headers are asked for per request, so a rotating credential is always current.
 */
export interface HttpAccess {
  readonly agent?: http.Agent;
  readonly headers?: (url: string) => Readonly<Record<string, string>> | undefined;
}

/** FetchJsonOptions for `url` under `access`. */
export function withAccess(url: string, access: HttpAccess | undefined, options: FetchJsonOptions): FetchJsonOptions {
  if (access === undefined) return options;
  const headers = access.headers?.(url);
  return { ...options, ...(access.agent && { agent: access.agent }), ...(headers && { headers: { ...options.headers, ...headers } }) };
}

/** The server answered, with a status the caller did not expect. `message` is safe to log. */
export class HttpStatusError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = 'HttpStatusError';
    this.status = status;
  }
}

/** GETs `url` and parses its body as JSON. Throws an Error whose message is safe to log. */
export function fetchJson(url: string, options: FetchJsonOptions): Promise<unknown> {
  return requestJson(url, { ...options, method: 'GET' });
}

/** One JSON request. Rejects with HttpStatusError for an unexpected status, a plain Error otherwise. */
export function requestJson(url: string, options: RequestJsonOptions): Promise<unknown> {
  const what = `${options.method} ${url}`;
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.reject(new Error(`${what}: expected an absolute URL`));
  }
  const client = target.protocol === 'https:' ? https : target.protocol === 'http:' ? http : undefined;
  if (client === undefined) {
    return Promise.reject(new Error(`${what}: expected an http or https URL, found scheme ${describeValue(target.protocol)}`));
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const okStatuses = options.okStatuses ?? [200];
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body), 'utf8');
  const headers: Record<string, string | number> = { accept: options.accept ?? 'application/json', ...options.headers };
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = payload.length;
  }

  return new Promise<unknown>((resolve, reject) => {
    let settled = false;
    let responded = false;
    const finish = (error: Error | undefined, value?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        request.destroy();
        reject(error);
      } else resolve(value);
    };
    const timer = setTimeout(() => {
      finish(new Error(`${what}: ${responded ? 'body not complete' : 'no response'} within ${options.timeoutMs} ms`));
    }, options.timeoutMs);

    const request = client.request(target, { method: options.method, headers, ...(options.agent && { agent: options.agent }) }, (response) => {
      responded = true;
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        finish(new Error(
          `${what}: expected ${okStatuses.join(' or ')}, found redirect ${status} to ${response.headers.location ?? '?'} ` +
            '(redirects are not followed; configure the final URL)',
        ));
        return;
      }
      const declared = Number(response.headers['content-length'] ?? Number.NaN);
      if (Number.isFinite(declared) && declared > maxBytes) {
        finish(new Error(`${what}: expected at most ${maxBytes} bytes, found content-length ${declared}`));
        return;
      }
      const chunks: Buffer[] = [];
      let total = 0;
      response.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > maxBytes) finish(new Error(`${what}: expected at most ${maxBytes} bytes, found more`));
        else chunks.push(chunk);
      });
      response.on('error', (error) => finish(new Error(`${what}: ${error.message}`, { cause: error })));
      response.on('end', () => {
        const text = Buffer.concat(chunks, total).toString('utf8');
        if (!okStatuses.includes(status)) {
          finish(new HttpStatusError(status, `${what}: expected ${okStatuses.join(' or ')}, found ${status}${statusDetail(text)}`));
          return;
        }
        let value: unknown;
        try {
          value = JSON.parse(text) as unknown;
        } catch {
          finish(new Error(`${what}: expected a JSON body, found ${text.length} bytes that do not parse`));
          return;
        }
        finish(undefined, value);
      });
    });
    request.on('error', (error) => finish(new Error(`${what}: ${error.message}`, { cause: error })));
    request.end(payload);
  });
}

/** The `message` of an error body (a Kubernetes Status, an OAuth error), quoted and cut short; else nothing. */
function statusDetail(text: string): string {
  try {
    const body = JSON.parse(text) as unknown;
    if (body !== null && typeof body === 'object') {
      const message = (body as Record<string, unknown>)['message'] ?? (body as Record<string, unknown>)['error_description'];
      if (typeof message === 'string' && message.length > 0) return `: ${describeValue(message, 300)}`;
    }
  } catch {
    // not JSON: the status says enough
  }
  return '';
}
