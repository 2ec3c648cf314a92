/**
 * @module approvals/service
 * Just-in-time approval over a store: filing requests for what an `approve` rule demands, what a requester may use
 * (`view`: their live grants and pending requests, read from the store at the moment of the request), holding a
 * request until it is decided, and the approver's side: approve, reject, revoke, with who-may-decide enforced here:
 * an approver is in one of the rule's approver groups and is never the requester; `min` distinct approvers approve;
 * one rejection rejects.
 *
 * Every change is an event (`subscribe`, and the `notify` hook for webhooks and the like): held requests wake on
 * them, Kafka connections close on a revoked grant, and each is an audit record (`approval.<event>`, with
 * `details.approval: {id, state}`). Changes another tollgate process records in a shared store arrive through the
 * store's `watch` (PostgreSQL LISTEN/NOTIFY) as `peer` events: they wake held requests and reach subscribers (so a
 * revocation closes Kafka connections on every replica), but are not audited or notified again here, where they were
 * not made. Held requests also re-read the store every `pollIntervalMs`, which is all a store without `watch`
 * (SQLite shared by processes on one host) has.
 */
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/record.ts';
import { describeScope, isRequester, requesterKey, scopeKey } from '../core/approval.ts';
import type { ApprovalDemand, GrantUse } from '../core/decision.ts';
import type { Principal } from '../core/principal.ts';
import type { ApprovalView } from '../policy/engine.ts';
import { effectiveState, newId, type ApprovalRequest, type ApprovalState, type Grant, type Person, type Verdict } from './model.ts';
import type { ApprovalStore, DecideResult, StoreChange } from './store.ts';

export type ApprovalEventType = 'requested' | 'decided' | 'approved' | 'rejected' | 'expired' | 'revoked';

export interface ApprovalEvent {
  readonly type: ApprovalEventType;
  readonly request: ApprovalRequest;
  /** approved: the new grant; revoked: the revoked one. */
  readonly grant?: Grant;
  /** Who acted (the requester for `requested`, an approver otherwise); absent for `expired`. */
  readonly actor?: Person;
  /** Where an approver sees and decides it. */
  readonly url: string;
  /** Recorded by another tollgate process sharing the store (audited and notified there, not here). */
  readonly peer?: true;
}

export type ApprovalErrorCode = 'not_found' | 'not_an_approver' | 'self_approval' | 'not_pending' | 'expired' | 'already_decided' | 'reason_required' | 'no_live_grant' | 'not_allowed';

const HTTP_STATUS: Readonly<Record<ApprovalErrorCode, number>> = {
  not_found: 404, not_an_approver: 403, self_approval: 403, not_allowed: 403,
  not_pending: 409, expired: 409, already_decided: 409, no_live_grant: 409, reason_required: 400,
};

/** A refused approver action; `message` is safe to show the approver. */
export class ApprovalError extends Error {
  override readonly name = 'ApprovalError';
  readonly code: ApprovalErrorCode;
  constructor(code: ApprovalErrorCode, message: string) {
    super(message);
    this.code = code;
  }
  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
}

export interface ApprovalServiceOptions {
  readonly store: ApprovalStore;
  readonly audit: AuditSink;
  readonly logger: Logger;
  /** Where approvers reach the admin listener: a request's URL is `<baseUrl>/approvals/<id>`. */
  readonly baseUrl: string;
  /** How often held requests re-read the store and pending requests are checked for expiry. */
  readonly pollIntervalMs: number;
  /** Wall-clock epoch milliseconds; injectable so tests can move time (grant expiry). */
  readonly clock?: () => number;
  /** Every event, after it is stored (webhooks, chat notifications). Must not throw. */
  readonly notify?: (event: ApprovalEvent) => void;
}

/** Where the request came from, for the approver: client id, source address, the request line. */
export type RequestContext = Readonly<Record<string, string | number>>;

