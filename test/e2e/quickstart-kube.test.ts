/**
 * `npm run quickstart:kube`: the quickstart with a real Kubernetes API server behind Envoy's gateway listener on
 * 127.0.0.1:16443, and one kubeconfig per dev-issuer client in .tollgate/. ci-bot may get/list/watch pods,
 * configmaps and secrets in demo with Secret values masked, is refused cluster-wide secret listing and deleting
 * namespaces; a platform admin sees the Secret as it is. Ctrl-C removes the kubeconfigs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { KUBECTL_BINARY, REPO_ROOT, RUN_DIR } from '../../scripts/lib/paths.ts';
import { isProcessAlive, runCommand, spawnManaged, type ManagedProcess } from '../../scripts/lib/process.ts';

const STATE = path.join(REPO_ROOT, '.tollgate', 'quickstart.json');
const FIXED_PORTS = [10000, 19092, 18080, 19001, 19901, 19000, 16443];
const kubeconfig = (id: string) => path.join(REPO_ROOT, '.tollgate', `kubeconfig-${id}`);

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** kubectl exactly as the quickstart tells a user to run it: KUBECONFIG=.tollgate/kubeconfig-<id>. */
const kubectl = (id: string, ...args: string[]) =>
  runCommand(KUBECTL_BINARY, args, { env: { ...process.env, KUBECONFIG: kubeconfig(id), KUBERC: 'off' }, timeoutMs: 60_000 });

let quickstart: ManagedProcess;

before(async () => {
  for (const port of FIXED_PORTS) {
    if (await portInUse(port)) throw new Error(`127.0.0.1:${port} is in use: the quickstart needs its fixed ports (is \`npm start\` already running?)`);
  }
  quickstart = await spawnManaged({
    name: 'quickstart-kube', command: process.execPath, args: [path.join(REPO_ROOT, 'scripts', 'quickstart.ts'), '--kube'],
    cwd: REPO_ROOT, logFile: path.join(RUN_DIR, `quickstart-kube-test-${process.pid}.log`),
  });
  await quickstart.waitForLog(/tollgate quickstart is up/, 180_000);
});
after(async () => { await quickstart?.stop(); });

test('the gateway listens on 16443 with the CA and a kubeconfig per client written to .tollgate/', () => {
  const state = JSON.parse(fs.readFileSync(STATE, 'utf8'));
  assert.equal(state.kubernetes.url, 'https://127.0.0.1:16443');
  assert.notEqual(new URL(state.kubernetes.apiServer).port, '16443', 'the API server has a port of its own');
  assert.ok(isProcessAlive(state.kubernetes.pids.apiServer));
  assert.ok(fs.existsSync(path.join(REPO_ROOT, '.tollgate', 'kube-ca.crt')));
  for (const id of ['analyst-app', 'payments-app', 'platform-admin', 'ci-bot']) assert.ok(fs.existsSync(kubeconfig(id)), id);
  assert.match(fs.readFileSync(quickstart.logFile, 'utf8'), /export KUBECONFIG=\.tollgate\/kubeconfig-ci-bot/);
});

test('ci-bot reads demo with Secret values masked; cluster-wide secrets and deleting namespaces are Forbidden', async () => {
  const pods = await kubectl('ci-bot', 'get', 'pods,configmaps,secrets');
  assert.equal(pods.code, 0, pods.stderr);
  assert.match(pods.stdout, /db-credentials/);
  const secret = await kubectl('ci-bot', 'get', 'secret', 'db-credentials', '-o', 'jsonpath={.data.password}');
  assert.equal(secret.stdout, '[REDACTED]');
  const all = await kubectl('ci-bot', 'get', 'secrets', '-A');
  assert.equal(all.code, 1);
  assert.match(all.stderr, /Error from server \(Forbidden\): secrets is forbidden: User "ci-bot" cannot list resource "secrets" .* at the cluster scope/);
  const del = await kubectl('ci-bot', 'delete', 'namespace', 'demo', '--wait=false');
  assert.equal(del.code, 1);
  assert.match(del.stderr, /Error from server \(Forbidden\)/);
});

test('a platform admin sees the Secret as the API server holds it', async () => {
  const secret = await kubectl('platform-admin', 'get', 'secret', 'db-credentials', '-o', 'jsonpath={.data.password}');
  assert.equal(secret.code, 0, secret.stderr);
  assert.equal(Buffer.from(secret.stdout, 'base64').toString(), 's3cr3t-Pa55w0rd');
});

test('Ctrl-C stops the API server too and removes the kubeconfigs', async () => {
  const state = JSON.parse(fs.readFileSync(STATE, 'utf8'));
  quickstart.signal('SIGINT');
  assert.deepEqual(await quickstart.exited, { code: 0, signal: null });
  assert.ok(!isProcessAlive(state.kubernetes.pids.apiServer), 'the API server is stopped');
  assert.ok(!isProcessAlive(state.kubernetes.pids.etcd), 'etcd is stopped');
  assert.ok(!fs.existsSync(kubeconfig('ci-bot')));
  assert.ok(!fs.existsSync(path.join(REPO_ROOT, '.tollgate', 'kube-ca.crt')));
  for (const port of FIXED_PORTS) assert.equal(await portInUse(port), false, `port ${port} released`);
});
