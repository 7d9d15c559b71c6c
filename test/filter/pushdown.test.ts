import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile, format, parse, pushdown, unknownReasons, type FilterRecord } from '../../src/filter/index.js';
import { evalKernel, fixtureReasons, NO_FLOW, parseKernelFilter, type KernelEvent } from './helpers.js';

// This machine's kfree_skb reason table (kernel 6.18): NOT_SPECIFIED 2, NO_SOCKET 3, ..., MAX 128.
const reasons = fixtureReasons();

test('the fixture table is the real one', () => {
  assert.equal(reasons.get(2), 'NOT_SPECIFIED');
  assert.equal(reasons.get(3), 'NO_SOCKET');
  assert.ok(reasons.size > 50);
});

const num = (name: string): number => {
  for (const [n, v] of reasons) if (v === name) return n;
  throw new Error(`no ${name}`);
};

const UDP_TO_9 = { l3: 'ipv4', l4: 17, src: '127.0.0.1', dst: '127.0.0.1', sport: 40000, dport: 9 } as const;

// Every reason number (known and not), a few protocols, and user-only fields varied.
function* events(): Generator<[KernelEvent, FilterRecord]> {
  const nums = [0, 1, ...reasons.keys(), 200, 0xffffffff];
  for (const reason of nums) {
    for (const protocol of [0, 0x0800, 0x86dd, 0x0806, 0xffff]) {
      for (const [symbol, ifname, flow] of [
        [null, null, NO_FLOW],
        ['__udp4_lib_rcv', 'eth0', UDP_TO_9],
        ['tcp_v4_rcv', null, NO_FLOW],
        [null, null, UDP_TO_9],
      ] as const) {
        const record: FilterRecord = {
          reason: reasons.get(reason) ?? null,
          symbol,
          origin: 'software',
          protocol,
          ifindex: ifname ? 2 : null,
          ifname,
          netns: null,
          ...flow,
        };
        yield [{ reason, protocol }, record];
      }
    }
  }
}

function assertEquivalent(src: string): void {
  const e = parse(src);
  const want = compile(e);
  const { kernel, user } = pushdown(e, reasons);
  const k = kernel === null ? null : parseKernelFilter(kernel);
  for (const [ev, rec] of events()) {
    const got = (k === null || evalKernel(k, ev)) && (user === null || user(rec));
    assert.equal(got, want(rec), `${src} on ${JSON.stringify(ev)} / ${JSON.stringify(rec)}; kernel: ${kernel}`);
  }
}

