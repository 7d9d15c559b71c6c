// The bpf source's hardware drops, pure: trap count and trapped packet records (struct dw_trap_key/value and
// dw_trap_packet in bpf/dropwatch.h), the growth of the kernel's cumulative counts, and NET_DM's summary and packet shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  decodeTrapCounts,
  decodeTrapPackets,
  TRAP_COUNT_BYTES,
  TRAP_PACKET_BYTES,
  TrapTally,
  trapEntries,
  trapPacket,
} from '../../src/bpf/traps.js';
import { formatPacket, formatSummaryLine } from '../../src/output/format.js';
import { DropAggregator } from '../../src/aggregate/index.js';
import { summaryJson } from '../../src/output/json.js';
import { validateEvent } from '../helpers/schema.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../../../test/fixtures/bpf/${name}`, import.meta.url));
// Captured in the qemu guest (Debian 6.1, test/qemu/capture/capture-bpf-traps.ts): netdevsim's trap generator with one
// port (eth0, ifindex 2) up for a second, in summary mode, then in packet mode.
const TRAP_COUNTS = fixture('trap-counts-netdevsim.bin');
const TRAP_PACKETS = fixture('trap-packets-netdevsim.bin');

test('captured from the kernel: one count per trap, and trapped packets that decode to the generated frame', () => {
  const counts = decodeTrapCounts(TRAP_COUNTS);
  assert.deepEqual(counts.map((c) => `${c.trap}/${c.group}`).sort(), [
    'blackhole_route/l3_drops',
    'fid_miss/l2_drops',
    'ttl_value_is_too_small/l3_exceptions',
  ]);
  for (const c of counts) {
    assert.equal(c.ifindex, 2);
    assert.equal(c.ifname, 'eth0');
    assert.equal(c.netns, 4026531840, "the guest's initial namespace");
    assert.ok(c.count > 0n);
  }
  const packets = decodeTrapPackets(TRAP_PACKETS);
  assert.equal(packets.length, TRAP_PACKETS.length / TRAP_PACKET_BYTES);
  for (const r of packets) {
    const p = trapPacket(r, 0n);
    assert.deepEqual(p.inPort, { ifindex: 2, name: 'eth0' });
    assert.equal(p.origLen, 142);
    assert.equal(p.payload?.length, 142);
    assert.equal(p.protocol, 0x800);
    assert.equal(p.flow?.src, '192.0.2.1');
    assert.equal(p.flow?.dst, '198.51.100.1');
    assert.equal(p.flow?.l4, 'udp');
  }
});

/** Writes a C string into a fixed field. */
const put = (b: Buffer, at: number, size: number, s: string) => b.write(s, at, Math.min(size - 1, s.length), 'latin1');

/** A drained trap count as native/bpf.cc writes it: key (trap 64, group 64, ifindex, netns), count, ifname 16. */
function countRecord(trap: string, group: string, ifindex: number, netns: number, count: bigint, ifname: string) {
  const b = Buffer.alloc(160);
  put(b, 0, 64, trap);
  put(b, 64, 64, group);
  b.writeUInt32LE(ifindex, 128);
  b.writeUInt32LE(netns, 132);
  b.writeBigUInt64LE(count, 136);
  put(b, 144, 16, ifname);
  return b;
}

// netdevsim's trap generator: Ethernet, IPv4, UDP 192.0.2.1 -> 198.51.100.1, 100 zero bytes (142 bytes).
function trapFrame(): Buffer {
  const f = Buffer.alloc(142);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(128, 16);
  f[22] = 64;
  f[23] = 17;
  Buffer.from([192, 0, 2, 1]).copy(f, 26);
  Buffer.from([198, 51, 100, 1]).copy(f, 30);
  f.writeUInt16BE(5555, 34);
  f.writeUInt16BE(7777, 36);
  f.writeUInt16BE(108, 38);
  return f;
}

