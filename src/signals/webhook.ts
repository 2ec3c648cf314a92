/**
 * @module signals/webhook
 * Signal records POSTed to an operator's endpoint (chat, paging, SIEM) as they happen. Never in the way of traffic:
 * `send` only queues; one POST is in flight at a time; a full queue drops its oldest record; a failed POST is
 * logged and counted, not retried (the audit record is the durable copy).
 */

export interface WebhookOptions {
  readonly url: string;
  readonly timeoutMs: number;
  readonly maxQueue: number;
  readonly onResult?: (result: 'sent' | 'failed' | 'dropped', detail?: string) => void;
  /** Injected in tests; the global fetch by default. */
  readonly fetch?: typeof fetch;
}

export interface AlertWebhook {
  send(record: object): void;
  /** Resolves once the queue is empty (tests, drain). */
  idle(): Promise<void>;
  readonly pending: number;
}

export function createAlertWebhook(options: WebhookOptions): AlertWebhook {
  const queue: string[] = [];
  const post = options.fetch ?? fetch;
  let running: Promise<void> | undefined;

  const run = async (): Promise<void> => {
    while (queue.length > 0) {
      const body = queue.shift()!;
      try {
        const response = await post(options.url, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body,
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        // The body is not needed; reading it frees the connection.
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) options.onResult?.('sent');
        else options.onResult?.('failed', `HTTP ${response.status}`);
      } catch (error) {
        options.onResult?.('failed', error instanceof Error ? error.message : String(error));
      }
    }
  };

  const kick = (): void => {
    if (running !== undefined || queue.length === 0) return;
    running = run().finally(() => {
      running = undefined;
      kick();
    });
  };

  return {
    send(record) {
      if (queue.length >= options.maxQueue) {
        queue.shift();
        options.onResult?.('dropped', `queue full (${options.maxQueue})`);
      }
      queue.push(JSON.stringify(record));
      kick();
    },
    async idle() {
      while (running !== undefined) await running;
    },
    get pending() {
      return queue.length + (running === undefined ? 0 : 1);
    },
  };
}
