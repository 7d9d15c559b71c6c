import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compile,
  constantWithout,
  parse,
  recordFromPacket,
  recordFromSummary,
  symbolName,
  type FilterRecord,
} from '../../src/filter/index.js';
import { NO_FLOW, NO_WORKLOAD } from './helpers.js';
import { ipProtocolName } from '../../src/packet/index.js';

const udp: FilterRecord = {
  reason: 'NO_SOCKET',
  symbol: '__udp4_lib_rcv',
  origin: 'software',
  protocol: 0x0800,
  ifindex: 1,
  ifname: null,
  ...NO_FLOW,
  ...NO_WORKLOAD,
};
const hw: FilterRecord = {
  reason: null,
  symbol: null,
  origin: 'hardware',
  protocol: 0x86dd,
  ifindex: 3,
  ifname: 'swp1',
  ...NO_FLOW,
  ...NO_WORKLOAD,
};
const bare: FilterRecord = {
  reason: null,
  symbol: null,
  origin: 'software',
  protocol: null,
  ifindex: null,
  ifname: null,
  ...NO_FLOW,
  ...NO_WORKLOAD,
};

test('evaluation table: [expression, udp, hw, bare]', () => {
  const cases: [string, boolean, boolean, boolean][] = [
    ['reason == NO_SOCKET', true, false, false],
    ['reason == no_socket', true, false, false],
    ['reason != NO_SOCKET', false, true, true],
    ['reason =~ /SOCK/', true, false, false],
    ['reason !~ /SOCK/', false, true, true],
    ['reason =~ /^/', true, false, false], // null matches no regex, not even the empty one
    ['symbol == __udp4_lib_rcv', true, false, false],
    ['symbol != __udp4_lib_rcv', false, true, true],
    ['symbol =~ /UDP/', false, false, false],
    ['symbol =~ /UDP/i', true, false, false],
    ['symbol =~ "^__udp[46]_"', true, false, false],
    ['origin == software', true, false, true],
    ['origin == hw', false, true, false],
    ['origin =~ /ware$/', true, true, true],
    ['protocol == ip', true, false, false],
    ['protocol == 0x86dd', false, true, false],
    ['protocol != ipv6', true, false, true],
    ['ifindex == 1', true, false, false],
    ['ifindex != 1', false, true, true],
    ['ifname == swp1', false, true, false],
    ['ifname != swp1', true, false, true],
    ['ifname =~ /^swp/', false, true, false],
    ['ifname !~ /^swp/', true, false, true],
    ['!(ifname == swp1)', true, false, true],
    ['reason == NO_SOCKET || origin == hardware', true, true, false],
    ['reason == NO_SOCKET && origin == hardware', false, false, false],
    ['reason == NO_SOCKET || protocol == ipv6 && ifindex == 3', true, true, false],
    ['(reason == NO_SOCKET || protocol == ipv6) && ifindex == 1', true, false, false],
    ['!reason == NO_SOCKET && !origin == hardware', false, false, true],
    ['!(reason == NO_SOCKET && protocol == ip)', false, true, true],
  ];
  for (const [src, a, b, c] of cases) {
    const p = compile(parse(src));
    assert.deepEqual([p(udp), p(hw), p(bare)], [a, b, c], src);
  }
});

test('a compiled regex keeps no state between records', () => {
  const p = compile(parse('symbol =~ /udp/i'));
  for (let i = 0; i < 5; i++) assert.equal(p(udp), true);
});

test('symbolName strips offset, size and module', () => {
  assert.equal(symbolName('__udp4_lib_rcv+0x9a2/0xc30'), '__udp4_lib_rcv');
  assert.equal(symbolName('nft_do_chain+0x1f/0x500 [nf_tables]'), 'nft_do_chain');
  assert.equal(symbolName('ip_rcv_finish_core.isra.0+0x1de/0x440'), 'ip_rcv_finish_core.isra.0');
  assert.equal(symbolName('0xffffffffc0a01234'), '0xffffffffc0a01234');
});

test('records from backend events', () => {
  assert.deepEqual(
    recordFromPacket({
      origin: 'software',
      symbol: '__udp4_lib_rcv+0x9a2/0xc30',
      inPort: { ifindex: 1 },
      protocol: 0x800,
      reason: 'NO_SOCKET',
    }),
    udp,
  );
  assert.deepEqual(
    recordFromPacket({ origin: 'hardware', inPort: { ifindex: 3, name: 'swp1' }, protocol: 0x86dd }),
    hw,
  );
  assert.equal(recordFromPacket({ origin: 'software', symbol: 'x+0x1/0x2' }, 'resolved').symbol, 'resolved');
  assert.deepEqual(recordFromSummary({ origin: 'software', pc: 1n, reason: null, count: 3 }), bare);
  assert.equal(
    recordFromSummary({ origin: 'software', pc: 1n, reason: 'NO_SOCKET', count: 3 }, '__udp4_lib_rcv').symbol,
    '__udp4_lib_rcv',
  );
});

