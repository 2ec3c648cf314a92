/**
 * The Kubernetes API server harness against the real kube-apiserver and etcd: one server for the whole file (with
 * public issuer discovery and one extra static token), driven with the real kubectl. What the Kubernetes-path
 * end-to-end tests will lean on is specified here: readiness, admin access, service-account tokens verifiable with
 * the issuer's public JWKS, RBAC decisions for such a token, watches, and a clean stop.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JSONWebKeySet } from 'jose';
import { ensureEtcd, ensureKubernetes } from '../../scripts/provision.ts';
import { createCertificateAuthority } from '../../scripts/lib/certs.ts';
import { PUBLIC_DISCOVERY_BINDING, startKubeApiServer } from '../../scripts/lib/kube.ts';
import type { KubeApiServer } from '../../scripts/lib/kube.ts';
import { isProcessAlive } from '../../scripts/lib/process.ts';

const NAMESPACE = 'shop';
const SERVICE_ACCOUNT = 'orders-reader';
const VIEWER = { token: 'viewer-token-0123456789', user: 'jane', groups: ['auditors', 'night-shift'] };

let kube: KubeApiServer;

before(async () => {
  await ensureKubernetes();
  await ensureEtcd();
  kube = await startKubeApiServer({ publicIssuerDiscovery: true, tokens: [VIEWER] });
});

after(async () => {
  await kube?.stop();
});

/** GET `urlPath` on the API server, trusting only its CA; `token` undefined: anonymous. */
function get(urlPath: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(new URL(urlPath, kube.url), {
      ca: kube.caPem,
      agent: false,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
  });
}

