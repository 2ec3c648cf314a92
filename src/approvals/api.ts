/**
 * @module approvals/api
 * The approver HTTP API on the admin listener, JSON in and out. Every call is authenticated like any other caller
 * (an OIDC or Kubernetes bearer token, or an API key: identity/caller.ts); what a caller may see and decide is the
 * service's rule (requesters and approvers of a request see it; approvers decide; nobody approves their own).
 *
 *   GET  /approvals?state=pending|approved|rejected|expired|all&limit=N   requests the caller may see, newest first
 *   GET  /approvals/<id>                                                  one request, its decisions and grant
 *   POST /approvals/<id>/approve   {"reason": "…"} (optional)
 *   POST /approvals/<id>/reject    {"reason": "…"} (required)
 *   POST /approvals/<id>/revoke    {"reason": "…"} (required): ends the live grant
 *
 * Errors are `{"error": code, "message": text}` with 400, 401, 403, 404, 405, 409, 413 or 503.
 *
 * A GET that asks for HTML (a browser) gets the approver's web page instead (./page.ts), which calls this API.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Principal } from '../core/principal.ts';
import type { AuthenticateCaller } from '../identity/caller.ts';
import { APPROVAL_STATES, type ApprovalRequest, type ApprovalState } from './model.ts';
import { createApprovalsPage, wantsPage } from './page.ts';
import { ApprovalError, type ApprovalService } from './service.ts';

export const API_PREFIX = '/approvals';
const MAX_BODY_BYTES = 16 * 1024;
const ACTIONS = ['approve', 'reject', 'revoke'] as const;
type Action = (typeof ACTIONS)[number];

export interface ApprovalsApiDeps {
  /** The service, once the store is open; undefined when approvals are off or not ready. */
  readonly service: () => ApprovalService | undefined;
  readonly authenticate: () => AuthenticateCaller;
  readonly logger: Logger;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** A request as the API shows it: who, what, where, why, and what became of it. */
export function approvalJson(request: ApprovalRequest, url: string): Record<string, unknown> {
  const grant = request.grant;
  return {
    id: request.id,
    state: request.state,
    url,
    rule: request.rule,
    mode: request.mode,
    requester: request.requester,
    request: request.summary,
    scope: request.scope,
    reason: request.reason,
    context: request.context,
    approvers: { groups: request.approverGroups, min: request.min },
    decisions: request.decisions.map((d) => ({ approver: d.approver.subject, issuer: d.approver.issuer, verdict: d.verdict, ...(d.reason !== undefined && { reason: d.reason }), at: iso(d.at) })),
    grantFor: `${request.grantMs / 1000}s`,
    oneTime: request.oneTime,
    createdAt: iso(request.createdAt),
    expiresAt: iso(request.expiresAt),
    ...(request.decidedAt !== undefined && { decidedAt: iso(request.decidedAt) }),
    ...(grant !== undefined && {
      grant: {
        id: grant.id, oneTime: grant.oneTime, createdAt: iso(grant.createdAt), expiresAt: iso(grant.expiresAt),
        ...(grant.usedAt !== undefined && { usedAt: iso(grant.usedAt) }),
        ...(grant.revokedAt !== undefined && { revokedAt: iso(grant.revokedAt), revokedBy: grant.revokedBy?.subject, revokeReason: grant.revokeReason }),
      },
    }),
  };
}

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }).end(`${JSON.stringify(body)}\n`);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'body_too_large', `expected a JSON body of at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'bad_json', 'expected a JSON object such as {"reason": "…"}');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'bad_json', 'expected a JSON object such as {"reason": "…"}');
  return body as Record<string, unknown>;
}

function reasonOf(body: Record<string, unknown>): string | undefined {
  const reason = body['reason'];
  if (reason === undefined || reason === null) return undefined;
  if (typeof reason !== 'string') throw new HttpError(400, 'bad_reason', 'expected "reason" to be a string');
  if (reason.length > 2000) throw new HttpError(400, 'bad_reason', 'expected a reason of at most 2000 characters');
  return reason;
}

/** Handles requests under /approvals; call it only for those. */
export function createApprovalsApi(deps: ApprovalsApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const caller = async (req: IncomingMessage): Promise<Principal> => {
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    try {
      return await deps.authenticate()({ authorization: header('authorization'), apiKey: header('x-api-key') });
    } catch (error) {
      const message = (error as Partial<Error>).message ?? 'authentication failed';
      throw new HttpError(401, 'unauthenticated', message, { 'www-authenticate': 'Bearer realm="tollgate"' });
    }
  };

  const page = createApprovalsPage({ service: deps.service, caller });

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const parts = url.pathname.slice(API_PREFIX.length).split('/').filter((p) => p !== '');
    if (wantsPage(req)) return page(req, res, parts);
    const service = deps.service();
    if (service === undefined) throw new HttpError(503, 'approvals_unavailable', 'approvals are not in use (no rule has `effect: approve`) or their store is not open yet');
    if (parts.length === 0) {
      if (req.method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'expected GET /approvals', { allow: 'GET' });
      const who = await caller(req);
      const stateParam = url.searchParams.get('state') ?? 'pending';
      if (stateParam !== 'all' && !(APPROVAL_STATES as readonly string[]).includes(stateParam)) {
        throw new HttpError(400, 'bad_state', `expected state to be one of ${APPROVAL_STATES.join(', ')} or all, got ${JSON.stringify(stateParam)}`);
      }
      const limitParam = url.searchParams.get('limit');
      const limit = limitParam === null ? 100 : Number(limitParam);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'bad_limit', `expected limit to be a whole number from 1 to 1000, got ${JSON.stringify(limitParam)}`);
      const list = await service.list(who, stateParam === 'all' ? undefined : stateParam as ApprovalState, limit);
      send(res, 200, { approvals: list.map((r) => approvalJson(r, service.urlOf(r.id))) });
      return;
    }
    const id = decodeURIComponent(parts[0]!);
    if (parts.length === 1) {
      if (req.method !== 'GET') throw new HttpError(405, 'method_not_allowed', `expected GET /approvals/${id}, or POST /approvals/${id}/approve|reject|revoke`, { allow: 'GET' });
      const who = await caller(req);
      send(res, 200, approvalJson(await service.get(id, who), service.urlOf(id)));
      return;
    }
    const action = parts[1] as Action;
    if (parts.length !== 2 || !ACTIONS.includes(action)) throw new HttpError(404, 'not_found', `no such path: try /approvals/${id}/approve, /reject or /revoke`);
    if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', `expected POST /approvals/${id}/${action}`, { allow: 'POST' });
    const who = await caller(req);
    const reason = reasonOf(await readJson(req));
    if (action === 'approve') {
      const request = await service.approve(id, who, reason);
      send(res, 200, approvalJson(request, service.urlOf(id)));
    } else if (action === 'reject') {
      const request = await service.reject(id, who, reason ?? '');
      send(res, 200, approvalJson(request, service.urlOf(id)));
    } else {
      await service.revoke(id, who, reason ?? '');
      send(res, 200, approvalJson(await service.get(id, who), service.urlOf(id)));
    }
  };

  return (req, res) => {
    route(req, res).catch((error: unknown) => {
      if (error instanceof HttpError) {
        send(res, error.status, { error: error.code, message: error.message }, error.headers);
      } else if (error instanceof ApprovalError) {
        send(res, error.httpStatus, { error: error.code, message: error.message });
      } else {
        deps.logger.error({ err: error }, 'approvals API failed');
        send(res, 503, { error: 'approvals_unavailable', message: `the approvals store could not be used: ${(error as Error).message}` });
      }
    });
  };
}
