/**
 * @module config/schema
 * The one schema for the whole config file. Everything tollgate reads from its config is declared here, with a
 * description that becomes the README's configuration reference (scripts/config-reference.ts).
 */
import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './duration.ts';
import { DETECTOR_NAMES } from '../masking/detectors.ts';
import { compileJsonPath } from '../masking/json-path.ts';
import { parseStrategy } from '../masking/strategies.ts';
import { AUTH_METHODS } from '../core/principal.ts';
import { postgresSchema, secretSource } from './postgres-schema.ts';
import { flaggedCondition, refineSignalReferences, refineSignalRule, signalAsksApproval, signalSpec, signalsSettings, timeCondition, timeWindowsSchema } from './signals-schema.ts';

const duration = (description: string) =>
  z.string().regex(DURATION_PATTERN, 'expected a duration such as "250ms", "30s", "5m" or "1h"')
    .transform(parseDuration).meta({ description });

/** `host:port` for TCP, or `unix:/path/to.sock`. */
const listenAddress = (description: string) =>
  z.string().regex(/^(unix:\/.+|[^\s:]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5})$/,
    'expected "host:port" (e.g. "127.0.0.1:9001") or "unix:/absolute/path.sock"').meta({ description });

const tcpAddress = (description: string) =>
  z.string().regex(/^([^\s:]+|\[[0-9a-fA-F:]+\]):\d{1,5}$/, 'expected "host:port", e.g. "127.0.0.1:9901"').meta({ description });

/** A glob: `*` stands for any run of characters, `?` for one; no wildcard means an exact match. */
const pattern = z.string().min(1).meta({ description: 'Exact value, or a glob where `*` matches any run of characters and `?` one character.' });
const patterns = z.union([pattern, z.array(pattern).min(1)]);
const names = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

// Asymmetric algorithms only: an HS* allow-list would let anyone holding the (public) verification key sign tokens.
export const SIGNING_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const oidcIssuer = z.object({
  issuer: z.url().meta({ description: 'Issuer URL; must equal the `issuer` of its discovery document and the `iss` of its tokens.' }),
  audiences: z.array(z.string().min(1)).min(1).meta({ description: 'A token must name at least one of these in `aud`.' }),
  groupsClaim: z.string().min(1).default('groups').meta({ description: 'Claim holding the groups, dotted for nested claims (`realm_access.roles`).' }),
  subjectClaim: z.string().min(1).default('sub').meta({ description: 'Claim holding the subject.' }),
  algorithms: z.array(z.enum(SIGNING_ALGORITHMS)).min(1).default(['RS256', 'ES256'])
    .meta({ description: 'Allowed signature algorithms (asymmetric only; `none` and HS* are refused).' }),
  discoveryUrl: z.url().optional().meta({ description: 'Defaults to `<issuer>/.well-known/openid-configuration`.' }),
  clockTolerance: duration('Allowed clock skew for exp/nbf/iat.').prefault('30s'),
  jwksRefreshCooldown: duration('Least time between two JWKS fetches caused by an unknown `kid`.').prefault('30s'),
  jwksMaxAge: duration('How long a fetched JWKS is used before it is fetched again.').prefault('10m'),
  tokenCacheSize: z.number().int().positive().default(10_000).meta({ description: 'Verified tokens kept (each until its expiry).' }),
}).strict();

// SPIFFE trust domain names: lower-case letters, digits, '.', '-' and '_' (SPIFFE-ID spec).
const trustDomain = z.string().min(1).max(255).regex(/^[a-z0-9._-]+$/, 'expected a SPIFFE trust domain name of lower-case letters, digits, ".", "-" and "_", e.g. "mesh.example"');

const mtlsIdentities = z.object({
  trustDomains: z.array(trustDomain).min(1)
    .meta({ description: 'A client certificate\'s SPIFFE id (URI SAN, as Envoy reports it after verifying the chain against its listener CA) must be in one of these trust domains. The principal: subject = the SPIFFE id, issuer = `spiffe://<trust domain>`, expiry = the certificate\'s notAfter.' }),
  groups: z.array(z.object({
    subject: patterns.meta({ description: 'SPIFFE ids, exact or globs (`spiffe://mesh.example/ns/shop/*`).' }),
    groups: z.array(z.string().min(1)).min(1).meta({ description: 'Groups a matching peer is in.' }),
  }).strict()).default([]).meta({ description: 'Every entry whose subject matches adds its groups (in order, de-duplicated).' }),
}).strict().meta({ description: 'Peers authenticated by an mTLS client certificate, as Envoy verified it (its URI SAN, `source.principal` in the ext_authz check): connections of a network (Kafka) listener, and HTTP requests that carry no token and no API key (a token, when present, names the caller; the peer is only the workload it came through). Absent: such connections are refused and HTTP peers are not a credential.' });

/** The longest a Kubernetes authentication may be reused unasked: a deleted service account must stop working soon. */
export const MAX_TOKEN_REVIEW_CACHE_TTL_MS = 10 * 60_000;

const kubernetesTokenReview = z.object({
  url: z.url().meta({ description: 'The API server\'s base URL (in a pod: `https://kubernetes.default.svc`). tollgate POSTs an `authentication.k8s.io/v1` TokenReview to `<url>/apis/authentication.k8s.io/v1/tokenreviews` and takes the caller from its status.' }),
  caFile: z.string().min(1).optional().meta({ description: 'PEM CA bundle the API server\'s certificate must chain to (in a pod: `/var/run/secrets/kubernetes.io/serviceaccount/ca.crt`). Default: the system roots.' }),
  credential: secretSource.meta({ description: 'tollgate\'s own bearer token for the API server (in a pod: `{file: /var/run/secrets/kubernetes.io/serviceaccount/token}`; a file is re-read every minute, so a rotated projected token is picked up). Its user needs the ClusterRole `system:auth-delegator`.' }),
  cacheTtl: duration(`Longest time an authentication is reused without asking the API server again (never past the token's \`exp\`); at most ${MAX_TOKEN_REVIEW_CACHE_TTL_MS / 60_000}m.`).prefault('1m'),
  negativeCacheTtl: duration('How long a token the API server refused stays refused without asking again (at most `cacheTtl`). Failures of the API server itself (unreachable, 5xx, credential refused) are never cached: the request is denied and the next one asks again.').prefault('10s'),
  cacheSize: z.number().int().positive().default(10_000).meta({ description: 'Reviewed tokens kept.' }),
  timeout: duration('Per review. An API server that does not answer in time denies the request (fail closed).').prefault('5s'),
}).strict();

const ISSUER_MODE_ONLY = ['discoveryUrl', 'jwksUri', 'caFile', 'credential'] as const;