async function kubectlOk(args: readonly string[], options?: Parameters<KubeApiServer['kubectl']>[1]): Promise<string> {
  const result = await kube.kubectl(args, options);
  assert.equal(result.code, 0, `kubectl ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

const RESOURCES = `
apiVersion: v1
kind: Namespace
metadata: { name: ${NAMESPACE} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: ${SERVICE_ACCOUNT}, namespace: ${NAMESPACE} }
---
apiVersion: v1
kind: Secret
metadata: { name: orders-db, namespace: ${NAMESPACE} }
stringData: { password: hunter2 }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: secret-reader, namespace: ${NAMESPACE} }
rules:
  - { apiGroups: [""], resources: [secrets], verbs: [get, list] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: ${SERVICE_ACCOUNT}-reads-secrets, namespace: ${NAMESPACE} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader }
subjects:
  - { kind: ServiceAccount, name: ${SERVICE_ACCOUNT}, namespace: ${NAMESPACE} }
`;

test('the API server is ready: /readyz answers 200 over TLS signed by the harness CA, without credentials', async () => {
  assert.match(kube.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const readyz = await get('/readyz');
  assert.equal(readyz.status, 200, readyz.body);
  assert.equal(readyz.body, 'ok');
  // Anonymous requests are authenticated (as system:anonymous) but authorized for next to nothing.
  assert.equal((await get('/api/v1/namespaces')).status, 403);
});

test('kubectl with the admin token creates a namespace, a ServiceAccount, a Secret, a Role and a RoleBinding', async () => {
  await kubectlOk(['apply', '-f', '-'], { input: RESOURCES });
  const listed = JSON.parse(await kubectlOk(['get', 'serviceaccounts,secrets,roles,rolebindings', '-n', NAMESPACE, '-o', 'json'])) as {
    items: { kind: string; metadata: { name: string } }[];
  };
  const names = listed.items.map((item) => `${item.kind}/${item.metadata.name}`).sort();
  assert.deepEqual(names, [
    `Role/secret-reader`,
    `RoleBinding/${SERVICE_ACCOUNT}-reads-secrets`,
    `Secret/orders-db`,
    `ServiceAccount/${SERVICE_ACCOUNT}`,
  ]);
  assert.equal((await kubectlOk(['get', 'namespace', NAMESPACE, '-o', 'jsonpath={.status.phase}'])).trim(), 'Active');
});

test('static tokens given as options authenticate as their user and groups', async () => {
  const review = JSON.parse(await kubectlOk(['auth', 'whoami', '-o', 'json'], { token: VIEWER.token })) as {
    status: { userInfo: { username: string; groups: string[] } };
  };
  assert.equal(review.status.userInfo.username, VIEWER.user);
  assert.deepEqual(review.status.userInfo.groups, [...VIEWER.groups, 'system:authenticated']);
  const admin = JSON.parse(await kubectlOk(['auth', 'whoami', '-o', 'json'])) as { status: { userInfo: { groups: string[] } } };
  assert.ok(admin.status.userInfo.groups.includes('system:masters'), JSON.stringify(admin));
  // An unknown token is refused outright, not treated as anonymous.
  const stranger = await kube.kubectl(['get', 'namespaces'], { token: 'not-a-known-token' });
  assert.equal(stranger.code, 1);
  assert.match(stranger.stderr, /Unauthorized|must be logged in/);
});

test('kubectl is pointed explicitly: another server URL, another CA, or no TLS check', async () => {
  const viaLocalhost = kube.url.replace('127.0.0.1', 'localhost');
  assert.match(await kubectlOk(['get', 'namespace', 'default', '-o', 'name'], { server: viaLocalhost }), /^namespace\/default$/m);

  const strangerCa = await createCertificateAuthority(path.join(kube.dir, 'stranger'), 'stranger-ca');
  const untrusted = await kube.kubectl(['get', 'namespace', 'default'], { caFile: strangerCa.cert });
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /certificate signed by unknown authority/);
  assert.match(await kubectlOk(['get', 'namespace', 'default', '-o', 'name'], { caFile: strangerCa.cert, insecureSkipTlsVerify: true }), /^namespace\/default$/m);
  // Without a credential kubectl would prompt for a password; the harness says so instead of hanging or failing late.
  await assert.rejects(kube.kubectl(['get', 'namespaces'], { token: '' }), /kubectl cannot make anonymous requests/);
});

async function serviceAccountToken(): Promise<string> {
  return (await kubectlOk(['create', 'token', SERVICE_ACCOUNT, '-n', NAMESPACE])).trim();
}

test('kubectl create token issues an RS256 JWT for the ServiceAccount that the issuer\'s public JWKS verifies', async () => {
  const token = await serviceAccountToken();
  assert.equal(decodeProtectedHeader(token).alg, 'RS256');

  // Discovery as a verifier outside the cluster does it: no credential at all.
  const discovery = await get('/.well-known/openid-configuration');
  assert.equal(discovery.status, 200, discovery.body);
  const metadata = JSON.parse(discovery.body) as { issuer: string; jwks_uri: string };
  assert.equal(metadata.issuer, kube.serviceAccountIssuer);
  assert.equal(metadata.jwks_uri, `${kube.serviceAccountIssuer}/openid/v1/jwks`);
  const jwksAnswer = await get(new URL(metadata.jwks_uri).pathname);
  assert.equal(jwksAnswer.status, 200, jwksAnswer.body);
  const jwks = JSON.parse(jwksAnswer.body) as JSONWebKeySet;

  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: kube.serviceAccountIssuer, audience: kube.serviceAccountIssuer });
  assert.equal(payload.sub, `system:serviceaccount:${NAMESPACE}:${SERVICE_ACCOUNT}`);
  const claims = payload['kubernetes.io'] as { namespace: string; serviceaccount: { name: string } };
  assert.equal(claims.namespace, NAMESPACE);
  assert.equal(claims.serviceaccount.name, SERVICE_ACCOUNT);

  // A token altered after signing does not verify.
  const [header, body, signature] = token.split('.') as [string, string, string];
  const forged = `${header}.${body}.${signature.slice(0, -4)}${signature.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
  await assert.rejects(jwtVerify(forged, createLocalJWKSet(jwks)), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
});

test('the service account token is allowed what its Role grants and Forbidden everything else', async () => {
  const token = await serviceAccountToken();
  const subject = `system:serviceaccount:${NAMESPACE}:${SERVICE_ACCOUNT}`;

  assert.equal((await kubectlOk(['get', 'secret', 'orders-db', '-n', NAMESPACE, '-o', 'jsonpath={.metadata.name}'], { token })), 'orders-db');
  assert.match(await kubectlOk(['get', 'secrets', '-n', NAMESPACE, '-o', 'name'], { token }), /^secret\/orders-db$/m);

  const refused: [string, string[]][] = [
    ['another resource', ['get', 'configmaps', '-n', NAMESPACE]],
    ['another verb', ['create', 'secret', 'generic', 'planted', '-n', NAMESPACE, '--from-literal=k=v']],
    ['another namespace', ['get', 'secrets', '-n', 'default']],
    ['cluster scope', ['get', 'namespaces']],
  ];
  for (const [what, args] of refused) {
    const result = await kube.kubectl(args, { token });
    assert.equal(result.code, 1, `${what}: expected a refusal, got ${result.stdout}`);
    assert.match(result.stderr, /forbidden/i, what);
    assert.ok(result.stderr.includes(`User "${subject}"`), `${what}: ${result.stderr}`);
  }
});

interface WatchEvent {
  readonly type: string;
  readonly object: { readonly metadata: { readonly name: string } };
}

/** Open a watch on `urlPath` and resolve with the first event `wanted` accepts; reject after `timeoutMs`. */
function firstEvent(urlPath: string, wanted: (event: WatchEvent) => boolean, timeoutMs: number): Promise<WatchEvent> {
  return new Promise((resolve, reject) => {
    const request = https.get(new URL(urlPath, kube.url), {
      ca: kube.caPem,
      agent: false,
      headers: { authorization: `Bearer ${kube.adminToken}` },
    }, (response: IncomingMessage) => {
      if (response.statusCode !== 200) {
        settle(new Error(`watch ${urlPath}: HTTP ${response.statusCode}`));
        return;
      }
      let buffered = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffered += chunk;
        // One JSON event per line.
        for (let newline = buffered.indexOf('\n'); newline !== -1; newline = buffered.indexOf('\n')) {
          const event = JSON.parse(buffered.slice(0, newline)) as WatchEvent;
          buffered = buffered.slice(newline + 1);
          if (wanted(event)) return settle(undefined, event);
        }
      });
    });
    const timer = setTimeout(() => settle(new Error(`watch ${urlPath}: no matching event within ${timeoutMs} ms`)), timeoutMs);
    request.on('error', (err) => settle(err));
    function settle(err: Error | undefined, event?: WatchEvent): void {
      clearTimeout(timer);
      request.destroy();
      if (err !== undefined) reject(err);
      else resolve(event!);
    }
  });
}

