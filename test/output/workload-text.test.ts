// Packet blocks name their workload: a `workload:` line in the summary's words (pod, container, netns) when the drop's
// namespace is not the host's or has names, and no line at all when nothing is known, so NET_DM's blocks and the
// host's stay dropwatch's bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BackendCapabilities, PacketDrop } from '../../src/backend/types.js';
import type { WorkloadSource } from '../../src/engine/types.js';
import { formatPacket } from '../../src/output/format.js';
import { buildTextRenderer } from '../../src/output/text.js';
import type { Workload } from '../../src/workload/types.js';
import { BLUE, CART, HOST, memoryWorkloadNames, SAMPLE, WEB, type MemoryWorkloadNames } from '../helpers/workload.js';

const names = memoryWorkloadNames(SAMPLE);
const UNNAMED = 4026532999;

/** A bpf-like packet: dropwatch's lines, then a flow-less block of ours, in namespace `netns`. */
const packet = (netns: number | null | undefined): PacketDrop => ({
  origin: 'software',
  pc: 0xffffffff820a7f2cn,
  symbol: '__udp4_lib_rcv+0x4bc/0xd00',
  protocol: 0x800,
  reason: 'NO_SOCKET',
  pid: 42,
  comm: 'udpsend',
  ...(netns === undefined ? {} : { netns }),
});

/** The block's lines after `drop reason:`, the blank line left out. */
const tail = (lines: string[]): string[] => lines.slice(lines.findIndex((l) => l.startsWith('drop reason:')) + 1, -1);

test('a container, a pod, an ip netns, a namespace not named: one workload line in the summary words', () => {
  const block = (netns: number) => formatPacket(packet(netns), undefined, names.lookup(netns));
  assert.deepEqual(tail(block(WEB)), [
    'workload: container web (1a2b3c4d5e6f) netns 4026532300',
    'process: udpsend (pid 42)',
  ]);
  assert.deepEqual(tail(block(CART)), [
    'workload: pod shop/cart-7d9f container cart (c0ffee012345) netns 4026532400',
    'process: udpsend (pid 42)',
  ]);
  assert.deepEqual(tail(block(BLUE)), ['workload: netns blue (4026532042)', 'process: udpsend (pid 42)']);
  assert.deepEqual(tail(block(UNNAMED)), ['workload: netns 4026532999', 'process: udpsend (pid 42)']);
  // A container known by its ID alone, and a name that needs quoting, as the summary's words have them.
  const bare: Workload = { ...names.lookup(UNNAMED), container: SAMPLE[WEB]!.container! };
  assert.equal(
    tail(formatPacket(packet(UNNAMED), undefined, bare))[0],
    'workload: container 1a2b3c4d5e6f netns 4026532999',
  );
  const spaced: Workload = { ...names.lookup(UNNAMED), netnsName: 'my ns' };
  assert.equal(tail(formatPacket(packet(UNNAMED), undefined, spaced))[0], 'workload: netns "my ns" (4026532999)');
});

test('the host, no namespace, or no names: no workload line, the block as it was', () => {
  const plain = formatPacket(packet(HOST));
  assert.ok(!plain.some((l) => l.startsWith('workload:')));
  assert.deepEqual(formatPacket(packet(HOST), undefined, names.lookup(HOST)), plain);
  assert.deepEqual(formatPacket(packet(null), undefined, null), formatPacket(packet(null)));
  assert.deepEqual(formatPacket(packet(WEB)), formatPacket(packet(undefined)), 'without names, nothing');
});

const BPF_LIKE: BackendCapabilities = {
  modes: ['summary', 'packet'],
  settings: { trunc: true, queue: false, hw: false },
  fields: { summary: ['reason', 'device', 'netns'], packet: ['reason', 'device', 'netns', 'process'] },
  reasons: null,
  kernelFilter: null,
};

/** The run's names, made on the first need() (counted), as the CLI's RunWorkloads. */
function lazy(n: MemoryWorkloadNames): WorkloadSource & { made: number } {
  let ready = false;
  const source = {
    made: 0,
    need: async () => {
      source.made++;
      await Promise.resolve();
      ready = true;
      return n;
    },
    current: () => (ready ? n : null),
  };
  return source;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

const renderer = (workloads?: WorkloadSource) =>
  buildTextRenderer({
    symbols: { lookup: () => null },
    colour: false,
    capabilities: BPF_LIKE,
    ...(workloads ? { workloads, hostNetns: HOST } : {}),
  });

test('the text renderer: names from the run once made, the host known by its inode before they are', async () => {
  const source = lazy(memoryWorkloadNames(SAMPLE));
  const text = renderer(source);
  // Before the names: a namespace's inode is all that is known; the host's is never shown; names are asked for once.
  assert.deepEqual(text.packet(packet(HOST)), formatPacket(packet(HOST)));
  assert.ok(text.packet(packet(WEB)).includes('workload: netns 4026532300'));
  assert.ok(text.packet(packet(WEB)).includes('workload: netns 4026532300'));
  await settle();
  assert.equal(source.made, 1);
  assert.ok(text.packet(packet(WEB)).includes('workload: container web (1a2b3c4d5e6f) netns 4026532300'));
  // A host that the names do not know yet is still the host.
  const early = lazy(memoryWorkloadNames({}));
  const earlyText = renderer(early);
  earlyText.packet(packet(HOST));
  await settle();
  assert.deepEqual(earlyText.packet(packet(HOST)), formatPacket(packet(HOST)));
  assert.ok(earlyText.packet(packet(WEB)).includes('workload: netns 4026532300'));
});

test('NET_DM packets (no namespace) and a renderer without names: dropwatch’s block, byte for byte', () => {
  const source = lazy(memoryWorkloadNames(SAMPLE));
  const netdm: PacketDrop = {
    origin: 'software',
    pc: 0xffffffff820a7f2cn,
    symbol: '__udp4_lib_rcv+0x4bc/0xd00',
    inPort: { ifindex: 1 },
    protocol: 0x800,
    payload: new Uint8Array(51),
    origLen: 51,
    reason: 'NO_SOCKET',
  };
  assert.deepEqual(renderer(source).packet(netdm), formatPacket(netdm));
  assert.equal(source.made, 0, 'no names made for packets without a namespace');
  assert.deepEqual(renderer().packet(packet(WEB)), formatPacket(packet(WEB)));
});
