// Drops inside a real Podman container, named by the built CLI on the bpf source: JSON places carry its name, full ID
// and netns inode; `--filter 'container == NAME'` keeps only its drops; text `--by container` names it; packet blocks
// have a `workload:` line naming it, and the host's blocks none.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { canRunKernelTests } from '../helpers/kernel.js';
import { canRunPodman, PodmanContainer } from '../helpers/podman.js';
import { Netns } from '../helpers/netns.js';
import { CliRun } from '../helpers/cli.js';

const skip = canRunKernelTests() || canRunPodman();

interface Place {
  netns: number | null;
  netnsName: string | null;
  container: string | null;
  containerName: string | null;
  count: number;
}

/** Every place of every JSON summary line. */
function places(stdout: string): Place[] {
  const out: Place[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const ev = JSON.parse(line) as { type: string; places?: Place[] };
    if (ev.type === 'summary') out.push(...(ev.places ?? []));
  }
  return out;
}

/** Sum of `N drops · container X` lines whose container part is exactly `label`. */
function byContainer(stdout: string, label: string): number {
  let sum = 0;
  for (const line of stdout.split('\n')) {
    const m = /^(\d+) drops · container (.+)$/.exec(line);
    if (m && m[2] === label) sum += Number(m[1]);
  }
  return sum;
}

/** Text packet blocks: the lines of each, split on the blank line that ends it. */
const blocks = (stdout: string): string[][] =>
  stdout
    .split('\n\n')
    .map((b) => b.split('\n').filter(Boolean))
    .filter((b) => b.some((l) => l.startsWith('drop at: ')));

/** Sends n datagrams from `port` to a closed UDP port on the host's loopback, from a process of its own. */
async function hostUdp(n: number, port: number): Promise<void> {
  const code =
    `const s=require('dgram').createSocket('udp4');let i=0;s.bind(${port},'127.0.0.1',()=>` +
    `(function f(e){if(e)throw e;if(i++>=${n})return s.close();s.send('drop',9,'127.0.0.1',f)})())`;
  const child = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  const [status] = (await once(child, 'exit')) as [number | null];
  assert.equal(status, 0);
}

describe('containers named on the bpf source', { skip }, () => {
  let box: PodmanContainer;
  let other: Netns;

  before(() => {
    box = new PodmanContainer({ prefix: 'dwproof' });
    other = new Netns();
  });
  after(() => {
    box?.remove();
    other?.delete();
  });

  test('JSON places, a container filter and --by container: the container counted apart from another namespace', async () => {
    const [n, m] = [300, 200];
    const inode = Number(execFileSync('stat', ['-L', '-c', '%i', `/proc/${box.pid}/ns/net`], { encoding: 'utf8' }));
    assert.equal(inode, box.netns);
    const json = new CliRun(['-b', 'bpf', '-s', '-f', 'json']);
    const only = new CliRun(['-b', 'bpf', '-s', '-f', 'json', '--filter', `container == ${box.name}`]);
    const wrong = new CliRun(['-b', 'bpf', '-s', '-f', 'json', '--filter', `container == ${box.name}-nope`]);
    const text = new CliRun(['-b', 'bpf', '-s', '--by', 'container']);
    const runs = [json, only, wrong, text];
    await Promise.all(runs.map((r) => r.monitoring()));
    await Promise.all([Promise.resolve().then(() => box.sendUdp(n)), other.sendUdp('127.0.0.1', m)]);
    await sleep(1500);
    for (const r of runs) r.kill('SIGINT');
    const [j, o, w, t] = await Promise.all([json.done, only.done, wrong.done, text.done]);

    const mine = places(j.stdout).filter((p) => p.netns === inode);
    assert.ok(mine.length > 0, j.stdout + j.stderr);
    for (const p of mine) {
      assert.equal(p.containerName, box.name);
      assert.equal(p.container, box.id);
    }
    assert.ok(mine.reduce((s, p) => s + p.count, 0) >= n);
    const otherInode = other.inode;
    assert.ok(
      places(j.stdout).some((p) => p.netns === otherInode && p.container === null),
      j.stdout,
    );
    for (const p of places(j.stdout)) if (p.netnsName === 'host') assert.equal(p.container, null);

    const kept = places(o.stdout);
    assert.ok(kept.length > 0, o.stdout + o.stderr);
    for (const p of kept) assert.equal(p.netns, inode, JSON.stringify(p));
    assert.ok(kept.reduce((s, p) => s + p.count, 0) >= n);
    assert.equal(places(w.stdout).length, 0, w.stdout);

    assert.ok(byContainer(t.stdout, `${box.name} (${box.id.slice(0, 12)})`) >= n, t.stdout + t.stderr);
  });

  test('packet mode text: the container’s blocks carry a workload line naming it, the host’s none', async () => {
    const [n, m] = [100, 20];
    // Only the container's namespace and the host's, kept in the kernel: a flood elsewhere on the machine (another
    // test's namespace) must not fill the packet ring with blocks that are not ours.
    const host = Number(execFileSync('stat', ['-L', '-c', '%i', '/proc/self/ns/net'], { encoding: 'utf8' }));
    const only = `reason == NO_SOCKET && (netns == ${box.netns} || netns == ${host})`;
    const run = new CliRun(['-b', 'bpf', '-s', '-m', 'packet', '--filter', only]);
    await run.monitoring();
    // The names come from a scan beside the event path: until it has named the container, its blocks say its
    // namespace alone. One datagram at a time until a block names it; the n counted are sent after that.
    const named = `workload: container ${box.name} (${box.id.slice(0, 12)}) netns ${box.netns}`;
    await run.until('a block naming the container', () => {
      if (run.stdout.includes(named)) return true;
      box.sendUdp(1);
      return false;
    });
    await sleep(500);
    const before = run.stdout.length;
    box.sendUdp(n);
    const port = 40000 + Math.floor(Math.random() * 20000);
    await hostUdp(m, port);
    await sleep(1500);
    run.kill('SIGINT');
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);

    const all = blocks(done.stdout.slice(before));
    const ours = all.filter((b) => b.some((l) => l.startsWith('workload: ') && l.includes(` netns ${box.netns}`)));
    assert.equal(ours.length, n, done.stdout.slice(before, before + 4000) + done.stderr);
    for (const b of ours) {
      assert.equal(b.filter((l) => l.startsWith('workload: ')).length, 1);
      assert.ok(b.includes(named), b.join('\n'));
      assert.ok(b.includes('drop reason: NO_SOCKET'), b.join('\n'));
      assert.ok(
        b.some((l) => /^flow: IP 127\.0\.0\.1\.\d+ > 127\.0\.0\.1\.9: UDP, length 4$/.test(l)),
        b.join('\n'),
      );
    }
    // The host's: no workload line; the lines before ours are dropwatch's.
    const onHost = all.filter((b) => b.includes(`flow: IP 127.0.0.1.${port} > 127.0.0.1.9: UDP, length 4`));
    assert.equal(onHost.length, m, done.stdout.slice(before, before + 4000));
    for (const b of onHost) {
      assert.ok(!b.some((l) => l.startsWith('workload: ')), b.join('\n'));
      assert.match(b[0]!, /^drop at: __udp4_lib_rcv\b/);
    }
  });
});
