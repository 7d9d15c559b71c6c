// The run's workload names: the node's resolver, made on the first need (lazily imported) and closed with the run.
import { readlinkSync } from 'node:fs';
import { provides, type BackendCapabilities } from '../backend/types.js';
import type { WorkloadSource } from '../engine/types.js';
import { NAMED_KEYS } from '../aggregate/keys.js';
import { parseNetnsLink } from '../workload/proc.js';
import type { WorkloadNames } from '../workload/types.js';
import type { DropwatchOptions } from './argv.js';

/** The node's resolver: /proc, cgroups and the runtimes' files, loaded only for a run that names workloads. */
export async function openWorkloadNames(): Promise<WorkloadNames> {
  const { createWorkloadNames } = await import('../workload/index.js');
  return createWorkloadNames();
}

export class RunWorkloads implements WorkloadSource {
  private names: WorkloadNames | null = null;
  private making: Promise<WorkloadNames> | null = null;
  constructor(private readonly make: () => Promise<WorkloadNames>) {}

  need(): Promise<WorkloadNames> {
    return (this.making ??= this.make().then((names) => (this.names = names)));
  }

  current(): WorkloadNames | null {
    return this.names;
  }

  close(): void {
    this.names?.close();
  }
}

/** Whether the run names workloads from its start: JSON output, or a --by key or metrics label named by them. */
export const needsNames = (options: DropwatchOptions): boolean =>
  options.format === 'json' ||
  options.by.some((k) => NAMED_KEYS.includes(k)) ||
  options.metricsLabels.some((l) => l === 'netns' || l === 'container' || l === 'pod');

/** Whether text packet blocks can name their namespace's workload: text output, on a source that gives their namespace. */
export const namesPackets = (options: DropwatchOptions, capabilities: BackendCapabilities): boolean =>
  options.format === 'text' && provides(capabilities, 'packet', 'netns');

/** The host's network namespace: PID 1's, or where a supervisor as PID 1 hides it, ours (as the resolver's scan). */
export function hostNetns(readlink: (path: string) => string = readlinkSync): number | null {
  for (const pid of ['1', 'self'])
    try {
      const inode = parseNetnsLink(readlink(`/proc/${pid}/ns/net`));
      if (inode !== null) return inode;
    } catch {
      // Not ours to read: try the next.
    }
  return null;
}
