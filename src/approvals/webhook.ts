/**
 * @module approvals/webhook
 * Approval events POSTed to a webhook (`approvals.webhook`): JSON, or a Slack incoming-webhook message. Plugs into
 * the service's `notify` hook, which must never hold up a decision: events go into a bounded queue and one sender
 * works through it in order, retrying a failed POST (network error, timeout, 429, 5xx) with doubling delays. A full
 * queue drops the new event with a warning: a notification is a courtesy, the store and the audit log are the record.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { ApprovalsWebhookConfig } from '../config/schema.ts';
import { readSecret } from '../config/secrets.ts';
import { approvalJson } from './api.ts';
import type { ApprovalEvent, ApprovalEventType } from './service.ts';

/** What is posted; `decided` (one of several approvals needed) is not, the final approval is. */
const POSTED: ReadonlySet<ApprovalEventType> = new Set(['requested', 'approved', 'rejected', 'revoked', 'expired']);
const FIRST_RETRY_MS = 1_000;

export interface WebhookNotifier {
  /** Queues the event; returns at once. */
  notify(event: ApprovalEvent): void;
  /** Stops taking events and waits (at most `graceMs`) for the queue to be sent. */
  close(graceMs?: number): Promise<void>;
}

export interface WebhookOptions {
  readonly logger: Pick<Logger, 'warn' | 'error' | 'debug'>;
  /** Milliseconds before the first retry (doubling after); tests shorten it. */
  readonly firstRetryMs?: number;
  readonly clock?: () => number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The `json` payload: the event and the request as the approver API shows it. */
export function jsonPayload(event: ApprovalEvent, at: number): Record<string, unknown> {
  return {
    event: `approval.${event.type}`,
    approval: approvalJson(event.request, event.url),
    ...(event.actor !== undefined && { actor: { subject: event.actor.subject, issuer: event.actor.issuer } }),
    ...(event.grant !== undefined && {
      grant: {
        id: event.grant.id, oneTime: event.grant.oneTime, expiresAt: iso(event.grant.expiresAt),
        ...(event.grant.revokeReason !== undefined && { revokeReason: event.grant.revokeReason }),
      },
    }),
    at: iso(at),
  };
}

/** Slack's mrkdwn treats `&`, `<` and `>` as markup (links, mentions): escaped, user text is only text. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const HEADLINES: Readonly<Record<ApprovalEventType, string>> = {
  requested: 'Approval requested', decided: 'Approval recorded', approved: 'Approved', rejected: 'Rejected', revoked: 'Grant revoked', expired: 'Expired without a decision',
};

/** The `slack` payload: `text` (the notification line) and `blocks` with who, what, where, why and the URL. */
export function slackPayload(event: ApprovalEvent): { text: string; blocks: unknown[] } {
  const r = event.request;
  const who = `${r.requester.subject}${r.requester.groups.length > 0 ? ` (${r.requester.groups.join(', ')})` : ''}`;
  const where = Object.entries(r.context).map(([k, v]) => `${k}: ${String(v)}`).join('\n') || '—';
  const by = event.actor !== undefined && event.type !== 'requested' ? ` by ${event.actor.subject}` : '';
  const why = event.type === 'rejected' ? r.decisions.at(-1)?.reason : event.type === 'revoked' ? event.grant?.revokeReason : undefined;
  const headline = `${HEADLINES[event.type]}${by}`;
  const text = `${headline}: ${r.requester.subject} asks for ${r.summary} (rule ${r.rule}) ${event.url}`;
  const field = (title: string, value: string) => ({ type: 'mrkdwn', text: `*${title}*\n${slackEscape(value)}` });
  return {
    text: slackEscape(text),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: headline.slice(0, 150) } },
      {
        type: 'section',
        fields: [
          field('Who', who),
          field('What', r.summary),
          field('Where', where),
          field('Why', r.reason),
        ],
      },
      ...(why !== undefined && why !== '' ? [{ type: 'section', text: { type: 'mrkdwn', text: `*${event.type === 'rejected' ? 'Reason' : 'Revoked because'}*\n${slackEscape(why)}` } }] : []),
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: slackEscape(`${r.id} · rule ${r.rule} · ${r.min} of ${r.approverGroups.join(', ')} · ${event.type === 'requested' ? `expires ${iso(r.expiresAt)}` : `state ${event.type === 'revoked' ? 'revoked' : r.state}`}`) }],
      },
      { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: event.type === 'requested' ? 'Review' : 'Open' }, url: event.url }] },
    ],
  };
}

