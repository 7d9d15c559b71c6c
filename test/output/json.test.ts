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
import { loadEventSchema, validate } from './json-schema.js';

const schema = loadEventSchema();
const T = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

function valid(event: EventJson): void {
  const line = jsonLine(event);
  assert.ok(!line.includes('\n'));
  assert.deepEqual(validate(schema, JSON.parse(line)), [], line);
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
    cookie: null,
    protocol: 2048,
    length: null,
    origLength: null,
    payload: null,
  });
  valid(p);
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

test('the validator has teeth: wrong types, extra and missing fields, bad pc, bad time all fail', () => {
  const good = JSON.parse(
    jsonLine(summaryJson({ origin: 'software', pc: 0x10n, reason: null, count: 1 }, null, T, 'tracefs')),
  ) as Record<string, unknown>;
  assert.deepEqual(validate(schema, good), []);
  const bad: Record<string, unknown>[] = [
    { ...good, count: '1' },
    { ...good, count: 0 },
    { ...good, pc: '0XFF' },
    { ...good, pc: 16 },
    { ...good, extra: true },
    { ...good, backend: 'pcap' },
    { ...good, time: '2024-01-02 03:04:05' },
    { ...good, type: 'nope' },
    Object.fromEntries(Object.entries(good).filter(([k]) => k !== 'reason')),
  ];
  for (const b of bad) assert.notDeepEqual(validate(schema, b), [], JSON.stringify(b));
});
