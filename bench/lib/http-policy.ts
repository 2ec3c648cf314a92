/**
 * @module bench/lib/http-policy
 * The HTTP bench's access policy, written once and rendered twice: as tollgate rules (`rules:` of its config) and as
 * Envoy RBAC policies over jwt_authn's verified payload (bench/lib/http-envoy.ts). Both allow exactly the listed
 * (group, method, path prefix) triples and deny everything else, so the two variants answer every request alike
 * (the bench checks that before it measures). Also the tollgate config for the bench and its masking rules.
 */
import YAML from 'yaml';
import { MASK_SPEC } from './payments.ts';

export interface AccessRule {
  /** A tollgate rule name and an RBAC policy name. */
  readonly name: string;
  readonly group: string;
  readonly methods: readonly ('GET' | 'HEAD' | 'POST')[];
  /** Path prefixes ending in '/': tollgate's `/api/*` glob, RBAC's url_path prefix `/api/`. */
  readonly pathPrefixes: readonly string[];
}
export type AccessPolicy = readonly AccessRule[];

/** Analysts read the API and the bulk bodies (masked); auditors read the bulk bodies unmasked. */
export const BENCH_POLICY: AccessPolicy = [
  { name: 'analysts-read-api', group: 'analysts', methods: ['GET'], pathPrefixes: ['/api/', '/bulk/'] },
  { name: 'auditors-read-bulk', group: 'auditors', methods: ['GET'], pathPrefixes: ['/bulk/'] },
];

export const JSON_BULK_PATH = '/bulk/records.json';
export const NDJSON_BULK_PATH = '/bulk/records.ndjson';

/** tollgate's rules for the policy. */
export function tollgateAccessRules(policy: AccessPolicy): unknown[] {
  for (const rule of policy) {
    for (const p of rule.pathPrefixes) if (!/^\/([^*?]*\/)?$/.test(p)) throw new Error(`http-policy: path prefix ${JSON.stringify(p)}: expected a path ending in "/" without wildcards`);
  }
  return policy.map((rule) => ({
    name: rule.name,
    match: { group: rule.group, http: { method: [...rule.methods], path: rule.pathPrefixes.map((p) => `${p}*`) } },
    effect: 'allow',
  }));
}

/**
 * Masking rules for analysts on the bulk bodies: the payment records' card numbers kept to the last 4, emails and
 * card numbers anywhere redacted (bench/lib/payments.ts MASK_SPEC), on the JSON array's elements and on each NDJSON line.
 */
export function maskingRules(group: string): unknown[] {
  const detectors = [...MASK_SPEC.detectors];
  return [
    { name: 'mask-bulk-json', match: { group, http: { path: JSON_BULK_PATH } }, mask: { fields: { '$[*].card.number': 'keep-last-4' }, detectors } },
    { name: 'mask-bulk-ndjson', match: { group, http: { path: NDJSON_BULK_PATH } }, mask: { fields: { ...MASK_SPEC.fields }, detectors } },
  ];
}

export interface TollgateHttpBenchConfigOptions {
  readonly grpc: string;
  readonly admin: string;
  readonly issuer: string;
  readonly audience: string;
  readonly policy: AccessPolicy;
  /** The group whose bulk bodies are masked. */
  readonly maskedGroup: string;
  /** masking.maxBufferBytes: a JSON document is held whole before it is masked, so at least the bulk body's size. */
  readonly maxBufferBytes: number;
}

/** tollgate's config as it would run for real: OIDC tokens, the policy, masking, audit at info. */
export function tollgateHttpBenchConfig(o: TollgateHttpBenchConfigOptions): string {
  return YAML.stringify({
    server: {
      grpc: { address: o.grpc },
      admin: { address: o.admin },
      // The shipped default: one audit line per decision.
      logLevel: 'info',
    },
    identity: { oidc: [{ issuer: o.issuer, audiences: [o.audience], algorithms: ['RS256'] }] },
    masking: { maxBufferBytes: o.maxBufferBytes },
    rules: [...tollgateAccessRules(o.policy), ...maskingRules(o.maskedGroup)],
  });
}
