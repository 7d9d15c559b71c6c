import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  compile,
  constantWithout,
  FIELDS,
  format,
  FilterSyntaxError,
  parse,
  pushdown,
  type Expr,
  type Field,
  type FilterRecord,
} from '../../src/filter/index.js';
import { evalKernel, fixtureReasons, parseKernelFilter } from './helpers.js';

const reasons = fixtureReasons();
const reasonNames = [...reasons.values()];

/** parse() either succeeds or throws a one-line FilterSyntaxError whose column lies inside the text (or just past it). */
function parsesOrRejects(src: string): void {
  try {
    parse(src);
  } catch (e) {
    if (!(e instanceof FilterSyntaxError)) throw e;
    assert.equal(e.code, 'E_BAD_INPUT');
    assert.ok(
      !e.message.includes('\n') && e.message.startsWith('filter: ') && e.message.endsWith(` at column ${e.column}`),
      e.message,
    );
    assert.ok(e.column >= 1 && e.column <= Array.from(src).length + 1, `column ${e.column} of ${JSON.stringify(src)}`);
  }
}

const pieces = [
  'reason',
  'symbol',
  'origin',
  'protocol',
  'ifindex',
  'ifname',
  'foo',
  '==',
  '!=',
  '=~',
  '!~',
  '=',
  '&&',
  '||',
  '&',
  '|',
  '!',
  '(',
  ')',
  ' ',
  'NO_SOCKET',
  'software',
  'hw',
  'ip',
  'ipv6',
  '0x800',
  '2048',
  '0800',
  '0x',
  '"a b"',
  "'x'",
  '"',
  "'",
  '/^tcp_/',
  '/(/',
  '/a/gi',
  '/',
  '\\',
  '[',
  'é',
  '😀',
  '\u0000',
  '#',
  '<',
  '~',
  '99999999999999999999',
  'l3',
  'l4',
  'src',
  'dst',
  'sport',
  'dport',
  ' in ',
  ' not in ',
  'not',
  'udp',
  'icmpv6',
  '70000',
  '10.0.0.0/8',
  '10.0.0.0/33',
  '/',
  '::1',
  '::',
  ':',
  '.',
  '2001:db8::/32',
  'fe80::1%eth0',
  '::ffff:192.0.2.1',
  '1.2.3',
  '"::1/128"',
];
const soup = fc
  .array(fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 3, unit: 'binary' })), { maxLength: 25 })
  .map((a) => a.join(''));

const ADDRESSES = ['127.0.0.1', '192.0.2.1', '::1', '2001:db8::5', '::ffff:192.0.2.1'];

