// A real Podman container for integration tests: a busybox image made offline once per machine, started by name in its own network namespace.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  copyFileSync,
  existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { integrationOnly } from './suite.js';

integrationOnly('test/helpers/podman.ts (podman, root)');

/** Sends N datagrams to HOST:PORT over UDP (a closed port drops each one at __udp4_lib_rcv, NO_SOCKET). */
const SENDER_C = `#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
  if (argc != 4) return 2;
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) return 2;
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return 1;
  for (long i = 0, n = atol(argv[3]); i < n; i++)
    if (sendto(s, "drop", 4, 0, (struct sockaddr *)&to, sizeof to) < 0 && i == 0) return 1;
  return 0;
}
`;
const BUSYBOX = '/bin/busybox';
/** crun refuses this machine's hybrid cgroup v1 layout, and raising rlimits is not permitted here: runc, fixed limits. */
const RUNTIME = ['--runtime', 'runc'];
const LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

function podman(args: string[]): string {
  return execFileSync('podman', [...RUNTIME, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** Why podman tests cannot run here, or false. */
export function canRunPodman(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (rootful podman)';
  for (const tool of ['podman', 'runc']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      return `needs ${tool} (apt-get install podman runc)`;
    }
  }
  if (compiler() === null) return 'needs gcc-12 and libc6-dev';
  return existsSync(BUSYBOX) ? false : 'needs busybox-static';
}

/** A C compiler: CI installs gcc-12 alone, which brings no plain `gcc`. */
function compiler(): string | null {
  for (const cc of ['gcc', 'gcc-12', 'cc'])
    try {
      execFileSync(cc, ['--version'], { stdio: 'ignore' });
      return cc;
    } catch {
      // Try the next.
    }
  return null;
}

/** The image's name: its tag is a hash of the recipe, so a changed sender or busybox makes a new image. */
export function podmanImage(): string {
  const version = execFileSync(BUSYBOX, ['--help']).subarray(0, 80);
  const recipe = createHash('sha256').update(SENDER_C).update(version);
  const image = `localhost/dwtest-busybox:${recipe.digest('hex').slice(0, 12)}`;
  try {
    podman(['image', 'exists', image]);
  } catch {
    buildImage(image);
  }
  return image;
}

function compileSender(dir: string, out: string): void {
  writeFileSync(join(dir, 'udpsend.c'), SENDER_C);
  execFileSync(compiler() ?? 'gcc', ['-static', '-O2', '-o', out, join(dir, 'udpsend.c')]);
}

/** The static sender (`udpsend HOST PORT N`) built into a fresh directory, for processes a test starts without Node. */
export function staticSender(): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'dwtest-sender-'));
  const path = join(dir, 'udpsend');
  compileSender(dir, path);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A busybox-static rootfs with every applet and the static sender at /bin/udpsend, imported with no registry. */
function buildImage(image: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'dwtest-image-'));
  try {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'bin'), { recursive: true });
    for (const d of ['proc', 'sys', 'dev', 'tmp', 'etc']) mkdirSync(join(root, d));
    copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
    for (const applet of execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n'))
      if (applet !== '' && applet !== 'busybox' && !applet.includes('/'))
        symlinkSync('busybox', join(root, 'bin', applet));
    compileSender(dir, join(root, 'bin', 'udpsend'));
    execFileSync('tar', ['-C', root, '-cf', join(dir, 'rootfs.tar'), '.']);
    podman(['import', join(dir, 'rootfs.tar'), image]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface PodmanOptions {
  /** `none` (default) gives a namespace with lo only; a podman network name gives a veth on that bridge. */
  network?: string;
  /** The name's prefix; a random suffix follows (dwtest). */
  prefix?: string;
}

/** A running container (`sleep` as PID 1) removed by `remove()` or, at the latest, when the test process exits. */
export class PodmanContainer {
  readonly name: string;
  readonly id: string;
  /** Its init process on the host. */
  readonly pid: number;
  /** Its network namespace's inode. */
  readonly netns: number;
  private removed = false;

  constructor(options: PodmanOptions = {}) {
    this.name = `${options.prefix ?? 'dwtest'}-${randomBytes(4).toString('hex')}`;
    const image = podmanImage();
    const network = options.network ?? 'none';
    this.id = podman(['run', '-d', '--name', this.name, '--network', network, ...LIMITS, image, 'sleep', '100000']);
    process.once('exit', () => this.remove());
    try {
      this.pid = Number(podman(['inspect', '-f', '{{.State.Pid}}', this.name]));
      this.netns = Number(/net:\[(\d+)\]/.exec(readlinkSync(`/proc/${this.pid}/ns/net`))![1]);
    } catch (err) {
      this.remove();
      throw err;
    }
  }

  /** Runs a command inside the container; its output. */
  exec(args: string[]): string {
    return podman(['exec', this.name, ...args]);
  }

  /** Sends n datagrams to a closed UDP port on the container's loopback: n drops in its namespace. */
  sendUdp(n: number, host = '127.0.0.1'): void {
    this.exec(['udpsend', host, '9', String(n)]);
  }

  /**
   * About `rate` datagrams a second to a closed UDP port on the container's loopback, from a loop inside it that goes
   * with the container (so it never outlives the test).
   */
  pacedUdp(rate: number): void {
    const perTick = Math.max(1, Math.round(rate / 10));
    podman(['exec', '-d', this.name, 'sh', '-c', `while :; do udpsend 127.0.0.1 9 ${perTick}; sleep 0.1; done`]);
  }

  remove(): void {
    if (this.removed) return;
    this.removed = true;
    try {
      podman(['rm', '-f', '-t', '0', this.name]);
    } catch {
      // Already gone.
    }
  }
}
