// A Kubernetes node's layout without Kubernetes: a pod's cgroup, a process in it in its own netns, the CRI bundle.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { dirname } from 'node:path';
import { fixturePath } from './paths.js';
import { integrationOnly } from './suite.js';

integrationOnly('test/helpers/kube.ts (cgroups, network namespaces, root)');

const PIDS = '/sys/fs/cgroup/pids';
/** Where containerd's CRI plugin keeps a container's OCI bundle. */
const TASKS = '/run/containerd/io.containerd.runtime.v2.task/k8s.io';

/** The network namespace inode of a process, from its /proc/PID/ns/net link. */
export const netnsInode = (path: string): number => Number(/net:\[(\d+)\]/.exec(readlinkSync(path))![1]);

/** Starts a long sleep by `argv`, and the inode of the namespace it ends up in once it has. */
export async function sleeper(
  argv: string[],
  expectHostNetns: boolean,
): Promise<{ child: ChildProcess; netns: number }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  const host = netnsInode('/proc/self/ns/net');
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
      const netns = netnsInode(`/proc/${child.pid}/ns/net`);
      if (expectHostNetns || netns !== host) return { child, netns };
    }
    if (Date.now() > end) {
      await stopChild(child);
      throw new Error(`${argv.join(' ')} did not start`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Kills a child and waits for it to be gone. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** How the kubelet names a pod's cgroup folders. */
export type CgroupDriver = 'systemd' | 'cgroupfs';

/** The cgroup path of a besteffort pod's container under the driver's layout. */
export function kubeCgroupPath(driver: CgroupDriver, uid: string, id: string): string[] {
  if (driver === 'cgroupfs') return ['kubepods', 'besteffort', `pod${uid}`, id];
  const pod = `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`;
  return ['kubepods.slice', 'kubepods-besteffort.slice', pod, `cri-containerd-${id}.scope`];
}

/**
 * The container `cart` of a pod `shop/cart-<random>` (test/fixtures/workload/cri-containerd-config.json, its pod name
 * and UID made unique): a `sleep` in the pod's cgroup (the pids hierarchy) and in a network namespace of its own with
 * lo up, and its OCI bundle's config.json where containerd's CRI plugin keeps it. `remove()` (or the test process's
 * exit) undoes it all.
 */
export class KubePod {
  /** The container's name in the pod spec. */
  readonly containerName = 'cart';
  /** The pod's `namespace/name`. */
  readonly pod = `shop/cart-${randomBytes(3).toString('hex')}`;
  /** The container's full ID. */
  readonly id = randomBytes(32).toString('hex');
  /** The pod's UID. */
  readonly uid = randomUUID();
  private readonly created: string[] = [];
  private made: string | null = null;
  private child: ChildProcess | null = null;
  private netnsInode = 0;
  private removed = false;

  private constructor(readonly driver: CgroupDriver) {}

  /** Makes the layout and starts its process; resolves once the process is in its own namespace. */
  static async start(driver: CgroupDriver = 'systemd'): Promise<KubePod> {
    const pod = new KubePod(driver);
    process.once('exit', () => pod.removeNow());
    try {
      await pod.setUp();
    } catch (err) {
      pod.removeNow();
      throw err;
    }
    return pod;
  }

  /** The sleep's pid on the host. */
  get pid(): number {
    return this.child!.pid!;
  }

  /** Its network namespace's inode. */
  get netns(): number {
    return this.netnsInode;
  }

  private async setUp(): Promise<void> {
    let dir = PIDS;
    for (const part of kubeCgroupPath(this.driver, this.uid, this.id)) {
      dir = `${dir}/${part}`;
      if (!existsSync(dir)) {
        mkdirSync(dir);
        this.created.push(dir);
      }
    }
    const bundle = `${TASKS}/${this.id}`;
    // Remove afterwards only what this made: the first folder on the way that was not there.
    let made = bundle;
    for (let up = bundle; !existsSync(up); up = dirname(up)) made = up;
    this.made = made;
    mkdirSync(bundle, { recursive: true });
    const config = JSON.parse(readFileSync(fixturePath('workload', 'cri-containerd-config.json'), 'utf8')) as {
      annotations: Record<string, string>;
    };
    config.annotations['io.kubernetes.cri.sandbox-uid'] = this.uid;
    config.annotations['io.kubernetes.cri.sandbox-name'] = this.pod.split('/')[1]!;
    writeFileSync(`${bundle}/config.json`, JSON.stringify(config));
    // Join the cgroup first, then the namespace: `ip netns exec` would hide /sys/fs/cgroup. lo up, for drops on it.
    const script = `echo $$ > ${dir}/cgroup.procs && exec unshare -n sh -c 'ip link set lo up && exec sleep 100000'`;
    const started = await sleeper(['sh', '-c', script], false);
    this.child = started.child;
    this.netnsInode = started.netns;
  }

  /** Sends n datagrams to a closed UDP port on the pod's loopback: n drops in its namespace. */
  sendUdp(n: number): Promise<void> {
    const code =
      `const s=require('dgram').createSocket('udp4');let i=0;` +
      `(function f(e){if(e)throw e;if(i++>=${n})return s.close();s.send('drop',9,'127.0.0.1',f)})()`;
    return new Promise((resolve, reject) => {
      const child = spawn('nsenter', ['-t', String(this.pid), '-n', process.execPath, '-e', code], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`sender exited ${c}: ${err}`))));
    });
  }

  async remove(): Promise<void> {
    if (this.child) await stopChild(this.child);
    this.removeNow();
  }

  /** Synchronous, for the exit handler: the process killed, the bundle and the cgroup folders gone. */
  private removeNow(): void {
    if (this.removed) return;
    this.removed = true;
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      // A cgroup folder can be removed only once its last process has gone.
      for (let i = 0; i < 200 && existsSync(`/proc/${this.child.pid}`) && !hasExited(this.child.pid!); i++)
        execFileSync('sleep', ['0.01']);
    }
    if (this.made) rmSync(this.made, { recursive: true, force: true });
    for (const d of [...this.created].reverse())
      try {
        rmdirSync(d);
      } catch {
        // Still busy or already gone: left for the next run's reuse, never a failure of the test.
      }
  }
}

/** Whether the pid has exited (a zombie has: it no longer counts in its cgroup). */
function hasExited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}
