// The flow decoder on what the qemu guest's Debian kernel made (test/qemu/capture/capture-vlan.ts): frames under
// 802.1Q and 802.1ad tags, and NET_DM packet alerts for IPv4 and IPv6 UDP and TCP drops, each against tshark.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFlow, type Flow } from '../../src/packet/index.js';
import { decodeSll } from '../../src/pcap/index.js';
import { decodeNlMsgs } from '../../src/netlink/codec.js';
import { decodePacketAlert, netdmCommand, NET_DM_CMD_PACKET_ALERT } from '../../src/netdm/codec.js';
import { capture, type Frame } from './fixtures.js';

/** tshark's row in the decoder's terms; for ICMP errors, the outer headers (the first of each field). */
function fromTshark(t: Frame['tshark']): Pick<Flow, 'l3' | 'src' | 'dst' | 'l4' | 'sport' | 'dport' | 'vlans'> {
  const first = (name: string): string => (t[name] ?? '').split(',')[0]!;
  const layers = t['frame.protocols']!.split(':');
  // tshark names an 802.1ad tag apart from 802.1Q ones; the capture has the 802.1ad tag outermost.
  const ids = (name: string): number[] => (t[name] ? t[name].split(',').map(Number) : []);
  const vlans = [...ids('ieee8021ad.id'), ...ids('vlan.id')];
  if (layers.includes('arp'))
    return {
      l3: 'arp',
      src: first('arp.src.proto_ipv4'),
      dst: first('arp.dst.proto_ipv4'),
      l4: null,
      sport: null,
      dport: null,
      vlans,
    };
  const v6 = layers.includes('ipv6');
  // The transport is the first layer after IP that is not an extension header the flow passes over.
  let i = layers.indexOf(v6 ? 'ipv6' : 'ip') + 1;
  while (['ipv6.hopopts', 'ipv6.routing', 'ipv6.dstopts', 'ipv6.fraghdr', 'ah'].includes(layers[i]!)) i++;
  const l4 = layers[i] ?? null;
  const ports = l4 === 'udp' || l4 === 'tcp';
  return {
    l3: v6 ? 'ipv6' : 'ipv4',
    src: first(v6 ? 'ipv6.src' : 'ip.src'),
    dst: first(v6 ? 'ipv6.dst' : 'ip.dst'),
    l4,
    sport: ports ? Number(first(`${l4}.srcport`)) : null,
    dport: ports ? Number(first(`${l4}.dstport`)) : null,
    vlans,
  };
}

const pick = (f: Flow): ReturnType<typeof fromTshark> => ({
  l3: f.l3,
  src: f.src,
  dst: f.dst,
  l4: f.l4,
  sport: f.sport,
  dport: f.dport,
  vlans: f.vlans,
});

test('guest frames under 802.1Q and 802.1ad (QinQ) tags decode as tshark decodes them', () => {
  const frames = capture('guest-vlan');
  const seen = new Set<string>();
  for (const fr of frames) {
    const want = fromTshark(fr.tshark);
    const got = decodeFlow(fr.bytes);
    assert.deepEqual(pick(got), want, `frame ${fr.number}: ${fr.tshark['frame.protocols']}`);
    assert.equal(got.stopped, null);
    seen.add(`${want.vlans.join('.')} ${want.l3} ${want.l4}`);
  }
  for (const kind of ['100 arp null', '100 ipv6 icmpv6', '300.400 ipv4 udp', '300.400 ipv6 udp', '300.400 ipv4 tcp'])
    assert.ok(seen.has(kind), `no ${kind} frame in guest-vlan.pcap: ${[...seen].join(' | ')}`);
});

test("guest NET_DM alerts (dwdump's capture of loopback drops): each payload's flow is tshark's", () => {
  const seen = new Set<string>();
  let alerts = 0;
  for (const rec of capture('guest-netdm')) {
    const msgs = decodeNlMsgs(decodeSll(rec.bytes).payload);
    if (msgs.length !== 1 || netdmCommand(msgs[0]!) !== NET_DM_CMD_PACKET_ALERT) continue;
    alerts++;
    const p = decodePacketAlert(msgs[0]!);
    assert.equal(Number(rec.tshark['net_dm.proto']), p.protocol, `record ${rec.number}: protocol`);
    const got = decodeFlow(p.payload!, p.protocol);
    const want = fromTshark(rec.tshark);
    assert.deepEqual(pick(got), want, `record ${rec.number}: ${rec.tshark['frame.protocols']}`);
    seen.add(`${want.l3} ${want.l4} ${want.dport}`);
  }
  assert.ok(alerts >= 4, `${alerts} alerts`);
  for (const kind of ['ipv4 udp 9', 'ipv6 udp 9', 'ipv4 tcp 10', 'ipv6 tcp 10'])
    assert.ok(seen.has(kind), `no ${kind} alert: ${[...seen].join(' | ')}`);
});
