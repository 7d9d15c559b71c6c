// The factory the CLI calls when a run needs workload names; light to import (node:fs/promises and this folder only).
import { CgroupResolver } from './cgroups.js';
import { realCgroupTree, realFiles, type CgroupTreeFiles, type WorkloadFiles } from './files.js';
import { WorkloadResolver, type Timers } from './resolver.js';

export type { CgroupWorkload, Workload, WorkloadNames } from './types.js';
export type { CgroupTreeFiles, WorkloadFiles } from './files.js';
export type { Timers } from './resolver.js';
export { WorkloadResolver } from './resolver.js';

export interface WorkloadNamesOptions {
  /** The file-read seam; the real filesystem by default. */
  files?: WorkloadFiles;
  /** The cgroup v2 hierarchy's reads; the real one with the real files, none (every cgroup unknown) with others. */
  cgroupTree?: CgroupTreeFiles;
  /** Cgroups kept (16384). */
  maxCgroups?: number;
  /** Milliseconds, monotonic or not; Date.now by default. */
  now?: () => number;
  /** setTimeout/clearTimeout; the real ones, unref'd so resolution never keeps a process alive, by default. */
  timers?: Timers;
  /** Namespaces kept (4096). */
  maxNamespaces?: number;
  /** At most one scan per this many ms (1000). */
  scanIntervalMs?: number;
  /** Names in use are re-checked this often (1000 ms); a recycled inode loses its old name within 1.5 of these. */
  recheckMs?: number;
  /** An inode no scan found may ask again after this long (10000 ms). */
  retryMs?: number;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Starts resolving at once (a first scan names the host and what runs now); `close()` stops its timers. */
export function createWorkloadNames(options: WorkloadNamesOptions = {}): WorkloadResolver {
  const files = options.files ?? realFiles;
  const now = options.now ?? Date.now;
  const timers = options.timers ?? realTimers;
  const tree = options.cgroupTree ?? (files === realFiles ? realCgroupTree : null);
  const cgroups =
    tree === null
      ? undefined
      : new CgroupResolver({
          tree,
          files,
          now,
          timers,
          maxCgroups: options.maxCgroups ?? 16_384,
          walkIntervalMs: options.scanIntervalMs ?? 1000,
          retryMs: options.retryMs ?? 10_000,
        });
  return new WorkloadResolver({
    files,
    now,
    timers,
    ...(cgroups ? { cgroups } : {}),
    maxNamespaces: options.maxNamespaces ?? 4096,
    scanIntervalMs: options.scanIntervalMs ?? 1000,
    recheckMs: options.recheckMs ?? 1000,
    retryMs: options.retryMs ?? 10_000,
  });
}
