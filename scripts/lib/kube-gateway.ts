/**
 * @module scripts/lib/kube-gateway
 * The Kubernetes part of the test bed and the quickstart: a real API server (scripts/lib/kube.ts) behind Envoy's
 * Kubernetes gateway listener (envoy/kubernetes-edge.yaml), with tollgate deciding.
 *
 * - Envoy terminates TLS for kubectl with a certificate from a CA made for the run (`caFile`); it reaches the API
 *   server over TLS, verifying the API server's own CA.
 * - tollgate holds the only credential the API server accepts from the gateway: a static token of user
 *   `tollgate-gateway`, whose one permission is to impersonate. Every request goes upstream with that token plus
 *   Impersonate-User/-Group naming the real caller, so the API server's RBAC and audit see the caller, never the
 *   caller's token (a dev-issuer token the API server does not even know works through the gateway).
 * - Service-account tokens (`kubectl create token … --audience tollgate`) are verified by tollgate against the API
 *   server's issuer (discovery + JWKS, public for this run): a CI job's token is accepted at the gateway, and is no
 *   credential at the API server itself (wrong audience).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createCertificateAuthority, issueCertificate, type CertificateAuthority } from './certs.ts';
import { renderTemplate } from './envoy.ts';
import { startKubeApiServer, type KubeApiServer, type KubectlResult } from './kube.ts';
import { REPO_ROOT } from './paths.ts';

export const KUBE_EDGE_TEMPLATE = path.join(REPO_ROOT, 'envoy', 'kubernetes-edge.yaml');
/** Environment variable tollgate reads the gateway's API-server token from (`http.upstreamCredentials`). */
export const KUBE_GATEWAY_TOKEN_ENV = 'TOLLGATE_KUBE_GATEWAY_TOKEN';
export const GATEWAY_USER = 'tollgate-gateway';
/** The audience service-account tokens for the gateway are minted for. */
export const GATEWAY_AUDIENCE = 'tollgate';

/** What the API server holds for the quickstart scenario and the tests: applied once, by the admin. */
const DEMO_OBJECTS = `
apiVersion: v1
kind: Namespace
metadata: { name: demo }
---
apiVersion: v1
kind: Namespace
metadata: { name: ci }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: default, namespace: demo }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: default, namespace: ci }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: deployer, namespace: ci }
---
apiVersion: v1
kind: Secret
metadata: { name: db-credentials, namespace: demo }
type: Opaque
stringData: { username: app, password: s3cr3t-Pa55w0rd }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: app-settings, namespace: demo }
data: { mode: demo }
---
# The gateway may do one thing: act as someone else. What that someone may do is the API server's RBAC below.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: tollgate-gateway-impersonator }
rules:
  - apiGroups: [""]
    resources: [users, groups, serviceaccounts]
    verbs: [impersonate]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: tollgate-gateway-impersonator }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tollgate-gateway-impersonator }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: ${GATEWAY_USER} }]
---
# CI identities (the dev issuer's ci-bot, and the deployer service account of namespace ci) read demo and may
# create pods and exec into them there; tollgate narrows this further (no cluster-wide secrets, Secret values masked,
# no privileged pods, exec only with approval).
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: ci-reader, namespace: demo }
rules:
  - apiGroups: [""]
    resources: [pods, configmaps, secrets]
    verbs: [get, list, watch]
  - apiGroups: [""]
    resources: [pods]
    verbs: [create]
  # exec is the API server's to allow too; tollgate holds ci-bot's until a platform admin approves it.
  - apiGroups: [""]
    resources: [pods/exec]
    verbs: [create, get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: ci-reader, namespace: demo }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: ci-reader }
subjects:
  - { apiGroup: rbac.authorization.k8s.io, kind: User, name: ci-bot }
  - { kind: ServiceAccount, name: deployer, namespace: ci }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: platform-admins-are-cluster-admins }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: Group, name: platform-admins }]
`;