/** A trapped packet record: time, ifindex, netns, orig_len, cap_len, protocol, pad, trap, group, ifname, data. */
function packetRecord(mono: bigint, trap: string, group: string, data: Buffer, origLen = data.length) {
  const b = Buffer.alloc(432);
  b.writeBigUInt64LE(mono, 0);
  b.writeUInt32LE(3, 8);
  b.writeUInt32LE(4026531840, 12);
  b.writeUInt32LE(origLen, 16);
  b.writeUInt32LE(data.length, 20);
  b.writeUInt16LE(0x0800, 24);
  put(b, 32, 64, trap);
  put(b, 96, 64, group);
  put(b, 160, 16, 'eth0');
  data.copy(b, 176);
  return b;
}

test('trap count records: trap, group, input port, namespace, cumulative count and the port name', () => {
  assert.equal(TRAP_COUNT_BYTES, 160);
  const bytes = Buffer.concat([
    countRecord('blackhole_route', 'l3_drops', 3, 4026531840, 10n, 'eth0'),
    countRecord('x'.repeat(63), 'l2_drops', 0, 0, 1n, ''),
  ]);
  assert.deepEqual(decodeTrapCounts(bytes), [
    { trap: 'blackhole_route', group: 'l3_drops', ifindex: 3, netns: 4026531840, count: 10n, ifname: 'eth0' },
    { trap: 'x'.repeat(63), group: 'l2_drops', ifindex: 0, netns: 0, count: 1n, ifname: '' },
  ]);
  assert.throws(() => decodeTrapCounts(bytes.subarray(1)), RangeError);
});

test('the tally reports what each count grew by since the last read, nothing twice and nothing from before', () => {
  const tally = new TrapTally();
  const at = (n: bigint, m: bigint) =>
    decodeTrapCounts(
      Buffer.concat([
        countRecord('blackhole_route', 'l3_drops', 3, 1, n, 'eth0'),
        countRecord('fid_miss', 'l2_drops', 3, 1, m, 'eth0'),
      ]),
    );
  tally.baseline(at(7n, 2n));
  assert.deepEqual(tally.grown(at(7n, 2n)), []);
  const grown = tally.grown(at(17n, 2n));
  assert.deepEqual(
    grown.map((r) => [r.trap, r.count]),
    [['blackhole_route', 10]],
  );
  assert.deepEqual(
    tally.grown(at(18n, 5n)).map((r) => [r.trap, r.count]),
    [
      ['blackhole_route', 1],
      ['fid_miss', 3],
    ],
  );
  // A key first seen after the baseline counts from zero.
  const fresh = decodeTrapCounts(countRecord('ttl_value_is_too_small', 'l3_exceptions', 3, 1, 4n, 'eth0'));
  assert.deepEqual(
    tally.grown(fresh).map((r) => [r.trap, r.count]),
    [['ttl_value_is_too_small', 4]],
  );
});

test("summary entries: one per trap as NET_DM's, its input ports as places adding up to its count", () => {
  const records = [
    { trap: 'blackhole_route', group: 'l3_drops', ifindex: 3, netns: 4026531840, count: 6, ifname: 'eth0' },
    { trap: 'fid_miss', group: 'l2_drops', ifindex: 3, netns: 4026531840, count: 2, ifname: 'eth0' },
    { trap: 'blackhole_route', group: 'l3_drops', ifindex: 4, netns: 4026531840, count: 4, ifname: 'eth1' },
    { trap: 'blackhole_route', group: 'l3_drops', ifindex: 0, netns: 0, count: 1, ifname: '' },
  ];
  const entries = trapEntries(records);
  assert.deepEqual(entries[0], {
    origin: 'hardware',
    pc: 0n,
    trap: 'blackhole_route',
    reason: null,
    count: 11,
    places: [
      { netns: 4026531840, ifindex: 3, ifname: 'eth0', count: 6 },
      { netns: 4026531840, ifindex: 4, ifname: 'eth1', count: 4 },
      { netns: null, ifindex: null, ifname: null, count: 1 },
    ],
  });
  assert.equal(entries.length, 2);
  assert.equal(formatSummaryLine(entries[0], null), '11 drops at blackhole_route [hardware]');
  assert.equal(formatSummaryLine(entries[1]!, null), '2 drops at fid_miss [hardware]');
});

