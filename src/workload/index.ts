// The factory the CLI calls when a run needs workload names; light to import (node:fs/promises and this folder only).
import { realFiles, type WorkloadFiles } from './files.js';
import { WorkloadResolver, type Timers } from './resolver.js';

export type { Workload, WorkloadNames } from './types.js';
export type { WorkloadFiles } from './files.js';
export type { Timers } from './resolver.js';
export { WorkloadResolver } from './resolver.js';

export interface WorkloadNamesOptions {
  /** The file-read seam; the real filesystem by default. */
  files?: WorkloadFiles;
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
  return new WorkloadResolver({
    files: options.files ?? realFiles,
    now: options.now ?? Date.now,
    timers: options.timers ?? realTimers,
    maxNamespaces: options.maxNamespaces ?? 4096,
    scanIntervalMs: options.scanIntervalMs ?? 1000,
    recheckMs: options.recheckMs ?? 1000,
    retryMs: options.retryMs ?? 10_000,
  });
}
