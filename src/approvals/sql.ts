/**
 * @module approvals/sql
 * The approval store over any SQL database a small driver adapts (`SqlDriver`): node:sqlite (./sqlite.ts) today, a
 * PostgreSQL client for replicas sharing approvals. The SQL is the portable subset described in ./migrations.ts; what
 * differs between databases (row locks, the migration lock, how a unique violation is reported, placeholders) is
 * the driver's, and so is telling other processes of a change (`announce`, heard through `listen`).
 */
import { randomUUID } from 'node:crypto';
import type { GrantScope } from '../core/approval.ts';
import { applyDecision, personKey, type ApprovalRequest, type ApprovalState, type ApproverDecision, type Grant, type NewApprovalRequest, type Person, type Requester } from './model.ts';
import { migrate } from './migrations.ts';
import { ApprovalStoreError, type ApprovalStore, type DecideResult, type ListFilter, type RequesterApprovals, type StoreChange } from './store.ts';

export type SqlValue = string | number | null;
/** Columns as the database returns them: BIGINT may come back as a string (PostgreSQL's int8). */
export type SqlRow = Record<string, unknown>;

export interface SqlDriver {
  /** Rows of a query with `?` placeholders. */
  query<T extends SqlRow = SqlRow>(sql: string, params: readonly SqlValue[]): Promise<T[]>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(sql: string, params: readonly SqlValue[]): Promise<number>;
  /** Runs `work` in one transaction (committed when it resolves, rolled back when it throws), serialized with others. */
  transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  /** Whether `error` is a unique-constraint violation. */
  isUniqueViolation(error: unknown): boolean;
  /**
   * Calls `listener` with every payload any process announces, from now until the returned function is called.
   * Absent where the database cannot push (SQLite).
   */
  listen?(listener: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface SqlTransaction extends Pick<SqlDriver, 'query' | 'run'> {
  /** Appended to a SELECT to lock its rows until the transaction ends (' FOR UPDATE'; '' where the transaction locks the whole database). */
  readonly lockRows: string;
  /** Takes the lock that keeps two processes from migrating at once (none where the transaction locks the database). */
  lockForMigration(): Promise<void>;
  /** Tells every listening process `payload` once the transaction commits (nothing if it rolls back); a no-op where nothing can listen. */
  announce(payload: string): Promise<void>;
}

const REQUEST_COLUMNS = 'id, state, rule, mode, requester_key, requester, scope_key, scope, summary, reason, context, approver_groups, min_approvals, grant_ms, one_time, created_at, expires_at, decided_at';
const GRANT_COLUMNS = 'id, request_id, requester_key, scope_key, one_time, created_at, expires_at, used_at, revoked_at, revoked_by, revoke_reason';

const num = (v: unknown): number => Number(v);
const optNum = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
const text = (v: unknown): string => String(v);

function json<T>(v: unknown, what: string): T {
  try {
    return JSON.parse(String(v)) as T;
  } catch {
    throw new ApprovalStoreError(`approvals store: the ${what} column holds no JSON`);
  }
}

function grantOf(row: SqlRow): Grant {
  const usedAt = optNum(row['used_at']);
  const revokedAt = optNum(row['revoked_at']);
  return {
    id: text(row['id']), approval: text(row['request_id']), requesterKey: text(row['requester_key']), scopeKey: text(row['scope_key']),
    oneTime: num(row['one_time']) === 1, createdAt: num(row['created_at']), expiresAt: num(row['expires_at']),
    ...(usedAt !== undefined && { usedAt }),
    ...(revokedAt !== undefined && { revokedAt }),
    ...(row['revoked_by'] != null && { revokedBy: json<Person>(row['revoked_by'], 'revoked_by') }),
    ...(row['revoke_reason'] != null && { revokeReason: text(row['revoke_reason']) }),
  };
}

function decisionOf(row: SqlRow): ApproverDecision {
  return {
    approver: json<Person>(row['approver'], 'approver'),
    verdict: text(row['verdict']) === 'reject' ? 'reject' : 'approve',
    ...(row['reason'] != null && { reason: text(row['reason']) }),
    at: num(row['decided_at']),
  };
}

function requestOf(row: SqlRow, decisions: readonly ApproverDecision[], grant: Grant | undefined): ApprovalRequest {
  const decidedAt = optNum(row['decided_at']);
  return {
    id: text(row['id']),
    state: text(row['state']) as ApprovalState,
    rule: text(row['rule']),
    mode: text(row['mode']) === 'hold' ? 'hold' : 'ticket',
    requester: json<Requester>(row['requester'], 'requester'),
    requesterKey: text(row['requester_key']),
    scope: json<GrantScope>(row['scope'], 'scope'),
    scopeKey: text(row['scope_key']),
    summary: text(row['summary']),
    reason: text(row['reason']),
    context: json<Record<string, string | number>>(row['context'], 'context'),
    approverGroups: json<string[]>(row['approver_groups'], 'approver_groups'),
    min: num(row['min_approvals']),
    grantMs: num(row['grant_ms']),
    oneTime: num(row['one_time']) === 1,
    createdAt: num(row['created_at']),
    expiresAt: num(row['expires_at']),
    ...(decidedAt !== undefined && { decidedAt }),
    decisions,
    ...(grant !== undefined && { grant }),
  };
}

type Reader = Pick<SqlDriver, 'query'>;

/** Requests of `rows` with their decisions and grants, in the rows' order. */
async function hydrate(db: Reader, rows: readonly SqlRow[]): Promise<ApprovalRequest[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => text(r['id']));
  const marks = ids.map(() => '?').join(', ');
  const decisions = await db.query(`SELECT request_id, approver, verdict, reason, decided_at FROM approval_decisions WHERE request_id IN (${marks}) ORDER BY decided_at, approver_key`, ids);
  const grants = await db.query(`SELECT ${GRANT_COLUMNS} FROM approval_grants WHERE request_id IN (${marks})`, ids);
  const byRequest = new Map<string, ApproverDecision[]>();
  for (const d of decisions) {
    const id = text(d['request_id']);
    let list = byRequest.get(id);
    if (list === undefined) byRequest.set(id, (list = []));
    list.push(decisionOf(d));
  }
  const grantByRequest = new Map(grants.map((g) => [text(g['request_id']), grantOf(g)]));
  return rows.map((r) => requestOf(r, byRequest.get(text(r['id'])) ?? [], grantByRequest.get(text(r['id']))));
}

async function getRequest(db: Reader, id: string, lock = ''): Promise<ApprovalRequest | undefined> {
  const rows = await db.query(`SELECT ${REQUEST_COLUMNS} FROM approval_requests WHERE id = ?${lock}`, [id]);
  return (await hydrate(db, rows))[0];
}

/** An announced change: `o` the store object that made it (so it does not hear its own), then the change. */
interface Announcement {
  readonly o: string;
  readonly k: StoreChange['kind'];
  readonly a: string;
  readonly g?: string;
}

const CHANGE_KINDS: ReadonlySet<string> = new Set<StoreChange['kind']>(['requested', 'decided', 'revoked', 'expired']);

function changeOf(payload: string): { origin: string; change: StoreChange } | undefined {
  try {
    const a = JSON.parse(payload) as Partial<Announcement>;
    if (typeof a.o !== 'string' || typeof a.a !== 'string' || typeof a.k !== 'string' || !CHANGE_KINDS.has(a.k)) return undefined;
    return { origin: a.o, change: { kind: a.k, approval: a.a, ...(typeof a.g === 'string' && { grant: a.g }) } };
  } catch {
    return undefined;
  }
}

export class SqlApprovalStore implements ApprovalStore {
  readonly #db: SqlDriver;
  /** Tells this object's announcements apart from other processes' (and other objects' in this process). */
  readonly #origin = randomUUID();

