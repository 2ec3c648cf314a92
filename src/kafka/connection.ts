/**
 * @module kafka/connection
 * One Kafka client connection as tollgate sees it, free of gRPC and Envoy: bytes from the client and from the
 * broker go in; bytes for the broker, bytes for the client, and at most one reason to close come out.
 *
 * What it enforces, in the order a connection lives it:
 * 1. Tollgate's own authentication to the broker (when `upstreamSasl` is set): on the first client bytes it sends
 *    SaslHandshake + SaslAuthenticate (PLAIN or SCRAM) upstream with the gateway-held credential, and holds every
 *    client request until the broker accepted it. The client never sees these requests or their responses. When the
 *    broker grants a session lifetime, tollgate re-authenticates upstream before it ends (KIP-368).
 * 2. The client's authentication: SaslHandshake/SaslAuthenticate with OAUTHBEARER are answered here, never
 *    forwarded. The token is verified asynchronously (OIDC, as on the HTTP path); requests that arrive meanwhile are
 *    held in order. `session_lifetime_ms` is the token's remaining life, capped by `maxSessionLifetimeMs`; a request
 *    on an expired session closes the connection, and re-authentication (a new handshake on the same connection)
 *    must keep the same subject, as Kafka's broker requires. A refused token gets SASL_AUTHENTICATION_FAILED with
 *    the reason, then the connection is closed; nothing of it reached the broker. Only ApiVersions may come first;
 *    any other request before authentication closes the connection (as the broker does).
 * 3. Per-request policy (`./authorize/`): forwarded as is, split, answered locally with the error shape of its API
 *    and version, or refused (connection closed). API versions outside what tollgate parses close the connection;
 *    ApiVersions responses are trimmed so well-behaved clients never send them.
 * 4. Broker addresses in responses are rewritten to the Envoy listener of each broker (`./routing/`).
 * 5. One audit record per request, written when its response leaves (or when it is answered or refused). Under
 *    capture rules, a Produce's or Fetch's record carries its records with their offsets (`./capture/`).
 *
 * Responses reach the client in request order whatever their source (`ResponseSequencer`). Everything produced by an
 * asynchronous completion (a token verified) goes out through `deliver`; everything produced while handling input is
 * returned by the input method. Once closed, the connection produces nothing more.
 */
import type { Logger } from 'pino';
import type { AuditRecord, AuditSink } from '../audit/record.ts';
import type { KafkaAction } from '../core/action.ts';
import type { Decision } from '../core/decision.ts';
import type { Principal } from '../core/principal.ts';
import type { ApprovalView } from '../policy/engine.ts';
import { allowedProduce, authorizeRequest, replayDecisions, type Decide, type RequestPlan, type ResourceDecision } from './authorize/index.ts';
import { isClientApiVersionAllowed, trimApiVersionsResponse } from './api-versions.ts';
import { API_KEY, apiKeyName } from './protocol/api-keys.ts';
import { KafkaError, kafkaErrorName } from './protocol/error-codes.ts';
import { FrameError, type FrameErrorCode } from './protocol/errors.ts';
import { FrameReassembler } from './protocol/framing.ts';
import { readRequestHeader, type RequestHeader } from './protocol/header.ts';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, readProduceRequest, type DecodedRequest, type ProduceRequestView } from './protocol/messages.ts';
import { readProduceAcks } from './protocol/produce.ts';
import { BrokerRoutes, carriesBrokerEndpoints, rewriteBrokerEndpoints } from './routing/index.ts';
import { parseOAuthBearerInitialResponse } from './sasl/oauthbearer.ts';
import { encodePlain } from './sasl/plain.ts';
import { ScramClient, type ScramClientOptions } from './sasl/scram.ts';
import { ResponseSequencer, SequenceError, type PendingRequest, type ResponseTransform } from './sequencer.ts';
import type { NamedMaskPlan } from '../policy/engine.ts';
import type { MaskContext } from '../masking/strategies.ts';
import { maskFetchResponse, type FetchMaskingResult } from './masking/fetch.ts';
import { addRejections, emptyProduceResponse, inspectProduce, withoutRejected, type Rejection } from './inspect/produce.ts';
import type { RejectPlan } from '../policy/reject.ts';
import type { ProduceRequest } from './protocol/generated/index.ts';
import { summarizeProduceRequest, summarizeRequest, summarizeResponse } from './summary.ts';
import { combineCaptures, type CapturePlan, type TopicCapture } from '../policy/capture.ts';
import type { CaptureDetail } from './capture/collector.ts';
import { FetchCapture } from './capture/fetch.ts';
import { captureProduce, produceRecordsOf, type PendingProduceCapture, type ProduceRecords } from './capture/produce.ts';
import { withThrottle, type KafkaSignals, type ReplayResult } from './signals.ts';
import { observationDetails, throttleOf, type SignalObservation } from '../signals/outcome.ts';

/** `request`: client→broker (Envoy's read direction); `response`: broker→client (write direction). */
export type KafkaDirection = 'request' | 'response';

export type UpstreamSaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

export interface UpstreamSasl {
  readonly mechanism: UpstreamSaslMechanism;
  readonly username: string;
  /** Never logged, never audited, never sent anywhere but the broker. */
  readonly password: string;
  /** SCRAM key derivation, shared by all connections so PBKDF2 runs once per broker salt (`memoizedScramKeys`). */
  readonly deriveKeys?: ScramClientOptions['deriveKeys'];
}

/** What the policy says about masking a principal's records (src/policy/engine.ts `masks`, `mayMaskKafka`). */
export interface KafkaMasking {
  /** The masking rules of `principal` for records of `topic`, in config order. */
  plansFor(principal: Principal, topic: string): readonly NamedMaskPlan[];
  /** False when no rule can apply to this principal: its Fetch responses are not even looked at. */
  mayMask(principal: Principal): boolean;
  readonly context: MaskContext;
}

/** What the policy says about inspecting a principal's publishes (src/policy/engine.ts `rejects`). */
export interface KafkaInspection {
  plansFor(principal: Principal, topic: string): readonly RejectPlan[];
  /** False when no `reject` rule can apply to this principal: its Produce records are not read. */
  mayInspect(principal: Principal): boolean;
}

/** What the policy says about capturing a principal's records (src/policy/engine.ts `captures`, `mayCaptureKafka`). */
export interface KafkaCapture {
  /** The capture rules of `principal` producing to or consuming from `topic`, in config order. */
  plansFor(principal: Principal, operation: 'produce' | 'consume', topic: string): readonly CapturePlan[];
  /** False when no capture rule can apply to this principal: its records are not read for capture. */
  mayCapture(principal: Principal): boolean;
  /** For `masked` captures (the `hash` strategy's key). */
  readonly context: MaskContext;
}

/** Just-in-time approval of Kafka requests (src/kafka/approval.ts): always ticket mode, a request is answered at once. */
export interface KafkaApprovals {
  /**
   * Readies what the approval demands among `demands` need before the request is decided again: reads the
   * principal's grants and pending requests, takes one-time grants, files approval requests for the rest. The view
   * it resolves to shows exactly the grants this request may use and the pending requests' ids.
   */
  prepare(principal: Principal, demands: readonly ResourceDecision[], context: Readonly<Record<string, string | number>>): Promise<ApprovalView>;
  /** Calls `onRevoked` with each grant revoked from now on; returns the function that stops it. */
  watchRevocations(onRevoked: (grantId: string) => void): () => void;
}

/** Why the connection must be closed: what the audit record and the warning log say. */
export interface CloseReason {
  /** Dotted and stable: `kafka.frame.too_large`, `kafka.sasl.authentication_failed`, … */
  readonly event: string;
  readonly reason: string;
  readonly details: Readonly<Record<string, unknown>>;
  /** The principal, when the client had authenticated. */
  readonly principal?: Principal;
  readonly rule?: string;
}

