/**
 * The Kubernetes path end to end: kubectl → Envoy's Kubernetes gateway (TLS) → tollgate (ext_authz, ext_proc) → a
 * real kube-apiserver 1.36 with etcd, with the quickstart's rules. Callers: a service account's token from
 * `kubectl create token` (a CI job), the dev issuer's ci-bot, and a platform admin. The API server sees only
 * tollgate's credential and the caller as impersonation headers; its own RBAC applies too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import { startStack, type Stack } from '../../scripts/lib/stack.ts';
import type { KubeGateway } from '../../scripts/lib/kube-gateway.ts';
import { GATEWAY_AUDIENCE } from '../../scripts/lib/kube-gateway.ts';
import { KUBECTL_BINARY } from '../../scripts/lib/paths.ts';

let stack: Stack;
let kube: KubeGateway;
let ciToken: string;

before(async () => {
  stack = await startStack({ kubernetes: true });
  kube = stack.kubernetes!;
  const created = await kube.apiServer.kubectl(['create', 'token', 'deployer', '-n', 'ci', '--audience', GATEWAY_AUDIENCE, '--duration', '1h']);
  assert.equal(created.code, 0, created.stderr);
  ciToken = created.stdout.trim();
});
after(async () => { await stack?.stop(); });

const asCi = (...args: string[]) => kube.kubectl(args, ciToken);
const admin = (...args: string[]) => kube.apiServer.kubectl(args);

test('a CI service account reads what its rules allow, through Envoy, with kubectl unchanged', async () => {
  const pods = await asCi('get', 'pods', '-n', 'demo');
  assert.equal(pods.code, 0, pods.stderr);
  const configmaps = await asCi('get', 'configmap', 'app-settings', '-n', 'demo', '-o', 'jsonpath={.data.mode}');
  assert.equal(configmaps.code, 0, configmaps.stderr);
  assert.equal(configmaps.stdout, 'demo');
});

test('the API server authenticates tollgate\'s credential and authorizes the impersonated caller', async () => {
  const whoami = await asCi('auth', 'whoami', '-o', 'json');
  assert.equal(whoami.code, 0, whoami.stderr);
  const review = JSON.parse(whoami.stdout) as { status: { userInfo: { username: string; groups: string[] } } };
  assert.equal(review.status.userInfo.username, 'system:serviceaccount:ci:deployer');
  assert.ok(review.status.userInfo.groups.includes('system:serviceaccounts:ci'), JSON.stringify(review.status.userInfo));
  // The token itself is no credential at the API server: it was minted for tollgate's audience.
  const direct = await kube.apiServer.kubectl(['get', 'pods', '-n', 'demo'], { token: ciToken });
  assert.notEqual(direct.code, 0);
  assert.match(direct.stderr, /Unauthorized/);
  // A dev-issuer token the API server has never heard of works through the gateway: only tollgate's credential went on.
  const ciBot = await kube.kubectl(['get', 'pods', '-n', 'demo'], await stack.mintToken('ci-bot', ['ci']));
  assert.equal(ciBot.code, 0, ciBot.stderr);
});

test('what the rules deny is a normal Forbidden error in kubectl: cluster-wide secrets, deleting a namespace', async () => {
  const all = await asCi('get', 'secrets', '-A');
  assert.equal(all.code, 1);
  assert.match(all.stderr, /Error from server \(Forbidden\): secrets is forbidden: User "system:serviceaccount:ci:deployer" cannot list resource "secrets" in API group "" at the cluster scope: secrets are read one namespace at a time \(tollgate rule ci-never-lists-secrets-cluster-wide\)/);
  const del = await asCi('delete', 'namespace', 'demo', '--wait=false');
  assert.equal(del.code, 1);
  assert.match(del.stderr, /Error from server \(Forbidden\): namespaces "demo" is forbidden: .*denied by rule namespaces-are-never-deleted/);
  const stillThere = await admin('get', 'namespace', 'demo', '-o', 'jsonpath={.status.phase}');
  assert.equal(stillThere.stdout, 'Active');
});

test('the API server\'s own RBAC still applies behind tollgate: a namespace tollgate allows nothing in stays closed', async () => {
  const other = await asCi('get', 'pods', '-n', 'kube-system');
  assert.equal(other.code, 1);
  assert.match(other.stderr, /Forbidden/);
});

test('Secret values are masked in get (-o yaml and json), list and protobuf requests; the API server keeps them', async () => {
  const yaml = await asCi('get', 'secret', 'db-credentials', '-n', 'demo', '-o', 'yaml');
  assert.equal(yaml.code, 0, yaml.stderr);
  assert.match(yaml.stdout, /password: '?\[REDACTED\]'?/);
  assert.match(yaml.stdout, /username: '?\[REDACTED\]'?/);
  assert.doesNotMatch(yaml.stdout, new RegExp(Buffer.from('s3cr3t-Pa55w0rd').toString('base64')));
  const list = await asCi('get', 'secrets', '-n', 'demo', '-o', 'json');
  const items = (JSON.parse(list.stdout) as { items: Array<{ metadata: { name: string }; data?: Record<string, string> }> }).items;
  const db = items.find((i) => i.metadata.name === 'db-credentials');
  assert.deepEqual(db?.data, { password: '[REDACTED]', username: '[REDACTED]' });
  // client-go asks for protobuf: tollgate asks the API server for JSON instead, and masks it.
  const proto = await fetchThroughGateway('/api/v1/namespaces/demo/secrets/db-credentials', ciToken, { accept: 'application/vnd.kubernetes.protobuf, application/json' });
  assert.equal(proto.status, 200);
  assert.match(proto.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(((await proto.json()) as { data: Record<string, string> }).data['password'], '[REDACTED]');
  // The admin, directly at the API server, sees the original.
  const original = await admin('get', 'secret', 'db-credentials', '-n', 'demo', '-o', 'jsonpath={.data.password}');
  assert.equal(Buffer.from(original.stdout, 'base64').toString(), 's3cr3t-Pa55w0rd');
  // A platform admin through the gateway sees it plain (the masking rule exempts the group).
  const platform = await kube.kubectl(['get', 'secret', 'db-credentials', '-n', 'demo', '-o', 'jsonpath={.data.password}'], await stack.mintToken('platform-admin', ['platform-admins']));
  assert.equal(platform.code, 0, platform.stderr);
  assert.equal(Buffer.from(platform.stdout, 'base64').toString(), 's3cr3t-Pa55w0rd');
});

test('a watch keeps flowing event by event, each Secret masked as it arrives', async () => {
  const listed = await asCi('get', 'secrets', '-n', 'demo', '-o', 'jsonpath={.metadata.resourceVersion}');
  assert.equal(listed.code, 0, listed.stderr);
  const watch = spawn(KUBECTL_BINARY, [
    '--kubeconfig', '/dev/null', '--server', kube.url, '--certificate-authority', kube.caFile, '--token', ciToken,
    'get', 'secrets', '-n', 'demo', '--watch-only', '-o', 'json', '--output-watch-events',
  ], { env: { ...process.env, KUBERC: 'off', KUBECONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  watch.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  watch.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  try {
    const waitFor = async (pattern: RegExp, what: string) => {
      const deadline = Date.now() + 60_000;
      while (!pattern.test(out)) {
        if (Date.now() > deadline || watch.exitCode !== null) throw new Error(`${what}: not seen (exit ${watch.exitCode}); stdout ${out.slice(-500)} stderr ${err.slice(-500)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // Give the watch a moment to be established, then create secrets one after another.
    await new Promise((r) => setTimeout(r, 1_500));
    const first = await admin('create', 'secret', 'generic', 'watched-1', '-n', 'demo', '--from-literal=token=first-Pa55-value');
    assert.equal(first.code, 0, first.stderr);
    await waitFor(/"watched-1"/, 'the first event');
    const second = await admin('create', 'secret', 'generic', 'watched-2', '-n', 'demo', '--from-literal=token=second-Pa55-value');
    assert.equal(second.code, 0, second.stderr);
    await waitFor(/"watched-2"/, 'the second event, while the watch is still open');
    assert.equal(watch.exitCode, null, 'the watch is still open');
  } finally {
    watch.kill('SIGTERM');
  }
  for (const secret of ['first-Pa55-value', 'second-Pa55-value']) {
    assert.doesNotMatch(out, new RegExp(Buffer.from(secret).toString('base64')), 'no Secret value leaves unmasked');
  }
  assert.match(out, /"token":\s*"\[REDACTED\]"/);
});

test('body rules read the request: a privileged pod is refused with the rule named, an ordinary one is created', async () => {
  const pod = (name: string, privileged: boolean) => JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'demo' },
    spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1', securityContext: { privileged } }] },
  });
  const refused = await asCi2('create', '-f', '-')(pod('privileged-app', true));
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Forbidden.*privileged containers are not allowed: field \$\.\.securityContext\.privileged \(tollgate rule no-privileged-pods\)/);
  const created = await asCi2('create', '-f', '-')(pod('ordinary-app', false));
  assert.equal(created.code, 0, created.stderr);
  const there = await admin('get', 'pods', '-n', 'demo', '-o', 'jsonpath={.items[*].metadata.name}');
  assert.deepEqual(there.stdout.split(' ').sort(), ['ordinary-app']);
  // A JSON Patch that would turn it privileged is read as the value it writes (and patch is not allowed anyway).
  const patched = await asCi('patch', 'pod', 'ordinary-app', '-n', 'demo', '--type=json', '-p', '[{"op":"add","path":"/spec/containers/0/securityContext/privileged","value":true}]');
  assert.equal(patched.code, 1);
  assert.match(patched.stderr, /Forbidden/);
});

test('a body rule before every allow holds even for platform admins: no ClusterRoleBinding to cluster-admin', async () => {
  const platform = await stack.mintToken('platform-admin', ['platform-admins']);
  const binding = (name: string, role: string) => JSON.stringify({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'someone' }],
  });
  const refused = await kube.kubectl(['create', '-f', '-'], platform, binding('someone-is-admin', 'cluster-admin'));
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Forbidden.*cluster-admin is not granted through the gateway: field \$\.roleRef\.name \(tollgate rule no-cluster-admin-bindings\)/);
  const viewer = await kube.kubectl(['create', '-f', '-'], platform, binding('someone-views', 'view'));
  assert.equal(viewer.code, 0, viewer.stderr);
  const bindings = await admin('get', 'clusterrolebindings', '-o', 'jsonpath={.items[*].metadata.name}');
  assert.ok(bindings.stdout.split(' ').includes('someone-views'));
  assert.ok(!bindings.stdout.split(' ').includes('someone-is-admin'));
});

test('every decision is audited on the kubernetes path with the attributes the API server derives', async () => {
  const records = stack.auditRecords().filter((r) => r.path === 'kubernetes');
  const deny = records.find((r) => r.event === 'kubernetes.authz.deny' && r.rule === 'ci-never-lists-secrets-cluster-wide');
  assert.ok(deny, 'the cluster-wide secret listing is audited');
  assert.equal(deny.principal?.subject, 'system:serviceaccount:ci:deployer');
  assert.deepEqual((deny.details as { kubernetes: { verb: string; resource: string } }).kubernetes.verb, 'list');
  assert.ok(records.some((r) => r.event === 'kubernetes.body.deny' && r.rule === 'no-privileged-pods'));
  assert.ok(records.some((r) => r.event === 'kubernetes.authz.allow' && r.rule === 'ci-reads-demo'));
});

function asCi2(...args: string[]) {
  return (input: string) => kube.kubectl(args, ciToken, input);
}

async function fetchThroughGateway(path: string, token: string, headers: Record<string, string> = {}): Promise<Response> {
  // fetch() cannot be given a CA per request; node:https can.
  const ca = fs.readFileSync(kube.caFile);
  return await new Promise<Response>((resolve, reject) => {
    const req = https.request(`${kube.url}${path}`, { ca, headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(new Response(Buffer.concat(chunks), {
        status: res.statusCode ?? 0,
        headers: Object.entries(res.headers).flatMap(([k, v]) => (v === undefined ? [] : [[k, Array.isArray(v) ? v.join(', ') : v] as [string, string]])),
      })));
    });
    req.on('error', reject);
    req.end();
  });
}
