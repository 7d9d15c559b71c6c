import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DropwatchError } from '../../src/errors/index.js';
import { FilterSyntaxError, format, ignoreReasons, parse, type Expr } from '../../src/filter/index.js';

function err(fn: () => unknown): FilterSyntaxError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FilterSyntaxError, `not a FilterSyntaxError: ${String(e)}`);
    assert.ok(e instanceof DropwatchError);
    assert.equal(e.code, 'E_BAD_INPUT');
    assert.ok(!e.message.includes('\n'), 'one line');
    return e;
  }
  assert.fail('did not throw');
}

test('canonical forms', () => {
  const cases: [string, string][] = [
    ['reason == NO_SOCKET', 'reason == NO_SOCKET'],
    ['reason==no_socket', 'reason == NO_SOCKET'],
    ['reason == SKB_DROP_REASON_NO_SOCKET', 'reason == NO_SOCKET'],
    ["reason != 'tcp_csum'", 'reason != TCP_CSUM'],
    ['origin == sw', 'origin == software'],
    ['origin != HW', 'origin != hardware'],
    ['symbol == __udp4_lib_rcv', 'symbol == __udp4_lib_rcv'],
    ['symbol == ip_rcv_finish_core.isra.0', 'symbol == ip_rcv_finish_core.isra.0'],
    ['symbol == "a b\\"c"', 'symbol == "a b\\"c"'],
    ['ifname == br-lan', 'ifname == br-lan'],
    ['ifname == "eth0@if3"', 'ifname == "eth0@if3"'],
    ['protocol == ip', 'protocol == 0x0800'],
    ['protocol == IPv4', 'protocol == 0x0800'],
    ['protocol == ipv6', 'protocol == 0x86dd'],
    ['protocol != arp', 'protocol != 0x0806'],
    ['protocol == 2048', 'protocol == 0x0800'],
    ['protocol == 0X86DD', 'protocol == 0x86dd'],
    ['protocol == 0', 'protocol == 0x0000'],
    ['ifindex == 0x10', 'ifindex == 16'],
    ['ifindex != 4294967295', 'ifindex != 4294967295'],
    ['symbol =~ /^tcp_/', 'symbol =~ /^tcp_/'],
    ['symbol =~ /udp/i', 'symbol =~ /udp/i'],
    ['symbol !~ "^ip6?_"', 'symbol !~ /^ip6?_/'],
    ['ifname =~ /a\\/b/', 'ifname =~ /a\\/b/'],
    ['ifname =~ "a/b"', 'ifname =~ /a\\/b/'],
    ['ifname =~ /[/]x/', 'ifname =~ /[\\/]x/'],
    ['reason =~ /^TCP_/ && !(symbol == x)', 'reason =~ /^TCP_/ && !(symbol == x)'],
    // precedence: ! > && > ||
    ['reason == A || reason == B && protocol == ip', 'reason == A || reason == B && protocol == 0x0800'],
    ['(reason == A || reason == B) && protocol == ip', '(reason == A || reason == B) && protocol == 0x0800'],
    ['!reason == A && origin == sw', '!(reason == A) && origin == software'],
    ['!!reason == A', 'reason == A'],
    ['!(reason == A || reason == B)', '!(reason == A || reason == B)'],
    ['((((reason == A))))', 'reason == A'],
    ['  \treason\n==\r\nA  ', 'reason == A'],
    // The flow: names and numbers, addresses by value, prefixes.
    ['l3 == ipv4', 'l3 == ipv4'],
    ['l3 == IP', 'l3 == ipv4'],
    ["l3 != 'ARP'", 'l3 != arp'],
    ['l4 == udp', 'l4 == udp'],
    ['l4 == 17', 'l4 == udp'],
    ['l4 == 0x3a', 'l4 == icmpv6'],
    ['l4 == IPv6-ICMP', 'l4 == icmpv6'],
    ['l4 != 253', 'l4 != 253'],
    ['dport == 53', 'dport == 53'],
    ['sport != 0xffff', 'sport != 65535'],
    ['dport == 0', 'dport == 0'],
    ['src == 192.0.2.1', 'src == 192.0.2.1'],
    ['src==192.0.2.1', 'src == 192.0.2.1'],
    ['dst != ::1', 'dst != ::1'],
    ['dst == 0:0:0:0:0:0:0:1', 'dst == ::1'],
    ['src == 2001:DB8:0:0:1:0:0:1', 'src == 2001:db8::1:0:0:1'],
    ['src == "fe80::1"', 'src == fe80::1'],
    ['src == ::ffff:c000:201', 'src == ::ffff:192.0.2.1'],
    ['dst in 10.0.0.0/8', 'dst in 10.0.0.0/8'],
    ['dst in 10.1.2.3/8', 'dst in 10.1.2.3/8'],
    ['dst in 10.0.0.1', 'dst in 10.0.0.1/32'],
    ['src in 2001:db8::/32', 'src in 2001:db8::/32'],
    ['src in ::/0', 'src in ::/0'],
    ['src in "2001:db8::/32"', 'src in 2001:db8::/32'],
    ['dst not in 10.0.0.0/8', 'dst not in 10.0.0.0/8'],
    ['!(dst in 10.0.0.0/8)', '!(dst in 10.0.0.0/8)'],
    ['!dst in 127.0.0.0/8', '!(dst in 127.0.0.0/8)'],
    ['(dst in ::1/128)', 'dst in ::1/128'],
    ['dst in 10.0.0.0/8&&dport==9', 'dst in 10.0.0.0/8 && dport == 9'],
    ['dport == 9 && l4 == udp', 'dport == 9 && l4 == udp'],
    ['ifname == "eth0"', 'ifname == eth0'],
    ['ifname == eth0', 'ifname == eth0'],
    ['ifname == "1.2.3.4"', 'ifname == "1.2.3.4"'],
    ['ifname == "a:b"', 'ifname == "a:b"'],
    ['ifname == dead.beef', 'ifname == dead.beef'],
    ['symbol == fe80', 'symbol == fe80'],
    ['ifname == in', 'ifname == in'],
  ];
  for (const [src, want] of cases) {
    const e = parse(src);
    assert.equal(format(e), want, src);
    assert.deepEqual(parse(format(e)), e, `round trip of ${src}`);
  }
});