const kubernetesIdentities = z.object({
  issuer: z.url().optional().meta({ description: 'The cluster\'s service-account issuer (the API server\'s `--service-account-issuer`, the `iss` of its tokens). Without `tokenReview`: tokens with this `iss` are verified here against the issuer\'s discovery document and JWKS. With `tokenReview`: only tokens with this `iss` are sent for review, and it is their principal\'s issuer (absent: every JWT whose `iss` is not an `identity.oidc` issuer is sent, and its `iss` is the issuer).' }),
  audiences: z.array(z.string().min(1)).min(1).meta({ description: 'A token must be meant for one of these (`aud`; with `tokenReview`, sent as `spec.audiences` and required back in `status.audiences`). Tokens for tollgate: `kubectl create token <sa> --audience <one of these>`, or a projected volume with that `audience`. Never the API server\'s own audience.' }),
  discoveryUrl: z.url().optional().meta({ description: 'Issuer mode: the discovery document, when `<issuer>/.well-known/openid-configuration` does not resolve where tollgate runs (e.g. the API server\'s address).' }),
  jwksUri: z.url().optional().meta({ description: 'Issuer mode: fetch the keys from here and skip discovery (e.g. `https://kubernetes.default.svc/openid/v1/jwks`). `credential` is sent only to this origin, or to the discovery URL\'s origin when keys are discovered.' }),
  caFile: z.string().min(1).optional().meta({ description: 'Issuer mode: PEM CA bundle trusted for discovery and JWKS fetches (the cluster CA). Default: the system roots.' }),
  credential: secretSource.optional().meta({ description: 'Issuer mode: a bearer token for discovery and JWKS fetches (the API server serves them only to authenticated callers unless `system:service-account-issuer-discovery` is bound to `system:unauthenticated`). A file is re-read every minute.' }),
  algorithms: z.array(z.enum(SIGNING_ALGORITHMS)).min(1).default(['RS256', 'ES256']).meta({ description: 'Issuer mode: allowed signature algorithms.' }),
  clockTolerance: duration('Allowed clock skew for `exp`/`nbf`.').prefault('30s'),
  jwksRefreshCooldown: duration('Issuer mode: least time between two JWKS fetches caused by an unknown `kid`.').prefault('30s'),
  jwksMaxAge: duration('Issuer mode: how long a fetched JWKS is used before it is fetched again.').prefault('10m'),
  tokenCacheSize: z.number().int().positive().default(10_000).meta({ description: 'Issuer mode: verified tokens kept (each until its expiry).' }),
  tokenReview: kubernetesTokenReview.optional().meta({ description: 'Ask the API server instead (TokenReview): for clusters whose issuer keys tollgate cannot fetch, and to see revocation (deleted service accounts, pods, secrets) that local verification cannot.' }),
}).strict().superRefine((k, ctx) => {
  if (k.tokenReview === undefined && k.issuer === undefined) {
    ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'expected `issuer` (verify tokens against the cluster issuer\'s keys) or `tokenReview` (ask the API server)' });
  }
  if (k.tokenReview !== undefined) {
    for (const key of ISSUER_MODE_ONLY) {
      if (k[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `\`${key}\` applies to issuer mode; with \`tokenReview\` the API server is reached through tokenReview.url, tokenReview.caFile and tokenReview.credential` });
    }
    if (k.tokenReview.cacheTtl > MAX_TOKEN_REVIEW_CACHE_TTL_MS) {
      ctx.addIssue({ code: 'custom', path: ['tokenReview', 'cacheTtl'], message: `expected at most ${MAX_TOKEN_REVIEW_CACHE_TTL_MS / 60_000}m` });
    }
    if (k.tokenReview.negativeCacheTtl > k.tokenReview.cacheTtl) {
      ctx.addIssue({ code: 'custom', path: ['tokenReview', 'negativeCacheTtl'], message: 'expected at most cacheTtl' });
    }
  }
}).meta({ description: 'Kubernetes service-account tokens (bearer tokens on HTTP, SASL OAUTHBEARER on Kafka), told from OIDC tokens by their `iss`. Verified locally (`issuer`) or by the API server (`tokenReview`). The principal: subject `system:serviceaccount:<namespace>:<name>`, groups `system:serviceaccounts` and `system:serviceaccounts:<namespace>` (plus those of the review), issuer the cluster issuer, expiry the token\'s `exp`.' });

const apiKey = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'expected a name of letters, digits, ".", "_", ":", "@" and "-"')
    .meta({ description: 'The principal\'s subject (rules match it as `subject`, with issuer `api-key`); appears in logs and audit records.' }),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected the 64 hex digits of the key\'s SHA-256 (`tollgate apikey-digest`), not the key itself')
    .meta({ description: 'Hex SHA-256 of the key: `tollgate apikey-digest < keyfile`, or `tollgate apikey-digest --generate` for a new key. The key itself never belongs in the config.' }),
  groups: z.array(z.string().min(1)).default([]).meta({ description: 'Groups the key\'s principal is in.' }),
}).strict();

const regex = z.string().refine((r) => { try { new RegExp(r, 'u'); return true; } catch { return false; } }, 'expected a regular expression');

const groupMapping = z.object({
  subject: patterns.optional().meta({ description: 'Principal subjects, exact or globs: an OIDC subject, `system:serviceaccount:<namespace>:<name>`, a SPIFFE id, an API key\'s name.' }),
  claim: z.string().min(1).optional().meta({ description: 'A claim of the verified token, dotted for nested claims (`realm_access.roles`), with `equals` or `matches`. Principals without a token (API keys, mTLS peers) never match a claim.' }),
  equals: z.union([z.string(), z.number(), z.boolean()]).optional().meta({ description: 'The claim is this value, or a list containing it.' }),
  matches: regex.optional().meta({ description: 'A regular expression the whole claim value must match (a string, or a string in a list); anchored at both ends.' }),
  issuer: patterns.optional().meta({ description: 'Only principals of these issuers (exact or globs), so a subject from one source cannot borrow groups meant for the same name from another.' }),
  authenticatedBy: z.union([z.enum(AUTH_METHODS), z.array(z.enum(AUTH_METHODS)).min(1)]).optional().meta({ description: 'Only principals authenticated this way.' }),
  groups: z.array(z.string().min(1)).min(1).meta({ description: 'Groups a matching principal gains.' }),
}).strict().superRefine((m, ctx) => {
  if (m.subject === undefined && m.claim === undefined) ctx.addIssue({ code: 'custom', path: ['subject'], message: 'expected `subject` or `claim` (or both)' });
  if (m.claim === undefined && (m.equals !== undefined || m.matches !== undefined)) {
    ctx.addIssue({ code: 'custom', path: [m.equals !== undefined ? 'equals' : 'matches'], message: '`equals` and `matches` apply to a `claim`, and none is given' });
  }
  if (m.claim !== undefined && (m.equals === undefined) === (m.matches === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['claim'], message: 'expected exactly one of `equals` or `matches` with a `claim`' });
  }
});

