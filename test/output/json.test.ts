// JSON Lines formatter: exact objects for known values, every one valid against the shipped schema, and the validator
// itself refuses what the schema forbids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isoFromNs,
  jsonLine,
  lostJson,
  overflowJson,
  packetJson,
  parseKernelSymbol,
  summaryJson,
  type EventJson,
} from '../../src/output/json.js';
import { validateEvent } from '../helpers/schema.js';
import { decodeFlow } from '../../src/packet/index.js';
import { decodePacketAlert } from '../../src/netdm/codec.js';
import { fixtureMessage } from '../netdm/fixtures.js';

const T = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

function valid(event: EventJson): void {
  const line = jsonLine(event);
  assert.ok(!line.includes('\n'));
  assert.deepEqual(validateEvent(JSON.parse(line)), [], line);
}

test('summary: resolved software drop', () => {
  const e = summaryJson(
    { origin: 'software', pc: 0xffffffff820a7f2cn, reason: 'NO_SOCKET', count: 7 },
    { symbol: '__udp4_lib_rcv', offset: 0x4bcn },
    T,
    'tracefs',
  );
  assert.deepEqual(e, {
    type: 'summary',
    time: '2024-01-02T03:04:05.678Z',
    backend: 'tracefs',
    origin: 'software',
    count: 7,
    pc: '0xffffffff820a7f2c',
    symbol: '__udp4_lib_rcv',
    offset: 1212,
    module: null,
    trap: null,
    reason: 'NO_SOCKET',
  });
  valid(e);
});

test('summary: unresolved, module, hardware trap, rx_dropped, null reason, negative pc as u64', () => {
  const unresolved = summaryJson(
    { origin: 'software', pc: 0xffffffffc0001234n, reason: null, count: 1 },
    null,
    T,
    'netdm',
  );
  assert.equal(unresolved.symbol, null);
  assert.equal(unresolved.offset, null);
  assert.equal(unresolved.reason, null);
  valid(unresolved);
  const mod = summaryJson(
    { origin: 'software', pc: 0xffffffffc0001234n, reason: 'NETFILTER_DROP', count: 2 },
    { symbol: 'nft_do_chain', offset: 0x34n, module: 'nf_tables' },
    T,
    'netdm',
  );
  assert.equal(mod.module, 'nf_tables');
  valid(mod);
  const hw = summaryJson(
    { origin: 'hardware', pc: 0n, trap: 'ttl_value_is_too_small', reason: null, count: 3 },
    null,
    T,
    'netdm',
  );
  assert.deepEqual([hw.pc, hw.trap, hw.symbol, hw.origin], ['0x0', 'ttl_value_is_too_small', null, 'hardware']);
  valid(hw);
  // A resolution of pc 0 would be meaningless (it is the rx_dropped heuristic), so it is not shown.
  const rx = summaryJson(
    { origin: 'software', pc: 0n, reason: null, count: 9 },
    { symbol: 'x', offset: 0n },
    T,
    'netdm',
  );
  assert.equal(rx.symbol, null);
  valid(rx);
  assert.equal(
    summaryJson({ origin: 'software', pc: -1n, reason: null, count: 1 }, null, T, 'netdm').pc,
    '0xffffffffffffffff',
  );
});

test('packet: tracefs drop uses our lookup and the drop timestamp to the nanosecond', () => {
  const p = packetJson(
    {
      origin: 'software',
      pc: 0xffffffff820a7f2cn,
      timestampNs: 1_704_164_645_678_901_234n,
      protocol: 0x800,
      reason: 'NO_SOCKET',
    },
    { symbol: '__udp4_lib_rcv', offset: 0x4bcn },
    T + 1000,
    'tracefs',
  );
  assert.deepEqual(p, {
    type: 'packet',
    time: '2024-01-02T03:04:05.678901234Z',
    backend: 'tracefs',
    origin: 'software',
    count: 1,
    pc: '0xffffffff820a7f2c',
    symbol: '__udp4_lib_rcv',
    offset: 1212,
    module: null,
    trap: null,
    reason: 'NO_SOCKET',
    trapGroup: null,
    ifindex: null,
    ifname: null,
    netns: null,
    netnsName: null,
    container: null,
    containerName: null,
    pod: null,
    podUid: null,
    l3: null,
    src: null,
    dst: null,
    l4: null,
    sport: null,
    dport: null,
    cookie: null,
    protocol: 2048,
    length: null,
    origLength: null,
    payload: null,
    pid: null,
    comm: null,
    cgroupId: null,
    cgroup: null,
    stack: null,
  });
  valid(p);
});

