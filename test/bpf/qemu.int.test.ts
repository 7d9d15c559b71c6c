// The bpf source on Debian's 6.1 kernel (BTF, and drop_monitor beside it): a qemu boot, shared with the run's other
// qemu sessions (test/qemu/suite.ts), runs test/bpf/guest/session.sh through the built CLI. Skips when the guest cannot
// run or the bpf addon is not built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractBase64, keepTranscript, type GuestResult } from '../qemu/harness.js';
import { tsharkAvailable, tsharkFields } from '../helpers/tshark.js';
import { decodePcap, decodeSll } from '../../src/pcap/index.js';
import { decodeNlMsgs } from '../../src/netlink/codec.js';
import { decodeFamily } from '../../src/netlink/nlctrl.js';
import { decodePacketAlert } from '../../src/netdm/codec.js';
import type { PacketDrop } from '../../src/backend/types.js';
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

/** A capture's family record and its alerts (our codec), each alert once. */
function captured(bytes: Buffer): { familyId: number; alerts: PacketDrop[] } {
  const file = decodePcap(bytes);
  assert.equal(file.trailing, 0);
  const family = decodeFamily(decodeNlMsgs(decodeSll(file.records[0]!.data).payload)[0]!);
  assert.equal(family.name, 'NET_DM');
  const alerts = file.records.slice(1).map((r) => {
    const msg = decodeNlMsgs(decodeSll(r.data).payload)[0]!;
    assert.equal(msg.header.type, family.id);
    return decodePacketAlert(msg);
  });
  return { familyId: family.id, alerts };
}

/** The UDP payload of a loopback IPv4 datagram's alert: after Ethernet (14), IPv4 (20) and UDP (8). */
const udpText = (p: PacketDrop): string => Buffer.from(p.payload?.subarray(42) ?? []).toString('latin1');

/**
 * The flows tshark decodes under each alert of a pcap, as `ipv4 udp 127.0.0.1 > 127.0.0.1.9` (the source port and IP
 * id differ between drops, not between the two captures of one drop), for the flows the session made.
 */
function tsharkFlows(path: string): string[] {
  const fields = ['frame.protocols', 'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst'];
  fields.push('udp.dstport', 'tcp.dstport', 'udp.srcport', 'tcp.srcport');
  return tsharkFields(path, fields, 'net_dm.cmd == 5', true)
    .map((r) => {
      const layers = r['frame.protocols']!.split(':');
      const v6 = layers.includes('ipv6');
      const l4 = layers[layers.indexOf(v6 ? 'ipv6' : 'ip') + 1] ?? '';
      const port = l4 === 'udp' ? r['udp.dstport'] : l4 === 'tcp' ? r['tcp.dstport'] : '';
      const [src, dst] = v6 ? [r['ipv6.src'], r['ipv6.dst']] : [r['ip.src'], r['ip.dst']];
      const sport = l4 === 'udp' ? r['udp.srcport'] : l4 === 'tcp' ? r['tcp.srcport'] : '';
      return `${v6 ? 'ipv6' : 'ipv4'} ${l4} ${src}.${sport} > ${dst}.${port}`;
    })
    .filter((f) => / > \S+\.(9|10)$/.test(f))
    .sort();
}

/**
 * The session's two dwdump captures of the same drops, one on NET_DM and one on bpf (kept in `work`): the same alerts
 * but their times, by our codec, and the same flows by tshark's.
 */
function sameCaptures(stdout: string, sec: (name: string) => string[], work: string, say: (m: string) => void): void {
  const netdmLines = sec('dw-netdm');
  const bpfLines = sec('dw-bpf');
  assert.equal(netdmLines.at(-1), 'rc=0', netdmLines.join('\n'));
  assert.equal(bpfLines.at(-1), 'rc=0', bpfLines.join('\n'));
  assert.ok(
    bpfLines.some((l) => l.startsWith('dwdump: capturing software drops with bpf')),
    bpfLines.join('\n'),
  );
  const bytes = { netdm: extractBase64(stdout, 'DW-NETDM'), bpf: extractBase64(stdout, 'DW-BPF') };
  for (const [name, b] of Object.entries(bytes)) writeFileSync(join(work, `dwdump-${name}.pcap`), b);
  const kernel = captured(bytes.netdm);
  const ours = captured(bytes.bpf);
  // The 20 tokened datagrams, paired by payload: every field drop_monitor sent, ours the same but the time.
  const byPayload = (alerts: PacketDrop[]) =>
    new Map(alerts.filter((p) => udpText(p).startsWith('dwb-')).map((p) => [udpText(p), p]));
  const a = byPayload(kernel.alerts);
  const b = byPayload(ours.alerts);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  assert.equal(a.size, 20);
  const strip = ({ timestampNs: _t, ...rest }: PacketDrop) => rest;
  for (const [payload, p] of a) assert.deepEqual(strip(b.get(payload)!), strip(p), payload);
  for (const p of ours.alerts) assert.ok(p.timestampNs !== undefined && p.timestampNs > 0n);
  // Every other drop too (TCP, IPv6, the ICMPv6 errors): the same alerts, each once, but for the time.
  const all = (alerts: PacketDrop[]) =>
    alerts
      .map((p) => JSON.stringify(strip(p), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v)))
      .sort();
  assert.deepEqual(all(ours.alerts), all(kernel.alerts));
  if (!tsharkAvailable()) {
    say('tshark is not installed (Debian package tshark): flows not compared');
    return;
  }
  const flows = {
    netdm: tsharkFlows(join(work, 'dwdump-netdm.pcap')),
    bpf: tsharkFlows(join(work, 'dwdump-bpf.pcap')),
  };
  // 20 + 5 UDP to 127.0.0.1:9, 5 to [::1]:9, and 5 TCP SYNs to each of 127.0.0.1:10 and [::1]:10.
  assert.equal(flows.netdm.length, 40, flows.netdm.join('\n'));
  assert.deepEqual(flows.bpf, flows.netdm);
}

const sortedEntries = (m: Map<string, number>): [string, number][] => [...m].sort(([a], [b]) => a.localeCompare(b));

test('bpf in qemu: Debian 6.1 (BTF) runs -b bpf', async (t) => {
  const why = await sessionUnavailable('bpf');
  if (why !== null) {
    t.skip(why);
    return;
  }
  const r: GuestResult = await sessionResult('bpf');
  const { work, sec } = keepTranscript(t, r, 'bpf-qemu');
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

  await t.test(
    'dwdump on bpf and on NET_DM at once: the same drops, the same alerts but the time, the same flows',
    () => sameCaptures(r.stdout, sec, work, (m) => t.diagnostic(m)),
  );
});
