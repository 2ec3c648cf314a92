/**
 * @module policy/engine
 * (Principal, Action) → Decision. Access rules are evaluated in order and the first match wins; nothing matching is
 * a deny. Rules are compiled once per config so evaluation does no parsing or allocation beyond the decision.
 */
import type { Action, KafkaOperation } from '../core/action.ts';
import type { Decision } from '../core/decision.ts';
import { DEFAULT_DENY } from '../core/decision.ts';
import type { Principal } from '../core/principal.ts';
import type { RuleConfig } from '../config/schema.ts';
import { compilePatterns, type Matcher } from './glob.ts';
import { compileMaskPlan } from '../masking/mask.ts';
import type { RuleMaskPlan } from '../masking/units.ts';
import { compileRejectPlan, type RejectPlan } from './reject.ts';
import { compileCapturePlan, type CapturePlan } from './capture.ts';

type Condition = (principal: Principal, action: Action) => boolean;

interface CompiledRule {
  readonly name: string;
  readonly applies: Condition;
}

interface AccessRule extends CompiledRule { readonly decision: Decision }

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
  decide(principal: Principal, action: Action): Decision;
  /** Every masking rule that applies, in config order (all of them apply, one after the other). */
  masks(principal: Principal, action: Action): readonly NamedMaskPlan[];
  /** The publish inspection (`reject`) rules that apply, in config order. */
  rejects(principal: Principal, action: Action): readonly RejectPlan[];
  /** False when no `reject` rule can apply to this principal's Kafka traffic: its records need no reading. */
  mayInspectKafka(principal: Principal): boolean;
  /** False when no masking rule can apply to this principal's Kafka traffic: its Fetch responses need no look. */
  mayMaskKafka(principal: Principal): boolean;
  /** The session capture rules that apply, in config order (all of them apply: `combineCaptures`). */
  captures(principal: Principal, action: Action): readonly CapturePlan[];
  /** False when no capture rule can apply to this principal's Kafka traffic: its records are not read for capture. */
  mayCaptureKafka(principal: Principal): boolean;
  readonly ruleNames: readonly string[];
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

function compileCondition(rule: RuleConfig): Condition {
  const conds = principalConditions(rule.match);
  const { http, kafka } = rule.match;
  if (http) {
    conds.push((_p, a) => a.kind === 'http');
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
  const matches = all(conds);
  const exempt = rule.unless ? all(principalConditions(rule.unless)) : undefined;
  return exempt ? (p, a) => matches(p, a) && !exempt(p, a) : matches;
}

/** A rule's principal conditions alone: whether it can apply to any Kafka request of this principal. */
function principalMayMatchKafka(rule: RuleConfig): (principal: Principal) => boolean {
  if (rule.match.http !== undefined) return () => false;
  const who = all(principalConditions(rule.match));
  const exempt = rule.unless ? all(principalConditions(rule.unless)) : undefined;
  const kafkaAction = { kind: 'kafka', api: '', operation: 'consume' } as const;
  return (p) => who(p, kafkaAction) && !(exempt?.(p, kafkaAction) ?? false);
}

export function compilePolicy(rules: readonly RuleConfig[]): PolicyEngine {
  const access: AccessRule[] = [];
  const masking: MaskRule[] = [];
  const inspecting: Array<{ readonly applies: Condition; readonly plan: RejectPlan; readonly mayApplyToKafka: (principal: Principal) => boolean }> = [];
  const capturing: Array<{ readonly applies: Condition; readonly plan: CapturePlan; readonly mayApplyToKafka: (principal: Principal) => boolean }> = [];
  for (const rule of rules) {
    const applies = compileCondition(rule);
    if (rule.effect !== undefined) {
      const reason = rule.description ?? (rule.effect === 'allow' ? `allowed by rule ${rule.name}` : `denied by rule ${rule.name}`);
      access.push({ name: rule.name, applies, decision: Object.freeze({ effect: rule.effect, rule: rule.name, reason }) });
    } else if (rule.reject !== undefined) {
      inspecting.push({ applies, plan: compileRejectPlan(rule.name, rule.reject), mayApplyToKafka: principalMayMatchKafka(rule) });
    } else if (rule.capture !== undefined) {
      capturing.push({ applies, plan: compileCapturePlan(rule.name, rule.capture), mayApplyToKafka: principalMayMatchKafka(rule) });
    } else if (rule.mask !== undefined) {
      const { onUndecodable, keys, headers, ...spec } = rule.mask;
      masking.push({
        name: rule.name,
        applies,
        mask: Object.freeze({ rule: rule.name, plan: compileMaskPlan(spec), onUndecodable, keys, headers: [...headers] }),
        mayApplyToKafka: principalMayMatchKafka(rule),
      });
    }
  }
  return {
    ruleNames: rules.map((r) => r.name),
    decide(principal, action) {
      for (const r of access) if (r.applies(principal, action)) return r.decision;
      return DEFAULT_DENY;
    },
    masks(principal, action) {
      const out: NamedMaskPlan[] = [];
      for (const r of masking) if (r.applies(principal, action)) out.push(r.mask);
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
      return masking.some((r) => r.mayApplyToKafka(principal));
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
