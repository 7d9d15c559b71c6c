// Aggregator: keys, first-seen order, reset on flush, and the cap that keeps a storm of distinct locations bounded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DropAggregator, DEFAULT_MAX_KEYS, MAX_CHAINS_PER_LOCATION } from '../../src/aggregate/index.js';
import type { SummaryEntry } from '../../src/backend/types.js';

const sw = (pc: bigint, count: number, reason: string | null = null): SummaryEntry => ({
  origin: 'software',
  pc,
  reason,
  count,
});
const hw = (trap: string, count: number): SummaryEntry => ({ origin: 'hardware', pc: 0n, trap, reason: null, count });

test('sums per (origin, pc, trap, reason) across batches, in first-seen order', () => {
  const a = new DropAggregator();
  a.add([sw(0xffffffff820a7f2cn, 60, 'NO_SOCKET'), sw(0xffffffff81e94f20n, 1)]);
  a.add([hw('ingress_flow_action_drop', 3), sw(0xffffffff820a7f2cn, 40, 'NO_SOCKET')]);
  a.add([sw(0xffffffff820a7f2cn, 5, 'OTHERHOST'), sw(0xffffffff820a7f2cn, 7), hw('ingress_flow_action_drop', 2)]);
  a.add([sw(0n, 1), hw('blackhole_route', 1)]);
  assert.deepEqual(a.flush(), {
    lines: [
      sw(0xffffffff820a7f2cn, 100, 'NO_SOCKET'),
      sw(0xffffffff81e94f20n, 1),
      hw('ingress_flow_action_drop', 5),
      sw(0xffffffff820a7f2cn, 5, 'OTHERHOST'),
      sw(0xffffffff820a7f2cn, 7),
      sw(0n, 1),
      hw('blackhole_route', 1),
    ],
    overflow: null,
  });
});

test('null reason, empty reason, absent trap and empty trap are different keys', () => {
  const a = new DropAggregator();
  a.add([sw(1n, 1, null), sw(1n, 1, ''), { origin: 'hardware', pc: 0n, reason: null, count: 1 }, hw('', 1)]);
  assert.equal(a.flush().lines.length, 4);
});

test('flush resets; input objects are neither kept nor mutated', () => {
  const a = new DropAggregator();
  const e = sw(5n, 2);
  a.add([e]);
  a.add([e]);
  assert.equal(e.count, 2);
  assert.deepEqual(a.flush().lines, [sw(5n, 4)]);
  assert.deepEqual(a.flush(), { lines: [], overflow: null });
  assert.equal(a.size, 0);
});

test('past the cap, new locations go to the overflow tally; known ones still count', () => {
  const a = new DropAggregator({ maxKeys: 2 });
  a.add([sw(1n, 1), sw(2n, 1), sw(3n, 10), sw(4n, 20), sw(3n, 1), sw(1n, 5)]);
  assert.deepEqual(a.flush(), {
    lines: [sw(1n, 6), sw(2n, 1)],
    overflow: { drops: 31, distinct: 2, distinctIsLowerBound: false, limit: 2 },
  });
  // The next interval starts empty, cap and tally included.
  a.add([sw(9n, 1)]);
  assert.deepEqual(a.flush(), { lines: [sw(9n, 1)], overflow: null });
});

test('a storm of distinct locations stays bounded', () => {
  const a = new DropAggregator({ maxKeys: 100 });
  const batch: SummaryEntry[] = [];
  for (let i = 0; i < 100_000; i++) batch.push(sw(0xffffffff81000000n + BigInt(i), 1));
  a.add(batch);
  assert.equal(a.size, 100);
  const { lines, overflow } = a.flush();
  assert.equal(lines.length, 100);
  assert.deepEqual(overflow, { drops: 99_900, distinct: 100, distinctIsLowerBound: true, limit: 100 });
});

test('default cap and option validation', () => {
  assert.equal(new DropAggregator().maxKeys, DEFAULT_MAX_KEYS);
  assert.equal(DEFAULT_MAX_KEYS, 4096);
  assert.throws(() => new DropAggregator({ maxKeys: 0 }), RangeError);
  assert.throws(() => new DropAggregator({ maxKeys: 1.5 }), RangeError);
});