export interface ConnectionOutput {
  /** Whole frames for the broker, in order (Envoy `read_data`). */
  readonly toBroker: Buffer[];
  /** Whole frames for the client, in order (Envoy `write_data`). */
  readonly toClient: Buffer[];
  /** Set once, when the connection must be closed after the frames above went out. */
  readonly close?: CloseReason;
}

export interface KafkaConnectionOptions {
  /** Largest frame size prefix accepted in either direction (bytes after the 4-byte prefix). */
  readonly maxFrameBytes: number;
  /** Most client requests awaiting a response at once; one more closes the connection. */
  readonly maxInFlight: number;
  /** Verifies an OAUTHBEARER token; rejects with an error whose message is safe to show the client. */
  readonly authenticate: (token: string) => Promise<Principal>;
  /** The policy; `approvals`, when given, is what the principal's grants and pending approval requests are. */
  readonly decide: (principal: Principal, action: KafkaAction, approvals?: ApprovalView) => Decision;
  /** Just-in-time approval; absent: what an `approve` rule demands approval for is refused (POLICY_VIOLATION). */
  readonly approvals?: KafkaApprovals;
  readonly maxSessionLifetimeMs: number;
  readonly upstreamSasl?: UpstreamSasl;
  /**
   * The principal Envoy already established for this connection (an mTLS client certificate, vouched for by
   * tollgate's own ext_authz on the network filter chain). The connection starts authenticated; SASL is then only a
   * re-authentication and must keep the subject. The session ends when the certificate does (`expiresAt`).
   */
  readonly peerPrincipal?: Principal;
  readonly routes: BrokerRoutes;
  /** Masking of Fetch responses; absent: nothing is masked. */
  readonly masking?: KafkaMasking;
  /** Publish inspection of Produce requests; absent: records are not inspected. */
  readonly inspection?: KafkaInspection;
  /** Session capture of produced and fetched records into the audit records; absent: nothing is captured. */
  readonly capture?: KafkaCapture;
  /** Insider-threat signals (volume, failed authentications, replay); absent: nothing is measured. */
  readonly signals?: KafkaSignals;
  readonly audit: AuditSink;
  /** Envoy's connection facts (source address, connection id) for audit records. */
  readonly facts?: Readonly<Record<string, string | number>>;
  readonly logger: Logger;
  /** Output of asynchronous completions (a verified token releasing held requests). */
  readonly deliver: (output: ConnectionOutput) => void;
  /** Monotonic milliseconds (latency); `performance.now` by default. */
  readonly now?: () => number;
  /** Wall-clock epoch milliseconds (token expiry, session ends); `Date.now` by default. */
  readonly clock?: () => number;
  /** Once per frame that leaves, requests and responses; responses carry their request's API key. Must not throw. */
  readonly onFrame?: (direction: KafkaDirection, apiKey: number) => void;
  /** Once per policy decision. Must not throw. */
  readonly onDecision?: (decision: Decision) => void;
}

/** The audit event of each protocol violation: dotted and stable. */
const FRAME_EVENTS: Readonly<Record<FrameErrorCode, string>> = {
  frame_too_large: 'kafka.frame.too_large',
  frame_size_invalid: 'kafka.frame.size_invalid',
  header_truncated: 'kafka.frame.header_truncated',
  header_invalid: 'kafka.frame.header_invalid',
  body_truncated: 'kafka.frame.body_truncated',
  body_invalid: 'kafka.frame.body_invalid',
};

const OAUTHBEARER = 'OAUTHBEARER';
/** The SASL versions tollgate speaks to the broker: handshake v1 (framed tokens), authenticate v2 (flexible). */
const UPSTREAM_HANDSHAKE_VERSION = 1;
const UPSTREAM_AUTHENTICATE_VERSION = 2;
/** Re-authenticate upstream once this share of the broker's session lifetime has passed (Kafka clients: 85–95%). */
const UPSTREAM_REAUTH_AT = 0.85;

type ClientAuth =
  | { readonly kind: 'none' }
  | { readonly kind: 'handshake' }
  | { readonly kind: 'verifying' }
  | {
    readonly kind: 'authenticated';
    readonly principal: Principal;
    /** Epoch milliseconds after which a request closes the connection. */
    readonly sessionEnd: number;
    /** KIP-368 re-authentication in progress on this connection. */
    readonly reauth: 'idle' | 'handshake' | 'verifying';
  };

type UpstreamState =
  | { readonly kind: 'not_started' }
  | { readonly kind: 'authenticating' }
  | { readonly kind: 'ready'; readonly reauthAt: number | undefined };

/** What an audit record of a request may add to the request and its response. */
interface AuditExtras {
  readonly masking?: FetchMaskingResult;
  readonly rejections?: readonly Rejection[];
  /** What shadow `reject` rules would have refused (nothing was). */
  readonly shadowRejected?: readonly Rejection[];
  readonly capture?: CaptureDetail;
  /** Capture failed (an internal error): said in the record rather than left out silently. */
  readonly captureError?: string;
  /** What signals observed of this request (held back, throttled, alerted, replayed records). */
  readonly signals?: readonly SignalObservation[];
}

/** The capture of one topic and operation, combined once per principal; null: no capture rule applies. */
type CaptureCache = { readonly principal: Principal; readonly byTopic: Map<string, TopicCapture | null> };

/** A request as the client sent it, with its decoding or its hot-path reading when it has one (for the audit summary). */
interface ClientRequest {
  readonly frame: Buffer;
  readonly decoded?: DecodedRequest;
  readonly produce?: ProduceRequestView;
  /** Signal observations made while judging it (filled as it is judged and forwarded). */
  readonly signals?: SignalObservation[];
  /** Its records' replay check, to learn of the broker's acknowledgement. */
  readonly replay?: ReplayResult;
}

class ConnectionClosed extends Error {
  readonly close: CloseReason;
  constructor(close: CloseReason) {
    super(close.reason);
    this.close = close;
  }
}

export class KafkaConnection {
  readonly #options: KafkaConnectionOptions;
  readonly #requests: FrameReassembler;
  readonly #responses: FrameReassembler;
  readonly #sequencer = new ResponseSequencer();
  readonly #now: () => number;
  readonly #clock: () => number;
  /** Client frames that cannot be handled yet (a token being verified, upstream not authenticated), in order. */
  readonly #held: Buffer[] = [];
  #auth: ClientAuth = { kind: 'none' };
  #upstream: UpstreamState;
  #nextInternalCorrelationId = -1;
  /** Masking plans by topic, for the principal they were made for. */
  #maskPlans: { readonly principal: Principal; readonly byTopic: Map<string, readonly NamedMaskPlan[]> } | undefined;
  /** Combined capture rules by operation and topic, for the principal they were made for. */
  #capturePlans: CaptureCache | undefined;
  /** An ApiVersions went to the broker before tollgate authenticated there. */
  #upstreamSawApiVersions = false;
  #toBroker: Buffer[] = [];
  #toClient: Buffer[] = [];
  #closed: CloseReason | undefined;
  /** Approvals being readied for the request at the head of `#held`: requests wait, in order. */
  #preparingApprovals = false;
  /** What the approvals looked like for this frame once readied; used by its second decision, then dropped. */
  #prepared: { readonly frame: Buffer; readonly view: ApprovalView; readonly error?: string } | undefined;
  /** Grants requests of this connection went through with: revoking one closes the connection. */
  readonly #reliedGrants = new Map<string, string>();
  #unwatchRevocations: (() => void) | undefined;

