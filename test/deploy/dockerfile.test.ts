/**
 * The container image: the Dockerfile runs the same command as the package (`npm run tollgate -- serve --config
 * FILE`), as a non-root user, with a health check on the admin /healthz; what it copies (less .dockerignore) is
 * enough to serve; the health check command works against a real server. `docker build` runs where a Docker engine
 * answers, and is skipped with the reason otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { freePorts } from '../../scripts/lib/ports.ts';
import { runCommand, spawnManaged } from '../../scripts/lib/process.ts';

interface Instruction { readonly op: string; readonly args: string }

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(text: string): Instruction[] {
  const joined = text.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n').replace(/\\\n\s*/g, ' ');
  return joined.split('\n').map((l) => l.trim()).filter((l) => l !== '').map((l) => {
    const at = l.indexOf(' ');
    return { op: l.slice(0, at).toUpperCase(), args: l.slice(at + 1).trim() };
  });
}

const dockerfile = instructions(fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; engines: { node: string }; version: string };
const one = (op: string) => {
  const found = dockerfile.filter((i) => i.op === op);
  assert.equal(found.length, 1, `expected one ${op}, found ${found.length}`);
  return found[0]!.args;
};
/** Exec form only: a shell form would make `sh` PID 1, which does not pass SIGTERM on, so tollgate would never drain. */
const execForm = (op: string) => {
  const args = one(op);
  assert.match(args, /^\[/, `${op} must use the exec form (JSON array)`);
  return JSON.parse(args) as string[];
};

test('the image is Node 24 slim, as package.json\'s engines ask', () => {
  assert.equal(one('FROM'), 'node:24-slim');
  assert.match(pkg.engines.node, /^>=24\./);
});

test('ENTRYPOINT + CMD run the package\'s own command: npm run tollgate -- serve --config /etc/tollgate/tollgate.yaml', () => {
  assert.deepEqual(execForm('ENTRYPOINT'), pkg.scripts['tollgate']!.split(' '));
  assert.deepEqual(execForm('CMD'), ['serve', '--config', '/etc/tollgate/tollgate.yaml']);
  // bin/tollgate.js, the package's bin, runs the same main().
  assert.match(fs.readFileSync(path.join(REPO_ROOT, 'bin', 'tollgate.js'), 'utf8'), /from '\.\.\/src\/cli\.ts'/);
});

test('the image runs as a numeric non-root user', () => {
  const [user, groupId] = one('USER').split(':');
  assert.match(user!, /^\d+$/, 'numeric, so Kubernetes runAsNonRoot can verify it');
  assert.notEqual(Number(user), 0);
  assert.notEqual(Number(groupId ?? '1'), 0);
  const at = dockerfile.findIndex((i) => i.op === 'USER');
  assert.ok(dockerfile.slice(at).every((i) => i.op !== 'RUN'), 'USER comes after every RUN: build steps run as root, the server does not');
});

test('HEALTHCHECK asks the admin listener\'s /healthz on the default admin port', async () => {
  const { configSchema } = await import('../../src/config/schema.ts');
  const adminPort = configSchema.parse({}).server.admin.address.split(':')[1];
  const check = one('HEALTHCHECK');
  assert.match(check, new RegExp(`http://127\\.0\\.0\\.1:${adminPort}/healthz`));
  assert.match(check, /CMD \[/, 'exec form: the slim image has no curl, node does the request');
});

/** What the build context holds: the repository's files less what .dockerignore excludes (the `*` + `!x` form used here). */
function buildContext(): string[] {
  const rules = fs.readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  assert.equal(rules[0], '*', '.dockerignore starts by excluding everything');
  const include: string[] = [];
  const exclude: string[] = [];
  for (const r of rules.slice(1)) (r.startsWith('!') ? include : exclude).push(r.replace(/^!/, '').replace(/\/$/, ''));
  const files = ['package.json', 'package-lock.json', ...['bin', 'proto', 'src'].flatMap((d) =>
    fs.readdirSync(path.join(REPO_ROOT, d), { recursive: true, encoding: 'utf8' }).map((f) => `${d}/${f}`))];
  return files.filter((f) => include.some((i) => f === i || f.startsWith(`${i}/`)) && !exclude.some((e) => f === e || f.startsWith(`${e}/`)))
    .filter((f) => fs.statSync(path.join(REPO_ROOT, f)).isFile());
}

test('the files the image gets serve: validate and serve run from a copy of the build context, and the HEALTHCHECK command passes against it', async () => {
  const context = buildContext();
  const copied = new Set(dockerfile.filter((i) => i.op === 'COPY').flatMap((i) => i.args.split(/\s+/).slice(0, -1).map((s) => s.replace(/\/$/, ''))));
  assert.deepEqual([...copied].sort(), ['bin', 'package-lock.json', 'package.json', 'proto', 'src']);
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-image-'));
  try {
    for (const f of context) {
      fs.mkdirSync(path.dirname(path.join(app, f)), { recursive: true });
      fs.copyFileSync(path.join(REPO_ROOT, f), path.join(app, f));
    }
    // The image's node_modules is `npm ci --omit=dev`, a subset of the repository's.
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(app, 'node_modules'));
    const [grpcPort, adminPort] = await freePorts(2);
    const config = path.join(app, 'tollgate.yaml');
    fs.writeFileSync(config, `server:\n  grpc: { address: "127.0.0.1:${grpcPort}" }\n  admin: { address: "127.0.0.1:${adminPort}" }\nrules:\n  - { name: all, effect: allow }\n`);
    const entry = execForm('ENTRYPOINT');
    const validate = await runCommand(process.execPath, [...entry.slice(1), 'validate', '--config', config], { cwd: app, timeoutMs: 60_000 });
    assert.equal(validate.code, 0, validate.stderr);

    const server = await spawnManaged({ name: 'tollgate-image', command: process.execPath, args: [...entry.slice(1), 'serve', '--config', config], cwd: app, logFile: path.join(app, 'serve.log') });
    try {
      await server.waitForLog(/tollgate listening/, 30_000);
      const check = JSON.parse(one('HEALTHCHECK').replace(/^.*?CMD /, '')) as string[];
      assert.equal(check[0], 'node');
      const healthy = await runCommand(process.execPath, check.slice(1).map((a) => a.replace(':9901/', `:${adminPort}/`)), { timeoutMs: 30_000 });
      assert.equal(healthy.code, 0, `health check failed: ${healthy.stderr}`);
    } finally {
      await server.stop();
    }
    // And it fails when nothing answers, so it can tell.
    const check = JSON.parse(one('HEALTHCHECK').replace(/^.*?CMD /, '')) as string[];
    const down = await runCommand(process.execPath, check.slice(1).map((a) => a.replace(':9901/', `:${adminPort}/`)), { timeoutMs: 30_000 });
    assert.equal(down.code, 1);
  } finally {
    fs.rmSync(app, { recursive: true, force: true });
  }
});

const docker = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 20_000 });
const dockerSkip = docker.error !== undefined ? `docker is not installed (${(docker.error as NodeJS.ErrnoException).code})`
  : docker.status !== 0 ? `no Docker engine answers: ${(docker.stderr || docker.stdout).trim().split('\n').pop()}` : false;

test('docker build produces an image whose user and command are the Dockerfile\'s', { skip: dockerSkip, timeout: 900_000 }, async () => {
  const tag = `tollgate:${pkg.version}-test`;
  const built = await runCommand('docker', ['build', '-t', tag, REPO_ROOT], { timeoutMs: 900_000 });
  assert.equal(built.code, 0, built.stderr.slice(-3000));
  const inspect = await runCommand('docker', ['image', 'inspect', tag, '--format', '{{json .Config}}']);
  const cfg = JSON.parse(inspect.stdout) as { User: string; Entrypoint: string[]; Cmd: string[]; Healthcheck: { Test: string[] } };
  assert.equal(cfg.User, one('USER'));
  assert.deepEqual(cfg.Entrypoint, execForm('ENTRYPOINT'));
  assert.deepEqual(cfg.Cmd, execForm('CMD'));
  assert.equal(cfg.Healthcheck.Test[0], 'CMD');
  const version = await runCommand('docker', ['run', '--rm', '--read-only', '--entrypoint', 'node', tag, '--version']);
  assert.match(version.stdout, /^v24\./);
});
