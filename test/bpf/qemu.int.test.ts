// The bpf source on Debian's 6.1 kernel (BTF, and drop_monitor beside it): a qemu boot, shared with the run's other
// qemu sessions (test/qemu/suite.ts), runs test/bpf/guest/session.sh through the built CLI. Skips when the guest cannot
// run or the bpf addon is not built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keepTranscript, type GuestResult } from '../qemu/harness.js';
import { sessionResult, sessionUnavailable } from '../qemu/suite.js';

const DROP_LINE = /^(\d+) drops at (\S+) \(0x[0-9a-f]+\) \[software\](?: (\S+))?$/;

/** The summary lines' counts, summed per location (symbol+offset) and reason. */
function summed(lines: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of lines) {
    const m = DROP_LINE.exec(l);
    if (!m) continue;
    const key = m[3] === undefined ? m[2]! : `${m[2]!} ${m[3]}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[1]));
  }
  return out;
}

/** The summary lines' counts per location (symbol+offset), over all reasons: what NET_DM's lines can be held to. */
function perLocation(lines: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, n] of summed(lines)) {
    const location = key.split(' ')[0]!;
    out.set(location, (out.get(location) ?? 0) + n);
  }
  return out;
}

const sortedEntries = (m: Map<string, number>): [string, number][] => [...m].sort(([a], [b]) => a.localeCompare(b));

test('bpf in qemu: Debian 6.1 (BTF) runs -b bpf', async (t) => {
  const why = await sessionUnavailable('bpf');
  if (why !== null) {
    t.skip(why);
    return;
  }
  const r: GuestResult = await sessionResult('bpf');
  const { sec } = keepTranscript(t, r, 'bpf-qemu');
  t.diagnostic(`guest kernel and BTF size: ${sec('kernel').join(' ')}`);

  await t.test(
    '-b bpf loads in the guest and counts 1000 datagrams exactly at __udp4_lib_rcv, reason NO_SOCKET',
    () => {
      const lines = sec('count-bpf');
      assert.ok(lines.includes('Kernel monitoring activated.'), lines.join('\n'));
      assert.equal(lines.at(-1), 'rc=0', lines.join('\n'));
      const ours = [...summed(lines)].filter(([k]) => k.startsWith('__udp4_lib_rcv+'));
      assert.equal(ours.length, 1, lines.join('\n'));
      assert.match(ours[0]![0], / NO_SOCKET$/);
      assert.equal(ours[0]![1], 1000, lines.join('\n'));
      // Four bursts over more than 3 s: the count spans several drains.
      assert.ok(lines.filter((l) => l.includes(' drops at __udp4_lib_rcv+')).length >= 2, lines.join('\n'));
    },
  );

  await t.test('bpf and NET_DM at once on the same drops: per-location totals equal', () => {
    const netdm = sec('both-netdm');
    const bpf = sec('both-bpf');
    for (const lines of [netdm, bpf]) {
      assert.ok(lines.includes('Kernel monitoring activated.'), lines.join('\n'));
      assert.equal(lines.at(-1), 'rc=0', lines.join('\n'));
    }
    const a = perLocation(netdm);
    const b = perLocation(bpf);
    t.diagnostic(`NET_DM: ${JSON.stringify(sortedEntries(a))}`);
    t.diagnostic(`bpf: ${JSON.stringify(sortedEntries(b))}`);
    const at = (m: Map<string, number>, symbol: string): number =>
      [...m].filter(([k]) => k.startsWith(`${symbol}+`)).reduce((sum, [, n]) => sum + n, 0);
    // 50 + 200 UDP datagrams to 127.0.0.1:9 and 50 to [::1]:9; the TCP SYNs and ICMPv6 errors drop elsewhere.
    assert.equal(at(a, '__udp4_lib_rcv'), 250);
    assert.equal(at(a, '__udp6_lib_rcv'), 50);
    assert.equal(at(a, 'tcp_v4_rcv'), 50);
    assert.equal(at(a, 'tcp_v6_rcv'), 50);
    assert.deepEqual(sortedEntries(b), sortedEntries(a));
    // The bpf lines name each drop's reason; our UDP drops are NO_SOCKET.
    const udp = [...summed(bpf)].filter(([k]) => k.startsWith('__udp4_lib_rcv+'));
    assert.deepEqual(
      udp.map(([k, n]) => `${k.split(' ')[1]} ${n}`),
      ['NO_SOCKET 250'],
    );
  });
});
