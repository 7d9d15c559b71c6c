// The BPF source's pure parts on bytes captured from the real kernel (6.18): drained counts, packet records, the
// reason table, counts into summary lines with their places, and one-line errors from libbpf's failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  COUNT_RECORD_BYTES,
  decodeCounts,
  decodePackets,
  reasonName,
  reasonTable,
  summaryEntries,
  type CountRecord,
} from '../../src/bpf/decode.js';
import { bpfError, verifierReason } from '../../src/bpf/errors.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../../../test/fixtures/bpf/${name}`, import.meta.url));
// Captured: 1000 datagrams to a closed UDP port in a test namespace (netns 4026532173), dropped in softirq, then 5
// dropped by an iptables OUTPUT rule in the sender's own context (python3, in a cgroup made for it: id 519).
const COUNTS = fixture('counts-udp-closed-port.bin');
// Captured: 3 such datagrams in packet mode, then one dropped at OUTPUT by the sender (node, cgroup 519).
const PACKETS = fixture('packets-udp-closed-port.bin');
const RECORD_BYTES = 344;
const CGROUP = 519;
const UDP4_RCV = 0xffffffff8209ec6cn;
const NF_HOOK_SLOW = 0xffffffff81fb4bdfn;

test('drained counts: location, reason number, namespace, device, protocol, task, count and names', () => {
  const records = decodeCounts(COUNTS);
  assert.equal(records.length, COUNTS.length / COUNT_RECORD_BYTES);
  const softirq = records.find((r) => r.location === UDP4_RCV);
  assert.deepEqual(softirq, {
    location: UDP4_RCV,
    reason: 3,
    netns: 4026532173,
    ifindex: 1,
    protocol: 0x800,
    pid: 0,
    cgroup: 0,
    count: 1000,
    ifname: 'lo',
    comm: '',
  });
  const task = records.find((r) => r.location === NF_HOOK_SLOW);
  assert.equal(task?.count, 5);
  assert.equal(task.comm, 'python3');
  assert.ok(task.pid > 0);
  assert.equal(task.cgroup, CGROUP, "the sender's cgroup v2 id");
  assert.equal(task.ifindex, 0, 'the OUTPUT hook runs before a device is chosen');
  assert.equal(task.netns, 4026532173, "the socket's namespace");
  assert.throws(() => decodeCounts(COUNTS.subarray(1)), RangeError);
});

test('packet records: header fields, the bytes from the MAC header, and the flow they decode to', () => {
  const [output, ...packets] = decodePackets(PACKETS, RECORD_BYTES).reverse();
  assert.equal(packets.length, 3);
  for (const p of packets) {
    assert.equal(p.location, UDP4_RCV);
    assert.equal(p.reason, 3);
    assert.equal(p.protocol, 0x800);
    assert.equal(p.ifindex, 1);
    assert.equal(p.ifname, 'lo');
    assert.equal(p.fromMac, true);
    assert.equal(p.origLen, 43, '14 Ethernet + 20 IPv4 + 8 UDP + 1 byte');
    assert.equal(p.data.length, 43);
    assert.deepEqual([p.pid, p.comm, p.cgroup], [0, '', 0], 'dropped in softirq: no task');
    // UDP destination port 9 at 14 + 20 + 2.
    assert.equal((p.data[36]! << 8) | p.data[37]!, 9);
  }
  assert.ok(packets[2]!.monoNs < packets[0]!.monoNs);
  assert.equal(output!.comm, 'node');
  assert.ok(output!.pid > 0);
  assert.equal(output!.cgroup, CGROUP);
  assert.equal(output!.fromMac, false, 'no MAC header before a device is chosen');
  assert.equal((output!.data[22]! << 8) | output!.data[23]!, 10);
  assert.throws(() => decodePackets(PACKETS.subarray(0, 100), RECORD_BYTES), RangeError);
});

test('the reason table reads like tracefs: prefixes gone, the subsystem mask left out', () => {
  const table = reasonTable([
    [0, 'SKB_NOT_DROPPED_YET'],
    [1, 'SKB_CONSUMED'],
    [2, 'SKB_DROP_REASON_NOT_SPECIFIED'],
    [3, 'SKB_DROP_REASON_NO_SOCKET'],
    [-65536, 'SKB_DROP_REASON_SUBSYS_MASK'],
  ]);
  assert.deepEqual(
    [...table],
    [
      [0, 'NOT_DROPPED_YET'],
      [1, 'CONSUMED'],
      [2, 'NOT_SPECIFIED'],
      [3, 'NO_SOCKET'],
    ],
  );
  assert.equal(reasonName(table, 999), 'UNKNOWN(999)');
});