  constructor(options: KafkaConnectionOptions) {
    if (!Number.isSafeInteger(options.maxInFlight) || options.maxInFlight < 1) {
      throw new RangeError(`maxInFlight must be a positive integer, got ${options.maxInFlight}`);
    }
    this.#options = options;
    this.#requests = new FrameReassembler({ maxFrameBytes: options.maxFrameBytes });
    this.#responses = new FrameReassembler({ maxFrameBytes: options.maxFrameBytes });
    this.#now = options.now ?? (() => performance.now());
    this.#clock = options.clock ?? Date.now;
    this.#upstream = options.upstreamSasl === undefined ? { kind: 'ready', reauthAt: undefined } : { kind: 'not_started' };
    const peer = options.peerPrincipal;
    if (peer !== undefined) {
      const sessionEnd = peer.expiresAt === undefined ? Number.POSITIVE_INFINITY : peer.expiresAt * 1000;
      this.#auth = { kind: 'authenticated', principal: peer, sessionEnd, reauth: 'idle' };
    }
  }

  /** The authenticated principal, if any. */
  get principal(): Principal | undefined {
    return this.#auth.kind === 'authenticated' ? this.#auth.principal : undefined;
  }

  /** Client requests awaiting their response. */
  get inFlightCount(): number {
    return this.#sequencer.pendingClient;
  }

  /** Client frames held until authentication completes. */
  get heldCount(): number {
    return this.#held.length;
  }

