// What the `dropwatch` program is given from outside: its streams, environment, signals, clock and timers (seams).
import type { Readable, Writable } from 'node:stream';
import type { Timers } from '../output/stdout.js';
import type { SignalSource } from '../process/signals.js';
import type { WorkloadNames } from '../workload/types.js';

export interface CliIO {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable;
  env: Readonly<Record<string, string | undefined>>;
  signals: SignalSource;
  kallsymsPath?: string;
  /** Wall clock for report times (ms since the epoch); default Date.now. */
  now?: () => number;
  /** For --duration; default the global timers. */
  timers?: Timers;
  /** Runs `fn` if the process exits while the live view holds the terminal; default process 'exit'. */
  onExit?: (fn: () => void) => () => void;
  /**
   * Calls `onGone` when the reader of stdout goes away, even while nothing is written; returns how to stop, or null
   * when stdout is not something a reader can leave (a file, a terminal). Without it, the next write finds out.
   */
  watchStdout?: (onGone: () => void) => (() => void) | null;
  /** Standard output is a pipe (or a socket): reports go out in whole lines of at most PIPE_BUF bytes per write. */
  stdoutIsPipe?: boolean;
  /** Makes the run's names for network namespaces, when the run first needs them; default the node's resolver. */
  workloadNames?: () => Promise<WorkloadNames>;
  /** The host's network namespace inode, for packet blocks; default PID 1's from /proc. */
  hostNetns?: () => number | null;
}
