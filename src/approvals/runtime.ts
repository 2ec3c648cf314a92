/**
 * @module approvals/runtime
 * The approval service as a running tollgate holds it: the store is opened only once a config has an `approve` rule
 * (a config without one leaves no database file behind), in the background, and until it is open every request
 * needing approval is refused (fail closed) and /readyz says why. The adapters reach it through getters, so a reload
 * that adds the first approve rule opens the store without a restart.
 */
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/record.ts';
import type { Config } from '../config/schema.ts';
import type { KafkaApprovals } from '../kafka/connection.ts';
import { createKafkaApprovals } from '../kafka/approval.ts';
import { describeConnection, openPostgresStore, postgresConnection } from './postgres.ts';
import { ApprovalService, type ApprovalEvent } from './service.ts';
import { openSqliteStore } from './sqlite.ts';
import type { ApprovalStore } from './store.ts';
import { createWebhookNotifier, type WebhookNotifier } from './webhook.ts';

export interface ApprovalsRuntimeOptions {
  readonly audit: AuditSink;
  readonly logger: Logger;
  /** Where approvers reach the admin listener when `approvals.url` is not set. */
  readonly defaultBaseUrl: () => string;
  readonly clock?: () => number;
  /** Every approval event (webhooks and the like plug in here). */
  readonly notify?: (event: ApprovalEvent) => void;
}

export interface ApprovalsRuntime {
  /** The service once its store is open; undefined before, and when no rule needs approval. */
  current(): ApprovalService | undefined;
  /** Opens the store (in the background) when `config` has an approve rule and it is not open or opening yet. */
  ensure(config: Config): void;
  /** Resolves when the latest opening has finished, successfully or not. */
  settled(): Promise<void>;
  /** For /readyz: undefined when approvals are not in use. */
  health(): { ok: boolean; detail: string } | undefined;
  /** What Kafka connections use; requests needing approval are refused while the store is not open. */
  readonly kafka: KafkaApprovals;
  close(): Promise<void>;
}

export const needsApprovals = (config: Config): boolean => config.rules.some((r) => r.approval !== undefined);

/** The store the config names (PostgreSQL when `postgres` is set, else the SQLite file), and how to name it in logs. */
function storeOf(config: Config['approvals']['store'], logger: Logger): { where: string; open: () => Promise<ApprovalStore> } {
  const postgres = config.postgres;
  if (postgres === undefined) return { where: config.sqlite.path, open: () => openSqliteStore(config.sqlite.path) };
  let where = 'postgres';
  return {
    get where() {
      return where;
    },
    open: async () => {
      const connection = postgresConnection(postgres);
      where = describeConnection(connection);
      return openPostgresStore(connection, { logger });
    },
  };
}

export function createApprovalsRuntime(options: ApprovalsRuntimeOptions): ApprovalsRuntime {
  let service: ApprovalService | undefined;
  let kafka: KafkaApprovals | undefined;
  let opening: Promise<void> | undefined;
  let failure: string | undefined;
  let wanted = false;
  let closed = false;

  let webhook: WebhookNotifier | undefined;

  const open = (config: Config): Promise<void> => (async () => {
    const { url, pollInterval } = config.approvals;
    const storeConfig = storeOf(config.approvals.store, options.logger);
    let hook: WebhookNotifier | undefined;
    try {
      hook = config.approvals.webhook === undefined ? undefined : createWebhookNotifier(config.approvals.webhook, { logger: options.logger });
    } catch (error) {
      failure = `the approvals webhook cannot be used: ${(error as Error).message}`;
      options.logger.error({ err: error }, failure);
      opening = undefined;
      return;
    }
    try {
      const store = await storeConfig.open();
      if (closed) {
        await store.close();
        return;
      }
      const sink = hook;
      const notify = sink === undefined ? options.notify : (event: ApprovalEvent) => {
        sink.notify(event);
        options.notify?.(event);
      };
      webhook = hook;
      service = new ApprovalService({
        store, audit: options.audit, logger: options.logger, baseUrl: url ?? options.defaultBaseUrl(), pollIntervalMs: pollInterval,
        ...(options.clock !== undefined && { clock: options.clock }),
        ...(notify !== undefined && { notify }),
      });
      await service.start();
      kafka = createKafkaApprovals(service);
      failure = undefined;
      options.logger.info({ store: storeConfig.where, ...(hook !== undefined && { webhook: new URL(config.approvals.webhook!.url).origin }) }, 'approvals store open');
    } catch (error) {
      failure = `the approvals store ${storeConfig.where} could not be opened: ${(error as Error).message}`;
      options.logger.error({ err: error }, failure);
      opening = undefined;
    }
  })();

  return {
    current: () => service,
    ensure(config) {
      if (!needsApprovals(config)) return;
      wanted = true;
      if (service === undefined && opening === undefined) opening = open(config);
    },
    settled: () => opening ?? Promise.resolve(),
    health() {
      if (!wanted) return undefined;
      if (service !== undefined) return { ok: true, detail: 'store open' };
      return { ok: false, detail: failure ?? 'opening the store' };
    },
    kafka: {
      prepare: (principal, demands, context) => {
        if (kafka === undefined) return Promise.reject(new Error(failure ?? 'the approvals store is not open yet'));
        return kafka.prepare(principal, demands, context);
      },
      watchRevocations: (onRevoked) => kafka?.watchRevocations(onRevoked) ?? (() => {}),
    },
    async close() {
      closed = true;
      await opening;
      await service?.close();
      await webhook?.close();
    },
  };
}
