/**
 * The process harness on small Node children: readiness from the log, failures that quote the log, stop escalation,
 * and no child left behind when its parent goes away.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { isProcessAlive, runChecked, runCommand, spawnManaged } from '../../scripts/lib/process.ts';
import type { ManagedProcess } from '../../scripts/lib/process.ts';
import { freePort, freePorts } from '../../scripts/lib/ports.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-process-test-'));
const started: ManagedProcess[] = [];
after(async () => {
  await Promise.all(started.map((child) => child.stop(1_000)));
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A Node child running `script`, logging to its own file. */
async function nodeChild(name: string, script: string): Promise<ManagedProcess> {
  const child = await spawnManaged({ name, command: process.execPath, args: ['-e', script], logFile: path.join(tmp, `${name}.log`) });
  started.push(child);
  return child;
}

/** Poll until `pid` is gone; the bound only turns a leak into a failure instead of a hang. */
async function waitUntilGone(pid: number, boundMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

test('waitForLog resolves with the first matching line, stdout and stderr alike', async () => {
  const child = await nodeChild('ready', `
    console.log('starting');
    setTimeout(() => console.error('listening on port 4242'), 50);
    setInterval(() => {}, 1000);
  `);
  const line = await child.waitForLog(/listening on port (\d+)/g, 20_000);
  assert.equal(line, 'listening on port 4242');
  // Matching starts at the beginning of the log, so an earlier line is found again.
  assert.equal(await child.waitForLog(/^starting$/, 20_000), 'starting');
  const exit = await child.stop();
  assert.equal(exit.signal, 'SIGTERM');
  assert.equal(isProcessAlive(child.pid), false);
  assert.deepEqual(await child.stop(), exit, 'a second stop returns the same exit');
});

test('waitForLog rejects quoting the log when the child exits first', async () => {
  const child = await nodeChild('crash', `console.log('loading config'); console.error('fatal: bad config'); process.exit(3);`);
  await assert.rejects(child.waitForLog(/ready/, 60_000), (err: Error) => {
    assert.match(err.message, /crash \(pid \d+\) exited with code 3 before logging a line matching \/ready\//);
    assert.match(err.message, /fatal: bad config/);
    assert.match(err.message, new RegExp(`last 40 lines of ${child.logFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    return true;
  });
});

test('waitForLog rejects quoting the last 40 lines on timeout', async () => {
  const child = await nodeChild('chatty', `
    for (let i = 1; i <= 100; i++) console.log('noise ' + i);
    console.log('done talking');
    setInterval(() => {}, 1000);
  `);
  await child.waitForLog(/done talking/, 20_000);
  await assert.rejects(child.waitForLog(/never printed/, 200), (err: Error) => {
    assert.match(err.message, /did not log a line matching \/never printed\/ within 200 ms/);
    assert.match(err.message, /noise 100\ndone talking$/);
    assert.doesNotMatch(err.message, /noise 60\n/, 'only the tail is quoted');
    return true;
  });
});

test('stop escalates to SIGKILL when the child ignores SIGTERM', async () => {
  const child = await nodeChild('stubborn', `
    process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
    console.log('armed');
    setInterval(() => {}, 1000);
  `);
  await child.waitForLog(/armed/, 20_000);
  const exit = await child.stop(300);
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(isProcessAlive(child.pid), false);
});

test('spawnManaged rejects clearly when the command does not exist', async () => {
  await assert.rejects(
    spawnManaged({ name: 'ghost', command: 'no-such-binary-tollgate', args: [], logFile: path.join(tmp, 'ghost.log') }),
    /could not start "no-such-binary-tollgate".*installed and on PATH/,
  );
});

/** A parent process that starts a managed sleeper, reports its pid, then does what `ending` says. */
function parentScript(ending: string): string {
  const processModule = pathToFileURL(path.resolve(import.meta.dirname, '../../scripts/lib/process.ts')).href;
  return `
    import { spawnManaged } from ${JSON.stringify(processModule)};
    const child = await spawnManaged({ name: 'sleeper', command: process.execPath,
      args: ['-e', 'setInterval(() => {}, 1000)'], logFile: ${JSON.stringify(path.join(tmp, 'sleeper.log'))} });
    console.log('child ' + child.pid);
    ${ending}
  `;
}

async function runParent(ending: string, onChildPid: (pid: number, parent: ReturnType<typeof spawn>) => void): Promise<{ childPid: number; code: number | null; signal: NodeJS.Signals | null }> {
  const parent = spawn(process.execPath, ['--input-type=module', '-e', parentScript(ending)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let childPid = 0;
  let out = '';
  parent.stdout.setEncoding('utf8');
  parent.stdout.on('data', (chunk: string) => {
    out += chunk;
    const match = /child (\d+)/.exec(out);
    if (match && childPid === 0) {
      childPid = Number(match[1]);
      onChildPid(childPid, parent);
    }
  });
  const [code, signal] = (await new Promise((resolve) => parent.once('exit', (...args) => resolve(args)))) as [number | null, NodeJS.Signals | null];
  return { childPid, code, signal };
}

test('children are killed when the parent exits without stopping them', async () => {
  const result = await runParent('process.exit(0);', () => {});
  assert.equal(result.code, 0);
  assert.ok(result.childPid > 0, 'the parent reported its child');
  assert.ok(await waitUntilGone(result.childPid), `child ${result.childPid} outlived its parent`);
});

test('a SIGTERM to the parent reaches the children and still ends the parent', async () => {
  const result = await runParent('setInterval(() => {}, 1000);', (_pid, parent) => parent.kill('SIGTERM'));
  assert.equal(result.signal, 'SIGTERM', 'the parent died of the signal as it would have without the harness');
  assert.ok(await waitUntilGone(result.childPid), `child ${result.childPid} outlived its parent`);
});

test('runCommand returns output and status; runChecked names the step and quotes the output', async () => {
  const ok = await runCommand(process.execPath, ['-e', 'process.stdin.pipe(process.stdout)'], { input: 'echo me' });
  assert.equal(ok.code, 0);
  assert.equal(ok.stdout, 'echo me');
  await assert.rejects(
    runChecked('compile widgets', process.execPath, ['-e', 'console.error("widget 7 is broken"); process.exit(2)']),
    (err: Error) => {
      assert.match(err.message, /^compile widgets failed: `.+` exited with code 2/);
      assert.match(err.message, /widget 7 is broken/);
      return true;
    },
  );
  await assert.rejects(runCommand(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { timeoutMs: 200 }), /did not finish within 200 ms/);
});

test('freePorts gives distinct ports that can be bound on 127.0.0.1', async () => {
  const ports = await freePorts(4);
  assert.equal(new Set(ports).size, 4);
  const one = await freePort();
  for (const port of [...ports, one]) {
    assert.ok(Number.isInteger(port) && port > 0 && port < 65536);
  }
  const net = await import('node:net');
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer().once('error', reject).listen(one, '127.0.0.1', () => server.close(() => resolve()));
  });
});