const leaf: fc.Arbitrary<Expr> = fc.oneof(
  fc.record({
    type: fc.constant('cmp'),
    field: fc.constant('reason'),
    op: fc.constantFrom('==', '!='),
    value: fc.constantFrom(...reasonNames.slice(0, 12), 'NO_SUCH', 'TCP_CSUM'),
  }),
  fc.record({
    type: fc.constant('match'),
    field: fc.constant('reason'),
    op: fc.constantFrom('=~', '!~'),
    pattern: fc.constantFrom('^TCP_', 'CSUM', 'SOCK', '^IP', 'X{2}', '[0-9]', '.', '^$', 'NOMEM$', '[AEIOU]_[AEIOU]'),
    flags: fc.constantFrom('', 'i'),
  }),
  fc.record({
    type: fc.constant('cmp'),
    field: fc.constant('protocol'),
    op: fc.constantFrom('==', '!='),
    value: fc.constantFrom(0, 0x800, 0x86dd, 0x806, 0xffff),
  }),
  fc.record({
    type: fc.constant('cmp'),
    field: fc.constant('origin'),
    op: fc.constantFrom('==', '!='),
    value: fc.constantFrom('software', 'hardware'),
  }),
  fc.record({
    type: fc.constant('match'),
    field: fc.constant('origin'),
    op: fc.constantFrom('=~', '!~'),
    pattern: fc.constantFrom('soft', '^hard', 'ware'),
    flags: fc.constant(''),
  }),
  fc.record({
    type: fc.constant('cmp'),
    field: fc.constantFrom('symbol', 'ifname'),
    op: fc.constantFrom('==', '!='),
    value: fc.constantFrom('__udp4_lib_rcv', 'eth0', 'a b', 'x"y\\z'),
  }),
  fc.record({
    type: fc.constant('match'),
    field: fc.constantFrom('symbol', 'ifname'),
    op: fc.constantFrom('=~', '!~'),
    pattern: fc.constantFrom('udp', '^eth', 'a/b', '[/]'),
    flags: fc.constantFrom('', 'i', 'su'),
  }),
  fc.record({
    type: fc.constant('cmp'),
    field: fc.constant('ifindex'),
    op: fc.constantFrom('==', '!='),
    value: fc.constantFrom(1, 2, 7),
  }),
  fc.record({
    type: fc.constant('cmp'),
    field: fc.constant('l3'),
    op: fc.constantFrom('==', '!='),
    value: fc.constantFrom('ipv4', 'ipv6', 'arp'),
  }),
  fc.record({
    type: fc.constant('cmp'),
    field: fc.constant('l4'),
    op: fc.constantFrom('==', '!='),
    value: fc.constantFrom(1, 6, 17, 58, 200),
  }),
  fc.record({
    type: fc.constant('cmp'),
    field: fc.constantFrom('sport', 'dport'),
    op: fc.constantFrom('==', '!='),
    value: fc.constantFrom(0, 9, 53, 65535),
  }),
  fc.record({
    type: fc.constant('addr'),
    field: fc.constantFrom('src', 'dst'),
    op: fc.constantFrom('==', '!='),
    address: fc.constantFrom(...ADDRESSES),
    prefix: fc.constant(null),
  }),
  fc
    .tuple(
      fc.constantFrom('src' as const, 'dst' as const),
      fc.constantFrom('in' as const, 'not in' as const),
      fc.constantFrom<[string, number]>(
        ['10.0.0.0', 8],
        ['127.0.0.0', 8],
        ['192.0.2.1', 32],
        ['0.0.0.0', 0],
        ['2001:db8::', 32],
        ['::', 0],
        ['::1', 128],
        ['::ffff:10.0.0.0', 104],
      ),
    )
    .map(([field, op, [address, prefix]]): Expr => ({ type: 'addr', field, op, address, prefix })),
);

const { expr } = fc.letrec<{ expr: Expr }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({
      type: fc.constantFrom('and', 'or'),
      args: fc.array(tie('expr'), { minLength: 2, maxLength: 4 }),
    }) as fc.Arbitrary<Expr>,
    fc.record({ type: fc.constant('not'), arg: tie('expr') }) as fc.Arbitrary<Expr>,
  ),
}));

/** Addresses as the decoder may write them: IPv4, IPv6, IPv4-mapped in both spellings. */
const DECODED = ['127.0.0.1', '10.1.2.3', '192.0.2.1', '::1', '2001:db8::5', '::ffff:10.0.0.1', '::ffff:c000:201'];
const flow = {
  l3: fc.constantFrom(null, 'ipv4', 'ipv6', 'arp'),
  l4: fc.constantFrom(null, 1, 6, 17, 58),
  src: fc.constantFrom(null, ...DECODED),
  dst: fc.constantFrom(null, ...DECODED),
  sport: fc.constantFrom(null, 0, 9, 53, 65535),
  dport: fc.constantFrom(null, 0, 9, 53, 65535),
};

const record: fc.Arbitrary<FilterRecord> = fc.record({
  reason: fc.constantFrom(null, ...reasonNames.slice(0, 12), 'TCP_CSUM', 'NO_SUCH'),
  symbol: fc.constantFrom(null, '__udp4_lib_rcv', 'tcp_v4_rcv', 'a/b'),
  origin: fc.constantFrom('software', 'hardware'),
  protocol: fc.constantFrom(null, 0, 0x800, 0x86dd, 0x806, 0xffff),
  ifindex: fc.constantFrom(null, 1, 2),
  ifname: fc.constantFrom(null, 'eth0', 'a b', 'x"y\\z'),
  netns: fc.constantFrom(null, 4026531840),
  ...flow,
});