test('a regex runs once per distinct value, not once per drop: a slow pattern costs per location', (t) => {
  const spy = t.mock.method(RegExp.prototype, 'test');
  const runs = () => spy.mock.callCount();
  try {
    const p = compile(parse('symbol =~ /^__udp/ && ifname !~ /^veth/'));
    for (let i = 0; i < 1000; i++) {
      assert.equal(p(udp), true);
      assert.equal(p({ ...udp, ifname: 'veth1' }), false);
    }
    // One per (pattern, field value): the symbol once, veth1 once; a null ifname needs no test.
    assert.equal(runs(), 2);
    // A new value is tested, and then remembered too.
    for (let i = 0; i < 10; i++) assert.equal(p({ ...udp, symbol: 'tcp_v4_rcv', ifname: 'eth0' }), false);
    assert.equal(runs(), 3);
  } finally {
    spy.mock.restore();
  }
});

test('constantWithout: which filters can never match, or always match, when fields are unknown', () => {
  const v = (text: string, ...unknown: ('reason' | 'symbol' | 'protocol' | 'ifname')[]) =>
    constantWithout(parse(text), new Set(unknown));
  assert.equal(v('symbol =~ /udp/', 'symbol'), false);
  assert.equal(v('symbol == tcp_v4_rcv && reason == NO_SOCKET', 'symbol'), false);
  assert.equal(v('symbol =~ /udp/ || reason == NO_SOCKET', 'symbol'), null);
  assert.equal(v('symbol !~ /udp/', 'symbol'), true);
  assert.equal(v('!(reason == NO_SOCKET)', 'reason'), true);
  assert.equal(v('reason == NO_SOCKET', 'symbol'), null);
  assert.equal(v('protocol == ipv6 && ifname == eth0', 'ifname'), false);
  assert.equal(v('symbol =~ /udp/'), null);
});

const flowOf = (r: Partial<FilterRecord>): FilterRecord => ({ ...bare, ...r });
const udp4 = flowOf({ l3: 'ipv4', l4: 17, src: '127.0.0.1', dst: '127.0.0.1', sport: 40000, dport: 9 });
const tcp6 = flowOf({ l3: 'ipv6', l4: 6, src: '2001:db8::1', dst: '::1', sport: 443, dport: 50000 });
// IPv4-mapped addresses in both spellings a decoder may use.
const mapped = flowOf({ l3: 'ipv6', l4: 17, src: '::ffff:c000:201', dst: '::ffff:10.1.2.3', sport: 9, dport: 53 });
const arp = flowOf({ l3: 'arp', src: '192.0.2.1', dst: '192.0.2.2' });

test('flow evaluation table: [expression, udp4, tcp6, mapped, arp, no flow]', () => {
  const cases: [string, boolean, boolean, boolean, boolean, boolean][] = [
    ['dport == 9', true, false, false, false, false],
    ['dport != 9', false, true, true, true, true],
    ['dport == 10', false, false, false, false, false],
    ['sport == 9', false, false, true, false, false],
    ['dport == 9 && l4 == udp', true, false, false, false, false],
    ['l4 == udp', true, false, true, false, false],
    ['l4 == 17', true, false, true, false, false],
    ['l4 != tcp', true, false, true, true, true],
    ['l3 == ipv4', true, false, false, false, false],
    ['l3 == ipv6', false, true, true, false, false],
    ['l3 != arp', true, true, true, false, true],
    ['src == 127.0.0.1', true, false, false, false, false],
    ['dst == ::1', false, true, false, false, false],
    ['dst == 0:0:0:0:0:0:0:1', false, true, false, false, false],
    ['dst != ::1', true, false, true, true, true],
    ['src == 2001:db8:0::1', false, true, false, false, false],
    ['dst in 127.0.0.0/8', true, false, false, false, false],
    ['dst not in 127.0.0.0/8', false, true, true, true, true],
    ['!(dst in 127.0.0.0/8)', false, true, true, true, true],
    ['src in 2001:db8::/32', false, true, false, false, false],
    ['src in 2001:db9::/32', false, false, false, false, false],
    ['dst in 0.0.0.0/0', true, false, true, true, false],
    ['dst in 10.0.0.0/8', false, false, true, false, false],
    // An IPv4-mapped IPv6 address is the IPv4 address, either way round.
    ['src == 192.0.2.1', false, false, true, true, false],
    ['src == ::ffff:192.0.2.1', false, false, true, true, false],
    ['dst in ::ffff:10.0.0.0/104', false, false, true, false, false],
    ['dst in 10.1.2.3', false, false, true, false, false],
    // Host bits past the prefix are ignored.
    ['dst in 127.9.9.9/8', true, false, false, false, false],
    // ARP's sender and target protocol addresses are its src and dst.
    ['src == 192.0.2.1 && l3 == arp', false, false, false, true, false],
    ['l3 == ipv6 && (dport == 53 || sport == 443)', false, true, true, false, false],
    ['reason == NO_SOCKET || dport == 9', true, false, false, false, false],
  ];
  for (const [src, ...want] of cases) {
    const p = compile(parse(src));
    assert.deepEqual([udp4, tcp6, mapped, arp, bare].map(p), want, src);
  }
});

