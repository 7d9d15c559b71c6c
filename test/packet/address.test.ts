// IPv6 address text against Node's own inet_ntop (net.SocketAddress), on random addresses rich in zero groups.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SocketAddress } from 'node:net';
import fc from 'fast-check';
import { ipv4Text, ipv6Text } from '../../src/packet/index.js';

// Groups drawn mostly from 0 and ffff, so runs of zeros, IPv4-mapped and IPv4-compatible addresses come up often.
const group = fc.oneof(
  { weight: 4, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.constant(0xffff) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
);

test('ipv6Text writes what inet_ntop writes (libuv behind net.SocketAddress)', () => {
  fc.assert(
    fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
      const b = new Uint8Array(18);
      groups.forEach((g, i) => {
        b[1 + 2 * i] = g >> 8;
        b[2 + 2 * i] = g & 0xff;
      });
      const full = groups.map((g) => g.toString(16)).join(':');
      assert.equal(ipv6Text(b, 1), new SocketAddress({ address: full, family: 'ipv6' }).address, full);
    }),
    { seed: 5952, numRuns: 20_000 },
  );
});

test('RFC 5952 examples, and IPv4 dotted', () => {
  const v6 = (text: string): string => {
    const groups = text.split(':').map((g) => parseInt(g, 16));
    return ipv6Text(new Uint8Array(groups.flatMap((g) => [g >> 8, g & 0xff])), 0);
  };
  assert.equal(v6('2001:db8:0:0:0:0:2:1'), '2001:db8::2:1');
  assert.equal(v6('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
  assert.equal(v6('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1');
  assert.equal(v6('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(v6('0:0:0:0:0:ffff:c000:280'), '::ffff:192.0.2.128');
  assert.equal(v6('0:0:0:0:0:0:0:1'), '::1');
  assert.equal(v6('0:0:0:0:0:0:0:0'), '::');
  assert.equal(ipv4Text(new Uint8Array([0, 192, 0, 2, 255]), 1), '192.0.2.255');
});