  /** Bytes from the client (Envoy `read_data`). */
  onClientData(chunk: Buffer): ConnectionOutput {
    return this.#run(() => {
      let frames: Buffer[];
      try {
        frames = this.#requests.push(chunk);
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        for (const frame of error.completeFrames) this.#onClientFrame(frame);
        throw this.#frameClose(error, 'request');
      }
      for (const frame of frames) this.#onClientFrame(frame);
    });
  }

  /** Bytes from the broker (Envoy `write_data`). */
  onBrokerData(chunk: Buffer): ConnectionOutput {
    return this.#run(() => {
      let frames: Buffer[];
      try {
        frames = this.#responses.push(chunk);
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        for (const frame of error.completeFrames) this.#onBrokerFrame(frame);
        throw this.#frameClose(error, 'response');
      }
      for (const frame of frames) this.#onBrokerFrame(frame);
      this.#drainHeld();
    });
  }

  /** The client half-closed. A partial frame, or requests still held, close the connection: they would be lost. */
  onClientEnd(): ConnectionOutput {
    return this.#run(() => {
      this.#checkEnd('request', this.#requests);
      if (this.#held.length > 0) {
        throw new ConnectionClosed({
          event: 'kafka.connection.ended_while_held',
          reason: `the client closed its side with ${this.#held.length} requests still held for authentication`,
          details: { held: this.#held.length },
        });
      }
    });
  }

  /** The broker closed. A partial response frame at that point closes the connection. */
  onBrokerEnd(): ConnectionOutput {
    return this.#run(() => this.#checkEnd('response', this.#responses));
  }

  #checkEnd(direction: KafkaDirection, reassembler: FrameReassembler): void {
    if (reassembler.isIdle) return;
    throw new ConnectionClosed({
      event: 'kafka.frame.truncated_at_eof',
      reason: `the ${direction} stream ended inside a frame (${reassembler.pendingBytes} bytes held)`,
      details: { direction, pendingBytes: reassembler.pendingBytes },
    });
  }

  /** Runs one input step and collects its output; a ConnectionClosed thrown inside becomes the output's `close`. */
  #run(step: () => void): ConnectionOutput {
    if (this.#closed !== undefined) return { toBroker: [], toClient: [] };
    try {
      step();
    } catch (error) {
      if (!(error instanceof ConnectionClosed)) throw error;
      this.#closeWith(error.close);
    }
    return this.#take();
  }

  #take(): ConnectionOutput {
    const output: ConnectionOutput = {
      toBroker: this.#closed === undefined ? this.#toBroker : [],
      toClient: this.#toClient,
      ...(this.#closed !== undefined && { close: this.#closed }),
    };
    this.#toBroker = [];
    this.#toClient = [];
    return output;
  }

  #closeWith(close: CloseReason): void {
    if (this.#closed !== undefined) return;
    const principal = this.principal;
    this.#closed = principal !== undefined && close.principal === undefined ? { ...close, principal } : close;
    // Nothing more goes to the broker from a connection being closed; what the client was owed still leaves.
    this.#toBroker = [];
  }

  #frameClose(error: FrameError, direction: KafkaDirection): ConnectionClosed {
    return new ConnectionClosed({ event: FRAME_EVENTS[error.code], reason: error.message, details: { direction, ...error.details } });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Client requests
  // -------------------------------------------------------------------------------------------------------------

  #onClientFrame(frame: Buffer): void {
    if (this.#closed !== undefined) return;
    if (this.#held.length > 0 || !this.#canHandleNow()) {
      this.#held.push(frame);
      return;
    }
    this.#handleClientFrame(frame);
  }

  /**
   * Requests wait while tollgate authenticates upstream and while a token is being verified. Before upstream
   * authentication starts (it starts with the client's first request past SASL), ApiVersions and the client's SASL
   * pass: the broker answers ApiVersions unauthenticated, and the SASL exchange never leaves tollgate.
   */
  #canHandleNow(): boolean {
    if (this.#upstream.kind === 'authenticating') return false;
    if (this.#preparingApprovals) return false;
    if (this.#auth.kind === 'verifying') return false;
    return !(this.#auth.kind === 'authenticated' && this.#auth.reauth === 'verifying');
  }

  #drainHeld(): void {
    while (this.#held.length > 0 && this.#closed === undefined && this.#canHandleNow()) {
      this.#handleClientFrame(this.#held.shift()!);
    }
  }

  #handleClientFrame(frame: Buffer): void {
    let header: RequestHeader;
    try {
      header = readRequestHeader(frame);
    } catch (error) {
      if (error instanceof FrameError) throw this.#frameClose(error, 'request');
      throw error;
    }
    const { apiKey, apiVersion } = header;
    if (!isClientApiVersionAllowed(apiKey, apiVersion) && apiKey !== API_KEY.ApiVersions) {
      throw new ConnectionClosed({
        event: 'kafka.request.unsupported_version',
        reason: `${apiKeyName(apiKey)} v${apiVersion} is not a request tollgate accepts (its ApiVersions answer does not offer it)`,
        details: this.#requestDetails(header),
      });
    }
    if (this.#sequencer.pendingClient >= this.#options.maxInFlight) {
      throw new ConnectionClosed({
        event: 'kafka.request.in_flight_limit',
        reason: `more than ${this.#options.maxInFlight} requests awaiting a response`,
        details: { limit: this.#options.maxInFlight, ...this.#requestDetails(header) },
      });
    }
    switch (apiKey) {
      case API_KEY.ApiVersions:
        // Allowed before authentication, as on the broker; the answer is trimmed to what tollgate parses. A broker
        // not yet authenticated accepts one ApiVersions before SaslHandshake and closes on a second (Java clients
        // send one from their SASL authenticator and another once authenticated): tollgate authenticates first.
        if (this.#upstream.kind === 'not_started' && this.#upstreamSawApiVersions) {
          this.#held.unshift(frame);
          this.#startUpstreamAuthentication();
          return;
        }
        if (this.#upstream.kind === 'not_started') this.#upstreamSawApiVersions = true;
        this.#forward(frame, header, (response) => trimApiVersionsResponse(response, apiVersion), []);
        return;
      case API_KEY.SaslHandshake:
        this.#onSaslHandshake(frame, header);
        return;
      case API_KEY.SaslAuthenticate:
        this.#onSaslAuthenticate(frame, header);
        return;
      default:
        this.#onApiRequest(frame, header);
    }
  }

  #onApiRequest(frame: Buffer, header: RequestHeader): void {
    const auth = this.#auth;
    if (auth.kind !== 'authenticated') {
      throw new ConnectionClosed({
        event: 'kafka.sasl.unauthenticated_request',
        reason: `${apiKeyName(header.apiKey)} before SASL authentication (expected SaslHandshake with OAUTHBEARER)`,
        details: this.#requestDetails(header),
      });
    }
    if (auth.reauth !== 'idle') {
      throw new ConnectionClosed({
        event: 'kafka.sasl.illegal_state',
        reason: `${apiKeyName(header.apiKey)} in the middle of re-authentication`,
        details: this.#requestDetails(header),
      });
    }
    if (this.#clock() >= auth.sessionEnd) {
      throw new ConnectionClosed({
        event: 'kafka.sasl.session_expired',
        reason: `the SASL session of ${auth.principal.subject} ended ${new Date(auth.sessionEnd).toISOString()} and the client did not re-authenticate`,
        details: this.#requestDetails(header),
      });
    }
    if (this.#upstream.kind === 'not_started' || this.#upstreamReauthDue()) {
      // Only an authenticated client's request makes tollgate use its broker credential (an unauthenticated
      // connection costs the broker nothing); the held frame goes first once the broker accepted tollgate.
      this.#held.unshift(frame);
      this.#startUpstreamAuthentication();
      return;
    }
    const prepared = this.#prepared?.frame === frame ? this.#prepared : undefined;
    this.#prepared = undefined;
    // Decisions are counted once: those of a first pass that turns out to need approvals readied are not.
    let uncounted: Decision[] | undefined = prepared === undefined && this.#options.approvals !== undefined ? [] : undefined;
    const signals = this.#options.signals;
    const seen: SignalObservation[] = [];
    const decide: Decide = (action) => {
      let decision = this.#options.decide(auth.principal, action, prepared?.view);
      if (prepared?.error !== undefined && decision.approval !== undefined) {
        decision = { ...decision, reason: `${decision.reason}: approvals could not be checked (${prepared.error})` };
      }
      // A signal holding the key back (deny, approve) turns an allow into its own decision.
      if (signals !== undefined && decision.effect === 'allow') decision = signals.gate(auth.principal, action, seen, prepared?.view) ?? decision;
      if (uncounted !== undefined) uncounted.push(decision);
      else this.#options.onDecision?.(decision);
      return decision;
    };
    const counted = () => {
      const pending = uncounted ?? [];
      uncounted = undefined;
      for (const decision of pending) this.#options.onDecision?.(decision);
    };
    let asked: readonly ResourceDecision[] = [];
    if (header.apiKey === API_KEY.Produce) {
      // Hot path: every topic allowed (the usual case) is forwarded without the generic decoder. Anything else,
      // including bytes the hot reader refuses, goes the full way below, which gives the same errors and decisions.
      let view: ProduceRequestView | undefined;
      try {
        view = readProduceRequest(frame);
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
      }
      if (view !== undefined) {
        const judged = new Array<ResourceDecision>();
        const allowed = allowedProduce(frame, { ...header, taggedFields: [] }, view, (action) => {
          const decision = decide(action);
          judged.push({ action, decision });
          return decision;
        });
        if (allowed !== undefined) {
          counted();
          this.#forwardProduce(frame, header, undefined, allowed, { frame, produce: view, signals: seen }, auth.principal);
          return;
        }
        asked = judged;
      }
    }
    let plan: RequestPlan;
    let decoded: DecodedRequest;
    try {
      decoded = decodeRequest(frame);
      plan = authorizeRequest(frame, decoded, replayDecisions(asked, decide));
    } catch (error) {
      if (error instanceof FrameError) throw this.#frameClose(error, 'request');
      throw error;
    }
    const approvals = this.#options.approvals;
    if (prepared === undefined && approvals !== undefined && plan.decisions.some((d) => d.decision.approval !== undefined)) {
      this.#prepareApprovals(approvals, frame, header, plan.decisions, auth.principal);
      return;
    }
    counted();
    if (plan.kind === 'forward' || plan.kind === 'split') this.#relyOnGrants(plan.decisions);
    switch (plan.kind) {
      case 'forward':
        if (header.apiKey === API_KEY.Produce) this.#forwardProduce(frame, header, plan.filterResponse, plan.decisions, { frame, decoded, signals: seen }, auth.principal);
        else this.#forward(frame, header, plan.filterResponse, plan.decisions, { frame, decoded, signals: seen });
        return;
      case 'split':
        if (header.apiKey === API_KEY.Produce) this.#forwardProduce(plan.request, header, plan.completeResponse, plan.decisions, { frame, decoded, signals: seen }, auth.principal);
        else this.#forward(plan.request, header, plan.completeResponse, plan.decisions, { frame, decoded, signals: seen });
        return;
      case 'answer':
        this.#answer(header, plan.response);
        this.#auditRequest(header, { frame, decoded, signals: seen }, plan.decisions, 'denied', undefined, undefined);
        return;
      case 'refuse': {
        const denied = plan.decisions.find((d) => d.decision.effect === 'deny');
        throw new ConnectionClosed({
          event: 'kafka.request.refused',
          reason: plan.reason,
          details: { ...this.#requestDetails(header), decisions: decisionDetails(plan.decisions), ...(seen.length > 0 && { signals: seen.map(observationDetails) }) },
          ...(denied?.decision.rule != null && { rule: denied.decision.rule }),
        });
      }
    }
  }

  /**
   * The request needs approvals readied (grants read and taken, approval requests filed) before it is decided again:
   * it goes back to the head of the held requests, and everything behind it waits, so answers keep their order.
   */
  #prepareApprovals(approvals: KafkaApprovals, frame: Buffer, header: RequestHeader, decisions: readonly ResourceDecision[], principal: Principal): void {
    this.#held.unshift(frame);
    this.#preparingApprovals = true;
    const demands = decisions.filter((d) => d.decision.approval !== undefined);
    const context = { ...this.#options.facts, api: apiKeyName(header.apiKey), apiVersion: header.apiVersion, ...(header.clientId !== null && { clientId: header.clientId }) };
    const ready = (view: ApprovalView, error?: string) => this.#completeAsync(() => {
      this.#preparingApprovals = false;
      this.#prepared = { frame, view, ...(error !== undefined && { error }) };
    });
    approvals.prepare(principal, demands, context).then(
      (view) => ready(view),
      (error: unknown) => {
        this.#options.logger.error({ err: error }, 'approvals could not be readied for a Kafka request');
        ready(NO_APPROVALS, error instanceof Error ? error.message : String(error));
      },
    );
  }

  /** Grants a forwarded request went through with: the connection closes when one of them is revoked. */
  #relyOnGrants(decisions: readonly ResourceDecision[]): void {
    const approvals = this.#options.approvals;
    if (approvals === undefined) return;
    for (const { decision } of decisions) {
      if (decision.grant === undefined || decision.grant.oneTime) continue;
      this.#reliedGrants.set(decision.grant.id, decision.grant.approval);
      this.#unwatchRevocations ??= approvals.watchRevocations((grantId) => this.#onGrantRevoked(grantId));
    }
  }

  #onGrantRevoked(grantId: string): void {
    const approval = this.#reliedGrants.get(grantId);
    if (approval === undefined || this.#closed !== undefined) return;
    this.#completeAsync(() => {
      throw new ConnectionClosed({
        event: 'kafka.approval.grant_revoked',
        reason: `grant ${grantId} of approval ${approval}, which requests on this connection relied on, was revoked`,
        details: { approval: { id: approval, state: 'revoked' }, grant: grantId },
      });
    });
  }

  /** The connection's stream ended: it stops listening for revocations. */
  dispose(): void {
    this.#unwatchRevocations?.();
    this.#unwatchRevocations = undefined;
  }

  /**
   * A Produce the policy lets through (`frame`: the client's, or the allowed part of it): the publish inspection
   * rules then look at its records. Refused partitions are taken out and answered with INVALID_RECORD /
   * POLICY_VIOLATION; when none is left the request is answered here. acks=0 has no answer to carry the refusal:
   * the connection is closed, as the broker does for an invalid record without acks.
   */
  #forwardProduce(frame: Buffer, header: RequestHeader, transform: ResponseTransform | undefined, decisions: readonly ResourceDecision[], clientRequest: ClientRequest, principal: Principal): void {
    const inspection = this.#options.inspection;
    const inspects = inspection !== undefined && inspection.mayInspect(principal);
    const signals = this.#options.signals;
    const replays = signals !== undefined && signals.checksReplay(principal);
    if (!inspects && !replays) {
      this.#forward(frame, header, transform, decisions, clientRequest);
      return;
    }
    const request = frame === clientRequest.frame && clientRequest.decoded !== undefined ? clientRequest.decoded : decodeRequest(frame);
    const body = request.body as ProduceRequest;
    const found = inspects ? inspectProduce(body, (topic) => inspection.plansFor(principal, topic)) : [];
    let original = clientRequest;
    if (replays) {
      const replay = signals.replay(principal, body, this.#options.facts);
      original.signals?.push(...replay.observations);
      original = { ...clientRequest, replay };
      // One refusal per partition: publish inspection's first, then replay's.
      for (const r of replay.rejections) if (!found.some((f) => f.topic === r.topic && f.partition === r.partition && (f.shadow === true) === (r.shadow === true))) found.push(r);
    }
    const rejections = found.filter((r) => r.shadow !== true);
    const shadow = found.filter((r) => r.shadow === true && !rejections.some((e) => e.topic === r.topic && e.partition === r.partition));
    if (rejections.length === 0) {
      this.#forward(frame, header, transform, decisions, original, undefined, shadow);
      return;
    }
    const details = { ...this.#requestDetails(header), rejected: rejections };
    if (body.acks === 0) {
      throw new ConnectionClosed({ event: 'kafka.produce.rejected', reason: `acks=0 Produce with refused records: ${rejections[0]!.reason}`, details, principal });
    }
    const complete = (response: Buffer) => addRejections(transform === undefined ? response : transform(response), header.apiVersion, rejections);
    const remaining = withoutRejected(body, rejections);
    if (remaining.topicData.length === 0) {
      this.#answer(header, complete(emptyProduceResponse(header.correlationId, header.apiVersion)));
      this.#auditRequest(header, original, decisions, 'denied', undefined, undefined, { rejections, shadowRejected: shadow, ...(original.signals !== undefined && { signals: original.signals }) });
      return;
    }
    this.#forward(encodeRequest(request.header, remaining), header, complete, decisions, original, rejections, shadow);
  }

  /**
   * Sends `frame` upstream; its response goes through `transform`, then broker addresses are rewritten, then it is
   * audited. Produce with acks=0 has no response: audited at once. `original` is the client's frame when `frame`
   * is a rewritten one (a split): the audit summarises what the client asked.
   */
  #forward(frame: Buffer, header: RequestHeader, transform: ResponseTransform | undefined, decisions: readonly ResourceDecision[], original: ClientRequest = { frame }, rejections?: readonly Rejection[], shadowRejected: readonly Rejection[] = []): void {
    const request: PendingRequest = { apiKey: header.apiKey, apiVersion: header.apiVersion, correlationId: header.correlationId };
    const outcome = original.frame === frame ? 'forwarded' : 'split';
    this.#toBroker.push(frame);
    this.#options.onFrame?.('request', header.apiKey);
    const produced = header.apiKey === API_KEY.Produce ? this.#produceCapture(frame, original) : undefined;
    const signalled = this.#countForwarded(frame, header, decisions, original);
    // acks from the client's own frame: `header` describes it, not a re-encoded split (whose header bytes may differ).
    if (header.apiKey === API_KEY.Produce && readProduceAcks(original.frame, header) === 0) {
      original.replay?.acknowledge(undefined, header.apiVersion);
      this.#auditRequest(header, original, decisions, outcome, undefined, undefined, { ...(rejections !== undefined && { rejections }), shadowRejected, ...completeCapture(produced, undefined, header.apiVersion), signals: signalled });
      return;
    }
    const sentAt = this.#now();
    const fetch = header.apiKey === API_KEY.Fetch ? this.#fetchProcessor() : undefined;
    const countFetched = header.apiKey === API_KEY.Fetch ? this.#fetchCounter() : undefined;
    this.#sequencer.forwarded(request, (response) => {
      let out = transform === undefined ? response : transform(response);
      let extras: AuditExtras = { ...(rejections !== undefined && { rejections }), shadowRejected };
      if (fetch !== undefined) {
        const processed = fetch(out, header.apiVersion);
        out = processed.masking.frame;
        extras = { ...extras, masking: processed.masking, ...processed.capture };
      }
      // The broker's own answer: offsets of the partitions it wrote (the client's may add refusals it never saw).
      if (produced !== undefined) extras = { ...extras, ...completeCapture(produced, response, header.apiVersion) };
      original.replay?.acknowledge(response, header.apiVersion);
      // What was served counts (after masking); then the longest throttle any signal asks goes into the answer.
      if (countFetched !== undefined) signalled.push(...countFetched(out, header.apiVersion));
      const throttleMs = throttleOf(signalled);
      if (throttleMs > 0) out = withThrottle(out, header.apiKey, header.apiVersion, throttleMs);
      if (signalled.length > 0) extras = { ...extras, signals: signalled };
      if (carriesBrokerEndpoints(header.apiKey, header.apiVersion)) {
        const rewritten = rewriteBrokerEndpoints(out, header.apiKey, header.apiVersion, this.#options.routes);
        if (rewritten.kind === 'unknown_broker') {
          throw new ConnectionClosed({
            event: 'kafka.routing.unknown_broker',
            reason: `the broker named node ${rewritten.nodeId} (${rewritten.host}:${rewritten.port}), which kafka.brokers does not map to an Envoy listener`,
            details: { ...this.#requestDetails(header), nodeId: rewritten.nodeId },
          });
        }
        if (rewritten.kind === 'rewritten') out = rewritten.frame;
      }
      this.#auditRequest(header, original, decisions, rejections === undefined ? outcome : 'split', response, this.#now() - sentAt, extras);
      this.#options.onFrame?.('response', header.apiKey);
      return out;
    });
  }

  /**
   * Counts a request leaving for the broker with the signals (its allowed actions; for a Produce, the records sent)
   * and returns every observation about it so far: those made while judging it, then those of counting it.
   */
  #countForwarded(frame: Buffer, header: RequestHeader, decisions: readonly ResourceDecision[], original: ClientRequest): SignalObservation[] {
    const signalled = [...(original.signals ?? [])];
    const signals = this.#options.signals;
    const principal = this.principal;
    if (signals === undefined || principal === undefined) return signalled;
    const produce = header.apiKey !== API_KEY.Produce ? undefined : (): ProduceRecords => {
      if (frame === original.frame && original.produce !== undefined) return original.produce;
      if (frame === original.frame && original.decoded !== undefined) return produceRecordsOf(original.decoded.body as ProduceRequest);
      return readProduceRequest(frame);
    };
    signalled.push(...signals.forwarded(principal, { apiKey: header.apiKey, decisions, decoded: original.decoded, produce }, this.#options.facts));
    return signalled;
  }

  /** Counts a Fetch response as served, when a fetched-volume signal can apply to the principal; else undefined. */
  #fetchCounter(): ((frame: Buffer, apiVersion: number) => SignalObservation[]) | undefined {
    const signals = this.#options.signals;
    const principal = this.principal;
    if (signals === undefined || principal === undefined || !signals.countsFetches(principal)) return undefined;
    return (frame, apiVersion) => signals.fetched(principal, frame, apiVersion, this.#options.facts);
  }

  /**
   * The masking and capture step for this connection's Fetch responses, or undefined when no masking or capture rule
   * can apply to the principal (the response is then not even decoded). Plans are looked up once per topic per
   * session (a re-authentication may change the groups: the caches go with the principal they were made for).
   */
  #fetchProcessor(): ((frame: Buffer, apiVersion: number) => { masking: FetchMaskingResult; capture: Pick<AuditExtras, 'capture' | 'captureError'> }) | undefined {
    const masking = this.#options.masking;
    const principal = this.principal;
    if (principal === undefined) return undefined;
    const masks = masking !== undefined && masking.mayMask(principal);
    const captureFor = this.#captureLookup(principal, 'consume');
    if (!masks && captureFor === undefined) return undefined;
    let plansFor = (_topic: string): readonly NamedMaskPlan[] => [];
    if (masks) {
      if (this.#maskPlans?.principal !== principal) this.#maskPlans = { principal, byTopic: new Map() };
      const byTopic = this.#maskPlans.byTopic;
      plansFor = (topic) => {
        let plans = byTopic.get(topic);
        if (plans === undefined) {
          plans = masking.plansFor(principal, topic);
          byTopic.set(topic, plans);
        }
        return plans;
      };
    }
    const maskContext = masking?.context ?? {};
    const captureContext = this.#options.capture?.context ?? {};
    return (frame, apiVersion) => {
      const capture = captureFor === undefined ? undefined : new FetchCapture(captureFor, captureContext);
      const result = maskFetchResponse(frame, apiVersion, plansFor, maskContext, capture);
      return { masking: result, capture: capture === undefined ? {} : detailOrEmpty(() => capture.detail()) };
    };
  }

  /**
   * `operation` capture of `principal`'s records by topic (rules combined once per topic), or undefined when no
   * capture rule can apply to the principal at all.
   */
  #captureLookup(principal: Principal, operation: 'produce' | 'consume'): ((topic: string) => TopicCapture | undefined) | undefined {
    const capture = this.#options.capture;
    if (capture === undefined || !capture.mayCapture(principal)) return undefined;
    if (this.#capturePlans?.principal !== principal) this.#capturePlans = { principal, byTopic: new Map() };
    const byTopic = this.#capturePlans.byTopic;
    return (topic) => {
      const key = `${operation}\0${topic}`;
      let combined = byTopic.get(key);
      if (combined === undefined) {
        combined = combineCaptures(capture.plansFor(principal, operation, topic)) ?? null;
        byTopic.set(key, combined);
      }
      return combined ?? undefined;
    };
  }

  /**
   * The capture of a Produce being forwarded (`frame`: the client's, or the allowed part of it), or undefined when
   * no capture rule applies to its topics. Its records are read from views of the frame; what fails to be read is
   * said in the audit record, never a reason to hold the request.
   */
  #produceCapture(frame: Buffer, original: ClientRequest): PendingProduceCapture | { readonly failed: string } | undefined {
    const principal = this.principal;
    if (principal === undefined) return undefined;
    const captureFor = this.#captureLookup(principal, 'produce');
    if (captureFor === undefined) return undefined;
    try {
      // The client's frame was read already (hot path view, or the decoder's output); a rewritten one is tollgate's own.
      let request: ProduceRecords;
      if (frame === original.frame && original.produce !== undefined) request = original.produce;
      else if (frame === original.frame && original.decoded !== undefined) request = produceRecordsOf(original.decoded.body as ProduceRequest);
      else request = readProduceRequest(frame);
      return captureProduce(request, captureFor, this.#options.capture!.context);
    } catch (error) {
      this.#options.logger.error({ err: error }, 'session capture of a Produce failed');
      return { failed: error instanceof Error ? error.message : String(error) };
    }
  }

  #answer(header: RequestHeader, response: Buffer): void {
    const request: PendingRequest = { apiKey: header.apiKey, apiVersion: header.apiVersion, correlationId: header.correlationId };
    this.#options.onFrame?.('response', header.apiKey);
    this.#release(this.#sequencer.answered(request, response));
  }

  /** Frames the sequencer released: they leave for the client in this order. */
  #release(frames: Buffer[]): void {
    for (const frame of frames) this.#toClient.push(frame);
  }

  /** Fills a reserved slot (an asynchronous SASL answer). */
  #fill(fill: (response: Buffer) => Buffer[], header: RequestHeader, response: Buffer): void {
    this.#options.onFrame?.('response', header.apiKey);
    this.#release(fill(response));
  }

  // -------------------------------------------------------------------------------------------------------------
  // Client SASL (answered here)
  // -------------------------------------------------------------------------------------------------------------

  #onSaslHandshake(frame: Buffer, header: RequestHeader): void {
    const request = decodeRequest(frame);
    const mechanism = (request.body as { mechanism: string }).mechanism;
    const auth = this.#auth;
    const handshakeAnswer = (errorCode: number) =>
      this.#answer(header, encodeResponse({ correlationId: header.correlationId, taggedFields: [] }, API_KEY.SaslHandshake, header.apiVersion, { errorCode, mechanisms: [OAUTHBEARER] }));
    if (header.apiVersion < 1) {
      // v0 is followed by raw, unframed SASL tokens: not offered by tollgate's ApiVersions, and not parseable here.
      handshakeAnswer(KafkaError.UNSUPPORTED_VERSION);
      throw new ConnectionClosed({ event: 'kafka.sasl.unsupported_version', reason: 'SaslHandshake v0 (unframed SASL tokens) is not supported', details: this.#requestDetails(header) });
    }
    if (mechanism !== OAUTHBEARER) {
      handshakeAnswer(KafkaError.UNSUPPORTED_SASL_MECHANISM);
      this.#auditSasl('kafka.sasl.unsupported_mechanism', `the client asked for SASL mechanism ${JSON.stringify(mechanism)}; tollgate accepts only OAUTHBEARER`, header);
      return;
    }
    if (auth.kind === 'none') this.#auth = { kind: 'handshake' };
    else if (auth.kind === 'authenticated' && auth.reauth === 'idle') this.#auth = { ...auth, reauth: 'handshake' };
    else {
      handshakeAnswer(KafkaError.ILLEGAL_SASL_STATE);
      throw new ConnectionClosed({ event: 'kafka.sasl.illegal_state', reason: `SaslHandshake while ${describeAuth(auth)}`, details: this.#requestDetails(header) });
    }
    handshakeAnswer(KafkaError.NONE);
  }

  #saslAuthenticateResponse(header: RequestHeader, errorCode: number, errorMessage: string | null, sessionLifetimeMs: number): Buffer {
    return encodeResponse({ correlationId: header.correlationId, taggedFields: [] }, API_KEY.SaslAuthenticate, header.apiVersion, {
      errorCode,
      errorMessage,
      authBytes: Buffer.alloc(0),
      sessionLifetimeMs: BigInt(sessionLifetimeMs),
    });
  }

  #onSaslAuthenticate(frame: Buffer, header: RequestHeader): void {
    const auth = this.#auth;
    const reauth = auth.kind === 'authenticated';
    if (!(auth.kind === 'handshake' || (auth.kind === 'authenticated' && auth.reauth === 'handshake'))) {
      this.#answer(header, this.#saslAuthenticateResponse(header, KafkaError.ILLEGAL_SASL_STATE, `SaslAuthenticate while ${describeAuth(auth)}`, 0));
      throw new ConnectionClosed({ event: 'kafka.sasl.illegal_state', reason: `SaslAuthenticate while ${describeAuth(auth)}`, details: this.#requestDetails(header) });
    }
    const request = decodeRequest(frame);
    let token: string;
    try {
      token = parseOAuthBearerInitialResponse((request.body as { authBytes: Buffer }).authBytes).token;
    } catch (error) {
      this.#failAuthentication(header, error instanceof Error ? error.message : String(error), undefined);
      return;
    }
    const fill = this.#sequencer.reserved({ apiKey: header.apiKey, apiVersion: header.apiVersion, correlationId: header.correlationId });
    this.#auth = auth.kind === 'authenticated' ? { ...auth, reauth: 'verifying' } : { kind: 'verifying' };
    this.#options.authenticate(token).then(
      (principal) => this.#completeAsync(() => this.#onTokenVerified(header, fill, principal, reauth, token)),
      (error: unknown) => this.#completeAsync(() => this.#failAuthentication(header, error instanceof Error ? error.message : String(error), fill, token)),
    );
  }

  #onTokenVerified(header: RequestHeader, fill: (response: Buffer) => Buffer[], principal: Principal, reauth: boolean, token: string): void {
    const previous = this.#auth.kind === 'authenticated' ? this.#auth.principal : undefined;
    const now = this.#clock();
    if (reauth && previous !== undefined && (previous.subject !== principal.subject || previous.issuer !== principal.issuer)) {
      this.#failAuthentication(header, `re-authentication must keep the principal: ${previous.subject} cannot become ${principal.subject}`, fill, token);
    }
    const tokenEnd = principal.expiresAt === undefined ? Number.POSITIVE_INFINITY : principal.expiresAt * 1000;
    const sessionEnd = Math.min(tokenEnd, now + this.#options.maxSessionLifetimeMs);
    const lifetime = Math.floor(sessionEnd - now);
    if (lifetime <= 0) this.#failAuthentication(header, 'the token has expired', fill, token);
    // Failed authentications before this success flag the session (signals); rules then see it (`match.flagged`).
    const flagged = this.#options.signals?.authenticated(principal, this.#options.facts) ?? [];
    this.#auth = { kind: 'authenticated', principal, sessionEnd, reauth: 'idle' };
    // v0 has no session lifetime: such a client cannot re-authenticate, and its connection ends with the session.
    this.#fill(fill, header, this.#saslAuthenticateResponse(header, KafkaError.NONE, null, lifetime));
    this.#options.audit.write({
      time: new Date(now).toISOString(),
      path: 'kafka',
      event: reauth ? 'kafka.sasl.reauthenticated' : 'kafka.sasl.authenticated',
      principal,
      ...(this.#options.facts !== undefined && { connection: this.#options.facts }),
      details: {
        mechanism: OAUTHBEARER, clientId: header.clientId, sessionLifetimeMs: lifetime,
        ...(flagged.length > 0 && { signals: flagged.map(observationDetails) }),
      },
    });
    this.#options.logger.debug({ subject: principal.subject, sessionLifetimeMs: lifetime, reauth }, 'kafka client authenticated');
  }

  /** SASL_AUTHENTICATION_FAILED with the reason (at once, or into the reserved slot `fill`), then close. */
  #failAuthentication(header: RequestHeader, message: string, fill: ((response: Buffer) => Buffer[]) | undefined, token?: string): never {
    const response = this.#saslAuthenticateResponse(header, KafkaError.SASL_AUTHENTICATION_FAILED, `Authentication failed: ${message}`, 0);
    if (fill === undefined) this.#answer(header, response);
    else this.#fill(fill, header, response);
    // Counted per claimed subject and source address; the counts go into the failure's audit record.
    const counts = this.#options.signals?.authenticationFailed(token, this.#options.facts) ?? {};
    throw new ConnectionClosed({
      event: 'kafka.sasl.authentication_failed',
      reason: `SASL OAUTHBEARER authentication failed: ${message}`,
      details: { mechanism: OAUTHBEARER, clientId: header.clientId, ...(Object.keys(counts).length > 0 && { failedAuthentications: counts }) },
    });
  }

  /** Runs the rest of an asynchronous step and delivers its output (unless the connection closed meanwhile). */
  #completeAsync(step: () => void): void {
    if (this.#closed !== undefined) return;
    let output: ConnectionOutput;
    try {
      output = this.#run(() => {
        step();
        this.#drainHeld();
      });
    } catch (error) {
      this.#options.logger.error({ err: error }, 'unexpected error completing an asynchronous step of a Kafka connection');
      this.#closeWith({ event: 'kafka.processor.internal_error', reason: error instanceof Error ? error.message : String(error), details: {} });
      output = this.#take();
    }
    this.#options.deliver(output);
  }

  #auditSasl(event: string, reason: string, header: RequestHeader): void {
    this.#options.audit.write({
      time: new Date(this.#clock()).toISOString(),
      path: 'kafka',
      event,
      reason,
      ...(this.#options.facts !== undefined && { connection: this.#options.facts }),
      details: this.#requestDetails(header),
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Upstream SASL (tollgate's own credential)
  // -------------------------------------------------------------------------------------------------------------

  #upstreamReauthDue(): boolean {
    const upstream = this.#upstream;
    return upstream.kind === 'ready' && upstream.reauthAt !== undefined && this.#clock() >= upstream.reauthAt;
  }

  #startUpstreamAuthentication(): void {
    const sasl = this.#options.upstreamSasl;
    if (sasl === undefined) return;
    this.#upstream = { kind: 'authenticating' };
    this.#inject(API_KEY.SaslHandshake, UPSTREAM_HANDSHAKE_VERSION, { mechanism: sasl.mechanism }, (frame) => {
      const response = decodeResponse(frame, API_KEY.SaslHandshake, UPSTREAM_HANDSHAKE_VERSION).body;
      if (response.errorCode !== KafkaError.NONE) {
        throw this.#upstreamFailure(`the broker refused SASL mechanism ${sasl.mechanism} with ${kafkaErrorName(response.errorCode)}; it offers ${response.mechanisms.join(', ') || 'none'}`);
      }
      if (sasl.mechanism === 'PLAIN') {
        this.#upstreamAuthenticate(encodePlain({ username: sasl.username, password: sasl.password }), () => true);
        return;
      }
      const scram = new ScramClient({ mechanism: sasl.mechanism, username: sasl.username, password: sasl.password, ...(sasl.deriveKeys !== undefined && { deriveKeys: sasl.deriveKeys }) });
      this.#upstreamAuthenticate(scram.clientFirstMessage(), (serverFirst) => {
        this.#upstreamAuthenticate(scram.handleServerFirst(serverFirst), (serverFinal) => {
          scram.handleServerFinal(serverFinal);
          return true;
        });
        return false;
      });
    });
  }

  /** One SaslAuthenticate round upstream; `next` gets the broker's bytes and returns true when authentication is done. */
  #upstreamAuthenticate(authBytes: Buffer, next: (serverBytes: Buffer) => boolean): void {
    this.#inject(API_KEY.SaslAuthenticate, UPSTREAM_AUTHENTICATE_VERSION, { authBytes }, (frame) => {
      const response = decodeResponse(frame, API_KEY.SaslAuthenticate, UPSTREAM_AUTHENTICATE_VERSION).body;
      if (response.errorCode !== KafkaError.NONE) {
        throw this.#upstreamFailure(`the broker refused tollgate's credential: ${kafkaErrorName(response.errorCode)}${response.errorMessage === null ? '' : `: ${response.errorMessage}`}`);
      }
      let done: boolean;
      try {
        done = next(response.authBytes);
      } catch (error) {
        if (error instanceof ConnectionClosed) throw error;
        throw this.#upstreamFailure(error instanceof Error ? error.message : String(error));
      }
      if (!done) return;
      const lifetime = Number(response.sessionLifetimeMs);
      this.#upstream = { kind: 'ready', reauthAt: lifetime > 0 ? this.#clock() + lifetime * UPSTREAM_REAUTH_AT : undefined };
      this.#options.logger.debug({ sessionLifetimeMs: lifetime }, 'tollgate authenticated to the broker');
    });
  }

  #inject(apiKey: number, apiVersion: number, body: unknown, onResponse: (frame: Buffer) => void): void {
    const correlationId = this.#nextInternalCorrelationId--;
    if (this.#nextInternalCorrelationId < -0x7fffffff) this.#nextInternalCorrelationId = -1;
    this.#toBroker.push(encodeRequest({ apiKey, apiVersion, correlationId, clientId: 'tollgate', taggedFields: [] }, body));
    this.#sequencer.injected(correlationId, (frame) => {
      try {
        onResponse(frame);
      } catch (error) {
        if (error instanceof FrameError) throw this.#upstreamFailure(`unreadable SASL response from the broker: ${error.message}`);
        throw error;
      }
    });
  }

  #upstreamFailure(message: string): ConnectionClosed {
    return new ConnectionClosed({
      event: 'kafka.upstream.authentication_failed',
      reason: `tollgate could not authenticate to the broker as ${this.#options.upstreamSasl?.username ?? '?'} (${this.#options.upstreamSasl?.mechanism ?? '?'}): ${message}`,
      details: { mechanism: this.#options.upstreamSasl?.mechanism },
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Broker responses
  // -------------------------------------------------------------------------------------------------------------

  #onBrokerFrame(frame: Buffer): void {
    if (this.#closed !== undefined) return;
    const head = this.#sequencer.peekUpstream();
    let released: Buffer[];
    try {
      released = this.#sequencer.fromBroker(frame);
    } catch (error) {
      if (error instanceof SequenceError) {
        throw new ConnectionClosed({
          event: error.code === 'unexpected_response' ? 'kafka.response.unknown_correlation_id' : 'kafka.response.out_of_order',
          reason: error.message,
          details: { direction: 'response', correlationId: frame.length >= 8 ? frame.readInt32BE(4) : null },
        });
      }
      if (error instanceof FrameError) {
        throw new ConnectionClosed({
          event: 'kafka.response.invalid',
          reason: `unreadable ${head !== undefined && !('internal' in head) ? apiKeyName(head.apiKey) : ''} response from the broker: ${error.message}`,
          details: { direction: 'response', ...error.details },
        });
      }
      throw error;
    }
    this.#release(released);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Audit
  // -------------------------------------------------------------------------------------------------------------

  #requestDetails(header: RequestHeader): Record<string, unknown> {
    return { api: apiKeyName(header.apiKey), apiVersion: header.apiVersion, correlationId: header.correlationId, clientId: header.clientId };
  }

  #auditRequest(
    header: RequestHeader,
    original: ClientRequest,
    decisions: readonly ResourceDecision[],
    outcome: 'forwarded' | 'split' | 'denied',
    response: Buffer | undefined,
    latencyMs: number | undefined,
    extras: AuditExtras = {},
  ): void {
    const { masking, rejections, shadowRejected, capture, captureError } = extras;
    const signals = extras.signals ?? original.signals;
    const principal = this.principal;
    const denied = decisions.find((d) => d.decision.effect === 'deny');
    const approval = decisions.map((d) => approvalDetail(d.decision)).find((a) => a !== undefined);
    const decisive = denied ?? decisions[0];
    const rejected = rejections?.[0];
    const record: AuditRecord = {
      time: new Date(this.#clock()).toISOString(),
      path: 'kafka',
      event: outcome === 'denied' ? 'kafka.request.denied' : outcome === 'split' ? 'kafka.request.partially_denied' : 'kafka.request',
      ...(principal !== undefined && { principal }),
      ...(decisive?.decision.rule != null && { rule: decisive.decision.rule }),
      ...(denied !== undefined ? { reason: denied.decision.reason } : rejected !== undefined && { reason: rejected.reason }),
      ...(this.#options.facts !== undefined && { connection: this.#options.facts }),
      ...(latencyMs !== undefined && { latencyMs: Math.round(latencyMs * 1000) / 1000 }),
      bytes: { request: original.frame.length, ...(response !== undefined && { response: response.length }) },
      details: {
        ...(rejections !== undefined && rejections.length > 0 && { rejected: rejections }),
        ...(shadowRejected !== undefined && shadowRejected.length > 0 && { shadowRejected }),
        ...this.#requestDetails(header),
        ...safeSummary(() => (original.produce !== undefined ? summarizeProduceRequest(original.produce) : summarizeRequest(original.frame, original.decoded))),
        ...(response !== undefined && { response: safeSummary(() => summarizeResponse(header.apiKey, header.apiVersion, response)) }),
        ...(decisions.length > 0 && { decisions: decisionDetails(decisions) }),
        ...(approval !== undefined && { approval }),
        ...(latencyMs !== undefined && { latencyMs: Math.round(latencyMs * 1000) / 1000 }),
        ...(masking !== undefined && (masking.maskedRecords > 0 || masking.failedPartitions.length > 0 || masking.droppedPartialBatches > 0) && {
          masking: {
            records: masking.maskedRecords,
            values: masking.tally,
            ...(masking.failedPartitions.length > 0 && { failedPartitions: masking.failedPartitions }),
            ...(masking.droppedPartialBatches > 0 && { droppedPartialBatches: masking.droppedPartialBatches }),
          },
        }),
        ...(capture !== undefined && { capture }),
        ...(captureError !== undefined && { capture: { error: captureError } }),
        ...(signals !== undefined && signals.length > 0 && { signals: signals.map(observationDetails) }),
      },
    };
    this.#options.audit.write(record);
  }
}

function describeAuth(auth: ClientAuth): string {
  switch (auth.kind) {
    case 'none':
      return 'no SASL handshake was made';
    case 'handshake':
      return 'awaiting SaslAuthenticate';
    case 'verifying':
      return 'a token is being verified';
    case 'authenticated':
      return auth.reauth === 'idle' ? 'already authenticated (re-authentication starts with SaslHandshake)' : 're-authenticating';
  }
}

function decisionDetails(decisions: readonly ResourceDecision[]): Array<Record<string, unknown>> {
  return decisions.map(({ action, decision }) => ({
    operation: action.operation,
    ...(action.topic !== undefined && { topic: action.topic }),
    ...(action.group !== undefined && { group: action.group }),
    ...(action.transactionalId !== undefined && { transactionalId: action.transactionalId }),
    effect: decision.effect,
    rule: decision.rule,
    ...(decision.shadow !== undefined && { shadow: decision.shadow }),
    ...(approvalDetail(decision) !== undefined && { approval: approvalDetail(decision) }),
  }));
}

/** What an audit record says of a decision's approval: the pending request awaited, or the grant gone through with. */
function approvalDetail(decision: Decision): Record<string, string> | undefined {
  if (decision.grant !== undefined) return { id: decision.grant.approval, state: 'approved', grant: decision.grant.id };
  if (decision.approval !== undefined) return { ...(decision.approval.pending !== undefined && { id: decision.approval.pending }), state: 'pending' };
  return undefined;
}

/** The view of a request whose approvals could not be read: no grant, nothing pending (it is refused). */
const NO_APPROVALS: ApprovalView = { grant: () => undefined, pending: () => undefined };

/** A Produce's capture detail once its answer is known (`response` undefined: acks=0). */
function completeCapture(produced: PendingProduceCapture | { readonly failed: string } | undefined, response: Buffer | undefined, apiVersion: number): Pick<AuditExtras, 'capture' | 'captureError'> {
  if (produced === undefined) return {};
  if ('failed' in produced) return { captureError: produced.failed };
  return detailOrEmpty(() => produced.complete(response, apiVersion));
}

/** A capture is for the record only: one that cannot be made is said in the record, and the traffic goes on. */
function detailOrEmpty(make: () => CaptureDetail | undefined): Pick<AuditExtras, 'capture' | 'captureError'> {
  try {
    const capture = make();
    return capture === undefined ? {} : { capture };
  } catch (error) {
    return { captureError: error instanceof Error ? error.message : String(error) };
  }
}

/** Summaries are for the record only: one that cannot be made must not fail the request. */
function safeSummary(make: () => object | undefined): object {
  try {
    return make() ?? {};
  } catch {
    return {};
  }
}

export { BrokerRoutes };