test("trapped packet records: NET_DM's hardware packet block, the frame from the MAC header and its flow", () => {
  assert.equal(TRAP_PACKET_BYTES, 432);
  const frame = trapFrame();
  const bytes = Buffer.concat([
    packetRecord(5_000_000_000n, 'blackhole_route', 'l3_drops', frame),
    packetRecord(5_000_000_001n, 'fid_miss', 'l2_drops', frame.subarray(0, 64), 142),
  ]);
  const records = decodeTrapPackets(bytes);
  assert.equal(records.length, 2);
  assert.deepEqual(
    { ...records[0], data: undefined },
    {
      monoNs: 5_000_000_000n,
      ifindex: 3,
      netns: 4026531840,
      origLen: 142,
      protocol: 0x800,
      trap: 'blackhole_route',
      group: 'l3_drops',
      ifname: 'eth0',
      data: undefined,
    },
  );
  assert.deepEqual(Buffer.from(records[0]!.data), frame);
  assert.equal(records[1]!.data.length, 64);
  // Monotonic time plus the offset to the wall clock.
  const p = trapPacket(records[0]!, 1_700_000_000_000_000_000n);
  assert.equal(p.timestampNs, 1_700_000_005_000_000_000n);
  const block = formatPacket(p);
  assert.deepEqual(block.slice(0, 3), [
    'drop at: blackhole_route (l3_drops)',
    'origin: hardware',
    'input port ifindex: 3',
  ]);
  assert.equal(block[3], 'input port name: eth0');
  assert.match(block[4]!, /^timestamp: /);
  assert.deepEqual(block.slice(5, 8), ['protocol: 0x800', 'length: 142', 'original length: 142']);
  assert.equal(block[8], 'flow: IP 192.0.2.1.5555 > 198.51.100.1.7777: UDP, length 100');
  assert.equal(p.pc, undefined, 'a trap has no kernel address');
  assert.equal(p.reason, undefined);
  assert.equal(p.netns, 4026531840);
  assert.equal(trapPacket(records[1]!, 0n).origLen, 142);
  // No input port: no port lines, as NET_DM sends none.
  const portless = Buffer.from(bytes.subarray(0, 432));
  portless.writeUInt32LE(0, 8);
  portless.fill(0, 160, 176);
  assert.equal(trapPacket(decodeTrapPackets(portless)[0]!, 0n).inPort, undefined);
  assert.throws(() => decodeTrapPackets(bytes.subarray(0, 100)), RangeError);
});

test('hardware lines summed over an interval keep their input ports, and their JSON passes the schema', () => {
  const aggregator = new DropAggregator();
  const drop = (count: number, ifindex: number) => ({
    trap: 'blackhole_route',
    group: 'l3_drops',
    ifindex,
    netns: 4026531840,
    count,
    ifname: `eth${ifindex}`,
  });
  aggregator.add(trapEntries([drop(3, 2)]));
  aggregator.add(trapEntries([drop(2, 2), drop(1, 5)]));
  const { lines } = aggregator.flush();
  assert.equal(lines.length, 1);
  assert.equal(formatSummaryLine(lines[0]!, null), '6 drops at blackhole_route [hardware]');
  const json = summaryJson(lines[0]!, null, 0, 'bpf');
  assert.equal(json.trap, 'blackhole_route');
  assert.equal(json.pc, '0x0');
  assert.deepEqual(
    json.places?.map((p) => [p.ifname, p.count]),
    [
      ['eth2', 5],
      ['eth5', 1],
    ],
  );
  assert.deepEqual(validateEvent(json), []);
});