  private constructor(db: SqlDriver) {
    this.#db = db;
  }

  #announce(tx: SqlTransaction, kind: StoreChange['kind'], approval: string, grant?: string): Promise<void> {
    const a: Announcement = { o: this.#origin, k: kind, a: approval, ...(grant !== undefined && { g: grant }) };
    return tx.announce(JSON.stringify(a));
  }

  /** Opens the store on `driver`, migrating its schema first. */
  static async open(driver: SqlDriver, now: number = Date.now()): Promise<SqlApprovalStore> {
    try {
      await migrate(driver, now);
    } catch (error) {
      // The store never opened, so nobody else will close its connections.
      await driver.close().catch(() => {});
      throw error;
    }
    return new SqlApprovalStore(driver);
  }

  async open(request: NewApprovalRequest, now: number): Promise<{ request: ApprovalRequest; created: boolean }> {
    const attempt = () => this.#db.transaction(async (tx) => {
      // A pending request past its expiry must not keep the slot: it is expired now, and a new one is filed.
      await tx.run(`UPDATE approval_requests SET state = 'expired', decided_at = expires_at WHERE requester_key = ? AND rule = ? AND scope_key = ? AND state = 'pending' AND expires_at <= ?`,
        [request.requesterKey, request.rule, request.scopeKey, now]);
      const existing = await tx.query(`SELECT ${REQUEST_COLUMNS} FROM approval_requests WHERE requester_key = ? AND rule = ? AND scope_key = ? AND state = 'pending'`,
        [request.requesterKey, request.rule, request.scopeKey]);
      if (existing.length > 0) return { request: (await hydrate(tx, existing))[0]!, created: false };
      await tx.run(`INSERT INTO approval_requests (${REQUEST_COLUMNS}) VALUES (${REQUEST_COLUMNS.split(',').map(() => '?').join(', ')})`, [
        request.id, 'pending', request.rule, request.mode, request.requesterKey, JSON.stringify(request.requester), request.scopeKey,
        JSON.stringify(request.scope), request.summary, request.reason, JSON.stringify(request.context), JSON.stringify(request.approverGroups),
        request.min, request.grantMs, request.oneTime ? 1 : 0, request.createdAt, request.expiresAt, null,
      ]);
      await this.#announce(tx, 'requested', request.id);
      return { request: { ...request, state: 'pending' as const, decisions: [] }, created: true };
    });
    try {
      return await attempt();
    } catch (error) {
      // Another process filed the same request between our look and our insert: take theirs.
      if (this.#db.isUniqueViolation(error)) return attempt();
      throw error;
    }
  }