test('a compiled address test gives the same answer the second time (remembered per address)', () => {
  const p = compile(parse('dst in 10.0.0.0/8'));
  for (let i = 0; i < 3; i++) assert.deepEqual([p(mapped), p(udp4)], [true, false]);
});

test('records from packets with a decoded flow', () => {
  const flow = {
    l3: 'ipv4' as const,
    src: '10.0.0.1',
    dst: '10.0.0.2',
    l4: 'udp',
    sport: 5000,
    dport: 9,
    vlans: [100],
    stopped: null,
  };
  const r = recordFromPacket({ origin: 'software', flow, inPort: { ifindex: 2, name: 'eth0' } });
  assert.deepEqual(
    { l3: r.l3, l4: r.l4, src: r.src, dst: r.dst, sport: r.sport, dport: r.dport, ifname: r.ifname },
    { l3: 'ipv4', l4: 17, src: '10.0.0.1', dst: '10.0.0.2', sport: 5000, dport: 9, ifname: 'eth0' },
  );
  // l4 as the decoder writes it: a name (any case), or a number in decimal for protocols without one.
  const l4 = (text: string | null) => recordFromPacket({ origin: 'software', flow: { ...flow, l4: text } }).l4;
  assert.deepEqual(
    [l4('tcp'), l4('ICMPv6'), l4('ipv6-icmp'), l4('gre'), l4('253'), l4(null)],
    [6, 58, 58, 47, 253, null],
  );
  assert.equal(l4('256'), null);
  assert.equal(l4('no-such-protocol'), null);
  // A truncated packet: the fields past where decoding stopped are null, and compare as missing.
  const cut = recordFromPacket({
    origin: 'software',
    flow: { ...flow, sport: null, dport: null, stopped: 'udp header' },
  });
  assert.equal(compile(parse('dport == 9'))(cut), false);
  assert.equal(compile(parse('dport != 9'))(cut), true);
  assert.equal(compile(parse('src == 10.0.0.1'))(cut), true);
  assert.deepEqual(recordFromPacket({ origin: 'hardware' }), { ...bare, origin: 'hardware' });
});

test('constantWithout: flow fields follow the same null rules', () => {
  const flow = new Set(['l3', 'l4', 'src', 'dst', 'sport', 'dport'] as const);
  const cases: [string, boolean | null][] = [
    ['dport == 9', false],
    ['dport != 9', true],
    ['dst in 10.0.0.0/8', false],
    ['dst not in 10.0.0.0/8', true],
    ['!(src == ::1)', true],
    ['l4 == udp || reason == NO_SOCKET', null],
    ['l4 == udp && reason == NO_SOCKET', false],
  ];
  for (const [src, want] of cases) assert.equal(constantWithout(parse(src), flow), want, src);
});

test('l4: every name the decoder writes reads back as its number, in records and in filters', () => {
  for (let n = 0; n <= 255; n++) {
    const name = ipProtocolName(n);
    const r = recordFromPacket({
      origin: 'software',
      flow: { l3: 'ipv4', src: null, dst: null, l4: name, sport: null, dport: null, vlans: [], stopped: null },
    });
    assert.equal(r.l4, n, name);
    assert.equal(compile(parse(`l4 == ${n}`))(r), true, `l4 == ${n} on ${name}`);
    if (name !== String(n)) assert.equal(compile(parse(`l4 == ${name}`))(r), true, `l4 == ${name}`);
  }
});
