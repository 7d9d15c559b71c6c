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

const udp: FilterRecord = {
  reason: 'NO_SOCKET',
  symbol: '__udp4_lib_rcv',
  origin: 'software',
  protocol: 0x0800,
  ifindex: 1,
  ifname: null,
};
const hw: FilterRecord = {
  reason: null,
  symbol: null,
  origin: 'hardware',
  protocol: 0x86dd,
  ifindex: 3,
  ifname: 'swp1',
};
const bare: FilterRecord = {
  reason: null,
  symbol: null,
  origin: 'software',
  protocol: null,
  ifindex: null,
  ifname: null,
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