test('pushdown table: [expression, kernel filter, user-space rest]', () => {
  const ns = num('NO_SOCKET');
  const tc = num('TCP_CSUM');
  const cases: [string, string | null, string | null][] = [
    ['reason == NO_SOCKET', `reason == ${ns}`, null],
    ['reason != NO_SOCKET', `reason != ${ns}`, null],
    ['reason == NO_SOCKET && protocol == ip', `reason == ${ns} && protocol == 2048`, null],
    ['reason == NO_SOCKET || protocol == ipv6', `reason == ${ns} || protocol == 34525`, null],
    [
      '(reason == NO_SOCKET || reason == TCP_CSUM) && protocol != arp',
      `(reason == ${ns} || reason == ${tc}) && protocol != 2054`,
      null,
    ],
    ['!(reason == NO_SOCKET || reason == TCP_CSUM)', `reason != ${ns} && reason != ${tc}`, null],
    ['!(reason == NO_SOCKET && protocol == ip)', `reason != ${ns} || protocol != 2048`, null],
    ['symbol == __udp4_lib_rcv', null, 'symbol == __udp4_lib_rcv'],
    ['reason == NO_SOCKET && symbol =~ /udp/', `reason == ${ns}`, 'symbol =~ /udp/'],
    ['reason == NO_SOCKET || symbol =~ /udp/', null, 'reason == NO_SOCKET || symbol =~ /udp/'],
    [
      '!(reason == NO_SOCKET || symbol == x) && protocol == ip',
      `reason != ${ns} && protocol == 2048`,
      '!(symbol == x)',
    ],
    ['origin == software', null, null],
    ['origin == software && reason == NO_SOCKET', `reason == ${ns}`, null],
    ['origin == hardware || reason == NO_SOCKET', `reason == ${ns}`, null],
    ['origin == software || symbol == x', null, null],
    ['origin == hardware && symbol == x', null, 'origin == hardware && symbol == x'],
    ['origin == hardware', null, 'origin == hardware'],
    ['origin !~ /soft/', null, 'origin !~ /soft/'],
    ['reason == NO_SUCH_REASON', null, 'reason == NO_SUCH_REASON'],
    ['reason != NO_SUCH_REASON && protocol == ip', 'protocol == 2048', 'reason != NO_SUCH_REASON'],
    ['ifindex == 2 && ifname == eth0', null, 'ifindex == 2 && ifname == eth0'],
    ['reason =~ /^NO_SOCKET$/', `reason == ${ns}`, null],
    ['reason =~ /^XYZ/', null, 'reason =~ /^XYZ/'],
    ['reason !~ /^XYZ/', null, null],
    // The flow is never in the kernel's reach: it stays in user space, and splits off like any user-only field.
    ['dport == 9', null, 'dport == 9'],
    ['reason == NO_SOCKET && dport == 9 && l4 == udp', `reason == ${ns}`, 'dport == 9 && l4 == udp'],
    ['protocol == ip && dst in 127.0.0.0/8', 'protocol == 2048', 'dst in 127.0.0.0/8'],
    ['reason == NO_SOCKET || dport == 9', null, 'reason == NO_SOCKET || dport == 9'],
    ['!(reason == NO_SOCKET || dst not in 10.0.0.0/8)', `reason != ${ns}`, '!(dst not in 10.0.0.0/8)'],
    ['origin == software && src == ::1', null, 'src == ::1'],
  ];
  for (const [src, kernel, user] of cases) {
    const r = pushdown(parse(src), reasons);
    assert.equal(r.kernel, kernel, src);
    assert.equal(r.userExpr === null ? null : format(r.userExpr), user, src);
    assert.equal(r.user === null, user === null, src);
    assertEquivalent(src);
  }
});

test('a reason regex becomes ranges of consecutive reason numbers', () => {
  const tcp = [...reasons].filter(([, n]) => n.startsWith('TCP_')).map(([n]) => n);
  const r = pushdown(parse('reason =~ /^TCP_/'), reasons);
  assert.ok(r.kernel !== null && r.kernel.includes('reason >= '), r.kernel ?? 'null');
  assert.equal(r.user, null);
  const k = parseKernelFilter(r.kernel);
  for (let n = 0; n < 200; n++) assert.equal(evalKernel(k, { reason: n, protocol: 0 }), tcp.includes(n), `reason ${n}`);
  for (const src of [
    'reason =~ /^TCP_/',
    'reason !~ /^TCP_/',
    'reason =~ /^IP/i && protocol == ip',
    '!(reason =~ /CSUM/ || reason == NOMEM)',
  ]) {
    assertEquivalent(src);
  }
  // Too many separate runs: left to user space rather than a huge kernel filter.
  const scattered = pushdown(parse('reason =~ /[02468]$/'), reasons);
  assert.equal(scattered.kernel, null);
  assertEquivalent('reason =~ /[02468]$/');
});

test('duplicate reason names map to every number', () => {
  const dup = new Map([
    [2, 'A'],
    [3, 'B'],
    [7, 'A'],
  ]);
  assert.equal(pushdown(parse('reason == A'), dup).kernel, 'reason == 2 || reason == 7');
  assert.equal(pushdown(parse('reason != A'), dup).kernel, 'reason != 2 && reason != 7');
  assert.equal(
    pushdown(parse('reason == A && protocol == 1'), dup).kernel,
    '(reason == 2 || reason == 7) && protocol == 1',
  );
});