export interface KubeGateway {
  readonly apiServer: KubeApiServer;
  /** Envoy's Kubernetes listener, `https://127.0.0.1:<port>`. */
  readonly url: string;
  readonly listenerPort: number;
  /** The `:authority` kubectl sends to the listener: what `http.kubernetes.hosts` names. */
  readonly host: string;
  /** The CA of the listener's certificate (what a kubeconfig names as certificate-authority). */
  readonly caFile: string;
  /** tollgate's token for the API server (user tollgate-gateway): only ever in tollgate's environment. */
  readonly gatewayToken: string;
  /** The Envoy listener and clusters, for merging into the stack's bootstrap. */
  envoyBootstrap(values: { envoyAdminPort: number; tollgatePort: number }): string;
  /** Points a tollgate config (as a YAML document) at this gateway: Kubernetes hosts, credential, cluster issuer. */
  editConfig(doc: Record<string, any>): void;
  /** kubectl through Envoy and tollgate with `token` (the listener's CA verified). */
  kubectl(args: readonly string[], token: string, input?: string): Promise<KubectlResult>;
  /** A kubeconfig for `user` with `token` against the gateway; `caFile` defaults to the run's copy of the CA. */
  kubeconfig(user: string, token: string, caFile?: string): string;
  stop(): Promise<void>;
}

export async function startKubeGateway(options: { readonly workDir: string; readonly listenerPort: number }): Promise<KubeGateway> {
  const gatewayToken = randomBytes(24).toString('base64url');
  const pkiDir = path.join(options.workDir, 'kube-gateway-pki');
  await fs.promises.mkdir(pkiDir, { recursive: true });
  const [apiServer, ca] = await Promise.all([
    startKubeApiServer({ publicIssuerDiscovery: true, tokens: [{ token: gatewayToken, user: GATEWAY_USER }] }),
    createCertificateAuthority(pkiDir, 'kube-gateway-ca', 30) as Promise<CertificateAuthority>,
  ]);
  try {
    const server = await issueCertificate(ca, { name: 'kube-gateway', usage: 'server', ips: ['127.0.0.1'], dns: ['localhost'], days: 30 }, pkiDir);
    const applied = await apiServer.kubectl(['apply', '-f', '-'], { input: DEMO_OBJECTS });
    if (applied.code !== 0) throw new Error(`startKubeGateway: applying the demo objects failed (kubectl exit ${applied.code}): ${applied.stderr.trim()}`);
    const host = `127.0.0.1:${options.listenerPort}`;
    const url = `https://${host}`;
    const apiAt = new URL(apiServer.url);
    return {
      apiServer, url, host, listenerPort: options.listenerPort, caFile: ca.cert, gatewayToken,
      envoyBootstrap: ({ envoyAdminPort, tollgatePort }) => renderTemplate(fs.readFileSync(KUBE_EDGE_TEMPLATE, 'utf8'), {
        ENVOY_ADMIN_PORT: envoyAdminPort, KUBE_LISTENER_PORT: options.listenerPort, TLS_SERVER_CERT: server.cert, TLS_SERVER_KEY: server.key,
        KUBE_API_HOST: apiAt.hostname, KUBE_API_PORT: Number(apiAt.port), KUBE_API_CA: apiServer.caFile,
        TOLLGATE_HOST: '127.0.0.1', TOLLGATE_PORT: tollgatePort,
      }),
      editConfig: (doc) => {
        const http = (doc['http'] ??= {}) as Record<string, any>;
        http['kubernetes'] = { hosts: [host] };
        // First: the demo upstream's credential matches every host.
        http['upstreamCredentials'] = [
          { name: 'kube-gateway', match: { host }, header: 'authorization', prefix: 'Bearer ', secret: { env: KUBE_GATEWAY_TOKEN_ENV }, impersonate: true },
          ...((http['upstreamCredentials'] as unknown[] | undefined) ?? []).filter((c) => (c as { name?: string }).name !== 'kube-gateway'),
        ];
        const identity = (doc['identity'] ??= {}) as Record<string, any>;
        identity['kubernetes'] = { issuer: apiServer.serviceAccountIssuer, audiences: [GATEWAY_AUDIENCE], caFile: apiServer.caFile };
      },
      kubectl: (args, token, input) => apiServer.kubectl(args, { token, server: url, caFile: ca.cert, ...(input !== undefined && { input }) }),
      kubeconfig: (user, token, caFile = ca.cert) => [
        'apiVersion: v1', 'kind: Config',
        'clusters:', `  - name: tollgate`, `    cluster: { server: "${url}", certificate-authority: "${caFile}" }`,
        'users:', `  - name: ${user}`, `    user: { token: "${token}" }`,
        'contexts:', `  - name: ${user}@tollgate`, `    context: { cluster: tollgate, user: ${user}, namespace: demo }`,
        `current-context: ${user}@tollgate`, '',
      ].join('\n'),
      stop: () => apiServer.stop(),
    };
  } catch (err) {
    await apiServer.stop();
    throw err;
  }
}
