/**
 * @module policy/engine
 * (Principal, Action) → Decision. Access rules are evaluated in order and the first match wins; nothing matching is
 * a deny. Rules are compiled once per config so evaluation does no parsing or allocation beyond the decision.
 */
import { qualifiedResource, type Action, type KafkaOperation, type KubeResourceRequest } from '../core/action.ts';
import type { Decision, ShadowOutcome } from '../core/decision.ts';
import type { ApprovalSpec } from '../core/approval.ts';
import { approvalDecision, type ApprovalView } from './approval-decision.ts';
import { DEFAULT_DENY } from '../core/decision.ts';
import type { Principal } from '../core/principal.ts';
import type { RuleConfig, SignalRuleSpecConfig, TimeWindowConfigs } from '../config/schema.ts';
import { compilePatterns, type Matcher } from './glob.ts';
import { compileMaskPlan } from '../masking/mask.ts';
import type { RuleMaskPlan } from '../masking/units.ts';
import { compileRejectPlan, type RejectPlan } from './reject.ts';
import { compileFieldConditions, firstHolding, type FieldCondition } from './conditions.ts';
import { compileCapturePlan, type CapturePlan } from './capture.ts';
import { compileTimeCondition, compileTimeWindows, type TimeWindow } from './time-windows.ts';

export type { ApprovalView } from './approval-decision.ts';

type Condition = (principal: Principal, action: Action) => boolean;

interface CompiledRule {
  readonly name: string;
  readonly applies: Condition;
}

interface AccessRule extends CompiledRule {
  readonly decision: Decision;
  readonly shadow: boolean;
  /** Conditions on the request body: the rule can only be decided once the body is read (see `bodyRules`). */
  readonly body: readonly FieldCondition[] | undefined;
  /** `effect: approve`: what approval the rule asks; `decision` is then its denial while unapproved. */
  readonly approval: ApprovalSpec | undefined;
}

/** A deny rule with conditions on the request body, pending until the body is read. */
export interface BodyRule {
  readonly rule: string;
  readonly shadow: boolean;
  readonly reason: string;
  /** The condition that holds in the parsed body (its path, for the denial), or undefined. */
  match(doc: unknown): string | undefined;
}

/** A masking rule's plan, named so masked responses and metrics can say which rules applied. */
export interface NamedMaskPlan extends RuleMaskPlan {
  /** Kafka: the plan applies to record keys too. */
  readonly keys: boolean;
  /** Kafka: record headers whose values the plan applies to. */
  readonly headers: readonly string[];
}

interface MaskRule extends CompiledRule {
  readonly mask: NamedMaskPlan;
  /** The rule's principal conditions alone (subject, group, issuer, unless) and whether it can match Kafka. */
  readonly mayApplyToKafka: (principal: Principal) => boolean;
}

export interface PolicyEngine {
  /**
   * The first matching access rule decides. Shadow rules that match are reported in `shadow` and passed over; rules
   * with body conditions are passed over too (they are `bodyRules`). An `approve` rule decides `allow` naming the
   * grant when `approvals` holds one for this request, else `deny` with the `approval` it demands (naming the pending
   * approval request when `approvals` knows one).
   */
  decide(principal: Principal, action: Action, approvals?: ApprovalView): Decision;
  /**
   * The body-conditioned deny rules that match everything but the body and come before the rule that allows this
   * request: the body must be read and checked against them. Empty when the request is denied anyway.
   */
  bodyRules(principal: Principal, action: Action): readonly BodyRule[];
  /** Every masking rule that applies, in config order (all of them apply, one after the other). Not shadow ones. */
  masks(principal: Principal, action: Action): readonly NamedMaskPlan[];
  /** Shadow-mode masking rules that would apply: named in audit records, they mask nothing. */
  shadowMasks(principal: Principal, action: Action): readonly string[];
  /** The publish inspection (`reject`) rules that apply, in config order; shadow ones say so (`plan.shadow`). */
  rejects(principal: Principal, action: Action): readonly RejectPlan[];
  /** False when no `reject` rule can apply to this principal's Kafka traffic: its records need no reading. */
  mayInspectKafka(principal: Principal): boolean;
  /** False when no masking rule can apply to this principal's Kafka traffic: its Fetch responses need no look. */
  mayMaskKafka(principal: Principal): boolean;
  /** The session capture rules that apply, in config order (all of them apply: `combineCaptures`). */
  captures(principal: Principal, action: Action): readonly CapturePlan[];
  /** False when no capture rule can apply to this principal's Kafka traffic: its records are not read for capture. */
  mayCaptureKafka(principal: Principal): boolean;
  /** The signal rules (`signal`), compiled, in config order: src/signals/ measures and acts on them. */
  readonly signals: readonly SignalRule[];
  readonly ruleNames: readonly string[];
}