test('random token soup parses or throws E_BAD_INPUT, nothing else', () => {
  fc.assert(fc.property(soup, parsesOrRejects), { numRuns: 3000 });
  fc.assert(fc.property(fc.string({ maxLength: 60, unit: 'binary' }), parsesOrRejects), { numRuns: 2000 });
});

test('mutated valid expressions parse or throw E_BAD_INPUT', () => {
  const mutated = fc
    .tuple(expr, fc.nat(), fc.nat({ max: 4 }), fc.constantFrom(...pieces, ''))
    .map(([e, at, del, ins]) => {
      const s = format(e);
      const i = at % (s.length + 1);
      return s.slice(0, i) + ins + s.slice(i + del);
    });
  fc.assert(fc.property(mutated, parsesOrRejects), { numRuns: 3000 });
});

test('format and parse round-trip, keeping the meaning', () => {
  fc.assert(
    fc.property(expr, fc.array(record, { minLength: 1, maxLength: 8 }), (e, recs) => {
      const text = format(e);
      const back = parse(text);
      assert.equal(format(back), text);
      const [a, b] = [compile(e), compile(back)];
      for (const r of recs) assert.equal(b(r), a(r), text);
    }),
    { numRuns: 2000 },
  );
});

// This machine's table has no gaps and no repeated names; the second one has both, as other kernels may.
const gappy = new Map([...reasons].filter(([n]) => n % 5 !== 0 && n % 7 !== 1));
gappy.set(300, 'NO_SOCKET');
gappy.set(301, 'TCP_CSUM');

for (const [label, reasons] of [
  ['this kernel', fixtureReasons()],
  ['a table with gaps and duplicates', gappy],
] as const) {
  test(`pushdown (${label}): kernel filter AND user predicate equals the original on every event`, () => {
    const known = [...reasons.keys()];
    const event = fc.record({
      reason: fc.oneof(fc.constantFrom(...known), fc.constantFrom(0, 1, 200, 0xffffffff), fc.nat({ max: 300 })),
      protocol: fc.oneof(fc.constantFrom(0, 0x800, 0x86dd, 0x806, 0xffff), fc.nat({ max: 0xffff })),
      symbol: fc.constantFrom(null, '__udp4_lib_rcv', 'a/b'),
      ifname: fc.constantFrom(null, 'eth0', 'a b'),
      ifindex: fc.constantFrom(null, 1, 2),
      ...flow,
    });
    fc.assert(
      fc.property(expr, fc.array(event, { minLength: 1, maxLength: 20 }), (e, evs) => {
        const want = compile(e);
        const { kernel, user } = pushdown(e, reasons);
        const k = kernel === null ? null : parseKernelFilter(kernel);
        for (const ev of evs) {
          // The tracefs backend's record model: reason through the table, protocol raw, origin software.
          const r: FilterRecord = {
            reason: reasons.get(ev.reason) ?? null,
            symbol: ev.symbol,
            origin: 'software',
            protocol: ev.protocol,
            ifindex: ev.ifindex,
            ifname: ev.ifname,
            netns: null,
            l3: ev.l3,
            l4: ev.l4,
            src: ev.src,
            dst: ev.dst,
            sport: ev.sport,
            dport: ev.dport,
          };
          const got = (k === null || evalKernel(k, ev)) && (user === null || user(r));
          assert.equal(got, want(r), `${format(e)} | kernel: ${kernel} | ${JSON.stringify(ev)}`);
        }
      }),
      { numRuns: 3000 },
    );
  });
}

test('constantWithout: a verdict it gives holds for every drop that lacks those fields; none is given wrongly', () => {
  fc.assert(
    fc.property(
      expr,
      fc.subarray([...FIELDS] as Field[]),
      fc.array(record, { minLength: 1, maxLength: 12 }),
      (e, missing, recs) => {
        const unknown = new Set<Field>(missing);
        const verdict = constantWithout(e, unknown);
        const p = compile(e);
        for (const r of recs) {
          const without = { ...r } as Record<Field, unknown>;
          for (const f of unknown) if (f !== 'origin') without[f] = null;
          const got = p(without as unknown as FilterRecord);
          if (verdict !== null) assert.equal(got, verdict, `${format(e)} without ${missing.join(',')}`);
        }
      },
    ),
    { numRuns: 3000 },
  );
});
