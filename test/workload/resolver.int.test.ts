// The resolver on the real kernel: an ip netns, a hand-made Kubernetes node layout, and a real Podman container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWorkloadNames, type Workload, type WorkloadNames } from '../../src/workload/index.js';
import { canRunKernelTests } from '../helpers/kernel.js';
import { KubePod, netnsInode, sleeper, stopChild, type CgroupDriver } from '../helpers/kube.js';
import { canRunPodman, PodmanContainer } from '../helpers/podman.js';
import { ManualTimers } from './scripted.js';

const skip = canRunKernelTests();

const netnsFileInode = (name: string): number =>
  Number(execFileSync('stat', ['-L', '-c', '%i', `/run/netns/${name}`], { encoding: 'utf8' }).trim());

/** Asks until `ready` holds or a generous deadline passes (the deadline only bounds a failing test). */
async function waitFor(names: WorkloadNames, netns: number, ready: (w: Workload) => boolean): Promise<Workload> {
  const end = Date.now() + 20_000;
  for (;;) {
    const w = names.lookup(netns);
    if (ready(w) || Date.now() > end) return w;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test(
  'an ip netns: named by its ip-netns name and inode, and the host namespace (this test runs in it) as host',
  { skip },
  async () => {
    const name = `dwtest-${randomBytes(4).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', name]);
    const names = createWorkloadNames();
    let child: ChildProcess | null = null;
    try {
      const started = await sleeper(['ip', 'netns', 'exec', name, 'sleep', '1000'], false);
      child = started.child;
      assert.equal(started.netns, netnsFileInode(name));
      const w = await waitFor(names, started.netns, (w) => w.netnsName !== null);
      assert.deepEqual(w, {
        netns: netnsFileInode(name),
        netnsName: name,
        container: null,
        containerName: null,
        pod: null,
        podUid: null,
      });
      const host = netnsInode('/proc/self/ns/net');
      assert.equal((await waitFor(names, host, (w) => w.netnsName !== null)).netnsName, 'host');
    } finally {
      names.close();
      if (child) await stopChild(child);
      execFileSync('ip', ['netns', 'del', name]);
    }
  },
);

test(
  'a recycled inode on the real kernel: a re-added namespace is never shown under the old name',
  { skip },
  async () => {
    const [a, b] = ['a', 'b'].map((s) => `dwtest-${s}-${randomBytes(4).toString('hex')}`) as [string, string];
    execFileSync('ip', ['netns', 'add', a]);
    const timers = new ManualTimers();
    const names = createWorkloadNames({ timers, now: timers.now });
    const step = async (ms: number): Promise<void> => {
      timers.advance(ms);
      await names.settled();
    };
    try {
      const ino = netnsFileInode(a);
      names.lookup(ino);
      await step(0);
      assert.equal(names.lookup(ino).netnsName, a);
      execFileSync('ip', ['netns', 'del', a]);
      execFileSync('ip', ['netns', 'add', b]);
      const reused = netnsFileInode(b) === ino;
      await step(1000);
      assert.notEqual(names.lookup(ino).netnsName, a, 'the re-check drops the name of a namespace that is gone');
      await step(1000);
      const now = names.lookup(netnsFileInode(b));
      assert.equal(now.netnsName, b, reused ? 'the reused inode named anew' : 'the new namespace named');
    } finally {
      names.close();
      for (const n of [a, b]) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    }
  },
);

/** The names the resolver finds for a pod made by KubePod, its namespace's inode left out. */
async function kubeNames(driver: CgroupDriver): Promise<{ pod: KubePod; w: Workload }> {
  const pod = await KubePod.start(driver);
  const names = createWorkloadNames();
  try {
    const w = await waitFor(names, pod.netns, (w) => w.pod !== null);
    assert.equal(w.netns, pod.netns);
    return { pod, w: { ...w, netns: 0 } };
  } finally {
    names.close();
    await pod.remove();
  }
}

test('a Kubernetes node layout, systemd driver: pod NS/NAME, container name and ID', { skip }, async () => {
  const { pod, w } = await kubeNames('systemd');
  assert.deepEqual(w, {
    netns: 0,
    netnsName: null,
    container: pod.id,
    containerName: 'cart',
    pod: pod.pod,
    podUid: pod.uid,
  });
});

test(
  'a Kubernetes node layout, cgroupfs driver (/kubepods/<qos>/pod<uid>/<id>): the same names',
  { skip },
  async () => {
    const { pod, w } = await kubeNames('cgroupfs');
    assert.deepEqual(w, {
      netns: 0,
      netnsName: null,
      container: pod.id,
      containerName: 'cart',
      pod: pod.pod,
      podUid: pod.uid,
    });
  },
);

const noPodman = skip || canRunPodman();
test('a real Podman container (--network none): its podman name and full ID', { skip: noPodman }, async () => {
  const container = new PodmanContainer();
  const names = createWorkloadNames();
  try {
    const w = await waitFor(names, container.netns, (w) => w.containerName !== null);
    assert.deepEqual(w, {
      netns: container.netns,
      netnsName: null,
      container: container.id,
      containerName: container.name,
      pod: null,
      podUid: null,
    });
    assert.match(container.id, /^[0-9a-f]{64}$/);
  } finally {
    names.close();
    container.remove();
  }
});