const upstreamCredential = z.object({
  name: z.string().min(1).meta({ description: 'Appears in logs and audit records (never the secret).' }),
  match: z.object({
    host: patterns.optional().meta({ description: 'Request authority (`:authority` / Host).' }),
    path: patterns.optional().meta({ description: 'Request path without the query string.' }),
  }).strict().prefault({}),
  header: z.string().min(1).default('authorization').meta({ description: 'Header set on the upstream request.' }),
  prefix: z.string().default('Bearer ').meta({ description: 'Written before the secret, e.g. "Bearer ".' }),
  secret: secretSource,
  impersonate: z.boolean().default(false)
    .meta({ description: 'Kubernetes API servers: also send `Impersonate-User` (the caller\'s subject) and one `Impersonate-Group` per group, so the API server\'s own RBAC and audit log see the real caller while it authenticates tollgate\'s credential (which needs the `impersonate` verb on users and groups). A caller\'s own Impersonate-* headers are then refused.' }),
}).strict();

const principalMatch = {
  subject: patterns.optional().meta({ description: 'Principal subject.' }),
  group: names.optional().meta({ description: 'Matches when the principal is in any of these groups.' }),
  issuer: patterns.optional().meta({ description: 'Issuer that authenticated the principal.' }),
};

export const KAFKA_OPERATIONS = ['produce', 'consume', 'describe', 'admin'] as const;
export const KUBE_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', 'impersonate'] as const;
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE'] as const;

const fieldCondition = z.union([
  z.object({ equals: z.union([z.string(), z.number(), z.boolean(), z.null()]) }).strict(),
  z.object({ exists: z.literal(true) }).strict(),
  z.object({ matches: z.string().refine((r) => { try { new RegExp(r, 'u'); return true; } catch { return false; } }, 'expected a regular expression') }).strict(),
]).meta({ description: '`{equals: value}`, `{matches: regex}` (a string value, whole or in part) or `{exists: true}` (the path is present, whatever its value).' });

const ruleMatch = z.object({
  ...principalMatch,
  http: z.object({
    method: z.union([z.enum(HTTP_METHODS), z.array(z.enum(HTTP_METHODS)).min(1)]).optional().meta({ description: 'Any of these methods.' }),
    path: patterns.optional().meta({ description: 'Request path without the query string.' }),
    host: patterns.optional().meta({ description: 'Request authority (`:authority` / Host).' }),
  }).strict().optional().meta({ description: 'Matches HTTP requests only, and not those to a Kubernetes API server (`http.kubernetes.hosts`): `kubernetes` rules judge those.' }),
  kafka: z.object({
    operation: z.union([z.enum(KAFKA_OPERATIONS), z.array(z.enum(KAFKA_OPERATIONS)).min(1)]).optional()
      .meta({ description: 'produce, consume (fetch, offsets, group membership), describe (metadata, group and config listings), admin (topic, config, ACL changes). An allow rule for produce or consume on a topic also allows describing it, as a Kafka ACL for Write or Read implies Describe; deny rules match only the operations they list.' }),
    api: names.optional().meta({ description: 'Kafka API names, e.g. DeleteTopics.' }),
    topic: patterns.optional().meta({ description: 'Topic name.' }),
    group: patterns.optional().meta({ description: 'Consumer group id.' }),
    transactionalId: patterns.optional().meta({ description: 'Transactional id of a transactional producer.' }),
  }).strict().optional().meta({ description: 'Matches Kafka requests only. A condition on a field the request lacks (e.g. `topic` for a group API) does not match.' }),
  kubernetes: z.object({
    verb: z.union([z.enum(KUBE_VERBS), z.array(z.enum(KUBE_VERBS)).min(1)]).optional()
      .meta({ description: 'Verbs as the API server\'s authorizer sees them (GET of a collection is list, `?watch=1` is watch, DELETE of a collection is deletecollection).' }),
    apiGroup: z.union([z.string(), z.array(z.string()).min(1)]).optional()
      .meta({ description: 'API groups, exact or globs; "" is the core group (/api/v1).' }),
    resource: patterns.optional()
      .meta({ description: 'Resource, or `resource/subresource` for a subresource (`pods/exec`, `pods/log`, `deployments/scale`); `pods` alone does not match pods/exec, `pods/*` matches every subresource of pods.' }),
    namespace: patterns.optional().meta({ description: 'Namespace; a cluster-scoped or all-namespaces request has none and does not match.' }),
    scope: z.enum(['cluster', 'namespaced']).optional()
      .meta({ description: '`cluster`: requests not limited to one namespace (cluster-scoped resources, and lists/watches across all namespaces); `namespaced`: requests within one namespace.' }),
    name: patterns.optional().meta({ description: 'Object name (also from a `metadata.name=` field selector).' }),
    path: patterns.optional().meta({ description: 'Non-resource URL path (/healthz, /version, /openapi/*); resource requests do not match.' }),
    dryRun: z.boolean().optional().meta({ description: 'Matches only dry-run requests (true) or only real ones (false).' }),
  }).strict().optional().meta({ description: 'Matches requests to a Kubernetes API server (hosts in `http.kubernetes.hosts`). Conditions use the attributes the API server derives from the URL.' }),
  body: z.record(z.string().refine((p) => { try { compileJsonPath(p); return true; } catch { return false; } }, 'expected a JSON path'), fieldCondition)
    .optional().meta({ description: 'HTTP deny rules only: JSON path → condition on the request body (JSON, or YAML for server-side apply; a JSON Patch is read as the values it sets). The rule matches when any condition holds, e.g. `"$..securityContext.privileged": {equals: true}` or `"$..hostPath": {exists: true}`. The body is read by ext_proc (Envoy buffers it, bounded by its buffer limit); a body that cannot be read is denied when such a rule could apply.' }),
  time: timeCondition.optional(),
  flagged: flaggedCondition.optional(),
}).strict();

const strategy = z.string().refine((s) => { try { parseStrategy(s); return true; } catch { return false; } },
  'expected a mask strategy: redact, keep-first-N, keep-last-N, hash or null');

const jsonPathKey = z.string().refine((p) => { try { compileJsonPath(p); return true; } catch { return false; } },
  'expected a JSON path such as $.card.number, $.items[*].email, $.data.* or $..email');

