// A thousand network namespaces made and removed during a flood, under the built CLI on the bpf source: every drop in
// them counted, memory bounded, and a recycled inode never shown with the name of the namespace that had it before.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { canRunKernelTests } from '../helpers/kernel.js';
import { CliRun } from '../helpers/cli.js';
import { Netns } from '../helpers/netns.js';
import { staticSender } from '../helpers/podman.js';

const skip = canRunKernelTests();
const NAMED = 50;
const ANONYMOUS = 1000;
const EACH = 3;
const FLOOD = 200_000;

interface Place {
  netns: number | null;
  netnsName: string | null;
  count: number;
}
interface Summary {
  type: string;
  time: string;
  symbol: string | null;
  reason: string | null;
  places?: Place[];
}

/** Runs a bash script; resolves with its stdout (one inode per namespace it made). */
function bash(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-euc', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`script exited ${code}: ${err}`))));
  });
}

const inodes = (out: string): Set<number> => new Set(out.split('\n').filter(Boolean).map(Number));

/** Peak resident memory of a process, in KiB. */
const peakKiB = (pid: number): number =>
  Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

describe('namespaces made and removed during a flood', { skip }, () => {
  const tag = randomBytes(3).toString('hex');
  let sender: ReturnType<typeof staticSender>;
  let flood: Netns;

  before(() => {
    sender = staticSender();
    flood = new Netns();
  });
  after(() => {
    sender?.remove();
    flood?.delete();
    // The test removes them; a failed run may not have.
    spawn('bash', ['-c', `for i in $(seq 0 ${NAMED - 1}); do ip netns del dwc${tag}$i 2>/dev/null; done; true`]);
  });

  test(`${NAMED} named, then ${ANONYMOUS} anonymous: counts exact, no stale name, memory bounded`, async () => {
    const run = new CliRun(['-b', 'bpf', '-s', '-f', 'json']);
    await run.monitoring(20_000);
    // Named namespaces, alive long enough for the resolver to name them, then removed.
    const named = inodes(
      await bash(
        `for i in $(seq 0 ${NAMED - 1}); do n=dwc${tag}$i; ip netns add $n; ip -n $n link set lo up; ` +
          `stat -L -c %i /run/netns/$n; ip netns exec $n ${sender.path} 127.0.0.1 9 ${EACH}; done`,
      ),
    );
    await sleep(2500);
    await bash(`for i in $(seq 0 ${NAMED - 1}); do ip netns del dwc${tag}$i; done`);
    // Past the resolver's re-check window: from here on, no line may carry those names.
    await sleep(2500);
    const anonymousFrom = Date.now();
    const flooding = flood.sendUdp('127.0.0.1', FLOOD);
    const anonymous = inodes(
      await bash(
        `for i in $(seq 1 ${ANONYMOUS}); do unshare -n sh -c ` +
          `'ip link set lo up; stat -L -c %i /proc/self/ns/net; ${sender.path} 127.0.0.1 9 ${EACH}'; done`,
      ),
    );
    await flooding;
    await sleep(2000);
    const peak = peakKiB(run.child.pid!);
    run.kill('SIGINT');
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);

    let ours = 0;
    let flooded = 0;
    const namesSeen = new Set<string>();
    const stale: string[] = [];
    for (const line of done.stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const e = JSON.parse(line) as Summary;
      if (e.type !== 'summary' || e.symbol !== '__udp4_lib_rcv' || e.reason !== 'NO_SOCKET') continue;
      for (const p of e.places ?? []) {
        if (p.netns === flood.inode) flooded += p.count;
        else if (p.netns !== null && (named.has(p.netns) || anonymous.has(p.netns))) ours += p.count;
        if (p.netnsName?.startsWith(`dwc${tag}`)) {
          namesSeen.add(p.netnsName);
          if (Date.parse(e.time) >= anonymousFrom) stale.push(`${e.time} ${p.netns} ${p.netnsName}`);
        }
      }
    }
    assert.equal(flooded, FLOOD, 'every drop of the flood');
    assert.equal(ours, (NAMED + ANONYMOUS) * EACH, 'every drop in the namespaces made and removed');
    assert.ok(namesSeen.size > 0, 'the named namespaces were named while they lived');
    const recycled = [...anonymous].filter((i) => named.has(i)).length;
    assert.ok(recycled > 0, 'the kernel gave a removed namespace inode to a new one');
    assert.deepEqual(stale, [], 'no name of a removed namespace on a recycled inode');
    assert.ok(peak < 256 * 1024, `peak RSS ${peak} KiB`);
  });
});