  get(id: string): Promise<ApprovalRequest | undefined> {
    return getRequest(this.#db, id);
  }

  async list(filter: ListFilter = {}): Promise<ApprovalRequest[]> {
    const limit = Math.max(1, Math.min(filter.limit ?? 100, 1000));
    const rows = filter.state === undefined
      ? await this.#db.query(`SELECT ${REQUEST_COLUMNS} FROM approval_requests ORDER BY created_at DESC, id LIMIT ${limit}`, [])
      : await this.#db.query(`SELECT ${REQUEST_COLUMNS} FROM approval_requests WHERE state = ? ORDER BY created_at DESC, id LIMIT ${limit}`, [filter.state]);
    return hydrate(this.#db, rows);
  }

  async forRequester(requesterKey: string, now: number): Promise<RequesterApprovals> {
    const pending = await this.#db.query(`SELECT ${REQUEST_COLUMNS} FROM approval_requests WHERE requester_key = ? AND state = 'pending' AND expires_at > ?`, [requesterKey, now]);
    const grants = await this.#db.query(`SELECT ${GRANT_COLUMNS} FROM approval_grants WHERE requester_key = ? AND expires_at > ? AND used_at IS NULL AND revoked_at IS NULL`, [requesterKey, now]);
    return { pending: await hydrate(this.#db, pending), grants: grants.map(grantOf) };
  }

  decide(id: string, decision: ApproverDecision, grantId: string): Promise<DecideResult> {
    return this.#db.transaction(async (tx): Promise<DecideResult> => {
      const request = await getRequest(tx, id, tx.lockRows);
      if (request === undefined) return { ok: false, refusal: 'not_found' };
      const outcome = applyDecision(request, decision, grantId);
      if (!outcome.ok) return { ok: false, refusal: outcome.refusal, request };
      await tx.run('INSERT INTO approval_decisions (request_id, approver_key, approver, verdict, reason, decided_at) VALUES (?, ?, ?, ?, ?, ?)', [
        id, personKey(decision.approver), JSON.stringify({ subject: decision.approver.subject, issuer: decision.approver.issuer }),
        decision.verdict, decision.reason ?? null, decision.at,
      ]);
      if (outcome.state !== 'pending') {
        await tx.run('UPDATE approval_requests SET state = ?, decided_at = ? WHERE id = ?', [outcome.state, decision.at, id]);
      }
      const grant = outcome.grant;
      if (grant !== undefined) {
        await tx.run(`INSERT INTO approval_grants (id, request_id, requester_key, scope_key, one_time, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
          [grant.id, grant.approval, grant.requesterKey, grant.scopeKey, grant.oneTime ? 1 : 0, grant.createdAt, grant.expiresAt]);
      }
      await this.#announce(tx, 'decided', id);
      const updated: ApprovalRequest = {
        ...request,
        state: outcome.state,
        ...(outcome.state !== 'pending' && { decidedAt: decision.at }),
        decisions: [...request.decisions, decision],
        ...(grant !== undefined && { grant }),
      };
      return { ok: true, request: updated, ...(grant !== undefined && { grant }) };
    });
  }

  async useGrant(grantId: string, now: number): Promise<boolean> {
    const changed = await this.#db.run('UPDATE approval_grants SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?', [now, grantId, now]);
    return changed === 1;
  }

  revoke(id: string, by: Person, reason: string, now: number): Promise<Grant | undefined> {
    return this.#db.transaction(async (tx) => {
      const changed = await tx.run('UPDATE approval_grants SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE request_id = ? AND revoked_at IS NULL AND used_at IS NULL AND expires_at > ?',
        [now, JSON.stringify({ subject: by.subject, issuer: by.issuer }), reason, id, now]);
      if (changed === 0) return undefined;
      const rows = await tx.query(`SELECT ${GRANT_COLUMNS} FROM approval_grants WHERE request_id = ?`, [id]);
      if (rows[0] === undefined) return undefined;
      const grant = grantOf(rows[0]);
      await this.#announce(tx, 'revoked', id, grant.id);
      return grant;
    });
  }

  expire(now: number): Promise<ApprovalRequest[]> {
    return this.#db.transaction(async (tx) => {
      const rows = await tx.query(`SELECT ${REQUEST_COLUMNS} FROM approval_requests WHERE state = 'pending' AND expires_at <= ?${tx.lockRows}`, [now]);
      if (rows.length === 0) return [];
      await tx.run(`UPDATE approval_requests SET state = 'expired', decided_at = expires_at WHERE state = 'pending' AND expires_at <= ?`, [now]);
      const expired = await hydrate(tx, rows);
      for (const r of expired) await this.#announce(tx, 'expired', r.id);
      return expired.map((r) => ({ ...r, state: 'expired' as const, decidedAt: r.expiresAt }));
    });
  }

  async watch(listener: (change: StoreChange) => void): Promise<(() => Promise<void>) | undefined> {
    if (this.#db.listen === undefined) return undefined;
    return this.#db.listen((payload) => {
      const heard = changeOf(payload);
      // Not ours, and not malformed (another program on the channel): a change to re-read.
      if (heard !== undefined && heard.origin !== this.#origin) listener(heard.change);
    });
  }

  close(): Promise<void> {
    return this.#db.close();
  }
}