/** What masks one payload: shared by masking rules and by the `masked` payload of capture rules. */
const maskPlanShape = {
  fields: z.record(jsonPathKey, strategy)
    .optional().meta({ description: 'JSON path → strategy (redact, keep-first-N, keep-last-N, hash, null).' }),
  detectors: z.array(z.enum(DETECTOR_NAMES)).optional()
    .meta({ description: 'Detectors run over every string value (or the whole text when the body is not JSON).' }),
  detectorStrategy: strategy.default('redact').meta({ description: 'How detector findings are replaced.' }),
};
const hasFieldsOrDetectors = (m: { fields?: unknown; detectors?: unknown }) => m.fields !== undefined || m.detectors !== undefined;

const maskSpec = z.object({
  ...maskPlanShape,
  onUndecodable: z.enum(['pass', 'redact', 'fail', 'redact-record', 'fail-fetch']).default('redact')
    .transform((v) => (v === 'redact-record' ? 'redact' : v === 'fail-fetch' ? 'fail' : v))
    .meta({ description: 'A payload that should be JSON but is not: pass it (detectors still run over its text), replace it (`redact`; for Kafka also `redact-record`), or fail (`fail`; for Kafka also `fail-fetch`: the partition is answered with an error instead of data).' }),
  keys: z.boolean().default(false).meta({ description: 'Kafka: mask record keys too (as JSON or text, like values).' }),
  headers: z.array(z.string().min(1)).default([]).meta({ description: 'Kafka: record headers whose values are masked too (as JSON or text).' }),
}).strict().refine(hasFieldsOrDetectors, 'expected `fields`, `detectors` or both');


const rejectSpec = z.object({
  detectors: z.array(z.enum(DETECTOR_NAMES)).optional()
    .meta({ description: 'A record is refused when a detector finds something in a value (JSON string values, or the text).' }),
  fields: z.record(z.string().refine((p) => { try { compileJsonPath(p); return true; } catch { return false; } }, 'expected a JSON path'), fieldCondition)
    .optional().meta({ description: 'JSON path → condition; a record whose value matches any of them is refused.' }),
  headers: z.record(z.string().min(1), fieldCondition).optional()
    .meta({ description: 'Header name → condition on its (UTF-8) value.' }),
  maxRecordBytes: z.number().int().positive().optional().meta({ description: 'A record whose key + value + headers exceed this is refused.' }),
}).strict().refine((r) => r.detectors !== undefined || r.fields !== undefined || r.headers !== undefined || r.maxRecordBytes !== undefined,
  'expected at least one of detectors, fields, headers, maxRecordBytes');

export const CAPTURE_PAYLOADS = ['digest', 'masked'] as const;

const captureSpec = z.object({
  payload: z.enum(CAPTURE_PAYLOADS)
    .meta({ description: '`digest`: per record its SHA-256 (hex) of the value (and key with `keys`), size, offset and timestamp; `masked`: the value (and key) itself as text after the capture\'s `mask` (base64 only for bytes that are not UTF-8 and that `mask.onUndecodable: pass` lets through). Several rules on one topic: `masked` wins.' }),
  keys: z.boolean().default(false).meta({ description: 'Capture record keys too (a digest, or masked text). Several rules: keys are captured if any says so.' }),
  maxRecords: z.number().int().positive().default(1000)
    .meta({ description: 'Most records one audit record (one Produce or Fetch) holds; the rest are counted in `truncated`. A record is kept while the audit record holds fewer than the largest maxRecords of the rules capturing it.' }),
  mask: z.object({
    ...maskPlanShape,
    onUndecodable: z.enum(['pass', 'redact']).default('redact')
      .meta({ description: 'A value that is not JSON: `redact` captures `[REDACTED]`; `pass` captures its text with the detectors run over it (bytes that are not UTF-8 then as base64).' }),
  }).strict().refine(hasFieldsOrDetectors, 'expected `fields`, `detectors` or both').optional()
    .meta({ description: 'How a `masked` capture masks payloads (every record: produced ones and, on top of any masking rule, the ones served). Default: every detector, redacted. An audit record never holds payload bytes no mask has seen.' }),
}).strict().refine((c) => c.mask === undefined || c.payload === 'masked', { path: ['mask'], message: 'expected `mask` only with `payload: masked` (a digest keeps no payload to mask)' });

export const APPROVAL_MODES = ['hold', 'ticket'] as const;
/** How long a held request waits, and how long a ticket stays open, when the rule does not say. */
export const DEFAULT_HOLD_WAIT_MS = 5 * 60_000;
export const DEFAULT_TICKET_WAIT_MS = 60 * 60_000;

const approvalSpec = z.object({
  approvers: z.object({
    group: names.meta({ description: 'Approvers must be in one of these groups (as their token or the group mappings say). The requester never approves their own request, whatever their groups.' }),
  }).strict(),
  min: z.number().int().min(1).max(20).default(1).meta({ description: 'Distinct approvers needed; one rejection rejects.' }),
  mode: z.enum(APPROVAL_MODES).default('ticket')
    .meta({ description: '`hold`: HTTP/Kubernetes only; the request waits in ext_authz until approved (then goes on), rejected or out of time (`wait`, at most `approvals.maxHold`). `ticket`: the request is refused at once with the approval id (HTTP 403 JSON, a Kubernetes Status, or Kafka POLICY_VIOLATION with the id in the error message where the response has one); once approved, a grant lets the retry through. Kafka requests are always answered at once (ticket).' }),
  wait: duration(`How long the request waits for a decision: hold, the caller's request (default ${DEFAULT_HOLD_WAIT_MS / 60_000}m); ticket, the approval request stays open (default ${DEFAULT_TICKET_WAIT_MS / 60_000}m). Then it expires.`).optional(),
  grant: duration('How long the grant an approval gives lasts (at most `approvals.maxGrant`).').prefault('30m'),
  oneTime: z.boolean().default(false).meta({ description: 'The grant lets exactly one request through, then it is used up.' }),
}).strict().transform((a) => ({ ...a, wait: a.wait ?? (a.mode === 'hold' ? DEFAULT_HOLD_WAIT_MS : DEFAULT_TICKET_WAIT_MS) }));