test('summary lines: one per location and reason, places per namespace and device adding up to the count', () => {
  const reasons = new Map([[3, 'NO_SOCKET']]);
  const at = (
    netns: number,
    ifindex: number,
    ifname: string,
    protocol: number,
    count: number,
    pid = 0,
  ): CountRecord => ({
    location: UDP4_RCV,
    reason: 3,
    netns,
    ifindex,
    protocol,
    pid,
    cgroup: pid === 0 ? 0 : 42,
    count,
    ifname,
    comm: pid === 0 ? '' : 'nc',
  });
  const lines = summaryEntries(
    [
      at(11, 1, 'lo', 0x800, 5),
      at(11, 1, 'lo', 0x86dd, 2),
      at(12, 4, 'veth0', 0x800, 3),
      at(0, 0, '', 0, 1),
      at(11, 1, 'lo', 0x800, 4, 77),
      at(11, 1, 'lo', 0x86dd, 1, 77),
    ],
    reasons,
  );
  assert.deepEqual(lines, [
    {
      origin: 'software',
      pc: UDP4_RCV,
      reason: 'NO_SOCKET',
      count: 16,
      places: [
        { netns: 11, ifindex: 1, ifname: 'lo', pid: null, comm: null, cgroup: null, count: 7 },
        { netns: 12, ifindex: 4, ifname: 'veth0', pid: null, comm: null, cgroup: null, count: 3 },
        { netns: null, ifindex: null, ifname: null, pid: null, comm: null, cgroup: null, count: 1 },
        { netns: 11, ifindex: 1, ifname: 'lo', pid: 77, comm: 'nc', cgroup: 42, count: 5 },
      ],
    },
  ]);
});

// The verifier's log for a packet copy of unbounded length (captured while writing bpf/dropwatch.bpf.c), cut short.
const VERIFIER_LOG = `libbpf: prog 'on_kfree_skb': BPF program load failed: Permission denied
libbpf: prog 'on_kfree_skb': -- BEGIN PROG LOAD LOG --
214: (bf) r2 = r7                     ; R2=scalar(id=11,smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))
215: (85) call bpf_probe_read_kernel#113
R2 unbounded memory access, use 'var &= const' or 'if (var < const)'
processed 229 insns (limit 1000000) max_states_per_insn 0 total_states 17 peak_states 17 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'on_kfree_skb': failed to load: -13
libbpf: failed to load object 'dropwatch'
`;

test('failures are one line naming the cause and -b tracefs, never the libbpf log', () => {
  const fail = (stage: string, errno: number, log = '') => bpfError({ stage, errno, log, message: 'x' });
  assert.equal(verifierReason(VERIFIER_LOG), "R2 unbounded memory access, use 'var &= const' or 'if (var < const)'");
  const cases: [ReturnType<typeof fail>, string, RegExp][] = [
    [fail('load', 13, VERIFIER_LOG), 'E_BPF_MISSING', /verifier rejected .*R2 unbounded memory access/],
    [fail('load', 1), 'E_BPF_MISSING', /refused to load a BPF program \(Operation not permitted\).*CAP_BPF/],
    [fail('btf', 2), 'E_BPF_MISSING', /no usable BTF/],
    [fail('load', 22, 'libbpf: failed to find valid kernel BTF\n'), 'E_BPF_MISSING', /no usable BTF/],
    [fail('open', 22, 'libbpf: elf: failed to open\n'), 'E_BPF_MISSING', /corrupt or not dropwatch's/],
    [fail('attach', 2), 'E_BPF_MISSING', /cannot attach a BPF program to skb:kfree_skb/],
    [
      fail('load', 1, "libbpf: map 'counts0': failed to create: Operation not permitted(-1)\n"),
      'E_BPF_MISSING',
      /refused/,
    ],
    [
      fail('load', 12, "libbpf: map 'counts0': failed to create: Cannot allocate memory(-12)\n"),
      'E_BPF_MISSING',
      /would not create dropwatch's BPF maps .*memory limit of this process's memory cgroup/,
    ],
  ];
  for (const [err, code, pattern] of cases) {
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    assert.match(err.message, /-b tracefs/);
    assert.ok(!err.message.includes('\n') && !err.message.includes('libbpf:'), err.message);
  }
});
