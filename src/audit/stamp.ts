/**
 * @module audit/stamp
 * What the pipeline adds to a record an adapter built, once, before any sink sees it: a unique `id`, and the
 * `session`, `client` and `decision` an adapter left out, derived from what the record already says. Adapters stay
 * small (they describe what happened); every sink gets the same stamped record.
 */
import { randomBytes } from 'node:crypto';
import type { AuditDecision, AuditRecord } from './record.ts';

/** The last dotted segment of an event, as a decision; events that are not decisions have none. */
const DECISION_OF_SEGMENT: Readonly<Record<string, AuditDecision>> = {
  allow: 'allow',
  allowed: 'allow',
  deny: 'deny',
  denied: 'deny',
  partially_denied: 'partial',
  unauthenticated: 'unauthenticated',
  authentication_failed: 'unauthenticated',
  audit_unavailable: 'refused',
};

export function decisionOf(event: string): AuditDecision | undefined {
  // A Kafka request that was forwarded is `kafka.request` (its denials are `kafka.request.denied`).
  if (event === 'kafka.request') return 'allow';
  return DECISION_OF_SEGMENT[event.slice(event.lastIndexOf('.') + 1)];
}

/** `host:port` from the connection facts either path records (HTTP `sourceAddress`, Kafka `source.address`). */
export function clientOf(connection: AuditRecord['connection']): string | undefined {
  if (connection === undefined) return undefined;
  const address = connection['sourceAddress'] ?? connection['source.address'];
  if (address === undefined) return undefined;
  const port = connection['sourcePort'] ?? connection['source.port'];
  const text = String(address);
  // Envoy's network attribute `source.address` is already `host:port` (`[::1]:5000` for IPv6).
  if (port === undefined || text.endsWith(`:${String(port)}`)) return text;
  return `${text.includes(':') ? `[${text}]` : text}:${String(port)}`;
}

export type Stamper = (record: AuditRecord) => AuditRecord;

/** An id's process prefix and counter (`<prefix>-<n>`); undefined for ids not made by a stamper. */
/** `details.approval.id`, as approvals and the adapters write it. */
export function approvalOf(details: AuditRecord['details']): string | undefined {
  const approval = details?.['approval'];
  if (approval === null || typeof approval !== 'object') return undefined;
  const id = (approval as { id?: unknown }).id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

export function parseId(id: string | undefined): { prefix: string; counter: number } | undefined {
  if (id === undefined) return undefined;
  const at = id.lastIndexOf('-');
  const counter = Number(id.slice(at + 1));
  return at > 0 && Number.isSafeInteger(counter) && counter > 0 ? { prefix: id.slice(0, at), counter } : undefined;
}

/**
 * Ids are `<process prefix>-<counter>`: the prefix (start time in base 36 and 32 random bits) makes them unique
 * across processes and restarts, the counter orders a process's records.
 */
export function createStamper(prefix = `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`): Stamper {
  let counter = 0;
  return (record) => {
    const client = record.client ?? clientOf(record.connection);
    const decision = record.decision ?? decisionOf(record.event);
    // A record without a session of its own belongs to its principal's traffic from its client.
    const session = record.session ?? `${record.principal?.subject ?? 'anonymous'}@${client ?? 'unknown'}`;
    // Adapters put the approval a request went through in details.approval {id, state}; it is also a field of its own.
    const approval = record.approval ?? approvalOf(record.details);
    return {
      id: record.id ?? `${prefix}-${++counter}`,
      ...record,
      session,
      ...(client !== undefined && { client }),
      ...(decision !== undefined && { decision }),
      ...(approval !== undefined && { approval }),
    };
  };
}