test('packet with a process and a call chain; summary with sampled chains; both valid against the schema', () => {
  const names: Record<string, string> = { '10': 'ip_protocol_deliver_rcu' };
  const frame = (pc: bigint) => {
    const symbol = names[pc.toString(16)];
    return symbol === undefined ? null : { symbol, offset: 0xb3n };
  };
  const p = packetJson(
    { origin: 'software', pc: 0x1n, pid: 42, comm: 'node', stack: [0x10n, 0x20n] },
    null,
    T,
    'tracefs',
    frame,
  );
  assert.deepEqual([p.pid, p.comm], [42, 'node']);
  assert.deepEqual(p.stack, [
    { pc: '0x10', symbol: 'ip_protocol_deliver_rcu', offset: 0xb3, module: null },
    { pc: '0x20', symbol: null, offset: null, module: null },
  ]);
  valid(p);
  const s = summaryJson(
    {
      origin: 'software',
      pc: 0x1n,
      reason: 'NO_SOCKET',
      count: 9,
      stacks: { sampled: 4, chains: [{ frames: [0x10n], count: 4 }] },
    },
    null,
    T,
    'tracefs',
    frame,
  );
  assert.deepEqual(s.stacks, {
    sampled: 4,
    chains: [{ count: 4, frames: [{ pc: '0x10', symbol: 'ip_protocol_deliver_rcu', offset: 0xb3, module: null }] }],
  });
  valid(s);
  const plain = summaryJson({ origin: 'software', pc: 0x1n, reason: null, count: 1 }, null, T, 'tracefs');
  assert.equal('stacks' in plain, false, 'without stacks on, summary objects keep their shape');
});

test('packet: NET_DM fields, %pS symbol split, hardware trap without pc, time falls back to report time', () => {
  const p = packetJson(
    {
      origin: 'software',
      pc: 0xffffffffc0a01234n,
      symbol: 'nft_do_chain+0x3a5/0x6d0 [nf_tables]',
      inPort: { ifindex: 2, name: 'eth0' },
      protocol: 0x86dd,
      payload: new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
      origLen: 1500,
      reason: 'NETFILTER_DROP',
    },
    { symbol: 'ignored', offset: 0n },
    T,
    'netdm',
  );
  assert.deepEqual([p.symbol, p.offset, p.module], ['nft_do_chain', 0x3a5, 'nf_tables']);
  assert.deepEqual([p.ifindex, p.ifname, p.length, p.origLength, p.payload], [2, 'eth0', 4, 1500, 'deadbeef']);
  assert.equal(p.time, '2024-01-02T03:04:05.678Z');
  valid(p);
  const hw = packetJson(
    { origin: 'hardware', trapName: 'source_mac_is_multicast', trapGroup: 'l2_drops', cookie: new Uint8Array([1, 2]) },
    null,
    T,
    'netdm',
  );
  assert.deepEqual(
    [hw.pc, hw.trap, hw.trapGroup, hw.cookie, hw.symbol],
    [null, 'source_mac_is_multicast', 'l2_drops', '0102', null],
  );
  valid(hw);
});

test('packet: the flow decoded from a real NET_DM alert (UDP to 127.0.0.1:9), and a flow cut short before ports', () => {
  const alert = decodePacketAlert(fixtureMessage('packet-alert-0.bin'));
  const p = packetJson({ ...alert, flow: decodeFlow(alert.payload!, alert.protocol) }, null, T, 'netdm');
  const sport = Buffer.from(alert.payload!).readUInt16BE(34);
  assert.deepEqual(
    [p.l3, p.src, p.dst, p.l4, p.sport, p.dport, p.ifindex, p.ifname],
    ['ipv4', '127.0.0.1', '127.0.0.1', 'udp', sport, 9, 1, null],
  );
  valid(p);
  const cut = decodePacketAlert(fixtureMessage('packet-alert-trunc20-0.bin'));
  const q = packetJson({ ...cut, flow: decodeFlow(cut.payload!, cut.protocol) }, null, T, 'netdm');
  assert.deepEqual([q.l3, q.src, q.dst, q.l4, q.sport, q.dport], ['ipv4', null, null, null, null, null]);
  valid(q);
  const v6 = packetJson(
    {
      origin: 'software',
      flow: { ...decodeFlow(new Uint8Array(0)), l3: 'ipv6', src: '::1', dst: 'fe80::1', l4: '58' },
    },
    null,
    T,
    'netdm',
  );
  valid(v6);
  for (const bad of [{ sport: 65536 }, { l3: 'ip' }, { l4: 'UDP' }, { src: 1 }])
    assert.notDeepEqual(validateEvent({ ...p, ...bad }), [], JSON.stringify(bad));
});