test('conjuncts past the kernel length limit stay in user space', () => {
  // Every other reason: consecutive ones would fold into one range and fit.
  const names = [...reasons.values()].slice(0, 100).filter((_, i) => i % 2 === 0);
  const e = parse(names.map((n) => `reason != ${n}`).join(' && '));
  const r = pushdown(e, reasons, 200);
  assert.ok(r.kernel !== null && r.kernel.length <= 200);
  assert.ok(r.userExpr !== null);
  const full = pushdown(e, reasons);
  assert.equal(full.user, null);
  assert.ok(full.kernel !== null && full.kernel.length < 4000);
});

test('unknownReasons reports names this kernel lacks', () => {
  assert.deepEqual(unknownReasons(parse('reason == NO_SOCKET || !(reason != NO_SUCH) && reason =~ /X/'), reasons), [
    'NO_SUCH',
  ]);
});

/** A filter's kernel part against every protocol number and a few reasons, beside the whole filter in user space. */
function assertEquivalentOverProtocols(src: string, result = pushdown(parse(src), reasons)): void {
  const want = compile(parse(src));
  const k = result.kernel === null ? null : parseKernelFilter(result.kernel);
  for (let protocol = 0; protocol <= 0xffff; protocol++)
    for (const reason of [2, 3, 200]) {
      const record: FilterRecord = {
        ...NO_FLOW,
        reason: reasons.get(reason) ?? null,
        symbol: null,
        origin: 'software',
        protocol,
        ifindex: null,
        ifname: null,
        netns: null,
      };
      const got = (k === null || evalKernel(k, { reason, protocol })) && (result.user === null || result.user(record));
      if (got !== want(record)) assert.fail(`${src.slice(0, 80)}… on protocol ${protocol}, reason ${reason}`);
    }
}

test('a long list of values on one field folds into ranges, so it fits the kernel and means the same', () => {
  const upTo = (n: number) => Array.from({ length: n }, (_, i) => `protocol == ${i}`);
  const src = [...upTo(299), 'protocol == ipv6'].join(' || ');
  assert.ok(src.length > 4096);
  const r = pushdown(parse(src), reasons);
  assert.equal(r.kernel, '(protocol >= 0 && protocol <= 298) || protocol == 34525');
  assert.equal(r.user, null);
  assert.equal(r.tooLong, null);
  assertEquivalentOverProtocols(src, r);
  // The same with != in a conjunction, and with runs and single values mixed; runs of two stay two tests.
  const not = Array.from({ length: 400 }, (_, i) => `protocol != ${i + 10}`).join(' && ');
  assert.equal(pushdown(parse(not), reasons).kernel, 'protocol < 10 || protocol > 409');
  assertEquivalentOverProtocols(not);
  const mixed =
    'protocol == 7 || protocol == 1 || protocol == 2 || protocol == 3 || protocol == 9 || protocol == 10 || reason == NO_SOCKET';
  assert.equal(
    pushdown(parse(mixed), reasons).kernel,
    `(protocol >= 1 && protocol <= 3) || protocol == 7 || protocol == 9 || protocol == 10 || reason == ${num('NO_SOCKET')}`,
  );
  assertEquivalentOverProtocols(mixed);
});

test('what the kernel could decide but does not fit its limit is named, with the length it would need', () => {
  const odd = Array.from({ length: 300 }, (_, i) => `protocol == ${2 * i + 1}`).join(' || ');
  const r = pushdown(parse(`reason == NO_SOCKET && (${odd})`), reasons);
  assert.equal(r.kernel, `reason == ${num('NO_SOCKET')}`);
  assert.ok(r.tooLong !== null && format(r.tooLong).startsWith('protocol == 0x0001 || protocol == 0x0003'));
  assert.ok(r.kernelLength > 4000, String(r.kernelLength));
  assertEquivalentOverProtocols(`reason == NO_SOCKET && (${odd})`, r);
  // Untranslatable parts are not "too long": they were never the kernel's.
  const short = pushdown(parse('reason == NO_SOCKET && symbol =~ /udp/'), reasons);
  assert.equal(short.tooLong, null);
  assert.equal(short.kernelLength, short.kernel!.length);
});
