// The split of a filter into per-field kernel sets and a user-space rest (pure): on every drop of a grid, the sets and
// the rest together give what the whole filter gives, and what goes where.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile, format, parse, pushdownSets, type FilterRecord } from '../../src/filter/index.js';
import type { KernelSetField, KernelSets } from '../../src/backend/types.js';
import { fixtureReasons, NO_FLOW } from './helpers.js';

const reasons = fixtureReasons();
const NS_A = 4026531840;
const NS_B = 4026532173;

/** A drop as the BPF program sees it: 0 for no namespace or no device, '' for no device's name. */
type KernelDrop = Record<Exclude<KernelSetField, 'ifname'>, number> & { ifname: string };

/** The sets' verdict, as bpf/dropwatch.bpf.c evaluates them. */
function kernelPasses(sets: KernelSets | null, d: KernelDrop): boolean {
  if (sets === null) return true;
  if (sets.none) return false;
  for (const [field, set] of Object.entries(sets.fields) as [KernelSetField, { allow: boolean; values: unknown[] }][])
    if (set.values.includes(d[field]) !== set.allow) return false;
  return true;
}

/** The record the bpf backend builds for that drop (src/bpf/backend.ts, src/bpf/decode.ts). */
const recordOf = (d: KernelDrop, flow = NO_FLOW): FilterRecord => ({
  reason: reasons.get(d.reason) ?? `UNKNOWN(${d.reason})`,
  symbol: '__udp4_lib_rcv',
  origin: 'software',
  protocol: d.protocol,
  ifindex: d.ifindex === 0 ? null : d.ifindex,
  ifname: d.ifindex === 0 ? null : d.ifname,
  netns: d.netns === 0 ? null : d.netns,
  ...flow,
});

/** Devices: none, and the same names in two namespaces under different indexes. */
const DEVICES: [number, string][] = [
  [0, ''],
  [1, 'lo'],
  [2, 'eth0'],
  [7, 'eth0'],
  [9, 'verylongname012'],
];

function* drops(): Generator<[KernelDrop, FilterRecord]> {
  for (const reason of [0, 2, 3, 5, 70, 200, 0x30001])
    for (const protocol of [0, 0x0800, 0x86dd])
      for (const netns of [0, NS_A, NS_B])
        for (const [ifindex, ifname] of DEVICES) {
          const d = { reason, protocol, netns, ifindex, ifname };
          yield [d, recordOf(d)];
        }
}

function assertExact(src: string, maxValues = 4096): ReturnType<typeof pushdownSets> {
  const e = parse(src);
  const want = compile(e);
  const split = pushdownSets(e, reasons, maxValues);
  for (const [d, r] of drops()) {
    const got = kernelPasses(split.kernel, d) && (split.user === null || split.user(r));
    assert.equal(got, want(r), `${src} on ${JSON.stringify(d)}; kernel ${JSON.stringify(split.kernel)}`);
  }
  return split;
}

const num = (name: string): number => [...reasons].find(([, n]) => n === name)![0];

test('each field alone, and a conjunction of fields, go whole to the kernel', () => {
  const s = assertExact(`ifindex == 2 && protocol == ipv4 && reason == NO_SOCKET && netns == ${NS_B}`);
  assert.equal(s.user, null);
  assert.deepEqual(s.kernel, {
    none: false,
    fields: {
      ifindex: { allow: true, values: [2] },
      protocol: { allow: true, values: [0x0800] },
      reason: { allow: true, values: [num('NO_SOCKET')] },
      netns: { allow: true, values: [NS_B] },
    },
  });
});

test('values of one field in a disjunction become one set; negations a deny set; both on a field, the difference', () => {
  const s = assertExact('(protocol == ipv4 || protocol == ipv6) && reason != NO_SOCKET && reason != NOT_SPECIFIED');
  assert.equal(s.user, null);
  assert.deepEqual(s.kernel?.fields.protocol, { allow: true, values: [0x0800, 0x86dd] });
  assert.deepEqual(s.kernel?.fields.reason, { allow: false, values: [num('NOT_SPECIFIED'), num('NO_SOCKET')] });
  const both = assertExact('(ifindex == 1 || ifindex == 2) && ifindex != 2');
  assert.deepEqual(both.kernel?.fields.ifindex, { allow: true, values: [1] });
});

test('a disjunction across fields stays in user space, beside the conjuncts the kernel takes', () => {
  const s = assertExact('(ifindex == 1 || protocol == ipv6) && reason == NO_SOCKET');
  assert.equal(format(s.userExpr!), 'ifindex == 1 || protocol == 0x86dd');
  assert.equal(format(s.kernelExpr!), 'reason == NO_SOCKET');
  assertExact('dport == 9 && netns != 0 && ifname == eth0');
  assertExact('(dev == eth0 || ifindex == 1) && netns != 0');
});