test('parseKernelSymbol handles core, module and odd %pS text', () => {
  assert.deepEqual(parseKernelSymbol('kfree_skb_reason+0x9f/0x1a0'), { symbol: 'kfree_skb_reason', offset: 0x9fn });
  assert.deepEqual(parseKernelSymbol('f+0x1/0x2 [m]'), { symbol: 'f', offset: 1n, module: 'm' });
  assert.deepEqual(parseKernelSymbol('0xffffffffc0001234'), { symbol: '0xffffffffc0001234', offset: 0n });
});

test('lost and overflow objects', () => {
  const l = lostJson(12, 'tracefs ring buffer cpu1', T, 'tracefs');
  assert.deepEqual(l, {
    type: 'lost',
    time: '2024-01-02T03:04:05.678Z',
    backend: 'tracefs',
    lost: 12,
    where: 'tracefs ring buffer cpu1',
  });
  valid(l);
  const o = overflowJson({ drops: 500, distinct: 4096, distinctIsLowerBound: true, limit: 4096 }, T, 'tracefs');
  assert.deepEqual(o, {
    type: 'overflow',
    time: '2024-01-02T03:04:05.678Z',
    backend: 'tracefs',
    count: 500,
    locations: 4096,
    locationsLowerBound: true,
    limit: 4096,
  });
  valid(o);
});

test('isoFromNs keeps nine digits, including leading zeros', () => {
  assert.equal(isoFromNs(1_000_000_000n * 86400n + 5n), '1970-01-02T00:00:00.000000005Z');
});

test('the schema has teeth: each kind of bad event fails, and the error names what is wrong', () => {
  const summary = JSON.parse(
    jsonLine(summaryJson({ origin: 'software', pc: 0x10n, reason: null, count: 1 }, null, T, 'tracefs')),
  ) as Record<string, unknown>;
  const packet = JSON.parse(
    jsonLine(packetJson({ origin: 'software', pc: 0x10n, protocol: 0x800 }, null, T, 'tracefs')),
  ) as Record<string, unknown>;
  const lost = JSON.parse(jsonLine(lostJson(1, 'netlink socket', T, 'netdm'))) as Record<string, unknown>;
  const overflow = JSON.parse(
    jsonLine(overflowJson({ drops: 5, distinct: 2, distinctIsLowerBound: false, limit: 1 }, T, 'netdm')),
  ) as Record<string, unknown>;
  for (const good of [summary, packet, lost, overflow]) assert.deepEqual(validateEvent(good), [], JSON.stringify(good));
  const without = (o: Record<string, unknown>, key: string) =>
    Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));
  const bad: [unknown, RegExp][] = [
    [{ ...summary, count: '1' }, /^\/count: must be integer$/],
    [{ ...summary, count: 0 }, /^\/count: must be >= 1$/],
    [{ ...summary, pc: '0XFF' }, /^\/pc: must match pattern/],
    [{ ...summary, pc: 16 }, /^\/pc: must be string$/],
    [{ ...summary, extra: true }, /^\/: unexpected property extra$/],
    [
      { ...summary, backend: 'pcap' },
      /^\/backend: must be equal to one of the allowed values \["netdm","tracefs","bpf"\]$/,
    ],
    [{ ...summary, time: '2024-01-02 03:04:05' }, /^\/time: must match format "date-time"$/],
    // The pattern alone would pass a day that does not exist; the date-time format does not.
    [{ ...summary, time: '2024-02-30T03:04:05Z' }, /^\/time: must match format "date-time"$/],
    [{ ...summary, type: 'nope' }, /^\/type: must be equal to one of the allowed values/],
    [without(summary, 'reason'), /^\/: must have required property 'reason'$/],
    [without(summary, 'type'), /^\/: must have required property 'type'$/],
    [{ ...packet, count: 2 }, /^\/count: must be equal to constant 1$/],
    [{ ...packet, payload: 'abc' }, /^\/payload: must match pattern/],
    [without(packet, 'ifindex'), /^\/: must have required property 'ifindex'$/],
    [{ ...lost, lost: 0 }, /^\/lost: must be >= 1$/],
    [{ ...lost, count: 1 }, /^\/: unexpected property count$/],
    [{ ...overflow, locationsLowerBound: 'no' }, /^\/locationsLowerBound: must be boolean$/],
    [[summary], /^\/: must be object$/],
    [null, /^\/: must be object$/],
  ];
  for (const [event, expected] of bad) {
    const errors = validateEvent(event);
    assert.ok(
      errors.some((e) => expected.test(e)),
      `${JSON.stringify(event)}: ${JSON.stringify(errors)} has no ${expected}`,
    );
  }
});
