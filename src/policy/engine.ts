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

type Condition = (principal: Principal, action: Action) => boolean;

interface CompiledRule {
  readonly name: string;
  readonly applies: Condition;
  readonly decision: Decision;
}

export interface PolicyEngine {
  decide(principal: Principal, action: Action): Decision;
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

function compileRule(rule: RuleConfig): CompiledRule {
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
    ]) if (c) conds.push(c);
  }
  const matches = all(conds);
  const exempt = rule.unless ? all(principalConditions(rule.unless)) : undefined;
  const applies: Condition = exempt ? (p, a) => matches(p, a) && !exempt(p, a) : matches;
  const reason = rule.description ?? (rule.effect === 'allow' ? `allowed by rule ${rule.name}` : `denied by rule ${rule.name}`);
  return { name: rule.name, applies, decision: Object.freeze({ effect: rule.effect, rule: rule.name, reason }) };
}

export function compilePolicy(rules: readonly RuleConfig[]): PolicyEngine {
  const compiled = rules.map(compileRule);
  return {
    ruleNames: compiled.map((r) => r.name),
    decide(principal, action) {
      for (const r of compiled) if (r.applies(principal, action)) return r.decision;
      return DEFAULT_DENY;
    },
  };
}