test('tree shape: && binds tighter than ||, ! tighter than &&, chains are flat', () => {
  const A: Expr = { type: 'cmp', field: 'reason', op: '==', value: 'A' };
  const B: Expr = { type: 'cmp', field: 'reason', op: '==', value: 'B' };
  const C: Expr = { type: 'cmp', field: 'protocol', op: '==', value: 0x800 };
  assert.deepEqual(parse('reason == A || reason == B && protocol == ip'), {
    type: 'or',
    args: [A, { type: 'and', args: [B, C] }],
  });
  assert.deepEqual(parse('!reason == A && reason == B'), { type: 'and', args: [{ type: 'not', arg: A }, B] });
  assert.deepEqual(parse('reason == A && (reason == B && protocol == ip)'), { type: 'and', args: [A, B, C] });
  assert.deepEqual(parse('symbol =~ /x/mi'), { type: 'match', field: 'symbol', op: '=~', pattern: 'x', flags: 'mi' });
});

test('errors: exact message and column', () => {
  const cases: [string, string, number][] = [
    ['reason ==', "expected a value after '=='", 10],
    ['reason == && x', "expected a value after '==', found '&&'", 11],
    ['', 'empty expression', 1],
    ['   ', 'empty expression', 4],
    [
      'foo == 1',
      "unknown field 'foo' (fields: reason, symbol, origin, protocol, ifindex, ifname, l3, l4, src, dst, sport, dport, netns, container, pod, comm, dev)",
      1,
    ],
    [
      'Reason == A',
      "unknown field 'Reason' (fields: reason, symbol, origin, protocol, ifindex, ifname, l3, l4, src, dst, sport, dport, netns, container, pod, comm, dev)",
      1,
    ],
    ['reason', "expected '==', '!=', '=~' or '!~' after 'reason', found end of expression", 7],
    ['reason NO_SOCKET', "expected '==', '!=', '=~' or '!~' after 'reason', found 'NO_SOCKET'", 8],
    ['reason = A', "unknown operator '=' (did you mean '=='?)", 8],
    ['reason == A & reason == B', "unknown operator '&' (did you mean '&&'?)", 13],
    ['reason == A | reason == B', "unknown operator '|' (did you mean '||'?)", 13],
    ['protocol > 5', "operator '>' is not supported (use ==, !=, =~ or !~)", 10],
    ['(reason == A', "unclosed '('", 1],
    ['((reason == A)', "unclosed '('", 1],
    ['reason == A)', "unmatched ')'", 12],
    ['(reason == A) )', "unmatched ')'", 15],
    ['()', "expected a field name, found ')'", 2],
    ['(reason == A foo)', "expected '&&', '||' or ')', found 'foo'", 14],
    ['reason == A foo', "expected '&&', '||' or end of expression, found 'foo'", 13],
    ['reason == A &&', 'expected a field name, found end of expression', 15],
    ['&& reason == A', "expected a field name, found '&&'", 1],
    ['reason == A !', "expected '&&', '||' or end of expression, found '!'", 13],
    ['symbol =~ /(/', 'bad regular expression: Unterminated group', 11],
    ['symbol =~ "["', 'bad regular expression: Unterminated character class', 11],
    ['symbol =~ /a/g', "unsupported regular expression flag 'g' (use i, m, s or u)", 14],
    ['symbol =~ /a/ii', "repeated regular expression flag 'i'", 15],
    ['symbol =~ /abc', 'unterminated regular expression', 11],
    ['symbol == "abc', 'unterminated string', 11],
    ["symbol == 'a\\", 'unterminated string', 11],
    ['symbol =~ abc', "'=~' needs a /regular expression/ or a quoted string, found 'abc'", 11],
    ['symbol == /abc/', "a regular expression needs '=~' or '!~', not '=='", 11],
    [
      'protocol =~ /8/',
      "'=~' needs a text field (reason, symbol, origin, ifname, container, pod, comm), not 'protocol'",
      10,
    ],
    ['protocol == tcp', "'protocol' needs a number or one of ip, ipv4, ipv6, arp, found 'tcp'", 13],
    ['ifindex == lo', "'ifindex' needs a number, found 'lo'", 12],
    ['protocol == 0x10000', "'protocol' must be 0 to 0xffff, found '0x10000'", 13],
    ['ifindex == 4294967296', "'ifindex' must be 0 to 0xffffffff, found '4294967296'", 12],
    ['ifindex == 99999999999999999999', "'ifindex' must be 0 to 0xffffffff, found '99999999999999999999'", 12],
    ['protocol == 0800', "ambiguous number '0800' (write 0x800 for hex or 800 for decimal)", 13],
    ['protocol == 0x', "bad number '0x'", 13],
    ['protocol == 0x80g', "bad number '0x80g'", 13],
    ['protocol == 12ab', "bad number '12ab'", 13],
    ['reason == 3', "'reason' needs a name, found number '3'", 11],
    ['reason == "NO SOCKET"', `'"NO SOCKET"' is not a drop reason name`, 11],
    ['reason == no-socket', "'no-socket' is not a drop reason name", 11],
    ['origin == firmware', "'origin' is software or hardware, found 'firmware'", 11],
    ['symbol == x # comment', "unexpected character '#'", 13],
    ['symbol == x\u0000', "unexpected character '\\u0000'", 12],
    ['ifname == é', "unexpected character 'é'", 11],
    [
      'ifname == "😀" && x',
      "unknown field 'x' (fields: reason, symbol, origin, protocol, ifindex, ifname, l3, l4, src, dst, sport, dport, netns, container, pod, comm, dev)",
      18,
    ],
    ['dport == 70000', "'dport' must be 0 to 65535, found '70000'", 10],
    ['sport == http', "'sport' needs a number, found 'http'", 10],
    ['dport == 1.5', "'dport' needs a number, found '1.5'", 10],
    ['l4 == 256', "'l4' must be 0 to 255, found '256'", 7],
    ['l4 == ipx', "'l4' needs a number or an IP protocol name (tcp, udp, icmp, icmpv6, sctp, …), found 'ipx'", 7],
    ['l3 == ipx', "'l3' is ipv4, ipv6 or arp, found 'ipx'", 7],
    ['l3 == 4', "'l3' needs a name, found number '4'", 7],
    ['l3 =~ /ip/', "'=~' needs a text field (reason, symbol, origin, ifname, container, pod, comm), not 'l3'", 4],
    ['src == 1.2.3', "'1.2.3' is not an IPv4 or IPv6 address", 8],
    ['src == 256.1.1.1', "'256.1.1.1' is not an IPv4 or IPv6 address", 8],
    ['src == 01.2.3.4', "'01.2.3.4' is not an IPv4 or IPv6 address", 8],
    ['src == 1:2:3:4:5:6:7:8:9', "'1:2:3:4:5:6:7:8:9' is not an IPv4 or IPv6 address", 8],
    ['src == 10.0.0.1x', "'10.0.0.1x' is not an IPv4 or IPv6 address", 8],
    ['src == :', "':' is not an IPv4 or IPv6 address", 8],
    ['src == "fe80::1%eth0"', "'fe80::1%eth0' is not an IPv4 or IPv6 address", 8],
    ['src == fe80::1%eth0', "unexpected character '%'", 15],
    ['src == localhost', "'src' needs an IPv4 or IPv6 address, found 'localhost'", 8],
    ['src == 3', "'src' needs an IPv4 or IPv6 address, found '3'", 8],
    ['dst in 10.0.0.0/33', "prefix length '33' is too long for IPv4 (0 to 32)", 17],
    ['dst in 2001:db8::/129', "prefix length '129' is too long for IPv6 (0 to 128)", 19],
    ['dst in 10.0.0.0/99999999999999999999', "prefix length '99999999999999999999' is too long for IPv4 (0 to 32)", 17],
    ['dst in 10.0.0.0/', "expected a prefix length after '/'", 17],
    ['dst in 10.0.0.0/8x', "bad prefix length '8x' (0 to 32 for IPv4)", 17],
    ['dst in "10.0.0.0/x"', "bad prefix length 'x' (0 to 32 for IPv4)", 8],
    ['dst == 10.0.0.0/8', "'==' compares one address; for a prefix write 'dst in 10.0.0.0/8'", 8],
    ['dst != 10.0.0.0/8', "'!=' compares one address; for a prefix write 'dst not in 10.0.0.0/8'", 8],
    ['dst in', "expected a value after 'in'", 7],
    ['dst not 10.0.0.0/8', "expected '==', '!=', 'in' or 'not in' after 'dst', found 'not'", 5],
    ['dst =~ /10/', "'=~' needs a text field (reason, symbol, origin, ifname, container, pod, comm), not 'dst'", 5],
    ['dport in 10.0.0.0/8', "'in' needs an address field (src, dst), not 'dport'", 7],
    ['dport', "expected '==' or '!=' after 'dport', found end of expression", 6],
    ['ifname == 10.0.0.1', "'ifname' needs a name, found '10.0.0.1'", 11],
    ['reason == ::1', "'reason' needs a name, found '::1'", 11],
    [
      '(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((reason == A' + ')'.repeat(65),
      'parentheses nested too deeply (limit 64)',
      65,
    ],
  ];
  for (const [src, msg, col] of cases) {
    const e = err(() => parse(src));
    assert.equal(e.message, `filter: ${msg} at column ${col}`, JSON.stringify(src));
    assert.equal(e.column, col, JSON.stringify(src));
  }
});

