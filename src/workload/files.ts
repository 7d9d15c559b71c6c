// The file reads resolution makes, as a seam: the real filesystem here, a scripted /proc in unit tests.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** The reads a lookup makes at once to re-check one name: a link, a small file, a stat. */
export interface WorkloadReadsNow {
  readFile(path: string): string;
  readlink(path: string): string;
  inode(path: string): number;
}

export interface WorkloadFiles {
  readonly now: WorkloadReadsNow;
  readFile(path: string): Promise<string>;
  readlink(path: string): Promise<string>;
  readdir(path: string): Promise<string[]>;
  /** The inode of what `path` names, following links (`stat -L -c %i`). */
  inode(path: string): Promise<number>;
}

/** How long reads may hold the event loop before letting it run (drops, timers) again. */
const SLICE_MS = 2;
let sliceStart = 0;
/** One pause shared by every read waiting, so readers resumed together share one slice rather than one each. */
let pause: Promise<void> | null = null;

async function paced<T>(read: () => T): Promise<T> {
  if (performance.now() - sliceStart > SLICE_MS) {
    pause ??= new Promise((resolve) =>
      setImmediate(() => {
        pause = null;
        sliceStart = performance.now();
        resolve();
      }),
    );
    await pause;
  }
  return read();
}

// Synchronous reads in short slices: /proc and /run are in memory, and a thread-pool round trip per tiny read costs
// many times the read itself.
export const realFiles: WorkloadFiles = {
  now: {
    readFile: (path) => readFileSync(path, 'utf8'),
    readlink: (path) => readlinkSync(path),
    inode: (path) => statSync(path).ino,
  },
  readFile: (path) => paced(() => readFileSync(path, 'utf8')),
  readlink: (path) => paced(() => readlinkSync(path)),
  readdir: (path) => paced(() => readdirSync(path)),
  inode: (path) => paced(() => statSync(path).ino),
};

/** The reads of a walk over the cgroup v2 hierarchy. */
export interface CgroupTreeFiles {
  readFile(path: string): Promise<string>;
  /** The names of the directories right under `path` (a cgroup's children). */
  subdirs(path: string): Promise<string[]>;
  inode(path: string): Promise<number>;
}

export const realCgroupTree: CgroupTreeFiles = {
  readFile: (path) => paced(() => readFileSync(path, 'utf8')),
  subdirs: (path) =>
    paced(() =>
      readdirSync(path, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name),
    ),
  inode: (path) => paced(() => statSync(path).ino),
};

/** Where the kernel and the runtimes keep what resolution reads. */
export const PATHS = {
  proc: '/proc',
  mountinfo: '/proc/self/mountinfo',
  netns: '/run/netns',
  containerdTasks: '/run/containerd/io.containerd.runtime.v2.task',
  /** containers/storage (Podman, CRI-O): the run root first, then the persistent root. */
  storage: ['/run/containers/storage', '/var/lib/containers/storage'],
  storageDrivers: ['overlay', 'vfs'],
  docker: '/var/lib/docker/containers',
} as const;

/** The value, or null when the read failed: processes exit mid-scan (ENOENT, ESRCH) and some files are unreadable. */
export async function attempt<T>(read: () => Promise<T>): Promise<T | null> {
  try {
    return await read();
  } catch {
    return null;
  }
}

/** The value, or null when the read failed (as `attempt`, for the reads made at once). */
export function attemptNow<T>(read: () => T): T | null {
  try {
    return read();
  } catch {
    return null;
  }
}

/** Runs `work` over `items` with at most `limit` at once, so a scan of thousands of processes stays a trickle. */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
