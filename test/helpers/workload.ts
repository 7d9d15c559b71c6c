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

/** Namespaces by inode for tests that name workloads: the host, an `ip netns` one, a Podman container, a pod's. */
export const HOST = 4026531840;
export const BLUE = 4026532042;
export const WEB = 4026532300;
export const CART = 4026532400;
export const WEB_ID = '1a2b3c4d5e6f7081920a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607';
export const CART_ID = 'c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789';

/** Their names, for memoryWorkloadNames(SAMPLE); any other namespace is not known. */
export const SAMPLE: Record<number, Partial<Omit<Workload, 'netns'>>> = {
  [HOST]: { netnsName: 'host' },
  [BLUE]: { netnsName: 'blue' },
  [WEB]: { container: WEB_ID, containerName: 'web' },
  [CART]: {
    container: CART_ID,
    containerName: 'cart',
    pod: 'shop/cart-7d9f',
    podUid: '5f1e0c2a-0000-4000-8000-000000000001',
  },
};
