// Summary lines grouped by --by keys: the aggregator's per-location lines regrouped over their places, every drop in
// exactly one line (or the overflow), names from an in-memory WorkloadNames, and the words of each line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { groupLines } from '../../src/aggregate/group.js';
import { isDefaultBy, parseBy } from '../../src/aggregate/keys.js';
import type { DropPlace, SummaryEntry } from '../../src/backend/types.js';
import { formatOverflowLine, formatSummaryLine } from '../../src/output/format.js';
import { DropwatchError } from '../../src/errors/index.js';
import { BLUE, CART, HOST, memoryWorkloadNames, SAMPLE, WEB, WEB_ID } from '../helpers/workload.js';

const names = memoryWorkloadNames(SAMPLE);
const lookup = (netns: number) => names.lookup(netns);
const UNKNOWN = 4026532999;

const place = (netns: number | null, ifname: string | null, count: number, comm?: string): DropPlace => ({
  netns,
  ifindex: ifname === null ? null : ifname.length,
  ifname,
  count,
  ...(comm === undefined ? {} : { pid: 42, comm }),
});

const UDP = 0xffffffff820a7f2cn;
const NF = 0xffffffff81c3a0f5n;
const lines: SummaryEntry[] = [
  {
    origin: 'software',
    pc: UDP,
    reason: 'NO_SOCKET',
    count: 10,
    places: [place(HOST, 'eth0', 1), place(BLUE, 'veth1', 2), place(WEB, 'eth0', 3, 'nginx'), place(CART, 'eth0', 4)],
  },
  {
    origin: 'software',
    pc: NF,
    reason: 'NETFILTER_DROP',
    count: 7,
    places: [place(CART, 'eth0', 5), place(UNKNOWN, 'eth0', 2), place(null, null, 0)].filter((p) => p.count > 0),
  },
];

/** Each grouped line as text, with `-l none`'s raw address. */
const text = (keys: string, max = 4096): string[] =>
  groupLines(lines, parseBy(keys), lookup, max).lines.map((l) => formatSummaryLine(l, null));

test('parseBy: the keys, comma-separated, each once; location alone (or with reason) is the default', () => {
  assert.deepEqual(parseBy('location'), ['location']);
  assert.deepEqual(parseBy('netns,dev'), ['netns', 'dev']);
  assert.deepEqual(parseBy(' pod , container,pod'), ['pod', 'container']);
  assert.equal(isDefaultBy(parseBy('location')), true);
  assert.equal(isDefaultBy(parseBy('location,reason')), true);
  assert.equal(isDefaultBy(parseBy('reason')), false);
  assert.equal(isDefaultBy(parseBy('location,dev')), false);
  for (const bad of ['', 'netns,', 'ns', 'location,Container'])
    assert.throws(
      () => parseBy(bad),
      (e: unknown) =>
        e instanceof DropwatchError &&
        /^(unknown key '.*'|no key) \(keys: location, reason, netns, container, pod, dev, comm\)$/.test(e.message),
      bad,
    );
});

test('by location and device: the dropwatch line, then the device, one line per location and device', () => {
  assert.deepEqual(text('location,dev'), [
    '8 drops at location 0xffffffff820a7f2c [software] NO_SOCKET · dev eth0',
    '2 drops at location 0xffffffff820a7f2c [software] NO_SOCKET · dev veth1',
    '7 drops at location 0xffffffff81c3a0f5 [software] NETFILTER_DROP · dev eth0',
  ]);
});

test('by namespace: the host as host, an ip netns by name and inode, an unnamed one by inode', () => {
  assert.deepEqual(text('netns'), [
    '1 drops · netns host',
    `2 drops · netns blue (${BLUE})`,
    `3 drops · netns ${WEB}`,
    `9 drops · netns ${CART}`,
    `2 drops · netns ${UNKNOWN}`,
  ]);
});

test('by container: named with its short ID; a namespace with no container known yet stands in by its namespace', () => {
  assert.deepEqual(text('container'), [
    '1 drops · netns host',
    `2 drops · netns blue (${BLUE})`,
    `3 drops · container web (${WEB_ID.slice(0, 12)})`,
    '9 drops · container cart (c0ffee012345)',
    `2 drops · netns ${UNKNOWN}`,
  ]);
  // With netns asked for too, the container is said to be unknown, and the namespace comes in its own place.
  assert.deepEqual(text('container,netns,dev').slice(0, 3), [
    '1 drops · container - netns host dev eth0',
    `2 drops · container - netns blue (${BLUE}) dev veth1`,
    `3 drops · container web (${WEB_ID.slice(0, 12)}) netns ${WEB} dev eth0`,
  ]);
});

