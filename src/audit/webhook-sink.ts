/**
 * @module audit/webhook-sink
 * Records POSTed to an HTTP endpoint in batches: `{"records": [...]}` as application/json. Any 2xx answer takes
 * the batch; anything else (or no answer within the timeout) is a failure, and the same batch is sent again later
 * (audit/delivery.ts). At least once: a receiver that answered 2xx too late may see a batch twice, and
 * de-duplicates by record `id`; the header `x-tollgate-batch` (the first and last record ids) names a batch.
 */
import type { Delivery } from './delivery.ts';
import type { SpoolEntry } from './spool.ts';

export interface WebhookDeliveryOptions {
  readonly url: string;
  /** Header values, secrets already read. */
  readonly headers: Readonly<Record<string, string>>;
  readonly maxRecords: number;
  readonly maxWaitMs: number;
  readonly timeoutMs: number;
}

/** The id of a spooled record, without parsing it whole. */
function idOf(line: string): string {
  const match = /"id":"([^"]*)"/.exec(line);
  return match?.[1] ?? '?';
}

export class WebhookDelivery implements Delivery {
  readonly target: string;
  readonly maxRecords: number;
  readonly maxBytes = 4 * 1024 * 1024;
  readonly maxWaitMs: number;
  readonly #url: string;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #timeoutMs: number;

  constructor(options: WebhookDeliveryOptions) {
    const url = new URL(options.url);
    // The target shows in logs and /readyz: never a query string or credentials in the URL.
    this.target = `${url.origin}${url.pathname}`;
    this.#url = options.url;
    this.#headers = options.headers;
    this.maxRecords = options.maxRecords;
    this.maxWaitMs = options.maxWaitMs;
    this.#timeoutMs = options.timeoutMs;
  }

  async deliver(batch: readonly SpoolEntry[]): Promise<void> {
    const body = `{"records":[${batch.map((e) => e.line).join(',')}]}`;
    let res: Response;
    try {
      res = await fetch(this.#url, {
        method: 'POST',
        headers: { ...this.#headers, 'content-type': 'application/json', 'x-tollgate-batch': `${idOf(batch[0]!.line)}..${idOf(batch.at(-1)!.line)}` },
        body,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`POST ${this.target} failed: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text().catch(() => '');
    if (res.status < 200 || res.status > 299) throw new Error(`POST ${this.target} answered ${res.status}${text === '' ? '' : `: ${text.slice(0, 200)}`}`);
  }

  async close(): Promise<void> {}
}