test('property: totals are conserved and lines are unique keys', () => {
  const entry = fc.record({
    origin: fc.constantFrom('software' as const, 'hardware' as const),
    pc: fc.bigInt({ min: 0n, max: 20n }),
    reason: fc.constantFrom(null, 'NO_SOCKET', 'OTHERHOST'),
    count: fc.integer({ min: 0, max: 1000 }),
  });
  fc.assert(
    fc.property(
      fc.array(fc.array(entry, { maxLength: 30 }), { maxLength: 8 }),
      fc.integer({ min: 1, max: 50 }),
      (batches, max) => {
        const a = new DropAggregator({ maxKeys: max });
        for (const b of batches) a.add(b);
        const { lines, overflow } = a.flush();
        const total = batches.flat().reduce((s, e) => s + e.count, 0);
        const shown = lines.reduce((s, e) => s + e.count, 0);
        assert.equal(shown + (overflow?.drops ?? 0), total);
        assert.ok(lines.length <= max);
        const keys = new Set(lines.map((l) => `${l.origin}|${l.pc}|${l.reason}`));
        assert.equal(keys.size, lines.length);
      },
    ),
  );
});

test('call chains: merged per location across batches, samples-only entries add to a line but never make one', () => {
  const a = new DropAggregator();
  const chain = (frames: bigint[], count: number) => ({ frames, count });
  a.add([{ origin: 'software', pc: 0x10n, reason: 'NO_SOCKET', count: 5 }]);
  a.add([
    {
      origin: 'software',
      pc: 0x10n,
      reason: 'NO_SOCKET',
      count: 0,
      stacks: { sampled: 3, chains: [chain([1n, 2n], 2), chain([1n, 3n], 1)] },
    },
    { origin: 'software', pc: 0x20n, reason: null, count: 0, stacks: { sampled: 1, chains: [chain([9n], 1)] } },
  ]);
  a.add([
    {
      origin: 'software',
      pc: 0x10n,
      reason: 'NO_SOCKET',
      count: 2,
      stacks: { sampled: 2, chains: [chain([1n, 3n], 2)] },
    },
  ]);
  const { lines } = a.flush();
  assert.equal(lines.length, 1, 'the location with samples only is not printed as "0 drops"');
  assert.equal(lines[0]!.count, 7);
  assert.deepEqual(lines[0]!.stacks, {
    sampled: 5,
    chains: [chain([1n, 3n], 3), chain([1n, 2n], 2)],
  });
});

test('call chains: at most MAX_CHAINS_PER_LOCATION kept per line; the rest still count as sampled', () => {
  const a = new DropAggregator();
  const many = Array.from({ length: MAX_CHAINS_PER_LOCATION + 10 }, (_, i) => ({ frames: [BigInt(i)], count: 1 }));
  a.add([
    { origin: 'software', pc: 1n, reason: null, count: many.length, stacks: { sampled: many.length, chains: many } },
  ]);
  const [line] = a.flush().lines;
  assert.equal(line!.stacks!.chains.length, MAX_CHAINS_PER_LOCATION);
  assert.equal(line!.stacks!.sampled, many.length);
});

test('places merge per namespace, device and task: drops of two tasks on one device stay apart', () => {
  const a = new DropAggregator();
  const entry = (comm: string | undefined, count: number): SummaryEntry => ({
    ...sw(1n, count, 'NO_SOCKET'),
    places: [{ netns: 7, ifindex: 1, ifname: 'lo', ...(comm === undefined ? {} : { pid: 5, comm }), count }],
  });
  a.add([entry('nginx', 2), entry('curl', 3)]);
  a.add([entry('nginx', 4), entry(undefined, 1)]);
  const [line] = a.flush().lines;
  assert.equal(line!.count, 10);
  assert.deepEqual(
    line!.places!.map((p) => [p.comm, p.count]),
    [
      ['nginx', 6],
      ['curl', 3],
      [undefined, 1],
    ],
  );
});

test('places merge per task cgroup too: a task moved to another cgroup within the interval keeps both apart', () => {
  const a = new DropAggregator();
  const entry = (cgroup: number, count: number): SummaryEntry => ({
    ...sw(1n, count, 'NO_SOCKET'),
    places: [{ netns: 7, ifindex: 0, ifname: null, pid: 5, comm: 'nc', cgroup, count }],
  });
  a.add([entry(519, 2), entry(600, 3)]);
  a.add([entry(519, 4)]);
  const [line] = a.flush().lines;
  assert.deepEqual(
    line!.places!.map((p) => [p.cgroup, p.count]),
    [
      [519, 6],
      [600, 3],
    ],
  );
});
