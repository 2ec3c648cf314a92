/**
 * @module audit/replay
 * One session's timeline (or one principal's, over a time range) from wherever the records went: a file sink's
 * chained JSONL, tollgate's own log (the stdout sink's lines), or a Kafka sink's topic. Each request with its
 * decision, the rule, latency and sizes, and the records it produced or fetched as the capture kept them (digests,
 * or payloads masked as they were served). Records delivered twice (at-least-once sinks) are shown once, by id.
 */
import type { KafkaCluster } from '../kafka/client/cluster.ts';
import { readTopic } from '../kafka/client/topic-reader.ts';
import { readLines } from './lines.ts';
import type { AuditRecord } from './record.ts';
import { parseId } from './stamp.ts';

export interface ReplayQuery {
  readonly session?: string;
  readonly principal?: string;
  /** ms since the epoch, inclusive. */
  readonly since?: number;
  /** ms since the epoch, exclusive. */
  readonly until?: number;
}

/** The chain's fields, left out so a record reads the same from every sink. */
const CHAIN_FIELDS = ['seq', 'prevHash', 'hash'] as const;

/** An audit record in a parsed line of any of the sinks' formats; undefined for other lines. */
export function recordOf(value: unknown): AuditRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  // A line of tollgate's log: the stdout sink writes `{"channel":"audit","audit":{...}}`.
  if (v['channel'] === 'audit' && typeof v['audit'] === 'object' && v['audit'] !== null) return recordOf(v['audit']);
  if (typeof v['time'] !== 'string' || typeof v['event'] !== 'string' || typeof v['path'] !== 'string') return undefined;
  const record: Record<string, unknown> = { ...v };
  for (const field of CHAIN_FIELDS) delete record[field];
  return record as unknown as AuditRecord;
}

export async function* recordsFromFile(file: string): AsyncGenerator<AuditRecord> {
  for await (const { text } of readLines(file)) {
    if (!text.startsWith('{')) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      continue; // a line cut by a crash is not a record
    }
    const record = recordOf(parsed);
    if (record !== undefined) yield record;
  }
}

export async function* recordsFromKafka(cluster: KafkaCluster, topic: string): AsyncGenerator<AuditRecord> {
  for await (const message of readTopic(cluster, topic)) {
    if (message.value === null) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message.value.toString('utf8'));
    } catch {
      continue;
    }
    const record = recordOf(parsed);
    if (record !== undefined) yield record;
  }
}

export function matches(record: AuditRecord, query: ReplayQuery): boolean {
  if (query.session !== undefined && record.session !== query.session) return false;
  if (query.principal !== undefined && record.principal?.subject !== query.principal) return false;
  if (query.since !== undefined || query.until !== undefined) {
    const time = Date.parse(record.time);
    if (query.since !== undefined && !(time >= query.since)) return false;
    if (query.until !== undefined && !(time < query.until)) return false;
  }
  return true;
}

/** `<prefix>-<n>` ids of one process order by n. */
function idOrder(a: string | undefined, b: string | undefined): number {
  const pa = parseId(a) ?? { prefix: a ?? '', counter: 0 };
  const pb = parseId(b) ?? { prefix: b ?? '', counter: 0 };
  return pa.prefix === pb.prefix ? pa.counter - pb.counter : pa.prefix < pb.prefix ? -1 : pa.prefix > pb.prefix ? 1 : 0;
}

/** The matching records, each once (by id), in time order. */
export async function timeline(records: AsyncIterable<AuditRecord>, query: ReplayQuery): Promise<AuditRecord[]> {
  const seen = new Set<string>();
  const out: AuditRecord[] = [];
  for await (const record of records) {
    if (!matches(record, query)) continue;
    if (record.id !== undefined) {
      if (seen.has(record.id)) continue;
      seen.add(record.id);
    }
    out.push(record);
  }
  return out.sort((a, b) => Date.parse(a.time) - Date.parse(b.time) || idOrder(a.id, b.id));
}

const str = (value: unknown): string | undefined => (typeof value === 'string' || typeof value === 'number' ? String(value) : undefined);

function bytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** What the record is about, in a few words: the Kafka API and its topics, or the HTTP request. */
export function describe(record: AuditRecord): string {
  const d = record.details ?? {};
  const api = str(d['api']);
  if (api !== undefined) {
    const topics = Array.isArray(d['topics'])
      ? (d['topics'] as Array<Record<string, unknown>>).map((t) => {
        const parts = Array.isArray(t['partitions']) ? (t['partitions'] as Array<Record<string, unknown>>) : [];
        const records = parts.reduce((sum, p) => sum + (typeof p['records'] === 'number' ? p['records'] : 0), 0);
        const name = str(t['topic']) ?? str(t['topicId']) ?? '?';
        return `${name}${parts.length > 0 ? `[${parts.map((p) => str(p['partition'])).join(',')}]` : ''}${records > 0 ? ` ${records} records` : ''}`;
      }).join(' ')
      : '';
    const group = str(d['group']) ?? (Array.isArray(d['groups']) ? (d['groups'] as unknown[]).join(',') : undefined);
    return [api, topics, group !== undefined ? `group ${group}` : ''].filter((s) => s !== '').join(' ');
  }
  const method = str(d['method']);
  if (method !== undefined) {
    const kube = d['kubernetes'] as Record<string, unknown> | undefined;
    const kubeText = kube === undefined ? '' : ` (${[str(kube['verb']), str(kube['resource']), [str(kube['namespace']), str(kube['name'])].filter((x) => x !== undefined).join('/')].filter((x) => x !== undefined && x !== '').join(' ')})`;
    return `${method} ${str(d['host']) ?? ''}${str(d['path']) ?? ''}${kubeText}`;
  }
  if (str(d['mechanism']) !== undefined) return `SASL ${str(d['mechanism'])}`;
  return '';
}

/** The captured records of a Produce or Fetch, one line each. */
function captureLines(record: AuditRecord): string[] {
  const capture = record.details?.['capture'] as { records?: Array<Record<string, unknown>>; truncated?: number; error?: string } | undefined;
  if (capture === undefined) return [];
  if (capture.error !== undefined) return [`      capture failed: ${capture.error}`];
  const lines = (capture.records ?? []).map((r) => {
    const where = `${str(r['topic']) ?? '?'}-${str(r['partition']) ?? '?'}@${str(r['offset']) ?? (str(r['error']) !== undefined ? `not written (${str(r['error'])})` : '?')}`;
    const value = str(r['value']);
    const digest = str(r['valueSha256']);
    const size = typeof r['size'] === 'number' ? ` ${bytes(r['size'])}` : '';
    const what = value !== undefined ? `value ${value.length > 160 ? `${value.slice(0, 160)}…` : value}` : digest !== undefined ? `sha256 ${digest}` : JSON.stringify(r);
    return `      ${where}${size}  ${what}`;
  });
  if (capture.truncated !== undefined) lines.push(`      … ${capture.truncated} more records not captured`);
  return lines;
}

/** A readable timeline: a header per session, one line per record, captured records under their request. */
export function renderTimeline(records: readonly AuditRecord[], query: ReplayQuery): string {
  if (records.length === 0) return `no audit records match ${JSON.stringify(query)}\n`;
  const out: string[] = [];
  const bySession = query.session === undefined;
  const first = records[0]!;
  if (!bySession) {
    const principal = records.find((r) => r.principal !== undefined)?.principal;
    out.push(`session ${query.session} (${first.path})${principal !== undefined ? `  principal ${principal.subject} (${principal.authenticatedBy}, ${principal.issuer})` : ''}${first.client !== undefined ? `  client ${first.client}` : ''}`);
  } else {
    out.push(`principal ${query.principal ?? '(any)'}: ${new Set(records.map((r) => r.session)).size} sessions`);
  }
  out.push(`${records.length} records, ${first.time} to ${records.at(-1)!.time}`, '');
  for (const record of records) {
    const columns = [
      record.time,
      ...(bySession ? [record.session ?? '-'] : []),
      record.event,
      record.decision ?? '',
      describe(record),
      record.rule !== undefined ? `rule ${record.rule}` : '',
      record.approval !== undefined ? `approval ${record.approval}` : '',
      record.latencyMs !== undefined ? `${record.latencyMs} ms` : '',
      record.bytes !== undefined ? `${bytes(record.bytes.request ?? 0)}→${bytes(record.bytes.response ?? 0)}` : '',
    ].filter((c) => c !== '');
    out.push(columns.join('  '));
    if (record.reason !== undefined && record.decision !== 'allow') out.push(`      reason: ${record.reason}`);
    out.push(...captureLines(record));
  }
  return `${out.join('\n')}\n`;
}
