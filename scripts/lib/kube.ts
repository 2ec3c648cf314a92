/**
 * @module scripts/lib/kube
 * A real, throwaway Kubernetes API server for tests and the quickstart: etcd and kube-apiserver on free 127.0.0.1
 * ports, with certificates, keys, data and logs in a per-run folder under RUN_DIR, and kubectl pointed at it
 * explicitly (never at the user's ~/.kube).
 *
 * What it is: the API and its storage, with RBAC authorization, static bearer tokens (`--token-auth-file`) and
 * service-account tokens signed by a key pair made for the run (`kubectl create token` works). What it is not: a
 * cluster. No controller-manager runs, so nothing reconciles: namespaces get no `default` ServiceAccount (create one
 * yourself if a test needs it), a deleted namespace stays Terminating, pods stay Pending, Deployments make no
 * ReplicaSets. No scheduler, no kubelet.
 *
 * Cost on the 2-core machine (measured): ready ~3 s after the call (certificates and keys included), ~265 MB
 * resident for kube-apiserver and ~45 MB for etcd, stopped in ~1 s. Start one per test file, stop it in `after`.
 *
 * Needs the binaries from `node scripts/provision.ts kubernetes etcd`.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { createCertificateAuthority, createRsaKeyPair, issueCertificate } from './certs.ts';
import { ETCD_BINARY, ETCD_VERSION, KUBE_APISERVER_BINARY, KUBECTL_BINARY, KUBERNETES_VERSION, RUN_DIR } from './paths.ts';
import { freePorts, LOOPBACK } from './ports.ts';
import { runCommand, spawnManaged } from './process.ts';
import type { ManagedProcess } from './process.ts';

export interface KubeToken {
  /** The bearer token. Letters, digits and `-._~+/=` (what fits a CSV field and an Authorization header). */
  readonly token: string;
  readonly user: string;
  readonly groups?: readonly string[];
}

export interface StartKubeApiServerOptions {
  /**
   * Bind the ClusterRole `system:service-account-issuer-discovery` to `system:unauthenticated`, so the issuer's
   * `/.well-known/openid-configuration` and `/openid/v1/jwks` answer without credentials (as a verifier outside the
   * cluster, like tollgate, fetches them). Default false: then they need a token like every other path.
   */
  readonly publicIssuerDiscovery?: boolean;
  /** Appended to kube-apiserver's command line (a repeated scalar flag overrides the harness's value). */
  readonly extraArgs?: readonly string[];
  /** More static tokens, besides the admin's. */
  readonly tokens?: readonly KubeToken[];
  /** How long to wait for etcd and then for `/readyz`. Default 120 s (a cold start on a busy 2-core machine). */
  readonly startTimeoutMs?: number;
}

export interface KubectlOptions {
  /**
   * Bearer token; default the admin's. There is no anonymous kubectl: without any credential it prompts for a
   * username and password (and fails on the empty stdin), so an anonymous request is a plain HTTPS one.
   */
  readonly token?: string;
  /** Written to kubectl's stdin (for `apply -f -`). */
  readonly input?: string;
  /** Another URL to reach the API server at (a proxy in front of it); default `url`. */
  readonly server?: string;
  /** CA for `server`'s certificate; default `caFile`. Ignored with `insecureSkipTlsVerify`. */
  readonly caFile?: string;
  readonly insecureSkipTlsVerify?: boolean;
}

export interface KubectlResult {
  readonly stdout: string;
  readonly stderr: string;
  /** kubectl's exit code (1 for a refused request, with the API's message on stderr). */
  readonly code: number;
}