test('huge inputs end quickly with a result or a one-line error', () => {
  const t0 = Date.now();
  const long = Array.from({ length: 3000 }, (_, i) => `reason != R${i}`).join(' && ');
  assert.ok(long.length < 65536);
  const e = parse(long);
  assert.equal(e.type === 'and' && e.args.length, 3000);
  const inputs = [
    'x'.repeat(65536),
    'reason == ' + 'A'.repeat(65526),
    '('.repeat(65536),
    ')'.repeat(65536),
    '!'.repeat(65535) + '(',
    '"'.repeat(65535),
    '/' + 'a'.repeat(65534),
    'symbol =~ /' + '\\'.repeat(65525),
    'symbol =~ /' + '('.repeat(32000) + ')'.repeat(32000) + '/',
    '1'.repeat(65536),
    'reason == A &&'.repeat(4681),
    'a'.repeat(70000),
    ' '.repeat(65536),
  ];
  for (const s of inputs) {
    try {
      parse(s);
    } catch (x) {
      assert.ok(x instanceof FilterSyntaxError, String(x));
      assert.ok(x.message.length < 200 && !x.message.includes('\n'), x.message);
    }
  }
  assert.equal(
    err(() => parse('a'.repeat(70000))).message,
    'filter: expression too long (70000 characters, limit 65536) at column 65537',
  );
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
});

test('ignoreReasons: same tree as reason != A && reason != B', () => {
  assert.deepEqual(ignoreReasons('NO_SOCKET,TCP_CSUM'), parse('reason != NO_SOCKET && reason != TCP_CSUM'));
  assert.deepEqual(
    ignoreReasons(' no_socket , skb_drop_reason_tcp_csum '),
    parse('reason != NO_SOCKET && reason != TCP_CSUM'),
  );
  assert.deepEqual(ignoreReasons('NOT_SPECIFIED'), parse('reason != NOT_SPECIFIED'));
  const cases: [string, string, number][] = [
    ['', 'empty list', 1],
    ['A,,B', 'empty reason name', 3],
    ['A,B,', 'empty reason name', 5],
    ['A, B-C', "'B-C' is not a drop reason name", 4],
    ['1ABC', "'1ABC' is not a drop reason name", 1],
  ];
  for (const [src, msg, col] of cases) {
    const e = err(() => ignoreReasons(src));
    assert.equal(e.message, `ignore-reason: ${msg} at column ${col}`, src);
    assert.equal(e.column, col);
  }
});
