// Seeded fuzzing of the flow decoder from captured frames: mutated, cut and re-typed bytes always decode to a
// consistent flow, never throw, and never read outside the bytes they are given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { decodeFlow, MAX_VLANS, type Flow } from '../../src/packet/index.js';
import { capture, hostFrames, netdmPackets } from './fixtures.js';

const seeds = [...hostFrames(), ...capture('guest-vlan')].map((f) => f.bytes);
seeds.push(...netdmPackets().map((p) => p.packet.payload!));
// skb protocols the kernel sends, plus none and a few the bytes will not match.
const PROTOCOLS = [undefined, 0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8, 0x0004, 0x88cc, 0];
// Offsets where the headers' interesting fields lie in a frame (Ethernet, VLAN, IP, extension, transport).
const HOT = fc.integer({ min: 0, max: 100 });

type Mutation =
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'cut'; at: number }
  | { kind: 'drop'; at: number; count: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('byte' as const), at: HOT, value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.integer({ min: 0, max: 2000 }) }),
  fc.record({ kind: fc.constant('drop' as const), at: HOT, count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: HOT, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);

function mutate(base: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = Uint8Array.from(base);
  for (const m of ms) {
    if (m.kind === 'byte') {
      if (m.at < b.length) b[m.at] = m.value;
    } else if (m.kind === 'cut') b = b.slice(0, m.at);
    else if (m.kind === 'drop') b = Uint8Array.from([...b.subarray(0, m.at), ...b.subarray(m.at + m.count)]);
    else b = Uint8Array.from([...b.subarray(0, m.at), ...m.bytes, ...b.subarray(m.at)]);
  }
  return b;
}

const u16 = (v: number | null): boolean => v === null || (Number.isInteger(v) && v >= 0 && v <= 0xffff);

function consistent(f: Flow): void {
  assert.ok(f.l3 === null || f.l3 === 'ipv4' || f.l3 === 'ipv6' || f.l3 === 'arp');
  const addr = f.l3 === 'ipv6' ? isIPv6 : isIPv4;
  for (const a of [f.src, f.dst]) assert.ok(a === null || (f.l3 !== null && addr(a)), `address ${a} under ${f.l3}`);
  assert.ok(u16(f.sport) && u16(f.dport));
  assert.equal(f.sport === null, f.dport === null, 'ports come in pairs');
  if (f.sport !== null)
    assert.ok(['tcp', 'udp', 'udplite', 'sctp', 'dccp'].includes(f.l4 ?? ''), `ports under ${f.l4}`);
  if (f.l4 !== null) assert.ok(f.l3 === 'ipv4' || f.l3 === 'ipv6', `l4 ${f.l4} under ${f.l3}`);
  assert.ok(f.l4 === null || /^[a-z0-9-]+$/.test(f.l4));
  assert.ok(f.vlans.length <= MAX_VLANS && f.vlans.every((v) => Number.isInteger(v) && v >= 0 && v < 4096));
  assert.ok(f.stopped === null || (typeof f.stopped === 'string' && f.stopped !== '' && !f.stopped.includes('\n')));
  assert.ok(f.length === undefined || (Number.isInteger(f.length) && f.length >= 0 && f.length <= 0xffff + 40));
  if (f.fragment !== undefined && f.fragment.offset > 0) assert.equal(f.sport, null, 'no ports in a later fragment');
}

test('fuzz: mutations and cuts of captured frames decode to consistent flows, within their bytes', () => {
  fc.assert(
    fc.property(
      fc.nat(seeds.length - 1),
      fc.array(mutation, { minLength: 1, maxLength: 6 }),
      fc.constantFrom(...PROTOCOLS),
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      (which, ms, protocol, poison) => {
        const bytes = mutate(seeds[which]!, ms);
        const flow = decodeFlow(bytes, protocol);
        consistent(flow);
        // The same bytes as a view inside a larger buffer with other bytes around them decode the same: nothing
        // outside the view is read.
        const room = new Uint8Array(poison.length + bytes.length + poison.length);
        room.set(poison, 0);
        room.set(bytes, poison.length);
        room.set(poison, poison.length + bytes.length);
        assert.deepEqual(decodeFlow(room.subarray(poison.length, poison.length + bytes.length), protocol), flow);
      },
    ),
    { seed: 0x5eed, numRuns: 30_000 },
  );
});

test('fuzz: random bytes under every protocol never throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(...PROTOCOLS), (bytes, protocol) => {
      consistent(decodeFlow(bytes, protocol));
    }),
    { seed: 0xf10e, numRuns: 20_000 },
  );
});