export interface KubeApiServer {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  /** The CA that signed the serving certificate (SANs 127.0.0.1, localhost, kubernetes.default.svc). */
  readonly caFile: string;
  readonly caPem: string;
  /** Static token of user `tollgate-admin` in group `system:masters` (everything allowed). */
  readonly adminToken: string;
  /** `iss` of the service-account tokens: `url`, so its discovery document and JWKS are served at `url`. */
  readonly serviceAccountIssuer: string;
  /** The run's folder under RUN_DIR: pki/, etcd-data/, etcd.log, kube-apiserver.log, tokens.csv, kubectl-cache/. */
  readonly dir: string;
  /** Process ids, for checks that nothing outlives `stop()`. */
  readonly pids: { readonly etcd: number; readonly apiServer: number };
  /**
   * Run kubectl against this server with an explicit server, token and CA (an empty kubeconfig, `KUBERC=off`, a
   * discovery cache inside `dir`): nothing of the user's ~/.kube is read or written. Resolves whatever the exit code.
   */
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  /** Stop kube-apiserver, then etcd (SIGTERM, SIGKILL after 10 s), and delete `dir`. Idempotent. */
  stop(): Promise<void>;
}

/** Throws with the fix if a binary is not there. */
export function assertKubeProvisioned(): void {
  const missing = [
    [KUBE_APISERVER_BINARY, `kube-apiserver ${KUBERNETES_VERSION}`, 'kubernetes'],
    [KUBECTL_BINARY, `kubectl ${KUBERNETES_VERSION}`, 'kubernetes'],
    [ETCD_BINARY, `etcd ${ETCD_VERSION}`, 'etcd'],
  ].filter(([file]) => !fs.existsSync(file!));
  if (missing.length > 0) {
    const components = [...new Set(missing.map(([, , component]) => component))].join(' ');
    throw new Error(`${missing.map(([file, what]) => `${what} not found at ${file}`).join('; ')}: run node scripts/provision.ts ${components}`);
  }
}