/**
 * One principal's approvals as read from the store for one request: what `decide` consults. Grants taken for the
 * request (a one-time grant marked used) stay visible to it; pending requests filed for it are added.
 */
export class PrincipalApprovals implements ApprovalView {
  readonly #grants = new Map<string, Grant[]>();
  readonly #pending = new Map<string, string>();

  constructor(pending: readonly ApprovalRequest[], grants: readonly Grant[]) {
    for (const r of pending) this.addPending(r);
    for (const g of grants) {
      let list = this.#grants.get(g.scopeKey);
      if (list === undefined) this.#grants.set(g.scopeKey, (list = []));
      list.push(g);
    }
    // A reusable grant before a one-time one (so the latter is not spent needlessly), then the longest-lived.
    for (const list of this.#grants.values()) list.sort((a, b) => Number(a.oneTime) - Number(b.oneTime) || b.expiresAt - a.expiresAt);
  }

  grant(scope: string): GrantUse | undefined {
    const g = this.#grants.get(scope)?.[0];
    return g === undefined ? undefined : { id: g.id, approval: g.approval, oneTime: g.oneTime, expiresAt: g.expiresAt };
  }

  pending(scope: string, rule: string): string | undefined {
    return this.#pending.get(`${rule}\n${scope}`);
  }

  addPending(request: Pick<ApprovalRequest, 'id' | 'rule' | 'scopeKey'>): void {
    this.#pending.set(`${request.rule}\n${request.scopeKey}`, request.id);
  }

  /** Forgets a grant that turned out not to be usable (another request used it up first). */
  drop(grantId: string): void {
    for (const [scope, list] of this.#grants) {
      const rest = list.filter((g) => g.id !== grantId);
      if (rest.length === 0) this.#grants.delete(scope);
      else this.#grants.set(scope, rest);
    }
  }
}

const person = (p: Person): Person => ({ subject: p.subject, issuer: p.issuer });
const FINAL: ReadonlySet<ApprovalState> = new Set(['approved', 'rejected', 'expired']);

export class ApprovalService {
  readonly #store: ApprovalStore;
  readonly #options: ApprovalServiceOptions;
  readonly #clock: () => number;
  readonly #listeners = new Set<(event: ApprovalEvent) => void>();
  readonly #waiters = new Map<string, Set<() => void>>();
  #sweeper: NodeJS.Timeout | undefined;
  #watching: Promise<(() => Promise<void>) | undefined> | undefined;
  /** Draining: held requests are answered now, and no new hold starts. */
  #holding = true;

  constructor(options: ApprovalServiceOptions) {
    this.#store = options.store;
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
  }

  now(): number {
    return this.#clock();
  }

  urlOf(id: string): string {
    return `${this.#options.baseUrl.replace(/\/+$/, '')}/approvals/${encodeURIComponent(id)}`;
  }

  /**
   * Starts the expiry sweep (every `pollIntervalMs`; it does not keep the process alive) and listening for other
   * processes' changes where the store can push them; resolves once listening (never rejects: re-reading covers).
   */
  async start(): Promise<void> {
    if (this.#sweeper !== undefined) return;
    this.#sweeper = setInterval(() => {
      this.sweep().catch((err: unknown) => this.#options.logger.error({ err }, 'approvals: expiry sweep failed'));
    }, this.#options.pollIntervalMs);
    this.#sweeper.unref();
    this.#watching = this.#store.watch?.((change) => this.#onPeerChange(change)).catch((err: unknown) => {
      this.#options.logger.warn({ err }, 'approvals: cannot listen for other processes\' changes; held requests re-read the store instead');
      return undefined;
    });
    await this.#watching;
  }

  async close(): Promise<void> {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.stopHolding();
    const unwatch = await this.#watching;
    await unwatch?.();
    await this.#store.close();
  }

