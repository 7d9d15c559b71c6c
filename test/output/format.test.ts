// Formatters, byte for byte against dropwatch's printf formats (expected asctime/%p strings produced by glibc on this machine).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Chalk } from 'chalk';
import {
  formatAsctime,
  formatChain,
  formatStackLines,
  formatLostLine,
  formatLostTotal,
  formatOverflowLine,
  formatFlow,
  formatPacket,
  formatPointer,
  formatShow,
  formatStats,
  formatSummaryLine,
  formatSymbolNotice,
  formatTimestamp,
} from '../../src/output/index.js';
import type { PacketDrop, SummaryEntry } from '../../src/backend/types.js';
import { decodeFlow } from '../../src/packet/index.js';
import { decodePacketAlert } from '../../src/netdm/codec.js';
import { fixtureMessage } from '../netdm/fixtures.js';
import { hostFrames } from '../packet/fixtures.js';

const savedTz = process.env.TZ;
after(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

const UDP = { symbol: '__udp4_lib_rcv', offset: 0x4bcn };
const sw = (pc: bigint, count: number, reason: string | null = null): SummaryEntry => ({
  origin: 'software',
  pc,
  reason,
  count,
});
const plain = new Chalk({ level: 0 });
const colour = new Chalk({ level: 3 });

test('%p: 0x and lower-case hex, (nil) for zero', () => {
  assert.equal(formatPointer(0xffffffff820a7f2cn), '0xffffffff820a7f2c');
  assert.equal(formatPointer(0x1n), '0x1');
  assert.equal(formatPointer(0n), '(nil)');
});

test('summary lines: resolved, unresolved, hardware, reason, rx_dropped', () => {
  assert.equal(
    formatSummaryLine(sw(0xffffffff8c6bd8ccn, 500, 'NO_SOCKET'), UDP),
    '500 drops at __udp4_lib_rcv+4bc (0xffffffff8c6bd8cc) [software] NO_SOCKET',
  );
  assert.equal(
    formatSummaryLine(sw(0xffffffff9b484062n, 100), { symbol: '__udp4_lib_rcv', offset: 0x9a2n }),
    '100 drops at __udp4_lib_rcv+9a2 (0xffffffff9b484062) [software]',
  );
  // Module symbols print without their [mod], as dropwatch does.
  assert.equal(
    formatSummaryLine(sw(0xffffffffc0b018a0n, 1), { symbol: 'vxlan_rcv', offset: 0x10n, module: 'vxlan' }),
    '1 drops at vxlan_rcv+10 (0xffffffffc0b018a0) [software]',
  );
  assert.equal(
    formatSummaryLine(sw(0xffffffff81000000n, 3), { symbol: '_stext', offset: 0n }),
    '3 drops at _stext+0 (0xffffffff81000000) [software]',
  );
  assert.equal(
    formatSummaryLine(sw(0xffffffff8c6bd8ccn, 7), null),
    '7 drops at location 0xffffffff8c6bd8cc [software]',
  );
  assert.equal(
    formatSummaryLine(sw(0xffffffff8c6bd8ccn, 7, 'OTHERHOST'), null),
    '7 drops at location 0xffffffff8c6bd8cc [software] OTHERHOST',
  );
  assert.equal(
    formatSummaryLine({ origin: 'hardware', pc: 0n, trap: 'ingress_vlan_filter', reason: null, count: 12 }, null),
    '12 drops at ingress_vlan_filter [hardware]',
  );
  assert.equal(formatSummaryLine(sw(0n, 1), null), '1 drops at device rx_dropped counter [software]');
  assert.equal(formatSummaryLine(sw(0n, 1), UDP), '1 drops at device rx_dropped counter [software]');
});

test('large counts print as the true unsigned value', () => {
  assert.equal(formatSummaryLine(sw(0x10n, 4294967295), null), '4294967295 drops at location 0x10 [software]');
  assert.equal(
    formatSummaryLine(sw(0xffffffff8c6bd8ccn, 2147483648), UDP),
    '2147483648 drops at __udp4_lib_rcv+4bc (0xffffffff8c6bd8cc) [software]',
  );
});

test('overflow line', () => {
  assert.equal(
    formatOverflowLine({ drops: 31, distinct: 2, distinctIsLowerBound: false, limit: 4096 }),
    '31 drops at 2 more locations not listed (over 4096 locations this interval)',
  );
  assert.equal(
    formatOverflowLine({ drops: 99900, distinct: 100, distinctIsLowerBound: true, limit: 100 }),
    '99900 drops at 100+ more locations not listed (over 100 locations this interval)',
  );
});

test('lost lines: each report as it comes, and the total at stop in words a `Lost N` reader does not count again', () => {
  assert.equal(
    formatLostLine(40, 'netlink socket'),
    'Lost 40 drop events before they reached dropwatch (netlink socket)',
  );
  const total = formatLostTotal(40, 'netlink socket');
  assert.equal(total, 'In total, 40 drop events were lost before they reached dropwatch (netlink socket)');
  assert.doesNotMatch(total, /^Lost \d+/);
});

test('colour only decorates: level 0 gives the plain bytes, level 3 the same text under the codes', () => {
  const e = sw(0xffffffff8c6bd8ccn, 500, 'NO_SOCKET');
  const want = '500 drops at __udp4_lib_rcv+4bc (0xffffffff8c6bd8cc) [software] NO_SOCKET';
  assert.equal(formatSummaryLine(e, UDP, { chalk: plain }), want);
  const coloured = formatSummaryLine(e, UDP, { chalk: colour });
  assert.notEqual(coloured, want);
  assert.equal(coloured.replace(/\u001b\[[0-9;]*m/g, ''), want);
  const pkt: PacketDrop = { origin: 'software', pc: 1n, symbol: 's+0x1/0x2', reason: 'NO_SOCKET' };
  assert.deepEqual(formatPacket(pkt, { chalk: plain }), formatPacket(pkt));
  const stats = { lost: [{ where: 'netlink socket', count: 3 }] };
  assert.deepEqual(formatStats(stats, { chalk: plain }), formatStats(stats));
});

test('asctime against glibc, several time zones', () => {
  const cases: Array<[string, number, string]> = [
    ['UTC', 1795675159, 'Thu Nov 26 06:39:19 2026'],
    ['UTC', 1772697600, 'Thu Mar  5 08:00:00 2026'],
    ['UTC', 0, 'Thu Jan  1 00:00:00 1970'],
    ['America/New_York', 1795675159, 'Thu Nov 26 01:39:19 2026'],
    ['America/New_York', 1783166400, 'Sat Jul  4 08:00:00 2026'],
    ['America/New_York', 0, 'Wed Dec 31 19:00:00 1969'],
    ['Asia/Kolkata', 1751234567, 'Mon Jun 30 03:32:47 2025'],
    ['Australia/Lord_Howe', 1783166400, 'Sat Jul  4 22:30:00 2026'],
    ['Australia/Lord_Howe', 1795675159, 'Thu Nov 26 17:39:19 2026'],
  ];
  for (const [tz, seconds, want] of cases) {
    process.env.TZ = tz;
    assert.equal(formatAsctime(new Date(seconds * 1000)), want, `${tz} ${seconds}`);
  }
});

test('timestamp: seconds via asctime, nanoseconds %09d', () => {
  process.env.TZ = 'UTC';
  assert.equal(formatTimestamp(1795675159n * 1_000_000_000n + 247776570n), 'Thu Nov 26 06:39:19 2026 247776570 nsec');
  assert.equal(formatTimestamp(1772697600n * 1_000_000_000n + 5n), 'Thu Mar  5 08:00:00 2026 000000005 nsec');
  assert.equal(formatTimestamp(999_999_999n), 'Thu Jan  1 00:00:00 1970 999999999 nsec');
});

test('packet block, software (NET_DM fields)', () => {
  process.env.TZ = 'UTC';
  const p: PacketDrop = {
    origin: 'software',
    pc: 0xffffffff820a7f2cn,
    symbol: '__udp4_lib_rcv+0x4bc/0xd00',
    inPort: { ifindex: 1 },
    timestampNs: 1795675159n * 1_000_000_000n + 247776570n,
    protocol: 0x800,
    payload: new Uint8Array(51),
    origLen: 51,
    reason: 'NO_SOCKET',
  };
  assert.equal(
    formatPacket(p).join('\n') + '\n',
    'drop at: __udp4_lib_rcv+0x4bc/0xd00 (0xffffffff820a7f2c)\n' +
      'origin: software\n' +
      'input port ifindex: 1\n' +
      'timestamp: Thu Nov 26 06:39:19 2026 247776570 nsec\n' +
      'protocol: 0x800\n' +
      'length: 51\n' +
      'original length: 51\n' +
      'drop reason: NO_SOCKET\n' +
      '\n',
  );
});

test('packet block, hardware with port name and cookie', () => {
  process.env.TZ = 'America/New_York';
  const p: PacketDrop = {
    origin: 'hardware',
    trapName: 'ingress_flow_action_drop',
    trapGroup: 'acl_drops',
    inPort: { ifindex: 7, name: 'swp1' },
    cookie: new Uint8Array([0x00, 0x0a, 0xff, 0x10]),
    timestampNs: 1783166400n * 1_000_000_000n,
    protocol: 0x86dd,
    payload: new Uint8Array(0),
    origLen: 1514,
  };
  assert.deepEqual(formatPacket(p), [
    'drop at: ingress_flow_action_drop (acl_drops)',
    'origin: hardware',
    'input port ifindex: 7',
    'input port name: swp1',
    'cookie: 000aff10',
    'timestamp: Sat Jul  4 08:00:00 2026 000000000 nsec',
    'protocol: 0x86dd',
    'length: 0',
    'original length: 1514',
    '',
  ]);
});

test("packet block with a flow: dropwatch's lines unchanged, then one flow line (a real NET_DM alert)", () => {
  process.env.TZ = 'UTC';
  const alert = decodePacketAlert(fixtureMessage('packet-alert-0.bin'));
  const plain = formatPacket(alert);
  const withFlow = formatPacket({ ...alert, flow: decodeFlow(alert.payload!, alert.protocol) });
  const sport = Buffer.from(alert.payload!).readUInt16BE(34);
  assert.deepEqual(withFlow, [...plain.slice(0, -1), `flow: IP 127.0.0.1.${sport} > 127.0.0.1.9: UDP, length 11`, '']);
  assert.equal(plain.at(-2), 'drop reason: NO_SOCKET');
  const cut = decodePacketAlert(fixtureMessage('packet-alert-trunc20-0.bin'));
  assert.equal(
    formatPacket({ ...cut, flow: decodeFlow(cut.payload!, cut.protocol) }).at(-2),
    'flow: IP, truncated in the IPv4 header',
  );
});

test('flow line: tcpdump-like for each kind of frame the kernel made (host-flows.pcap)', () => {
  const lines = new Set(hostFrames().map((f) => formatFlow(decodeFlow(f.bytes)).replace(/\.\d{4,5}\b/g, '.PORT')));
  for (const line of [
    'IP 10.0.0.1.PORT > 10.0.0.2.9: UDP, length 1',
    'IP 10.0.0.1.PORT > 10.0.0.2.10: TCP, Flags [S], length 0',
    'IP 10.0.0.2.10 > 10.0.0.1.PORT: TCP, Flags [R.], length 0',
    'IP 10.0.0.1 > 10.0.0.2: ICMP echo request, length 22',
    'IP 10.0.0.2 > 10.0.0.1: ICMP unreachable code 3, length 37',
    'IP 10.0.0.1.PORT > 10.0.0.2.9: UDP, length 3000, fragment offset 0, more fragments',
    'IP 10.0.0.1 > 10.0.0.2: UDP, length 1480, fragment offset 1480, more fragments',
    'IP 10.0.0.1 > 10.0.0.2: UDP, length 48, fragment offset 2960',
    'ARP Request 10.0.0.1 > 10.0.0.2, length 28',
    'ARP Reply 10.0.0.2 > 10.0.0.1, length 28',
    'IP6 fd00::1.PORT > fd00::2.9: UDP, length 1',
    'IP6 fd00::1.PORT > fd00::2.10: TCP, Flags [S], length 0',
    'IP6 fd00::1 > fd00::2: ICMP6 echo request, length 22',
    'IP6 fd00::1 > ff02::1:ff00:2: ICMP6 neighbor solicitation, length 32',
    'IP6 fd00::1 > fd00::2: ESP, length 24',
    'IP6 fd00::1.PORT > fd00::2.9: UDP, length 2',
  ])
    assert.ok(lines.has(line), `no frame printed as: ${line}\n${[...lines].join('\n')}`);
});

test('flow line: VLAN tags first, other protocols by name or number, non-IP EtherTypes, where it stopped', () => {
  const base = decodeFlow(new Uint8Array(0));
  const ip = { ...base, l3: 'ipv4' as const, src: '10.0.0.1', dst: '10.0.0.2', stopped: null };
  assert.equal(
    formatFlow({ ...ip, vlans: [100, 200], l4: 'udp', sport: 1, dport: 2, length: 0 }),
    'vlan 100, vlan 200, IP 10.0.0.1.1 > 10.0.0.2.2: UDP, length 0',
  );
  assert.equal(formatFlow({ ...ip, l4: 'gre', length: 40 }), 'IP 10.0.0.1 > 10.0.0.2: GRE, length 40');
  assert.equal(formatFlow({ ...ip, l4: '253' }), 'IP 10.0.0.1 > 10.0.0.2: ip-proto-253');
  assert.equal(
    formatFlow({ ...ip, l4: 'icmp', icmpType: 42, icmpCode: 0 }),
    'IP 10.0.0.1 > 10.0.0.2: ICMP type 42 code 0',
  );
  assert.equal(formatFlow({ ...base, etherType: 0x88cc, stopped: null }), 'ethertype 0x88cc');
  assert.equal(formatFlow({ ...base, etherType: 0x0026, stopped: null }), '802.3');
  assert.equal(
    formatFlow({ ...base, vlans: [7], stopped: 'truncated in a VLAN tag' }),
    'vlan 7, truncated in a VLAN tag',
  );
  assert.equal(
    formatFlow({ ...ip, l4: 'tcp', sport: 1, dport: 2, stopped: 'truncated in the TCP header' }),
    'IP 10.0.0.1.1 > 10.0.0.2.2: TCP, truncated in the TCP header',
  );
});

test('packet block: only present fields; PC without a kernel symbol (tracefs)', () => {
  assert.deepEqual(formatPacket({ origin: 'software' }), ['origin: software', '']);
  // dropwatch needs both PC and SYMBOL for its line; PC 0 prints as 0x0 there (PRIx64), not (nil).
  assert.deepEqual(formatPacket({ origin: 'software', pc: 0n, symbol: 'x' }), [
    'drop at: x (0x0)',
    'origin: software',
    '',
  ]);
  assert.deepEqual(formatPacket({ origin: 'software', pc: 0xffffffff820a7f2cn }, { resolved: UDP }), [
    'drop at: __udp4_lib_rcv+0x4bc (0xffffffff820a7f2c)',
    'origin: software',
    '',
  ]);
  assert.deepEqual(
    formatPacket(
      { origin: 'software', pc: 0xffffffffc0b018a0n },
      { resolved: { symbol: 'vxlan_rcv', offset: 0x10n, module: 'vxlan' } },
    ),
    ['drop at: vxlan_rcv+0x10 [vxlan] (0xffffffffc0b018a0)', 'origin: software', ''],
  );
  assert.deepEqual(formatPacket({ origin: 'software', pc: 0xffffffff820a7f2cn }, { resolved: null }), [
    'drop at: location 0xffffffff820a7f2c',
    'origin: software',
    '',
  ]);
  assert.deepEqual(formatPacket({ origin: 'hardware', trapName: 'only_name' }), ['origin: hardware', '']);
  assert.deepEqual(formatPacket({ origin: 'software', cookie: new Uint8Array(0), inPort: {} }), [
    'origin: software',
    'cookie: ',
    '',
  ]);
});

test('show', () => {
  assert.deepEqual(formatShow({ alertMode: 'summary', truncLen: 0, queueLen: 1000 }), [
    'Alert mode: Summary',
    'Truncation length: 0',
    'Queue length: 1000',
  ]);
  assert.deepEqual(formatShow({ alertMode: 'packet', truncLen: 4294967295, queueLen: 100 }), [
    'Alert mode: Packet',
    'Truncation length: 4294967295',
    'Queue length: 100',
  ]);
});

test('stats: present sections only, then our lost counts', () => {
  assert.deepEqual(
    formatStats({
      software: { tailDropped: 18446744073709551615n },
      hardware: { tailDropped: 0n },
      lost: [],
    }),
    ['Software statistics:', 'Tail dropped: 18446744073709551615', 'Hardware statistics:', 'Tail dropped: 0'],
  );
  assert.deepEqual(formatStats({ software: { tailDropped: 12n }, lost: [] }), [
    'Software statistics:',
    'Tail dropped: 12',
  ]);
  assert.deepEqual(
    formatStats({
      lost: [
        { where: 'tracefs ring buffer cpu0', count: 0 },
        { where: 'tracefs ring buffer cpu1', count: 1234 },
      ],
    }),
    ['Lost before delivery: 0 (tracefs ring buffer cpu0)', 'Lost before delivery: 1234 (tracefs ring buffer cpu1)'],
  );
  assert.deepEqual(formatStats({ lost: [] }), []);
});

test('symbol notice', () => {
  assert.equal(formatSymbolNotice('ok'), null);
  assert.equal(
    formatSymbolNotice('hidden'),
    'kernel symbol addresses are hidden: kernel.kptr_restrict, or CAP_SYSLOG missing; printing raw addresses',
  );
  assert.equal(
    formatSymbolNotice('hidden', undefined, 'this process lacks CAP_SYSLOG (kernel.kptr_restrict=1)'),
    'kernel symbol addresses are hidden: this process lacks CAP_SYSLOG (kernel.kptr_restrict=1); printing raw addresses',
  );
  assert.equal(
    formatSymbolNotice('unavailable', new Error('cannot read /proc/kallsyms: EACCES')),
    'cannot read /proc/kallsyms: EACCES; printing raw addresses',
  );
});

test('call chains under a summary line: header, the top chains with counts, the rest summed; all indented', () => {
  const names: Record<string, string> = { '10': 'ip_protocol_deliver_rcu', '20': 'ip_local_deliver_finish' };
  const resolve = (pc: bigint) => {
    const name = names[pc.toString(16)];
    return name === undefined ? null : { symbol: name, offset: 0xb3n };
  };
  const chains = [
    { frames: [0x10n, 0x20n], count: 30 },
    { frames: [0x10n, 0x99n], count: 5 },
    { frames: [0x20n], count: 2 },
    { frames: [0x30n], count: 1 },
  ];
  assert.deepEqual(formatStackLines({ sampled: 40, chains }, resolve, 2), [
    '  call chains of 40 sampled drops:',
    '    30  ip_protocol_deliver_rcu+b3 < ip_local_deliver_finish+b3',
    '     5  ip_protocol_deliver_rcu+b3 < 0x99',
    '    5 more in 2 other chains',
  ]);
  // More sampled than the kept chains hold: the difference is said, not hidden.
  assert.deepEqual(formatStackLines({ sampled: 3, chains: [{ frames: [0x10n], count: 1 }] }, resolve, 3).slice(-1), [
    '    2 more in chains not kept',
  ]);
  assert.equal(
    formatChain([0x10n], () => ({ symbol: 'f', offset: 1n, module: 'nf_tables' })),
    'f+1 [nf_tables]',
  );
});