test('constants: software is always true here, hardware and ifindex 0 never match, and nothing passes the kernel', () => {
  assert.equal(assertExact('origin == software').kernel, null);
  for (const src of [
    'origin == hardware',
    'ifindex == 0',
    'netns == 0',
    'protocol == 1 && protocol == 2',
    'reason == NO_SUCH_REASON',
  ])
    assert.deepEqual(assertExact(src).kernel, { none: true, fields: {} }, src);
  assert.equal(assertExact('ifindex != 0').kernel, null, 'a drop without a device has ifindex null, which is != 0');
  assert.equal(assertExact('origin == hardware || dport == 9').user !== null, true);
});

test('device names (dev is ifname) go to the kernel as a name set: allow, deny, joined; a name no device has, none', () => {
  const s = assertExact('dev == eth0 && reason == NO_SOCKET');
  assert.equal(s.user, null);
  assert.deepEqual(s.kernel?.fields.ifname, { allow: true, values: ['eth0'] });
  assert.deepEqual(assertExact('dev != lo').kernel?.fields.ifname, { allow: false, values: ['lo'] });
  const both = assertExact('(dev == lo || dev == eth0) && dev != lo && ifindex != 7');
  assert.deepEqual(both.kernel?.fields.ifname, { allow: true, values: ['eth0'] });
  assertExact('dev == verylongname012');
  // Longer than a device name can be (15 bytes), empty, or past one byte a character (names read as latin1): none.
  for (const src of ['dev == verylongname0123', 'dev == ""', 'dev == "eth\u20ac"'])
    assert.deepEqual(assertExact(src).kernel, { none: true, fields: {} }, src);
  assert.equal(assertExact('dev != verylongname0123').kernel, null);
  // Patterns stay in user space.
  assert.notEqual(assertExact('dev =~ /^eth/').user, null);
});

test('reason patterns: letters only go to the kernel as the names they match; others stay in user space', () => {
  const s = assertExact('reason =~ /^TCP_/');
  assert.equal(s.user, null);
  assert.ok(s.kernel!.fields.reason!.values.length > 3);
  assertExact('reason !~ /SOCKET|CSUM/');
  // Could match UNKNOWN(n), a name outside the table: user space decides.
  for (const src of ['reason =~ /UNKNOWN/', 'reason =~ /\\(/', 'reason =~ /N.1/', 'reason !~ /[0-9]/', 'reason =~ /K/'])
    assert.notEqual(assertExact(src).user, null, src);
});

test('sets past maxValues leave whole conjuncts to user space, in order, and say so', () => {
  const list = Array.from({ length: 10 }, (_, i) => `protocol == ${i + 1}`).join(' || ');
  const s = assertExact(`reason == NO_SOCKET && (${list})`, 5);
  assert.equal(format(s.kernelExpr!), 'reason == NO_SOCKET');
  assert.equal(s.kernelLength, 11);
  assert.ok(s.tooLong !== null && s.user !== null);
});

test('a filter the kernel decides nothing of: no sets', () => {
  const s = assertExact('dst in 10.0.0.0/8');
  assert.equal(s.kernel, null);
  assert.equal(s.kernelExpr, null);
});

/** The reason the program tests for a hardware drop, which has none (DW_TRAP_NO_REASON in bpf/dropwatch.h). */
const TRAP_NO_REASON = 0xffffffff;

/** Software drops as above, and hardware drops as the trap program sees them: no reason, origin hardware. */
function* withHardware(): Generator<[KernelDrop, FilterRecord]> {
  yield* drops();
  for (const protocol of [0, 0x0800])
    for (const netns of [0, NS_A])
      for (const [ifindex, ifname] of [
        [0, ''],
        [3, 'eni0np1'],
        [4, 'eth0'],
      ] as const) {
        const d = { reason: TRAP_NO_REASON, protocol, netns, ifindex, ifname };
        yield [d, { ...recordOf(d), reason: null, symbol: null, origin: 'hardware' }];
      }
}

test('with hardware drops (bpf with devlink): origin stays in user space; the rest holds for trap reports too', () => {
  for (const src of [
    'origin == hardware',
    'origin == software',
    'origin =~ /hard/',
    'origin == hardware && ifindex == 3',
    'origin != hardware && reason == NO_SOCKET',
    'reason != NO_SOCKET && protocol == ipv4',
    'reason =~ /^TCP_/',
    'reason !~ /SOCKET/',
    `netns == ${NS_A} || netns == 0`,
    'ifname == eni0np1',
    'dev == eth0 && origin == hardware',
    'dev != eni0np1',
  ]) {
    const e = parse(src);
    const want = compile(e);
    const split = pushdownSets(e, reasons, 4096, true);
    for (const [d, r] of withHardware()) {
      const got = kernelPasses(split.kernel, d) && (split.user === null || split.user(r));
      assert.equal(got, want(r), `${src} on ${JSON.stringify(r)}; kernel ${JSON.stringify(split.kernel)}`);
    }
    if (src.startsWith('origin')) assert.match(format(split.userExpr!), /origin/, src);
  }
});
