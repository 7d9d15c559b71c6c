// An in-memory WorkloadNames for unit tests: namespaces named from a table, every other one unknown, each lookup kept.
import type { Workload, WorkloadNames } from '../../src/workload/types.js';

export type MemoryNames = WorkloadNames & { readonly asked: number[] };

/** Names the namespaces in `known`; any other inode comes back with null names, as a resolver not done yet says. */
export function memoryNames(known: Readonly<Record<number, Partial<Workload>>>): MemoryNames {
  const asked: number[] = [];
  return {
    asked,
    lookup(netns) {
      asked.push(netns);
      return { netns, netnsName: null, container: null, containerName: null, pod: null, podUid: null, ...known[netns] };
    },
    close() {},
  };
}
