// An in-memory WorkloadNames for unit tests: names for the namespaces it is given, nulls for the rest, and a count of
// lookups and closes so a test can tell that names were asked for (or never made).
import type { Workload, WorkloadNames } from '../../src/workload/types.js';

export type Named = Partial<Omit<Workload, 'netns'>>;

export class MemoryWorkloads implements WorkloadNames {
  lookups = 0;
  closed = 0;
  constructor(private readonly known: ReadonlyMap<number, Named> = new Map()) {}

  lookup(netns: number): Workload {
    this.lookups++;
    const n = this.known.get(netns) ?? {};
    return {
      netns,
      netnsName: n.netnsName ?? null,
      container: n.container ?? null,
      containerName: n.containerName ?? null,
      pod: n.pod ?? null,
      podUid: n.podUid ?? null,
    };
  }

  close(): void {
    this.closed++;
  }
}

/** The host, an `ip netns` namespace, a Podman container and a pod's container, by inode. */
export const HOST = 4026531840;
export const BLUE = 4026532042;
export const WEB = 4026532300;
export const CART = 4026532400;
export const WEB_ID = '1a2b3c4d5e6f7081920a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607';
export const CART_ID = 'c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789';

export const SAMPLE: ReadonlyMap<number, Named> = new Map<number, Named>([
  [HOST, { netnsName: 'host' }],
  [BLUE, { netnsName: 'blue' }],
  [WEB, { container: WEB_ID, containerName: 'web' }],
  [
    CART,
    {
      container: CART_ID,
      containerName: 'cart',
      pod: 'shop/cart-7d9f',
      podUid: '5f1e0c2a-0000-4000-8000-000000000001',
    },
  ],
]);
