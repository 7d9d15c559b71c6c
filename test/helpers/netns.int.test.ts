// The paced UDP sender of test/helpers/netns.ts never outlives the test process that started it: a process that uses
// it is ended by SIGTERM (the exit handlers run: the sender and the namespace go) and by SIGKILL (the sender goes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { canRunKernelTests } from './kernel.js';

const skip = canRunKernelTests();
const helper = new URL('./netns.js', import.meta.url).href;

/** Whether `pid` is still a paced sender (a reused pid would be something else). */
function isSender(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes("require('dgram')");
  } catch {
    return false;
  }
}

/** A test-like process with a namespace and a paced sender in it; its sender's pid and the namespace's name. */
async function userOfHelper(): Promise<{ pid: number; sender: number; ns: string; exit: Promise<unknown[]> }> {
  const script =
    `const { Netns } = await import(${JSON.stringify(helper)});` +
    `const ns = new Netns(); const c = ns.pacedUdp('127.0.0.1', 10);` +
    `console.log(JSON.stringify({ sender: c.pid, ns: ns.name })); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exit = once(child, 'exit');
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const { sender, ns } = JSON.parse(line.toString()) as { sender: number; ns: string };
  // The sender is running once `ip netns exec` has exec'd node with its code.
  const end = Date.now() + 10_000;
  while (!isSender(sender) && Date.now() < end) await sleep(20);
  assert.ok(isSender(sender), 'the sender started');
  return { pid: child.pid!, sender, ns, exit };
}

/** Waits (a deadline bounds only a failing test) for the sender to be gone. */
async function gone(pid: number): Promise<boolean> {
  const end = Date.now() + 10_000;
  while (isSender(pid) && Date.now() < end) await sleep(50);
  return !isSender(pid);
}

test('SIGTERM to a test process: its paced sender and its namespace go with it', { skip }, async () => {
  const { pid, sender, ns, exit } = await userOfHelper();
  try {
    process.kill(pid, 'SIGTERM');
    const [code] = await exit;
    assert.equal(code, 143, 'ended through its exit handlers');
    assert.ok(await gone(sender), `sender ${sender} outlived its test process`);
    assert.ok(!existsSync(`/run/netns/${ns}`), 'the namespace was deleted');
  } finally {
    if (isSender(sender)) process.kill(sender, 'SIGKILL');
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
});

test('SIGKILL to a test process: its paced sender leaves when its stdin closes', { skip }, async () => {
  const { pid, sender, ns, exit } = await userOfHelper();
  try {
    process.kill(pid, 'SIGKILL');
    await exit;
    assert.ok(await gone(sender), `sender ${sender} outlived its test process`);
  } finally {
    if (isSender(sender)) process.kill(sender, 'SIGKILL');
    // No exit handler runs on SIGKILL: the namespace is ours to delete.
    if (existsSync(`/run/netns/${ns}`)) execFileSync('ip', ['netns', 'del', ns]);
  }
});
