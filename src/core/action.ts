/**
 * @module core/action
 * What a request asks to do, in protocol-neutral terms. Adapters translate wire traffic into an `Action`; the policy
 * engine sees nothing else.
 */

export interface HttpAction {
  readonly kind: 'http';
  /** Upper-case method as the client sent it. */
  readonly method: string;
  /** `:authority` without any port normalisation. */
  readonly host: string;
  /** Path without the query string. */
  readonly path: string;
}

export type KafkaOperation = 'produce' | 'consume' | 'describe' | 'admin';

export interface KafkaAction {
  readonly kind: 'kafka';
  /** Kafka API name, e.g. `Produce`, `DeleteTopics`. */
  readonly api: string;
  readonly operation: KafkaOperation;
  readonly topic?: string;
  /** Consumer group id (group coordinator APIs, offset commits). */
  readonly group?: string;
  /** Transactional id (transaction coordinator APIs). */
  readonly transactionalId?: string;
}

export type Action = HttpAction | KafkaAction;