  /** Another process changed approval `change.approval`: wake what waits on it, and tell subscribers what became of it. */
  #onPeerChange(change: StoreChange): void {
    for (const wake of [...(this.#waiters.get(change.approval) ?? [])]) wake();
    if (this.#listeners.size === 0) return;
    this.#store.get(change.approval).then((request) => {
      if (request === undefined) return;
      const type: ApprovalEventType = change.kind === 'requested' ? 'requested' : change.kind === 'revoked' ? 'revoked' : change.kind === 'expired' ? 'expired'
        : request.state === 'approved' ? 'approved' : request.state === 'rejected' ? 'rejected' : 'decided';
      // The revoked grant is the request's (one grant per approval); its id in the change is checked, not trusted blindly.
      const grant = request.grant !== undefined && (change.grant === undefined || request.grant.id === change.grant) ? request.grant : undefined;
      if (type === 'revoked' && grant === undefined) return;
      this.#tell({ type, request, ...(grant !== undefined && (type === 'approved' || type === 'revoked') && { grant }), url: this.urlOf(request.id), peer: true });
    }).catch((err: unknown) => this.#options.logger.warn({ err, approval: change.approval }, 'approvals: cannot read a change another process made'));
  }

  #tell(event: ApprovalEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.#options.logger.error({ err, event: event.type }, 'approvals: an event listener failed');
      }
    }
  }

  /**
   * Ends every hold now (a draining process answers its held requests instead of being cut at the drain deadline);
   * their approval requests stay pending, so a retry, on any process sharing the store, joins them.
   */
  stopHolding(): void {
    this.#holding = false;
    for (const wake of [...this.#waiters.values()].flatMap((s) => [...s])) wake();
  }

  /** Listens to every event of this process; returns the function that stops listening. */
  subscribe(listener: (event: ApprovalEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // -----------------------------------------------------------------------------------------------------------
  // The requester's side (adapters)
  // -----------------------------------------------------------------------------------------------------------

  /** The principal's live grants and pending requests, read now. */
  async view(principal: Principal): Promise<PrincipalApprovals> {
    const { pending, grants } = await this.#store.forRequester(requesterKey(principal), this.#clock());
    return new PrincipalApprovals(pending, grants);
  }

  /**
   * Files the approval request `demand` asks for, or finds the one already pending for the same principal, rule and
   * scope (a retry). `reason` is why (the rule's reason); `context` what the approver should see of where it came from.
   */
  async open(principal: Principal, demand: ApprovalDemand, reason: string, context: RequestContext = {}): Promise<ApprovalRequest> {
    const now = this.#clock();
    const { spec } = demand;
    const { request, created } = await this.#store.open({
      id: newId('apr'),
      rule: demand.rule,
      mode: spec.mode,
      requester: { subject: principal.subject, issuer: principal.issuer, groups: [...principal.groups] },
      requesterKey: requesterKey(principal),
      scope: demand.scope,
      scopeKey: scopeKey(demand.scope),
      summary: describeScope(demand.scope),
      reason,
      context,
      approverGroups: spec.approverGroups,
      min: spec.min,
      grantMs: spec.grantMs,
      oneTime: spec.oneTime,
      createdAt: now,
      expiresAt: now + spec.waitMs,
    }, now);
    if (created) this.#emit({ type: 'requested', request, actor: person(principal), url: this.urlOf(request.id) }, principal);
    return request;
  }

  /**
   * Takes a grant for one request: a one-time grant is marked used, and false means another request used it (or it
   * was revoked or expired) since it was read. A reusable grant is not written.
   */
  async use(grant: GrantUse): Promise<boolean> {
    if (!grant.oneTime) return true;
    return this.#store.useGrant(grant.id, this.#clock());
  }

  /**
   * Waits until approval `id` is approved, rejected or expired, `deadline` (epoch ms) passes, or `signal` aborts;
   * resolves to the request as it then is (still `pending` at a deadline before its own expiry).
   */
  async wait(id: string, deadline: number, signal?: AbortSignal): Promise<ApprovalRequest | undefined> {
    for (;;) {
      let request = await this.#store.get(id);
      if (request === undefined) return undefined;
      const now = this.#clock();
      if (effectiveState(request, now) === 'expired' && request.state === 'pending') {
        await this.sweep();
        request = (await this.#store.get(id)) ?? request;
      }
      if (FINAL.has(request.state) || now >= deadline || signal?.aborted === true || !this.#holding) return request;
      await this.#sleep(id, Math.min(this.#options.pollIntervalMs, deadline - now), signal);
    }
  }

  #sleep(id: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      let waiters = this.#waiters.get(id);
      if (waiters === undefined) this.#waiters.set(id, (waiters = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        waiters.delete(done);
        if (waiters.size === 0 && this.#waiters.get(id) === waiters) this.#waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      signal?.addEventListener('abort', done, { once: true });
      waiters.add(done);
    });
  }

  /** Marks pending requests past their expiry expired, each an event. */
  async sweep(): Promise<void> {
    for (const request of await this.#store.expire(this.#clock())) {
      this.#emit({ type: 'expired', request, url: this.urlOf(request.id) }, undefined);
    }
  }

  // -----------------------------------------------------------------------------------------------------------
  // The approver's side (admin API)
  // -----------------------------------------------------------------------------------------------------------

  /** Whether `viewer` may see the request: its requester, or a member of one of its approver groups. */
  #mayView(request: ApprovalRequest, viewer: Principal): boolean {
    return isRequester(request.requester, viewer) || viewer.groups.some((g) => request.approverGroups.includes(g));
  }

  /** The request, as `viewer` may see it (their own, or one they may decide); else not_found. */
  async get(id: string, viewer: Principal): Promise<ApprovalRequest> {
    const request = await this.#store.get(id);
    if (request === undefined || !this.#mayView(request, viewer)) throw new ApprovalError('not_found', `no approval ${id} that ${viewer.subject} may see`);
    return this.#current(request);
  }

  /** Requests `viewer` may see, newest first (pending ones by default). */
  async list(viewer: Principal, state: ApprovalState | undefined = 'pending', limit = 100): Promise<ApprovalRequest[]> {
    // Expired requests are written by the sweep; run it so `pending` means pending.
    await this.sweep();
    const all = await this.#store.list({ ...(state !== undefined && { state }), limit: 1000 });
    return all.filter((r) => this.#mayView(r, viewer)).slice(0, limit).map((r) => this.#current(r));
  }

  /** Requests still awaiting approvers, whoever asked (for the pending gauge; no viewer's filter). */
  async pendingCount(): Promise<number> {
    await this.sweep();
    return (await this.#store.list({ state: 'pending', limit: 100_000 })).length;
  }

  #current(request: ApprovalRequest): ApprovalRequest {
    const state = effectiveState(request, this.#clock());
    return state === request.state ? request : { ...request, state };
  }

  approve(id: string, approver: Principal, reason?: string): Promise<ApprovalRequest> {
    return this.#decide(id, approver, 'approve', reason);
  }

  reject(id: string, approver: Principal, reason: string): Promise<ApprovalRequest> {
    return this.#decide(id, approver, 'reject', reason);
  }

  async #decide(id: string, approver: Principal, verdict: Verdict, reason: string | undefined): Promise<ApprovalRequest> {
    const request = await this.#store.get(id);
    if (request === undefined) throw new ApprovalError('not_found', `no approval ${id}`);
    if (isRequester(request.requester, approver)) {
      throw new ApprovalError('self_approval', `${approver.subject} asked for approval ${id} and cannot ${verdict} it: another approver must`);
    }
    if (!approver.groups.some((g) => request.approverGroups.includes(g))) {
      throw new ApprovalError('not_an_approver', `${approver.subject} is not in an approver group of approval ${id} (${request.approverGroups.join(', ')})`);
    }
    const text = reason?.trim();
    if (verdict === 'reject' && (text === undefined || text === '')) throw new ApprovalError('reason_required', 'a rejection needs a reason (the requester is told it)');
    const result: DecideResult = await this.#store.decide(id, {
      approver: person(approver), verdict, ...(text !== undefined && text !== '' && { reason: text }), at: this.#clock(),
    }, newId('grt'));
    if (!result.ok) {
      switch (result.refusal) {
        case 'not_found': throw new ApprovalError('not_found', `no approval ${id}`);
        case 'expired': throw new ApprovalError('expired', `approval ${id} expired at ${new Date(request.expiresAt).toISOString()} without a decision`);
        case 'already_decided': throw new ApprovalError('already_decided', `${approver.subject} has already decided approval ${id}`);
        case 'not_pending': throw new ApprovalError('not_pending', `approval ${id} is already ${result.request?.state ?? request.state}`);
      }
    }
    const updated = result.request;
    const type: ApprovalEventType = updated.state === 'pending' ? 'decided' : updated.state === 'approved' ? 'approved' : 'rejected';
    this.#emit({ type, request: updated, ...(result.grant !== undefined && { grant: result.grant }), actor: person(approver), url: this.urlOf(id) }, approver);
    return updated;
  }

  /**
   * Revokes the live grant of approval `id`: the next request it would have let through is refused, and Kafka
   * connections relying on it are closed. An approver of the request, or its requester, may revoke it.
   */
  async revoke(id: string, actor: Principal, reason: string): Promise<Grant> {
    const request = await this.#store.get(id);
    if (request === undefined || !this.#mayView(request, actor)) throw new ApprovalError('not_found', `no approval ${id} that ${actor.subject} may see`);
    const text = reason.trim();
    if (text === '') throw new ApprovalError('reason_required', 'a revocation needs a reason');
    const grant = await this.#store.revoke(id, person(actor), text, this.#clock());
    if (grant === undefined) throw new ApprovalError('no_live_grant', `approval ${id} has no live grant to revoke (state ${effectiveState(request, this.#clock())}${request.grant === undefined ? '' : request.grant.usedAt !== undefined ? ', its one-time grant is used up' : ', its grant has expired or was revoked'})`);
    this.#emit({ type: 'revoked', request: { ...request, grant }, grant, actor: person(actor), url: this.urlOf(id) }, actor);
    return grant;
  }

  #emit(event: ApprovalEvent, principal: Principal | undefined): void {
    const { request, grant } = event;
    this.#options.audit.write({
      time: new Date(this.#clock()).toISOString(),
      path: request.scope.path,
      event: `approval.${event.type}`,
      ...(principal !== undefined && { principal }),
      rule: request.rule,
      ...(event.type === 'rejected' || event.type === 'revoked' ? { reason: event.type === 'revoked' ? grant?.revokeReason ?? '' : request.decisions.at(-1)?.reason ?? '' } : {}),
      details: {
        approval: { id: request.id, state: event.type === 'revoked' ? 'revoked' : request.state },
        requester: request.requester.subject,
        request: request.summary,
        approvers: { groups: request.approverGroups, min: request.min, decided: request.decisions.length },
        mode: request.mode,
        ...(grant !== undefined && { grant: { id: grant.id, expiresAt: new Date(grant.expiresAt).toISOString(), oneTime: grant.oneTime } }),
        url: event.url,
      },
    });
    this.#options.logger.info({ approval: request.id, event: event.type, rule: request.rule, requester: request.requester.subject, actor: event.actor?.subject }, `approval ${event.type}`);
    for (const wake of [...(this.#waiters.get(request.id) ?? [])]) wake();
    this.#tell(event);
    try {
      this.#options.notify?.(event);
    } catch (err) {
      this.#options.logger.error({ err, event: event.type }, 'approvals: the notify hook failed');
    }
  }
}