/** A rule with `signal`: its match compiled, its spec as configured. */
export interface SignalRule {
  readonly name: string;
  readonly spec: SignalRuleSpecConfig;
  readonly shadow: boolean;
  /** Who approves when the signal's effect (or its escalation) is `approve`: the rule's `approval`. */
  readonly approval: ApprovalSpec | undefined;
  /** The whole match (principal, request, time, flagged), as for any rule. */
  applies(principal: Principal, action: Action): boolean;
  /** The principal conditions alone (subject, group, issuer, unless). */
  appliesToPrincipal(principal: Principal): boolean;
}

/** What conditions beyond the principal and the action read: the clock, named windows, flagged sessions. */
export interface PolicyOptions {
  readonly timeWindows?: TimeWindowConfigs;
  /** Epoch milliseconds of the request (`match.time`); `Date.now` by default. */
  readonly now?: () => number;
  /**
   * The signal rules that flagged this principal's session (`match.flagged`), or undefined when none did. Without
   * it, no session is flagged.
   */
  readonly flaggedBy?: (principal: Principal) => ReadonlySet<string> | undefined;
}

/** Conditions on the request's circumstances rather than its content: `match.time`, `match.flagged`. */
interface Circumstances {
  readonly windows: ReadonlyMap<string, TimeWindow>;
  readonly now: () => number;
  readonly flaggedBy: (principal: Principal) => ReadonlySet<string> | undefined;
}

const toList = <T extends string>(v: T | readonly T[] | undefined): readonly T[] | undefined =>
  v === undefined ? undefined : typeof v === 'string' ? [v] : v;

function principalConditions(m: { subject?: string | string[]; group?: string | string[]; issuer?: string | string[] }): Condition[] {
  const out: Condition[] = [];
  const subject = compilePatterns(m.subject);
  if (subject) out.push((p) => subject(p.subject));
  const groups = toList(m.group);
  if (groups) {
    const wanted = new Set(groups);
    out.push((p) => p.groups.some((g) => wanted.has(g)));
  }
  const issuer = compilePatterns(m.issuer);
  if (issuer) out.push((p) => issuer(p.issuer));
  return out;
}

const all = (conds: readonly Condition[]): Condition =>
  conds.length === 0 ? () => true : (p, a) => conds.every((c) => c(p, a));

function field(matcher: Matcher | undefined, pick: (a: Action) => string | undefined): Condition | undefined {
  if (!matcher) return undefined;
  return (_p, a) => {
    const v = pick(a);
    return v !== undefined && matcher(v);
  };
}

const kubeResource = (a: Action): KubeResourceRequest | undefined =>
  a.kind === 'http' && a.kubernetes?.kind === 'resource' ? a.kubernetes : undefined;


function kubernetesConditions(kube: NonNullable<RuleConfig['match']['kubernetes']>): Condition[] {
  const conds: Condition[] = [(_p, a) => a.kind === 'http' && a.kubernetes !== undefined];
  const verbs = toList(kube.verb);
  if (verbs) {
    const set = new Set<string>(verbs);
    conds.push((_p, a) => a.kind === 'http' && a.kubernetes !== undefined && set.has(a.kubernetes.verb));
  }
  // '' (the core group) compiles to an exact match on ''.
  const groups = compilePatterns(toList(kube.apiGroup));
  if (groups) conds.push((_p, a) => { const k = kubeResource(a); return k !== undefined && groups(k.apiGroup); });
  const resource = compilePatterns(kube.resource);
  if (resource) conds.push((_p, a) => { const k = kubeResource(a); return k !== undefined && resource(qualifiedResource(k)); });
  const namespace = compilePatterns(kube.namespace);
  if (namespace) conds.push((_p, a) => { const ns = kubeResource(a)?.namespace; return ns !== undefined && namespace(ns); });
  if (kube.scope !== undefined) {
    const cluster = kube.scope === 'cluster';
    conds.push((_p, a) => { const k = kubeResource(a); return k !== undefined && (k.namespace === undefined) === cluster; });
  }
  const name = compilePatterns(kube.name);
  if (name) conds.push((_p, a) => { const n = kubeResource(a)?.name; return n !== undefined && name(n); });
  const path = compilePatterns(kube.path);
  if (path) conds.push((_p, a) => a.kind === 'http' && a.kubernetes?.kind === 'non-resource' && path(a.kubernetes.path));
  if (kube.dryRun !== undefined) {
    const wanted = kube.dryRun;
    conds.push((_p, a) => { const k = kubeResource(a); return k !== undefined && k.dryRun === wanted; });
  }
  return conds;
}