const rule = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected a lower-case name of letters, digits, ".", "_" and "-"')
    .meta({ description: 'Appears in denials, metrics and audit records.' }),
  description: z.string().optional().meta({ description: 'Shown as the reason in denials instead of the generic text.' }),
  match: ruleMatch.prefault({}).meta({ description: 'All given conditions must hold; an empty match matches everything.' }),
  unless: z.object(principalMatch).strict()
    .refine((u) => Object.keys(u).length > 0, 'expected at least one of subject, group, issuer (an empty unless exempts everyone)')
    .optional().meta({ description: 'The rule does not apply to these principals.' }),
  effect: z.enum(['allow', 'deny', 'approve']).optional().meta({ description: 'Access rule: the first matching one decides; no match is a deny. `approve`: the request needs just-in-time approval (`approval`); a live grant for the same principal, operation and resource lets it through.' }),
  approval: approvalSpec.optional().meta({ description: 'With `effect: approve`, or on a signal rule whose effect or escalation is `approve`: who approves, how many, hold or ticket, and the grant an approval gives (it covers the principal, operation and resource of the request that asked).' }),
  mask: maskSpec.optional().meta({ description: 'Masking rule: every matching one applies to the response.' }),
  reject: rejectSpec.optional().meta({ description: 'Kafka publish inspection: a Produce whose records match is refused (INVALID_RECORD with the reason, POLICY_VIOLATION before Produce v8) and nothing of that partition is written. Applies to produce requests the match selects.' }),
  signal: signalSpec.optional().meta({ description: 'Insider-threat signal: what the match selects is measured per key (volume), or watched (failed authentications, replayed records); when the signal fires, its `effect` applies and an audit record with the observed value and the threshold is written. With `shadow: true` the effect is only audited.' }),
  capture: captureSpec.optional().meta({ description: 'Kafka session capture: the audit record of each Produce and Fetch the match selects (by principal, topic and operation produce/consume) carries its records (`details.capture`) with their offsets: of a Produce, the records sent to the broker with the offsets it assigned; of a Fetch, the records as served to the client (after masking). Every matching capture rule applies. Control batches are not captured.' }),
  shadow: z.boolean().default(false)
    .meta({ description: 'Shadow mode: the rule is evaluated and its would-be outcome audited (`shadow` in the audit record), but it does not act: an access rule does not decide (the next rule does), a masking rule does not mask, a reject rule does not refuse. For tuning a rule on live traffic before enforcing it.' }),
}).strict().superRefine((r, ctx) => {
  const kinds = [r.effect, r.mask, r.reject, r.capture, r.signal].filter((k) => k !== undefined).length;
  if (kinds !== 1) {
    ctx.addIssue({ code: 'custom', path: ['effect'], message: 'expected exactly one of `effect` (an access rule), `mask` (a masking rule), `reject` (a publish inspection rule), `capture` (a session capture rule) or `signal` (an insider-threat signal)' });
  }
  refineSignalRule(r, ctx);
  if (r.capture !== undefined && r.match.http !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['match', 'http'], message: 'expected no `http` condition in a capture rule: capture applies to Kafka produce and consume' });
  }
  if (r.match.body !== undefined && r.effect !== 'deny') {
    ctx.addIssue({ code: 'custom', path: ['match', 'body'], message: 'expected `body` conditions only on a rule with `effect: deny` (a body can only add a reason to refuse)' });
  }
  if (r.match.body !== undefined && r.match.kafka !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['match', 'body'], message: 'expected `body` conditions on HTTP/Kubernetes rules only; Kafka records are inspected by `reject` rules' });
  }
  if (r.match.kubernetes !== undefined && r.match.kafka !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['match', 'kubernetes'], message: 'expected `kubernetes` or `kafka`, not both: a request is one or the other' });
  }
  const signalApproves = r.signal !== undefined && signalAsksApproval(r.signal);
  if (r.effect === 'approve' && r.approval === undefined) {
    ctx.addIssue({ code: 'custom', path: ['approval'], message: 'expected `approval` (approvers, min, mode, wait, grant) with `effect: approve`' });
  }
  if (signalApproves && r.approval === undefined) {
    ctx.addIssue({ code: 'custom', path: ['approval'], message: 'expected `approval` (approvers, min, mode, wait, grant) on a signal rule whose effect or escalation is `approve`' });
  }
  if (r.approval !== undefined && r.effect !== 'approve' && !signalApproves) {
    ctx.addIssue({ code: 'custom', path: ['approval'], message: 'expected `approval` only on a rule with `effect: approve`, or a signal rule whose effect or escalation is `approve`' });
  }
  if (r.approval?.mode === 'hold' && r.match.kafka !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['approval', 'mode'], message: 'expected `mode: ticket` on a Kafka rule: Kafka requests are answered at once, never held' });
  }
});

const sinkName = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected a lower-case name of letters, digits, ".", "_" and "-"')
  .optional().meta({ description: 'Names the sink in metrics (`sink` label), logs and /readyz. Default: its type, or `<type>-<index>` when several sinks share a type.' });

export const SPOOL_POLICIES = ['block', 'drop-oldest'] as const;

const spoolSpec = z.object({
  dir: z.string().min(1).optional().meta({ description: 'Folder of the spool (created when missing; relative to the config file\'s folder). Required for kafka and webhook sinks; a file sink\'s defaults to `<path>.spool`. Give each sink its own.' }),
  maxBytes: z.number().int().positive().default(256 * 1024 * 1024).meta({ description: 'Most bytes the spool holds on disk.' }),
  onFull: z.enum(SPOOL_POLICIES).default('block').meta({ description: '`block`: fail closed: from 90% full, HTTP requests are refused (503) and Kafka connections closed, with the reason, until the sink has drained the spool below 75%. `drop-oldest`: the oldest records go (a segment, an eighth of maxBytes, at a time), counted in `tollgate_audit_records_total{result="dropped"}` and logged as an error.' }),
}).strict().meta({ description: 'Records wait here, on disk and in order, while the sink is down or slow; writes never wait for the sink. Survives restarts.' });

const kafkaSaslMechanisms = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;

const fileSink = z.object({
  type: z.literal('file'),
  name: sinkName,
  path: z.string().min(1).meta({ description: 'The hash-chained JSONL file (relative to the config file\'s folder). Appended to; a chain found there is continued. One tollgate process per file (a lock file `<path>.lock` says which).' }),
  fsync: z.boolean().default(false).meta({ description: 'fsync after each batch of lines: a record survives a power loss once written, at the cost of a disk flush per batch.' }),
  hmacKey: secretSource.optional().meta({ description: 'Chain with HMAC-SHA-256 under this key instead of SHA-256: someone who can rewrite the file but does not hold the key cannot forge a chain that verifies (`tollgate audit verify --key-env/--key-file`).' }),
  spool: spoolSpec.prefault({}),
}).strict().meta({ description: 'A local JSONL file, one record per line, each with `seq`, `prevHash` and `hash` (docs/audit.md).' });