function retryable(status: number): boolean {
  return status === 429 || status >= 500;
}

export function createWebhookNotifier(config: ApprovalsWebhookConfig, options: WebhookOptions): WebhookNotifier {
  const { logger } = options;
  const clock = options.clock ?? Date.now;
  const firstRetryMs = options.firstRetryMs ?? FIRST_RETRY_MS;
  // Read now, so a missing secret fails the config, not the first event.
  const secret = config.secret === undefined ? undefined : readSecret(config.secret, 'approvals.webhook.secret');
  const queue: { event: ApprovalEvent; at: number }[] = [];
  let sending: Promise<void> | undefined;
  let closed = false;
  let stopWaiting: (() => void) | undefined;

  const pause = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    stopWaiting = () => {
      clearTimeout(timer);
      resolve();
    };
  });

  const post = async (body: string): Promise<number> => {
    const timestamp = String(Math.floor(clock() / 1000));
    const headers: Record<string, string> = { ...config.headers, 'content-type': 'application/json', 'user-agent': 'tollgate-approvals' };
    if (secret !== undefined) {
      headers['x-tollgate-timestamp'] = timestamp;
      headers['x-tollgate-signature'] = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
    }
    const res = await fetch(config.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(config.timeout), redirect: 'error' });
    await res.body?.cancel();
    return res.status;
  };

  const deliver = async ({ event, at }: { event: ApprovalEvent; at: number }): Promise<void> => {
    const body = JSON.stringify(config.format === 'slack' ? slackPayload(event) : jsonPayload(event, at));
    let delay = firstRetryMs;
    for (let attempt = 0; ; attempt++) {
      let failure: string;
      try {
        const status = await post(body);
        if (status >= 200 && status < 300) return;
        failure = `HTTP ${status}`;
        if (!retryable(status)) {
          logger.error({ approval: event.request.id, event: event.type, status }, `approvals webhook refused the event (${failure}); not retried`);
          return;
        }
      } catch (err) {
        failure = (err as Error).name === 'TimeoutError' ? `no answer within ${config.timeout} ms` : (err as Error).message;
      }
      if (attempt >= config.retries || closed) {
        logger.error({ approval: event.request.id, event: event.type, attempts: attempt + 1 }, `approvals webhook: giving up on the event (${failure})`);
        return;
      }
      logger.warn({ approval: event.request.id, event: event.type, retryInMs: delay }, `approvals webhook: POST failed (${failure}); retrying`);
      await pause(delay);
      delay *= 2;
    }
  };

  const drain = async (): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) await deliver(next);
    sending = undefined;
  };

  return {
    notify(event) {
      if (!POSTED.has(event.type) || closed) return;
      if (queue.length >= config.queue) {
        logger.warn({ approval: event.request.id, event: event.type, queue: config.queue }, 'approvals webhook: queue full, event dropped');
        return;
      }
      queue.push({ event, at: clock() });
      sending ??= drain();
    },
    async close(graceMs = config.timeout) {
      closed = true;
      // No more waiting between retries: what is in flight gets one last try, the rest of the queue goes.
      stopWaiting?.();
      if (sending === undefined) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([sending, new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); })]);
      clearTimeout(timer);
      if (queue.length > 0) logger.warn({ dropped: queue.length }, 'approvals webhook: closing with events unsent');
      queue.length = 0;
    },
  };
}