function circumstanceConditions(match: RuleConfig['match'], circumstances: Circumstances): Condition[] {
  const conds: Condition[] = [];
  if (match.time !== undefined) {
    const inTime = compileTimeCondition(match.time, circumstances.windows, circumstances.now);
    conds.push(() => inTime());
  }
  const flagged = match.flagged;
  if (flagged !== undefined) {
    const { flaggedBy } = circumstances;
    const wanted = flagged === true ? undefined : new Set(typeof flagged === 'string' ? [flagged] : flagged);
    conds.push((p) => {
      const by = flaggedBy(p);
      if (by === undefined || by.size === 0) return false;
      return wanted === undefined || [...by].some((rule) => wanted.has(rule));
    });
  }
  return conds;
}

function compileCondition(rule: RuleConfig, circumstances: Circumstances): Condition {
  const conds = principalConditions(rule.match);
  const { http, kafka, kubernetes } = rule.match;
  if (kubernetes) conds.push(...kubernetesConditions(kubernetes));
  if (http) {
    // Requests to a Kubernetes API server are judged by `kubernetes` rules only: a path rule written for a web API
    // (`/api/*`) must not open the API server's own /api.
    conds.push((_p, a) => a.kind === 'http' && a.kubernetes === undefined);
    const methods = toList(http.method);
    if (methods) {
      const set = new Set<string>(methods);
      conds.push((_p, a) => a.kind === 'http' && set.has(a.method));
    }
    for (const c of [
      field(compilePatterns(http.path), (a) => (a.kind === 'http' ? a.path : undefined)),
      field(compilePatterns(http.host), (a) => (a.kind === 'http' ? a.host : undefined)),
    ]) if (c) conds.push(c);
  }
  if (kafka) {
    conds.push((_p, a) => a.kind === 'kafka');
    const ops = toList(kafka.operation);
    if (ops) {
      const set = new Set<KafkaOperation>(ops);
      // Kafka's authorizer: Read or Write on a resource implies Describe. Only an allow may widen; a deny on
      // produce must not hide the topic from Metadata.
      if (rule.effect === 'allow' && (set.has('produce') || set.has('consume'))) set.add('describe');
      conds.push((_p, a) => a.kind === 'kafka' && set.has(a.operation));
    }
    const apis = toList(kafka.api);
    if (apis) {
      const set = new Set<string>(apis);
      conds.push((_p, a) => a.kind === 'kafka' && set.has(a.api));
    }
    for (const c of [
      field(compilePatterns(kafka.topic), (a) => (a.kind === 'kafka' ? a.topic : undefined)),
      field(compilePatterns(kafka.group), (a) => (a.kind === 'kafka' ? a.group : undefined)),
      field(compilePatterns(kafka.transactionalId), (a) => (a.kind === 'kafka' ? a.transactionalId : undefined)),
    ]) if (c) conds.push(c);
  }
  // Last: the clock and the session flags are read only for requests everything else matches.
  conds.push(...circumstanceConditions(rule.match, circumstances));
  const matches = all(conds);
  const exempt = rule.unless ? all(principalConditions(rule.unless)) : undefined;
  return exempt ? (p, a) => matches(p, a) && !exempt(p, a) : matches;
}

/** A rule's principal conditions alone (subject, group, issuer, and its `unless`): whether it can apply to them. */
function principalOnly(rule: RuleConfig): (principal: Principal) => boolean {
  const who = all(principalConditions(rule.match));
  const exempt = rule.unless ? all(principalConditions(rule.unless)) : undefined;
  // Principal conditions read no action; any action will do.
  const anything = { kind: 'kafka', api: '', operation: 'consume' } as const;
  return (p) => who(p, anything) && !(exempt?.(p, anything) ?? false);
}

/** Whether a rule can apply to any Kafka request of a principal, from the principal alone. */
function principalMayMatchKafka(rule: RuleConfig): (principal: Principal) => boolean {
  if (rule.match.http !== undefined || rule.match.kubernetes !== undefined) return () => false;
  return principalOnly(rule);
}

function compileApproval(a: NonNullable<RuleConfig['approval']>): ApprovalSpec {
  return Object.freeze({
    approverGroups: Object.freeze([...toList(a.approvers.group)!]),
    min: a.min, mode: a.mode, waitMs: a.wait, grantMs: a.grant, oneTime: a.oneTime,
  });
}

