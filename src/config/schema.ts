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
}).strict().meta({ description: 'Peers authenticated by an mTLS client certificate on a network (Kafka) listener, checked by tollgate\'s ext_authz. Absent: such connections are refused.' });

const secretSource = z.union([
  z.object({ env: z.string().min(1).meta({ description: 'Name of an environment variable holding the secret.' }) }).strict(),
  z.object({ file: z.string().min(1).meta({ description: 'Path of a file holding the secret (trailing newline trimmed).' }) }).strict(),
]).meta({ description: 'Where a secret comes from. Secrets are never written into the config itself, nor logged.' });

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
  }).strict().optional().meta({ description: 'Matches HTTP requests only.' }),
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
}).strict();

const strategy = z.string().refine((s) => { try { parseStrategy(s); return true; } catch { return false; } },
  'expected a mask strategy: redact, keep-first-N, keep-last-N, hash or null');

const maskSpec = z.object({
  fields: z.record(z.string().refine((p) => { try { compileJsonPath(p); return true; } catch { return false; } },
    'expected a JSON path such as $.card.number, $.items[*].email, $.data.* or $..email'), strategy)
    .optional().meta({ description: 'JSON path → strategy (redact, keep-first-N, keep-last-N, hash, null).' }),
  detectors: z.array(z.enum(DETECTOR_NAMES)).optional()
    .meta({ description: 'Detectors run over every string value (or the whole text when the body is not JSON).' }),
  detectorStrategy: strategy.default('redact').meta({ description: 'How detector findings are replaced.' }),
  onUndecodable: z.enum(['pass', 'redact', 'fail', 'redact-record', 'fail-fetch']).default('redact')
    .transform((v) => (v === 'redact-record' ? 'redact' : v === 'fail-fetch' ? 'fail' : v))
    .meta({ description: 'A payload that should be JSON but is not: pass it (detectors still run over its text), replace it (`redact`; for Kafka also `redact-record`), or fail (`fail`; for Kafka also `fail-fetch`: the partition is answered with an error instead of data).' }),
  keys: z.boolean().default(false).meta({ description: 'Kafka: mask record keys too (as JSON or text, like values).' }),
  headers: z.array(z.string().min(1)).default([]).meta({ description: 'Kafka: record headers whose values are masked too (as JSON or text).' }),
}).strict().refine((m) => m.fields !== undefined || m.detectors !== undefined, 'expected `fields`, `detectors` or both');


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

const rule = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected a lower-case name of letters, digits, ".", "_" and "-"')
    .meta({ description: 'Appears in denials, metrics and audit records.' }),
  description: z.string().optional().meta({ description: 'Shown as the reason in denials instead of the generic text.' }),
  match: ruleMatch.prefault({}).meta({ description: 'All given conditions must hold; an empty match matches everything.' }),
  unless: z.object(principalMatch).strict()
    .refine((u) => Object.keys(u).length > 0, 'expected at least one of subject, group, issuer (an empty unless exempts everyone)')
    .optional().meta({ description: 'The rule does not apply to these principals.' }),
  effect: z.enum(['allow', 'deny']).optional().meta({ description: 'Access rule: the first matching one decides; no match is a deny.' }),
  mask: maskSpec.optional().meta({ description: 'Masking rule: every matching one applies to the response.' }),
  reject: rejectSpec.optional().meta({ description: 'Kafka publish inspection: a Produce whose records match is refused (INVALID_RECORD with the reason, POLICY_VIOLATION before Produce v8) and nothing of that partition is written. Applies to produce requests the match selects.' }),
  shadow: z.boolean().default(false)
    .meta({ description: 'Shadow mode: the rule is evaluated and its would-be outcome audited (`shadow` in the audit record), but it does not act: an access rule does not decide (the next rule does), a masking rule does not mask, a reject rule does not refuse. For tuning a rule on live traffic before enforcing it.' }),
}).strict().superRefine((r, ctx) => {
  const kinds = [r.effect, r.mask, r.reject].filter((k) => k !== undefined).length;
  if (kinds !== 1) {
    ctx.addIssue({ code: 'custom', path: ['effect'], message: 'expected exactly one of `effect` (an access rule), `mask` (a masking rule) or `reject` (a publish inspection rule)' });
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
});

const port = z.number().int().min(1).max(65535);

const quickstart = z.object({
  listeners: z.object({
    http: port.default(10000).meta({ description: 'Envoy HTTP listener.' }),
    kafka: port.default(19092).meta({ description: 'Envoy Kafka listener, advertised by the broker.' }),
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
});

export type Config = z.output<typeof configSchema>;
export type RuleConfig = Config['rules'][number];
export type MaskSpecConfig = NonNullable<RuleConfig['mask']>;
export type RejectSpecConfig = NonNullable<RuleConfig['reject']>;
export type OidcIssuerConfig = Config['identity']['oidc'][number];
export type QuickstartConfig = NonNullable<Config['quickstart']>;
export type KafkaConfig = Config['kafka'];
export type UpstreamCredentialConfig = Config['http']['upstreamCredentials'][number];
