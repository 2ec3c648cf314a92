/**
 * @module http/authz
 * The ext_authz `Check` handler for HTTP. It translates Envoy's CheckRequest into (credentials, HttpAction), asks
 * identity and policy, and renders the Decision back: 401/403 with a JSON body, or OK with the caller's credential
 * replaced by tollgate's own identity headers and, where configured, an upstream credential.
 *
 * Credentials are the Authorization header, the x-api-key header and the mTLS peer Envoy verified
 * (`attributes.source.principal`, and its certificate with `include_peer_certificate`); which of them names the
 * caller is identity's decision (identity/caller.ts: a token beats the peer that forwarded it). Neither header
 * reaches the upstream.
 *
 * The same service also answers Envoy's *network* ext_authz filter (a Kafka listener with mTLS): its CheckRequest has
 * no `attributes.request.http`, only the connection's peers. There tollgate establishes the connection's principal
 * from the client certificate (identity/mtls.ts) and hands it to network ext_proc as dynamic metadata; policy then
 * applies per Kafka request. No rule is evaluated for the connection itself.
 */
import type { Logger } from 'pino';
import type { Decision } from '../core/decision.ts';
import type { AuditPath } from '../audit/record.ts';
import { impersonationActions, PLAIN_HTTP, type HttpClassifier, type HttpRequestAction } from './action.ts';
import { forbidden, kubeStatus } from './kube-status.ts';
import { decideRestProxy, denialMessage, restAuditDetails, restProxyError } from './rest-proxy-policy.ts';
import type { Principal } from '../core/principal.ts';
import type { AuditSink } from '../audit/record.ts';
import type { PolicyEngine } from '../policy/engine.ts';
import type { UpstreamCredential } from './credentials.ts';
import { MtlsError, type MtlsIdentities } from '../identity/mtls.ts';
import type { Credentials } from '../identity/caller.ts';
import { settleApproval, type ApprovalNote, type HttpApprovals } from './approval.ts';
import { observationDetails, signalDecision } from '../signals/outcome.ts';
import type { ApprovalView } from '../policy/approval-decision.ts';
import { retryAfterSeconds, type HttpSignals, type HttpSignalVerdict } from './signals.ts';

/** The parts of envoy.service.auth.v3.CheckRequest this handler reads (proto-loader, keepCase). */
export interface CheckRequestLike {
  attributes?: {
    source?: {
      address?: { socket_address?: { address?: string; port_value?: number } | null } | null;
      /** With mTLS: the client certificate's first URI SAN (else DNS SAN, else subject), verified by Envoy. */
      principal?: string;
      /** URL-encoded PEM of the client certificate; only with the filter's `include_peer_certificate: true`. */
      certificate?: string;
    } | null;
    request?: { http?: { id?: string; method?: string; path?: string; host?: string; headers?: Record<string, string> } | null } | null;
  } | null;
}