const kafkaSink = z.object({
  type: z.literal('kafka'),
  name: sinkName,
  bootstrap: z.union([tcpAddress('A broker.'), z.array(tcpAddress('A broker.')).min(1)]).meta({ description: 'Bootstrap brokers, `host:port`.' }),
  topic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name (letters, digits, ".", "_", "-")').meta({ description: 'The topic (it must exist). Records are keyed by their `session`, so one session keeps its order on one partition.' }),
  clientId: z.string().min(1).default('tollgate-audit'),
  sasl: z.object({
    mechanism: z.enum(kafkaSaslMechanisms),
    username: z.string().min(1),
    password: secretSource,
  }).strict().optional().meta({ description: 'SASL credentials of tollgate\'s audit producer. Absent: no SASL.' }),
  tls: z.object({
    caFile: z.string().min(1).optional().meta({ description: 'PEM CA bundle the brokers\' certificates must chain to. Default: the system roots.' }),
    certFile: z.string().min(1).optional().meta({ description: 'Client certificate (PEM), for brokers that ask for one.' }),
    keyFile: z.string().min(1).optional().meta({ description: 'Its private key (PEM).' }),
    serverName: z.string().min(1).optional().meta({ description: 'Name the broker certificates are checked against, when not the host.' }),
  }).strict().optional().meta({ description: 'Connect with TLS. Absent: plaintext.' }),
  timeout: duration('Per request to a broker; a broker that does not answer in time is taken as down (the batch is sent again, idempotently).').prefault('30s'),
  spool: spoolSpec.refine((s) => s.dir !== undefined, { path: ['dir'], message: 'expected `dir`: the folder where records wait while Kafka is unreachable' }).prefault({}),
}).strict().meta({ description: 'A Kafka topic, written by tollgate\'s own idempotent producer (acks=all): records reach it once each and in order per partition, also when a broker restarts mid-batch.' });

const webhookSink = z.object({
  type: z.literal('webhook'),
  name: sinkName,
  url: z.url().meta({ description: 'Records are POSTed here as `{"records": [...]}` (application/json); any 2xx is success, anything else is retried with the same batch.' }),
  headers: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected an HTTP header name'), z.union([z.string(), secretSource])).default({})
    .meta({ description: 'Header name → value, or a secret source for values that are credentials (`authorization: {env: AUDIT_WEBHOOK_TOKEN}`).' }),
  batch: z.object({
    maxRecords: z.number().int().positive().default(100).meta({ description: 'Most records per POST.' }),
    maxWait: duration('How long records wait for more to share a POST.').prefault('1s'),
  }).strict().prefault({}),
  timeout: duration('Per POST; no answer in time is a failure (retried).').prefault('10s'),
  spool: spoolSpec.refine((s) => s.dir !== undefined, { path: ['dir'], message: 'expected `dir`: the folder where records wait while the webhook is unreachable' }).prefault({}),
}).strict().meta({ description: 'An HTTP endpoint. Delivery is at least once: a receiver de-duplicates by record `id`.' });

const stdoutSink = z.object({
  type: z.literal('stdout'),
  name: sinkName,
}).strict().meta({ description: 'One JSON log line per record on tollgate\'s log (channel `audit`), as an operator\'s log pipeline collects it. Not spooled.' });

const auditSink = z.discriminatedUnion('type', [stdoutSink, fileSink, kafkaSink, webhookSink], {
  error: (issue) => (issue.code === 'invalid_union' ? 'expected a sink `type`: stdout, file, kafka or webhook' : undefined),
});

const port = z.number().int().min(1).max(65535);

const quickstart = z.object({
  listeners: z.object({
    http: port.default(10000).meta({ description: 'Envoy HTTP listener.' }),
    kafka: port.default(19092).meta({ description: 'Envoy Kafka listener, advertised by the broker.' }),
    kubernetes: port.default(16443).meta({ description: 'Envoy Kubernetes gateway listener (TLS), with `npm run quickstart:kube`.' }),
  }).strict().prefault({}),
  issuer: z.object({
    port: port.default(18080).meta({ description: 'Dev OIDC issuer port on 127.0.0.1.' }),
    audience: z.string().min(1).default('tollgate'),
    clients: z.array(z.object({
      id: z.string().min(1),
      secret: z.string().min(1).meta({ description: 'Dev only: client secrets of a real IdP never belong in a config file.' }),
      groups: z.array(z.string().min(1)).default([]),
    }).strict()).default([]).meta({ description: 'Clients that may use the client_credentials grant.' }),
  }).strict().prefault({}),
  topics: z.array(z.string().min(1)).default([]).meta({ description: 'Kafka topics the quickstart creates.' }),
}).strict().meta({ description: 'Read only by `npm start` (the quickstart); `tollgate serve` ignores it.' });

const postgresStore = postgresSchema('approvals.store.postgres', 'Keep approvals in PostgreSQL, shared by several tollgate replicas: a request held on one replica is released when another records the approval, and a revocation closes the Kafka connections relying on the grant on every replica (LISTEN/NOTIFY). The schema is migrated on open, under an advisory lock. `sqlite` is then unused.');

const approvalsWebhook = z.object({
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).meta({ description: 'Where each approval event is POSTed.' }),
  format: z.enum(['json', 'slack']).default('json')
    .meta({ description: '`json`: `{event, approval, actor?, grant?, at}` with the request as the approver API shows it. `slack`: a Slack incoming-webhook message `{text, blocks}` with who, what, where, why and the approval\'s URL.' }),
  headers: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected an HTTP header name'), z.string()).default({})
    .meta({ description: 'Added to each POST (not secrets: those belong in `secret`).' }),
  secret: secretSource.optional().meta({ description: 'Signs each POST: `x-tollgate-signature: sha256=<hex HMAC-SHA-256 of "<x-tollgate-timestamp>.<body>">`, so the receiver can tell it came from tollgate.' }),
  timeout: duration('How long one POST may take.').prefault('5s'),
  retries: z.number().int().min(0).max(10).default(3).meta({ description: 'Further attempts after a network error, a timeout, 429 or 5xx (1 s, 2 s, 4 s … apart).' }),
  queue: z.number().int().min(1).max(100_000).default(1_000).meta({ description: 'Events waiting to be sent; past this, new events are dropped (and logged). Sending never holds up a decision.' }),
}).strict().meta({ description: 'Notify a webhook of every approval event: requested, approved, rejected, revoked, expired. Each event is POSTed by the tollgate process that recorded it.' });