export const ADMIN_USER = 'tollgate-admin';
/** The issuer-discovery binding made with `publicIssuerDiscovery`. */
export const PUBLIC_DISCOVERY_BINDING = 'tollgate-public-issuer-discovery';
const SERVICE_CLUSTER_IP_RANGE = '10.96.0.0/16';
const TOKEN_CHARS = /^[A-Za-z0-9._~+/=-]+$/;
/** What may stand in the user and group fields of the token CSV: no quote, comma or line break. */
const CSV_SAFE = /^[^",\r\n]+$/;
const READY_POLL_MS = 250;
const STOP_GRACE_MS = 10_000;
const KUBECTL_TIMEOUT_MS = 120_000;

/** The lines of `--token-auth-file`: `token,user,uid,"group1,group2"` (uid: the user name, which is unique here). */
function tokenFile(tokens: readonly KubeToken[]): string {
  const seen = new Set<string>();
  const lines = tokens.map(({ token, user, groups = [] }) => {
    if (!TOKEN_CHARS.test(token)) throw new Error(`startKubeApiServer: token of ${JSON.stringify(user)} must be letters, digits and -._~+/= only, got ${JSON.stringify(token)}`);
    if (seen.has(token)) throw new Error(`startKubeApiServer: token of ${JSON.stringify(user)} is given twice`);
    seen.add(token);
    for (const name of [user, ...groups]) {
      if (!CSV_SAFE.test(name)) throw new Error(`startKubeApiServer: user and group names may not be empty or contain '"', ',' or a line break, got ${JSON.stringify(name)}`);
    }
    return `${token},${user},${user}${groups.length > 0 ? `,"${groups.join(',')}"` : ''}`;
  });
  return `${lines.join('\n')}\n`;
}

/**
 * Start etcd and kube-apiserver and wait until `/readyz` answers 200. On failure both are stopped, the run folder is
 * kept for its logs, and the error quotes the end of the log of whichever failed.
 */
export async function startKubeApiServer(options: StartKubeApiServerOptions = {}): Promise<KubeApiServer> {
  assertKubeProvisioned();
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  const adminToken = randomBytes(24).toString('base64url');
  const tokens = tokenFile([{ token: adminToken, user: ADMIN_USER, groups: ['system:masters'] }, ...(options.tokens ?? [])]);

  await fs.promises.mkdir(RUN_DIR, { recursive: true });
  const dir = await fs.promises.mkdtemp(path.join(RUN_DIR, 'kube-'));
  const pki = path.join(dir, 'pki');
  const [etcdClientPort, etcdPeerPort, apiPort] = (await freePorts(3)) as [number, number, number];
  const url = `https://${LOOPBACK}:${apiPort}`;

  const ca = await createCertificateAuthority(pki, 'kube-ca');
  const serving = await issueCertificate(ca, {
    name: 'kube-apiserver',
    usage: 'server',
    ips: [LOOPBACK],
    dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
  });
  const serviceAccountKey = await createRsaKeyPair(pki, 'service-account');
  const tokensFile = path.join(dir, 'tokens.csv');
  await fs.promises.writeFile(tokensFile, tokens, { mode: 0o600 });
  // kubectl gets this instead of ~/.kube/config; everything it needs comes as flags.
  const emptyKubeconfig = path.join(dir, 'empty.kubeconfig');
  await fs.promises.writeFile(emptyKubeconfig, 'apiVersion: v1\nkind: Config\n');
  const caPem = await fs.promises.readFile(ca.cert, 'utf8');

  const etcdUrl = `http://${LOOPBACK}:${etcdClientPort}`;
  const peerUrl = `http://${LOOPBACK}:${etcdPeerPort}`;
  const processes: ManagedProcess[] = [];
  const stopAll = async (): Promise<void> => {
    // The API server first: stopped after etcd, it would spend its grace period retrying the storage.
    for (const child of [...processes].reverse()) await child.stop(STOP_GRACE_MS);
  };

  try {
    const etcd = await spawnManaged({
      name: 'etcd',
      command: ETCD_BINARY,
      args: [
        '--name=tollgate',
        `--data-dir=${path.join(dir, 'etcd-data')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        // The peer URLs default to localhost:2380, which a second instance (another test file, another checkout)
        // would find taken: every URL gets a port of its own, and the one-member cluster is named after it.
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=tollgate=${peerUrl}`,
        '--logger=zap',
        '--log-outputs=stderr',
      ],
      logFile: path.join(dir, 'etcd.log'),
      cwd: dir,
    });
    processes.push(etcd);
    await waitUntil(etcd, `${etcdUrl}/health`, undefined, (status, body) => status === 200 && body.includes('"health":"true"'), timeoutMs);

    const apiServer = await spawnManaged({
      name: 'kube-apiserver',
      command: KUBE_APISERVER_BINARY,
      args: [
        `--bind-address=${LOOPBACK}`,
        `--advertise-address=${LOOPBACK}`,
        `--secure-port=${apiPort}`,
        `--etcd-servers=${etcdUrl}`,
        `--tls-cert-file=${serving.cert}`,
        `--tls-private-key-file=${serving.key}`,
        `--token-auth-file=${tokensFile}`,
        '--authorization-mode=RBAC',
        `--service-account-issuer=${url}`,
        `--service-account-key-file=${serviceAccountKey.publicKey}`,
        `--service-account-signing-key-file=${serviceAccountKey.privateKey}`,
        // Said outright rather than derived from the advertised address, so the discovery document names the URL
        // that `serviceAccountIssuer` promises.
        `--service-account-jwks-uri=${url}/openid/v1/jwks`,
        `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
        // The default reconciler writes this address into the `kubernetes` Endpoints and keeps a lease for it:
        // pointless with one server and no cluster network.
        '--endpoint-reconciler-type=none',
        '--profiling=false',
        ...(options.extraArgs ?? []),
      ],
      logFile: path.join(dir, 'kube-apiserver.log'),
      cwd: dir,
    });
    processes.push(apiServer);
    await waitUntil(apiServer, `${url}/readyz`, caPem, (status) => status === 200, timeoutMs);
  } catch (err) {
    await stopAll();
    // No `cause`: it would print the same message (and the log's end) a second time.
    throw new Error(`${(err as Error).message}\n(the run folder ${dir} is kept for its logs)`);
  }

  let stopping: Promise<void> | undefined;
  const server: KubeApiServer = {
    url,
    caFile: ca.cert,
    caPem,
    adminToken,
    serviceAccountIssuer: url,
    dir,
    pids: { etcd: processes[0]!.pid, apiServer: processes[1]!.pid },
    kubectl: (args, kubectlOptions = {}) => {
      if (stopping !== undefined) return Promise.reject(new Error(`kubectl ${args.join(' ')}: the API server at ${url} was stopped`));
      return runKubectl(server, emptyKubeconfig, args, kubectlOptions);
    },
    stop: () => {
      stopping ??= (async () => {
        await stopAll();
        await fs.promises.rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };

  if (options.publicIssuerDiscovery === true) {
    const bound = await server.kubectl([
      'create', 'clusterrolebinding', PUBLIC_DISCOVERY_BINDING,
      '--clusterrole=system:service-account-issuer-discovery', '--group=system:unauthenticated',
    ]);
    if (bound.code !== 0) {
      await server.stop();
      throw new Error(`startKubeApiServer: binding system:service-account-issuer-discovery to system:unauthenticated failed (kubectl exit ${bound.code}): ${bound.stderr.trim()}`);
    }
  }
  return server;
}

async function runKubectl(server: KubeApiServer, emptyKubeconfig: string, args: readonly string[], options: KubectlOptions): Promise<KubectlResult> {
  const token = options.token ?? server.adminToken;
  if (token === '') throw new Error(`kubectl ${args.join(' ')}: token is empty; kubectl cannot make anonymous requests (it would prompt for a password), send a plain HTTPS request instead`);
  const flags = [
    `--kubeconfig=${emptyKubeconfig}`,
    `--cache-dir=${path.join(server.dir, 'kubectl-cache')}`,
    `--server=${options.server ?? server.url}`,
    ...(options.insecureSkipTlsVerify === true ? ['--insecure-skip-tls-verify=true'] : [`--certificate-authority=${options.caFile ?? server.caFile}`]),
    `--token=${token}`,
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, KUBERC: 'off' };
  delete env['KUBECONFIG'];
  const result = await runCommand(KUBECTL_BINARY, [...flags, ...args], {
    cwd: server.dir,
    env,
    timeoutMs: KUBECTL_TIMEOUT_MS,
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
  // A signal (only from outside: runCommand rejects on its own timeout) is no exit code a caller could branch on.
  if (result.code === null) throw new Error(`kubectl ${args.join(' ')} was killed by ${result.signal}\n${result.stderr}`);
  return { stdout: result.stdout, stderr: result.stderr, code: result.code };
}

/**
 * Poll `url` until `ready(status, body)`, failing early (with the log's end) if `child` exits, or after `timeoutMs`.
 * `caPem` given: HTTPS trusting only that CA.
 */
async function waitUntil(
  child: ManagedProcess,
  url: string,
  caPem: string | undefined,
  ready: (status: number, body: string) => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    const exit = child.exitInfo;
    if (exit !== undefined) {
      throw child.failure(`${child.name} (pid ${child.pid}) exited with ${exit.signal ?? `code ${exit.code}`} before ${url} said it was ready`);
    }
    const answer = await getOnce(url, caPem);
    if (ready(answer.status, answer.body)) return;
    last = answer.status === 0 ? answer.body : `HTTP ${answer.status}: ${answer.body.trim().slice(0, 500)}`;
    if (Date.now() >= deadline) {
      throw child.failure(`${child.name} (pid ${child.pid}): ${url} did not say it was ready within ${timeoutMs} ms (last: ${last})`);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
}

/** One GET; status 0 with the error text when there is no HTTP answer (not listening yet). */
function getOnce(url: string, caPem: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    // agent: false — no keep-alive socket left behind to hold the event loop open.
    const onResponse = (response: http.IncomingMessage): void => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', (err) => resolve({ status: 0, body: err.message }));
    };
    const request = caPem === undefined
      ? http.get(url, { agent: false, timeout: 5_000 }, onResponse)
      : https.get(url, { agent: false, timeout: 5_000, ca: caPem }, onResponse);
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', (err) => resolve({ status: 0, body: err.message }));
  });
}
