// Drops inside a real Podman container, named by the built CLI on the bpf source: JSON places carry its name, full ID
// and netns inode; `--filter 'container == NAME'` keeps only its drops; text `--by container` names it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
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
});