test('a watch on secrets (?watch=1) streams an ADDED event when a Secret is created', async () => {
  // List, then watch from the list's resourceVersion (as every Kubernetes client does): the watch sees exactly what
  // changed after the list, however late its connection is made. The API server sends its response headers with
  // the first event, so there is no "watch established" moment to wait for.
  const list = await get(`/api/v1/namespaces/${NAMESPACE}/secrets`, kube.adminToken);
  assert.equal(list.status, 200, list.body);
  const { resourceVersion } = (JSON.parse(list.body) as { metadata: { resourceVersion: string } }).metadata;
  assert.match(resourceVersion, /^\d+$/);
  const event = firstEvent(`/api/v1/namespaces/${NAMESPACE}/secrets?watch=1&resourceVersion=${resourceVersion}`, () => true, 60_000);
  await kubectlOk(['create', 'secret', 'generic', 'watched', '-n', NAMESPACE, '--from-literal=token=t0p']);
  const first = await event;
  assert.equal(first.type, 'ADDED');
  assert.equal(first.object.metadata.name, 'watched');
});

test('without the public discovery binding, the JWKS needs a credential', async () => {
  await kubectlOk(['delete', 'clusterrolebinding', PUBLIC_DISCOVERY_BINDING]);
  try {
    assert.equal((await get('/openid/v1/jwks')).status, 403);
    assert.equal((await get('/openid/v1/jwks', await serviceAccountToken())).status, 200);
  } finally {
    await kubectlOk(['create', 'clusterrolebinding', PUBLIC_DISCOVERY_BINDING,
      '--clusterrole=system:service-account-issuer-discovery', '--group=system:unauthenticated']);
  }
});

test('bad token options are refused before anything starts', async () => {
  await assert.rejects(startKubeApiServer({ tokens: [{ token: 'a,b', user: 'x' }] }), /token of "x" must be letters, digits/);
  await assert.rejects(startKubeApiServer({ tokens: [{ token: 'fine', user: 'x', groups: ['a,b'] }] }), /may not be empty or contain/);
});

test('stop() ends etcd and kube-apiserver and removes the run folder; a second stop() is a no-op', async () => {
  const { etcd, apiServer } = kube.pids;
  assert.ok(isProcessAlive(etcd) && isProcessAlive(apiServer));
  assert.ok(fs.existsSync(kube.dir));
  await kube.stop();
  assert.equal(isProcessAlive(apiServer), false);
  assert.equal(isProcessAlive(etcd), false);
  assert.equal(fs.existsSync(kube.dir), false);
  await kube.stop();
  await assert.rejects(kube.kubectl(['version']), /was stopped/);
});
