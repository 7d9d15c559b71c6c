// The resolver on the real kernel: an ip netns, a hand-made Kubernetes node layout, and a real Podman container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { dirname } from 'node:path';
import { createWorkloadNames, type Workload, type WorkloadNames } from '../../src/workload/index.js';
import { canRunKernelTests } from '../helpers/kernel.js';
import { canRunPodman, PodmanContainer } from '../helpers/podman.js';
import { fixturePath } from '../helpers/paths.js';
import { ManualTimers } from './scripted.js';

const skip = canRunKernelTests();
const PIDS = '/sys/fs/cgroup/pids';
const TASKS = '/run/containerd/io.containerd.runtime.v2.task/k8s.io';

const inodeOf = (path: string): number => Number(/net:\[(\d+)\]/.exec(readlinkSync(path))![1]);
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

/** Starts a long sleep by `argv`, and the inode of the namespace it ends up in once it has. */
async function sleeper(argv: string[], expectHostNetns: boolean): Promise<{ child: ChildProcess; netns: number }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  const host = inodeOf('/proc/self/ns/net');
  const end = Date.now() + 10_000;
  for (;;) {
    // The final program (sleep) has exec'd once its comm says so.
    const comm = (() => {
      try {
        return readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim();
      } catch {
        return '';
      }
    })();
    if (comm === 'sleep') {
      const netns = inodeOf(`/proc/${child.pid}/ns/net`);
      if (expectHostNetns || netns !== host) return { child, netns };
    }
    if (Date.now() > end) {
      await stop(child);
      throw new Error(`${argv.join(' ')} did not start`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
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
      const host = inodeOf('/proc/self/ns/net');
      assert.equal((await waitFor(names, host, (w) => w.netnsName !== null)).netnsName, 'host');
    } finally {
      names.close();
      if (child) await stop(child);
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

/** A Kubernetes node's layout by hand: cgroup folders, a process in them and its own netns, and the CRI bundle. */
async function kubeLayout(cgroupPath: string[], id: string, uid: string): Promise<Workload> {
  const created: string[] = [];
  let dir = PIDS;
  for (const part of cgroupPath) {
    dir = `${dir}/${part}`;
    if (!existsSync(dir)) {
      mkdirSync(dir);
      created.push(dir);
    }
  }
  const bundle = `${TASKS}/${id}`;
  // Remove afterwards only what this made: the first folder on the way that was not there.
  let made = bundle;
  for (let up = bundle; !existsSync(up); up = dirname(up)) made = up;
  mkdirSync(bundle, { recursive: true });
  const config = JSON.parse(readFileSync(fixturePath('workload', 'cri-containerd-config.json'), 'utf8')) as {
    annotations: Record<string, string>;
  };
  config.annotations['io.kubernetes.cri.sandbox-uid'] = uid;
  writeFileSync(`${bundle}/config.json`, JSON.stringify(config));
  const names = createWorkloadNames();
  let child: ChildProcess | null = null;
  try {
    // Join the cgroup first, then the namespace: `ip netns exec` would hide /sys/fs/cgroup.
    const script = `echo $$ > ${dir}/cgroup.procs && exec unshare -n sleep 1000`;
    const started = await sleeper(['sh', '-c', script], false);
    child = started.child;
    return await waitFor(names, started.netns, (w) => w.pod !== null);
  } finally {
    names.close();
    if (child) await stop(child);
    rmSync(made, { recursive: true, force: true });
    for (const d of created.reverse()) rmdirSync(d);
  }
}

test('a Kubernetes node layout, systemd driver: pod NS/NAME, container name and ID', { skip }, async () => {
  const id = randomBytes(32).toString('hex');
  const uid = randomUUID();
  const pod = `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`;
  const path = ['kubepods.slice', 'kubepods-besteffort.slice', pod, `cri-containerd-${id}.scope`];
  const w = await kubeLayout(path, id, uid);
  assert.deepEqual(
    { ...w, netns: 0 },
    {
      netns: 0,
      netnsName: null,
      container: id,
      containerName: 'cart',
      pod: 'shop/cart-7d9f',
      podUid: uid,
    },
  );
});

test(
  'a Kubernetes node layout, cgroupfs driver (/kubepods/<qos>/pod<uid>/<id>): the same names',
  { skip },
  async () => {
    const id = randomBytes(32).toString('hex');
    const uid = randomUUID();
    const w = await kubeLayout(['kubepods', 'besteffort', `pod${uid}`, id], id, uid);
    assert.deepEqual(
      { ...w, netns: 0 },
      {
        netns: 0,
        netnsName: null,
        container: id,
        containerName: 'cart',
        pod: 'shop/cart-7d9f',
        podUid: uid,
      },
    );
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