export function compilePolicy(rules: readonly RuleConfig[], options: PolicyOptions = {}): PolicyEngine {
  const circumstances: Circumstances = {
    windows: compileTimeWindows(options.timeWindows ?? {}),
    now: options.now ?? Date.now,
    flaggedBy: options.flaggedBy ?? (() => undefined),
  };
  const access: AccessRule[] = [];
  const signals: SignalRule[] = [];
  const masking: Array<MaskRule & { readonly shadow: boolean }> = [];
  const inspecting: Array<{ readonly applies: Condition; readonly plan: RejectPlan; readonly mayApplyToKafka: (principal: Principal) => boolean }> = [];
  const capturing: Array<{ readonly applies: Condition; readonly plan: CapturePlan; readonly mayApplyToKafka: (principal: Principal) => boolean }> = [];
  for (const rule of rules) {
    const applies = compileCondition(rule, circumstances);
    if (rule.signal !== undefined) {
      signals.push({
        name: rule.name, spec: rule.signal, shadow: rule.shadow, applies, appliesToPrincipal: principalOnly(rule),
        approval: rule.approval === undefined ? undefined : compileApproval(rule.approval),
      });
    } else if (rule.effect !== undefined) {
      const approval = rule.approval === undefined ? undefined : compileApproval(rule.approval);
      const reason = rule.description
        ?? (rule.effect === 'allow' ? `allowed by rule ${rule.name}` : rule.effect === 'approve' ? `approval required by rule ${rule.name}` : `denied by rule ${rule.name}`);
      access.push({
        name: rule.name, applies, shadow: rule.shadow, approval,
        // An approve rule's decision, until a grant says otherwise, is a denial: fail closed wherever it is read.
        decision: Object.freeze({ effect: rule.effect === 'allow' ? 'allow' : 'deny', rule: rule.name, reason }),
        body: rule.match.body === undefined ? undefined : compileFieldConditions(rule.match.body),
      });
    } else if (rule.reject !== undefined) {
      inspecting.push({ applies, plan: compileRejectPlan(rule.name, rule.reject, rule.shadow), mayApplyToKafka: principalMayMatchKafka(rule) });
    } else if (rule.capture !== undefined) {
      capturing.push({ applies, plan: compileCapturePlan(rule.name, rule.capture), mayApplyToKafka: principalMayMatchKafka(rule) });
    } else if (rule.mask !== undefined) {
      const { onUndecodable, keys, headers, ...spec } = rule.mask;
      masking.push({
        name: rule.name,
        applies,
        shadow: rule.shadow,
        mask: Object.freeze({ rule: rule.name, plan: compileMaskPlan(spec), onUndecodable, keys, headers: [...headers] }),
        mayApplyToKafka: principalMayMatchKafka(rule),
      });
    }
  }
  return {
    ruleNames: rules.map((r) => r.name),
    signals,
    decide(principal, action, approvals) {
      let shadow: ShadowOutcome[] | undefined;
      for (const r of access) {
        if (r.body !== undefined || !r.applies(principal, action)) continue;
        if (r.shadow) {
          (shadow ??= []).push({ rule: r.name, effect: r.approval !== undefined ? 'approve' : r.decision.effect, reason: r.decision.reason });
          continue;
        }
        const decision = r.approval === undefined ? r.decision : approvalDecision(r.name, r.decision, r.approval, action, approvals);
        return shadow === undefined ? decision : { ...decision, shadow };
      }
      return shadow === undefined ? DEFAULT_DENY : { ...DEFAULT_DENY, shadow };
    },
    bodyRules(principal, action) {
      const pending: BodyRule[] = [];
      for (const r of access) {
        if (!r.applies(principal, action)) continue;
        if (r.body !== undefined) {
          const fields = r.body;
          pending.push({ rule: r.name, shadow: r.shadow, reason: r.decision.reason, match: (doc) => firstHolding(doc, fields)?.source });
          continue;
        }
        if (r.shadow) continue;
        // An approve rule is passed only with a grant: what it lets through must still pass the body rules before it.
        return r.decision.effect === 'allow' || r.approval !== undefined ? pending : [];
      }
      return [];
    },
    masks(principal, action) {
      const out: NamedMaskPlan[] = [];
      for (const r of masking) if (!r.shadow && r.applies(principal, action)) out.push(r.mask);
      return out;
    },
    shadowMasks(principal, action) {
      const out: string[] = [];
      for (const r of masking) if (r.shadow && r.applies(principal, action)) out.push(r.name);
      return out;
    },
    rejects(principal, action) {
      const out: RejectPlan[] = [];
      for (const r of inspecting) if (r.applies(principal, action)) out.push(r.plan);
      return out;
    },
    mayInspectKafka(principal) {
      return inspecting.some((r) => r.mayApplyToKafka(principal));
    },
    mayMaskKafka(principal) {
      return masking.some((r) => !r.shadow && r.mayApplyToKafka(principal));
    },
    captures(principal, action) {
      const out: CapturePlan[] = [];
      for (const r of capturing) if (r.applies(principal, action)) out.push(r.plan);
      return out;
    },
    mayCaptureKafka(principal) {
      return capturing.some((r) => r.mayApplyToKafka(principal));
    },
  };
}