export interface HeaderOption { header: { key: string; value: string }; append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' | 'APPEND_IF_EXISTS_OR_ADD' }
interface StructValue { stringValue?: string; numberValue?: number; listValue?: { values: StructValue[] } }

export interface CheckResponseLike {
  status: { code: number; message: string };
  denied_response?: { status: { code: number }; headers: HeaderOption[]; body: string };
  ok_response?: { headers: HeaderOption[]; headers_to_remove: string[] };
  dynamic_metadata?: { fields: Record<string, StructValue> };
}

/** Thrown by an `Authenticate` function; `code` is stable (identity's error codes), `message` is safe to show. */
export interface AuthenticationFailure { code: string; message: string }
export type Authenticate = (credentials: Credentials) => Promise<Principal>;

export interface AuthzHooks {
  /** Network (connection) checks report `allow` or `unauthenticated`, with no rule; `throttle`: a signal's 429. */
  onDecision?(effect: 'allow' | 'deny' | 'unauthenticated' | 'throttle', rule: string | null, seconds: number): void;
}

export interface AuthzDeps {
  readonly authenticate: Authenticate;
  readonly policy: () => PolicyEngine;
  readonly credentials: () => readonly UpstreamCredential[];
  readonly audit: AuditSink;
  readonly logger: Logger;
  readonly hooks?: AuthzHooks;
  /** mTLS peers of network checks; absent (or returning undefined): every network check is denied. */
  readonly mtls?: () => MtlsIdentities | undefined;
  /** Turns a request into the action policy sees (Kubernetes attributes for API-server hosts); default: plain HTTP. */
  readonly classify?: () => HttpClassifier;
  /** Just-in-time approval; absent (or returning undefined): what an `approve` rule demands approval for is refused. */
  readonly approvals?: () => HttpApprovals | undefined;
  /** Insider-threat signals (volume per principal and route, failed authentications); absent: none. */
  readonly signals?: () => HttpSignals | undefined;
}

// gRPC status codes Envoy reads in CheckResponse.status: OK lets the request through, anything else denies.
const GRPC_OK = 0;
const GRPC_UNAUTHENTICATED = 16;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAVAILABLE = 14;
const GRPC_RESOURCE_EXHAUSTED = 8;

export const SUBJECT_HEADER = 'x-tollgate-subject';
export const GROUPS_HEADER = 'x-tollgate-groups';
/** A legacy caller's API key; like Authorization, a credential for tollgate only. */
export const API_KEY_HEADER = 'x-api-key';
const IDENTITY_HEADER_PREFIX = 'x-tollgate-';

const set = (key: string, value: string): HeaderOption => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
const append = (key: string, value: string): HeaderOption => ({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' });
const IMPERSONATION_HEADER_PREFIX = 'impersonate-';

function jsonDenial(grpcCode: number, httpStatus: number, body: object, extraHeaders: HeaderOption[] = []): CheckResponseLike {
  return {
    status: { code: grpcCode, message: httpStatus === 401 ? 'unauthenticated' : 'forbidden' },
    denied_response: {
      status: { code: httpStatus },
      headers: [set('content-type', 'application/json'), ...extraHeaders],
      body: JSON.stringify(body),
    },
  };
}

export function actionFromCheck(req: CheckRequestLike, classify: HttpClassifier = PLAIN_HTTP): HttpRequestAction {
  const http = req.attributes?.request?.http;
  const headers = http?.headers ?? {};
  return classify(http?.method ?? headers[':method'] ?? 'GET', http?.host ?? headers[':authority'] ?? '', http?.path ?? headers[':path'] ?? '/', headers);
}

/**
 * A denial in the caller's protocol: a Kubernetes Status for API-server requests, the proxy's error object for Kafka
 * REST Proxy requests, tollgate's JSON otherwise.
 */
function forbiddenResponse(action: HttpRequestAction, principal: Principal, reason: string, rule: string | null, approval?: ApprovalNote): CheckResponseLike {
  if (action.kafkaRest !== undefined) return jsonDenial(GRPC_PERMISSION_DENIED, 403, restProxyError(403, denialMessage(reason, rule)));
  if (action.kubernetes !== undefined) {
    const named = rule === null || reason.includes(`rule ${rule}`) ? reason : `${reason} (tollgate rule ${rule})`;
    const approvalText = approval?.url === undefined || approval.state !== 'pending' ? '' : `; approve at ${approval.url}`;
    const status = forbidden(action.kubernetes, principal.subject, named + approvalText);
    return jsonDenial(GRPC_PERMISSION_DENIED, 403, approval?.id === undefined ? status : {
      ...status,
      details: {
        ...status.details,
        causes: [
          { reason: 'TollgateApproval', field: 'approval.id', message: approval.id },
          { reason: 'TollgateApproval', field: 'approval.state', message: approval.state },
          ...(approval.url !== undefined ? [{ reason: 'TollgateApproval', field: 'approval.url', message: approval.url }] : []),
        ],
      },
    });
  }
  if (approval !== undefined) {
    const error = approval.state === 'pending' ? 'approval_required' : approval.state === 'rejected' ? 'approval_rejected' : approval.state === 'expired' ? 'approval_expired' : 'forbidden';
    return jsonDenial(GRPC_PERMISSION_DENIED, 403, { error, reason, rule, approval: approvalBody(approval) });
  }
  return jsonDenial(GRPC_PERMISSION_DENIED, 403, { error: 'forbidden', reason, rule });
}

/** The approval as a denial's JSON body shows it: id, state, where to approve, until when. */
function approvalBody(note: ApprovalNote): Record<string, unknown> {
  return {
    ...(note.id !== undefined && { id: note.id }),
    state: note.state,
    ...(note.url !== undefined && { url: note.url }),
    ...(note.expiresAt !== undefined && { expiresAt: new Date(note.expiresAt).toISOString() }),
  };
}

/** What an approver sees of where a request came from: the request line (an exec's command is in its query) and the peer. */
function approvalContext(req: CheckRequestLike, action: HttpRequestAction): Record<string, string | number> {
  const http = req.attributes?.request?.http;
  const sock = req.attributes?.source?.address?.socket_address;
  return {
    method: action.method, host: action.host, path: http?.path ?? http?.headers?.[':path'] ?? action.path,
    ...(sock?.address ? { sourceAddress: sock.address } : {}),
    ...(http?.id ? { requestId: http.id } : {}),
  };
}

function auditDetails(action: HttpRequestAction): Record<string, unknown> {
  const details: Record<string, unknown> = { method: action.method, host: action.host, path: action.path };
  if (action.kubernetes !== undefined) details['kubernetes'] = action.kubernetes;
  if (action.kafkaRest !== undefined) details['kafkaRest'] = restAuditDetails(action.kafkaRest);
  return details;
}

/**
 * Where a request's audit records go and how their events are named. REST Proxy requests are judged by Kafka rules
 * over Kafka actions, so their records sit on the `kafka` path beside the wire's (who produced to a topic, who was
 * refused, whatever the client spoke), named `kafka.rest.*` so the entry point stays visible.
 */
function auditPathOf(action: HttpRequestAction): { path: AuditPath; events: string } {
  if (action.kafkaRest !== undefined) return { path: 'kafka', events: 'kafka.rest' };
  const path: AuditPath = action.kubernetes !== undefined ? 'kubernetes' : 'http';
  return { path, events: path };
}

/** A 429 in the caller's protocol, with Retry-After: a signal throttles the caller. */
function tooManyRequests(action: HttpRequestAction, reason: string, rule: string, throttleMs: number): CheckResponseLike {
  const seconds = retryAfterSeconds(throttleMs);
  const body = action.kubernetes !== undefined ? kubeStatus(429, 'TooManyRequests', `Too many requests, please try again later: ${reason}`, { retryAfterSeconds: seconds })
    : action.kafkaRest !== undefined ? restProxyError(429, denialMessage(reason, rule))
      : { error: 'too_many_requests', reason, rule, retryAfterSeconds: seconds };
  return {
    status: { code: GRPC_RESOURCE_EXHAUSTED, message: 'too many requests' },
    denied_response: { status: { code: 429 }, headers: [set('content-type', 'application/json'), set('retry-after', String(seconds))], body: JSON.stringify(body) },
  };
}

/** The body of a 401 in the caller's protocol. */
function unauthenticatedBody(action: HttpRequestAction, reason: string): object {
  if (action.kubernetes !== undefined) return kubeStatus(401, 'Unauthorized', `Unauthorized: ${reason}`);
  if (action.kafkaRest !== undefined) return restProxyError(401, reason);
  return { error: 'unauthenticated', reason, rule: null };
}

/** REST Proxy requests are decided by the Kafka actions they amount to, not as HTTP requests. */
function decideRequest(policy: PolicyEngine, principal: Principal, action: HttpRequestAction): Decision {
  return action.kafkaRest !== undefined ? decideRestProxy(policy, principal, action.kafkaRest) : policy.decide(principal, action);
}

function sourceOf(req: CheckRequestLike): Record<string, string | number> {
  const sock = req.attributes?.source?.address?.socket_address;
  const out: Record<string, string | number> = {};
  if (sock?.address) out['sourceAddress'] = sock.address;
  if (sock?.port_value) out['sourcePort'] = sock.port_value;
  const id = req.attributes?.request?.http?.id;
  if (id) out['requestId'] = id;
  return out;
}

/** The audit keys network ext_proc uses too, so a connection's records share them (`source.address`, `source.port`). */
function networkSourceOf(req: CheckRequestLike): Record<string, string | number> {
  const sock = req.attributes?.source?.address?.socket_address;
  const out: Record<string, string | number> = {};
  if (sock?.address) out['source.address'] = sock.address;
  if (sock?.port_value) out['source.port'] = sock.port_value;
  return out;
}

/**
 * A check from Envoy's network ext_authz filter (no HTTP request in it): the connection's principal from its client
 * certificate, or a denial. Envoy has already verified the certificate chain against the listener's trusted CA in
 * the TLS handshake (`require_client_certificate: true`), so the principal it reports is trusted as it stands; what
 * is checked here is the trust domain, the id's syntax and, when Envoy includes the certificate, that it matches
 * the principal and has not expired. On allow, the principal travels as the connection's dynamic metadata in
 * Envoy's `envoy.filters.network.ext_authz` namespace, which network ext_proc forwards to tollgate
 * (kafka/service.ts `peerPrincipal`). Envoy closes a denied connection.
 */
function checkConnection(req: CheckRequestLike, deps: AuthzDeps, elapsed: () => number): CheckResponseLike {
  const { audit, logger, hooks } = deps;
  const connection = networkSourceOf(req);
  const base = { time: new Date().toISOString(), path: 'kafka' as const, connection };
  const reported = req.attributes?.source?.principal ?? '';
  const refusal = audit.refusal?.();
  if (refusal !== undefined) {
    // Fail closed: an audit sink's spool is full under onFull: block.
    audit.write({ ...base, event: 'kafka.mtls.audit_unavailable', reason: refusal, details: { peer: reported } });
    hooks?.onDecision?.('deny', null, elapsed());
    return { status: { code: GRPC_UNAVAILABLE, message: refusal } };
  }
  const identities = deps.mtls?.();
  let principal: Principal;
  try {
    if (identities === undefined) throw new MtlsError('mtls_not_configured', 'mTLS identities are not configured (identity.mtls)');
    principal = identities.authenticatePeer(req.attributes?.source);
  } catch (err) {
    const failure = err as Partial<AuthenticationFailure>;
    const code = failure.code ?? 'authentication_failed';
    const reason = failure.message ?? 'authentication failed';
    audit.write({ ...base, event: 'kafka.mtls.denied', reason, details: { code, peer: reported } });
    hooks?.onDecision?.('unauthenticated', null, elapsed());
    logger.info({ ...connection, code, peer: reported }, `ext_authz: connection refused: ${reason}`);
    return { status: { code: GRPC_PERMISSION_DENIED, message: reason } };
  }
  audit.write({ ...base, event: 'kafka.mtls.allowed', principal, details: { groups: principal.groups } });
  hooks?.onDecision?.('allow', null, elapsed());
  logger.debug({ ...connection, subject: principal.subject }, 'ext_authz: connection authenticated by mTLS');
  return {
    status: { code: GRPC_OK, message: '' },
    dynamic_metadata: {
      fields: {
        subject: { stringValue: principal.subject },
        groups: { listValue: { values: principal.groups.map((g) => ({ stringValue: g })) } },
        issuer: { stringValue: principal.issuer },
        authenticated_by: { stringValue: principal.authenticatedBy },
        ...(principal.expiresAt !== undefined && { expires_at: { numberValue: principal.expiresAt } }),
      },
    },
  };
}

export function createAuthzHandler(deps: AuthzDeps): (req: CheckRequestLike, signal?: AbortSignal) => Promise<CheckResponseLike> {
  const { audit, logger, hooks } = deps;
  return async function check(req, signal) {
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    if (req.attributes?.request?.http == null) return checkConnection(req, deps, elapsed);
    const action = actionFromCheck(req, deps.classify?.());
    const headers = req.attributes?.request?.http?.headers ?? {};
    const connection = sourceOf(req);
    const { path, events } = auditPathOf(action);
    // The request's session: Envoy's x-request-id, which ext_proc sees too, so both halves of a request share it.
    const requestId = headers['x-request-id'];
    const base = { time: new Date().toISOString(), path, connection, ...(requestId !== undefined && { session: requestId }) };
    const source = req.attributes?.source;
    const peer = source?.principal ? { principal: source.principal, ...(source.certificate && { certificate: source.certificate }) } : undefined;
    // The peer is recorded even when a token names the caller: it is the workload the request came through.
    const details = { ...auditDetails(action), ...(peer && { peer: peer.principal }) };
    const authorization = headers['authorization'];

    const refusal = audit.refusal?.();
    if (refusal !== undefined) {
      // Fail closed: an audit sink's spool is full under onFull: block; nothing passes unaudited.
      audit.write({ ...base, event: `${events}.authz.audit_unavailable`, reason: refusal, details });
      hooks?.onDecision?.('deny', null, elapsed());
      return jsonDenial(GRPC_UNAVAILABLE, 503, { error: 'audit_unavailable', reason: refusal, rule: null });
    }

    let principal: Principal;
    try {
      principal = await deps.authenticate({ authorization, apiKey: headers[API_KEY_HEADER], ...(peer && { peer }) });
    } catch (err) {
      const failure = err as Partial<AuthenticationFailure>;
      const code = failure.code ?? 'authentication_failed';
      const reason = failure.message ?? 'authentication failed';
      // Counted per claimed subject and client address: a success after enough failures flags the subject.
      const failures = code === 'token_missing' ? {} : deps.signals?.()?.authenticationFailed(authorization, connection['sourceAddress'] as string | undefined, action.kubernetes === undefined ? 'http' : 'kubernetes') ?? {};
      audit.write({ ...base, event: `${events}.authz.unauthenticated`, reason, details: { ...details, code, ...(Object.keys(failures).length > 0 && { failedAuthentications: failures }) } });
      hooks?.onDecision?.('unauthenticated', null, elapsed());
      logger.debug({ ...details, code }, 'ext_authz: unauthenticated');
      // invalid_token only when a token in the Authorization header was what failed (RFC 6750 §3.1), not an API
      // key or a peer, and not when there was no credential at all.
      const tokenFailed = code !== 'token_missing' && code !== 'credentials_ambiguous'
        && authorization !== undefined && authorization.trim() !== '' && !/^apikey(\s|$)/i.test(authorization.trim());
      const challenge = !tokenFailed ? 'Bearer realm="tollgate"'
        : `Bearer realm="tollgate", error="invalid_token", error_description="${reason.replace(/["\\]/g, "'")}"`;
      return jsonDenial(GRPC_UNAUTHENTICATED, 401, unauthenticatedBody(action, reason), [set('www-authenticate', challenge)]);
    }

    const signals = deps.signals?.();
    const flagged = signals?.authenticated(principal, connection['sourceAddress'] as string | undefined, action.kubernetes === undefined ? 'http' : 'kubernetes') ?? [];
    const policy = deps.policy();
    let decision: Decision = decideRequest(policy, principal, action);
    let approval: ApprovalNote | undefined;
    /**
     * A decision demanding approval — an approve rule's or a signal's — is settled the same way: a grant lets the
     * request through, else a ticket (or a hold); `decide` is what demanded it, asked again with the approvals read.
     * Without approvals (or for a REST Proxy request, judged later) the demand stays a denial.
     */
    const settle = async (decide: (view: ApprovalView) => Decision) => {
      const approvals = decision.approval !== undefined && action.kafkaRest === undefined ? deps.approvals?.() : undefined;
      if (approvals !== undefined) ({ decision, approval } = await settleApproval(approvals, decide, principal, decision, approvalContext(req, action), signal));
    };
    await settle((view) => policy.decide(principal, action, view));
    const credential = deps.credentials().find((c) => c.matches(action.host, action.path));
    const callerImpersonates = Object.keys(headers).some((name) => name.startsWith(IMPERSONATION_HEADER_PREFIX));
    // Impersonation is a request of its own to the API server (verb impersonate on users/groups/serviceaccounts),
    // made with tollgate's credential: it must be allowed here, or a caller would borrow tollgate's privileges.
    if (decision.effect === 'allow' && callerImpersonates) {
      if (credential?.impersonate) {
        decision = { effect: 'deny', rule: null, reason: `impersonation is refused on this route: tollgate already impersonates the caller for upstream credential ${credential.name}` };
      } else if (action.kubernetes === undefined) {
        decision = { effect: 'deny', rule: null, reason: 'Impersonate-* headers are only accepted for Kubernetes API servers' };
      } else {
        for (const impersonation of impersonationActions(action)) {
          const d = policy.decide(principal, impersonation);
          if (d.effect === 'deny') {
            const k = impersonation.kubernetes!;
            const target = k.kind === 'resource' ? `${k.resource} ${JSON.stringify(k.name)}` : 'unknown';
            decision = { ...d, reason: `impersonating ${target}: ${d.reason}` };
            break;
          }
        }
      }
    }
    // Signals judge what the policy allows: held back (deny, approve), throttled (429), or counted and let through.
    let verdict: HttpSignalVerdict | undefined;
    if (decision.effect === 'allow' && signals !== undefined) {
      verdict = signals.judge(principal, action, connection);
      if (verdict.decision !== undefined) decision = verdict.decision;
      const approving = verdict.approving;
      if (approving !== undefined) {
        const demanded = decision;
        await settle((view) => signalDecision(action, approving, view) ?? demanded);
      }
    }
    const throttle = decision.effect === 'allow' ? verdict?.throttle : undefined;
    const observed = [...flagged, ...(verdict?.observations ?? [])];
    const shadowMasks = decision.effect === 'allow' && throttle === undefined && action.kafkaRest === undefined ? policy.shadowMasks(principal, action) : [];
    audit.write({
      // An allow names no rule only for a REST Proxy request that asks nothing up front (its parts are judged later).
      ...base, principal,
      ...(throttle !== undefined
        ? { event: `${events}.authz.throttle`, rule: throttle.rule, reason: throttle.reason }
        : { event: `${events}.authz.${decision.effect}`, ...(decision.rule !== null || decision.effect === 'deny' ? { rule: decision.rule ?? 'default' } : {}), reason: decision.reason }),
      latencyMs: Math.round(elapsed() * 1e6) / 1e3,
      details: {
        ...details,
        ...(decision.shadow !== undefined ? { shadow: decision.shadow } : {}),
        ...(shadowMasks.length > 0 ? { shadowMasks } : {}),
        ...(approval !== undefined ? { approval: { ...(approval.id !== undefined && { id: approval.id }), state: approval.state, ...(approval.grant !== undefined && { grant: approval.grant }), ...(approval.heldMs !== undefined && { heldMs: approval.heldMs }) } } : {}),
        ...(observed.length > 0 ? { signals: observed.map(observationDetails) } : {}),
      },
    });
    hooks?.onDecision?.(throttle !== undefined ? 'throttle' : decision.effect, throttle?.rule ?? decision.rule, elapsed());
    logger.debug({ ...details, subject: principal.subject, effect: decision.effect, rule: decision.rule }, 'ext_authz decision');
    if (decision.effect === 'deny') return forbiddenResponse(action, principal, decision.reason, decision.rule, approval);
    if (throttle !== undefined) return tooManyRequests(action, throttle.reason, throttle.rule, throttle.throttleMs ?? 1000);

    const remove = new Set<string>();
    // The caller's token is no credential upstream; identity headers a client sent itself are forgeries.
    if (credential?.header !== 'authorization') remove.add('authorization');
    if (headers[API_KEY_HEADER] !== undefined && credential?.header !== API_KEY_HEADER) remove.add(API_KEY_HEADER);
    for (const name of Object.keys(headers)) if (name.startsWith(IDENTITY_HEADER_PREFIX)) remove.add(name);
    remove.delete(SUBJECT_HEADER);
    remove.delete(GROUPS_HEADER);
    const add = [set(SUBJECT_HEADER, principal.subject), set(GROUPS_HEADER, principal.groups.join(','))];
    if (credential) add.push(set(credential.header, credential.value));
    if (credential?.impersonate) {
      // One header per group: the API server reads each Impersonate-Group value as one group, never a list.
      add.push(set('impersonate-user', principal.subject));
      for (const group of principal.groups) add.push(append('impersonate-group', group));
    }
    return {
      status: { code: GRPC_OK, message: '' },
      ok_response: { headers: add, headers_to_remove: [...remove] },
      dynamic_metadata: {
        fields: {
          subject: { stringValue: principal.subject },
          groups: { listValue: { values: principal.groups.map((g) => ({ stringValue: g })) } },
          issuer: { stringValue: principal.issuer },
          authenticated_by: { stringValue: principal.authenticatedBy },
          rule: { stringValue: decision.rule ?? '' },
          ...(credential ? { upstream_credential: { stringValue: credential.name } } : {}),
        },
      },
    };
  };
}