test('by location, pod and device, and by reason and task', () => {
  assert.deepEqual(text('location,pod,dev').slice(-2), [
    '5 drops at location 0xffffffff81c3a0f5 [software] NETFILTER_DROP · pod shop/cart-7d9f dev eth0',
    `2 drops at location 0xffffffff81c3a0f5 [software] NETFILTER_DROP · netns ${UNKNOWN} dev eth0`,
  ]);
  assert.deepEqual(text('reason,comm'), [
    '7 drops · reason NO_SOCKET comm -',
    '3 drops · reason NO_SOCKET comm nginx',
    '7 drops · reason NETFILTER_DROP comm -',
  ]);
});

test('without names (none made yet) every namespace is its inode, and container stands in by it', () => {
  const out = groupLines(lines, parseBy('container'), null, 4096).lines.map((l) => formatSummaryLine(l, null));
  assert.deepEqual(out, [
    `1 drops · netns ${HOST}`,
    `2 drops · netns ${BLUE}`,
    `3 drops · netns ${WEB}`,
    `9 drops · netns ${CART}`,
    `2 drops · netns ${UNKNOWN}`,
  ]);
});

test('odd names are quoted, so a line always splits on spaces', () => {
  const odd: SummaryEntry[] = [
    {
      origin: 'software',
      pc: 1n,
      reason: null,
      count: 3,
      places: [place(null, null, 1, 'a b'), place(null, null, 2, '-')],
    },
  ];
  assert.deepEqual(
    groupLines(odd, parseBy('comm,netns'), lookup, 10).lines.map((l) => formatSummaryLine(l, null)),
    ['1 drops · netns - comm "a b"', '2 drops · netns - comm "-"'],
  );
});

test('a location without places (tracefs) counts as one drop place nowhere; call chains stay with a whole location', () => {
  const bare: SummaryEntry = {
    origin: 'software',
    pc: UDP,
    reason: 'NO_SOCKET',
    count: 4,
    stacks: { sampled: 1, chains: [] },
  };
  const out = groupLines([bare], parseBy('reason'), lookup, 10).lines;
  assert.deepEqual(
    out.map((l) => formatSummaryLine(l, null)),
    ['4 drops · reason NO_SOCKET'],
  );
  const whole = groupLines([bare], parseBy('location,dev'), lookup, 10).lines;
  assert.deepEqual(whole[0]!.stacks, bare.stacks);
  const split = groupLines([{ ...lines[0]!, stacks: bare.stacks }], parseBy('location,dev'), lookup, 10).lines;
  assert.equal(split.length, 2);
  assert.equal(
    split.every((l) => l.stacks === undefined),
    true,
    'chains cannot be split between devices',
  );
});

test('past the bound the rest is one overflow line (its groups counted up to the bound again)', () => {
  const r = groupLines(lines, parseBy('netns,dev'), lookup, 2);
  assert.equal(r.lines.length, 2);
  assert.deepEqual(r.overflow, { drops: 14, distinct: 2, distinctIsLowerBound: true, limit: 2, grouped: true });
  assert.equal(formatOverflowLine(r.overflow), '14 drops · 2+ more lines not listed (over 2 lines this interval)');
});

const KEYS = ['location', 'reason', 'netns', 'container', 'pod', 'dev', 'comm'] as const;

test('every drop is in exactly one line or the overflow, whatever the keys and the bound (property)', () => {
  const placeArb = fc.record({
    netns: fc.constantFrom(null, HOST, BLUE, WEB, CART, UNKNOWN),
    ifindex: fc.constantFrom(null, 1, 2),
    ifname: fc.constantFrom(null, 'lo', 'eth0'),
    comm: fc.constantFrom(undefined, 'nginx', 'curl'),
    count: fc.integer({ min: 1, max: 50 }),
  });
  const entryArb = fc.record({
    pc: fc.constantFrom(UDP, NF, 0n),
    reason: fc.constantFrom(null, 'NO_SOCKET', 'NETFILTER_DROP'),
    places: fc.array(placeArb, { maxLength: 6 }),
    extra: fc.integer({ min: 0, max: 3 }),
  });
  fc.assert(
    fc.property(
      fc.array(entryArb, { maxLength: 8 }),
      fc.subarray([...KEYS], { minLength: 1 }),
      fc.integer({ min: 1, max: 6 }),
      (raw, keys, max) => {
        const entries: SummaryEntry[] = raw.map((r) => {
          const places: DropPlace[] = r.places.map(({ comm, ...p }) => (comm === undefined ? p : { ...p, comm }));
          const count = places.reduce((sum, p) => sum + p.count, 0) + r.extra;
          return { origin: 'software', pc: r.pc, reason: r.reason, count: Math.max(count, 1), places };
        });
        const r = groupLines(entries, keys, lookup, max);
        const shown = r.lines.reduce((sum, l) => sum + l.count, 0) + (r.overflow?.drops ?? 0);
        assert.equal(
          shown,
          entries.reduce((sum, e) => sum + e.count, 0),
        );
        assert.ok(r.lines.length <= max);
        assert.ok(r.lines.every((l) => l.count > 0));
      },
    ),
    { numRuns: 500 },
  );
});