export const configSchema = z.object({
  server: z.object({
    grpc: z.object({
      address: listenAddress('gRPC listener for Envoy (ext_authz, ext_proc, network ext_proc, health).').default('127.0.0.1:9001'),
      maxReceiveMessageBytes: z.number().int().positive().default(64 * 1024 * 1024)
        .meta({ description: 'Largest message accepted from Envoy (an HTTP body chunk, a Kafka read).' }),
    }).strict().prefault({}),
    admin: z.object({
      address: tcpAddress('Admin HTTP listener: /healthz, /readyz, /metrics.').default('127.0.0.1:9901'),
    }).strict().prefault({}),
    drainTimeout: duration('On SIGTERM, how long open streams may run before they are cut.').prefault('15s'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info')
      .meta({ description: 'pino log level; debug logs every Kafka request/response pair.' }),
  }).strict().prefault({}),
  identity: z.object({
    oidc: z.array(oidcIssuer).default([]).meta({ description: 'Trusted OIDC issuers; a token is verified by the one named in its `iss`.' }),
    mtls: mtlsIdentities.optional(),
    kubernetes: kubernetesIdentities.optional(),
    apiKeys: z.array(apiKey).default([]).meta({ description: 'Static API keys for legacy callers, presented as `x-api-key: <key>` or `Authorization: ApiKey <key>`; the principal is the entry\'s name, issuer `api-key`. Removed from the request before it goes upstream, like Authorization.' }),
    groupMappings: z.array(groupMapping).default([]).meta({ description: 'Groups from configuration, applied after every kind of authentication (OIDC, Kubernetes, API key, mTLS; HTTP and Kafka): each entry whose conditions all hold adds its groups (in order, de-duplicated).' }),
  }).strict().prefault({}),
  masking: z.object({
    hashKey: secretSource.optional().meta({ description: 'Key of the `hash` strategy (HMAC-SHA-256).' }),
    maxBufferBytes: z.number().int().positive().default(8 * 1024 * 1024)
      .meta({ description: 'Most bytes held for one incomplete unit (document, line, event) while masking a stream.' }),
  }).strict().prefault({}),
  http: z.object({
    upstreamCredentials: z.array(upstreamCredential).default([])
      .meta({ description: 'On allow, the first matching entry replaces the caller credential with one tollgate holds.' }),
    kubernetes: z.object({
      hosts: patterns.meta({ description: 'Request authorities (`:authority`, port included when the client sent one) that are Kubernetes API servers, e.g. `kube.example.com` or `127.0.0.1:16443`.' }),
    }).strict().optional().meta({ description: 'Requests to these hosts are read as Kubernetes API requests: `match.kubernetes` rules apply, denials are Kubernetes `Status` objects, and responses a masking rule applies to are negotiated as JSON (protobuf and server-side Table requests are asked as JSON instead).' }),
    kafkaRest: z.object({
      hosts: patterns.meta({ description: 'Request authorities (`:authority`, port included when the client sent one) that are Confluent Kafka REST Proxies (API v3, and v2), e.g. `kafka-rest.example.com`.' }),
      pathPrefix: z.string().regex(/^\/[^?#\s]*[^/?#\s]$/, 'expected a path prefix starting with "/" and not ending with "/", e.g. "/kafka-rest"').optional()
        .meta({ description: 'The proxy\'s API sits under this path on these hosts (`/kafka-rest/v3/clusters/…`); it is stripped before the path is read. A request on these hosts outside it is denied.' }),
    }).strict().optional().meta({ description: 'Requests to these hosts are read as the Kafka requests they amount to and judged by the same `match.kafka` rules as wire clients (produce, consume, describe, admin on topics and groups; `match.http` rules do not apply to them): every Kafka action a request asks must be allowed, and a path or method tollgate does not know is denied. Produced records (v3 single, streamed and batch; v2) go through the `reject` rules of their topic; consumed records (v2) are masked by the `mask` rules of their topic and records of topics the caller may not consume are left out; topic and group listings keep only what the caller may describe. Denials are in the proxy\'s error shape (`{"error_code": 40301, "message": …}`). Bodies and answers are judged by tollgate\'s ext_proc, which must see both streamed (FULL_DUPLEX_STREAMED, as in envoy/http-edge.yaml); where it does not, such requests are refused. Kubernetes hosts are matched first.' }),
  }).strict().prefault({}),
  kafka: z.object({
    maxFrameBytes: z.number().int().positive().max(2 ** 31 - 1).default(100 * 1024 * 1024)
      .meta({ description: 'A larger Kafka frame closes the connection (audited).' }),
    maxInFlight: z.number().int().positive().default(1_000)
      .meta({ description: 'Requests awaiting a response on one connection before it is closed.' }),
    clientAuthentication: z.object({
      maxSessionLifetime: duration('Longest SASL session tollgate grants (`session_lifetime_ms`, KIP-368): the token\'s expiry, capped by this. A client re-authenticates before the end; a connection still using an expired session is closed.').prefault('1h'),
    }).strict().prefault({}).meta({ description: 'Clients authenticate to tollgate with SASL OAUTHBEARER (an OIDC token from `identity.oidc`); tollgate answers the SASL exchange itself.' }),
    upstream: z.object({
      sasl: z.object({
        mechanism: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']),
        username: z.string().min(1),
        password: secretSource,
      }).strict().optional().meta({ description: 'How tollgate authenticates to the broker on each connection (the client never sees it). Absent: the broker listener has no SASL.' }),
    }).strict().prefault({}),
    brokers: z.array(z.object({
      nodeId: z.number().int().min(0).meta({ description: 'The broker\'s node.id.' }),
      advertise: tcpAddress('The Envoy listener clients use for this broker, written into Metadata, FindCoordinator, DescribeCluster and NodeEndpoints in place of the broker\'s own address.'),
    }).strict()).default([]).meta({ description: 'One Envoy listener per broker. Empty: broker addresses pass unchanged (brokers must then advertise Envoy themselves). A response naming a node not listed closes the connection.' }),
  }).strict().prefault({}),
  approvals: z.object({
    store: z.object({
      sqlite: z.object({
        path: z.string().min(1).default('.tollgate/approvals.sqlite')
          .meta({ description: 'The SQLite database file (created with its folder; relative to the working directory). Approval requests, decisions and grants survive restarts; several tollgate processes on one host may share the file.' }),
      }).strict().prefault({}),
      postgres: postgresStore.optional(),
    }).strict().prefault({}).meta({ description: 'Where approval requests, approver decisions and grants are kept (embedded SQLite by default, `node:sqlite`; PostgreSQL when `postgres` is set). Opened only when a rule has `effect: approve`.' }),
    url: z.url().optional().meta({ description: 'The base URL approvers reach tollgate\'s admin listener at; a denial awaiting approval names `<url>/approvals/<id>`. Default: `http://<server.admin.address>`.' }),
    maxHold: duration('Longest a `hold` request waits (a rule\'s `wait` may not exceed it). Envoy\'s ext_authz `grpc_service.timeout` must be longer (the bundled configs: 330s), and so must the stream idle timeout of its connection manager.').prefault('5m'),
    maxGrant: duration('Longest grant a rule may give (`approval.grant`).').prefault('8h'),
    pollInterval: duration('How often held requests re-read the store, so an approval recorded by another tollgate process releases them (with PostgreSQL such changes also arrive at once, through LISTEN/NOTIFY; this is the fallback).').prefault('2s'),
    webhook: approvalsWebhook.optional(),
  }).strict().prefault({}).meta({ description: 'Just-in-time approval (rules with `effect: approve`): the store, the approver API on the admin listener (`/approvals`), limits.' }),
  audit: z.object({
    sinks: z.array(auditSink).min(1).default([{ type: 'stdout' }])
      .meta({ description: 'Where every audit record goes: every sink gets every record. Default: stdout only. A change takes effect at the next restart (a reload keeps the sinks running).' }),
  }).strict().prefault({}).meta({ description: 'Audit records of every decision and exchange (docs/audit.md).' }),
  timeWindows: timeWindowsSchema,
  signals: signalsSettings,
  quickstart: quickstart.optional(),
  rules: z.array(rule).default([]).meta({ description: 'Access rules, in order: the first that matches decides; none matching denies.' }),
}).strict().superRefine((config, ctx) => {
  const seen = new Map<string, number>();
  config.rules.forEach((r, i) => {
    const first = seen.get(r.name);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `expected a unique rule name; "${r.name}" is also rules[${first}]` });
    } else seen.set(r.name, i);
  });
  refineSignalReferences(config, ctx);
  const nodes = new Set<number>();
  config.kafka.brokers.forEach((b, i) => {
    if (nodes.has(b.nodeId)) ctx.addIssue({ code: 'custom', path: ['kafka', 'brokers', i, 'nodeId'], message: `expected each node id once; ${b.nodeId} is repeated` });
    nodes.add(b.nodeId);
  });
  const issuers = new Set<string>();
  config.identity.oidc.forEach((o, i) => {
    if (issuers.has(o.issuer)) ctx.addIssue({ code: 'custom', path: ['identity', 'oidc', i, 'issuer'], message: `expected each issuer once; "${o.issuer}" is repeated` });
    issuers.add(o.issuer);
  });
  config.rules.forEach((r, i) => {
    if (r.approval === undefined) return;
    if (r.approval.mode === 'hold' && r.approval.wait > config.approvals.maxHold) {
      ctx.addIssue({ code: 'custom', path: ['rules', i, 'approval', 'wait'], message: `expected a hold of at most approvals.maxHold (${config.approvals.maxHold / 1000}s), got ${r.approval.wait / 1000}s` });
    }
    if (r.approval.grant > config.approvals.maxGrant) {
      ctx.addIssue({ code: 'custom', path: ['rules', i, 'approval', 'grant'], message: `expected a grant of at most approvals.maxGrant (${config.approvals.maxGrant / 1000}s), got ${r.approval.grant / 1000}s` });
    }
  });
  const cluster = config.identity.kubernetes?.issuer;
  if (cluster !== undefined && issuers.has(cluster)) {
    ctx.addIssue({ code: 'custom', path: ['identity', 'kubernetes', 'issuer'], message: `expected the cluster issuer to differ from every identity.oidc issuer; "${cluster}" is both` });
  }
  const sinkNames = new Map<string, number>();
  const places = new Map<string, number>();
  config.audit.sinks.forEach((sink, i) => {
    if (sink.name !== undefined) {
      const same = sinkNames.get(sink.name);
      if (same !== undefined) ctx.addIssue({ code: 'custom', path: ['audit', 'sinks', i, 'name'], message: `expected a unique sink name; "${sink.name}" is also sinks[${same}]` });
      else sinkNames.set(sink.name, i);
    }
    // Two sinks writing one file or one spool would interleave their records.
    const own = sink.type === 'stdout' ? [] : [...(sink.type === 'file' ? [['path', sink.path]] : []), ...(sink.spool.dir !== undefined ? [['spool', sink.spool.dir]] : [])];
    for (const [key, place] of own) {
      const same = places.get(place!);
      if (same !== undefined) ctx.addIssue({ code: 'custom', path: ['audit', 'sinks', i, key!], message: `expected a place of its own; ${JSON.stringify(place)} is also used by sinks[${same}]` });
      else places.set(place!, i);
    }
  });
  const keyNames = new Map<string, number>();
  const digests = new Map<string, number>();
  config.identity.apiKeys.forEach((k, i) => {
    const sameName = keyNames.get(k.name);
    if (sameName !== undefined) ctx.addIssue({ code: 'custom', path: ['identity', 'apiKeys', i, 'name'], message: `expected a unique name; "${k.name}" is also apiKeys[${sameName}]` });
    else keyNames.set(k.name, i);
    const digest = k.sha256.toLowerCase();
    const sameKey = digests.get(digest);
    if (sameKey !== undefined) ctx.addIssue({ code: 'custom', path: ['identity', 'apiKeys', i, 'sha256'], message: `expected each key once; this digest is also apiKeys[${sameKey}]` });
    else digests.set(digest, i);
  });
});

