// JSON Lines name each count's workload: every place of a summary, and every packet, carries its namespace and the
// names found for it (null where none is known), valid against the schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packetJson, summaryJson } from '../../src/output/json.js';
import type { SummaryEntry } from '../../src/backend/types.js';
import { validateEvent } from '../helpers/schema.js';
import { BLUE, CART, CART_ID, HOST, memoryWorkloadNames, SAMPLE } from '../helpers/workload.js';

const names = memoryWorkloadNames(SAMPLE);
const lookup = (netns: number) => names.lookup(netns);
const NO_NAMES = { netnsName: null, container: null, containerName: null, pod: null, podUid: null };

const entry: SummaryEntry = {
  origin: 'software',
  pc: 0xffffffff820a7f2cn,
  reason: 'NO_SOCKET',
  count: 8,
  places: [
    { netns: HOST, ifindex: 2, ifname: 'eth0', count: 1 },
    { netns: BLUE, ifindex: 7, ifname: 'veth1', count: 2 },
    { netns: CART, ifindex: 3, ifname: 'eth0', pid: 42, comm: 'nginx', count: 4 },
    { netns: null, ifindex: null, ifname: null, count: 1 },
  ],
};

test('summary: each place with its namespace, names, device (and task where known); valid', () => {
  const json = summaryJson(entry, null, 0, 'bpf', () => null, lookup);
  assert.deepEqual(json.places, [
    { netns: HOST, ...NO_NAMES, netnsName: 'host', ifindex: 2, ifname: 'eth0', count: 1 },
    { netns: BLUE, ...NO_NAMES, netnsName: 'blue', ifindex: 7, ifname: 'veth1', count: 2 },
    {
      netns: CART,
      netnsName: null,
      container: CART_ID,
      containerName: 'cart',
      pod: 'shop/cart-7d9f',
      podUid: '5f1e0c2a-0000-4000-8000-000000000001',
      ifindex: 3,
      ifname: 'eth0',
      pid: 42,
      comm: 'nginx',
      count: 4,
    },
    { netns: null, ...NO_NAMES, ifindex: null, ifname: null, count: 1 },
  ]);
  assert.deepEqual(validateEvent(json), []);
  // Without names (none resolved) every name is null, and the object is still valid.
  const bare = summaryJson(entry, null, 0, 'bpf');
  assert.deepEqual(bare.places![0], { netns: HOST, ...NO_NAMES, ifindex: 2, ifname: 'eth0', count: 1 });
  assert.deepEqual(validateEvent(bare), []);
});

test('packet: its namespace and names at the top, null where the source does not say', () => {
  const p = packetJson(
    { origin: 'software', pc: 1n, netns: CART, inPort: { ifindex: 3, name: 'eth0' } },
    null,
    0,
    'bpf',
    () => null,
    lookup,
  );
  assert.equal(p.netns, CART);
  assert.equal(p.containerName, 'cart');
  assert.equal(p.pod, 'shop/cart-7d9f');
  assert.equal(p.ifname, 'eth0');
  assert.deepEqual(validateEvent(p), []);
  const netdm = packetJson({ origin: 'software', pc: 1n }, null, 0, 'netdm', () => null, lookup);
  assert.deepEqual(
    { netns: netdm.netns, netnsName: netdm.netnsName, container: netdm.container, podUid: netdm.podUid },
    { netns: null, netnsName: null, container: null, podUid: null },
  );
  assert.deepEqual(validateEvent(netdm), []);
  // The schema asks for the names on every packet.
  const without: Record<string, unknown> = { ...netdm };
  delete without.netnsName;
  assert.notDeepEqual(validateEvent(without), []);
});
