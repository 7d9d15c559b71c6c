// An in-memory WorkloadNames for unit tests: names set by the test, answered at once, every lookup recorded.
import type { Workload, WorkloadNames } from '../../src/workload/types.js';

export type MemoryWorkloadNames = WorkloadNames & {
  /** Names (or renames) a namespace, as a resolver does once it has found its workload. */
  set(netns: number, names: Partial<Omit<Workload, 'netns'>>): void;
  /** Every namespace asked about, in order. */
  readonly asked: number[];
  closed: boolean;
};

/** Namespaces not set come back with null names, as a resolver answers before it knows. */
export function memoryWorkloadNames(known: Record<number, Partial<Omit<Workload, 'netns'>>> = {}): MemoryWorkloadNames {
  const names = new Map<number, Partial<Omit<Workload, 'netns'>>>(
    Object.entries(known).map(([netns, w]) => [Number(netns), w]),
  );
  const asked: number[] = [];
  const self: MemoryWorkloadNames = {
    asked,
    closed: false,
    set: (netns, w) => void names.set(netns, w),
    lookup: (netns) => {
      asked.push(netns);
      const w = names.get(netns) ?? {};
      return {
        netns,
        netnsName: w.netnsName ?? null,
        container: w.container ?? null,
        containerName: w.containerName ?? null,
        pod: w.pod ?? null,
        podUid: w.podUid ?? null,
      };
    },
    close: () => void (self.closed = true),
  };
  return self;
}