export type Config = z.output<typeof configSchema>;
export type RuleConfig = Config['rules'][number];
export type MaskSpecConfig = NonNullable<RuleConfig['mask']>;
export type RejectSpecConfig = NonNullable<RuleConfig['reject']>;
export type CaptureSpecConfig = NonNullable<RuleConfig['capture']>;
export type ApprovalSpecConfig = NonNullable<RuleConfig['approval']>;
export type ApprovalsConfig = Config['approvals'];
export type PostgresStoreConfig = NonNullable<Config['approvals']['store']['postgres']>;
export type ApprovalsWebhookConfig = NonNullable<Config['approvals']['webhook']>;
export type SignalRuleSpecConfig = NonNullable<RuleConfig['signal']>;
export type TimeWindowConfigs = Config['timeWindows'];
export type SignalsConfig = Config['signals'];
export type OidcIssuerConfig = Config['identity']['oidc'][number];
export type KubernetesIdentityConfig = NonNullable<Config['identity']['kubernetes']>;
export type ApiKeyConfig = Config['identity']['apiKeys'][number];
export type GroupMappingConfig = Config['identity']['groupMappings'][number];
export type QuickstartConfig = NonNullable<Config['quickstart']>;
export type KafkaConfig = Config['kafka'];
export type AuditConfig = Config['audit'];
export type AuditSinkConfig = AuditConfig['sinks'][number];
export type UpstreamCredentialConfig = Config['http']['upstreamCredentials'][number];
